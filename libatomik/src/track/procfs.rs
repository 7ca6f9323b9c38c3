//! Per-process facts from `/proc`: the process list, name, RSS, cgroup v2 path, KSM stats.
//! Every reader takes the proc root so tests can point it at a fake tree.

use super::error::{Result, TrackError};
use super::ranges::PAGE;
use std::path::Path;

/// What `/proc/PID/{status,cgroup,ksm_stat}` say about one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// `Name:` from status.
    pub name: String,
    /// Real uid (`None` where it was not asked for: it needs `status`, see [`Want`]).
    pub uid: Option<u32>,
    /// Resident set, bytes (`VmRSS`; 0 for kernel threads).
    pub rss_bytes: u64,
    /// cgroup v2 path (`0::PATH` line), `/` when absent.
    pub cgroup: String,
    /// `ksm_merging_pages`, when ksm_stat is readable.
    pub ksm_merging_pages: Option<u64>,
    /// `ksm_process_profit` in bytes, when ksm_stat is readable.
    pub ksm_profit: Option<i64>,
    /// Page faults since it started, `(minor, major)`, over all its threads (from `stat`).
    pub faults: Option<(u64, u64)>,
    /// When it started, clock ticks since boot (from `stat`): with the pid, who it is (a
    /// pid can be reused between two samples).
    pub start_ticks: Option<u64>,
    /// Page faults of its children it has waited for, `(minor, major)` (from `stat`): they
    /// move when it reaps a child.
    pub child_faults: Option<(u64, u64)>,
}

/// What a sample needs of a process beyond what `/proc/PID/stat` and `statm` give (name,
/// parent, faults; RSS): they are the cheapest of the per-process files for the kernel to
/// write, so a machine-wide sample reads the others only where they are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The real uid (`status`).
    pub uid: bool,
    /// `ksm_stat`; `false` when KSM has merged nothing anywhere
    /// ([`KsmGlobal::nothing_merged`](super::ksm::KsmGlobal::nothing_merged)): every
    /// process's KSM figures are then 0 without reading it.
    pub ksm_stat: bool,
}

impl Want {
    /// Everything.
    pub const ALL: Want = Want { uid: true, ksm_stat: true };
}

/// Bytes read per `read` call at least when reading a kernel-generated file. `std::fs::read`
/// knows no size for them (they stat as empty) and starts with a 32-byte probe, then
/// doubles: 5-10 system calls for a /proc/PID/stat or maps where two do.
const SMALL_FILE_BUF: usize = 16 << 10;

/// The whole content of a file under /proc or /sys in as few `read` calls as its size
/// allows (see [`SMALL_FILE_BUF`]).
pub fn read_kernel_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_from_start(&std::fs::File::open(path)?, &mut buf)?;
    Ok(buf)
}

/// [`read_kernel_file`] as text.
pub fn read_kernel_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_kernel_file(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads all of `f` from offset 0 into `buf` (replacing its content).
fn read_from_start(f: &std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    buf.clear();
    buf.resize(SMALL_FILE_BUF, 0);
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match f.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(())
}

/// Files of `/proc/PID` kept open from one sample to the next and read again from offset
/// 0, where the kernel writes them anew: a sample of many processes then pays no open and
/// close for them (path walk, file set-up and tear-down: most of the cost of reading
/// `stat`). Only for files that describe the process's task as it is at each read (`stat`,
/// `statm`, `ksm_stat`), never `maps` or `pagemap`, which stay bound to the address space
/// they were opened on (the one before an exec, or a vfork parent's). A kept file of a
/// process that ended fails to read (ESRCH), also when its pid was reused: the process's
/// files are then dropped and opened again. At most a quarter of RLIMIT_NOFILE is kept.
#[derive(Debug)]
pub struct KeptFiles {
    files: std::collections::HashMap<(i32, &'static str), std::fs::File>,
    max: usize,
}

impl Default for KeptFiles {
    fn default() -> Self {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one struct rlimit, which `lim` is.
        let soft =
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 0 };
        KeptFiles::with_max((soft / 4).min(1 << 20) as usize)
    }
}

impl KeptFiles {
    /// Keeps at most `max` files open (0: none, every read opens and closes).
    pub fn with_max(max: usize) -> KeptFiles {
        KeptFiles { files: Default::default(), max }
    }

    /// Files kept open now.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The content of `<proc_root>/PID/<name>` now.
    pub fn read(&mut self, proc_root: &Path, pid: i32, name: &'static str) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(f) = self.files.get(&(pid, name)) {
            if read_from_start(f, &mut buf).is_ok() {
                return Ok(buf);
            }
            // The process ended (its pid may be another's now): start over with a new open.
            self.files.retain(|(p, _), _| *p != pid);
        }
        let f = std::fs::File::open(proc_root.join(pid.to_string()).join(name))?;
        read_from_start(&f, &mut buf)?;
        if self.files.len() < self.max {
            self.files.insert((pid, name), f);
        }
        Ok(buf)
    }

    /// Closes the files of every process `keep` says no to.
    pub fn retain(&mut self, keep: impl Fn(i32) -> bool) {
        self.files.retain(|(p, _), _| keep(*p));
    }
}

/// The numeric entries of the proc root: every process id.
pub fn list_pids(proc_root: &Path) -> Result<Vec<i32>> {
    let rd = std::fs::read_dir(proc_root).map_err(|e| TrackError::io(proc_root, e))?;
    let mut pids: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Whether process `pid` has exited: no entry under the proc root, or a zombie (state `Z`
/// or `X` in `stat`) whose memory is gone though its parent has not reaped it yet.
pub fn has_exited(proc_root: &Path, pid: i32) -> bool {
    match read_kernel_text(&proc_root.join(pid.to_string()).join("stat")) {
        // The state follows the command name, which is in parentheses and may hold any byte.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

/// The cgroup v2 path in the text of `/proc/PID/cgroup`.
pub fn parse_cgroup_file(text: &str) -> Option<String> {
    use procfs::FromRead;
    let groups = procfs::ProcessCGroups::from_read(text.as_bytes()).ok()?;
    groups.0.into_iter().find(|g| g.hierarchy == 0).map(|g| g.pathname)
}

/// Reads one process (`stat` and `status` with the `procfs` crate's parsers, `cgroup`,
/// `ksm_stat`). `Ok(None)` when it vanished meanwhile.
pub fn read_proc(proc_root: &Path, pid: i32) -> Result<Option<ProcInfo>> {
    read_proc_in(proc_root, pid, None, Want::ALL)
}

/// [`read_proc`] of a process whose cgroup is known already (from the cgroupfs): its
/// `/proc/PID/cgroup` is not read; nor `status` and `ksm_stat` unless `want` says so. Where
/// `stat` or `statm` is missing or unreadable (a fake tree) everything comes from `status`.
pub fn read_proc_in(
    proc_root: &Path,
    pid: i32,
    cgroup: Option<&str>,
    want: Want,
) -> Result<Option<ProcInfo>> {
    read_proc_kept(&mut KeptFiles::with_max(0), proc_root, pid, cgroup, want)
}

/// [`read_proc_in`] reading `stat`, `statm` and `ksm_stat` through `kept`.
pub fn read_proc_kept(
    kept: &mut KeptFiles,
    proc_root: &Path,
    pid: i32,
    cgroup: Option<&str>,
    want: Want,
) -> Result<Option<ProcInfo>> {
    use procfs::FromRead;
    let dir = proc_root.join(pid.to_string());
    let mut read = |f: &'static str| kept.read(proc_root, pid, f).ok();
    // stat's RSS is the kernel's per-CPU estimate (off by up to a batch per CPU); statm's
    // is the exact sum, as status's VmRSS.
    let stat = read("stat")
        .and_then(|t| procfs::process::Stat::from_read(&t[..]).ok())
        .zip(read("statm").and_then(|t| procfs::process::StatM::from_read(&t[..]).ok()));
    let status = if want.uid || stat.is_none() {
        let status_path = dir.join("status");
        match procfs::process::Status::from_file(&status_path) {
            Ok(s) => Some(s),
            Err(procfs::ProcError::NotFound(_)) => return Ok(None),
            Err(procfs::ProcError::Io(e, _)) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(proc_error(&status_path, e)),
        }
    } else {
        None
    };
    let cgroup = match cgroup {
        Some(c) => c.to_owned(),
        None => read_kernel_text(&dir.join("cgroup"))
            .ok()
            .and_then(|t| parse_cgroup_file(&t))
            .unwrap_or_else(|| "/".to_owned()),
    };
    // ksm_stat: not covered by the procfs crate.
    let (ksm_merging_pages, ksm_profit) = if want.ksm_stat {
        let ksm = read("ksm_stat").and_then(|b| String::from_utf8(b).ok());
        let num = |k: &str| {
            ksm.as_deref()
                .and_then(|t| t.lines().find_map(|l| l.strip_prefix(k)))
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        (num("ksm_merging_pages ").map(|v| v as u64), num("ksm_process_profit "))
    } else {
        (Some(0), Some(0))
    };
    let faults = stat.as_ref().map(|(s, _)| (s.minflt, s.majflt));
    let start_ticks = stat.as_ref().map(|(s, _)| s.starttime);
    let child_faults = stat.as_ref().map(|(s, _)| (s.cminflt, s.cmajflt));
    let (ppid, name, rss_bytes) = match (&status, stat) {
        (Some(st), _) => (st.ppid, st.name.clone(), st.vmrss.unwrap_or(0) * 1024),
        (None, Some((s, m))) => (s.ppid, s.comm, m.resident * PAGE),
        (None, None) => unreachable!("status is read when stat is not"),
    };
    Ok(Some(ProcInfo {
        pid,
        ppid,
        name,
        uid: status.map(|s| s.ruid),
        rss_bytes,
        cgroup,
        ksm_merging_pages,
        ksm_profit,
        faults,
        start_ticks,
        child_faults,
    }))
}

/// A `/proc/PID/status` text with every field Linux writes that the parser needs, for fake
/// `/proc` trees (tests, replays).
pub fn synthetic_status(name: &str, pid: i32, ppid: i32, uid: u32, rss_kb: u64) -> String {
    format!(
        "Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\n\
         PPid:\t{ppid}\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
         FDSize:\t64\nGroups:\t\nVmRSS:\t{rss_kb} kB\nThreads:\t1\nSigQ:\t0/63459\n\
         SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n\
         SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\nCapInh:\t0000000000000000\n\
         CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n"
    )
}

/// A `procfs` crate error on `path` as ours.
pub(crate) fn proc_error(path: &Path, e: procfs::ProcError) -> TrackError {
    match e {
        procfs::ProcError::Io(e, _) => TrackError::io(path, e),
        procfs::ProcError::NotFound(_) => TrackError::io(path, std::io::ErrorKind::NotFound.into()),
        procfs::ProcError::PermissionDenied(_) => {
            TrackError::io(path, std::io::ErrorKind::PermissionDenied.into())
        }
        other => TrackError::Parse { path: path.to_owned(), what: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_cgroup_and_ksm_stat() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("42");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("status"), synthetic_status("postgres", 42, 1, 999, 2048)).unwrap();
        std::fs::write(p.join("cgroup"), "0::/system.slice/pg.service\n").unwrap();
        std::fs::write(
            p.join("ksm_stat"),
            "ksm_rmap_items 5\nksm_merging_pages 3\nksm_process_profit 8192\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("self")).unwrap();
        assert_eq!(list_pids(d.path()).unwrap(), vec![42]);
        let i = read_proc(d.path(), 42).unwrap().unwrap();
        assert_eq!(i.name, "postgres");
        assert_eq!((i.ppid, i.uid, i.rss_bytes), (1, Some(999), 2048 * 1024));
        assert_eq!(i.cgroup, "/system.slice/pg.service");
        assert_eq!((i.ksm_merging_pages, i.ksm_profit), (Some(3), Some(8192)));
        assert_eq!(read_proc(d.path(), 43).unwrap(), None);
    }

    /// A kept file is written anew at every read, and a process's kept files go when it
    /// has ended.
    #[test]
    fn kept_files_read_fresh_content_and_go_with_their_process() {
        let root = Path::new("/proc");
        let me = std::process::id() as i32;
        let mut kept = KeptFiles::with_max(8);
        let resident = |k: &mut KeptFiles| {
            let t = String::from_utf8(k.read(root, me, "statm").unwrap()).unwrap();
            t.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
        };
        let before = resident(&mut kept);
        assert_eq!(kept.len(), 1, "statm kept open");
        let mem = vec![1u8; 64 << 20];
        std::hint::black_box(&mem);
        let after = resident(&mut kept);
        assert_eq!(kept.len(), 1, "read again through the same file");
        assert!(after >= before + (60 << 20) / PAGE, "{before} -> {after} pages resident");

        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        assert!(kept.read(root, pid, "stat").is_ok());
        assert_eq!(kept.len(), 2);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kept.read(root, pid, "stat").is_err(), "an ended process has no stat");
        assert_eq!(kept.len(), 1, "its kept file is closed");
        kept.retain(|p| p != me);
        assert!(kept.is_empty());
        assert!(KeptFiles::with_max(0).read(root, me, "stat").is_ok());
    }

    #[test]
    fn stat_alone_gives_what_status_gives() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let root = Path::new("/proc");
        let full = read_proc(root, pid).unwrap().unwrap();
        let lean =
            read_proc_in(root, pid, Some("/x"), Want { uid: false, ksm_stat: false }).unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!((lean.ppid, lean.name.as_str(), lean.rss_bytes), (full.ppid, "sleep", full.rss_bytes));
        assert_eq!((lean.uid, full.uid), (None, Some(nix::unistd::getuid().as_raw())));
        assert_eq!((lean.ksm_merging_pages, lean.ksm_profit), (Some(0), Some(0)));
        assert!(lean.faults.is_some_and(|(minor, _)| minor > 0), "{:?}", lean.faults);
    }
}
