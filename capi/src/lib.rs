//! The C ABI of libatomik: create, open, destroy and use banks from C through the same
//! backend choice as Rust callers (the userspace default, or `/dev/atomik` when its module is
//! loaded; `ATOMIK_BACKEND` forces one).
//!
//! Conventions: every function that can fail returns 0 or a negative errno (`-ENOENT` no such
//! bank, `-EEXIST` name taken, `-EINVAL` bad name, parameter or NULL pointer, `-ERANGE` slot out
//! of range, `-EACCES` permission denied, `-EBADF` bank opened read-only, `-EPERM` refused on a
//! replicated or untrusted bank, `-ENODEV` backend not available, `-EBUSY` no free shard,
//! `-EIO` a damaged bank file, or the errno of the failed system call), and
//! [`atomik_last_error`] describes the last failure of the calling thread. Nothing here panics
//! across the boundary: a panic would abort, so none is allowed to escape (`catch_unwind`).
//!
//! The header `include/atomik_capi.h` is generated from this file by cbindgen (see
//! `tests/header.rs`); `include/atomik.h` of libatomik is the kernel ABI, which this library
//! does not need.

use atomik::{Access, Bank, CreateOptions, Error, Op};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An open bank. Opaque; close it with [`atomik_bank_close`]. May be used from many threads at
/// once (every operation is thread-safe), but closed only once nothing else uses it.
pub struct AtomikBank {
    bank: Bank,
}

/// Read access (`atomik_bank_open`).
pub const ATOMIK_CAPI_READ: u32 = 1;
/// Read and write access.
pub const ATOMIK_CAPI_READ_WRITE: u32 = 3;
/// The XOR operator.
pub const ATOMIK_CAPI_OP_XOR: u32 = 0;
/// The wrapping ADD operator.
pub const ATOMIK_CAPI_OP_ADD: u32 = 1;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: String) {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// The negative errno for a library error.
fn code(e: &Error) -> c_int {
    let errno = match e {
        Error::BadName { .. } | Error::BadParams { .. } | Error::BadBackend { .. } => libc::EINVAL,
        Error::NotFound { .. } => libc::ENOENT,
        Error::Exists { .. } => libc::EEXIST,
        Error::SlotOutOfRange { .. } => libc::ERANGE,
        Error::Corrupt { .. } => libc::EIO,
        Error::UntrustedDir { .. } | Error::Untrusted { .. } | Error::Replicated { .. } => libc::EPERM,
        Error::PermissionDenied { .. } => libc::EACCES,
        Error::ReadOnly { .. } => libc::EBADF,
        Error::Io { source, .. } | Error::Ioctl { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        Error::BackendUnavailable { .. } => libc::ENODEV,
        Error::NoFreeShard { .. } => libc::EBUSY,
        #[allow(unreachable_patterns)]
        _ => libc::EIO,
    };
    -errno
}

/// Runs `f`, turning an error or a panic into a negative errno and the thread's last error.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(Failure::Lib(e))) => {
            set_error(e.to_string());
            code(&e)
        }
        Ok(Err(Failure::Arg(what))) => {
            set_error(what.to_owned());
            -libc::EINVAL
        }
        Err(_) => {
            set_error("internal error (panic) in libatomik".to_owned());
            -libc::EIO
        }
    }
}

enum Failure {
    Lib(Error),
    Arg(&'static str),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Lib(e)
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn str_arg<'a>(p: *const c_char) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::Arg("bank name is NULL"));
    }
    // SAFETY: not NULL; NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Failure::Arg("bank name is not UTF-8"))
}

/// # Safety
/// `p` is NULL or a pointer returned by this library and not yet closed.
unsafe fn bank_arg<'a>(p: *const AtomikBank) -> Result<&'a Bank, Failure> {
    // SAFETY: per the contract, a non-NULL `p` points to a live `AtomikBank`.
    unsafe { p.as_ref() }.map(|b| &b.bank).ok_or(Failure::Arg("bank is NULL"))
}

/// # Safety
/// `p` is NULL or valid for writing a `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::Arg("result pointer is NULL"));
    }
    // SAFETY: not NULL, writable by the caller's contract.
    unsafe { p.write(v) };
    Ok(())
}

/// Checks `out`, reads `name`, and stores the bank `make` returns for it in `*out` (left as it
/// is on error).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
unsafe fn open_into(
    name: *const c_char,
    out: *mut *mut AtomikBank,
    make: impl FnOnce(&str) -> Result<Bank, Failure>,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::Arg("result pointer is NULL"));
    }
    // SAFETY: the caller's contract.
    let bank = make(unsafe { str_arg(name) }?)?;
    // SAFETY: checked not NULL above; writable by the contract.
    unsafe { put(out, Box::into_raw(Box::new(AtomikBank { bank }))) }
}

fn op_of(op: u32) -> Result<Op, Failure> {
    match op {
        ATOMIK_CAPI_OP_XOR => Ok(Op::Xor),
        ATOMIK_CAPI_OP_ADD => Ok(Op::Add),
        _ => Err(Failure::Arg("op is neither ATOMIK_CAPI_OP_XOR nor ATOMIK_CAPI_OP_ADD")),
    }
}

/// Creates bank `name` (`[A-Za-z0-9._-]{1,63}`, not starting with `.`) of `slots` slots under
/// `op`, with permission bits `mode` (e.g. 0600) and `shards` writer shards (0..=16), and opens
/// it read-write into `*out`. Nothing is created on error.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_create(
    name: *const c_char,
    slots: u64,
    op: u32,
    mode: u32,
    shards: u32,
    out: *mut *mut AtomikBank,
) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| unsafe {
        open_into(name, out, |name| {
            let opts = CreateOptions::new(slots).op(op_of(op)?).mode(mode).shards(shards);
            Ok(Bank::create(name, opts)?)
        })
    })
}

/// Opens bank `name` with `access` (`ATOMIK_CAPI_READ` or `ATOMIK_CAPI_READ_WRITE`) into
/// `*out`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_open(
    name: *const c_char,
    access: u32,
    out: *mut *mut AtomikBank,
) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| unsafe {
        open_into(name, out, |name| {
            let access = match access {
                ATOMIK_CAPI_READ => Access::ReadOnly,
                ATOMIK_CAPI_READ_WRITE => Access::ReadWrite,
                _ => {
                    return Err(Failure::Arg("access is neither ATOMIK_CAPI_READ nor ATOMIK_CAPI_READ_WRITE"))
                }
            };
            Ok(Bank::open_with(name, access)?)
        })
    })
}

/// Destroys bank `name` (open banks keep working until closed).
///
/// # Safety
/// `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_destroy(name: *const c_char) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| Ok(Bank::destroy(unsafe { str_arg(name) }?)?))
}

/// Closes a bank opened by this library (NULL is ignored).
///
/// # Safety
/// `bank` is NULL or a pointer returned by this library, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_close(bank: *mut AtomikBank) {
    if !bank.is_null() {
        // SAFETY: made by Box::into_raw here, closed once (the caller's contract).
        drop(unsafe { Box::from_raw(bank) });
    }
}

/// Slot count of the bank (0 for NULL).
///
/// # Safety
/// `bank` is NULL or an open bank.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_slots(bank: *const AtomikBank) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { bank_arg(bank) }.map_or(0, |b| b.slots())
}

/// The backend the bank is on: `"soft"` (the userspace default), `"device"` (`/dev/atomik`) or
/// `"fpga"`; a static string (`""` for NULL).
///
/// # Safety
/// `bank` is NULL or an open bank.
#[no_mangle]
pub unsafe extern "C" fn atomik_bank_backend(bank: *const AtomikBank) -> *const c_char {
    // SAFETY: the caller's contract.
    let name = unsafe { bank_arg(bank) }.map_or("", |b| b.backend().name());
    match name {
        "soft" => c"soft".as_ptr(),
        "device" => c"device".as_ptr(),
        "fpga" => c"fpga".as_ptr(),
        _ => c"".as_ptr(),
    }
}

/// LOAD: reference = `value`, accumulator = identity.
///
/// # Safety
/// `bank` is NULL or an open bank.
#[no_mangle]
pub unsafe extern "C" fn atomik_load(bank: *const AtomikBank, slot: u64, value: u64) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| Ok(unsafe { bank_arg(bank) }?.load(slot, value)?))
}

/// ACCUM: accumulator ∘= `delta`. Lock-free; safe from any number of threads and processes.
///
/// # Safety
/// `bank` is NULL or an open bank.
#[no_mangle]
pub unsafe extern "C" fn atomik_accum(bank: *const AtomikBank, slot: u64, delta: u64) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| Ok(unsafe { bank_arg(bank) }?.accum(slot, delta)?))
}

/// ACCUMs `deltas[i]` into `slots[i]` for `i < n`; every slot is checked first, so a bad one
/// changes nothing.
///
/// # Safety
/// `bank` is NULL or an open bank; `slots` and `deltas` point to `n` values each (or `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn atomik_accum_batch(
    bank: *const AtomikBank,
    slots: *const u64,
    deltas: *const u64,
    n: usize,
) -> c_int {
    guard(|| {
        // SAFETY: the caller's contract.
        let bank = unsafe { bank_arg(bank) }?;
        if n == 0 {
            return Ok(());
        }
        if slots.is_null() || deltas.is_null() {
            return Err(Failure::Arg("slots or deltas is NULL"));
        }
        // SAFETY: both point to `n` values (the caller's contract).
        let (s, d) = unsafe { (std::slice::from_raw_parts(slots, n), std::slice::from_raw_parts(deltas, n)) };
        let ops: Vec<(u64, u64)> = s.iter().copied().zip(d.iter().copied()).collect();
        Ok(bank.accum_batch(&ops)?)
    })
}

/// READ: `*out` = reference ∘ accumulator.
///
/// # Safety
/// `bank` is NULL or an open bank; `out` is valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn atomik_read(bank: *const AtomikBank, slot: u64, out: *mut u64) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| unsafe { put(out, bank_arg(bank)?.read(slot)?) })
}

/// SWAP: `*out` = the state, which becomes the reference (accumulator = identity). Exact:
/// every concurrent ACCUM lands once, in `*out` or in the new accumulator.
///
/// # Safety
/// `bank` is NULL or an open bank; `out` is valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn atomik_swap(bank: *const AtomikBank, slot: u64, out: *mut u64) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| unsafe { put(out, bank_arg(bank)?.swap(slot)?) })
}

/// SWAP_SET: `*out` = the state; the reference becomes `reference`, the accumulator the
/// identity, in one step (exact, as SWAP).
///
/// # Safety
/// `bank` is NULL or an open bank; `out` is valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn atomik_swap_set(
    bank: *const AtomikBank,
    slot: u64,
    reference: u64,
    out: *mut u64,
) -> c_int {
    // SAFETY: the caller's contract.
    guard(|| unsafe { put(out, bank_arg(bank)?.swap_set(slot, reference)?) })
}

/// What the calling thread's last failed call went wrong with, as one line; `""` before any
/// failure. Valid until the thread's next call into this library.
#[no_mangle]
pub extern "C" fn atomik_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
