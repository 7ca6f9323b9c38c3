// SPDX-License-Identifier: GPL-2.0
//! Who may do what with a bank: owner uid/gid and mode bits, checked like System V IPC
//! (`ipcperms`).
//!
//! Everything is checked against the credentials `/dev/atomik` was opened with (like an open
//! file: passing the fd passes its access), capabilities included, and the fd's own open mode
//! (`f_mode`) caps what it may ask for:
//! - owner bits when the opener's euid is the owner uid; else group bits when the owner gid is
//!   the opener's fsgid or one of its supplementary groups (`in_group_p` semantics); else other
//!   bits;
//! - only when those bits deny the access asked for, CAP_IPC_OWNER (in the initial user
//!   namespace) of the opener grants it, as `ipcperms` does (so an allowed open never makes an
//!   LSM capability check, and no denial is logged for it).

use crate::abi;
use kernel::{bindings, cred::Credential, fs::File, prelude::*, task::Kuid};

const CAP_SYS_ADMIN: i32 = 21;
const CAP_IPC_OWNER: i32 = 15;
const CAP_SYS_RESOURCE: i32 = 24;
/// `FMODE_READ` and `FMODE_WRITE` of `file->f_mode` (include/linux/fs.h).
const FMODE_READ: u32 = 1 << 0;
const FMODE_WRITE: u32 = 1 << 1;

/// Owner and permission bits of a bank.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) uid: Kuid,
    pub(crate) gid: bindings::kgid_t,
    pub(crate) mode: u32,
}

fn egid(cred: &Credential) -> bindings::kgid_t {
    // SAFETY: `cred` is a valid credential for the duration of the borrow; its ids never
    // change after a credential is committed.
    unsafe { (*cred.as_ptr()).egid }
}

/// Whether `gid` is the fsgid or a supplementary group of `cred` (`in_group_p`, for a given
/// credential instead of the current one).
fn in_group(cred: &Credential, gid: bindings::kgid_t) -> bool {
    let c = cred.as_ptr();
    // SAFETY: `cred` is valid for the borrow; `fsgid` and `group_info` are set before a
    // credential is committed and never change afterwards.
    let (fsgid, groups) = unsafe { ((*c).fsgid, (*c).group_info) };
    if fsgid.val == gid.val {
        return true;
    }
    if groups.is_null() {
        return false;
    }
    // SAFETY: a committed credential holds a reference on its `group_info`, which is not
    // modified after it is attached; `ngroups` gids follow it.
    let gids = unsafe {
        let n = usize::try_from((*groups).ngroups).unwrap_or(0);
        (*groups).gid.as_slice(n)
    };
    gids.iter().any(|g| g.val == gid.val)
}

/// Whether the opener of `file` had capability `cap` (`file_ns_capable`, initial namespace).
fn file_capable(file: &File, cap: i32) -> bool {
    // SAFETY: `file` is a valid file for the borrow; `init_user_ns` is a static that lives
    // for ever and is only read by the call.
    unsafe { bindings::file_ns_capable(file.as_ptr(), core::ptr::addr_of_mut!(bindings::init_user_ns), cap) }
}

/// The `ACCESS_*` bits the open mode of `file` allows.
pub(crate) fn open_mode(file: &File) -> u32 {
    // SAFETY: `f_mode` is set when the file is opened, before any ioctl can run on it, and the
    // access bits of it never change afterwards.
    let mode = unsafe { (*file.as_ptr()).f_mode };
    let mut access = 0;
    if mode & FMODE_READ != 0 {
        access |= abi::ACCESS_READ;
    }
    if mode & FMODE_WRITE != 0 {
        access |= abi::ACCESS_WRITE;
    }
    access
}

impl Owner {
    /// The owner of a bank created through `file` with permission bits `mode`.
    pub(crate) fn of(file: &File, mode: u32) -> Owner {
        let cred = file.cred();
        Owner {
            uid: cred.euid(),
            gid: egid(cred),
            mode: mode & 0o777,
        }
    }

    /// The `ACCESS_*` bits the mode grants to the opener of `file` (no capability).
    fn granted_by_mode(&self, file: &File) -> u32 {
        let cred = file.cred();
        let bits = if cred.euid() == self.uid {
            self.mode >> 6
        } else if in_group(cred, self.gid) {
            self.mode >> 3
        } else {
            self.mode
        } & 7;
        let mut access = 0;
        if bits & 4 != 0 {
            access |= abi::ACCESS_READ;
        }
        if bits & 2 != 0 {
            access |= abi::ACCESS_WRITE;
        }
        access
    }

    /// Checks that `want` (nonzero `ACCESS_*` bits) is allowed: EINVAL for unknown bits,
    /// EACCES when denied by the fd's open mode, or by the bank's mode without CAP_IPC_OWNER.
    pub(crate) fn check(&self, file: &File, want: u32) -> Result {
        if want == 0 || want & !(abi::ACCESS_READ | abi::ACCESS_WRITE) != 0 {
            return Err(EINVAL);
        }
        if want & !open_mode(file) != 0 {
            return Err(EACCES);
        }
        if want & !self.granted_by_mode(file) != 0 && !file_capable(file, CAP_IPC_OWNER) {
            return Err(EACCES);
        }
        Ok(())
    }

    /// Destroying needs to be the owner (by the fd's credentials) or CAP_SYS_ADMIN: EPERM.
    pub(crate) fn check_destroy(&self, file: &File) -> Result {
        if file.cred().euid() == self.uid || file_capable(file, CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    /// The owner uid and gid as seen from the caller's user namespace, as System V IPC shows
    /// them (`from_kuid_munged`, `from_kgid_munged`: the overflow uid and gid, 65534, when
    /// there is no mapping there).
    pub(crate) fn ids(&self) -> (u32, u32) {
        (uid_in_current_ns(self.uid), gid_in_current_ns(self.gid))
    }
}

/// Whether the opener of `file` may exceed the per-user memory limit (CAP_SYS_RESOURCE).
pub(crate) fn exempt_from_user_limit(file: &File) -> bool {
    file_capable(file, CAP_SYS_RESOURCE)
}

#[cfg(CONFIG_USER_NS)]
fn uid_in_current_ns(uid: Kuid) -> u32 {
    // SAFETY: `current_user_ns()` is the caller's user namespace, valid during the call;
    // from_kuid_munged only reads it.
    unsafe { bindings::from_kuid_munged(bindings::current_user_ns(), uid.into_raw()) }
}

#[cfg(not(CONFIG_USER_NS))]
fn uid_in_current_ns(uid: Kuid) -> u32 {
    // Without user namespaces every uid is mapped to itself.
    uid.into_uid_in_current_ns()
}

#[cfg(CONFIG_USER_NS)]
fn gid_in_current_ns(gid: bindings::kgid_t) -> u32 {
    // SAFETY: `current_user_ns()` is the caller's user namespace, valid during the call;
    // from_kgid_munged only reads it.
    unsafe { bindings::from_kgid_munged(bindings::current_user_ns(), gid) }
}

#[cfg(not(CONFIG_USER_NS))]
fn gid_in_current_ns(gid: bindings::kgid_t) -> u32 {
    // Without user namespaces every gid is mapped to itself.
    gid.val
}
