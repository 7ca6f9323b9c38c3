// SPDX-License-Identifier: GPL-2.0
//! Who may do what with a bank: owner uid/gid and mode bits, checked like System V IPC.
//!
//! The credentials used are those `/dev/atomik` was opened with (like an open file: passing
//! the fd passes its access), and the fd's own open mode caps what it may ask for.

use crate::abi;
use kernel::{bindings, cred::Credential, fs::File, prelude::*, task::Kuid};

const CAP_SYS_ADMIN: i32 = 21;
const CAP_IPC_OWNER: i32 = 15;
const O_ACCMODE: u32 = 3;
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;

/// Owner and permission bits of a bank.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) uid: Kuid,
    pub(crate) gid: bindings::kgid_t,
    pub(crate) mode: u32,
}

fn egid(cred: &Credential) -> bindings::kgid_t {
    // SAFETY: `cred` is a valid credential for the duration of the borrow; `egid` never changes
    // after a credential is committed.
    unsafe { (*cred.as_ptr()).egid }
}

fn capable(cap: i32) -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(cap) }
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

    /// The `ACCESS_*` bits the mode grants to the credentials of `file`, capped by its open mode.
    pub(crate) fn granted(&self, file: &File) -> u32 {
        let cred = file.cred();
        let bits = if cred.euid() == self.uid {
            self.mode >> 6
        } else if egid(cred).val == self.gid.val {
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
        if capable(CAP_IPC_OWNER) {
            access = abi::ACCESS_READ | abi::ACCESS_WRITE;
        }
        match file.flags() & O_ACCMODE {
            O_RDONLY => access & abi::ACCESS_READ,
            O_WRONLY => access & abi::ACCESS_WRITE,
            _ => access,
        }
    }

    /// Checks that `want` (nonzero `ACCESS_*` bits) is allowed: EINVAL for unknown bits,
    /// EACCES when denied.
    pub(crate) fn check(&self, file: &File, want: u32) -> Result {
        if want == 0 || want & !(abi::ACCESS_READ | abi::ACCESS_WRITE) != 0 {
            return Err(EINVAL);
        }
        if want & !self.granted(file) != 0 {
            return Err(EACCES);
        }
        Ok(())
    }

    /// Destroying needs to be the owner (by the fd's credentials) or CAP_SYS_ADMIN: EPERM.
    pub(crate) fn check_destroy(&self, file: &File) -> Result {
        if file.cred().euid() == self.uid || capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    /// The owner uid as seen from the caller's user namespace, and the owner gid (as the
    /// initial namespace sees it: the kernel exports no gid mapping to Rust modules).
    pub(crate) fn ids(&self) -> (u32, u32) {
        (self.uid.into_uid_in_current_ns(), self.gid.val)
    }
}
