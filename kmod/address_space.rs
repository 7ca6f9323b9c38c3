// SPDX-License-Identifier: GPL-2.0
//! The address space a region watches: which one a pid names, whether the caller may read it,
//! and visiting its pages in place (referenced and mapped one at a time, never copied): their
//! fingerprint, and for copy-on-write detection whether each is anonymous and mapped more than
//! once (`page_share.c`) and which page it is.
//!
//! Pages are taken with `get_user_pages_remote` (a plain reference, read access, like
//! `/proc/PID/mem` and `process_vm_readv`), not pinned: a read-only pin of an anonymous page
//! shared copy-on-write would make the kernel copy it, growing the watched process.
//!
//! # Who may watch another process
//!
//! Exactly who may open its `/proc/PID/mem`: the kernel's ptrace access check (credentials,
//! dumpability, CAP_SYS_PTRACE, LSMs such as Yama), which implies PTRACE_MODE_READ_FSCREDS.
//! Neither `ptrace_may_access` nor the task's dumpability is exported to modules, and a partial
//! re-implementation would let a user read the fingerprints of its own non-dumpable processes
//! (ssh-agent, gpg-agent). So the check is the kernel's own: the module opens
//! `/proc/PID/mem` with the caller's credentials and file-system root, and accepts only if
//! that file holds the very address space the pid names (procfs keeps it in `private_data`;
//! the pointer is compared, never dereferenced, so a file of another kind can only fail the
//! comparison). Consequence: watching another process needs procfs mounted at `/proc` for the
//! caller's pid namespace; otherwise the access cannot be shown and the answer is EPERM.
//!
//! Like a `/proc/PID/mem` fd, a region keeps the address space it was granted (a `mmgrab`
//! reference, which pins no memory): after the process exits or execs, reads find it gone
//! (ESRCH) rather than reading whatever the pid runs next.

use crate::fp_core;
use core::ptr::{self, NonNull};
use kernel::{
    bindings,
    error::from_err_ptr,
    ffi::{c_long, c_ulong},
    mm::{Mm, MmWithUser, MmapReadGuard},
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::aref::ARef,
    task::Task,
};

/// Page size of a region (the fingerprint is defined over 4096-byte pages).
pub(crate) const PAGE: u64 = PAGE_SIZE as u64;
const _: () = assert!(fp_core::PAGE_BYTES == PAGE_SIZE);

/// Pages fingerprinted between two looks at pending signals; the target's mmap lock is
/// released and the CPU offered to others between batches.
const BATCH: u64 = 64;

/// The address space of process `pid` (0 = the caller), if the caller may read it.
/// EINVAL negative pid, ESRCH no such process (or a kernel thread), EPERM access denied.
///
/// Tasks are only reached through C functions (`get_task_mm`, ...), never through fields:
/// `struct task_struct` as bindgen (libclang) lays it out differs from GCC's layout in the
/// GCC-built kernels this module targets (`mm` is 48 bytes off in the tests' 7.3 build), which
/// also makes `CurrentTask::mm()` unusable here.
pub(crate) fn resolve(pid: i32) -> Result<ARef<Mm>> {
    if pid < 0 {
        return Err(EINVAL);
    }
    let own = task_mm(Task::current_raw())?;
    if pid == 0 {
        return Ok(ARef::from(&**own));
    }
    let users = pid_mm(pid)?;
    // The caller's own address space (another thread of it, or a CLONE_VM sibling) is
    // readable by the caller anyway.
    if users.as_raw() != own.as_raw() {
        check_access(pid, &users)?;
    }
    Ok(ARef::from(&**users))
}

/// The address space of `task`, with a user reference. ESRCH for kernel threads and exited
/// tasks.
fn task_mm(task: *mut bindings::task_struct) -> Result<ARef<MmWithUser>> {
    // SAFETY: `task` is a valid task (the caller holds a reference or it is `current`);
    // `get_task_mm` returns its address space with an `mmget` reference, or null.
    let mm = unsafe { bindings::get_task_mm(task) };
    let mm = NonNull::new(mm).ok_or(ESRCH)?;
    // SAFETY: `mm` carries the `mmget` reference just taken, which the `ARef` takes over;
    // `MmWithUser` is a transparent wrapper of `mm_struct`.
    Ok(unsafe { ARef::from_raw(mm.cast()) })
}

/// The address space of `pid` in the caller's pid namespace, with a user reference.
fn pid_mm(pid: i32) -> Result<ARef<MmWithUser>> {
    // SAFETY: `find_get_pid` may be called from process context with any number; it returns a
    // counted reference or null.
    let spid = unsafe { bindings::find_get_pid(pid) };
    if spid.is_null() {
        return Err(ESRCH);
    }
    // SAFETY: `spid` is a valid counted `struct pid`.
    let task = unsafe { bindings::get_pid_task(spid, bindings::pid_type_PIDTYPE_PID) };
    // SAFETY: drops the reference `find_get_pid` took; `spid` is not used afterwards.
    unsafe { bindings::put_pid(spid) };
    let task = NonNull::new(task).ok_or(ESRCH)?;
    // SAFETY: `get_pid_task` returned a counted task reference, which the `ARef` takes over
    // (and drops after `task_mm`); `Task` is a transparent wrapper of `task_struct`.
    let task: ARef<Task> = unsafe { ARef::from_raw(task.cast()) };
    task_mm(task.as_ptr())
}

/// EPERM unless the caller may open `/proc/PID/mem` of the process owning `mm` (see the
/// module documentation).
fn check_access(pid: i32, mm: &MmWithUser) -> Result {
    let path = CString::try_from_fmt(fmt!("/proc/{pid}/mem"))?;
    // SAFETY: `path` is NUL-terminated and outlives the call; `filp_open` runs in the caller's
    // process context with its credentials and file-system root. O_RDONLY is 0.
    let file = unsafe { bindings::filp_open(path.as_char_ptr(), 0, 0) };
    // Any failure (EACCES, EPERM, ENOENT without procfs, ...) means access is not shown.
    let file = from_err_ptr(file).map_err(|_| EPERM)?;
    // The path is resolved in the caller's mount namespace, which the caller may own (a user
    // namespace): it could bind-mount a file needing less access (`environ`, `auxv`: also a
    // procfs file holding the mm, opened with PTRACE_MODE_READ only) over `/proc/PID/mem`.
    // A bind mount keeps the source's dentry, so the file must be procfs's `/PID/mem` itself.
    // SAFETY: `file` is a valid open file (filp_open succeeded). `private_data` is only read and
    // compared as a pointer, never dereferenced.
    let same = unsafe { (*file).private_data } == mm.as_raw().cast() && is_proc_mem(file, pid);
    // SAFETY: `file` came from `filp_open`, is owned by no fd table, and is closed exactly once.
    unsafe { bindings::filp_close(file, ptr::null_mut()) };
    if same {
        Ok(())
    } else {
        Err(EPERM)
    }
}

/// Whether `file` is procfs's `mem` file of `pid`: its dentry's path within its file system is
/// `/PID/mem` (a file bind-mounted over that path keeps its own name) on a procfs superblock.
fn is_proc_mem(file: *mut bindings::file, pid: i32) -> bool {
    const PROC_SUPER_MAGIC: c_ulong = 0x9fa0;
    let mut want = [0u8; 24];
    let want = match write_path(&mut want, pid) {
        Some(w) => w,
        None => return false,
    };
    let mut buf = [0u8; 64];
    // SAFETY: `file` is a valid open file: its `f_path.dentry` is a valid, referenced dentry
    // for as long as the file is open, and so is the dentry's superblock. `dentry_path_raw`
    // writes at most `buf.len()` bytes into `buf` and returns a pointer into it (the path,
    // NUL-terminated, ends at the end of `buf`) or an error pointer.
    let (magic, path) = unsafe {
        let dentry = (*file).__bindgen_anon_1.f_path.dentry;
        let magic = (*(*dentry).d_sb).s_magic;
        (magic, bindings::dentry_path_raw(dentry, buf.as_mut_ptr().cast(), buf.len() as i32))
    };
    if magic != PROC_SUPER_MAGIC || path.is_null() || (path as usize) >= (-4095isize) as usize {
        return false;
    }
    let start = path as usize - buf.as_ptr() as usize;
    match buf.get(start..) {
        Some(got) => got.iter().position(|&b| b == 0).is_some_and(|n| got[..n] == *want),
        None => false,
    }
}

/// Writes `/PID/mem` into `out`; returns the bytes written.
fn write_path(out: &mut [u8; 24], pid: i32) -> Option<&[u8]> {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = u32::try_from(pid).ok()?;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut len = 0;
    out[len] = b'/';
    len += 1;
    for k in (0..n).rev() {
        out[len] = digits[k];
        len += 1;
    }
    out[len..len + 4].copy_from_slice(b"/mem");
    Some(&out[..len + 4])
}

/// Calls `f(i, fingerprint)` for the `pages` pages from `start`, in order: `Some` with the
/// page's fingerprint, `None` when it cannot be read (no mapping, PROT_NONE, I/O memory).
/// Untouched anonymous pages read as the zero page, as through `/proc/PID/mem`.
/// ESRCH when the address space is gone, EINTR when a signal is pending.
pub(crate) fn fingerprint_pages(
    mm: &Mm,
    start: u64,
    pages: u64,
    mut f: impl FnMut(u64, Option<u64>),
) -> Result {
    visit_pages(mm, start, pages, |i, page| {
        f(i, page.map(UserPage::fingerprint));
        Ok(())
    })
}

/// Calls `f(i, page)` for the `pages` pages from `start`, in order, with the page mapped at
/// each address (referenced for the call), or `None` when it cannot be read (no mapping,
/// PROT_NONE, I/O memory). Untouched anonymous pages read as the zero page.
/// ESRCH when the address space is gone, EINTR when a signal is pending; an error of `f`
/// stops the walk.
pub(crate) fn visit_pages(
    mm: &Mm,
    start: u64,
    pages: u64,
    mut f: impl FnMut(u64, Option<&UserPage>) -> Result,
) -> Result {
    let users = mm.mmget_not_zero().ok_or(ESRCH)?;
    let mut i = 0;
    while i < pages {
        let end = pages.min(i + BATCH);
        {
            let lock = users.mmap_read_lock();
            while i < end {
                let page = UserPage::get(&users, &lock, start + i * PAGE)?;
                f(i, page.as_ref())?;
                i += 1;
            }
        }
        if kernel::current!().signal_pending() {
            return Err(EINTR);
        }
        // SAFETY: process context, no lock held.
        unsafe { bindings::might_resched() };
    }
    Ok(())
}

/// A page of a user address space, referenced (not pinned) while this value lives.
pub(crate) struct UserPage {
    page: NonNull<bindings::page>,
}

/// How a page is mapped ([`UserPage::share`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Share {
    /// Not an anonymous page: a file page, the zero page, or kernel memory mapped to users.
    NotAnon,
    /// An anonymous page mapped more than once (after fork, or merged by KSM).
    AnonShared,
    /// An anonymous page mapped once.
    AnonOnce,
}

extern "C" {
    /// page_share.c: bit 0 anonymous (not a zero page), bit 1 mapped once. Takes a
    /// `struct page *` (declared opaque: bindgen's `page` holds zero-sized C arrays).
    fn atomik_page_share(page: *mut core::ffi::c_void) -> core::ffi::c_uint;
}

impl UserPage {
    /// The page at `addr` of `mm`, whose mmap lock `_lock` holds; `None` when it cannot be read.
    fn get(mm: &MmWithUser, _lock: &MmapReadGuard<'_>, addr: u64) -> Result<Option<UserPage>> {
        let mut page: *mut bindings::page = ptr::null_mut();
        // SAFETY: `mm` has a user reference and its mmap lock is held for reading (`_lock`), as
        // `get_user_pages_remote` requires when `locked` is null; `page` has room for the one
        // page asked for. Flags 0: read access, no FOLL_FORCE (like process_vm_readv).
        let n = unsafe {
            bindings::get_user_pages_remote(mm.as_raw(), addr as c_ulong, 1, 0, &mut page, ptr::null_mut())
        };
        if n == EFAULT.to_errno() as c_long || n == 0 || page.is_null() {
            return Ok(None);
        }
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        Ok(NonNull::new(page).map(|page| UserPage { page }))
    }

    /// The page's fingerprint (`fp_core`), read in place.
    pub(crate) fn fingerprint(&self) -> u64 {
        // SAFETY: the page is referenced while `self` lives; `kmap_local_page` maps it for this
        // context until `kunmap_local`.
        let va = unsafe { bindings::kmap_local_page(self.page.as_ptr()) }.cast::<u64>();
        let fp = fp_core::fingerprint_words(|w| {
            // SAFETY: `va` maps one whole page, page aligned, and `w < PAGE_WORDS`, so the word
            // is inside it and aligned. Its owner may write it meanwhile: one volatile
            // whole-word read.
            u64::from_le(unsafe { ptr::read_volatile(va.add(w)) })
        });
        // SAFETY: `va` is the only mapping made by `kmap_local_page` above, unmapped once.
        unsafe { bindings::kunmap_local(va.cast()) };
        fp
    }

    /// Whether the page is anonymous, and mapped once or more (the test of pagemap's
    /// "exclusively mapped" bit). A snapshot: another process may map or unmap it meanwhile.
    pub(crate) fn share(&self) -> Share {
        // SAFETY: the page is referenced while `self` lives; `atomik_page_share` only reads it.
        let bits = unsafe { atomik_page_share(self.page.as_ptr().cast()) };
        match (bits & 1 != 0, bits & 2 != 0) {
            (false, _) => Share::NotAnon,
            (true, false) => Share::AnonShared,
            (true, true) => Share::AnonOnce,
        }
    }

    /// Which page this is, to tell later whether an address maps the same page: the address of
    /// its `struct page`, compared only (never dereferenced once the reference is gone, never
    /// shown to users). Never 0.
    pub(crate) fn identity(&self) -> usize {
        self.page.as_ptr() as usize
    }
}

impl Drop for UserPage {
    fn drop(&mut self) {
        let mut page = self.page.as_ptr();
        // SAFETY: drops, once, the one page reference `get_user_pages_remote` took; the union is
        // C's transparent union of page-pointer arrays, passed like the pointer it holds.
        unsafe { bindings::release_pages(bindings::release_pages_arg { pages: &mut page }, 1) };
    }
}
