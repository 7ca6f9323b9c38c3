//! Inside the VM, against /dev/atomik: libatomik's own test binaries, run once on the userspace
//! default and once on the device backend (the same tests must pass on both), and atomikctl end
//! to end, cross-checked through the ioctls.

use crate::check::Report;
use crate::dev::Dev;
use crate::system::{become_user, in_child};
use atomik::abi::*;
use std::process::{Command, Stdio};

/// Runs one of libatomik's test binaries with `ATOMIK_BACKEND=backend` and `envs`, without the
/// tests named in `skip`.
pub fn run_tests(
    bin: &std::path::Path,
    backend: &str,
    envs: &[(&str, &str)],
    skip: &[&str],
) -> Result<(), String> {
    // Two test threads unless the caller's RUST_TEST_THREADS says otherwise.
    let threads = envs.iter().find(|(k, _)| *k == "RUST_TEST_THREADS").map_or("2", |(_, v)| *v);
    let out = Command::new(bin)
        .env("ATOMIK_BACKEND", backend)
        .envs(envs.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .arg(format!("--test-threads={threads}"))
        // The page tracker's and replication's unit tests need /proc features and networking
        // this kernel leaves out (see extras.sh).
        .args(["--skip", "track::", "--skip", "replica::"])
        .args(skip.iter().flat_map(|t| ["--skip", t]))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = text.lines().filter(|l| l.starts_with("test result:")).collect();
    if !out.status.success() {
        let failures: Vec<&str> =
            text.lines().filter(|l| l.contains("FAILED") || l.contains("panicked")).take(12).collect();
        return Err(format!("{} on {backend}: {:?} {}", bin.display(), out.status, failures.join(" | ")));
    }
    // Binaries with harness = false print their own last line instead of libtest's.
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let summary = if summary.is_empty() { last.to_owned() } else { summary.join(" ") };
    ensure!(!summary.is_empty(), "{}: printed nothing", bin.display());
    println!("  {} [{backend}]: {summary}", bin.file_name().unwrap().to_string_lossy());
    Ok(())
}

/// libatomik's test binaries in the image, sorted.
pub fn library_tests() -> Result<Vec<std::path::PathBuf>, String> {
    let mut bins: Vec<_> = std::fs::read_dir("/libtests")
        .map_err(|e| format!("/libtests: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    bins.sort();
    ensure!(!bins.is_empty(), "no test binaries in /libtests");
    Ok(bins)
}

pub fn run_library(report: &mut Report) {
    let bins = match library_tests() {
        Ok(b) => b,
        Err(e) => return report.fail("library suite", e),
    };
    for bin in bins {
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        for backend in ["soft", "device"] {
            report.run(&format!("libatomik tests `{name}` on {backend}"), || {
                run_tests(&bin, backend, &[], &[])
            });
        }
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ctl(args: &[&str], stdin: Option<&str>) -> Result<Out, String> {
    use std::io::Write;
    let mut child = Command::new("/bin/atomikctl")
        .env("ATOMIK_BACKEND", "device")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("atomikctl: {e}"))?;
    let input = stdin.unwrap_or("").to_owned();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    drop(pipe);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn ctl_ok(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let o = ctl(args, stdin)?;
    ensure!(o.code == 0, "atomikctl {args:?}: exit {} stderr {}", o.code, o.stderr.trim());
    Ok(o.stdout)
}

pub fn run_atomikctl(report: &mut Report) {
    report.run("atomikctl end to end on /dev/atomik", || {
        let status = ctl_ok(&["status"], None)?;
        ensure!(status.contains("device"), "status does not name the device backend: {status}");
        let _ = ctl(&["bank", "rm", "ctl-e2e"], None);
        ctl_ok(&["bank", "create", "ctl-e2e", "--slots", "16", "--op", "add", "--mode", "0640"], None)?;
        // The bank is the kernel's: visible through the ioctls.
        let d = ok!(Dev::open());
        let att = ok!(d.attach("ctl-e2e", ACCESS_READ | ACCESS_WRITE));
        ensure!(att.op == OP_ADD && att.slots == 16, "{att:?}");
        ctl_ok(&["load", "ctl-e2e", "3", "100"], None)?;
        ctl_ok(&["accum", "ctl-e2e", "3", "0x10"], None)?;
        ctl_ok(&["accum", "ctl-e2e", "-"], Some("3 1\n4 5\n4 6\n"))?;
        ensure!(ok!(d.read(3)) == 117 && ok!(d.read(4)) == 11, "ioctl READ disagrees with atomikctl");
        ok!(d.accum(5, 9));
        let r = ctl_ok(&["--json", "read", "ctl-e2e", "5"], None)?;
        ensure!(r.contains("\"value\":9") || r.contains("\"value\": 9"), "read --json: {r}");
        let s = ctl_ok(&["swap", "ctl-e2e", "3"], None)?;
        let swapped = u64::from_str_radix(s.trim().trim_start_matches("0x"), 16);
        ensure!(swapped == Ok(117), "swap printed {s}");
        ensure!(ok!(d.read(3)) == 117, "state after swap");
        let list = ctl_ok(&["--json", "bank", "list"], None)?;
        ensure!(list.contains("ctl-e2e"), "bank list lacks the bank: {list}");
        let info = ctl_ok(&["bank", "info", "ctl-e2e"], None)?;
        ensure!(info.contains("16"), "bank info: {info}");
        let missing = ctl(&["read", "ctl-none", "0"], None)?;
        ensure!(
            missing.code == 2 && missing.stderr.contains("ctl-none"),
            "unknown bank: exit {} {}",
            missing.code,
            missing.stderr
        );
        let range = ctl(&["read", "ctl-e2e", "16"], None)?;
        ensure!(range.code == 2, "slot out of range: exit {}", range.code);
        in_child(become_user, || {
            let o = ctl(&["accum", "ctl-e2e", "1", "1"], None)?;
            ensure!(o.code == 3, "other user's write to a 0640 bank: exit {} {}", o.code, o.stderr.trim());
            let o = ctl(&["bank", "rm", "ctl-e2e"], None)?;
            ensure!(o.code == 3, "other user's rm: exit {} {}", o.code, o.stderr.trim());
            Ok(())
        })?;
        ctl_ok(&["bank", "rm", "ctl-e2e"], None)?;
        fails_with!(ok!(Dev::open()).attach("ctl-e2e", ACCESS_READ), libc::ENOENT);
        Ok(())
    });
}
