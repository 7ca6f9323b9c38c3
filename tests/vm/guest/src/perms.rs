//! Permissions: banks are checked like System V IPC objects against owner, group and mode;
//! only the owner (or CAP_SYS_ADMIN) destroys; a read-only attach cannot write through mmap
//! (neither at mmap time nor later with mprotect) nor through ioctls.

use crate::check::Report;
use crate::dev::Dev;
use crate::system::{become_user, in_child};
use atomik::abi::*;
use libc::{MAP_SHARED, PROT_READ, PROT_WRITE};

const R: u32 = ACCESS_READ;
const W: u32 = ACCESS_WRITE;

fn remake(d: &Dev, n: &str, mode: u32) -> Result<(), String> {
    let _ = d.destroy(n);
    ok!(d.create(n, 16, OP_XOR, mode, 0));
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("second uid: EACCES on 0600 bank, EPERM on destroy", || {
        let root = ok!(Dev::open());
        remake(&root, "perm-private", 0o600)?;
        in_child(become_user, || {
            let d = ok!(Dev::open());
            fails_with!(d.attach("perm-private", R), libc::EACCES);
            fails_with!(d.attach("perm-private", R | W), libc::EACCES);
            fails_with!(d.destroy("perm-private"), libc::EPERM);
            fails_with!(d.read(0), libc::EBADFD);
            Ok(())
        })?;
        let d = ok!(Dev::open());
        ok!(d.attach("perm-private", R | W));
        ok!(root.destroy("perm-private"));
        Ok(())
    });

    report.run("group and other bits are honoured", || {
        let root = ok!(Dev::open());
        remake(&root, "perm-other-r", 0o604)?;
        remake(&root, "perm-other-rw", 0o606)?;
        remake(&root, "perm-group-only", 0o660)?;
        in_child(become_user, || {
            let d = ok!(Dev::open());
            fails_with!(d.attach("perm-other-r", R | W), libc::EACCES);
            fails_with!(d.attach("perm-group-only", R), libc::EACCES);
            ok!(d.attach("perm-other-rw", R | W));
            ok!(d.accum(1, 5));
            Ok(())
        })?;
        // Group access: gid 0 member with another uid.
        in_child(
            || {
                // SAFETY: credential syscalls in the child.
                if unsafe {
                    libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(0) != 0
                        || libc::setuid(1000) != 0
                } {
                    return Err("setuid".into());
                }
                Ok(())
            },
            || {
                let d = ok!(Dev::open());
                ok!(d.attach("perm-group-only", R | W));
                ok!(d.accum(0, 1));
                Ok(())
            },
        )?;
        let d = ok!(Dev::open());
        ok!(d.attach("perm-other-rw", R));
        ensure!(ok!(d.read(1)) == 5, "other uid's ACCUM landed");
        for n in ["perm-other-r", "perm-other-rw", "perm-group-only"] {
            ok!(root.destroy(n));
        }
        Ok(())
    });

    report.run("read-only attach: no write ioctls, no writable mmap, no mprotect upgrade", || {
        let root = ok!(Dev::open());
        remake(&root, "perm-ro", 0o644)?;
        let rw = ok!(Dev::open());
        ok!(rw.attach("perm-ro", R | W));
        ok!(rw.load(3, 42));
        let check = |other_user: bool| -> Result<(), String> {
            let d = ok!(Dev::open());
            if other_user {
                fails_with!(d.attach("perm-ro", R | W), libc::EACCES);
            }
            let att = ok!(d.attach("perm-ro", R));
            ensure!(ok!(d.read(3)) == 42, "read");
            fails_with!(d.accum(3, 1), libc::EACCES);
            fails_with!(d.load(3, 1), libc::EACCES);
            fails_with!(d.swap(3), libc::EACCES);
            let mut b = vec![BatchEntry { kind: KIND_ACCUM, status: 0, slot: 3, value: 1 }];
            fails_with!(d.batch(&mut b), libc::EACCES);
            ensure!(b[0].status == -libc::EACCES, "batch status {}", b[0].status);
            let len = att.map_size as usize;
            fails_with!(d.map(len, 0, PROT_READ | PROT_WRITE, MAP_SHARED), libc::EACCES);
            let m = ok!(d.map(len, 0, PROT_READ, MAP_SHARED));
            ensure!(m.header().magic == BANK_MAGIC, "read-only mapping readable");
            // SAFETY: mprotect of our own mapping; expected to be refused.
            let r = unsafe { libc::mprotect(m.ptr as *mut _, len, PROT_READ | PROT_WRITE) };
            ensure!(r != 0 && crate::dev::errno() == libc::EACCES, "mprotect upgrade allowed");
            Ok(())
        };
        in_child(become_user, || check(true))?;
        // Root asking for read only gets read only too.
        in_child(|| Ok(()), || check(false))?;
        // An fd opened O_RDONLY cannot be given write access, even by root.
        let ro_fd = ok!(Dev::open_flags(libc::O_RDONLY));
        fails_with!(ro_fd.attach("perm-ro", R | W), libc::EACCES);
        let att = ok!(ro_fd.attach("perm-ro", R));
        // Such an fd maps MAP_SHARED read-only (the kernel drops VM_SHARED for it) and a
        // private read-only mapping works too; neither can be made writable later.
        for flags in [MAP_SHARED, libc::MAP_PRIVATE] {
            let m = ok!(ro_fd.map(att.map_size as usize, 0, PROT_READ, flags));
            ensure!(m.header().magic == BANK_MAGIC, "mapping readable");
            // SAFETY: mprotect of our own mapping; expected to be refused.
            let r = unsafe { libc::mprotect(m.ptr as *mut _, m.len, PROT_READ | PROT_WRITE) };
            ensure!(r != 0 && crate::dev::errno() == libc::EACCES, "mprotect upgrade allowed ({flags:#x})");
        }
        ensure!(ok!(rw.read(3)) == 42, "state untouched");
        ok!(root.destroy("perm-ro"));
        Ok(())
    });

    report.run("root (CAP_SYS_ADMIN) may destroy another user's bank", || {
        let root = ok!(Dev::open());
        let _ = root.destroy("perm-user-bank");
        in_child(become_user, || {
            let d = ok!(Dev::open());
            ok!(d.create("perm-user-bank", 4, OP_ADD, 0o600, 0));
            ok!(d.attach("perm-user-bank", R | W));
            let s = ok!(d.stats());
            ensure!(s.uid == 1000 && s.gid == 1000, "owner {s:?}");
            Ok(())
        })?;
        ok!(root.destroy("perm-user-bank"));
        Ok(())
    });
}
