//! The C ABI from C: examples/counter.c, compiled against include/atomik_capi.h with the flags
//! `pkg-config` gives for the atomik-capi.pc that install.sh writes, and linked to the built
//! libatomik_capi.so, runs in three processes at once beside Rust ACCUMs on the same bank
//! (the userspace default, in a private directory): every ACCUM lands exactly once, and the C
//! program's error checks pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use atomik::backend::soft::SoftBackend;
use atomik::Bank;

/// Where cargo put libatomik_capi.so and .a for this test: target/<profile>/deps (beside the
/// test binary; cargo copies them up to target/<profile> only on `cargo build`).
fn built_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let up = deps.parent().unwrap().to_path_buf();
    [deps, up]
        .into_iter()
        .find(|d| d.join("libatomik_capi.so").exists() && d.join("libatomik_capi.a").exists())
        .unwrap_or_else(|| panic!("no libatomik_capi.so and .a near {}", exe.display()))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_c_program_using_the_installed_library_accumulates_exactly() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    run(Command::new(manifest.join("install.sh")).arg(&prefix).env("ATOMIK_CAPI_BUILT", built_dir()));
    let pc_dir = prefix.join("lib/pkgconfig");
    let flags = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "atomik-capi"])
        .env("PKG_CONFIG_PATH", &pc_dir));
    let exe = tmp.path().join("counter");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-O2", "-o"])
        .arg(&exe)
        .arg(manifest.join("examples/counter.c"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display())));

    let banks = tmp.path().join("banks");
    let c = |delta: &str| {
        Command::new(&exe)
            .args(["capi-counter", "5", delta, "20000"])
            .env("ATOMIK_BACKEND", "soft")
            .env("ATOMIK_SHM_DIR", &banks)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The first process creates the bank; the others (and Rust) open it.
    let first = c("1").wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let line = String::from_utf8(first.stdout).unwrap();
    assert_eq!(line.trim_end(), "0x0000000000004e20 soft", "first C program's READ and backend");
    let workers: Vec<_> = ["2", "3", "4"].iter().map(|d| c(d)).collect();
    let soft = SoftBackend::at(&banks);
    let bank = Bank::open_on(&soft, "capi-counter").unwrap();
    for _ in 0..20_000 {
        bank.accum(5, 10).unwrap();
    }
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(line.trim_end().ends_with(" soft"), "C program's backend: {line}");
    }
    assert_eq!(bank.read(5).unwrap(), 20_000 * (1 + 2 + 3 + 4 + 10), "each ACCUM counted once");
    assert_eq!(bank.read(4).unwrap(), 0, "no other slot changed");
}
