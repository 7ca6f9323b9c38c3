//! `atomikctl bench sync` with tiny parameters: it runs a real daemon, prints every field and
//! sane values, and leaves nothing behind. No timing thresholds: the figures are the
//! benchmark's business, this only checks that it measures.

use assert_cmd::Command;
use serde_json::Value;

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

#[test]
fn bench_sync_reports_idle_cpu_and_tick_times_beside_their_baselines() {
    let out = Command::cargo_bin("atomikctl")
        .unwrap()
        .args(["--json", "bench", "sync", "--idle-slots", "4096,8192", "--window-ms", "1000"])
        .args(["--settle-ms", "200", "--tick-slots", "8192", "--rounds", "3", "--changed-pct", "0,1,50"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["loadavg_before"].as_array().is_some_and(|l| l.len() == 3), "{v}");

    let idle = v["idle"]["runs"].as_array().unwrap();
    assert_eq!(idle.iter().map(|r| r["slots"].as_u64().unwrap()).collect::<Vec<_>>(), [4096, 8192]);
    for r in idle {
        assert!(num(r, "window_s") >= 1.0, "{r}");
        let cpu = num(r, "cpu_seconds");
        assert!(cpu >= 0.0 && cpu <= num(r, "window_s") * 2.0, "{r}");
        assert!(num(r, "cpu_pct") >= 0.0, "{r}");
        assert!(num(r, "read_pass_ms") > 0.0 && num(r, "read_pass_every_tick_pct") > 0.0, "{r}");
    }

    let tick = &v["tick"];
    assert_eq!(tick["slots"], 8192);
    assert_eq!(tick["pages"], 16);
    assert!(num(tick, "full_scan_take_ms") > 0.0 && num(tick, "full_scan_read_pass_ms") > 0.0);
    let runs = tick["runs"].as_array().unwrap();
    let changed: Vec<u64> = runs.iter().map(|r| r["changed_slots"].as_u64().unwrap()).collect();
    assert_eq!(changed, [0, 82, 4096]);
    assert_eq!(runs[0]["pages_marked"], 0);
    assert!(runs[1]["pages_marked"].as_u64().unwrap() >= 1);
    assert_eq!(runs[2]["pages_marked"], 16);
    for r in runs {
        assert!(num(r, "take_ms") >= 0.0 && num(r, "take_cpu_ms") >= 0.0, "{r}");
        assert!(num(r, "read_pass_ms") > 0.0 && num(r, "take_cpu_vs_read_pass").is_finite(), "{r}");
    }
}

#[test]
fn bench_sync_refuses_bad_parameters() {
    for args in [["--rounds", "0"], ["--changed-pct", "101"]] {
        Command::cargo_bin("atomikctl").unwrap().args(["bench", "sync"]).args(args).assert().code(2);
    }
}
