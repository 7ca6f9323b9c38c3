//! atomikctl end to end on the FPGA RTL (feature rtl-model): one `atomikctl rtl-model` serves
//! the Verilator model of hw/rtl on a socket, and separate atomikctl processes, with
//! ATOMIK_FPGA=unix:SOCKET and no ATOMIK_BACKEND, find the device by its ID register and use it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

struct Model {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn model() -> Model {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rtl.sock");
    let child = Std::new(env!("CARGO_BIN_EXE_atomikctl"))
        .args(["rtl-model", "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "rtl-model never made {}", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Model { child, socket, dir }
}

/// The environment that sends a process to the model: its socket and its bank records
/// (callers remove ATOMIK_BACKEND, so the device is found by its ID register).
fn model_env(m: &Model) -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("ATOMIK_FPGA", format!("unix:{}", m.socket.display()).into()),
        ("ATOMIK_FPGA_DIR", m.dir.path().join("banks").into()),
    ]
}

fn ctl(m: &Model) -> Command {
    let mut c = Command::cargo_bin("atomikctl").unwrap();
    c.env_remove("ATOMIK_BACKEND").envs(model_env(m)).env("ATOMIK_SHM_DIR", m.dir.path().join("shm"));
    c
}

/// Whether /dev/atomik is loaded here: it is chosen before an FPGA, so the test is skipped.
fn device_loaded() -> bool {
    let loaded = Path::new(atomik::abi::DEVICE_PATH).exists();
    if loaded {
        eprintln!("skipped: /dev/atomik is loaded here and is chosen before an FPGA");
    }
    loaded
}

fn json(c: &mut Command) -> Value {
    let out = c.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

fn stdout(c: &mut Command) -> String {
    String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn atomikctl_uses_the_fpga_when_its_id_matches() {
    if device_loaded() {
        return;
    }
    let m = model();
    let st = json(ctl(&m).args(["--json", "status"]));
    assert_eq!(st["backend"], "fpga", "{st}");
    assert!(st["reason"].as_str().unwrap().contains("ID matches"), "{st}");

    ctl(&m).args(["bank", "create", "hits", "--slots", "64", "--op", "add"]).assert().success();
    // Four processes ACCUM at once, 25 each.
    let procs: Vec<Child> = (0..4)
        .map(|_| {
            let mut c = Std::new(env!("CARGO_BIN_EXE_atomikctl"));
            c.env_remove("ATOMIK_BACKEND")
                .envs(model_env(&m))
                .args(["accum", "hits", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            for _ in 0..25 {
                writeln!(input, "7 1").unwrap();
            }
            drop(input);
            child
        })
        .collect();
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    assert_eq!(stdout(ctl(&m).args(["read", "hits", "7"])).trim(), "0x0000000000000064");
    assert_eq!(stdout(ctl(&m).args(["swap", "hits", "7"])).trim(), "0x0000000000000064");
    ctl(&m).args(["accum", "hits", "7", "0xffffffffffffffff"]).assert().success(); // -1
    assert_eq!(stdout(ctl(&m).args(["read", "hits", "7"])).trim(), "0x0000000000000063");
    assert_eq!(stdout(ctl(&m).args(["swap", "hits", "7", "--set", "5"])).trim(), "0x0000000000000063");
    ctl(&m).args(["load", "hits", "8", "40"]).assert().success();
    ctl(&m).args(["accum", "hits", "8", "2"]).assert().success();
    let all = json(ctl(&m).args(["--json", "read", "hits", "--all"]));
    let values = all["values"].as_array().unwrap();
    assert_eq!(values.len(), 64);
    assert_eq!((values[7].as_u64(), values[8].as_u64(), values[9].as_u64()), (Some(5), Some(42), Some(0)));

    let info = json(ctl(&m).args(["--json", "bank", "info", "hits"]));
    assert_eq!(info["backend"], "fpga", "{info}");
    assert_eq!(info["dirty_slots"], 1, "slot 8's accumulator holds 2: {info}");
    assert!(info["location"].as_str().unwrap().contains("slots 0..64"), "{info}");
    // Bad input changes nothing and exits 2, as on every backend.
    ctl(&m).args(["accum", "hits", "64", "1"]).assert().code(2);
    ctl(&m).args(["bank", "create", "hits", "--slots", "4"]).assert().code(2);
    // Replication needs the mapped layout: refused with the reason, not a crash.
    let out = ctl(&m)
        .env("ATOMIK_SYNC_SECRET", "a long shared secret for the test")
        .args(["sync", "serve", "--bank", "hits", "--slots", "64", "--op", "add", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(m.dir.path().join("sync"))
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(err.contains("replication needs a mapped bank"), "{err}");
    let list = stdout(ctl(&m).args(["bank", "list"]));
    assert!(list.contains("hits"), "{list}");
    ctl(&m).args(["bank", "rm", "hits"]).assert().success();
    ctl(&m).args(["read", "hits", "7"]).assert().code(2);
}

#[test]
fn without_a_matching_device_status_says_why_and_uses_shared_memory() {
    if Path::new(atomik::abi::DEVICE_PATH).exists() {
        eprintln!("skipped: /dev/atomik is loaded here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let st = json(
        Command::cargo_bin("atomikctl")
            .unwrap()
            .env_remove("ATOMIK_BACKEND")
            .env("ATOMIK_FPGA", format!("unix:{}", dir.path().join("absent.sock").display()))
            .env("ATOMIK_SHM_DIR", dir.path().join("shm"))
            .args(["--json", "status"]),
    );
    assert_eq!(st["backend"], "soft", "{st}");
    let reason = st["reason"].as_str().unwrap();
    assert!(reason.contains("no FPGA") && reason.contains("absent.sock"), "{st}");
    // Forced, the same reason is an error.
    Command::cargo_bin("atomikctl")
        .unwrap()
        .env("ATOMIK_BACKEND", "fpga")
        .env("ATOMIK_FPGA", format!("unix:{}", dir.path().join("absent.sock").display()))
        .args(["bank", "list"])
        .assert()
        .code(1);
    // An FPGA bank asked of shared memory is bad input: exit 2, the reason, nothing created.
    let soft = || {
        let mut c = Command::cargo_bin("atomikctl").unwrap();
        c.env("ATOMIK_BACKEND", "soft").env("ATOMIK_SHM_DIR", dir.path().join("shm"));
        c
    };
    let out = soft().args(["bank", "create", "f", "--slots", "4", "--fpga"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("memory banks only") && err.contains("/dev/atomik"), "{err}");
    soft().args(["read", "f", "0"]).assert().code(2);
}

#[test]
fn a_destroyed_bank_keeps_its_slots_until_its_last_holder_is_killed() {
    if device_loaded() {
        return;
    }
    let m = model();
    let half: u64 = atomik::backend::fpga::rtl::MODEL_SLOTS.parse::<u64>().unwrap() / 2;
    let half_s = half.to_string();
    ctl(&m).args(["bank", "create", "old", "--slots", &half_s, "--op", "add"]).assert().success();
    // A process with the bank open (this test binary again, as `holder`), which has ACCUMed.
    let mut holder = Killed(
        Std::new(std::env::current_exe().unwrap())
            .args(["--exact", "holder", "--nocapture", "--test-threads", "1"])
            .env(HOLD, "old")
            .env_remove("ATOMIK_BACKEND")
            .envs(model_env(&m))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while stdout(ctl(&m).args(["read", "old", "0"])).trim() != "0x0000000000000005" {
        assert!(start.elapsed() < Duration::from_secs(20), "the holder's ACCUM never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    ctl(&m).args(["bank", "rm", "old"]).assert().success();
    ctl(&m).args(["read", "old", "0"]).assert().code(2);
    // The name is free; the holder's slots are not.
    ctl(&m).args(["bank", "create", "old", "--slots", &half_s, "--op", "add"]).assert().success();
    ctl(&m).args(["bank", "create", "third", "--slots", &half_s]).assert().code(2);
    let info = json(ctl(&m).args(["--json", "bank", "info", "old"]));
    assert!(info["location"].as_str().unwrap().ends_with(&format!("slots {half}..{}", 2 * half)), "{info}");
    holder.0.kill().unwrap(); // SIGKILL
    holder.0.wait().unwrap();
    // Its lock died with it: the next bank gets those slots, at identity.
    ctl(&m).args(["bank", "create", "third", "--slots", &half_s, "--op", "add"]).assert().success();
    let info = json(ctl(&m).args(["--json", "bank", "info", "third"]));
    assert!(info["location"].as_str().unwrap().ends_with(&format!("slots 0..{half}")), "{info}");
    assert_eq!(stdout(ctl(&m).args(["read", "third", "0"])).trim(), "0x0000000000000000");
    assert_eq!(stdout(ctl(&m).args(["read", "old", "0"])).trim(), "0x0000000000000000");
}

/// A child killed when dropped, so a failing test leaves no process behind.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Names the bank `holder` opens when this binary runs as the holder process.
const HOLD: &str = "ATOMIK_TEST_HOLD";

/// Not a test of its own: run by `a_destroyed_bank_keeps_its_slots_until_its_last_holder_is_killed`
/// as a separate process (with HOLD set) that opens the bank, ACCUMs 5 into slot 0 and sleeps
/// until it is killed. Without HOLD it returns at once.
#[test]
fn holder() {
    let Ok(name) = std::env::var(HOLD) else { return };
    let bank = atomik::Bank::open(&name).unwrap();
    bank.accum(0, 5).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
