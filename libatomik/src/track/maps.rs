//! `/proc/PID/maps`: which address ranges are mapped, and which are anonymous.

use super::error::{Result, TrackError, RIGHT_PTRACE_READ};
use super::ranges::Range;
use std::path::Path;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The addresses.
    pub range: Range,
    /// `r` permission.
    pub read: bool,
    /// `w` permission.
    pub write: bool,
    /// `s` (shared) rather than `p` (private).
    pub shared: bool,
    /// Inode of the backing file, 0 for anonymous memory.
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`, `[stack]`, `[anon:…]`), if any.
    pub name: Option<String>,
}

impl Mapping {
    /// Private anonymous memory: the only kind KSM merges and copy-on-write applies to
    /// between forked processes. `[vvar]`, `[vdso]` and friends are excluded.
    pub fn is_private_anon(&self) -> bool {
        if self.shared || self.inode != 0 {
            return false;
        }
        match &self.name {
            None => true,
            Some(n) => n == "[heap]" || n == "[stack]" || n.starts_with("[anon:"),
        }
    }
}

/// Parses the text of a maps file; `path` is only used in errors.
pub fn parse_maps(text: &str, path: &Path) -> Result<Vec<Mapping>> {
    let bad = |what: String| TrackError::Parse { path: path.to_owned(), what };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.splitn(6, char::is_whitespace);
        let (addr, perms, _off, _dev, inode) = (f.next(), f.next(), f.next(), f.next(), f.next());
        let (Some(addr), Some(perms), Some(inode)) = (addr, perms, inode) else {
            return Err(bad(format!("short line {line:?}")));
        };
        let (s, e) = addr.split_once('-').ok_or_else(|| bad(format!("address {addr:?}")))?;
        let hex = |v: &str| u64::from_str_radix(v, 16).map_err(|_| bad(format!("address {v:?}")));
        let name = f.next().map(str::trim).filter(|n| !n.is_empty());
        let p = perms.as_bytes();
        if p.len() < 4 {
            return Err(bad(format!("permissions {perms:?}")));
        }
        out.push(Mapping {
            range: Range::new(hex(s)?, hex(e)?),
            read: p[0] == b'r',
            write: p[1] == b'w',
            shared: p[3] == b's',
            inode: inode.parse().map_err(|_| bad(format!("inode {inode:?}")))?,
            name: name.map(str::to_owned),
        });
    }
    Ok(out)
}

/// Reads `<proc_root>/PID/maps`.
pub fn read_maps(proc_root: &Path, pid: i32) -> Result<Vec<Mapping>> {
    let path = proc_root.join(pid.to_string()).join("maps");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrackError::proc_io(pid, &path, e, "reading maps", RIGHT_PTRACE_READ))?;
    parse_maps(&text, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_anon_file_and_pseudo_mappings() {
        let text = "\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
7f0000100000-7f0000200000 r--p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f0000200000-7f0000300000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7ffd0000000-7ffd0001000 r--p 00000000 00:00 0                            [vvar]
";
        let m = parse_maps(text, Path::new("maps")).unwrap();
        assert_eq!(m.len(), 5);
        let anon: Vec<bool> = m.iter().map(Mapping::is_private_anon).collect();
        assert_eq!(anon, [true, true, false, false, false]);
        assert_eq!(m[1].range, Range::new(0x7f00_0000_0000, 0x7f00_0010_0000));
        assert!(m[0].write && !m[0].shared && m[3].shared);
    }

    #[test]
    fn rejects_garbage_naming_the_file() {
        let e = parse_maps("zz-yy rw-p 0 0 0\n", Path::new("/proc/7/maps")).unwrap_err();
        assert!(e.to_string().contains("/proc/7/maps"), "{e}");
    }
}
