//! Thin, checked wrappers around `/dev/atomik` ioctls and mmap for the suites. Errors are the
//! raw errno so that tests can assert the exact one the module documents.

use atomik::abi::*;
use std::ffi::CString;

/// An errno value.
pub type Errno = i32;
pub type R<T> = Result<T, Errno>;

pub fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A name in the ABI's fixed-size, NUL-terminated form.
pub fn name(s: &str) -> [u8; NAME_LEN] {
    let mut n = [0u8; NAME_LEN];
    n[..s.len()].copy_from_slice(s.as_bytes());
    n
}

/// An open `/dev/atomik`.
pub struct Dev {
    pub fd: i32,
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: `fd` is owned by this value and closed once.
        unsafe { libc::close(self.fd) };
    }
}

impl Dev {
    pub fn open() -> R<Dev> {
        Dev::open_flags(libc::O_RDWR)
    }

    pub fn open_flags(flags: i32) -> R<Dev> {
        let path = CString::new(DEVICE_PATH).unwrap();
        // SAFETY: plain open(2) of a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            Err(errno())
        } else {
            Ok(Dev { fd })
        }
    }

    /// Raw ioctl with any argument (the fuzzer passes bad pointers on purpose).
    pub fn raw(&self, cmd: u32, arg: usize) -> R<i32> {
        // SAFETY: the kernel validates `arg`; a bad pointer gives EFAULT, not UB in this process,
        // since the kernel only reads or writes user memory through checked copies.
        let r = unsafe { libc::ioctl(self.fd, cmd as _, arg) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r)
        }
    }

    fn call<T>(&self, cmd: u32, arg: &mut T) -> R<()> {
        self.raw(cmd, arg as *mut T as usize).map(|_| ())
    }

    pub fn info(&self) -> R<Info> {
        let mut i = Info::default();
        self.call(IOCTL_GET_INFO, &mut i)?;
        Ok(i)
    }

    pub fn create(&self, n: &str, slots: u64, op: u32, mode: u32, shards: u32) -> R<()> {
        let mut c = BankCreate { name: name(n), slots, op, mode, shards, flags: 0 };
        self.call(IOCTL_BANK_CREATE, &mut c)
    }

    pub fn attach(&self, n: &str, access: u32) -> R<BankOpen> {
        let mut o = BankOpen { name: name(n), access, op: 0, slots: 0, map_size: 0 };
        self.call(IOCTL_BANK_OPEN, &mut o)?;
        Ok(o)
    }

    pub fn destroy(&self, n: &str) -> R<()> {
        let mut b = BankName { name: name(n) };
        self.call(IOCTL_BANK_DESTROY, &mut b)
    }

    fn slot(&self, cmd: u32, slot: u64, value: u64) -> R<u64> {
        let mut s = SlotOp { slot, value };
        self.call(cmd, &mut s)?;
        Ok(s.value)
    }

    pub fn load(&self, slot: u64, v: u64) -> R<()> {
        self.slot(IOCTL_LOAD, slot, v).map(|_| ())
    }
    pub fn accum(&self, slot: u64, d: u64) -> R<()> {
        self.slot(IOCTL_ACCUM, slot, d).map(|_| ())
    }
    pub fn read(&self, slot: u64) -> R<u64> {
        self.slot(IOCTL_READ, slot, 0)
    }
    pub fn swap(&self, slot: u64) -> R<u64> {
        self.slot(IOCTL_SWAP, slot, 0)
    }
    /// IS_CLEAN: whether the accumulator (shards folded in) is the identity.
    pub fn is_clean(&self, slot: u64) -> R<bool> {
        Ok(self.slot(IOCTL_IS_CLEAN, slot, 0)? == 1)
    }
    /// SWAP_SET: the state before, the reference set to `reference`.
    pub fn swap_set(&self, slot: u64, reference: u64) -> R<u64> {
        self.slot(IOCTL_SWAP_SET, slot, reference)
    }

    /// BATCH; returns `done`. Entries carry statuses and values back.
    pub fn batch(&self, entries: &mut [BatchEntry]) -> R<u32> {
        let mut b = Batch { entries: entries.as_mut_ptr() as u64, count: entries.len() as u32, done: 0 };
        self.call(IOCTL_BATCH, &mut b)?;
        Ok(b.done)
    }

    /// BANK_LIST with room for 256 banks: the entries and the count the kernel reported.
    pub fn list(&self) -> R<(Vec<BankListEntry>, u32)> {
        let mut entries = vec![BankListEntry::EMPTY; 256];
        let mut l = BankList { entries: entries.as_mut_ptr() as u64, capacity: 256, count: 0 };
        self.call(IOCTL_BANK_LIST, &mut l)?;
        entries.truncate((l.count as usize).min(256));
        Ok((entries, l.count))
    }

    pub fn stats(&self) -> R<BankStats> {
        let mut s = BankStats::default();
        self.call(IOCTL_BANK_STATS, &mut s)?;
        Ok(s)
    }

    /// mmap of `len` bytes at page offset `pgoff`.
    pub fn map(&self, len: usize, pgoff: usize, prot: i32, flags: i32) -> R<Map> {
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory is replaced.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, self.fd, (pgoff * 4096) as i64) };
        if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(Map { ptr: p as *mut u8, len })
        }
    }
}

/// A mapping of a bank, unmapped on drop.
pub struct Map {
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: the mapping is shared memory accessed only through atomics.
unsafe impl Send for Map {}
// SAFETY: as above.
unsafe impl Sync for Map {}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns.
        unsafe { libc::munmap(self.ptr as *mut _, self.len) };
    }
}

impl Map {
    /// The word at byte offset `off` (8-aligned, inside the mapping).
    pub fn word(&self, off: u64) -> &std::sync::atomic::AtomicU64 {
        assert!(off.is_multiple_of(8) && (off as usize) + 8 <= self.len);
        // SAFETY: aligned, inside the live mapping (checked), shared words are atomic.
        unsafe { &*(self.ptr.add(off as usize) as *const std::sync::atomic::AtomicU64) }
    }

    pub fn header(&self) -> BankHeader {
        // SAFETY: the mapping starts with a one-page header; plain data.
        unsafe { std::ptr::read_volatile(self.ptr as *const BankHeader) }
    }
}
