//! Reading another process's pages with `process_vm_readv`, a chunk at a time into a
//! reusable cache-sized buffer.

use super::error::{Result, TrackError, RIGHT_PTRACE_READ};
use super::ranges::{Range, PAGE};
use std::io;

/// Pages read per `process_vm_readv` call: 256 KiB stays in L2 while it is fingerprinted.
pub const CHUNK_PAGES: u64 = 64;

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
    pub fn for_each_page(&mut self, range: Range, mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        let mut addr = range.start;
        while addr < range.end {
            let n = ((range.end - addr) / PAGE).min(CHUNK_PAGES);
            let bytes = (n * PAGE) as usize;
            self.read_into(addr, bytes)?;
            for (i, page) in self.buf[..bytes].chunks_exact(PAGE as usize).enumerate() {
                f(addr + i as u64 * PAGE, page);
            }
            addr += n * PAGE;
        }
        Ok(())
    }

    fn read_into(&mut self, addr: u64, bytes: usize) -> Result<()> {
        let mut done = 0usize;
        while done < bytes {
            let local = libc::iovec { iov_base: self.buf[done..].as_mut_ptr().cast(), iov_len: bytes - done };
            let remote =
                libc::iovec { iov_base: (addr + done as u64) as *mut libc::c_void, iov_len: bytes - done };
            // SAFETY: `local` describes bytes - done writable bytes inside self.buf (which
            // is CHUNK_PAGES pages long and bytes ≤ that); the remote iovec is only
            // dereferenced by the kernel in the target's address space, with its checks.
            let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => TrackError::Permission {
                        pid: self.pid,
                        what: "process_vm_readv",
                        right: RIGHT_PTRACE_READ,
                    },
                    Some(libc::ESRCH) => TrackError::NoProcess { pid: self.pid },
                    Some(libc::EFAULT) => self.unmapped(addr + done as u64),
                    _ => TrackError::Sys { pid: self.pid, call: "process_vm_readv", source: e },
                });
            }
            if n == 0 {
                return Err(self.unmapped(addr + done as u64));
            }
            done += n as usize;
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
