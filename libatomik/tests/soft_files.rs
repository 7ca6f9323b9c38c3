//! The userspace default's files: a damaged or foreign file gives a clear error, never
//! SIGBUS or undefined behaviour, and permissions follow the file mode.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use atomik::backend::soft::SoftBackend;
use atomik::{abi, Bank, CreateOptions, Error, Op};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("atomik-soft-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn corrupt_reason(backend: &SoftBackend, name: &str) -> String {
    match Bank::open_on(backend, name) {
        Err(Error::Corrupt { path, reason }) => {
            assert!(path.ends_with(name), "error names the file: {}", path.display());
            reason
        }
        other => panic!("expected a Corrupt error for {name}, got {other:?}"),
    }
}

#[test]
fn damaged_and_foreign_files_are_refused_with_the_reason() {
    let dir = tempdir("corrupt");
    let soft = SoftBackend::at(&dir);
    let good = Bank::create_on(&soft, "good", CreateOptions::new(1000).op(Op::Add)).unwrap();
    good.accum(999, 1).unwrap();
    let bytes = std::fs::read(dir.join("good")).unwrap();

    // Truncated: header says more than the file holds.
    std::fs::write(dir.join("short"), &bytes[..bytes.len() - 4096]).unwrap();
    assert!(corrupt_reason(&soft, "short").contains("truncated"));
    std::fs::write(dir.join("tiny"), &bytes[..100]).unwrap();
    assert!(corrupt_reason(&soft, "tiny").contains("truncated"));
    std::fs::write(dir.join("empty"), b"").unwrap();
    assert!(corrupt_reason(&soft, "empty").contains("size 0"));

    // Foreign: not our magic.
    let mut foreign = bytes.clone();
    foreign[..8].copy_from_slice(b"NOTATOMK");
    std::fs::write(dir.join("foreign"), &foreign).unwrap();
    assert!(corrupt_reason(&soft, "foreign").contains("magic"));

    // Wrong ABI version.
    let mut old = bytes.clone();
    old[8..12].copy_from_slice(&99u32.to_ne_bytes());
    std::fs::write(dir.join("old"), &old).unwrap();
    assert!(corrupt_reason(&soft, "old").contains("ABI version 99"));

    // Inconsistent layout (slot count changed without the offsets).
    let mut lying = bytes.clone();
    lying[16..24].copy_from_slice(&5000u64.to_ne_bytes());
    std::fs::write(dir.join("lying"), &lying).unwrap();
    assert!(corrupt_reason(&soft, "lying").contains("inconsistent"));

    // Unknown operator.
    let mut badop = bytes.clone();
    badop[24..28].copy_from_slice(&7u32.to_ne_bytes());
    std::fs::write(dir.join("badop"), &badop).unwrap();
    assert!(corrupt_reason(&soft, "badop").contains("operator"));

    // A copy of a good file is a good bank with the same state.
    std::fs::write(dir.join("copy"), &bytes).unwrap();
    assert_eq!(Bank::open_on(&soft, "copy").unwrap().read(999).unwrap(), 1);

    // list reports the damaged ones in place instead of failing as a whole.
    let listed = atomik::backend::Backend::list(&soft).unwrap();
    assert_eq!(listed.len(), 9);
    assert_eq!(listed.iter().filter(|r| r.is_ok()).count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_carry_the_layout_and_mode() {
    let dir = tempdir("layout");
    let soft = SoftBackend::at(&dir);
    let b = Bank::create_on(&soft, "m", CreateOptions::new(513).mode(0o640).shards(1)).unwrap();
    let meta = std::fs::metadata(dir.join("m")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    let layout = abi::BankLayout::new(513, 1).unwrap();
    assert_eq!(meta.len(), layout.total_size);
    assert_eq!(b.info().bytes, layout.total_size);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m")]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn racing_creators_get_exactly_one_bank() {
    let dir = tempdir("race");
    let soft = SoftBackend::at(&dir);
    let wins: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| Bank::create_on(&soft, "contested", CreateOptions::new(8)).is_ok()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
    });
    assert_eq!(wins, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
