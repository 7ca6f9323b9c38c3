//! Errors of the tracking readers and the region tracker: each names the pid or file.

use std::io;
use std::path::PathBuf;

/// What went wrong while reading a process or a cgroup, and where.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Reading or writing a file under /proc or /sys failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The caller lacks a right needed on the target process.
    #[error("pid {pid}: permission denied for {what}: needs {right}")]
    Permission {
        /// The target process.
        pid: i32,
        /// What was attempted (e.g. "reading memory").
        what: &'static str,
        /// The missing right.
        right: &'static str,
    },
    /// The process is gone.
    #[error("pid {pid}: no such process")]
    NoProcess {
        /// The process.
        pid: i32,
    },
    /// A watched range is invalid or no longer mapped.
    #[error("pid {pid}: range {start:#x}..{end:#x}: {why}")]
    BadRange {
        /// The process.
        pid: i32,
        /// Start address.
        start: u64,
        /// End address.
        end: u64,
        /// Why it was rejected.
        why: &'static str,
    },
    /// An ioctl or syscall failed.
    #[error("pid {pid}: {call}: {source}")]
    Sys {
        /// The process.
        pid: i32,
        /// The syscall or ioctl.
        call: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The written-page detector asked for cannot be used here (the kernel lacks it, or the
    /// memory is not armed for it).
    #[error("pid {pid}: detector {detector} unavailable: {why}")]
    DetectorUnavailable {
        /// The process.
        pid: i32,
        /// The detector's name ([`Detector::name`](super::region::Detector::name)).
        detector: &'static str,
        /// Why, in the words of what is missing.
        why: String,
    },
    /// The fingerprint bank failed.
    #[error(transparent)]
    Bank(#[from] crate::Error),
    /// A file did not have the expected format.
    #[error("{path}: cannot parse: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

/// Result of the tracking module.
pub type Result<T, E = TrackError> = std::result::Result<T, E>;

impl TrackError {
    /// Wraps an I/O error on `path`, turning ENOENT under /proc/PID into [`NoProcess`] and
    /// EACCES/EPERM into [`Permission`] when the caller says which right was needed.
    ///
    /// [`NoProcess`]: TrackError::NoProcess
    /// [`Permission`]: TrackError::Permission
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> TrackError {
        TrackError::Io { path: path.into(), source }
    }

    /// Like [`TrackError::io`] for a file of process `pid`: names the missing right on
    /// EACCES/EPERM and reports a vanished process as such.
    pub fn proc_io(
        pid: i32,
        path: impl Into<PathBuf>,
        source: io::Error,
        what: &'static str,
        right: &'static str,
    ) -> TrackError {
        match source.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => TrackError::Permission { pid, what, right },
            Some(libc::ESRCH) => TrackError::NoProcess { pid },
            Some(libc::ENOENT) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                TrackError::NoProcess { pid }
            }
            _ => TrackError::io(path, source),
        }
    }
}

/// The right needed to read another process's memory or pagemap.
pub const RIGHT_PTRACE_READ: &str =
    "ptrace read access (same uid and not protected by yama ptrace_scope, or CAP_SYS_PTRACE)";
/// The right needed to clear soft-dirty bits.
pub const RIGHT_CLEAR_REFS: &str = "ownership of the process (or root) to write clear_refs";
