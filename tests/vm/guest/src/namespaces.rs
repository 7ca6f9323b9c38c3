//! IPC namespaces scope bank names, as they scope System V IPC keys: the namespace is the one
//! `/dev/atomik` was opened in (it travels with the fd), each namespace lists and opens only
//! its own banks, the same name may exist in both, and a namespace nothing uses any more has
//! its banks removed. Across namespaces the access model is unchanged, and root inside a user
//! namespace has no capability over banks (capabilities count in the initial user namespace).

use crate::check::Report;
use crate::dev::{errno, Dev};
use crate::system::in_child;
use atomik::abi::*;

fn unshare(flags: i32) -> Result<(), String> {
    // SAFETY: unshare(2) in a single-threaded child process.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!("unshare({flags:#x}): errno {}", errno()));
    }
    Ok(())
}

fn names(d: &Dev) -> Result<Vec<String>, String> {
    let (entries, count) = ok!(d.list());
    ensure!(count as usize == entries.len(), "BANK_LIST count {count} for {} entries", entries.len());
    Ok(entries.iter().map(entry_name).collect())
}

fn entry_name(e: &BankListEntry) -> String {
    let len = e.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    String::from_utf8_lossy(&e.name[..len]).into_owned()
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {path}: {e}"))
}

/// Becomes uid/gid 1000, then root of a new user namespace mapped to it (what an unprivileged
/// container runtime does).
fn user_namespace_root() -> Result<(), String> {
    crate::system::become_user()?;
    // SAFETY: prctl in a child; the uid change made it non-dumpable, which would leave its
    // /proc/self/*_map files owned by root.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
    unshare(libc::CLONE_NEWUSER)?;
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", "0 1000 1")?;
    write_file("/proc/self/gid_map", "0 1000 1")
}

pub fn run(report: &mut Report) {
    report.run("IPC namespaces: disjoint lists, same name in both, no open or destroy across", || {
        let root = ok!(Dev::open());
        let _ = root.destroy("ns-shared-name");
        let _ = root.destroy("ns-only-outer");
        ok!(root.create("ns-shared-name", 16, OP_XOR, 0o666, 0));
        ok!(root.create("ns-only-outer", 16, OP_XOR, 0o666, 0));
        let outer = ok!(Dev::open());
        ok!(outer.attach("ns-shared-name", ACCESS_READ | ACCESS_WRITE));
        ok!(outer.load(0, 0x0a));
        let used_before = ok!(root.info()).used_bytes;
        in_child(
            || Ok(()),
            || {
                // An fd opened before unshare stays in the outer namespace.
                let before = ok!(Dev::open());
                unshare(libc::CLONE_NEWIPC)?;
                let inner = ok!(Dev::open());
                ensure!(names(&inner)?.is_empty(), "a new namespace lists {:?}", names(&inner)?);
                ensure!(ok!(inner.info()).bank_count == 0, "GET_INFO counts banks of another namespace");
                fails_with!(inner.attach("ns-only-outer", ACCESS_READ), libc::ENOENT);
                fails_with!(inner.destroy("ns-only-outer"), libc::ENOENT);
                // The same name, a different bank (32 slots, not 16).
                ok!(inner.create("ns-shared-name", 32, OP_ADD, 0o600, 0));
                fails_with!(inner.create("ns-shared-name", 32, OP_ADD, 0o600, 0), libc::EEXIST);
                let list = ok!(inner.list()).0;
                ensure!(
                    list.len() == 1 && list[0].slots == 32 && list[0].op == OP_ADD,
                    "inner list {list:?}"
                );
                let b = ok!(Dev::open());
                let o = ok!(b.attach("ns-shared-name", ACCESS_READ | ACCESS_WRITE));
                ensure!(o.slots == 32, "opened the outer bank from the inner namespace ({} slots)", o.slots);
                ensure!(ok!(b.read(0)) == 0, "inner bank shares the outer one's state");
                ok!(b.accum(0, 5));
                // The outer namespace, through the fd opened there, is unchanged.
                let outer_names = names(&before)?;
                ensure!(
                    outer_names.iter().any(|n| n == "ns-only-outer")
                        && outer_names.iter().filter(|n| *n == "ns-shared-name").count() == 1,
                    "outer list seen from the inner process: {outer_names:?}"
                );
                let o = ok!(before.attach("ns-shared-name", ACCESS_READ));
                ensure!(o.slots == 16 && ok!(before.read(0)) == 0x0a, "outer bank through the outer fd");
                let used = ok!(inner.info()).used_bytes;
                ensure!(used > used_before, "the inner bank was not counted in used_bytes ({used})");
                Ok(())
            },
        )?;
        // Back outside: the outer bank kept its state; the inner one is not visible.
        ensure!(ok!(outer.read(0)) == 0x0a, "outer bank changed");
        let n = names(&root)?;
        ensure!(n.iter().filter(|x| *x == "ns-shared-name").count() == 1, "outer list {n:?}");
        // The inner namespace died with its only process: its bank is gone, and so is its
        // share of the limits.
        ensure!(
            ok!(root.info()).used_bytes == used_before,
            "a dead namespace's bank still holds memory: {} vs {used_before}",
            ok!(root.info()).used_bytes
        );
        ok!(root.destroy("ns-shared-name"));
        ok!(root.destroy("ns-only-outer"));
        Ok(())
    });

    report.run("IPC namespaces: a bank attached when its namespace dies stays usable and charged", || {
        let root = ok!(Dev::open());
        let used_before = ok!(root.info()).used_bytes;
        in_child(
            || unshare(libc::CLONE_NEWIPC),
            || {
                let d = ok!(Dev::open());
                ok!(d.create("ns-attached", 16, OP_XOR, 0o600, 0));
                ok!(d.attach("ns-attached", ACCESS_READ | ACCESS_WRITE));
                ok!(d.load(3, 7));
                // Moving to another new namespace leaves the first one used by nothing (the
                // fd holds it, but cannot enter it): its name goes at the next registry call,
                // the attached bank stays, and so does its charge.
                unshare(libc::CLONE_NEWIPC)?;
                let other = ok!(Dev::open());
                let used = ok!(other.info()).used_bytes;
                ensure!(used > used_before, "the attached bank's charge was returned ({used})");
                ensure!(ok!(d.info()).bank_count == 0, "the dead namespace still names its bank");
                ensure!(ok!(d.read(3)) == 7, "attached bank lost its state");
                ok!(d.accum(3, 1));
                ensure!(ok!(d.read(3)) == 6, "attached bank does not work");
                Ok(())
            },
        )?;
        let used = ok!(root.info()).used_bytes;
        ensure!(used == used_before, "charge not returned after the last close: {used} vs {used_before}");
        Ok(())
    });

    report.run(
        "IPC and user namespaces: permissions across them, no capability from a user namespace",
        || {
            in_child(
                || Ok(()),
                || {
                    // Root makes a private bank in a new IPC namespace, then becomes an
                    // unprivileged user who is root of its own user namespace, in that same IPC
                    // namespace.
                    unshare(libc::CLONE_NEWIPC)?;
                    let root_fd = ok!(Dev::open());
                    ok!(root_fd.create("ns-root-private", 16, OP_XOR, 0o600, 0));
                    ok!(root_fd.create("ns-root-open", 16, OP_XOR, 0o666, 0));
                    user_namespace_root()?;
                    let d = ok!(Dev::open());
                    let list = ok!(d.list()).0;
                    let private = list.iter().find(|e| entry_name(e) == "ns-root-private");
                    ensure!(
                        private.is_some_and(|e| e.uid == 65534 && e.gid == 65534),
                        "root's bank as listed in the user namespace: {private:?}"
                    );
                    fails_with!(d.attach("ns-root-private", ACCESS_READ), libc::EACCES);
                    fails_with!(d.destroy("ns-root-private"), libc::EPERM);
                    let open = ok!(Dev::open());
                    ok!(open.attach("ns-root-open", ACCESS_READ | ACCESS_WRITE));
                    ok!(open.accum(1, 2));
                    // Its own banks: owner uid 0 as its namespace maps it.
                    ok!(d.create("ns-user-own", 16, OP_XOR, 0o600, 0));
                    let own = ok!(d.list()).0.into_iter().find(|e| entry_name(e) == "ns-user-own");
                    ensure!(own.is_some_and(|e| e.uid == 0 && e.gid == 0), "own bank as listed: {own:?}");
                    // Root's fd (opened before the drop) keeps root's access: CAP_IPC_OWNER.
                    ok!(root_fd.attach("ns-user-own", ACCESS_READ));
                    // And a further IPC namespace made from inside the user namespace sees nothing.
                    unshare(libc::CLONE_NEWIPC)?;
                    let nested = ok!(Dev::open());
                    ensure!(names(&nested)?.is_empty(), "nested namespace lists {:?}", names(&nested)?);
                    fails_with!(nested.attach("ns-root-open", ACCESS_READ), libc::ENOENT);
                    ok!(nested.create("ns-root-open", 16, OP_XOR, 0o600, 0));
                    Ok(())
                },
            )
        },
    );
}
