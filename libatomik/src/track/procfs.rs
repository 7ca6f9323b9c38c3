//! Per-process facts from `/proc`: the process list, name, RSS, cgroup v2 path, KSM stats.
//! Every reader takes the proc root so tests can point it at a fake tree.

use super::error::{Result, TrackError};
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
    /// Real uid.
    pub uid: u32,
    /// Resident set, bytes (`VmRSS`; 0 for kernel threads).
    pub rss_bytes: u64,
    /// cgroup v2 path (`0::PATH` line), `/` when absent.
    pub cgroup: String,
    /// `ksm_merging_pages`, when ksm_stat is readable.
    pub ksm_merging_pages: Option<u64>,
    /// `ksm_process_profit` in bytes, when ksm_stat is readable.
    pub ksm_profit: Option<i64>,
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
    match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state follows the command name, which is in parentheses and may hold any byte.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

/// Field `key:` of a `key: value` file, first whitespace-separated token.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .and_then(|v| v.split_whitespace().next())
}

/// The cgroup v2 path in the text of `/proc/PID/cgroup`.
pub fn parse_cgroup_file(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix("0::")).map(|p| p.trim().to_owned())
}

/// Reads one process. `Ok(None)` when it vanished meanwhile.
pub fn read_proc(proc_root: &Path, pid: i32) -> Result<Option<ProcInfo>> {
    let dir = proc_root.join(pid.to_string());
    let status_path = dir.join("status");
    let status = match std::fs::read_to_string(&status_path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(TrackError::io(status_path, e)),
    };
    let num = |k: &str| field(&status, k).and_then(|v| v.parse::<u64>().ok());
    let cgroup = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|t| parse_cgroup_file(&t))
        .unwrap_or_else(|| "/".to_owned());
    let ksm = std::fs::read_to_string(dir.join("ksm_stat")).ok();
    let ksm_num = |k: &str| {
        ksm.as_deref()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix(k)))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    Ok(Some(ProcInfo {
        pid,
        ppid: num("PPid").unwrap_or(0) as i32,
        name: status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default(),
        uid: num("Uid").unwrap_or(u32::MAX as u64) as u32,
        rss_bytes: num("VmRSS").unwrap_or(0) * 1024,
        cgroup,
        ksm_merging_pages: ksm_num("ksm_merging_pages ").map(|v| v as u64),
        ksm_profit: ksm_num("ksm_process_profit "),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_cgroup_and_ksm_stat() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("42");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("status"),
            "Name:\tpostgres\nPPid:\t1\nUid:\t999\t999\t999\t999\nVmRSS:\t   2048 kB\n",
        )
        .unwrap();
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
        assert_eq!((i.ppid, i.uid, i.rss_bytes), (1, 999, 2048 * 1024));
        assert_eq!(i.cgroup, "/system.slice/pg.service");
        assert_eq!((i.ksm_merging_pages, i.ksm_profit), (Some(3), Some(8192)));
        assert_eq!(read_proc(d.path(), 43).unwrap(), None);
    }
}
