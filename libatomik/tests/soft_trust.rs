//! What the userspace default trusts: a bank directory nobody else can rearrange, and bank
//! files that are regular files owned by the user who created them. Everything here runs as
//! any user; the cross-user cases (another user's directory or file) are in
//! `atomikctl/tests/shm_trust.rs` and need root.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use atomik::abi::{owner_uid, owner_word, BankHeader};
use atomik::backend::soft::SoftBackend;
use atomik::backend::Backend;
use atomik::{Bank, CreateOptions, Error};

const OWNER_OFF: usize = std::mem::offset_of!(BankHeader, owner);

fn base(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("atomik-trust-{tag}-")).tempdir().unwrap()
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(p: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect()
}

/// The directory refusal: one line naming the directory, owner, mode and a fix.
fn assert_dir_refused(r: Result<Bank, Error>, dir: &Path, needles: &[&str]) {
    let e = r.expect_err("an untrusted directory must be refused");
    assert!(matches!(e, Error::UntrustedDir { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    let shown = dir.display().to_string();
    for needle in [shown.as_str(), "owner uid", "mode", "fix:"].iter().chain(needles) {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

fn untrusted_reason(soft: &SoftBackend, name: &str) -> String {
    match Bank::open_on(soft, name) {
        Err(Error::Untrusted { path, reason }) => {
            assert!(path.ends_with(name), "names the file: {}", path.display());
            reason
        }
        other => panic!("{name}: expected Untrusted, got {other:?}"),
    }
}

#[test]
fn directory_that_is_a_symlink_is_refused_and_nothing_is_created() {
    let b = base("symlink");
    let real = b.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let dir = b.path().join("atomik");
    symlink(&real, &dir).unwrap();
    let soft = SoftBackend::at(&dir);
    let real_shown = real.display().to_string();
    assert_dir_refused(
        Bank::create_on(&soft, "x", CreateOptions::new(4)),
        &dir,
        &["symbolic link", &real_shown],
    );
    assert!(entries(&real).is_empty(), "nothing created through the link");
    assert!(std::fs::symlink_metadata(&dir).unwrap().file_type().is_symlink(), "the link is left alone");
    assert_dir_refused(Bank::open_on(&soft, "x"), &dir, &["symbolic link"]);
    assert!(matches!(soft.list(), Err(Error::UntrustedDir { .. })));
    assert!(matches!(soft.destroy(&atomik::BankName::new("x").unwrap()), Err(Error::UntrustedDir { .. })));
    let report = soft.dir_report();
    assert!(report.exists && !report.trusted, "{report:?}");
    assert_eq!(report.mode, Some(0o777), "the link's own mode: {report:?}");
}

#[test]
fn directory_writable_by_others_needs_the_sticky_bit() {
    let b = base("sticky");
    let dir = b.path().join("atomik");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let soft = SoftBackend::at(&dir);
    assert_dir_refused(
        Bank::create_on(&soft, "x", CreateOptions::new(4)),
        &dir,
        &["0777", "sticky", "chmod +t"],
    );
    assert!(entries(&dir).is_empty(), "nothing created");
    let report = soft.dir_report();
    assert!(!report.trusted && report.problem.as_deref().unwrap().contains("sticky"), "{report:?}");
    chmod(&dir, 0o775);
    assert_dir_refused(Bank::create_on(&soft, "x", CreateOptions::new(4)), &dir, &["0775"]);
    chmod(&dir, 0o1777);
    Bank::create_on(&soft, "x", CreateOptions::new(4)).unwrap().accum(1, 5).unwrap();
    assert_eq!(Bank::open_on(&soft, "x").unwrap().read(1).unwrap(), 5);
    assert!(soft.dir_report().trusted);
}

#[test]
fn a_file_in_place_of_the_directory_is_refused() {
    let b = base("notdir");
    let dir = b.path().join("atomik");
    std::fs::write(&dir, b"").unwrap();
    let soft = SoftBackend::at(&dir);
    assert_dir_refused(Bank::create_on(&soft, "x", CreateOptions::new(4)), &dir, &["not a directory"]);
}

#[test]
fn a_new_directory_is_shared_and_sticky_only_when_root_makes_it() {
    let b = base("fresh");
    let dir = b.path().join("deeper").join("atomik");
    let soft = SoftBackend::at(&dir);
    let report = soft.dir_report();
    assert!(!report.exists && report.trusted, "absent is fine: {report:?}");
    Bank::create_on(&soft, "x", CreateOptions::new(4)).unwrap();
    let meta = std::fs::metadata(&dir).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(meta.uid(), me);
    let want = if me == 0 { 0o1777 } else { 0o700 };
    assert_eq!(meta.mode() & 0o7777, want, "mode of a directory made by uid {me}");
    let report = soft.dir_report();
    assert_eq!((report.uid, report.mode, report.trusted), (Some(me), Some(want), true));
}

#[test]
fn a_bank_file_replaced_by_a_symlink_is_refused() {
    let b = base("filelink");
    let soft = SoftBackend::at(b.path());
    Bank::create_on(&soft, "real", CreateOptions::new(4)).unwrap().accum(0, 1).unwrap();
    symlink(b.path().join("real"), b.path().join("link")).unwrap();
    assert!(untrusted_reason(&soft, "link").contains("symbolic link"));
    // Read-only opening and listing refuse it the same way; the real bank is still listed.
    assert!(matches!(
        Bank::open_with_on(&soft, "link", atomik::Access::ReadOnly),
        Err(Error::Untrusted { .. })
    ));
    let listed = soft.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(matches!(listed[0], Err(Error::Untrusted { .. })), "{listed:?}");
    assert_eq!(listed[1].as_ref().unwrap().name, "real");
    // Creating over the link is "exists", never a write through it.
    assert!(matches!(Bank::create_on(&soft, "link", CreateOptions::new(4)), Err(Error::Exists { .. })));
    assert_eq!(Bank::open_on(&soft, "real").unwrap().read(0).unwrap(), 1);
}

#[test]
fn a_fifo_in_place_of_a_bank_is_refused_without_blocking() {
    let b = base("fifo");
    let soft = SoftBackend::at(b.path());
    nix::unistd::mkfifo(&b.path().join("f"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    match Bank::open_on(&soft, "f") {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("not a regular file"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn the_header_records_the_creator_and_a_file_owned_by_anyone_else_is_refused() {
    let b = base("owner");
    let soft = SoftBackend::at(b.path());
    Bank::create_on(&soft, "good", CreateOptions::new(4)).unwrap();
    let bytes = std::fs::read(b.path().join("good")).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let word = u64::from_ne_bytes(bytes[OWNER_OFF..OWNER_OFF + 8].try_into().unwrap());
    assert_eq!(owner_uid(word), Some(me), "creator recorded: {word:#x}");
    assert_eq!(owner_uid(0), None, "a zeroed word records nobody, not root");

    // Claims another creator than the file's owner: planted or copied by someone else.
    let mut other = bytes.clone();
    other[OWNER_OFF..OWNER_OFF + 8].copy_from_slice(&owner_word(me.wrapping_add(1)).to_ne_bytes());
    std::fs::write(b.path().join("claims-other"), &other).unwrap();
    let reason = untrusted_reason(&soft, "claims-other");
    assert!(reason.contains(&format!("created by uid {}", me.wrapping_add(1))), "{reason}");
    assert!(reason.contains(&format!("owned by uid {me}")), "{reason}");

    // Records nobody (an older atomik, or not atomik at all).
    let mut none = bytes.clone();
    none[OWNER_OFF..OWNER_OFF + 8].fill(0);
    std::fs::write(b.path().join("no-owner"), &none).unwrap();
    assert!(untrusted_reason(&soft, "no-owner").contains("records no creator"));

    // Header validation still comes first: a damaged file is reported as damaged.
    std::fs::write(b.path().join("garbage"), vec![0u8; 8192]).unwrap();
    assert!(matches!(Bank::open_on(&soft, "garbage"), Err(Error::Corrupt { .. })));
    assert!(Bank::open_on(&soft, "good").is_ok());
}

#[test]
fn a_bank_chowned_to_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP a_bank_chowned_to_another_user_is_refused: only root can chown a file away");
        return;
    }
    let b = base("chown");
    let soft = SoftBackend::at(b.path());
    Bank::create_on(&soft, "mine", CreateOptions::new(4).mode(0o644)).unwrap();
    std::os::unix::fs::chown(b.path().join("mine"), Some(65534), Some(65534)).unwrap();
    let reason = untrusted_reason(&soft, "mine");
    assert!(reason.contains("created by uid 0") && reason.contains("owned by uid 65534"), "{reason}");
}
