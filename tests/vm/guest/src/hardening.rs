//! ABI v2 on the kernel side and the hardening of issue 9: dirty cards marked by the kernel's
//! ACCUMs, the sequence-word encoding of a kernel holder, sleeping waits with a deadline,
//! SWAP_SET, no side effect when a reply cannot be written, and (from `run_limits`) banks
//! charged until their last reference.

use crate::check::Report;
use crate::dev::{errno, Dev, Map, R};
use crate::region::param;
use crate::semantics::fresh;
use crate::system::{become_user, in_child};
use atomik::abi::*;
use libc::{MAP_SHARED, PROT_READ, PROT_WRITE};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

const RW: u32 = ACCESS_READ | ACCESS_WRITE;

fn e(kind: u32, slot: u64, value: u64) -> BatchEntry {
    BatchEntry { kind, status: 0, slot, value }
}

/// One page of anonymous memory holding a copy of `v`, then made read-only: a reply buffer
/// the kernel can read but not write.
struct RoPage {
    ptr: *mut u8,
}

impl RoPage {
    fn of<T: Copy>(v: &T) -> R<RoPage> {
        assert!(std::mem::size_of::<T>() <= 4096);
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                PROT_READ | PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        // SAFETY: the page is ours, writable, and large enough for a `T`.
        unsafe { std::ptr::write_unaligned(p as *mut T, *v) };
        // SAFETY: changes the protection of our own page.
        if unsafe { libc::mprotect(p, 4096, PROT_READ) } != 0 {
            return Err(errno());
        }
        Ok(RoPage { ptr: p as *mut u8 })
    }

    fn addr(&self) -> usize {
        self.ptr as usize
    }

    fn get<T: Copy>(&self) -> T {
        // SAFETY: the page is readable and was written with a `T` by `of`.
        unsafe { std::ptr::read_unaligned(self.ptr as *const T) }
    }
}

impl Drop for RoPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly our page.
        unsafe { libc::munmap(self.ptr as *mut _, 4096) };
    }
}

/// A fresh bank attached read-write, its layout, and a read-write mapping of all of it.
fn fresh_mapped(n: &str, slots: u64, op: u32, shards: u32) -> Result<(Dev, BankLayout, Map), String> {
    let d = fresh(n, slots, op, shards)?;
    let l = BankLayout::new(slots, shards).unwrap();
    let m = ok!(d.map(l.total_size as usize, 0, PROT_READ | PROT_WRITE, MAP_SHARED));
    Ok((d, l, m))
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the current thread's CPU clock into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub fn run(report: &mut Report) {
    report.run("ABI v2: ACCUM ioctl and BATCH ACCUMs mark the slot's dirty card, nothing else does", || {
        let slots = 3 * CARD_SLOTS + 5;
        let (d, l, m) = fresh_mapped("hd-cards", slots, OP_XOR, 0)?;
        ensure!(l.cards == 4, "cards {}", l.cards);
        ensure!(m.header().validate(l.total_size).is_ok(), "header of the v2 layout");
        let card = |c: u64| m.word(l.card_off + c * 8).load(SeqCst);
        let cards = || (0..4).map(card).collect::<Vec<_>>();
        ensure!(cards() == [0, 0, 0, 0], "fresh cards {:?}", cards());
        ok!(d.accum(600, 1));
        ensure!(cards() == [0, 1, 0, 0], "ioctl ACCUM of slot 600: {:?}", cards());
        m.word(l.card_off + 8).store(0, SeqCst); // what a sync daemon's scan does
        let mut b = vec![
            e(KIND_ACCUM, 1030, 1),
            e(KIND_ACCUM, 1, 1),
            e(KIND_READ, 1540, 0),
            e(KIND_LOAD, 1539, 5),
            e(KIND_SWAP, 1538, 0),
            e(KIND_SWAP_SET, 700, 9),
        ];
        ensure!(ok!(d.batch(&mut b)) == 6, "batch done");
        ensure!(cards() == [1, 0, 1, 0], "BATCH ACCUMs of slots 1030 and 1: {:?}", cards());
        m.word(l.card_off).store(7, SeqCst);
        ok!(d.accum(2, 1));
        ensure!(card(0) == 7, "a marked card is left as it is");
        ok!(d.load(600, 1));
        ok!(d.swap(601));
        ok!(d.read(602));
        ensure!(card(1) == 0, "LOAD, SWAP and READ leave the card alone");
        // The taken array is never written by the kernel.
        ensure!((0..slots).all(|i| m.word(l.taken_off + i * 8).load(SeqCst) == 0), "taken untouched");
        Ok(())
    });

    report.run(
        "ABI v2: kernel writers lock as holder 0 and leave an even word < 2^32, advanced by 2",
        || {
            let (d, l, m) = fresh_mapped("hd-seq", 8, OP_ADD, 0)?;
            let seq = m.word(l.seq_off + 5 * 8);
            ensure!(seq.load(SeqCst) == 0, "fresh word");
            ok!(d.load(5, 1));
            ensure!(seq.load(SeqCst) == 2, "LOAD: {}", seq.load(SeqCst));
            ok!(d.swap(5));
            ensure!(seq.load(SeqCst) == 4, "SWAP: {}", seq.load(SeqCst));
            ok!(d.swap_set(5, 3));
            ensure!(seq.load(SeqCst) == 6, "SWAP_SET: {}", seq.load(SeqCst));
            ok!(d.read(5));
            ok!(d.accum(5, 1));
            ensure!(seq.load(SeqCst) == 6, "READ and ACCUM do not write the word");
            let mut b = vec![e(KIND_LOAD, 5, 10), e(KIND_SWAP, 5, 0)];
            ok!(d.batch(&mut b));
            ensure!(seq.load(SeqCst) == 10, "BATCH LOAD+SWAP: {}", seq.load(SeqCst));
            // The counter wraps within its 32 bits.
            seq.store(SEQ_COUNTER_MASK - 1, SeqCst);
            ok!(d.load(5, 42));
            ensure!(seq.load(SeqCst) == 0, "wrapped: {:#x}", seq.load(SeqCst));
            ensure!(ok!(d.read(5)) == 42, "LOAD applied across the wrap");
            // An even word with a stray high half is unlocked; the kernel's release clears it.
            seq.store((0x1234 << 32) | 0x10, SeqCst);
            ok!(d.load(5, 43));
            ensure!(seq.load(SeqCst) == 0x12, "stray high half: {:#x}", seq.load(SeqCst));
            // A word locked by a userspace holder (its pid in the high half) and released by it.
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() } as u64;
            seq.store((pid << 32) | 0x13, SeqCst);
            std::thread::scope(|s| {
                let t = s.spawn(|| d.swap_set(5, 7));
                std::thread::sleep(Duration::from_millis(100));
                seq.store(0x14, SeqCst);
                match t.join() {
                    Ok(Ok(v)) if v == 43 => Ok(()),
                    other => Err(format!("SWAP_SET waiting for a userspace holder: {other:?}")),
                }
            })?;
            ensure!(seq.load(SeqCst) == 0x16, "after the userspace release: {:#x}", seq.load(SeqCst));
            ensure!(ok!(d.read(5)) == 7, "SWAP_SET applied after the wait");
            Ok(())
        },
    );

    report.run(
        "a slot held odd through the mapping: ops sleep (little CPU), then ETIMEDOUT by the deadline",
        || {
            let (d, l, m) = fresh_mapped("hd-stuck", 8, OP_XOR, 0)?;
            ok!(d.load(2, 0x55));
            let seq = m.word(l.seq_off + 2 * 8);
            let even = seq.load(SeqCst);
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() } as u64;
            seq.store((pid << 32) | (even + 1), SeqCst); // a live userspace holder that never unlocks
            let deadline = Duration::from_millis(param("slot_wait_ms", 1000));
            type Op = fn(&Dev) -> Result<(), i32>;
            let ops: [(&str, Op); 5] = [
                ("READ", |d| d.read(2).map(|_| ())),
                ("READ again", |d| d.read(2).map(|_| ())),
                ("LOAD", |d| d.load(2, 1)),
                ("SWAP", |d| d.swap(2).map(|_| ())),
                ("SWAP_SET", |d| d.swap_set(2, 1).map(|_| ())),
            ];
            let results: Vec<Result<(), String>> = std::thread::scope(|s| {
                let threads: Vec<_> = ops
                    .iter()
                    .map(|&(what, op)| {
                        s.spawn(move || -> Result<(), String> {
                            let d = ok!(Dev::open());
                            ok!(d.attach("hd-stuck", RW));
                            let (t0, c0) = (Instant::now(), thread_cpu());
                            let r = op(&d);
                            let (wall, cpu) = (t0.elapsed(), thread_cpu() - c0);
                            ensure!(r == Err(libc::ETIMEDOUT), "{what}: {r:?}, want ETIMEDOUT");
                            ensure!(
                                wall >= deadline.mul_f64(0.9) && wall < deadline * 10,
                                "{what}: ETIMEDOUT after {wall:?}, deadline {deadline:?}"
                            );
                            ensure!(cpu * 4 < wall, "{what} spun: {cpu:?} of CPU in {wall:?}");
                            println!("vmtest: {what} on a held slot: ETIMEDOUT after {wall:?}, {cpu:?} CPU");
                            Ok(())
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().unwrap_or_else(|_| Err("thread panicked".into())))
                    .collect()
            });
            for r in results {
                r?;
            }
            let mut b = vec![e(KIND_ACCUM, 0, 1), e(KIND_READ, 2, 0), e(KIND_ACCUM, 1, 1)];
            let mut req = Batch { entries: b.as_mut_ptr() as u64, count: 3, done: 9 };
            fails_with!(d.raw(IOCTL_BATCH, &mut req as *mut _ as usize), libc::ETIMEDOUT);
            ensure!(
                req.done == 1 && b[1].status == -libc::ETIMEDOUT,
                "batch stopped at the held slot: {req:?} {b:?}"
            );
            ensure!(ok!(d.read(0)) == 1 && ok!(d.read(1)) == 0, "entries before applied, after not");
            let t0 = Instant::now();
            ok!(d.accum(2, 0x0F)); // ACCUM never waits
            ensure!(t0.elapsed() < deadline / 2, "ACCUM waited");
            ok!(d.read(3)); // other slots are unaffected
            seq.store((even + 2) & SEQ_COUNTER_MASK, SeqCst); // the holder releases
            ensure!(ok!(d.read(2)) == 0x5A, "state intact after the release");
            Ok(())
        },
    );

    report.run("SWAP_SET: returns the state, sets the reference, resets accumulator and shards", || {
        let (d, l, m) = fresh_mapped("hd-swapset", 8, OP_ADD, 1)?;
        ok!(d.load(1, 10));
        ok!(d.accum(1, 5));
        m.word(l.shard_off + 8).store(7, SeqCst);
        ensure!(ok!(d.swap_set(1, 100)) == 22, "returned state");
        ensure!(ok!(d.read(1)) == 100, "new reference");
        ensure!(
            m.word(l.ref_off + 8).load(SeqCst) == 100 && m.word(l.acc_off + 8).load(SeqCst) == 0,
            "words"
        );
        ensure!(m.word(l.base_off + 8).load(SeqCst) == 7, "shard rebased");
        ok!(d.accum(1, 3));
        ensure!(ok!(d.read(1)) == 103, "later ACCUMs on top of the new reference");
        let mut b = vec![e(KIND_ACCUM, 2, 4), e(KIND_SWAP_SET, 2, 50), e(KIND_READ, 2, 0)];
        ensure!(ok!(d.batch(&mut b)) == 3, "batch");
        ensure!(b[1].value == 4 && b[2].value == 50, "batch values {b:?}");
        fails_with!(d.swap_set(8, 0), libc::EINVAL);
        let ro = ok!(Dev::open());
        ok!(ro.attach("hd-swapset", ACCESS_READ));
        fails_with!(ro.swap_set(1, 0), libc::EACCES);
        let mut b = vec![e(KIND_SWAP_SET, 1, 0)];
        fails_with!(ro.batch(&mut b), libc::EACCES);
        ensure!(ok!(d.read(1)) == 103, "refused SWAP_SETs changed nothing");
        let s = ok!(d.stats());
        ensure!(s.swaps == 2, "SWAP_SETs counted as swaps: {s:?}");
        Ok(())
    });

    report.run("SWAP_SET under concurrent ACCUMs: every delta counted exactly once", || {
        let (d, l, m) = fresh_mapped("hd-swapset-stress", 4, OP_ADD, 0)?;
        const PER: u64 = 20_000;
        const REF: u64 = 1_000_000;
        let done = std::sync::atomic::AtomicBool::new(false);
        let taken = std::thread::scope(|s| -> Result<u64, String> {
            let mut producers = Vec::new();
            for t in 0..3u64 {
                let (m, d) = (&m, &d);
                producers.push(s.spawn(move || -> Result<(), String> {
                    for k in 0..PER {
                        if (k + t) % 2 == 0 {
                            ok!(d.accum(0, 1));
                        } else {
                            m.word(l.acc_off).fetch_add(1, SeqCst);
                        }
                    }
                    Ok(())
                }));
            }
            let swapper = s.spawn(|| -> Result<u64, String> {
                let mut prev = 0u64;
                let mut sum = 0u64;
                let mut rounds = 0;
                while !done.load(SeqCst) || rounds < 10 {
                    let state = ok!(d.swap_set(0, REF));
                    sum = sum.wrapping_add(state.wrapping_sub(prev));
                    prev = REF;
                    rounds += 1;
                }
                Ok(sum)
            });
            for p in producers {
                p.join().map_err(|_| "producer panicked".to_owned())??;
            }
            done.store(true, SeqCst);
            swapper.join().map_err(|_| "swapper panicked".to_owned())?
        })?;
        let rest = ok!(d.read(0)).wrapping_sub(REF);
        ensure!(taken.wrapping_add(rest) == 3 * PER, "taken {taken} + left {rest} != {}", 3 * PER);
        Ok(())
    });

    report.run(
        "a reply that cannot be written: BATCH, BANK_OPEN, SWAP, SWAP_SET change nothing (EFAULT)",
        || {
            let d = fresh("hd-ro-reply", 4, OP_ADD, 0)?;
            ok!(d.load(0, 10));
            // BATCH entries read-only: nothing applied.
            let entries = ok!(RoPage::of(&[e(KIND_ACCUM, 0, 5), e(KIND_READ, 0, 0)]));
            let mut req = Batch { entries: entries.addr() as u64, count: 2, done: 0 };
            fails_with!(d.raw(IOCTL_BATCH, &mut req as *mut _ as usize), libc::EFAULT);
            ensure!(ok!(d.read(0)) == 10, "BATCH with read-only entries applied its ACCUM");
            // BATCH request read-only (entries writable): nothing applied.
            let mut b = vec![e(KIND_ACCUM, 0, 5)];
            let req = ok!(RoPage::of(&Batch { entries: b.as_mut_ptr() as u64, count: 1, done: 0 }));
            fails_with!(d.raw(IOCTL_BATCH, req.addr()), libc::EFAULT);
            ensure!(ok!(d.read(0)) == 10, "BATCH with a read-only request applied its ACCUM");
            // SWAP_SET and SWAP with a read-only request: the slot is unchanged.
            ok!(d.accum(0, 1));
            let op = ok!(RoPage::of(&SlotOp { slot: 0, value: 99 }));
            fails_with!(d.raw(IOCTL_SWAP_SET, op.addr()), libc::EFAULT);
            fails_with!(d.raw(IOCTL_SWAP, op.addr()), libc::EFAULT);
            ensure!(op.get::<SlotOp>().value == 99, "read-only page written");
            ensure!(ok!(d.read(0)) == 11, "SWAP_SET with a read-only reply changed the slot");
            ensure!(ok!(d.stats()).swaps == 0, "refused swaps counted");
            // BANK_OPEN with a read-only reply: the fd stays unattached.
            let fd = ok!(Dev::open());
            let open = ok!(RoPage::of(&BankOpen {
                name: crate::dev::name("hd-ro-reply"),
                access: RW,
                op: 0,
                slots: 0,
                map_size: 0
            }));
            fails_with!(fd.raw(IOCTL_BANK_OPEN, open.addr()), libc::EFAULT);
            fails_with!(fd.read(0), libc::EBADFD);
            ok!(fd.attach("hd-ro-reply", RW));
            ensure!(ok!(fd.read(0)) == 11, "attached after the failed open");
            Ok(())
        },
    );

    report.run("a reply that cannot be written: REGION_WATCH makes no region, REGION_CHECK keeps what the last check saw", || {
        let d = ok!(Dev::open());
        let page = ok!(RoPage::of(&[0u8; 16]));
        // Our own page to watch: one anonymous page written with 'A'.
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), 4096, PROT_READ | PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        ensure!(p != libc::MAP_FAILED, "mmap");
        let target = p as u64;
        // SAFETY: writes our own page.
        unsafe { std::ptr::write_bytes(p as *mut u8, b'A', 4096) };
        let w = RegionWatch { pid: 0, flags: 0, start: target, len: 4096, id: 0, reserved: 0, unreadable: 0 };
        let ro = ok!(RoPage::of(&w));
        fails_with!(d.raw(IOCTL_REGION_WATCH, ro.addr()), libc::EFAULT);
        let mut w2 = w;
        ok!(d.raw(IOCTL_REGION_WATCH, &mut w2 as *mut _ as usize));
        ensure!(w2.id == 1, "the failed REGION_WATCH left a region: next id {}", w2.id);
        // SAFETY: writes our own page.
        unsafe { std::ptr::write_bytes(p as *mut u8, b'B', 4096) };
        let c = RegionCheck { id: w2.id, ..Default::default() };
        let ro = ok!(RoPage::of(&c));
        fails_with!(d.raw(IOCTL_REGION_CHECK, ro.addr()), libc::EFAULT);
        let mut id = RegionId { id: w2.id, reserved: 0 };
        ok!(d.raw(IOCTL_REGION_CHECKPOINT, &mut id as *mut _ as usize));
        let mut c2 = c;
        ok!(d.raw(IOCTL_REGION_CHECK, &mut c2 as *mut _ as usize));
        ensure!(c2.changed == 1, "the failed check became the baseline: changed {}", c2.changed);
        drop(page);
        // SAFETY: unmaps our page.
        unsafe { libc::munmap(p, 4096) };
        Ok(())
    });
}

/// REGION_WATCH of another process with `/proc/PID/mem` replaced by a bind mount of a file that
/// needs less access (`environ`): the module must not accept it (finding 9 of issue 9). Root
/// makes the mount here; an unprivileged user could in its own user and mount namespace.
pub fn run_proc_mem(report: &mut Report) {
    report.run("REGION_WATCH refuses /proc/PID/mem redirected by a bind mount of /proc/PID/environ", || {
        // SAFETY: fork; the child only sleeps until it is killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        ensure!(pid > 0, "fork: errno {}", errno());
        let result = (|| -> Result<(), String> {
            let d = ok!(Dev::open());
            let watch = |d: &Dev| {
                let mut w = RegionWatch {
                    pid,
                    flags: 0,
                    start: 0x10000,
                    len: 4096,
                    id: 0,
                    reserved: 0,
                    unreadable: 0,
                };
                d.raw(IOCTL_REGION_WATCH, &mut w as *mut _ as usize).map(|_| ())
            };
            ok!(watch(&d));
            let src = std::ffi::CString::new(format!("/proc/{pid}/environ")).unwrap();
            let dst = std::ffi::CString::new(format!("/proc/{pid}/mem")).unwrap();
            // SAFETY: bind mount between two NUL-terminated paths.
            let r = unsafe {
                libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null())
            };
            ensure!(r == 0, "bind mount: errno {}", errno());
            let redirected = watch(&d);
            // SAFETY: unmounts what we mounted.
            unsafe { libc::umount(dst.as_ptr()) };
            fails_with!(redirected, libc::EPERM);
            ok!(watch(&d));
            Ok(())
        })();
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        result
    });
}

/// Limits (the harness sets max_total_bytes, max_user_bytes and max_banks_per_user small).
pub fn run_limits(report: &mut Report) {
    report.run(
        "accounting: create max, attach, destroy, repeat is refused; freed with the last fd or mapping",
        || {
            let d = ok!(Dev::open());
            let i = ok!(d.info());
            let per = BankLayout::new(i.max_slots, 0).unwrap().total_size;
            let fit = (i.max_total_bytes - i.used_bytes) / per;
            let mut kept = Vec::new();
            loop {
                let n = format!("acct-{}", kept.len());
                match d.create(&n, i.max_slots, OP_XOR, 0o600, 0) {
                    Ok(()) => {}
                    Err(libc::ENOMEM) => break,
                    Err(e) => return Err(format!("create {n}: {}", crate::check::errname(e))),
                }
                let fd = ok!(Dev::open());
                ok!(fd.attach(&n, RW));
                ok!(d.destroy(&n));
                kept.push(fd);
                ensure!(
                    kept.len() as u64 <= fit,
                    "{} destroyed-but-attached banks of {per} bytes fit",
                    kept.len()
                );
            }
            ensure!(kept.len() as u64 == fit, "{} cycles, {fit} fit", kept.len());
            let now = ok!(d.info());
            ensure!(now.used_bytes == i.used_bytes + fit * per && now.bank_count == i.bank_count, "{now:?}");
            drop(kept);
            ensure!(ok!(d.info()).used_bytes == i.used_bytes, "memory returned with the fds");
            // A mapping keeps the charge after its fd is closed.
            ok!(d.create("acct-map", 100, OP_XOR, 0o600, 0));
            let fd = ok!(Dev::open());
            let att = ok!(fd.attach("acct-map", RW));
            let map = ok!(fd.map(att.map_size as usize, 0, PROT_READ, MAP_SHARED));
            drop(fd);
            ok!(d.destroy("acct-map"));
            ensure!(ok!(d.info()).used_bytes == i.used_bytes + att.map_size, "charged while mapped");
            drop(map);
            ensure!(ok!(d.info()).used_bytes == i.used_bytes, "returned with the mapping");
            Ok(())
        },
    );

    report.run("accounting: banks per uid count destroyed banks still attached", || {
        let per_user = ok!(ok!(Dev::open()).info()).max_banks_per_user;
        in_child(become_user, || {
            let d = ok!(Dev::open());
            let mut kept = Vec::new();
            for k in 0..per_user {
                let n = format!("acct-u-{k}");
                ok!(d.create(&n, 1, OP_XOR, 0o600, 0));
                let fd = ok!(Dev::open());
                ok!(fd.attach(&n, RW));
                ok!(d.destroy(&n));
                kept.push(fd);
            }
            fails_with!(d.create("acct-u-over", 1, OP_XOR, 0o600, 0), libc::ENOSPC);
            drop(kept);
            ok!(d.create("acct-u-over", 1, OP_XOR, 0o600, 0));
            ok!(d.destroy("acct-u-over"));
            Ok(())
        })
    });

    report.run("module parameters of the kernel command line reach the module", || {
        let i = ok!(ok!(Dev::open()).info());
        let want = |n: &str| param(n, u64::MAX);
        ensure!(
            i.max_slots == want("max_slots")
                && i.max_total_bytes == want("max_total_bytes")
                && u64::from(i.max_banks_per_user) == want("max_banks_per_user"),
            "GET_INFO {i:?} against atomik.* of the command line: {}",
            crate::system::boot_params()
        );
        Ok(())
    });

    report.run("per-uid byte limit (max_user_bytes from the command line): ENOMEM for a uid, CAP_SYS_RESOURCE exempt", || {
        let limit = param("max_user_bytes", 64 << 20);
        ensure!(limit < 64 << 20, "the harness sets a low atomik.max_user_bytes ({limit})");
        per_user_limit(limit)
    });
}

fn per_user_limit(user_limit: u64) -> Result<(), String> {
    {
        let root = ok!(Dev::open());
        let i = ok!(root.info());
        ensure!(user_limit < i.max_total_bytes, "harness sets max_user_bytes below max_total_bytes");
        let per = BankLayout::new(i.max_slots, 0).unwrap().total_size;
        in_child(become_user, || {
            let d = ok!(Dev::open());
            let mut made = 0u64;
            loop {
                match d.create(&format!("acct-b-{made}"), i.max_slots, OP_XOR, 0o600, 0) {
                    Ok(()) => made += 1,
                    Err(libc::ENOMEM) => break,
                    Err(e) => return Err(format!("create: {}", crate::check::errname(e))),
                }
                ensure!(made * per <= user_limit, "{made} banks of {per} bytes over {user_limit}");
            }
            ensure!((made + 1) * per > user_limit, "stopped at {made} banks of {per}, limit {user_limit}");
            for k in 0..made {
                ok!(d.destroy(&format!("acct-b-{k}")));
            }
            Ok(())
        })?;
        // Root (CAP_SYS_RESOURCE) goes past it, up to max_total_bytes.
        let mut made = 0u64;
        while (made + 1) * per <= user_limit + per {
            ok!(root.create(&format!("acct-r-{made}"), i.max_slots, OP_XOR, 0o600, 0));
            made += 1;
        }
        for k in 0..made {
            ok!(root.destroy(&format!("acct-r-{k}")));
        }
        Ok(())
    }
}
