//! `atomikctl bench converge`: every fault model and bank count ends at the same digest, in
//! JSON too; bad options exit 2.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_atomikctl")).args(args).output().unwrap()
}

#[test]
fn all_runs_share_one_digest() {
    let out = run(&[
        "--json",
        "bench",
        "converge",
        "--ticks",
        "1200",
        "--op",
        "add",
        "--seed",
        "0xDEADBEEF0BADF00D",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["converged"], true);
    let expected = v["expected"].as_str().unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 7 * 4);
    for r in runs {
        for d in r["digests"].as_array().unwrap() {
            assert_eq!(d.as_str().unwrap(), expected, "{r}");
        }
    }
    let all = runs.iter().find(|r| r["faults"] == "all").unwrap();
    assert!(all["lost"].as_u64().unwrap() > 0 && all["duplicated"].as_u64().unwrap() > 0);
}

#[test]
fn bad_options_exit_2() {
    assert_eq!(run(&["bench", "converge", "--faults", "bogus"]).status.code(), Some(2));
    assert_eq!(run(&["bench", "converge", "--density", "2"]).status.code(), Some(2));
}
