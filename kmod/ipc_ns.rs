// SPDX-License-Identifier: GPL-2.0
//! The IPC namespace a file was opened in, which scopes bank names as it scopes System V IPC
//! keys: banks made in one namespace are invisible to every other.
//!
//! The namespace is `current->nsproxy->ipc_ns`. Reading that from Rust would mean trusting
//! bindgen's layout of `task_struct`, which does not match GCC's in every configuration, so
//! `ipc_ns_shim.c` reads it with the kernel's own headers and this file wraps the reference.

use core::ffi::c_void;

extern "C" {
    fn atomik_ipc_ns_get_current() -> *mut c_void;
    fn atomik_ipc_ns_get(ns: *mut c_void) -> *mut c_void;
    fn atomik_ipc_ns_put(ns: *mut c_void);
    fn atomik_ipc_ns_active(ns: *mut c_void) -> bool;
}

/// A counted reference to an IPC namespace (null: a kernel with a single one).
pub(crate) struct IpcNs(*mut c_void);

// SAFETY: a namespace reference may be used and dropped from any task; the namespace is only
// compared by address and its reference counts are atomic.
unsafe impl Send for IpcNs {}
// SAFETY: as above; `&IpcNs` only allows comparing and reading the atomic active count.
unsafe impl Sync for IpcNs {}

impl IpcNs {
    /// The namespace of the calling task.
    pub(crate) fn current() -> IpcNs {
        // SAFETY: called from a task's own syscall (open), whose nsproxy is set; returns a
        // counted reference or null.
        IpcNs(unsafe { atomik_ipc_ns_get_current() })
    }

    /// Another reference to the same namespace.
    pub(crate) fn clone_ref(&self) -> IpcNs {
        // SAFETY: `self` holds a reference, so the namespace is alive.
        IpcNs(unsafe { atomik_ipc_ns_get(self.0) })
    }

    /// Whether both are the same namespace.
    pub(crate) fn is(&self, other: &IpcNs) -> bool {
        self.key() == other.key()
    }

    /// The namespace's address, to compare with a namespace held elsewhere.
    pub(crate) fn key(&self) -> usize {
        self.0 as usize
    }

    /// Whether anything (a task, an open `/proc/PID/ns/ipc`, a bind mount) still uses it: once
    /// nothing does, nobody can enter it again, and its banks are removed.
    pub(crate) fn in_use(&self) -> bool {
        // SAFETY: `self` holds a reference; the call only reads the active count.
        unsafe { atomik_ipc_ns_active(self.0) }
    }
}

impl Drop for IpcNs {
    fn drop(&mut self) {
        // SAFETY: drops the reference this value holds, exactly once.
        unsafe { atomik_ipc_ns_put(self.0) }
    }
}
