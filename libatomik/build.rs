//! With the `rtl-model` feature: verilates hw/rtl (Verilator from apt) and compiles the model
//! with hw/sim/atomik_sim.cpp into a static library, so the FPGA driver can run against the RTL
//! itself. Without the feature it does nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "rtl-model")]
    build_model();
}

#[cfg(feature = "rtl-model")]
fn build_model() {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    let hw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw");
    let slots = std::env::var("ATOMIK_RTL_SLOTS").unwrap_or_else(|_| "256".into());
    println!("cargo:rerun-if-env-changed=ATOMIK_RTL_SLOTS");
    let rtl: Vec<PathBuf> = ["atomik_top.v", "atomik_regs_axil.v", "atomik_windows.v", "atomik_lane.v"]
        .iter()
        .map(|f| hw.join("rtl").join(f))
        .collect();
    let shim = hw.join("sim/atomik_sim.cpp");
    let vh = hw.join("regs/generated/atomik_regs.vh");
    for f in rtl.iter().chain([&shim, &vh]) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("verilated");
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new("verilator")
        .args(["--cc", "-O3", "--top-module", "atomik_top", "--Mdir"])
        .arg(&out)
        .arg(format!("-I{}", hw.join("regs/generated").display()))
        .arg(format!("-GSLOTS={slots}"))
        .args(&rtl)
        .status()
        .expect("rtl-model: cannot run verilator (apt install verilator)");
    assert!(status.success(), "rtl-model: verilator failed on {}", hw.join("rtl").display());
    let root = Command::new("verilator").args(["--getenv", "VERILATOR_ROOT"]).output().expect("verilator");
    let root = PathBuf::from(String::from_utf8(root.stdout).unwrap().trim());
    let inc = root.join("include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(2)
        .warnings(false)
        .include(&out)
        .include(&inc)
        .include(inc.join("vltstd"));
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "cpp") {
            build.file(p);
        }
    }
    build.file(inc.join("verilated.cpp")).file(inc.join("verilated_threads.cpp")).file(&shim);
    build.compile("atomik_rtl_model");
    println!("cargo:rustc-env=ATOMIK_RTL_SLOTS={slots}");
}
