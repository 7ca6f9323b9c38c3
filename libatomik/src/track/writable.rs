//! What `watch` and `top --writes` watch by default: a process's private writable memory,
//! anonymous or backed by a file.
//!
//! A private file mapping that is writable is a program's or library's initialised data
//! (`.data`), or a file mapped copy-on-write: its writes go to private copies the file never
//! sees, and they are the process's own changes as much as those to its heap. Unlike
//! anonymous memory, an unpopulated page of it holds the file's bytes, not zeros, so the
//! tracker reads those pages for their baseline (see [`Tracker`](super::region::Tracker)).

use super::error::Result;
use super::maps::{read_maps, Mapping};
use super::monitor::WHOLE_MAPPING_MAX;
use super::pagemap::Pagemap;
use super::ranges::{Range, PAGE};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The private, readable and writable mappings of `pid`, anonymous or file-backed: when
/// they change, [`write_ranges`] is computed again. Cheap (one read of `maps`).
pub fn writable_mappings(proc_root: &Path, pid: i32) -> Result<Vec<Mapping>> {
    Ok(read_maps(proc_root, pid)?
        .into_iter()
        .filter(|m| !m.shared && m.write && m.read && (m.is_private_anon() || m.inode != 0))
        .collect())
}

/// The ranges `watch` and `top --writes` track by default: every private writable
/// anonymous mapping whole (pages first touched after the watch started are seen) and
/// every private writable mapping of a regular file, up to the file's end (a page past it
/// cannot be touched: SIGBUS). Mappings over [`WHOLE_MAPPING_MAX`] are watched on their
/// populated parts only (spans of present or swapped pages, gaps under 1 MiB bridged). A
/// file mapping whose file cannot be found (deleted, or in a mount namespace we cannot
/// reach) or is not a regular file (a device) is left out.
pub fn write_ranges(proc_root: &Path, pid: i32) -> Result<Vec<Range>> {
    let mut out = Vec::new();
    let mut pm = None;
    for m in writable_mappings(proc_root, pid)? {
        let r = if m.is_private_anon() {
            m.range
        } else {
            match file_part(proc_root, pid, &m) {
                Some(r) => r,
                None => continue,
            }
        };
        watched_parts(proc_root, pid, &mut pm, r, &mut out)?;
    }
    Ok(out)
}

/// The part of file mapping `m` that lies before the end of its file, `None` when the
/// file is not a regular file or cannot be found.
fn file_part(proc_root: &Path, pid: i32, m: &Mapping) -> Option<Range> {
    let dir = proc_root.join(pid.to_string());
    // map_files names the mapped file itself (also a deleted one) but needs CAP_SYS_ADMIN;
    // otherwise the path, resolved in the process's own root.
    let by_link = dir.join("map_files").join(format!("{:x}-{:x}", m.range.start, m.range.end));
    let meta = std::fs::metadata(by_link).ok().or_else(|| {
        let path = m.name.as_deref()?.strip_prefix('/')?;
        std::fs::metadata(dir.join("root").join(path)).ok().filter(|md| md.ino() == m.inode)
    })?;
    if !meta.file_type().is_file() || meta.size() <= m.offset {
        return None;
    }
    let end = m.range.start.saturating_add((meta.size() - m.offset).div_ceil(PAGE) * PAGE);
    Some(Range::new(m.range.start, end.min(m.range.end)))
}

/// Appends what is watched of mapping range `r`: all of it up to [`WHOLE_MAPPING_MAX`],
/// else its populated parts, gaps under 1 MiB bridged.
pub(crate) fn watched_parts(
    proc_root: &Path,
    pid: i32,
    pm: &mut Option<Pagemap>,
    r: Range,
    out: &mut Vec<Range>,
) -> Result<()> {
    const BRIDGE: u64 = 256 * PAGE;
    if r.end - r.start <= WHOLE_MAPPING_MAX {
        out.push(r);
        return Ok(());
    }
    let pm = match pm {
        Some(p) => p,
        None => pm.insert(Pagemap::open_in(proc_root, pid)?),
    };
    let mut spans = Vec::new();
    super::scan::populated(pm, r, &mut spans)?;
    let mut cur: Option<Range> = None;
    for s in &spans {
        cur = match cur {
            Some(c) if s.start - c.end <= BRIDGE => Some(Range::new(c.start, s.end)),
            Some(c) => {
                out.push(c);
                Some(*s)
            }
            None => Some(*s),
        };
    }
    out.extend(cur);
    Ok(())
}
