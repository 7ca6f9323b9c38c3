//! atomikctl watch / top / report end to end: on a real process, and on a fake /proc +
//! cgroupfs tree so the per-cgroup figures are known exactly.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn atomikctl() -> Command {
    let mut c = Command::cargo_bin("atomikctl").unwrap();
    let dir = std::env::temp_dir().join(format!("atomikctl-track-{}", std::process::id()));
    c.env("ATOMIK_SHM_DIR", dir).env("ATOMIK_BACKEND", "soft");
    c
}

fn fake_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let proc = t.path().join("proc");
    for (pid, cg, rss_kb, ksm) in [(10, "/web", 1024, 3u64), (11, "/web", 2048, 0), (20, "/db", 4096, 1)] {
        let d = proc.join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("status"), atomik::track::procfs::synthetic_status("x", pid, 1, 0, rss_kb)).unwrap();
        fs::write(d.join("cgroup"), format!("0::{cg}\n")).unwrap();
        fs::write(d.join("ksm_stat"), format!("ksm_merging_pages {ksm}\nksm_process_profit 0\n")).unwrap();
    }
    let cg = t.path().join("cgroup");
    for (dir, pids) in [("", ""), ("web", "10\n11\n"), ("db", "20\n")] {
        fs::create_dir_all(cg.join(dir)).unwrap();
        fs::write(cg.join(dir).join("cgroup.procs"), pids).unwrap();
    }
    fs::create_dir_all(t.path().join("ksm")).unwrap();
    fs::write(t.path().join("ksm/general_profit"), "12288\n").unwrap();
    t
}

fn fake_args(t: &Path) -> Vec<String> {
    vec![
        "--proc-root".into(),
        t.join("proc").display().to_string(),
        "--cgroup-root".into(),
        t.join("cgroup").display().to_string(),
        "--ksm-dir".into(),
        t.join("ksm").display().to_string(),
        "--runtime-state".into(),
        t.join("state").display().to_string(),
        "--interval".into(),
        "0.05".into(),
    ]
}

fn stdout(c: &mut Command) -> String {
    String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn report_csv_on_fake_tree() {
    let t = fake_tree();
    let out = stdout(
        atomikctl()
            .args(["report", "--format", "csv", "--columns", "processes,rss_bytes,ksm_merged_bytes"])
            .args(fake_args(t.path())),
    );
    // "/" holds two processes merging pages: without PFNs their ksm_stat cannot be summed
    // (pages they share would count twice), so the field is empty.
    assert_eq!(
        out,
        "cgroup,processes,rss_bytes,ksm_merged_bytes\n\
         /,3,7340032,\n/db,1,4194304,4096\n/web,2,3145728,12288\n"
    );
}

#[test]
fn report_openmetrics_on_fake_tree() {
    let t = fake_tree();
    let out = stdout(
        atomikctl()
            .args(["report", "--format", "openmetrics", "--columns", "processes"])
            .args(fake_args(t.path())),
    );
    assert!(out.contains("# TYPE atomik_cgroup_processes gauge\n"), "{out}");
    assert!(out.contains("atomik_cgroup_processes{cgroup=\"/web\"} 2\n"), "{out}");
    assert!(out.contains("atomik_ksm_general_profit_bytes 12288\n"), "{out}");
    assert!(out.ends_with("# EOF\n"), "{out}");
}

#[test]
fn top_once_json_sorted_subtree() {
    let t = fake_tree();
    let out = stdout(
        atomikctl()
            .args(["--json", "top", "--once", "--sort", "rss_bytes", "--cgroup", "/web"])
            .args(fake_args(t.path())),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cgroup"], "/web");
    assert_eq!(rows[0]["processes"], 2.0);
    assert!(v["missing"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains("--dups")));
}

#[test]
fn top_table_sorts_and_notes() {
    let t = fake_tree();
    let out = stdout(
        atomikctl()
            .args(["top", "--once", "--sort", "processes", "--columns", "processes,rss_bytes"])
            .args(fake_args(t.path())),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CGROUP") && lines[0].contains("PROCS") && lines[0].contains("RSS"));
    assert!(lines[1].starts_with("/ "), "{out}");
    assert!(lines[2].starts_with("/web"), "sorted by processes, descending: {out}");
    assert!(out.contains("note: "), "{out}");
}

#[test]
fn bad_columns_sort_and_pid_exit_2() {
    let t = fake_tree();
    atomikctl().args(["top", "--once", "--columns", "nope"]).args(fake_args(t.path())).assert().code(2);
    atomikctl().args(["top", "--once", "--sort", "nope"]).args(fake_args(t.path())).assert().code(2);
    let pid = (i32::MAX - 11).to_string();
    let out = atomikctl().args(["watch", "--pid", &pid, "--count", "1"]).assert().code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains(&format!("pid {pid}")), "{err}");
}

/// A shell that keeps changing its variables: its heap pages change.
#[test]
fn watch_a_busy_process() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); s=\"x$i\"; done"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = atomikctl()
        .args(["--json", "watch", "--pid", &child.id().to_string(), "--count", "3", "--interval", "0.2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Header lines (one more each time the mappings change), then one line per interval.
    let (headers, intervals): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|l| l.get("detector").is_some());
    assert_eq!(intervals.len(), 3, "{lines:?}");
    assert!(headers[0]["pages"].as_u64().unwrap() > 0);
    let det = headers[0]["detector"].as_str().unwrap().to_owned();
    let changed: u64 = intervals.iter().map(|l| l["changed"].as_u64().unwrap()).sum();
    assert!(changed > 0, "the shell's variables changed its heap ({det}): {lines:?}");
    for l in &intervals {
        assert!(l["written"].as_u64().unwrap() >= l["changed"].as_u64().unwrap());
        if det == "full-rescan" {
            assert!(l["silent"].is_null(), "silent writes are not observable by a rescan");
        }
    }
}

/// atomikctl as an unprivileged user (nobody, when the tests run as root); None (with the
/// reason printed) when nobody cannot run the binary (a build under a private home).
fn unprivileged(dir: &tempfile::TempDir) -> Option<Command> {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"));
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    c.env("ATOMIK_SHM_DIR", dir.path()).env("ATOMIK_BACKEND", "soft");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        c.uid(65534).gid(65534);
        let mut probe = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"));
        probe.arg("--version").uid(65534).gid(65534);
        if !probe.output().is_ok_and(|o| o.status.success()) {
            println!("SKIP: user nobody cannot run {}", assert_cmd::cargo::cargo_bin("atomikctl").display());
            return None;
        }
    }
    Some(Command::from_std(c))
}

#[test]
fn unprivileged_top_shows_own_processes_and_names_missing_columns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cmd) = unprivileged(&dir) else { return };
    let out = stdout(cmd.args(["--json", "top", "--once", "--interval", "0.1"]));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let root = v["rows"].as_array().unwrap().iter().find(|r| r["cgroup"] == "/").cloned();
    let root = root.expect("a root row");
    assert!(root["processes"].as_f64().unwrap() >= 1.0, "at least atomikctl itself: {v}");
    assert!(root["cow_shared_pages"].is_number(), "pagemap of its own processes is readable: {v}");
    let missing: Vec<&str> = v["missing"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(
        missing.iter().any(|m| m.contains("CAP_SYS_ADMIN")),
        "says that COW copies need page frame numbers: {missing:?}"
    );
}

#[test]
fn unprivileged_watch_of_init_names_pid_and_right() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cmd) = unprivileged(&dir) else { return };
    let out = cmd.args(["watch", "--pid", "1", "--count", "1"]).assert().code(3);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("pid 1") && err.contains("permission denied"), "{err}");
    assert!(err.contains("ptrace"), "names the missing right: {err}");
}

/// `watch` in the background until it has taken its baseline (its header on stderr).
fn started_watch(dir: &Path, pid: u32, extra: &[&str]) -> std::process::Child {
    use std::io::BufRead;
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
        .env("ATOMIK_SHM_DIR", dir)
        .env("ATOMIK_BACKEND", "soft")
        .args(["watch", "--pid", &pid.to_string(), "--interval", "0.1"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(watch.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("watching pid"), "{line:?}");
    watch
}

fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default()
}

/// Ctrl-C ends `watch` cleanly, and SIGKILL leaves no bank file behind either: the
/// fingerprints live in an unnamed bank (issue 12: 44 files left after closing a terminal).
#[test]
fn interrupted_or_killed_watch_leaves_no_bank_file() {
    let mut target = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    for sig in [libc::SIGINT, libc::SIGKILL, libc::SIGHUP] {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = started_watch(dir.path(), target.id(), &[]);
        // SAFETY: signals a child this test started.
        unsafe { libc::kill(watch.id() as i32, sig) };
        let status = watch.wait().unwrap();
        if sig == libc::SIGINT {
            assert!(status.success(), "{status:?}");
        }
        assert_eq!(entries(dir.path()), Vec::<std::ffi::OsString>::new(), "after signal {sig}");
    }
    let _ = target.kill();
    let _ = target.wait();
}

/// `watch` of a process that exits says so and exits 0 (`--count 0`: until the process
/// exits), whether the process is already reaped or still a zombie.
#[test]
fn watch_ends_with_exit_0_when_the_process_exits() {
    for reap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut target = std::process::Command::new("sleep").arg("0.5").spawn().unwrap();
        let pid = target.id();
        let reaper = reap.then(|| std::thread::spawn(move || target.wait().unwrap()));
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
            .env("ATOMIK_SHM_DIR", dir.path())
            .env("ATOMIK_BACKEND", "soft")
            .args(["watch", "--pid", &pid.to_string(), "--interval", "0.1"])
            .output()
            .unwrap();
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "reaped {reap}: {so}{se}");
        assert!(so.trim_end().ends_with(&format!("pid {pid} exited")), "reaped {reap}: {so}");
        if let Some(r) = reaper {
            r.join().unwrap();
        }
    }
}

/// A `--cgroup` that does not exist is bad input: exit 2, one line naming it.
#[test]
fn nonexistent_cgroup_is_bad_input() {
    let t = fake_tree();
    for cmd in ["top", "report"] {
        let mut c = atomikctl();
        c.args([cmd, "--cgroup", "/nope"]).args(fake_args(t.path()));
        if cmd == "top" {
            c.arg("--once");
        }
        let out = c.assert().code(2);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("/nope"), "{err}");
        assert!(out.get_output().stdout.is_empty());
    }
}

/// `atomikctl top | head -1`: when the reader goes away atomikctl ends like any Unix
/// filter (SIGPIPE, no panic), leaving no bank behind.
#[test]
fn top_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let t = fake_tree();
    let dir = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"));
    c.env("ATOMIK_SHM_DIR", dir.path()).env("ATOMIK_BACKEND", "soft");
    let mut child = c
        .args(["top", "--count", "3"])
        .args(fake_args(t.path()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.signal() == Some(libc::SIGPIPE) || out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    // Through a shell too, as people type it.
    let bin = assert_cmd::cargo::cargo_bin("atomikctl");
    let args = fake_args(t.path()).join(" ");
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} top --count 3 {args} | head -1; echo \"status ${{PIPESTATUS:-?}}\"", bin.display()))
        .env("ATOMIK_SHM_DIR", dir.path())
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&sh.stdout);
    assert!(so.starts_with("CGROUP"), "{so}");
    assert!(!String::from_utf8_lossy(&sh.stderr).contains("panicked"), "{sh:?}");
    assert_eq!(entries(dir.path()), Vec::<std::ffi::OsString>::new());
}

/// The cgroup's own accounting and the container a path names, in every output: the fake
/// tree gets a Docker container with memory.* files (values known exactly).
#[test]
fn accounting_columns_and_container_identity() {
    let t = fake_tree();
    let id = "4f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let rel = format!("system.slice/docker-{id}.scope");
    let cg = t.path().join("cgroup").join(&rel);
    fs::create_dir_all(&cg).unwrap();
    fs::write(t.path().join("cgroup/system.slice/cgroup.procs"), "").unwrap();
    fs::write(cg.join("cgroup.procs"), "30\n").unwrap();
    for (f, v) in [
        ("memory.current", "52428800\n"),
        ("memory.max", "104857600\n"),
        ("memory.high", "max\n"),
        ("memory.swap.current", "0\n"),
        ("memory.stat", "anon 31457280\nfile 20971520\npgfault 777\npgmajfault 3\n"),
        ("memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n"),
        ("memory.pressure", "some avg10=2.50 avg60=1.00 avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
    ] {
        fs::write(cg.join(f), v).unwrap();
    }
    let d = t.path().join("proc/30");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("status"), atomik::track::procfs::synthetic_status("redis", 30, 1, 0, 8192)).unwrap();
    fs::write(d.join("cgroup"), format!("0::/{rel}\n")).unwrap();
    let path = format!("/{rel}");
    // Docker's state names the container (`docker run --name cache`).
    let state = t.path().join("state/docker/containers").join(id);
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("config.v2.json"), r#"{"ID":"x","Name":"/cache","Config":{}}"#).unwrap();

    let out = stdout(
        atomikctl().args(["--json", "top", "--once", "--cgroup", "/system.slice"]).args(fake_args(t.path())),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let row = v["rows"].as_array().unwrap().iter().find(|r| r["cgroup"] == path.as_str()).unwrap().clone();
    assert_eq!(row["memory_current_bytes"], 52428800.0);
    assert_eq!(row["memory_max_bytes"], 104857600.0);
    assert_eq!(row["memory_high_bytes"], Value::Null, "max: no limit");
    assert_eq!(row["memory_limit_percent"], 50.0);
    assert_eq!(
        (row["anon_bytes"].clone(), row["file_bytes"].clone()),
        (31457280.0.into(), 20971520.0.into())
    );
    assert_eq!((row["memory_events_oom_kill"].clone(), row["pgmajfault"].clone()), (1.0.into(), 3.0.into()));
    assert_eq!(row["memory_pressure_some_avg10"], 2.5);
    assert_eq!(row["identity"]["kind"], "docker");
    assert_eq!(row["identity"]["container_id"], id);
    assert_eq!(row["identity"]["name"], format!("docker:{}", &id[..12]));
    assert_eq!(row["identity"]["container_name"], "cache");

    let table =
        stdout(atomikctl().args(["top", "--once", "--cgroup", "/system.slice"]).args(fake_args(t.path())));
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("UNIT/CONTAINER") && header.contains("MEM") && header.contains("%LIM"),
        "{table}"
    );
    let line = table.lines().find(|l| l.starts_with(&path)).unwrap();
    assert!(
        line.contains(&format!("docker:{}", &id[..12])) && line.contains("50.0M") && line.contains("50.0"),
        "{line}"
    );

    let om = stdout(
        atomikctl()
            .args(["report", "--format", "openmetrics", "--cgroup", "/system.slice"])
            .args(fake_args(t.path())),
    );
    let labels = format!(
        "cgroup=\"{path}\",kind=\"docker\",name=\"docker:{}\",container_id=\"{id}\",container_name=\"cache\"",
        &id[..12]
    );
    assert!(om.contains("# TYPE atomik_cgroup_memory_events_oom_kill counter\n"), "{om}");
    assert!(om.contains(&format!("atomik_cgroup_memory_events_oom_kill_total{{{labels}}} 1\n")), "{om}");
    assert!(om.contains(&format!("atomik_cgroup_memory_current_bytes{{{labels}}} 52428800\n")), "{om}");
}

/// Interactive `top` in a real pseudo-terminal (80 × 24): its first frame says it is
/// collecting, then the cgroup table is drawn, and `q` quits with exit status 0, leaving
/// the terminal as it was (alternate screen left).
#[test]
fn interactive_top_in_a_pty() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let t = fake_tree();
    let (mut master, mut slave) = (0, 0);
    let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two descriptors; name and termios may be null.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"));
    cmd.arg("top").args(fake_args(t.path())).env("TERM", "xterm-256color");
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: between fork and exec only async-signal-safe calls: a new session whose
    // controlling terminal is the pty.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let mut m = std::fs::File::from(master);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = m.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |what: &str| {
        let t0 = std::time::Instant::now();
        while !String::from_utf8_lossy(&seen).contains(what) {
            assert!(
                t0.elapsed().as_secs() < 20,
                "no {what:?} on the terminal: {:?}",
                String::from_utf8_lossy(&seen)
            );
            if let Ok(b) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
                seen.extend(b);
            }
        }
    };
    wait_for("collecting");
    wait_for("CGROUP");
    wait_for("KSM-SAVE");
    m.write_all(b"q").unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed().as_secs() < 10, "q did not quit");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // What was written up to the exit; then ratatui::restore has left the alternate screen.
    while let Ok(b) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        seen.extend(b);
    }
    let out = String::from_utf8_lossy(&seen).into_owned();
    assert!(out.contains("\x1b[?1049h") && out.contains("\x1b[?1049l"), "alternate screen entered and left");
}

/// A process holding 4 MiB, idle (`atomikctl bench exporter --hold 4`, answered once so
/// its memory is in place); it exits when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn start() -> Holder {
        use std::io::{Read, Write};
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
            .args(["bench", "exporter", "--hold", "4"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.as_mut().unwrap().write_all(b"t").unwrap();
        c.stdout.as_mut().unwrap().read_exact(&mut [0u8; 1]).unwrap();
        Holder(c)
    }

    /// What a full rescan reads, from smaps (ground truth independent of atomik's pagemap
    /// readers): the pages present or swapped in its private anonymous writable mappings,
    /// and every page of its private writable file mappings (its initialised data: an
    /// unpopulated page there holds the file's bytes, so it is read too).
    fn populated_pages(&self) -> u64 {
        let smaps = fs::read_to_string(format!("/proc/{}/smaps", self.0.id())).unwrap();
        let (mut kb, mut counted, mut file) = (0, false, false);
        for l in smaps.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 && f[0].contains('-') && f[1].len() == 4 {
                let name = f.get(5).copied().unwrap_or("");
                let anon = f[4] == "0"
                    && (name.is_empty()
                        || ["[heap]", "[stack]"].contains(&name)
                        || name.starts_with("[anon:"));
                file = f[4] != "0" && name.starts_with('/');
                counted = (anon || file) && f[1].starts_with("rw") && f[1].ends_with('p');
            } else if counted && if file { f[0] == "Size:" } else { f[0] == "Rss:" || f[0] == "Swap:" } {
                kb += f[1].parse::<u64>().unwrap();
            }
        }
        kb / 4
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// `watch --detector full-rescan` (the path of a process that is neither armed nor on a
/// soft-dirty kernel) says once what watching costs: every populated page, re-read per
/// interval.
#[test]
fn watch_by_full_rescan_says_what_it_costs() {
    let h = Holder::start();
    let pid = h.0.id();
    let out = atomikctl()
        .args(["watch", "--pid", &pid.to_string(), "--detector", "full-rescan", "--count", "2"])
        .args(["--interval", "0.2"])
        .assert()
        .success()
        .get_output()
        .clone();
    let pages = h.populated_pages();
    assert!(pages >= 1024, "the holder's 4 MiB: {pages} pages");
    let err = String::from_utf8(out.stderr).unwrap();
    let want = format!(
        "full rescan: pid {pid} costs {:.1} MiB re-read per interval ({pages} pages; ",
        (pages * 4096) as f64 / 1048576.0
    );
    assert_eq!(err.matches("full rescan:").count(), 1, "said once: {err}");
    assert!(err.contains(&want), "want {want:?} in: {err}");
}

/// `top --writes --detector full-rescan`: the process gets its line with the bytes it was
/// re-read this interval, in the table and in --json.
#[test]
fn top_by_full_rescan_names_each_process_and_its_bytes() {
    let h = Holder::start();
    let pid = h.0.id();
    let args = ["--pid", &pid.to_string(), "--writes", "--detector", "full-rescan", "--interval", "0.3"];
    let text = atomikctl().args(["top", "--once"]).args(args).assert().success().get_output().stdout.clone();
    let json = atomikctl()
        .args(["--json", "top", "--once"])
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let pages = h.populated_pages();
    let text = String::from_utf8(text).unwrap();
    let want = format!(
        "full rescan: pid {pid} (atomikctl) re-read {:.1} MiB this interval",
        (pages * 4096) as f64 / 1048576.0
    );
    assert!(text.contains(&want), "want {want:?} in:\n{text}");
    let v: Value = serde_json::from_slice(&json).unwrap();
    let r = &v["full_rescans"];
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        (r[0]["pid"].as_u64(), r[0]["bytes_read"].as_u64()),
        (Some(pid as u64), Some(pages * 4096)),
        "{v}"
    );
}
