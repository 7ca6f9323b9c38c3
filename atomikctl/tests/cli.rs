//! atomikctl end to end: each command, its JSON, and every kind of bad input (one line,
//! exit 2, nothing changed).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// A bank directory of its own per test, so tests never see each other's banks.
struct Env {
    dir: PathBuf,
}

impl Env {
    fn new() -> Env {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "atomikctl-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Env { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("atomikctl").unwrap();
        c.env("ATOMIK_SHM_DIR", &self.dir).env("ATOMIK_BACKEND", "soft").args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).assert().success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(self.ok(&a).trim()).unwrap()
    }

    /// Runs a command that must fail with `code` and one stderr line containing `needle`.
    fn fails(&self, args: &[&str], code: i32, needle: &str) {
        let out = self.cmd(args).assert().code(code).get_output().clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
        assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn create_accum_read_swap_round_trip() {
    let e = Env::new();
    e.ok(&["bank", "create", "c", "--slots", "8", "--op", "add", "--mode", "0660"]);
    e.ok(&["load", "c", "1", "0x10"]);
    e.ok(&["accum", "c", "1", "5"]);
    e.ok(&["accum", "c", "0x1", "0x5"]);
    assert_eq!(e.ok(&["read", "c", "1"]).trim(), "0x000000000000001a");
    assert_eq!(e.json(&["read", "c", "1"])["value"], 26);
    assert_eq!(e.ok(&["swap", "c", "1"]).trim(), "0x000000000000001a");
    let info = e.json(&["bank", "info", "c"]);
    assert_eq!(info["slots"], 8);
    assert_eq!(info["op"], "add");
    assert_eq!(info["mode"], "0660");
    assert_eq!(info["dirty_slots"], 0);
    let all = e.json(&["read", "c", "--all"]);
    assert_eq!(all["values"].as_array().unwrap().len(), 8);
    assert_eq!(all["values"][1], 26);
}

#[test]
fn xor_seed_example() {
    let e = Env::new();
    e.ok(&["bank", "create", "x", "--slots", "1"]);
    e.ok(&["load", "x", "0", "0xCAFEBABE"]);
    e.ok(&["accum", "x", "0", "0x0000FF00"]);
    e.ok(&["accum", "x", "0", "0x00FF0000"]);
    assert_eq!(e.ok(&["read", "x", "0"]).trim(), "0x00000000ca0145be");
}

#[test]
fn batch_from_stdin_is_all_or_nothing() {
    let e = Env::new();
    e.ok(&["bank", "create", "b", "--slots", "4", "--op", "add"]);
    e.cmd(&["accum", "b", "-"]).write_stdin("0 1\n# comment\n\n1 0x10\n0 2\n").assert().success();
    assert_eq!(e.json(&["read", "b", "--all"])["values"], serde_json::json!([3, 16, 0, 0]));
    // A malformed line and an out-of-range slot: exit 2, nothing applied.
    let out = e.cmd(&["accum", "b", "-"]).write_stdin("0 1\n1 zz\n").assert().code(2).get_output().clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin line 2"));
    e.cmd(&["accum", "b", "-"]).write_stdin("0 1\n9 1\n").assert().code(2);
    assert_eq!(e.json(&["read", "b", "--all"])["values"], serde_json::json!([3, 16, 0, 0]));
}

#[test]
fn list_and_rm() {
    let e = Env::new();
    e.ok(&["bank", "create", "one", "--slots", "2"]);
    e.ok(&["bank", "create", "two", "--slots", "3", "--op", "add"]);
    let list = e.json(&["bank", "list"]);
    let names: Vec<_> =
        list.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(e.ok(&["bank", "list"]).contains("two"));
    e.ok(&["bank", "rm", "one"]);
    assert_eq!(e.json(&["bank", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_is_one_line_exit_2_and_changes_nothing() {
    let e = Env::new();
    e.ok(&["bank", "create", "b", "--slots", "4"]);
    e.ok(&["load", "b", "0", "7"]);
    e.fails(&["read", "nope", "0"], 2, "bank \"nope\" does not exist");
    e.fails(&["accum", "b", "4", "1"], 2, "slot 4 is out of range for bank \"b\" (4 slots)");
    e.fails(&["accum", "b", "0", "0xZZ"], 2, "malformed delta \"0xZZ\"");
    e.fails(&["load", "b", "x", "1"], 2, "malformed slot \"x\"");
    e.fails(&["bank", "create", "b", "--slots", "4"], 2, "bank \"b\" already exists");
    e.fails(&["bank", "create", "c", "--slots", "0"], 2, "0 slots");
    e.fails(&["bank", "create", "../c", "--slots", "1"], 2, "invalid bank name");
    e.fails(&["bank", "create", "c", "--slots", "1", "--op", "mul"], 2, "unknown operator");
    e.fails(&["bank", "create", "c", "--slots", "1", "--mode", "999"], 2, "malformed mode");
    e.fails(&["swap", "b", "99"], 2, "out of range");
    e.fails(&["read", "b"], 2, "give a SLOT or --all");
    assert_eq!(e.json(&["read", "b", "0"])["value"], 7);
    assert_eq!(e.json(&["bank", "list"]).as_array().unwrap().len(), 1);
    // --json errors are machine-readable too.
    let out = e.cmd(&["--json", "read", "nope", "0"]).assert().code(2).get_output().stdout.clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn damaged_bank_is_exit_1_with_the_path() {
    let e = Env::new();
    e.ok(&["bank", "create", "d", "--slots", "4"]);
    std::fs::write(e.dir.join("d"), b"garbage").unwrap();
    e.fails(&["read", "d", "0"], 1, "not a usable atomik bank");
    // A damaged bank can still be removed.
    e.ok(&["bank", "rm", "d"]);
    e.fails(&["bank", "rm", "d"], 2, "does not exist");
}

#[test]
fn status_names_the_backend_and_why() {
    let e = Env::new();
    let v = e.json(&["status"]);
    assert_eq!(v["backend"], "soft");
    assert_eq!(v["reason"], "ATOMIK_BACKEND=soft");
    let mut c = Command::cargo_bin("atomikctl").unwrap();
    c.env("ATOMIK_BACKEND", "bogus")
        .args(["status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bogus"));
}

#[test]
fn accumulating_from_many_processes_converges() {
    let e = Env::new();
    e.ok(&["bank", "create", "p", "--slots", "2", "--op", "add"]);
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"));
            c.env("ATOMIK_SHM_DIR", &e.dir).env("ATOMIK_BACKEND", "soft");
            c.args(["accum", "p", "-"]).stdin(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            let lines: String = (0..500).map(|k| format!("{} {}\n", k % 2, i + 1)).collect();
            child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
            child
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    // Each process adds (i+1) 250 times to each slot: 250 * (1+…+6) = 5250.
    assert_eq!(e.json(&["read", "p", "--all"])["values"], serde_json::json!([5250, 5250]));
}

#[test]
fn bench_prints_figures_and_json() {
    let e = Env::new();
    let v = e.json(&["bench", "--ops", "20000", "--workers", "2", "--dense-mib", "1"]);
    let results = v["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["operation"] == "accum (mutex per bank)"));
    assert!(results.iter().all(|r| r["ops_per_sec"].as_f64().unwrap() > 0.0));
    assert!(results.iter().all(|r| r["ops_per_cpu_sec"].as_f64().unwrap() > 0.0));
    // The bare-loop limit beside ACCUM, threads and processes, each worker count.
    for kind in ["threads", "processes"] {
        assert!(results.iter().any(|r| r["operation"] == format!("bare lock xor loop ({kind})")));
        let accum = results
            .iter()
            .find(|r| r["operation"] == format!("accum (mapped bank, {kind})") && r["workers"] == 2)
            .unwrap();
        assert_eq!(accum["ratios"][0]["to"], "bare loop");
    }
    let runs = v["accum_vs_bare"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["ratio"].as_f64().unwrap() > 0.0));
    assert_eq!(v["loadavg_before"].as_array().unwrap().len(), 3);
    assert!(v["dense"]["memcpy_gbps"].as_f64().unwrap() > 0.0);
    e.fails(&["bench", "--slots", "3"], 2, "power of two");
    // ADD banks: the bare loop is lock xadd.
    let v = e.json(&[
        "bench",
        "--ops",
        "20000",
        "--workers",
        "1",
        "--dense-mib",
        "1",
        "--op",
        "add",
        "--rounds",
        "1",
    ]);
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["operation"] == "bare lock xadd loop (threads)"));
    // It leaves no bank behind.
    assert_eq!(e.json(&["bank", "list"]).as_array().unwrap().len(), 0);
}

#[test]
fn swap_set_returns_the_state_and_sets_the_reference() {
    let e = Env::new();
    e.ok(&["bank", "create", "ss", "--slots", "4", "--op", "add"]);
    e.ok(&["accum", "ss", "2", "5"]);
    let v = e.json(&["swap", "ss", "2", "--set", "0x100"]);
    assert_eq!(v["value"], 5);
    assert_eq!(v["reference"], 256);
    assert_eq!(e.ok(&["read", "ss", "2"]).trim(), "0x0000000000000100");
    e.cmd(&["swap", "ss", "2", "--set", "zz"]).assert().code(2).stderr(predicate::str::contains("reference"));
    assert_eq!(e.ok(&["read", "ss", "2"]).trim(), "0x0000000000000100", "a bad --set changed nothing");
}
