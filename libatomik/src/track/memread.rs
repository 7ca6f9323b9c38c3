//! Reading another process's pages through `/proc/PID/mem`, a chunk at a time into a
//! reusable cache-sized buffer.
//!
//! Not `process_vm_readv`: it pins the pages it reads (FOLL_PIN), and since Linux 5.19 a
//! read-only pin of an anonymous page shared copy-on-write *unshares* it — every shared page
//! it reads is copied in the target. That would break the COW sharing atomikctl measures and
//! cost the target memory. `/proc/PID/mem` takes plain references (FOLL_GET) and leaves the
//! sharing as it was (checked by a test).

use super::error::{Result, TrackError, RIGHT_PTRACE_READ};
use super::ranges::{Range, PAGE};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Pages read per system call: 256 KiB stays in L2 while it is fingerprinted.
pub const CHUNK_PAGES: u64 = 64;

/// Reads pages of process `pid`.
#[derive(Debug)]
pub struct MemReader {
    pid: i32,
    file: Option<File>,
    buf: Vec<u8>,
}

impl MemReader {
    /// A reader for `pid`; `/proc/PID/mem` is opened at the first read.
    pub fn new(pid: i32) -> MemReader {
        MemReader { pid, file: None, buf: vec![0; (CHUNK_PAGES * PAGE) as usize] }
    }

    /// The process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn open(&mut self) -> Result<()> {
        if self.file.is_none() {
            let path = PathBuf::from(format!("/proc/{}/mem", self.pid));
            let f = File::open(&path)
                .map_err(|e| TrackError::proc_io(self.pid, &path, e, "reading memory", RIGHT_PTRACE_READ))?;
            self.file = Some(f);
        }
        Ok(())
    }

    /// Calls `f(address, page)` for every page of `range`, in order.
    pub fn for_each_page(&mut self, range: Range, f: impl FnMut(u64, &[u8])) -> Result<()> {
        self.for_each_page_in(&[range], f)
    }

    /// Calls `f(address, page)` for every page of `ranges`, in order.
    pub fn for_each_page_in(&mut self, ranges: &[Range], mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        self.open()?;
        for r in ranges {
            let mut addr = r.start;
            while addr < r.end {
                let n = ((r.end - addr) / PAGE).min(CHUNK_PAGES);
                let bytes = (n * PAGE) as usize;
                self.read_at(addr, bytes)?;
                for (i, page) in self.buf[..bytes].chunks_exact(PAGE as usize).enumerate() {
                    f(addr + i as u64 * PAGE, page);
                }
                addr += n * PAGE;
            }
        }
        Ok(())
    }

    fn read_at(&mut self, addr: u64, bytes: usize) -> Result<()> {
        let file = self.file.as_ref().expect("opened by for_each_page_in");
        let mut done = 0;
        while done < bytes {
            match file.read_at(&mut self.buf[done..bytes], addr + done as u64) {
                Ok(0) => return Err(self.unmapped(addr + done as u64)),
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(match e.raw_os_error() {
                        Some(libc::EIO) | Some(libc::EFAULT) => self.unmapped(addr + done as u64),
                        Some(libc::ESRCH) => TrackError::NoProcess { pid: self.pid },
                        Some(libc::EPERM) | Some(libc::EACCES) => TrackError::Permission {
                            pid: self.pid,
                            what: "reading memory",
                            right: RIGHT_PTRACE_READ,
                        },
                        _ => TrackError::Sys { pid: self.pid, call: "pread /proc/PID/mem", source: e },
                    })
                }
            }
        }
        Ok(())
    }

    fn unmapped(&self, at: u64) -> TrackError {
        let at = at / PAGE * PAGE;
        TrackError::BadRange { pid: self.pid, start: at, end: at + PAGE, why: "not readable (unmapped)" }
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
