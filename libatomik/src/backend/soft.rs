//! The userspace default: one file per bank in shared memory, no kernel module needed.
//!
//! Banks are files `<dir>/<name>` (dir `/dev/shm/atomik`, or `$ATOMIK_SHM_DIR`) holding the
//! shared layout of [`crate::abi`]. Permissions are the file's mode and owner, so access
//! control is the kernel's ordinary file permission check. A bank is built under a hidden
//! temporary name and linked into place, so nobody ever opens a half-made bank.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use memmap2::MmapOptions;

use crate::backend::{Access, Backend, BackendKind, BankInfo, CreateOptions, Opened};
use crate::bank::BankMemory;
use crate::error::{Error, Result};
use crate::name::BankName;

/// Environment variable overriding the bank directory.
pub const ENV_SHM_DIR: &str = "ATOMIK_SHM_DIR";
/// Default bank directory.
pub const DEFAULT_DIR: &str = "/dev/shm/atomik";

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

    fn path(&self, name: &BankName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// Creates the directory, world-writable and sticky like /tmp so every user can make
    /// banks and only owners can remove them.
    fn ensure_dir(&self) -> Result<()> {
        match std::fs::create_dir(&self.dir) {
            Ok(()) => std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o1777))
                .map_err(|e| Error::io("chmod", &self.dir, e)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("mkdir", &self.dir, e))?;
                self.ensure_dir()
            }
            Err(e) => Err(Error::io("mkdir", &self.dir, e)),
        }
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

    fn open_path(&self, name: &str, path: &Path, access: Access) -> Result<Opened> {
        let writable = access == Access::ReadWrite;
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::NotFound { name: name.to_owned() },
                ErrorKind::PermissionDenied => Error::PermissionDenied {
                    name: name.to_owned(),
                    what: format!(
                        "{} of {}",
                        if writable { "read-write open" } else { "read" },
                        path.display()
                    ),
                },
                _ => Error::io("open", path, e),
            })?;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        if !meta.file_type().is_file() {
            return Err(Error::Corrupt { path: path.to_owned(), reason: "not a regular file".to_owned() });
        }
        // Map exactly the file's current length: the header is validated against it, so a
        // truncated file is refused here instead of faulting later.
        let len = meta.len();
        if len == 0 || len > usize::MAX as u64 {
            return Err(Error::Corrupt { path: path.to_owned(), reason: format!("size {len} bytes") });
        }
        let mut opts = MmapOptions::new();
        opts.len(len as usize);
        let map = if writable { opts.map_raw(&file) } else { opts.map_raw_read_only(&file) }
            .map_err(|e| Error::io("mmap", path, e))?;
        let memory = BankMemory::from_map(map, path, writable)?;
        let info = self.info(name, path, &file, &memory)?;
        Ok(Opened { memory, control: None, info })
    }
}

impl Backend for SoftBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Soft
    }

    fn create(&self, name: &BankName, opts: &CreateOptions) -> Result<Opened> {
        let layout = opts.validate(name)?;
        self.ensure_dir()?;
        let path = self.path(name);
        if path.exists() {
            return Err(Error::Exists { name: name.to_string() });
        }
        let tmp = self.dir.join(format!(".tmp-{}-{}-{:x}", name, std::process::id(), unique()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
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
        // link(2) fails when the name exists: creation is atomic against racing creators.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
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
        self.open_path(name.as_str(), &self.path(name), access)
    }

    fn destroy(&self, name: &BankName) -> Result<()> {
        let path = self.path(name);
        // Refuse to remove something that is not a bank file; a damaged bank file may go.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {}
            Ok(_) => {
                return Err(Error::Corrupt { path, reason: "not a regular file; not removed".to_owned() })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotFound { name: name.to_string() })
            }
            Err(e) => return Err(Error::io("stat", &path, e)),
        }
        std::fs::remove_file(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NotFound { name: name.to_string() },
            ErrorKind::PermissionDenied => Error::PermissionDenied {
                name: name.to_string(),
                what: format!("remove {} (only its owner may)", path.display()),
            },
            _ => Error::io("unlink", &path, e),
        })
    }

    fn list(&self) -> Result<Vec<Result<BankInfo>>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", &self.dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| {
                let path = self.dir.join(&n);
                self.open_path(&n, &path, Access::ReadOnly).map(|o| o.info)
            })
            .collect())
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
