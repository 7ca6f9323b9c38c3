//! In-VM benchmark: ACCUM throughput by route, printed as ops/s and as ratios to the
//! single-ioctl route, from one run in one process (absolute numbers under TCG mean little).
//! Each route's final state is checked, so a fast wrong route fails instead of winning.

use crate::check::Report;
use crate::dev::Dev;
use atomik::abi::*;
use atomik::backend::device::DeviceBackend;
use atomik::backend::soft::SoftBackend;
use atomik::backend::Backend;
use atomik::{Bank, CreateOptions, Op};
use std::time::Instant;

const SLOTS: u64 = 1024;
const OPS: u64 = 200_000;
const BATCH: usize = 4096;

fn slot(i: u64) -> u64 {
    (i * 7) % SLOTS
}

fn time(label: &str, f: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let t = Instant::now();
    f()?;
    let rate = OPS as f64 / t.elapsed().as_secs_f64();
    println!("bench {label:<34} {rate:>14.0} ops/s");
    Ok(rate)
}

fn check_sum(read: impl Fn(u64) -> u64, label: &str) -> Result<(), String> {
    let total: u64 = (0..SLOTS).map(read).fold(0, u64::wrapping_add);
    ensure!(total == OPS, "{label}: sum of slots {total}, want {OPS}");
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("bench: ACCUM by route (ratios to single ioctl)", || {
        let dev = DeviceBackend::open_default().map_err(|e| e.to_string())?;
        let d = ok!(Dev::open());
        for n in ["bench-ioctl", "bench-batch", "bench-mmap"] {
            let _ = d.destroy(n);
        }
        ok!(d.create("bench-ioctl", SLOTS, OP_ADD, 0o600, 0));
        ok!(d.attach("bench-ioctl", ACCESS_READ | ACCESS_WRITE));
        let ioctl = time("single-ioctl ACCUM (/dev/atomik)", || {
            for i in 0..OPS {
                ok!(d.accum(slot(i), 1));
            }
            Ok(())
        })?;
        check_sum(|s| d.read(s).unwrap_or(0), "ioctl")?;

        let b = ok!(Dev::open());
        ok!(b.create("bench-batch", SLOTS, OP_ADD, 0o600, 0));
        ok!(b.attach("bench-batch", ACCESS_READ | ACCESS_WRITE));
        let mut entries = vec![BatchEntry::default(); BATCH];
        let batch = time(&format!("BATCH ioctl of {BATCH} ACCUMs"), || {
            let mut i = 0;
            while i < OPS {
                let n = (OPS - i).min(BATCH as u64) as usize;
                for (k, e) in entries[..n].iter_mut().enumerate() {
                    *e = BatchEntry { kind: KIND_ACCUM, status: 0, slot: slot(i + k as u64), value: 1 };
                }
                ensure!(ok!(b.batch(&mut entries[..n])) == n as u32, "batch");
                i += n as u64;
            }
            Ok(())
        })?;
        check_sum(|s| b.read(s).unwrap_or(0), "batch")?;

        let mapped = Bank::create_on(&dev, "bench-mmap", CreateOptions::new(SLOTS).op(Op::Add))
            .map_err(|e| e.to_string())?;
        let mmap = time("mmap atomic ACCUM (/dev/atomik)", || {
            for i in 0..OPS {
                mapped.accum(slot(i), 1).map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        check_sum(|s| mapped.read(s).unwrap_or(0), "mmap")?;

        let soft = SoftBackend::at("/dev/shm/atomik-bench");
        let soft_name = atomik::BankName::new("bench-soft").map_err(|e| e.to_string())?;
        let _ = soft.destroy(&soft_name);
        let user = Bank::create_on(&soft, "bench-soft", CreateOptions::new(SLOTS).op(Op::Add))
            .map_err(|e| e.to_string())?;
        let userspace = time("userspace default ACCUM (shm)", || {
            for i in 0..OPS {
                user.accum(slot(i), 1).map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        check_sum(|s| user.read(s).unwrap_or(0), "soft")?;

        println!(
            "bench ratios to single-ioctl ACCUM: BATCH {:.1}x, mmap {:.1}x, userspace default {:.1}x",
            batch / ioctl,
            mmap / ioctl,
            userspace / ioctl
        );
        println!("bench mmap ACCUM on /dev/atomik vs userspace default: {:.2}x", mmap / userspace);
        for n in ["bench-ioctl", "bench-batch", "bench-mmap"] {
            ok!(d.destroy(n));
        }
        Ok(())
    });
}
