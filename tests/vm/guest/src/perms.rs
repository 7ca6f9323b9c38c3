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

    report.run(
        "write-only attach: ACCUM and LOAD only; no READ, SWAP, SWAP_SET or mapping of any kind",
        || {
            let root = ok!(Dev::open());
            remake(&root, "perm-wo", 0o622)?;
            let check = |d: &Dev, delta: u64| -> Result<(), String> {
                let att = ok!(d.attach("perm-wo", W));
                ok!(d.accum(1, delta));
                ok!(d.load(2, 9));
                fails_with!(d.read(1), libc::EACCES);
                fails_with!(d.swap(1), libc::EACCES);
                fails_with!(d.swap_set(1, 0), libc::EACCES);
                let mut b = vec![BatchEntry { kind: KIND_SWAP, status: 0, slot: 1, value: 0 }];
                fails_with!(d.batch(&mut b), libc::EACCES);
                let len = att.map_size as usize;
                fails_with!(d.map(len, 0, PROT_READ, MAP_SHARED), libc::EACCES);
                fails_with!(d.map(len, 0, PROT_READ | PROT_WRITE, MAP_SHARED), libc::EACCES);
                fails_with!(d.map(len, 0, PROT_WRITE, MAP_SHARED), libc::EACCES);
                fails_with!(d.map(4096, 0, libc::PROT_NONE, MAP_SHARED), libc::EACCES);
                Ok(())
            };
            // The other bits of 0o622 grant write only; an O_WRONLY fd can ask for nothing else.
            in_child(become_user, || {
                let d = ok!(Dev::open());
                fails_with!(d.attach("perm-wo", R), libc::EACCES);
                check(&d, 4)
            })?;
            let wo = ok!(Dev::open_flags(libc::O_WRONLY));
            fails_with!(wo.attach("perm-wo", R | W), libc::EACCES);
            check(&wo, 8)?;
            let d = ok!(Dev::open());
            ok!(d.attach("perm-wo", R));
            ensure!(ok!(d.read(1)) == 12 && ok!(d.read(2)) == 9, "write-only ops landed");
            ok!(root.destroy("perm-wo"));
            Ok(())
        },
    );

    report.run(
        "supplementary groups: a member of the owner gid (not its primary group) gets the group bits",
        || {
            let root = ok!(Dev::open());
            remake(&root, "perm-supp", 0o660)?; // owner root:0
            in_child(
                || {
                    let groups = [0 as libc::gid_t];
                    // SAFETY: credential syscalls in the child.
                    if unsafe {
                        libc::setgroups(1, groups.as_ptr()) != 0
                            || libc::setgid(1000) != 0
                            || libc::setuid(1000) != 0
                    } {
                        return Err(format!("setuid: errno {}", crate::dev::errno()));
                    }
                    Ok(())
                },
                || {
                    let d = ok!(Dev::open());
                    ok!(d.attach("perm-supp", R | W));
                    ok!(d.accum(0, 1));
                    Ok(())
                },
            )?;
            in_child(become_user, || {
                let d = ok!(Dev::open());
                fails_with!(d.attach("perm-supp", R), libc::EACCES);
                Ok(())
            })?;
            ok!(root.destroy("perm-supp"));
            Ok(())
        },
    );

    report.run(
        "capabilities are those of the fd's opener: root's fd works after setuid, a user's fd does not",
        || {
            let root = ok!(Dev::open());
            let _ = root.destroy("perm-cap");
            in_child(
                || Ok(()),
                || {
                    // A bank of uid 2000, mode 0600: only CAP_IPC_OWNER lets anyone else in.
                    // SAFETY: credential syscalls in the child.
                    if unsafe { libc::setegid(2000) != 0 || libc::seteuid(2000) != 0 } {
                        return Err("seteuid 2000".into());
                    }
                    ok!(ok!(Dev::open()).create("perm-cap", 4, OP_XOR, 0o600, 0));
                    // SAFETY: back to root (saved uid 0).
                    if unsafe { libc::seteuid(0) != 0 || libc::setegid(0) != 0 } {
                        return Err("seteuid 0".into());
                    }
                    Ok(())
                },
            )?;
            in_child(
                || Ok(()),
                || {
                    let opened_by_root = ok!(Dev::open());
                    let opened_by_root2 = ok!(Dev::open());
                    become_user()?;
                    // The opener (root) had CAP_IPC_OWNER and CAP_SYS_ADMIN: the fd keeps them.
                    ok!(opened_by_root.attach("perm-cap", R | W));
                    ok!(opened_by_root.accum(0, 1));
                    let mine = ok!(Dev::open());
                    fails_with!(mine.attach("perm-cap", R), libc::EACCES);
                    fails_with!(mine.destroy("perm-cap"), libc::EPERM);
                    ok!(opened_by_root2.destroy("perm-cap"));
                    Ok(())
                },
            )
        },
    );

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

    report.run(
        "a /dev/atomik the user may not open: atomikctl exits 3 naming it, no fall-back to shared memory",
        device_denied,
    );
}

/// `/bin/atomikctl ARGS` as uid 1000 with `env`: exit code and stderr.
fn ctl_as_user(args: &[&str], env: &[(&str, &str)]) -> Result<(Option<i32>, String), String> {
    use std::io::Read;
    let (pid, mut err) = crate::system::spawn_ctl(Some(1000), args, env, 2)?;
    let mut text = String::new();
    let _ = err.read_to_string(&mut text);
    Ok((crate::system::reap(pid), text))
}

fn device_denied() -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let set = |mode| {
        std::fs::set_permissions("/dev/atomik", std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod /dev/atomik {mode:o}: {e}"))
    };
    set(0o600)?;
    let shm = [("ATOMIK_SHM_DIR", "/tmp/perm-denied-shm")];
    let checks = (|| {
        for env in [&shm[..], &[("ATOMIK_BACKEND", "device")]] {
            let (code, err) = ctl_as_user(&["bank", "create", "denied", "--slots", "4"], env)?;
            ensure!(
                code == Some(3) && err.contains("/dev/atomik") && err.contains("ATOMIK_BACKEND=soft"),
                "bank create with {env:?}: exit {code:?}: {err}"
            );
        }
        ensure!(
            !std::path::Path::new("/tmp/perm-denied-shm/denied").exists(),
            "the bank was made in shared memory instead"
        );
        let (code, err) = ctl_as_user(&["status"], &shm)?;
        ensure!(code == Some(3), "status: exit {code:?}: {err}");
        // Asked for, shared memory is used.
        let soft = [("ATOMIK_BACKEND", "soft"), shm[0]];
        let (code, err) = ctl_as_user(&["bank", "create", "denied", "--slots", "4"], &soft)?;
        ensure!(code == Some(0), "bank create with ATOMIK_BACKEND=soft: exit {code:?}: {err}");
        let (code, err) = ctl_as_user(&["bank", "rm", "denied"], &soft)?;
        ensure!(code == Some(0), "bank rm: exit {code:?}: {err}");
        Ok(())
    })();
    set(0o666)?;
    checks
}
