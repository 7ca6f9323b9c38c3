//! The userspace default across users: an unprivileged user (nobody, through `setpriv`) who
//! gets to `/dev/shm/atomik` first, or plants files in it, cannot take over root's banks.
//! Each attack is tried against a root `atomikctl`, which must refuse with one line naming the
//! directory or file and create nothing. Tests that need root print why they skip.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const NOBODY: u32 = 65534;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A stand-in for `/dev/shm`: root's, world-writable and sticky. Banks go in `<it>/atomik`.
struct Shm {
    base: tempfile::TempDir,
}

impl Shm {
    /// None (reason printed) unless root with a working `setpriv`.
    fn new(test: &str) -> Option<Shm> {
        if euid() != 0 {
            println!("SKIP {test}: needs root to act as an unprivileged user with setpriv");
            return None;
        }
        let mut probe = Command::new("setpriv");
        probe.args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"]);
        if !probe_ok(probe) {
            println!("SKIP {test}: setpriv cannot switch to uid {NOBODY} here");
            return None;
        }
        let base = tempfile::Builder::new().prefix("atomik-shm-trust-").tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        Some(Shm { base })
    }

    fn dir(&self) -> PathBuf {
        self.base.path().join("atomik")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.path().join(rel)
    }

    /// Runs `argv` as nobody; it must succeed.
    fn as_nobody(&self, argv: &[&str]) {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).args(argv);
        c.env("ATOMIK_SHM_DIR", self.dir()).env("ATOMIK_BACKEND", "soft");
        let out = c.output().unwrap();
        assert!(out.status.success(), "as nobody {argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Root's atomikctl on this directory.
    fn atomikctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
            .env("ATOMIK_SHM_DIR", self.dir())
            .env("ATOMIK_BACKEND", "soft")
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.atomikctl(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Root's command must fail with exit 1 and one stderr line holding every needle.
    fn refused(&self, args: &[&str], needles: &[&str]) -> String {
        let out = self.atomikctl(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
        for n in needles {
            assert!(err.contains(n), "stderr {err:?} lacks {n:?}");
        }
        err
    }

    /// The refusal of a root `bank create` in an untrusted directory; nothing may appear.
    fn create_refused(&self, watched: &Path, needles: &[&str]) {
        let before = listing(watched);
        let dir = self.dir().display().to_string();
        let mut all = vec![dir.as_str(), "not trusted", "owner", "mode", "fix:"];
        all.extend_from_slice(needles);
        self.refused(&["bank", "create", "rootbank", "--slots", "4"], &all);
        assert_eq!(listing(watched), before, "nothing created in {}", watched.display());
        let status: Value = serde_json::from_str(self.ok(&["--json", "status"]).trim()).unwrap();
        assert_eq!(status["directory"]["trusted"], false, "{status}");
        assert!(status["directory"]["problem"].as_str().unwrap().contains("fix:"), "{status}");
    }
}

fn probe_ok(mut c: Command) -> bool {
    c.output().is_ok_and(|o| o.status.success())
}

fn listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn root_refuses_a_bank_directory_that_is_a_users_symlink() {
    let Some(shm) = Shm::new("root_refuses_a_bank_directory_that_is_a_users_symlink") else { return };
    let evil = shm.path("evil");
    shm.as_nobody(&["mkdir", evil.to_str().unwrap()]);
    shm.as_nobody(&["ln", "-s", evil.to_str().unwrap(), shm.dir().to_str().unwrap()]);
    shm.create_refused(&evil, &["symbolic link", evil.to_str().unwrap(), "uid 65534"]);
    assert!(listing(&evil).is_empty());
    assert!(std::fs::symlink_metadata(shm.dir()).unwrap().file_type().is_symlink());
    let status = shm.ok(&["status"]);
    assert!(status.contains("trusted   no") && status.contains("owner     uid 65534"), "{status}");
}

#[test]
fn root_refuses_a_bank_directory_owned_by_a_user() {
    let Some(shm) = Shm::new("root_refuses_a_bank_directory_owned_by_a_user") else { return };
    shm.as_nobody(&["mkdir", "-m", "1777", shm.dir().to_str().unwrap()]);
    shm.create_refused(&shm.dir(), &["uid 65534", "1777", "not owned by root"]);
    assert!(listing(&shm.dir()).is_empty());
    let v: Value = serde_json::from_str(shm.ok(&["--json", "status"]).trim()).unwrap();
    assert_eq!(v["directory"]["uid"], NOBODY, "{v}");
    assert_eq!(v["directory"]["mode"], "1777", "{v}");
    // Every other command is refused the same way, not just create.
    shm.refused(&["read", "rootbank", "0"], &["not trusted"]);
    shm.refused(&["bank", "list"], &["not trusted"]);
}

#[test]
fn root_refuses_a_bank_directory_without_the_sticky_bit() {
    let Some(shm) = Shm::new("root_refuses_a_bank_directory_without_the_sticky_bit") else { return };
    // Made by the user, world-writable, not sticky.
    shm.as_nobody(&["mkdir", "-m", "0777", shm.dir().to_str().unwrap()]);
    shm.create_refused(&shm.dir(), &["uid 65534", "0777"]);
    std::fs::remove_dir(shm.dir()).unwrap();
    // Root's own, but not sticky: anyone could still delete or rename root's banks.
    std::fs::create_dir(shm.dir()).unwrap();
    std::fs::set_permissions(shm.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    shm.create_refused(&shm.dir(), &["uid 0", "0777", "sticky", "chmod +t"]);
    assert!(listing(&shm.dir()).is_empty());
}

#[test]
fn root_refuses_a_bank_file_a_user_replaced_by_a_symlink() {
    let Some(shm) = Shm::new("root_refuses_a_bank_file_a_user_replaced_by_a_symlink") else { return };
    shm.ok(&["bank", "create", "victim", "--slots", "4"]);
    shm.ok(&["bank", "rm", "victim"]);
    let target = shm.path("target");
    std::fs::write(&target, b"root's other file").unwrap();
    let planted = shm.dir().join("victim");
    shm.as_nobody(&["ln", "-s", target.to_str().unwrap(), planted.to_str().unwrap()]);
    shm.refused(&["read", "victim", "0"], &[planted.to_str().unwrap(), "symbolic link"]);
    shm.refused(&["accum", "victim", "0", "1"], &["symbolic link"]);
    // Creating the name again does not write through the link either.
    let out = shm.atomikctl(&["bank", "create", "victim", "--slots", "4"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&target).unwrap(), b"root's other file");
}

#[test]
fn root_refuses_a_bank_file_a_user_copied_or_substituted() {
    let Some(shm) = Shm::new("root_refuses_a_bank_file_a_user_copied_or_substituted") else { return };
    shm.ok(&["bank", "create", "shared", "--slots", "4", "--mode", "0644"]);
    shm.ok(&["accum", "shared", "0", "7"]);
    let copy = shm.dir().join("copy");
    shm.as_nobody(&["cp", shm.dir().join("shared").to_str().unwrap(), copy.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&copy).unwrap().uid(), NOBODY);
    let needles = [copy.to_str().unwrap(), "created by uid 0", "owned by uid 65534"];
    shm.refused(&["read", "copy", "0"], &needles);

    // Substituted: root's bank goes away and the user puts a well-formed copy in its place.
    let stash = shm.path("stash");
    shm.as_nobody(&["cp", shm.dir().join("shared").to_str().unwrap(), stash.to_str().unwrap()]);
    shm.ok(&["bank", "rm", "shared"]);
    let planted = shm.dir().join("shared");
    shm.as_nobody(&["cp", stash.to_str().unwrap(), planted.to_str().unwrap()]);
    shm.refused(&["read", "shared", "0"], &[planted.to_str().unwrap(), "created by uid 0"]);
    let listed: Value = serde_json::from_str(shm.ok(&["--json", "bank", "list"]).trim()).unwrap();
    let errors: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|b| b["error"].as_str()).collect();
    assert_eq!(errors.len(), 2, "both planted files listed as refused: {listed}");
    assert!(errors.iter().all(|e| e.contains("refused")), "{errors:?}");
}

#[test]
fn a_users_own_bank_stays_usable_by_root() {
    let Some(shm) = Shm::new("a_users_own_bank_stays_usable_by_root") else { return };
    shm.ok(&["bank", "create", "first", "--slots", "2"]);
    let meta = std::fs::metadata(shm.dir()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o1777), "root makes a shared sticky directory");
    let bin = assert_cmd::cargo::cargo_bin("atomikctl");
    let mut probe = Command::new("setpriv");
    probe.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin).arg("--version");
    if !probe_ok(probe) {
        println!("SKIP a_users_own_bank_stays_usable_by_root: nobody cannot run {}", bin.display());
        return;
    }
    let bin = bin.to_str().unwrap();
    shm.as_nobody(&[bin, "bank", "create", "theirs", "--slots", "2", "--mode", "0666"]);
    shm.as_nobody(&[bin, "accum", "theirs", "1", "9"]);
    assert_eq!(shm.ok(&["read", "theirs", "1"]).trim(), "0x0000000000000009", "root reads what nobody wrote");
    shm.ok(&["accum", "theirs", "1", "1"]);
    let status: Value = serde_json::from_str(shm.ok(&["--json", "status"]).trim()).unwrap();
    assert_eq!(status["directory"]["trusted"], true, "{status}");
    assert_eq!(status["banks"], 2, "{status}");
}

#[test]
fn status_reports_the_bank_directory() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("atomik");
    let run = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
            .env("ATOMIK_SHM_DIR", &dir)
            .env("ATOMIK_BACKEND", "soft")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let v: Value = serde_json::from_str(run(&["--json", "status"]).trim()).unwrap();
    assert_eq!(v["directory"]["exists"], false, "{v}");
    assert_eq!(v["directory"]["trusted"], true, "{v}");
    run(&["bank", "create", "b", "--slots", "1"]);
    let me = euid();
    let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
    let v: Value = serde_json::from_str(run(&["--json", "status"]).trim()).unwrap();
    assert_eq!(v["directory"]["path"], dir.to_str().unwrap(), "{v}");
    assert_eq!(v["directory"]["uid"], me, "{v}");
    assert_eq!(v["directory"]["mode"], format!("{mode:04o}"), "{v}");
    assert_eq!(v["directory"]["trusted"], true, "{v}");
    assert_eq!(v["banks"], 1, "{v}");
    let text = run(&["status"]);
    assert!(text.contains(&format!("directory {}", dir.display())), "{text}");
    assert!(text.contains(&format!("mode      {mode:04o}")) && text.contains("trusted   yes"), "{text}");

    // Made writable by others without the sticky bit: reported, status still succeeds.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let v: Value = serde_json::from_str(run(&["--json", "status"]).trim()).unwrap();
    assert_eq!(v["directory"]["trusted"], false, "{v}");
    assert!(v["banks"].is_null() && v["banks_error"].as_str().unwrap().contains("sticky"), "{v}");
    assert!(run(&["status"]).contains("trusted   no"));
}
