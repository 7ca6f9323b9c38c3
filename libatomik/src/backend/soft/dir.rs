//! The bank directory, trusted only when nobody else can change what is in it.
//!
//! `/dev/shm` is writable by every user, so anyone can make `/dev/shm/atomik` before the
//! first bank exists: as a symbolic link to their own folder, as a directory they own, or
//! without the sticky bit. Any of these would let them rename, delete or substitute other
//! users' banks. So the directory is opened with `O_DIRECTORY | O_NOFOLLOW`, checked with
//! `fstat` on that very descriptor (as systemd-tmpfiles and `XDG_RUNTIME_DIR` users do), and
//! every later lookup, create, link and unlink is relative to the descriptor: no path
//! component can be swapped between the check and the use.
//!
//! Trusted means: a directory (not a symbolic link), owned by root or by the calling user, and
//! sticky when group or others may write to it (so only a file's owner can remove or rename
//! it). The components above the directory are resolved normally: whoever controls them can
//! at most point the path at another directory, which is checked the same way.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::UnlinkatFlags;

use crate::error::{Error, Result};

/// Mode of a bank directory root creates: everybody may make banks, only owners remove them.
const SHARED_MODE: u32 = 0o1777;
/// Mode of a bank directory another user creates: nobody else would trust it anyway.
const PRIVATE_MODE: u32 = 0o700;

/// The effective uid of this process.
pub(crate) fn caller_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A user as messages show it: `uid 65534 (nobody)`.
pub(crate) fn user(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("uid {uid} ({})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// Why a directory is not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The last component is a symbolic link (to the target carried).
    Symlink(PathBuf),
    /// Something other than a directory.
    NotDirectory,
    /// Owned by someone who is neither root nor the caller.
    Owner,
    /// Writable by group or others without the sticky bit.
    NotSticky,
}

/// Whether a directory owned by `uid` with mode `mode` (`st_mode`) may hold the banks of
/// user `caller`.
pub(crate) fn verdict(uid: u32, mode: u32, caller: u32) -> std::result::Result<(), Problem> {
    if mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Problem::NotDirectory);
    }
    if uid != 0 && uid != caller {
        return Err(Problem::Owner);
    }
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(Problem::NotSticky);
    }
    Ok(())
}

/// The refusal for directory `path` (owner `uid`, mode `mode`): one line with the fix.
fn refusal(path: &Path, uid: u32, mode: u32, problem: &Problem) -> Error {
    let caller = caller_uid();
    let shown = path.display();
    let reset = if caller == 0 {
        format!("remove it (rm -rf {shown}) and atomik recreates it owned by root, mode 1777")
    } else {
        format!("have root remove it (rm -rf {shown}); the next bank creation recreates it")
    };
    let (reason, fix) = match problem {
        Problem::Symlink(target) => (
            format!("it is a symbolic link to {}", target.display()),
            format!("{reset}, or set {} to a directory you own", super::ENV_SHM_DIR),
        ),
        Problem::NotDirectory => {
            ("it is not a directory".to_owned(), format!("{reset}, or set {}", super::ENV_SHM_DIR))
        }
        Problem::Owner => (
            if caller == 0 {
                "not owned by root".to_owned()
            } else {
                format!("owned by neither root nor you, {}", user(caller))
            },
            format!("{reset}, or set {} to a directory you own", super::ENV_SHM_DIR),
        ),
        Problem::NotSticky => (
            "writable by others without the sticky bit, so anyone may delete or replace banks".to_owned(),
            format!("chmod +t {shown} (or chmod go-w {shown})"),
        ),
    };
    Error::UntrustedDir { path: path.to_owned(), owner: user(uid), mode: mode & 0o7777, reason, fix }
}

fn stat_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Owns a descriptor returned by a successful `open`/`openat`.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// What is at a bank directory's path, as `atomikctl status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirReport {
    /// The directory's path.
    pub path: PathBuf,
    /// Whether anything is there (the directory is made by the first bank creation).
    pub exists: bool,
    /// Owner uid (of the link itself when it is a symbolic link).
    pub uid: Option<u32>,
    /// The owner as `uid N (name)`.
    pub owner: Option<String>,
    /// Permission bits, with setuid/setgid/sticky.
    pub mode: Option<u32>,
    /// Whether banks may live there (an absent directory is trusted: it is made safely).
    pub trusted: bool,
    /// Why not, with the fix, when it is not trusted or cannot be examined.
    pub problem: Option<String>,
}

/// A verified bank directory, held open.
#[derive(Debug)]
pub(crate) struct BankDir {
    fd: OwnedFd,
    path: PathBuf,
    stat: FileStat,
}

impl BankDir {
    /// Opens and verifies the directory at `path`; `None` when it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Option<BankDir>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
            Ok(fd) => owned(fd),
            Err(Errno::ENOENT) => return Ok(None),
            // O_NOFOLLOW on a symbolic link gives ELOOP; O_DIRECTORY on anything else ENOTDIR.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(not_a_directory(path)),
            Err(e) => return Err(Error::io("open directory", path, stat_io(e))),
        };
        let stat = nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| Error::io("stat directory", path, stat_io(e)))?;
        verdict(stat.st_uid, stat.st_mode, caller_uid())
            .map_err(|p| refusal(path, stat.st_uid, stat.st_mode, &p))?;
        Ok(Some(BankDir { fd, path: path.to_owned(), stat }))
    }

    /// Opens and verifies the directory at `path`, creating it (and its parents) when absent:
    /// mode 1777 when root creates it, 0700 otherwise.
    pub(crate) fn open_or_create(path: &Path) -> Result<BankDir> {
        if let Some(d) = BankDir::open(path)? {
            return Ok(d);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("mkdir", parent, e))?;
        }
        let mode = if caller_uid() == 0 { SHARED_MODE } else { PRIVATE_MODE };
        let made = match std::fs::DirBuilder::new().mode(mode & 0o777).create(path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::io("mkdir", path, e)),
        };
        let dir = BankDir::open(path)?
            .ok_or_else(|| Error::io("open directory", path, io::Error::from(io::ErrorKind::NotFound)))?;
        // The umask must not narrow the mode, and mkdir(2) ignores the sticky bit. Only a
        // directory this process owns is changed, and only through the verified descriptor.
        if made && dir.stat.st_uid == caller_uid() && dir.stat.st_mode & 0o7777 != mode {
            nix::sys::stat::fchmod(dir.fd.as_raw_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| Error::io("chmod", path, stat_io(e)))?;
        }
        Ok(dir)
    }

    /// Describes the directory at `path` for `atomikctl status`; never fails.
    pub(crate) fn report(path: &Path) -> DirReport {
        let mut r = DirReport {
            path: path.to_owned(),
            exists: false,
            uid: None,
            owner: None,
            mode: None,
            trusted: false,
            problem: None,
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) => {
                r.exists = true;
                r.uid = Some(m.uid());
                r.mode = Some(m.mode() & 0o7777);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                r.problem = Some(Error::io("stat", path, e).to_string());
                return r;
            }
        }
        match BankDir::open(path) {
            Ok(Some(d)) => {
                r.uid = Some(d.stat.st_uid);
                r.mode = Some(d.stat.st_mode & 0o7777);
                r.trusted = true;
            }
            Ok(None) => r.trusted = true,
            Err(e) => r.problem = Some(e.to_string()),
        }
        r.owner = r.uid.map(user);
        r
    }

    /// The path of entry `name`, for messages.
    pub(crate) fn entry(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    /// Opens entry `name` without following a symbolic link (ELOOP if it is one) and without
    /// blocking on a FIFO planted there.
    pub(crate) fn open_entry(&self, name: &str, writable: bool) -> io::Result<File> {
        let access = if writable { OFlag::O_RDWR } else { OFlag::O_RDONLY };
        let flags = access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(self.raw(), name, flags, Mode::empty()).map_err(stat_io)?;
        Ok(File::from(owned(fd)))
    }

    /// Creates entry `name` exclusively (never through a symbolic link) with `mode`.
    pub(crate) fn create_entry(&self, name: &str, mode: u32) -> io::Result<File> {
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd =
            nix::fcntl::openat(self.raw(), name, flags, Mode::from_bits_truncate(mode)).map_err(stat_io)?;
        Ok(File::from(owned(fd)))
    }

    /// Gives the file at entry `from` the new name `to`; fails with EEXIST when `to` exists.
    /// A symbolic link at `from` would be linked itself, never followed.
    pub(crate) fn link(&self, from: &str, to: &str) -> io::Result<()> {
        nix::unistd::linkat(self.raw(), from, self.raw(), to, AtFlags::empty()).map_err(stat_io)
    }

    /// Removes entry `name` (not a directory).
    pub(crate) fn unlink(&self, name: &str) -> io::Result<()> {
        nix::unistd::unlinkat(self.raw(), name, UnlinkatFlags::NoRemoveDir).map_err(stat_io)
    }

    /// `lstat` of entry `name`.
    pub(crate) fn lstat(&self, name: &str) -> io::Result<FileStat> {
        nix::sys::stat::fstatat(self.raw(), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(stat_io)
    }

    /// Names of the entries, `.` and `..` left out.
    pub(crate) fn names(&self) -> Result<Vec<OsString>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = nix::dir::Dir::openat(self.raw(), ".", flags, Mode::empty())
            .map_err(|e| Error::io("read directory", &self.path, stat_io(e)))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| Error::io("read directory", &self.path, stat_io(e)))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsString::from_vec(name.to_vec()));
            }
        }
        Ok(out)
    }
}

/// The refusal for a path whose last component is a symbolic link or not a directory.
fn not_a_directory(path: &Path) -> Error {
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let problem = if m.file_type().is_symlink() {
                Problem::Symlink(std::fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?")))
            } else {
                Problem::NotDirectory
            };
            refusal(path, m.uid(), m.mode(), &problem)
        }
        Err(e) => Error::io("stat directory", path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: u32 = libc::S_IFDIR;

    #[test]
    fn trusts_root_or_own_directories_that_others_cannot_rearrange() {
        assert_eq!(verdict(0, DIR | 0o1777, 1000), Ok(()));
        assert_eq!(verdict(0, DIR | 0o755, 1000), Ok(()));
        assert_eq!(verdict(1000, DIR | 0o700, 1000), Ok(()));
        assert_eq!(verdict(1000, DIR | 0o1777, 1000), Ok(()));
        assert_eq!(verdict(1000, DIR | 0o1777, 0), Err(Problem::Owner));
        assert_eq!(verdict(1000, DIR | 0o700, 1001), Err(Problem::Owner));
        assert_eq!(verdict(0, DIR | 0o777, 1000), Err(Problem::NotSticky));
        assert_eq!(verdict(0, DIR | 0o775, 0), Err(Problem::NotSticky));
        assert_eq!(verdict(1000, DIR | 0o757, 1000), Err(Problem::NotSticky));
        assert_eq!(verdict(0, libc::S_IFREG | 0o600, 0), Err(Problem::NotDirectory));
    }

    #[test]
    fn refusal_is_one_line_with_owner_mode_and_fix() {
        let msg = refusal(Path::new("/dev/shm/atomik"), 4242, DIR | 0o1777, &Problem::Owner).to_string();
        assert!(!msg.contains('\n'), "{msg}");
        for needle in ["/dev/shm/atomik", "uid 4242", "1777", "fix:", "rm -rf /dev/shm/atomik"] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        let msg = refusal(Path::new("/x"), 0, DIR | 0o777, &Problem::NotSticky).to_string();
        assert!(msg.contains("0777") && msg.contains("chmod +t /x"), "{msg}");
    }
}
