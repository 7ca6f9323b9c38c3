//! The limit ACCUM is measured against: the bare `lock xor` (XOR banks) or `lock xadd` (ADD
//! banks) loop, `AtomicU64::fetch_xor`/`fetch_add` on a plain array of as many words as the
//! bank has slots, with the same index sequence and no card marking. The array is a shared
//! memory file beside the bank's (same kind of memory, mappable by the worker processes).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use memmap2::{MmapOptions, MmapRaw};

use atomik::Op;

/// `words` shared 64-bit words in a file mapping.
///
/// # Invariants
/// `map` is a live shared mapping of exactly `words * 8` bytes, page aligned.
pub struct BareArray {
    map: MmapRaw,
    words: usize,
    path: PathBuf,
    owner: bool,
}

impl BareArray {
    /// A new zeroed array of `words` words, in the soft backend's bank directory (tmpfs by
    /// default) under a hidden name, removed when this value is dropped.
    pub fn create(words: u64) -> Result<BareArray> {
        let dir = atomik::backend::soft::SoftBackend::from_env().dir().to_owned();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!(".bench-bare-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.set_len(words * 8).with_context(|| format!("sizing {}", path.display()))?;
        let mut a = BareArray::map(&file, &path, words)?;
        a.owner = true;
        Ok(a)
    }

    /// Maps the array another process created at `path`.
    pub fn open(path: &Path) -> Result<BareArray> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let words = file.metadata()?.len() / 8;
        BareArray::map(&file, path, words)
    }

    fn map(file: &File, path: &Path, words: u64) -> Result<BareArray> {
        let map = MmapOptions::new()
            .len(words as usize * 8)
            .map_raw(file)
            .with_context(|| format!("mapping {}", path.display()))?;
        Ok(BareArray { map, words: words as usize, path: path.to_owned(), owner: false })
    }

    /// Where the array lives (for worker processes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: by the type invariant the mapping holds `words` page-aligned (so 8-byte
        // aligned) u64s and lives as long as `self`; all access is atomic.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr() as *const AtomicU64, self.words) }
    }
}

impl Drop for BareArray {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One bare atomic op: what ACCUM is without its bounds checks and card.
#[inline(always)]
pub fn accum(words: &[AtomicU64], op: Op, i: u64, d: u64) {
    let w = &words[i as usize];
    match op {
        Op::Xor => w.fetch_xor(d, Ordering::SeqCst),
        Op::Add => w.fetch_add(d, Ordering::SeqCst),
    };
}

/// The instruction the bare loop of `op` measures.
pub fn instruction(op: Op) -> &'static str {
    match op {
        Op::Xor => "lock xor",
        Op::Add => "lock xadd",
    }
}
