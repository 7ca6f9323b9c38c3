//! ioctl semantics: every command's documented result and errno, mmap of a bank, shards, stats,
//! banks outliving their creator, and the limits set as module parameters.

use crate::check::Report;
use crate::dev::{name, Dev};
use crate::system::in_child;
use atomik::abi::*;
use libc::{MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use std::sync::atomic::Ordering::SeqCst;

const RW: u32 = ACCESS_READ | ACCESS_WRITE;

/// A fresh bank attached read-write on its own fd.
pub fn fresh(n: &str, slots: u64, op: u32, shards: u32) -> Result<Dev, String> {
    let d = ok!(Dev::open());
    let _ = d.destroy(n);
    ok!(d.create(n, slots, op, 0o600, shards));
    ok!(d.attach(n, RW));
    Ok(d)
}

pub fn run(report: &mut Report) {
    report.run("GET_INFO reports ABI, features and limits", || {
        let d = ok!(Dev::open());
        let i = ok!(d.info());
        ensure!(i.abi_version == ABI_VERSION, "abi {}", i.abi_version);
        ensure!(
            i.features & (FEATURE_MMAP | FEATURE_BATCH | FEATURE_STATS)
                == FEATURE_MMAP | FEATURE_BATCH | FEATURE_STATS,
            "features {:#x}",
            i.features
        );
        ensure!(i.features & FEATURE_FPGA == 0, "FPGA bit set without FPGA");
        ensure!(i.max_batch == BATCH_MAX && i.max_slots > 0 && i.max_total_bytes > 0, "{i:?}");
        let before = i.bank_count;
        ok!(d.create("info-count", 10, OP_XOR, 0o600, 0));
        let after = ok!(d.info());
        ensure!(after.bank_count == before + 1, "bank_count {} -> {}", before, after.bank_count);
        ensure!(after.used_bytes >= i.used_bytes + BankLayout::new(10, 0).unwrap().total_size, "used_bytes");
        ok!(d.destroy("info-count"));
        ensure!(ok!(d.info()).bank_count == before, "bank_count after destroy");
        Ok(())
    });

    report.run("XOR bank: LOAD, ACCUM, READ, SWAP", || {
        let d = fresh("sem-xor", 8, OP_XOR, 0)?;
        ok!(d.load(3, 0xCAFEBABE));
        ensure!(ok!(d.read(3)) == 0xCAFEBABE, "read after load");
        ok!(d.accum(3, 0x0000FF00));
        ok!(d.accum(3, 0x00FF0000));
        ensure!(ok!(d.read(3)) == 0xCA0145BE, "read after two accums");
        ensure!(ok!(d.swap(3)) == 0xCA0145BE, "swap returns state");
        ensure!(ok!(d.read(3)) == 0xCA0145BE, "state unchanged by swap");
        ensure!(ok!(d.is_clean(3)), "IS_CLEAN after SWAP");
        ok!(d.accum(3, 0xCA0145BE));
        ensure!(ok!(d.read(3)) == 0, "xor with itself is identity");
        ensure!(!ok!(d.is_clean(3)), "IS_CLEAN after an ACCUM");
        ok!(d.accum(3, 0xCA0145BE));
        ensure!(ok!(d.is_clean(3)), "IS_CLEAN once the ACCUMs cancel out");
        fails_with!(d.is_clean(8), libc::EINVAL);
        ok!(d.accum(3, 5));
        ok!(d.load(3, 9));
        ensure!(ok!(d.is_clean(3)), "IS_CLEAN after LOAD");
        ensure!(ok!(d.read(3)) == 9, "load discards the accumulator");
        ensure!(ok!(d.read(0)) == 0 && ok!(d.read(7)) == 0, "other slots untouched");
        Ok(())
    });

    report.run("ADD bank wraps and SWAP resets the accumulator", || {
        let d = fresh("sem-add", 4, OP_ADD, 0)?;
        let o = ok!(Dev::open());
        let att = ok!(o.attach("sem-add", RW));
        ensure!(att.op == OP_ADD && att.slots == 4, "open reply {att:?}");
        ensure!(att.map_size == BankLayout::new(4, 0).unwrap().total_size, "map_size {}", att.map_size);
        ok!(d.load(0, u64::MAX));
        ok!(d.accum(0, 2));
        ensure!(ok!(o.read(0)) == 1, "wrapping add");
        ok!(o.accum(0, u64::MAX)); // -1
        ensure!(ok!(d.swap(0)) == 0, "swap");
        let m = ok!(d.map(att.map_size as usize, 0, PROT_READ, MAP_SHARED));
        let l = BankLayout::new(4, 0).unwrap();
        ensure!(
            m.word(l.acc_off).load(SeqCst) == 0 && m.word(l.ref_off).load(SeqCst) == 0,
            "acc reset, ref = state"
        );
        Ok(())
    });

    report.run("errors: EEXIST, EINVAL, ENOENT, EBADFD, EBUSY, ENOTTY", || {
        let d = ok!(Dev::open());
        let _ = d.destroy("sem-err");
        ok!(d.create("sem-err", 4, OP_XOR, 0o600, 0));
        fails_with!(d.create("sem-err", 4, OP_XOR, 0o600, 0), libc::EEXIST);
        for bad in ["", ".hidden", "a/b", "sp ace", "x\u{e9}"] {
            fails_with!(d.create(bad, 4, OP_XOR, 0o600, 0), libc::EINVAL);
        }
        let mut unterminated =
            BankCreate { name: [b'a'; NAME_LEN], slots: 1, op: 0, mode: 0o600, shards: 0, flags: 0 };
        fails_with!(d.raw(IOCTL_BANK_CREATE, &mut unterminated as *mut _ as usize), libc::EINVAL);
        fails_with!(d.create("sem-e0", 0, OP_XOR, 0o600, 0), libc::EINVAL);
        fails_with!(d.create("sem-e1", 4, 7, 0o600, 0), libc::EINVAL);
        fails_with!(d.create("sem-e2", 4, OP_XOR, 0o1777, 0), libc::EINVAL);
        fails_with!(d.create("sem-e3", 4, OP_XOR, 0o600, MAX_SHARDS as u32 + 1), libc::EINVAL);
        let mut flagged =
            BankCreate { name: name("sem-e4"), slots: 1, op: 0, mode: 0o600, shards: 0, flags: 2 };
        fails_with!(d.raw(IOCTL_BANK_CREATE, &mut flagged as *mut _ as usize), libc::EINVAL);
        // No FPGA is bound in this VM (run.sh --fpga has one).
        flagged.flags = BANK_CREATE_FPGA;
        fails_with!(d.raw(IOCTL_BANK_CREATE, &mut flagged as *mut _ as usize), libc::ENODEV);
        fails_with!(d.attach("sem-none", RW), libc::ENOENT);
        fails_with!(d.destroy("sem-none"), libc::ENOENT);
        fails_with!(d.read(0), libc::EBADFD);
        fails_with!(d.accum(0, 1), libc::EBADFD);
        fails_with!(d.stats(), libc::EBADFD);
        fails_with!(d.map(4096, 0, PROT_READ, MAP_SHARED), libc::EBADFD);
        fails_with!(d.attach("sem-err", 0), libc::EINVAL);
        fails_with!(d.attach("sem-err", 4), libc::EINVAL);
        ok!(d.attach("sem-err", RW));
        fails_with!(d.attach("sem-err", RW), libc::EBUSY);
        fails_with!(d.read(4), libc::EINVAL);
        fails_with!(d.load(u64::MAX, 1), libc::EINVAL);
        fails_with!(d.swap(1 << 40), libc::EINVAL);
        fails_with!(d.raw(ioc(IOC_READ, 0x7f, 16), 0), libc::ENOTTY);
        fails_with!(d.raw(IOCTL_READ + (1 << 16), 0), libc::ENOTTY); // right nr, wrong size
        fails_with!(d.raw(0x5401, 0), libc::ENOTTY); // TCGETS
        fails_with!(d.raw(IOCTL_READ, 0), libc::EFAULT);
        fails_with!(d.raw(IOCTL_GET_INFO, 0xffff_8880_0000_0000), libc::EFAULT);
        ok!(d.destroy("sem-err"));
        Ok(())
    });

    report.run("BATCH: results, validation before apply, E2BIG", || {
        let d = fresh("sem-batch", 16, OP_XOR, 0)?;
        let e = |kind, slot, value| BatchEntry { kind, status: 0, slot, value };
        let mut b = vec![
            e(KIND_LOAD, 1, 0xF0),
            e(KIND_ACCUM, 1, 0x0F),
            e(KIND_READ, 1, 0),
            e(KIND_SWAP, 1, 0),
            e(KIND_ACCUM, 1, 1),
            e(KIND_READ, 1, 0),
        ];
        ensure!(ok!(d.batch(&mut b)) == 6, "done");
        ensure!(b[2].value == 0xFF && b[3].value == 0xFF && b[5].value == 0xFE, "values {:?}", b);
        ensure!(b.iter().all(|x| x.status == 0), "statuses");
        let mut bad = vec![e(KIND_ACCUM, 2, 1), e(KIND_ACCUM, 16, 1), e(9, 2, 1)];
        fails_with!(d.batch(&mut bad), libc::EINVAL);
        ensure!(
            bad[0].status == 0 && bad[1].status == -libc::EINVAL && bad[2].status == -libc::EINVAL,
            "statuses {:?}",
            bad
        );
        ensure!(ok!(d.read(2)) == 0, "nothing applied from a rejected batch");
        let mut big = Batch { entries: b.as_mut_ptr() as u64, count: BATCH_MAX + 1, done: 0 };
        fails_with!(d.raw(IOCTL_BATCH, &mut big as *mut _ as usize), libc::E2BIG);
        let mut unmapped = Batch { entries: 0x10, count: 4, done: 0 };
        fails_with!(d.raw(IOCTL_BATCH, &mut unmapped as *mut _ as usize), libc::EFAULT);
        let mut empty: Vec<BatchEntry> = Vec::new();
        ensure!(ok!(d.batch(&mut empty)) == 0, "empty batch");
        let mut full: Vec<BatchEntry> =
            (0..BATCH_MAX as u64).map(|i| e(KIND_ACCUM, i % 16, 1 << (i % 64))).collect();
        ensure!(ok!(d.batch(&mut full)) == BATCH_MAX, "full batch");
        Ok(())
    });

    report.run("mmap: header, layout, ACCUM through memory, bounds", || {
        let d = fresh("sem-map", 1000, OP_ADD, 0)?;
        let l = BankLayout::new(1000, 0).unwrap();
        let m = ok!(d.map(l.total_size as usize, 0, PROT_READ | PROT_WRITE, MAP_SHARED));
        let h = m.header();
        let v = h.validate(l.total_size).map_err(|e| format!("header: {e:?}"))?;
        ensure!(v == l && h.op == OP_ADD && h.name[..7] == *b"sem-map", "header {:?}", v);
        ok!(d.load(999, 100));
        m.word(l.acc_off + 999 * 8).fetch_add(23, SeqCst);
        ensure!(ok!(d.read(999)) == 123, "ioctl READ sees mmap ACCUM");
        ok!(d.accum(999, 1));
        ensure!(m.word(l.acc_off + 999 * 8).load(SeqCst) == 24, "mapping sees ioctl ACCUM");
        ensure!(ok!(d.swap(999)) == 124 && m.word(l.ref_off + 999 * 8).load(SeqCst) == 124, "swap");
        ensure!(m.word(l.seq_off + 999 * 8).load(SeqCst) == 4, "seq advanced by 2 per writer");
        let pages = (l.total_size / 4096) as usize;
        fails_with!(d.map((pages + 1) * 4096, 0, PROT_READ, MAP_SHARED), libc::EINVAL);
        fails_with!(d.map(4096, pages, PROT_READ, MAP_SHARED), libc::EINVAL);
        fails_with!(d.map(4096, 1 << 30, PROT_READ, MAP_SHARED), libc::EINVAL);
        fails_with!(d.map(4096, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE), libc::EINVAL);
        let tail = ok!(d.map(4096, pages - 1, PROT_READ, MAP_SHARED));
        drop(tail);
        ensure!(ok!(d.stats()).mmaps == 2, "mmaps counted");
        Ok(())
    });

    report.run("shards: READ folds them, SWAP and LOAD rebase them", || {
        let d = fresh("sem-shard", 64, OP_ADD, 2)?;
        let l = BankLayout::new(64, 2).unwrap();
        let m = ok!(d.map(l.total_size as usize, 0, PROT_READ | PROT_WRITE, MAP_SHARED));
        let shard = |k: u64, i: u64| m.word(l.shard_off + k * l.shard_stride + i * 8);
        shard(0, 5).store(10, SeqCst);
        shard(1, 5).store(7, SeqCst);
        ensure!(!ok!(d.is_clean(5)), "IS_CLEAN sees the shards' deltas");
        ok!(d.accum(5, 1));
        ensure!(ok!(d.read(5)) == 18, "read folds shards");
        ensure!(ok!(d.swap(5)) == 18, "swap folds shards");
        ensure!(ok!(d.is_clean(5)), "IS_CLEAN after SWAP rebased the shards");
        ensure!(m.word(l.base_off + 5 * 8).load(SeqCst) == 10, "base rebased");
        shard(0, 5).store(15, SeqCst);
        ensure!(ok!(d.read(5)) == 23, "only the new part counts");
        ok!(d.load(5, 1));
        ensure!(ok!(d.read(5)) == 1, "load discards shard deltas");
        Ok(())
    });

    report.run("a slot left locked by a dead writer: LOAD/READ/SWAP wait interruptibly (EINTR)", || {
        let d = fresh("sem-stuck", 4, OP_XOR, 0)?;
        let l = BankLayout::new(4, 0).unwrap();
        let m = ok!(d.map(l.total_size as usize, 0, PROT_READ | PROT_WRITE, MAP_SHARED));
        ok!(d.load(1, 7));
        let seq = m.word(l.seq_off + 8);
        let even = seq.load(SeqCst);
        seq.store(even + 1, SeqCst); // what a writer killed inside its critical section leaves
        extern "C" fn on_alarm(_: i32) {}
        // SAFETY: installs a no-op SIGALRM handler without SA_RESTART, then arms a timer.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as extern "C" fn(i32) as usize;
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        }
        for (what, call) in [
            ("READ", Box::new(|| d.read(1).map(|_| ())) as Box<dyn Fn() -> Result<(), i32>>),
            ("LOAD", Box::new(|| d.load(1, 9))),
            ("SWAP", Box::new(|| d.swap(1).map(|_| ()))),
        ] {
            // SAFETY: a one-shot 300 ms timer for this process.
            unsafe {
                let t = libc::itimerval {
                    it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
                    it_value: libc::timeval { tv_sec: 0, tv_usec: 300_000 },
                };
                libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
            }
            match call() {
                Err(libc::EINTR) => {}
                other => return Err(format!("{what} on a locked slot: {other:?}, want EINTR")),
            }
        }
        ok!(d.accum(1, 1)); // ACCUM never waits
        ok!(d.read(0)); // other slots are unaffected
        seq.store(even, SeqCst);
        ensure!(ok!(d.read(1)) == 6, "state intact after the lock is released");
        Ok(())
    });

    report.run("stats count ops by kind", || {
        let d = fresh("sem-stats", 4, OP_XOR, 0)?;
        ok!(d.load(0, 1));
        ok!(d.accum(0, 1));
        ok!(d.accum(0, 1));
        ok!(d.read(0));
        ok!(d.swap(0));
        let mut b = vec![BatchEntry { kind: KIND_ACCUM, status: 0, slot: 1, value: 1 }; 3];
        ok!(d.batch(&mut b));
        let s = ok!(d.stats());
        ensure!(s.loads == 1 && s.accums == 5 && s.reads == 1 && s.swaps == 1 && s.batches == 1, "{s:?}");
        ensure!(s.slots == 4 && s.uid == 0 && s.mode == 0o600 && s.op == OP_XOR, "{s:?}");
        let fdinfo =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", d.fd)).map_err(|e| e.to_string())?;
        ensure!(
            fdinfo.contains("atomik-bank:\tsem-stats") && fdinfo.contains("accum 5 read 1 swap 1 batch 1"),
            "fdinfo: {fdinfo}"
        );
        Ok(())
    });

    report.run("racing creates of one name: exactly one wins, the rest get EEXIST", || {
        let d = ok!(Dev::open());
        // As many names as root may own at once, less a margin for banks other suites keep
        // (the harness sets max_banks_per_user small).
        let names = ok!(d.info()).max_banks_per_user.saturating_sub(8).min(40);
        ensure!(names >= 8, "max_banks_per_user too small for the race");
        for n in 0..names {
            let _ = d.destroy(&format!("race-{n}"));
        }
        let racers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || -> Result<u32, String> {
                    let d = ok!(Dev::open());
                    let mut won = 0;
                    for n in 0..names {
                        match d.create(&format!("race-{n}"), 512, OP_XOR, 0o600, 0) {
                            Ok(()) => won += 1,
                            Err(libc::EEXIST) => {}
                            Err(e) => return Err(format!("race-{n}: {}", crate::check::errname(e))),
                        }
                    }
                    Ok(won)
                })
            })
            .collect();
        let joined: Vec<_> = racers.into_iter().map(|r| r.join()).collect();
        let before = ok!(d.info());
        // Destroy what was made whatever the outcome, so a failure here does not leave banks
        // that make every later suite's creates fail with ENOSPC.
        let destroyed = (0..names).filter(|n| d.destroy(&format!("race-{n}")).is_ok()).count() as u32;
        let after = ok!(d.info());
        let mut won = 0;
        for r in joined {
            won += r.map_err(|_| "thread panicked".to_owned())??;
        }
        ensure!(
            won == names && destroyed == names,
            "{won} creates won, {destroyed} destroyed, for {names} names"
        );
        ensure!(before.bank_count - after.bank_count == names, "bank count");
        ensure!(
            before.used_bytes - after.used_bytes
                == u64::from(names) * BankLayout::new(512, 0).unwrap().total_size,
            "memory accounting"
        );
        Ok(())
    });

    report.run("banks outlive their creator; destroy keeps live mappings valid", || {
        let _ = ok!(Dev::open()).destroy("sem-life");
        in_child(
            || Ok(()),
            || {
                let d = ok!(Dev::open());
                ok!(d.create("sem-life", 8, OP_XOR, 0o600, 0));
                ok!(d.attach("sem-life", RW));
                ok!(d.load(2, 77));
                Ok(())
            },
        )?;
        let d = ok!(Dev::open());
        ok!(d.attach("sem-life", RW));
        ensure!(ok!(d.read(2)) == 77, "state kept after the creator exited");
        let l = BankLayout::new(8, 0).unwrap();
        let m = ok!(d.map(l.total_size as usize, 0, PROT_READ | PROT_WRITE, MAP_SHARED));
        ok!(ok!(Dev::open()).destroy("sem-life"));
        fails_with!(ok!(Dev::open()).attach("sem-life", RW), libc::ENOENT);
        ok!(d.accum(2, 1));
        ensure!(m.word(l.acc_off + 16).load(SeqCst) == 1 && ok!(d.read(2)) == 76, "attached fd still works");
        ok!(d.create("sem-life", 8, OP_XOR, 0o600, 0));
        let fresh_fd = ok!(Dev::open());
        ok!(fresh_fd.attach("sem-life", RW));
        ensure!(ok!(fresh_fd.read(2)) == 0, "the new bank of the same name is a different bank");
        ok!(fresh_fd.destroy("sem-life"));
        Ok(())
    });
}

/// Limits from module parameters (the harness loads the module with small ones).
pub fn run_limits(report: &mut Report) {
    report.run("limits: ENOMEM over max_slots and max_total_bytes, ENOSPC over banks per user", || {
        let d = ok!(Dev::open());
        let i = ok!(d.info());
        fails_with!(d.create("lim-slots", i.max_slots + 1, OP_XOR, 0o600, 0), libc::ENOMEM);
        fails_with!(d.create("lim-huge", MAX_SLOTS, OP_XOR, 0o600, 0), libc::ENOMEM);
        // Fill the memory limit with banks of max_slots slots, as root (no per-user limit hit
        // first: the harness sets max_banks_per_user above what fits).
        let per = BankLayout::new(i.max_slots, 0).unwrap().total_size;
        let mut made = Vec::new();
        loop {
            let n = format!("lim-mem-{}", made.len());
            match d.create(&n, i.max_slots, OP_XOR, 0o600, 0) {
                Ok(()) => made.push(n),
                Err(libc::ENOMEM) => break,
                Err(e) => return Err(format!("create {n}: {}", crate::check::errname(e))),
            }
            ensure!(made.len() < 10_000, "no memory limit");
        }
        let used = ok!(d.info()).used_bytes;
        ensure!(
            used <= i.max_total_bytes && used + per > i.max_total_bytes,
            "used {used} of {}",
            i.max_total_bytes
        );
        for n in &made {
            ok!(d.destroy(n));
        }
        ensure!(ok!(d.info()).used_bytes == i.used_bytes, "memory returned");
        let per_user = i.max_banks_per_user;
        in_child(crate::system::become_user, || {
            let d = ok!(Dev::open());
            for k in 0..per_user {
                ok!(d.create(&format!("lim-u-{k}"), 1, OP_XOR, 0o600, 0));
            }
            fails_with!(d.create("lim-u-over", 1, OP_XOR, 0o600, 0), libc::ENOSPC);
            for k in 0..per_user {
                ok!(d.destroy(&format!("lim-u-{k}")));
            }
            ok!(d.create("lim-u-again", 1, OP_XOR, 0o600, 0));
            ok!(d.destroy("lim-u-again"));
            Ok(())
        })
    });
}
