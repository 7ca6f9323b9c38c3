//! `/init` of the atomik VM test: mounts the basics, loads `atomik.ko` with the module
//! parameters of the kernel command line (`atomik.NAME=VALUE`, see `system::boot_params`), runs the suites named there as
//! `vmtest.suites=a,b,…` (all when absent), prints one line per test and a verdict line that
//! `tests/vm/run.sh` looks for, then powers the VM off.
//!
//! Run outside a VM (not as pid 1) it only runs the suites, for use on a host that already has
//! the module loaded.

#[macro_use]
mod check;
mod bench;
mod bench_region;
mod c_example;
mod cow;
mod cow_tools;
mod dev;
mod fpga;
mod fuzz;
mod fuzz_buffers;
mod fuzz_cow;
mod hardening;
mod lib_suites;
mod namespaces;
mod perms;
mod region;
mod sdk;
mod semantics;
mod stress;
mod system;

use check::Report;

const ALL: &[&str] = &[
    "semantics",
    "hardening",
    "limits",
    "stress",
    "perms",
    "namespaces",
    "fuzz",
    "region",
    "sdk",
    "library",
    "atomikctl",
    "unload",
];

fn main() {
    let pid1 = std::process::id() == 1;
    if pid1 {
        system::setup();
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let arg = |key: &str| cmdline.split_whitespace().find_map(|w| w.strip_prefix(key)).map(str::to_owned);
    let suites: Vec<String> = match arg("vmtest.suites=") {
        Some(s) => s.split(',').map(str::to_owned).collect(),
        None => ALL.iter().map(|s| s.to_string()).collect(),
    };
    let mut report = Report::default();
    if pid1 {
        report.run("insmod atomik.ko", || system::insmod("/atomik.ko", &system::boot_params()));
    }
    for suite in &suites {
        println!("ATOMIK-SUITE: {suite}");
        match suite.as_str() {
            "semantics" => semantics::run(&mut report),
            "hardening" => {
                hardening::run(&mut report);
                hardening::run_proc_mem(&mut report);
            }
            "limits" => {
                semantics::run_limits(&mut report);
                hardening::run_limits(&mut report);
            }
            "stress" => stress::run(&mut report),
            "perms" => perms::run(&mut report),
            "namespaces" => namespaces::run(&mut report),
            "fuzz" => {
                fuzz::run(&mut report);
                fuzz_buffers::run(&mut report);
                fuzz_cow::run(&mut report);
            }
            "region" => {
                region::run(&mut report);
                cow::run(&mut report);
                cow_tools::run(&mut report);
            }
            "sdk" => sdk::run(&mut report),
            "library" => {
                lib_suites::run_library(&mut report);
                c_example::run(&mut report);
            }
            "atomikctl" => lib_suites::run_atomikctl(&mut report),
            "bench" => {
                bench::run(&mut report);
                bench_region::run(&mut report);
            }
            "unload" => system::unload_suite(&mut report),
            // Not in ALL: needs the RTL on the PCI bus (tests/vm/run.sh --fpga).
            "fpga" => fpga::run(&mut report),
            other => report.fail(&format!("unknown suite {other}"), "not in the list".into()),
        }
    }
    let verdict = if report.failed == 0 && report.passed > 0 { "PASS" } else { "FAIL" };
    println!("vmtest: {} passed, {} failed", report.passed, report.failed);
    println!("ATOMIK-VM-RESULT: {verdict}");
    if pid1 {
        system::poweroff();
    }
    std::process::exit(if verdict == "PASS" { 0 } else { 1 });
}
