//! A C program written against `atomik.h` alone (libatomik/examples/c/mapped.c) ACCUMs into a
//! bank through its mapping, concurrently with Rust ACCUMs: both see the same state, and the
//! C ACCUMs mark the dirty cards a sync daemon relies on.

use std::process::Command;

use atomik::backend::soft::SoftBackend;
use atomik::{Bank, CreateOptions, Op};

#[test]
fn a_c_program_using_only_the_header_accumulates_and_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let soft = SoftBackend::at(dir.path().join("banks"));
    let bank = Bank::create_on(&soft, "c-example", CreateOptions::new(2048).op(Op::Add)).unwrap();
    let exe = dir.path().join("mapped");
    let manifest = env!("CARGO_MANIFEST_DIR");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-O2", "-I"])
        .arg(format!("{manifest}/include"))
        .arg("-o")
        .arg(&exe)
        .arg(format!("{manifest}/examples/c/mapped.c"))
        .status()
        .unwrap_or_else(|e| panic!("running C compiler {cc}: {e} (install build-essential)"));
    assert!(st.success(), "examples/c/mapped.c does not compile against atomik.h");
    // Clear the cards so the C ACCUMs' marks are visible.
    for c in 0..bank.memory().cards() {
        bank.memory().take_card(c);
    }
    let file = bank.info().location.clone();
    let worker = std::thread::spawn({
        let file = file.clone();
        let exe = exe.clone();
        move || Command::new(exe).arg(file).args(["1500", "3", "100000"]).output().unwrap()
    });
    for _ in 0..100_000 {
        bank.accum(1500, 2).unwrap();
    }
    let out = worker.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(bank.read(1500).unwrap(), 500_000, "C and Rust ACCUMs, each counted once");
    let printed = String::from_utf8(out.stdout).unwrap();
    let c_read = u64::from_str_radix(printed.trim().trim_start_matches("0x"), 16).unwrap();
    assert!((300_000..=500_000).contains(&c_read), "the C READ saw {c_read}");
    assert!(bank.memory().take_card(1500 / 512), "the C ACCUMs marked the slot's card");
    assert!(!bank.memory().take_card(0), "no other card was marked");
    // Refuses a slot out of range instead of writing past the bank.
    let bad = Command::new(&exe).arg(&file).args(["2048", "1", "1"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(bank.read(1500).unwrap(), 500_000);
}
