//! Register access to an atomik FPGA: the [`Mmio`] trait and its implementations over a
//! mapping (a PCIe BAR through sysfs, a UIO device) and over a Unix socket (the RTL model's
//! server, `atomik-rtl-model`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};

/// 64-bit register access to the device's address space (hw/regs/atomik.rdl). Offsets are
/// byte offsets, 8-byte aligned; every access is one untearable 64-bit access.
pub trait Mmio: Send + Sync {
    /// Where the device is, for messages: a PCI address, a UIO node, a socket.
    fn location(&self) -> &Path;
    /// Reads `out.len()` consecutive words from `offset`.
    fn read_words(&self, offset: u64, out: &mut [u64]) -> Result<()>;
    /// Writes consecutive words from `offset`, in order (a burst where the path has them).
    fn write_words(&self, offset: u64, words: &[u64]) -> Result<()>;
    /// Writes consecutive words that may be merged and reordered among themselves
    /// (write-combining): only for commutative operations, ACCUM. Complete on return.
    fn write_words_combining(&self, offset: u64, words: &[u64]) -> Result<()> {
        self.write_words(offset, words)
    }
    /// One word.
    fn read64(&self, offset: u64) -> Result<u64> {
        let mut w = [0];
        self.read_words(offset, &mut w)?;
        Ok(w[0])
    }
    /// One word.
    fn write64(&self, offset: u64, value: u64) -> Result<()> {
        self.write_words(offset, &[value])
    }
}

fn refused(location: &Path, what: String) -> Error {
    Error::io("mmio", location, std::io::Error::other(what))
}

/// Checks that `n` words from `offset` lie in a region of `len` bytes, 8-aligned.
fn check_span(location: &Path, len: u64, offset: u64, n: usize) -> Result<()> {
    let end = (n as u64).checked_mul(8).and_then(|b| offset.checked_add(b));
    match end {
        Some(end) if offset.is_multiple_of(8) && end <= len => Ok(()),
        _ => Err(refused(location, format!("{n} words at {offset:#x} are outside the {len:#x}-byte region"))),
    }
}

/// A device region mapped into this process: a PCIe BAR (`resource0`, with `resource0_wc`
/// for write-combined ACCUM bursts when the BAR is prefetchable) or a UIO map.
pub struct MappedMmio {
    location: PathBuf,
    uc: MmapRaw,
    wc: Option<MmapRaw>,
}

impl MappedMmio {
    /// Maps `path` (uncached: reads, LOAD, SWAP, registers) and optionally `wc_path`
    /// (write-combined: ACCUM bursts only). `location` names the device in errors.
    pub fn open(location: PathBuf, path: &Path, wc_path: Option<&Path>) -> Result<MappedMmio> {
        let map = |p: &Path| -> Result<MmapRaw> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map_err(|e| Error::io("open", p, e))?;
            MmapOptions::new().map_raw(&file).map_err(|e| Error::io("mmap", p, e))
        };
        let uc = map(path)?;
        let wc = match wc_path {
            Some(p) if p.exists() => Some(map(p)?),
            _ => None,
        };
        Ok(MappedMmio { location, uc, wc })
    }

    /// Whether ACCUM bursts go through a write-combined mapping.
    pub fn write_combined(&self) -> bool {
        self.wc.is_some()
    }
}

impl Mmio for MappedMmio {
    fn location(&self) -> &Path {
        &self.location
    }

    fn read_words(&self, offset: u64, out: &mut [u64]) -> Result<()> {
        check_span(&self.location, self.uc.len() as u64, offset, out.len())?;
        for (i, o) in out.iter_mut().enumerate() {
            // SAFETY: the span was checked to lie inside the mapping and is 8-aligned (the
            // mapping is page-aligned); a volatile 64-bit load is one untearable bus read.
            *o = unsafe {
                std::ptr::read_volatile(self.uc.as_ptr().add(offset as usize + 8 * i) as *const u64)
            };
        }
        Ok(())
    }

    fn write_words(&self, offset: u64, words: &[u64]) -> Result<()> {
        check_span(&self.location, self.uc.len() as u64, offset, words.len())?;
        for (i, &w) in words.iter().enumerate() {
            // SAFETY: as in read_words; a volatile 64-bit store is one posted bus write.
            unsafe {
                std::ptr::write_volatile(self.uc.as_mut_ptr().add(offset as usize + 8 * i) as *mut u64, w)
            };
        }
        Ok(())
    }

    fn write_words_combining(&self, offset: u64, words: &[u64]) -> Result<()> {
        let Some(wc) = &self.wc else { return self.write_words(offset, words) };
        check_span(&self.location, wc.len() as u64, offset, words.len())?;
        for (i, &w) in words.iter().enumerate() {
            // SAFETY: as in read_words, on the write-combined mapping of the same BAR.
            unsafe { std::ptr::write_volatile(wc.as_mut_ptr().add(offset as usize + 8 * i) as *mut u64, w) };
        }
        // Drain the write-combining buffers before any later uncached access.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: sfence has no operands and no preconditions.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
        Ok(())
    }
}

/// Requests of the socket protocol between [`SocketMmio`] and the RTL model's server.
pub mod wire {
    /// Read `count` words at `offset`.
    pub const READ: u8 = 1;
    /// Write `count` words at `offset` (they follow the header).
    pub const WRITE: u8 = 2;
    /// The model's clock cycles so far (one word back).
    pub const CYCLES: u8 = 3;
    /// Reply status: done.
    pub const OK: u8 = 0;
    /// Reply status: the device answered SLVERR.
    pub const REFUSED: u8 = 2;
    /// Reply status: malformed request or bus timeout.
    pub const FAILED: u8 = 3;
    /// At most this many words in one request.
    pub const MAX_WORDS: u32 = 1 << 16;

    /// Request header: op, 3 zero bytes, count (u32 LE), offset (u64 LE).
    pub fn header(op: u8, count: u32, offset: u64) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[0] = op;
        h[4..8].copy_from_slice(&count.to_le_bytes());
        h[8..16].copy_from_slice(&offset.to_le_bytes());
        h
    }
}

/// A device reached through a Unix socket: the Verilator model of hw/rtl served by
/// `atomik-rtl-model`, so separate processes (atomikctl) share one simulated device.
pub struct SocketMmio {
    location: PathBuf,
    stream: Mutex<UnixStream>,
}

impl SocketMmio {
    /// Connects to the server at `path`.
    pub fn connect(path: &Path) -> Result<SocketMmio> {
        let stream = UnixStream::connect(path).map_err(|e| Error::io("connect", path, e))?;
        Ok(SocketMmio { location: path.to_owned(), stream: Mutex::new(stream) })
    }

    fn call(&self, op: u8, offset: u64, send: &[u64], recv: &mut [u64]) -> Result<()> {
        let io = |e| Error::io("rtl model socket", &self.location, e);
        let count = send.len().max(recv.len());
        if count as u64 > wire::MAX_WORDS as u64 {
            return Err(refused(&self.location, format!("{count} words in one request")));
        }
        let mut msg = wire::header(op, count as u32, offset).to_vec();
        send.iter().for_each(|w| msg.extend_from_slice(&w.to_le_bytes()));
        let mut s = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        s.write_all(&msg).map_err(io)?;
        let mut status = [0u8; 8];
        s.read_exact(&mut status).map_err(io)?;
        let mut buf = vec![0u8; 8 * recv.len()];
        s.read_exact(&mut buf).map_err(io)?;
        for (i, r) in recv.iter_mut().enumerate() {
            *r = u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        }
        match status[0] {
            wire::OK => Ok(()),
            wire::REFUSED => {
                Err(refused(&self.location, format!("the device refused the access at {offset:#x}")))
            }
            _ => Err(refused(
                &self.location,
                format!("request at {offset:#x} failed (bus timeout or bad request)"),
            )),
        }
    }

    /// The model's clock cycles so far.
    pub fn cycles(&self) -> Result<u64> {
        let mut c = [0];
        self.call(wire::CYCLES, 0, &[], &mut c)?;
        Ok(c[0])
    }
}

impl Mmio for SocketMmio {
    fn location(&self) -> &Path {
        &self.location
    }
    fn read_words(&self, offset: u64, out: &mut [u64]) -> Result<()> {
        self.call(wire::READ, offset, &[], out)
    }
    fn write_words(&self, offset: u64, words: &[u64]) -> Result<()> {
        self.call(wire::WRITE, offset, words, &mut [])
    }
}
