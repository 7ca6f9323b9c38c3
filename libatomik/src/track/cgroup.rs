//! cgroup v2: where it is mounted, which processes each cgroup holds, subtrees.

use super::error::{Result, TrackError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cgroup2 mount point in the text of `/proc/self/mountinfo`.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount = pre.split_whitespace().nth(4)?;
        (post.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount))
    })
}

/// The host's cgroup2 mount, if any.
pub fn host_cgroup2() -> Option<PathBuf> {
    cgroup2_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

/// Membership read from a cgroupfs: cgroup path (`/` for the root) → its own processes.
pub fn read_membership(cgroup_root: &Path) -> Result<BTreeMap<String, Vec<i32>>> {
    read_membership_under(cgroup_root, "/")
}

/// [`read_membership`] of `subtree` and below only: a view of one subtree does not walk
/// the rest of the machine's cgroups.
pub fn read_membership_under(cgroup_root: &Path, subtree: &str) -> Result<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![cgroup_root.join(subtree.trim_start_matches('/'))];
    while let Some(dir) = stack.pop() {
        let procs = dir.join("cgroup.procs");
        let text = match super::procfs::read_kernel_text(&procs) {
            Ok(t) => t,
            // A cgroup removed while we walk is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(TrackError::io(procs, e)),
        };
        let rel = dir.strip_prefix(cgroup_root).expect("walk stays under the root");
        let name = format!("/{}", rel.to_string_lossy().trim_end_matches('/'));
        let pids = text.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>();
        out.insert(name, pids);
        let rd = std::fs::read_dir(&dir).map_err(|e| TrackError::io(&dir, e))?;
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    Ok(out)
}

/// `memory.current` of a cgroup, when the memory controller is enabled there.
pub fn memory_current(cgroup_root: &Path, cgroup: &str) -> Option<u64> {
    let p = cgroup_root.join(cgroup.trim_start_matches('/')).join("memory.current");
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// True if `cgroup` is `subtree` or below it.
pub fn in_subtree(cgroup: &str, subtree: &str) -> bool {
    let s = subtree.trim_end_matches('/');
    s.is_empty() || cgroup == s || cgroup.strip_prefix(s).is_some_and(|r| r.starts_with('/'))
}

/// Every ancestor of `cgroup` including itself and the root, deepest last.
pub fn ancestors(cgroup: &str) -> Vec<String> {
    let mut out = vec!["/".to_owned()];
    let mut cur = String::new();
    for part in cgroup.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        out.push(cur.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_in_hybrid_layouts() {
        let mi = "\
25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 25 0:23 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
";
        assert_eq!(cgroup2_mount(mi), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw"), None);
    }

    #[test]
    fn subtree_and_ancestors() {
        assert!(in_subtree("/a/b", "/a"));
        assert!(in_subtree("/a", "/a/"));
        assert!(!in_subtree("/ab", "/a"));
        assert!(in_subtree("/anything", "/"));
        assert_eq!(ancestors("/a/b"), vec!["/", "/a", "/a/b"]);
        assert_eq!(ancestors("/"), vec!["/"]);
    }
}
