//! The userspace default: one file per bank in shared memory, no kernel module needed.
//!
//! Banks are files `<dir>/<name>` (dir `/dev/shm/atomik`, or `$ATOMIK_SHM_DIR`) holding the
//! shared layout of [`crate::abi`]. Permissions are the file's mode and owner, so access
//! control is the kernel's ordinary file permission check. A bank is built under a hidden
//! temporary name and linked into place, so nobody ever opens a half-made bank.
//!
//! # What it trusts
//!
//! - The directory only when nobody else can rearrange it (`soft/dir.rs`): not a symbolic link,
//!   owned by root or the caller, sticky when others may write. Every file operation is then
//!   relative to the verified descriptor.
//! - A bank file only when it is a regular file (never a symbolic link), its header is valid,
//!   and its owner is the uid recorded in the header at creation ([`crate::abi::owner_word`]):
//!   a file planted, copied or substituted by another user is refused. The owner is fixed at
//!   creation; a bank that is `chown`ed afterwards is refused too.
//!
//! # What it does not promise
//!
//! Anyone allowed to write a bank file can also truncate it, and a process that has it mapped
//! then dies of SIGBUS on its next access: the file's length is checked at open, not
//! afterwards. The userspace default therefore protects banks from users who cannot write
//! them, not from those who can. Banks shared with writers you do not trust belong on
//! `/dev/atomik`, whose pages no user can shrink.

mod dir;

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use memmap2::MmapOptions;

use crate::abi::{owner_uid, owner_word, BankHeader};
use crate::backend::{Access, Backend, BackendKind, BankInfo, CreateOptions, Opened};
use crate::bank::BankMemory;
use crate::error::{Error, Result};
use crate::name::BankName;

use dir::BankDir;
pub use dir::DirReport;

/// Environment variable overriding the bank directory.
pub const ENV_SHM_DIR: &str = "ATOMIK_SHM_DIR";
/// Default bank directory.
pub const DEFAULT_DIR: &str = "/dev/shm/atomik";

/// Byte offset of [`BankHeader::owner`] in a bank file.
const OWNER_OFF: u64 = std::mem::offset_of!(BankHeader, owner) as u64;

/// Banks as files in a shared-memory directory.
#[derive(Clone, Debug)]
pub struct SoftBackend {
    dir: PathBuf,
}

impl SoftBackend {
    /// Banks under `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> SoftBackend {
        SoftBackend { dir: dir.into() }
    }

    /// Banks under `$ATOMIK_SHM_DIR`, or `/dev/shm/atomik`.
    pub fn from_env() -> SoftBackend {
        match std::env::var_os(ENV_SHM_DIR) {
            Some(d) if !d.is_empty() => SoftBackend::at(d),
            _ => SoftBackend::at(DEFAULT_DIR),
        }
    }

    /// The bank directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bank directory's owner and mode, and whether banks may live there.
    pub fn dir_report(&self) -> DirReport {
        BankDir::report(&self.dir)
    }

    fn info(&self, name: &str, path: &Path, file: &File, memory: &BankMemory) -> Result<BankInfo> {
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        let layout = memory.layout();
        Ok(BankInfo {
            name: name.to_owned(),
            slots: layout.slots,
            op: memory.op(),
            shards: layout.shards,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            bytes: layout.total_size,
            location: path.to_owned(),
        })
    }

    fn open_in(&self, dir: &BankDir, name: &str, access: Access) -> Result<Opened> {
        let writable = access == Access::ReadWrite;
        let path = dir.entry(name);
        let file = dir.open_entry(name, writable).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NotFound { name: name.to_owned() },
            ErrorKind::PermissionDenied => Error::PermissionDenied {
                name: name.to_owned(),
                what: format!("{} of {}", if writable { "read-write open" } else { "read" }, path.display()),
            },
            _ if e.raw_os_error() == Some(libc::ELOOP) => Error::Untrusted {
                path: path.clone(),
                reason: "it is a symbolic link; bank files must be regular files".to_owned(),
            },
            _ => Error::io("open", &path, e),
        })?;
        let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
        if !meta.file_type().is_file() {
            return Err(Error::Corrupt { path, reason: "not a regular file".to_owned() });
        }
        // Map exactly the file's current length: the header is validated against it, so a
        // truncated file is refused here instead of faulting later.
        let len = meta.len();
        if len == 0 || len > usize::MAX as u64 {
            return Err(Error::Corrupt { path, reason: format!("size {len} bytes") });
        }
        let mut opts = MmapOptions::new();
        opts.len(len as usize);
        let map = if writable { opts.map_raw(&file) } else { opts.map_raw_read_only(&file) }
            .map_err(|e| Error::io("mmap", &path, e))?;
        let memory = BankMemory::from_map(map, &path, writable)?;
        check_owner(&file, &path, meta.uid())?;
        let info = self.info(name, &path, &file, &memory)?;
        Ok(Opened { memory, control: None, info })
    }
}

/// Refuses a bank file whose owner is not the creator its header records.
fn check_owner(file: &File, path: &Path, file_uid: u32) -> Result<()> {
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, OWNER_OFF).map_err(|e| Error::io("read", path, e))?;
    let untrusted = |reason: String| Error::Untrusted { path: path.to_owned(), reason };
    match owner_uid(u64::from_ne_bytes(word)) {
        Some(creator) if creator == file_uid => Ok(()),
        Some(creator) => Err(untrusted(format!(
            "the bank was created by {} but the file is owned by {}: replaced, copied or \
             chowned by someone else",
            dir::user(creator),
            dir::user(file_uid)
        ))),
        None => Err(untrusted(
            "its header records no creator (not made by this atomik); recreate the bank".to_owned(),
        )),
    }
}

/// A bank in an unnamed memory file (`memfd_create`): private to this process and the
/// children it hands the mapping to, gone with its last mapping however the process ends
/// (SIGKILL included), never visible in the bank directory. For scratch state such as the
/// tracker's fingerprints, which nobody else opens.
pub fn create_unnamed(name: &BankName, opts: &CreateOptions) -> Result<Opened> {
    use std::os::fd::FromRawFd;
    let layout = opts.validate(name)?;
    let path = PathBuf::from(format!("memfd:{name}"));
    let cname = std::ffi::CString::new(format!("atomik:{name}")).expect("bank names have no NUL");
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("memfd_create", &path, std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(layout.total_size).map_err(|e| Error::io("truncate", &path, e))?;
    let map = MmapOptions::new()
        .len(layout.total_size as usize)
        .map_raw(&file)
        .map_err(|e| Error::io("mmap", &path, e))?;
    let memory = BankMemory::init(map, &path, layout, opts.op, name.to_abi())?;
    let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
    let info = BankInfo {
        name: name.to_string(),
        slots: layout.slots,
        op: memory.op(),
        shards: layout.shards,
        mode: 0o600,
        uid: meta.uid(),
        gid: meta.gid(),
        bytes: layout.total_size,
        location: path,
    };
    Ok(Opened { memory, control: None, info })
}

impl Backend for SoftBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Soft
    }

    fn create(&self, name: &BankName, opts: &CreateOptions) -> Result<Opened> {
        let layout = opts.validate(name)?;
        opts.refuse_fpga(name, "the shared-memory backend")?;
        let dir = BankDir::open_or_create(&self.dir)?;
        let path = dir.entry(name.as_str());
        match dir.lstat(name.as_str()) {
            Ok(_) => return Err(Error::Exists { name: name.to_string() }),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &path, e)),
        }
        let tmp_name = format!(".tmp-{}-{}-{:x}", name, std::process::id(), unique());
        let tmp = dir.entry(&tmp_name);
        let file = dir.create_entry(&tmp_name, opts.mode).map_err(|e| Error::io("create", &tmp, e))?;
        let cleanup = |e: Error| {
            let _ = dir.unlink(&tmp_name);
            e
        };
        // The umask must not narrow what the caller asked for.
        file.set_permissions(std::fs::Permissions::from_mode(opts.mode))
            .map_err(|e| cleanup(Error::io("chmod", &tmp, e)))?;
        file.set_len(layout.total_size).map_err(|e| cleanup(Error::io("truncate", &tmp, e)))?;
        let map = MmapOptions::new()
            .len(layout.total_size as usize)
            .map_raw(&file)
            .map_err(|e| cleanup(Error::io("mmap", &tmp, e)))?;
        let memory = BankMemory::init(map, &path, layout, opts.op, name.to_abi()).map_err(cleanup)?;
        // Record the creator: the file's owner as the kernel set it. Nobody sees the file
        // before it is linked below, so no reader finds a bank without its owner.
        let uid = file.metadata().map_err(|e| cleanup(Error::io("stat", &tmp, e)))?.uid();
        file.write_all_at(&owner_word(uid).to_ne_bytes(), OWNER_OFF)
            .map_err(|e| cleanup(Error::io("write", &tmp, e)))?;
        // link(2) fails when the name exists: creation is atomic against racing creators.
        let linked = dir.link(&tmp_name, name.as_str());
        let _ = dir.unlink(&tmp_name);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::Exists { name: name.to_string() })
            }
            Err(e) => return Err(Error::io("link", &path, e)),
        }
        let info = self.info(name.as_str(), &path, &file, &memory)?;
        Ok(Opened { memory, control: None, info })
    }

    fn open(&self, name: &BankName, access: Access) -> Result<Opened> {
        match BankDir::open(&self.dir)? {
            Some(dir) => self.open_in(&dir, name.as_str(), access),
            None => Err(Error::NotFound { name: name.to_string() }),
        }
    }

    fn destroy(&self, name: &BankName) -> Result<()> {
        let Some(dir) = BankDir::open(&self.dir)? else {
            return Err(Error::NotFound { name: name.to_string() });
        };
        let path = dir.entry(name.as_str());
        // Refuse to remove something that is not a bank file; a damaged bank file may go.
        match dir.lstat(name.as_str()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
            Ok(_) => {
                return Err(Error::Corrupt { path, reason: "not a regular file; not removed".to_owned() })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotFound { name: name.to_string() })
            }
            Err(e) => return Err(Error::io("stat", &path, e)),
        }
        dir.unlink(name.as_str()).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NotFound { name: name.to_string() },
            ErrorKind::PermissionDenied => Error::PermissionDenied {
                name: name.to_string(),
                what: format!("remove {} (only its owner may)", path.display()),
            },
            _ => Error::io("unlink", &path, e),
        })
    }

    fn list(&self) -> Result<Vec<Result<BankInfo>>> {
        let Some(dir) = BankDir::open(&self.dir)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = dir
            .names()?
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names.into_iter().map(|n| self.open_in(&dir, &n, Access::ReadOnly).map(|o| o.info)).collect())
    }
}

/// A value unique within this process, for temporary names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ NEXT.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}
