//! The C example that uses only atomik.h (libatomik/examples/c/mapped.c, built statically by
//! extras.sh) against /dev/atomik: it attaches with BANK_OPEN, maps the bank, ACCUMs through
//! the mapping (marking the dirty card, as the kernel's own ACCUM does) and READs with the
//! seqlock, exactly beside concurrent ACCUM ioctls on the same slot.

use crate::check::Report;
use crate::dev::Dev;
use atomik::abi::*;
use std::process::Command;

const BIN: &str = "/bin/atomik-mapped";

fn mapped(args: &[&str]) -> Result<(i32, String), String> {
    let out = Command::new(BIN).args(args).output().map_err(|e| format!("{BIN}: {e}"))?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

fn hex(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s:?}: {e}"))
}

pub fn run(report: &mut Report) {
    report.run(
        "C example (atomik.h only) on /dev/atomik: mapped ACCUM and READ, cards, exact beside ioctls",
        || {
            let d = ok!(Dev::open());
            let _ = d.destroy("c-mapped");
            ok!(d.create("c-mapped", 2048, OP_ADD, 0o600, 0));
            let att = ok!(d.attach("c-mapped", ACCESS_READ | ACCESS_WRITE));
            let map = ok!(d.map(att.map_size as usize, 0, libc::PROT_READ, libc::MAP_SHARED));
            let h = map.header();
            let card = |c: u64| map.word(h.card_off + 8 * c).load(std::sync::atomic::Ordering::SeqCst);
            // Alone: its ACCUMs mark the slot's card and no other.
            let (code, out) = mapped(&["--device", "c-mapped", "1500", "3", "1000"])?;
            ensure!(code == 0 && hex(&out)? == 3000, "C example alone: exit {code}, printed {out:?}");
            ensure!(
                card(1500 / 512) != 0 && card(0) == 0,
                "cards after the C ACCUMs: slot's {}, card 0 {}",
                card(1500 / 512),
                card(0)
            );
            // Beside ioctl ACCUMs on the same slot: every ACCUM counted once.
            let worker = std::thread::spawn(|| mapped(&["--device", "c-mapped", "1500", "3", "100000"]));
            for _ in 0..100_000 {
                ok!(d.accum(1500, 2));
            }
            let (code, out) = worker.join().map_err(|_| "C example thread panicked".to_owned())??;
            ensure!(code == 0, "C example: exit {code}");
            let seen = hex(&out)?;
            ensure!((303_000..=503_000).contains(&seen), "the C READ saw {seen}");
            ensure!(ok!(d.read(1500)) == 503_000, "C and ioctl ACCUMs: {}", ok!(d.read(1500)));
            // A slot out of range is refused before anything is written; so is a missing bank.
            let (code, _) = mapped(&["--device", "c-mapped", "2048", "1", "1"])?;
            ensure!(code == 1, "slot out of range: exit {code}");
            let (code, _) = mapped(&["--device", "c-no-such-bank", "0", "1", "1"])?;
            ensure!(code == 1, "missing bank: exit {code}");
            ensure!(ok!(d.read(1500)) == 503_000, "a refused run changed the slot");
            drop(map);
            ok!(d.destroy("c-mapped"));
            Ok(())
        },
    );
}
