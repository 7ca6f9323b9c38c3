//! Real processes for the tracking tests: an anonymous region mapped before `fork`, and a
//! child that writes pages of it on command over a pipe.
#![allow(dead_code)]

use atomik::track::ranges::{Range, PAGE};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A private anonymous mapping in this process, or a private mapping of a file
/// ([`Region::file`]).
pub struct Region {
    pub base: u64,
    pub pages: usize,
    /// The mapped file, kept (named) while the mapping lives.
    file: Option<tempfile::NamedTempFile>,
}

impl Region {
    /// Maps `pages` pages and fills page `i` with the word `seed + i`.
    pub fn new(pages: usize, seed: u64) -> Region {
        let r = Region::reserved(pages);
        for i in 0..pages {
            r.fill(i, seed + i as u64);
        }
        r
    }

    /// Maps `pages` pages and touches none of them (none is populated: a reservation, such
    /// as a malloc arena or a heap that fills up later).
    pub fn reserved(pages: usize) -> Region {
        // SAFETY: anonymous private mapping without an address hint; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        // No transparent huge pages: the tests count 4 KiB copy-on-write copies.
        // SAFETY: advice on the mapping just created.
        unsafe { libc::madvise(p, pages * PAGE as usize, libc::MADV_NOHUGEPAGE) };
        Region { base: p as u64, pages, file: None }
    }

    /// Maps a file of `pages` pages, page `i` holding the word `seed + i`, privately
    /// (copy-on-write, as a program's initialised data is mapped) and writable, touching
    /// none of its pages.
    pub fn file(pages: usize, seed: u64) -> Region {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for i in 0..pages {
            let page: Vec<u8> =
                std::iter::repeat_n((seed + i as u64).to_ne_bytes(), PAGE as usize / 8).flatten().collect();
            f.write_all(&page).unwrap();
        }
        f.flush().unwrap();
        // SAFETY: a private mapping of the file just written, without an address hint;
        // checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                f.as_file().as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        Region { base: p as u64, pages, file: Some(f) }
    }

    pub fn range(&self) -> Range {
        Range::new(self.base, self.base + (self.pages as u64) * PAGE)
    }

    pub fn page_addr(&self, i: usize) -> u64 {
        self.base + i as u64 * PAGE
    }

    /// Fills page `i` with the word `v` (every word of the page).
    pub fn fill(&self, i: usize, v: u64) {
        fill_raw(self.page_addr(i), v)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping created in new(); nothing borrows it.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.pages * PAGE as usize) };
    }
}

fn fill_raw(addr: u64, v: u64) {
    let words = addr as *mut u64;
    for w in 0..(PAGE / 8) as usize {
        // SAFETY: callers pass the address of a mapped, writable page of a Region; volatile
        // so that rewriting the same value is a real store (a silent write).
        unsafe { std::ptr::write_volatile(words.add(w), v) };
    }
}

const CMD_FILL: u32 = 0;
const CMD_ARM: u32 = 1;
const CMD_EXIT: u32 = 2;
const CMD_MAP: u32 = 3;

/// A forked child sharing the parent's mappings copy-on-write, obeying commands.
pub struct Child {
    pub pid: i32,
    cmd: OwnedFd,
    ack: OwnedFd,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn read_full(fd: i32, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most buf.len() - done bytes into buf[done..].
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

fn write_full(fd: i32, buf: &[u8]) {
    // SAFETY: reads buf.len() bytes from buf; pipe writes ≤ PIPE_BUF are atomic.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    assert_eq!(n, buf.len() as isize, "pipe write");
}

impl Child {
    /// Forks. The child serves commands on `region`'s addresses until told to exit.
    pub fn fork(region: &Region) -> Child {
        let (cmd_r, cmd_w) = pipe();
        let (ack_r, ack_w) = pipe();
        let range = region.range();
        // SAFETY: the child only runs the command loop below (reads, writes to the region,
        // the userfaultfd ioctls) and leaves with _exit, never returning into the test
        // harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            drop(cmd_w);
            drop(ack_r);
            let mut m = [0u8; 16];
            while read_full(cmd_r.as_raw_fd(), &mut m) {
                let kind = u32::from_le_bytes(m[0..4].try_into().unwrap());
                let page = u32::from_le_bytes(m[4..8].try_into().unwrap()) as u64;
                let v = u64::from_le_bytes(m[8..16].try_into().unwrap());
                let ok = match kind {
                    CMD_FILL => {
                        fill_raw(range.start + page * PAGE, v);
                        true
                    }
                    CMD_ARM => match atomik::track::scan::WpArm::arm(&[range]) {
                        Ok(arm) => {
                            std::mem::forget(arm);
                            true
                        }
                        Err(_) => false,
                    },
                    CMD_MAP => {
                        // A new mapping (the mapping list changes), `page` pages filled
                        // with `v`; never unmapped.
                        let r = Region::reserved(page as usize);
                        for i in 0..page as usize {
                            r.fill(i, v);
                        }
                        std::mem::forget(r);
                        true
                    }
                    _ => break,
                };
                write_full(ack_w.as_raw_fd(), &[ok as u8]);
            }
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        Child { pid, cmd: cmd_w, ack: ack_r }
    }

    fn send(&self, kind: u32, page: usize, v: u64) -> bool {
        let mut m = [0u8; 16];
        m[0..4].copy_from_slice(&kind.to_le_bytes());
        m[4..8].copy_from_slice(&(page as u32).to_le_bytes());
        m[8..16].copy_from_slice(&v.to_le_bytes());
        write_full(self.cmd.as_raw_fd(), &m);
        let mut a = [0u8; 1];
        assert!(read_full(self.ack.as_raw_fd(), &mut a), "child {} died", self.pid);
        a[0] == 1
    }

    /// The child fills its page `page` with the word `v`.
    pub fn fill(&self, page: usize, v: u64) {
        assert!(self.send(CMD_FILL, page, v));
    }

    /// The child maps a new region of `pages` pages and fills them with the word `v`.
    pub fn map_new(&self, pages: usize, v: u64) {
        assert!(self.send(CMD_MAP, pages, v));
    }

    /// The child arms async write-protection on the whole region; false if the kernel
    /// refused.
    pub fn arm(&self) -> bool {
        self.send(CMD_ARM, 0, 0)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let m = [CMD_EXIT as u8; 16];
        // SAFETY: writes 16 bytes from a live buffer; failure (child gone) is fine.
        unsafe { libc::write(self.cmd.as_raw_fd(), m.as_ptr().cast(), 16) };
        let mut status = 0;
        // SAFETY: reaps our own child; status is a live int.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// Serialises the tests of one binary that fork: a fork shares every page of this process
/// copy-on-write again, which would disturb another test counting exclusive pages.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
