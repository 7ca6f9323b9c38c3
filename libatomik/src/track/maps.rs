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
    /// Offset of the mapping's first page in the backing file.
    pub offset: u64,
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

/// Parses the text of a maps file (the `procfs` crate's parser); `path` is only used in
/// errors.
pub fn parse_maps(text: &str, path: &Path) -> Result<Vec<Mapping>> {
    use procfs::process::{MMPermissions, MMapPath, MemoryMaps};
    use procfs::FromRead;
    let maps = MemoryMaps::from_read(text.as_bytes())
        .map_err(|e| TrackError::Parse { path: path.to_owned(), what: e.to_string() })?;
    Ok(maps
        .into_iter()
        .map(|m| Mapping {
            range: Range::new(m.address.0, m.address.1),
            read: m.perms.contains(MMPermissions::READ),
            write: m.perms.contains(MMPermissions::WRITE),
            shared: m.perms.contains(MMPermissions::SHARED),
            inode: m.inode,
            offset: m.offset,
            name: match m.pathname {
                MMapPath::Anonymous => None,
                MMapPath::Heap => Some("[heap]".to_owned()),
                MMapPath::Stack => Some("[stack]".to_owned()),
                MMapPath::TStack(t) => Some(format!("[stack:{t}]")),
                MMapPath::Vdso => Some("[vdso]".to_owned()),
                MMapPath::Vvar => Some("[vvar]".to_owned()),
                MMapPath::Vsyscall => Some("[vsyscall]".to_owned()),
                MMapPath::Rollup => Some("[rollup]".to_owned()),
                MMapPath::Vsys(k) => Some(format!("/SYSV{k:08x}")),
                MMapPath::Path(p) => Some(p.display().to_string()),
                MMapPath::Other(o) => Some(o),
            },
        })
        .collect())
}

/// Reads `<proc_root>/PID/maps`.
pub fn read_maps(proc_root: &Path, pid: i32) -> Result<Vec<Mapping>> {
    let path = proc_root.join(pid.to_string()).join("maps");
    let text = super::procfs::read_kernel_text(&path)
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
