//! `atomikctl exporter` scraped by a real Prometheus server (Debian's `prometheus`, started
//! here on a loopback port); the stored series are read back through Prometheus' HTTP query
//! API: gauges with their exact values and container labels, counters that only grow.

use std::fs;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills (by pid) and reaps a process this test started.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts an exporter on a free port; returns it and the address it printed.
fn exporter(dir: &Path, args: &[String]) -> (Guard, String) {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("atomikctl"))
        .env("ATOMIK_SHM_DIR", dir)
        .env("ATOMIK_BACKEND", "soft")
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect(&line).to_owned();
    (Guard(c), addr)
}

/// A fake /proc and cgroup2 tree: two processes in a Docker container with known memory.*.
fn fake_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let id = ID;
    let cg = t.path().join("cgroup");
    let ctr = cg.join(format!("system.slice/docker-{id}.scope"));
    fs::create_dir_all(&ctr).unwrap();
    fs::write(cg.join("cgroup.procs"), "").unwrap();
    fs::write(cg.join("system.slice/cgroup.procs"), "").unwrap();
    fs::write(ctr.join("cgroup.procs"), "10\n11\n").unwrap();
    for (f, v) in [
        ("memory.current", "52428800\n"),
        ("memory.max", "104857600\n"),
        ("memory.stat", "anon 31457280\nfile 20971520\npgfault 777\npgmajfault 3\n"),
        ("memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n"),
    ] {
        fs::write(ctr.join(f), v).unwrap();
    }
    for pid in [10, 11] {
        let d = t.path().join("proc").join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("status"), atomik::track::procfs::synthetic_status("redis", pid, 1, 0, 4096))
            .unwrap();
    }
    fs::create_dir_all(t.path().join("ksm")).unwrap();
    t
}

const ID: &str = "4f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Runs a PromQL query; the result vector.
fn query(prom: &str, q: &str) -> Vec<Value> {
    let url = format!("http://{prom}/api/v1/query");
    let Ok(mut resp) = ureq::get(&url).query("query", q).call() else { return Vec::new() };
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// Polls `q` until it returns a sample for which `ok` holds (60 s at most).
fn wait_for(prom: &str, q: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let r = query(prom, q);
        if ok(&r) {
            return r;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no answer to {q} in 60 s: {r:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_the_exporter() {
    let Ok(prometheus) = which_prometheus() else {
        assert!(
            std::env::var_os("ATOMIK_REQUIRE_PROMETHEUS").is_none(),
            "ATOMIK_REQUIRE_PROMETHEUS is set but there is no prometheus binary"
        );
        println!("SKIP: no prometheus binary (apt-get install prometheus; scripts/test.sh does)");
        return;
    };
    let shm = tempfile::tempdir().unwrap();
    let t = fake_tree();
    let p = |s: &str| t.path().join(s).display().to_string();
    let fake_args: Vec<String> =
        ["--proc-root", &p("proc"), "--cgroup-root", &p("cgroup"), "--ksm-dir", &p("ksm")]
            .iter()
            .map(|s| s.to_string())
            .chain(["--interval".into(), "0.5".into()])
            .collect();
    let (_fake, fake_addr) = exporter(shm.path(), &fake_args);
    // A real process whose heap keeps changing, tracked with --writes.
    let busy = Guard(
        Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); s=\"x$i\"; done"])
            .spawn()
            .unwrap(),
    );
    let real_args: Vec<String> = ["--pid", &busy.0.id().to_string(), "--writes", "--interval", "0.5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (_real, real_addr) = exporter(shm.path(), &real_args);

    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fake\n    static_configs:\n      - targets: ['{fake_addr}']\n  - job_name: real\n    static_configs:\n      - targets: ['{real_addr}']\n"
        ),
    )
    .unwrap();
    let prom = format!("127.0.0.1:{}", free_port());
    let _server = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Gauges, exactly as the fake tree says, with the container's labels.
    let r = wait_for(&prom, "atomik_cgroup_memory_current_bytes{job=\"fake\"}", |r| !r.is_empty());
    assert_eq!(r.len(), 1, "{r:?}");
    let m = &r[0]["metric"];
    assert_eq!(m["cgroup"], format!("/system.slice/docker-{ID}.scope"));
    assert_eq!((m["kind"].as_str(), m["container_id"].as_str()), (Some("docker"), Some(ID)));
    assert_eq!(value(&r[0]), 52428800.0);
    let pct = query(&prom, "atomik_cgroup_memory_limit_percent{job=\"fake\",kind=\"docker\"}");
    assert_eq!(pct.iter().map(value).collect::<Vec<_>>(), [50.0]);
    let procs = query(&prom, "atomik_cgroup_processes{job=\"fake\",cgroup=\"/system.slice\"}");
    assert_eq!(procs.iter().map(value).collect::<Vec<_>>(), [2.0]);
    // The kernel's counters are stored as counters, under their _total names.
    let oom = query(&prom, "atomik_cgroup_memory_events_oom_kill_total{job=\"fake\"}");
    assert_eq!(oom.iter().map(value).collect::<Vec<_>>(), [1.0]);
    let meta: Value = serde_json::from_str(
        &ureq::get(&format!("http://{prom}/api/v1/metadata"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let kind = |name: &str| meta["data"][name][0]["type"].as_str().map(str::to_owned);
    assert_eq!(kind("atomik_cgroup_memory_events_oom_kill"), Some("counter".into()), "{meta}");
    assert_eq!(kind("atomik_cgroup_memory_current_bytes"), Some("gauge".into()));

    // The real process: written pages accumulate between scrapes, and never go down.
    let q = "atomik_cgroup_written_pages_total{job=\"real\",cgroup=\"/\"}";
    let first = value(&wait_for(&prom, q, |r| r.first().is_some_and(|s| value(s) > 0.0))[0]);
    let later = value(&wait_for(&prom, q, |r| r.first().is_some_and(|s| value(s) > first))[0]);
    assert!(later > first);
    let resets = query(&prom, &format!("resets({q}[1m])"));
    assert_eq!(resets.iter().map(value).collect::<Vec<_>>(), [0.0], "a counter never goes down");
    let rate = wait_for(&prom, &format!("rate({q}[5s])"), |r| r.first().is_some_and(|s| value(s) > 0.0));
    println!("written pages/s of the busy shell, by PromQL rate(): {:.1}", value(&rate[0]));
}

fn which_prometheus() -> Result<&'static str, ()> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].into_iter().find(|p| Path::new(p).exists()).ok_or(())
}
