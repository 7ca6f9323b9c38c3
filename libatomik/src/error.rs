//! Errors of the library: each names the bank, file or ioctl it concerns.

use std::path::PathBuf;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bank name is not `[A-Za-z0-9._-]{1,63}` or starts with a dot.
    #[error("invalid bank name {name:?}: use 1 to 63 of A-Z a-z 0-9 . _ -, not starting with '.'")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// No bank of that name.
    #[error("bank {name:?} does not exist")]
    NotFound {
        /// Bank name.
        name: String,
    },
    /// A bank of that name exists already.
    #[error("bank {name:?} already exists")]
    Exists {
        /// Bank name.
        name: String,
    },
    /// The slot index is not below the bank's slot count.
    #[error("slot {slot} is out of range for bank {bank:?} ({slots} slots)")]
    SlotOutOfRange {
        /// Bank name.
        bank: String,
        /// Rejected index.
        slot: u64,
        /// Slot count.
        slots: u64,
    },
    /// A create request with bad parameters.
    #[error("cannot create bank {name:?}: {reason}")]
    BadParams {
        /// Bank name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The bank file is not a valid atomik bank of this ABI.
    #[error("{}: not a usable atomik bank: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The userspace default's bank directory could be rearranged by someone else.
    #[error(
        "bank directory {} is not trusted: {reason} (owner {owner}, mode {mode:04o}); fix: {fix}",
        path.display()
    )]
    UntrustedDir {
        /// The directory.
        path: PathBuf,
        /// Its owner, as `uid N (name)`.
        owner: String,
        /// Its permission bits.
        mode: u32,
        /// What makes it unsafe.
        reason: String,
        /// What to do about it.
        fix: String,
    },
    /// A bank file that someone other than the bank's creator planted or replaced.
    #[error("{}: refused: {reason}", path.display())]
    Untrusted {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller lacks the access it asked for.
    #[error("bank {name:?}: permission denied ({what})")]
    PermissionDenied {
        /// Bank name.
        name: String,
        /// Which access was refused.
        what: String,
    },
    /// The bank was opened read-only.
    #[error("bank {name:?} is open read-only")]
    ReadOnly {
        /// Bank name.
        name: String,
    },
    /// A system call on a file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An ioctl on `/dev/atomik` failed.
    #[error("ioctl {ioctl} on {} (bank {bank:?}): {source}", crate::abi::DEVICE_PATH)]
    Ioctl {
        /// Name of the ioctl.
        ioctl: &'static str,
        /// Bank name, empty when none.
        bank: String,
        /// The errno.
        source: std::io::Error,
    },
    /// `/dev/atomik` is there but this process may not open it. Not a reason to use another
    /// backend unasked: this process's banks would not be the ones its peers use.
    #[error(
        "{} is present but this process may not open it ({source}): ask for access to it (its \
         group or mode), or set ATOMIK_BACKEND=soft to use shared memory instead",
        path.display()
    )]
    DeviceDenied {
        /// The device node.
        path: PathBuf,
        /// The errno.
        source: std::io::Error,
    },
    /// The asked-for backend is not available.
    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable {
        /// Backend name.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// `ATOMIK_BACKEND` holds an unknown value.
    #[error("ATOMIK_BACKEND={value:?} is not one of soft, device, fpga")]
    BadBackend {
        /// The value found.
        value: String,
    },
    /// LOAD or SWAP on a bank that a sync daemon replicates: they would discard or move
    /// replicated state behind the daemon's back.
    #[error(
        "bank {name:?} is replicated (origin {origin:016x}): {op} is refused; only ACCUM and READ \
         are allowed (ACCUM the difference instead)"
    )]
    Replicated {
        /// Bank name.
        name: String,
        /// The refused operation.
        op: &'static str,
        /// Origin id of the replica bound to the bank.
        origin: u64,
    },
    /// No free writer shard in the bank.
    #[error("bank {name:?}: all {shards} writer shards are leased")]
    NoFreeShard {
        /// Bank name.
        name: String,
        /// Shard count.
        shards: u32,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}
