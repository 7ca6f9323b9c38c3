//! Reading another process's pages with `process_vm_readv`, a chunk at a time into a
//! reusable cache-sized buffer.

use super::error::{Result, TrackError, RIGHT_PTRACE_READ};
use super::ranges::{Range, PAGE};
use std::io;

/// Pages read per `process_vm_readv` call: 256 KiB stays in L2 while it is fingerprinted.
pub const CHUNK_PAGES: u64 = 64;
/// Most places one `process_vm_readv` reads from (the kernel's IOV_MAX).
pub const MAX_IOV: usize = 1024;

/// Reads pages of process `pid`.
#[derive(Debug)]
pub struct MemReader {
    pid: i32,
    buf: Vec<u8>,
}

impl MemReader {
    /// A reader for `pid`; nothing is checked until the first read.
    pub fn new(pid: i32) -> MemReader {
        MemReader { pid, buf: vec![0; (CHUNK_PAGES * PAGE) as usize] }
    }

    /// The process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Calls `f(address, page)` for every page of `range`, in order.
    pub fn for_each_page(&mut self, range: Range, f: impl FnMut(u64, &[u8])) -> Result<()> {
        self.for_each_page_in(&[range], f)
    }

    /// Calls `f(address, page)` for every page of `ranges` (sorted, not overlapping), in
    /// order. Scattered pages are gathered: one `process_vm_readv` reads up to
    /// [`CHUNK_PAGES`] pages from up to [`MAX_IOV`] places.
    pub fn for_each_page_in(&mut self, ranges: &[Range], mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        let mut remote: Vec<libc::iovec> = Vec::with_capacity(MAX_IOV);
        // Pages of the current batch: (address, pages) runs, matching `remote`.
        let mut runs: Vec<(u64, u64)> = Vec::with_capacity(MAX_IOV);
        let mut batch_pages = 0;
        let mut flush = |this: &mut MemReader,
                         remote: &mut Vec<libc::iovec>,
                         runs: &mut Vec<(u64, u64)>,
                         n: u64|
         -> Result<()> {
            if n == 0 {
                return Ok(());
            }
            this.read_into(remote, runs, (n * PAGE) as usize)?;
            let mut off = 0usize;
            for &(addr, pages) in runs.iter() {
                for i in 0..pages {
                    f(addr + i * PAGE, &this.buf[off..off + PAGE as usize]);
                    off += PAGE as usize;
                }
            }
            remote.clear();
            runs.clear();
            Ok(())
        };
        for r in ranges {
            let mut addr = r.start;
            while addr < r.end {
                let n = ((r.end - addr) / PAGE).min(CHUNK_PAGES - batch_pages);
                remote
                    .push(libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: (n * PAGE) as usize });
                runs.push((addr, n));
                batch_pages += n;
                addr += n * PAGE;
                if batch_pages == CHUNK_PAGES || remote.len() == MAX_IOV {
                    flush(self, &mut remote, &mut runs, batch_pages)?;
                    batch_pages = 0;
                }
            }
        }
        flush(self, &mut remote, &mut runs, batch_pages)
    }

    /// Reads `bytes` bytes from the `remote` places into the start of the buffer.
    fn read_into(&mut self, remote: &[libc::iovec], runs: &[(u64, u64)], bytes: usize) -> Result<()> {
        let local = libc::iovec { iov_base: self.buf.as_mut_ptr().cast(), iov_len: bytes };
        // SAFETY: `local` describes `bytes` writable bytes at the start of self.buf (bytes ≤
        // CHUNK_PAGES pages, the buffer's length); the remote iovecs (at most MAX_IOV) are
        // only dereferenced by the kernel in the target's address space, with its checks.
        let n =
            unsafe { libc::process_vm_readv(self.pid, &local, 1, remote.as_ptr(), remote.len() as u64, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => TrackError::Permission {
                    pid: self.pid,
                    what: "process_vm_readv",
                    right: RIGHT_PTRACE_READ,
                },
                Some(libc::ESRCH) => TrackError::NoProcess { pid: self.pid },
                Some(libc::EFAULT) => self.unmapped(runs[0].0),
                _ => TrackError::Sys { pid: self.pid, call: "process_vm_readv", source: e },
            });
        }
        if (n as usize) < bytes {
            // The read stops at the first page it cannot read: name it.
            let mut left = n as u64 / PAGE;
            for &(addr, pages) in runs {
                if left < pages {
                    return Err(self.unmapped(addr + left * PAGE));
                }
                left -= pages;
            }
        }
        Ok(())
    }

    fn unmapped(&self, at: u64) -> TrackError {
        TrackError::BadRange {
            pid: self.pid,
            start: at,
            end: at + PAGE,
            why: "not readable (unmapped or PROT_NONE)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_pages_and_names_pid_on_bad_address() {
        let buf: Vec<u8> = (0..5 * PAGE as usize).map(|i| (i / 4096) as u8).collect();
        let a = (buf.as_ptr() as u64).div_ceil(PAGE) * PAGE;
        let mut r = MemReader::new(std::process::id() as i32);
        let mut seen = Vec::new();
        r.for_each_page(Range::new(a, a + 3 * PAGE), |addr, p| seen.push((addr, p[0], p[4095]))).unwrap();
        assert_eq!(seen.len(), 3);
        for (addr, first, last) in seen {
            let want = ((addr - buf.as_ptr() as u64) / PAGE) as u8;
            assert_eq!(first, want);
            assert!(last == want || last == want + 1);
        }
        let e = r.for_each_page(Range::new(PAGE, 2 * PAGE), |_, _| {}).unwrap_err();
        assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
    }
}
