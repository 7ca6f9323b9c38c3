//! Durable replica state: an atomic snapshot file plus a write-ahead log.
//!
//! Layout of a replica directory:
//! - `snapshot`: [`encode_image`] of the whole replica, replaced atomically (write
//!   `snapshot.tmp`, fsync it, rename over `snapshot`, fsync the directory).
//! - `wal`: records `len:u32le frame` appended after the snapshot; each frame is a wire
//!   `Deltas` message with its own CRC-32C.
//!
//! **fsync policy.** [`Store::log`] appends and `fdatasync`s before it returns. Callers log
//! every local commit *before* sending it (a version number must never be reused for
//! different contents after a crash) and every joined message *before* acknowledging it
//! (sending a summary that includes it). So a `kill -9`, or a power loss on a disk that
//! honours fsync, loses only what was never acknowledged: uncommitted local changes and
//! received-but-unlogged messages, which peers resend through anti-entropy. On open, a torn
//! or corrupt last record (bad length or checksum) ends the replay and is cut off.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::model::{Config, Replica};
use super::op::Op;
use super::wire::{self, Message};

const MAGIC: &[u8; 8] = b"ATKREPL1";
/// Checkpoint (rewrite the snapshot, empty the log) once the log grows past this.
pub const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;

/// Errors of persistence, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: corrupt replica image: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path}: replica directory is locked by another process")]
    Locked { path: PathBuf },
}

/// Serialises a whole replica: header, a snapshot of every origin, the tombstones.
pub fn encode_image(r: &Replica) -> Vec<u8> {
    let cfg = r.config();
    let mut out = Vec::with_capacity(64 + cfg.width as usize * 9);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&r.id().to_le_bytes());
    out.extend_from_slice(&cfg.width.to_le_bytes());
    out.extend_from_slice(&cfg.op.code().to_le_bytes());
    let frames = [
        Message::Deltas { op: cfg.op, deltas: r.snapshots() },
        Message::Summary { op: cfg.op, width: cfg.width, versions: r.retired().collect() },
    ];
    for f in &frames {
        put_record(&mut out, f);
    }
    out
}

fn put_record(out: &mut Vec<u8>, msg: &Message) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    wire::encode_into(msg, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Splits `buf` into the records it holds; stops at the first torn or corrupt one.
/// Returns the messages and the byte length of the valid prefix.
pub fn read_records(buf: &[u8]) -> (Vec<Message>, usize) {
    let mut msgs = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 4 {
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let Some(frame) = buf.get(pos + 4..pos + 4 + len) else {
            break;
        };
        match wire::decode(frame) {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
        pos += 4 + len;
    }
    (msgs, pos)
}

/// Appends one log record for `msg` to `out`.
pub fn encode_record(msg: &Message, out: &mut Vec<u8>) {
    put_record(out, msg);
}

/// Rebuilds a replica from an image and the log records written after it.
pub fn decode_image(image: &[u8], wal: &[u8], cfg: Config) -> Result<Replica, String> {
    let header = 8 + 8 + 4 + 4;
    if image.len() < header || &image[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let id = u64::from_le_bytes(image[8..16].try_into().expect("8 bytes"));
    let width = u32::from_le_bytes(image[16..20].try_into().expect("4 bytes"));
    let op = Op::from_code(u32::from_le_bytes(image[20..24].try_into().expect("4 bytes")));
    if width != cfg.width || op != Some(cfg.op) {
        return Err(format!("image is {width} slots {op:?}, bank is {} slots {:?}", cfg.width, cfg.op));
    }
    let (frames, used) = read_records(&image[header..]);
    if frames.len() != 2 || header + used != image.len() {
        return Err("truncated or corrupt snapshot".into());
    }
    let mut r = Replica::new(id, cfg);
    r.join_message(&frames[0]).map_err(|e| e.to_string())?;
    if let Message::Summary { versions, .. } = &frames[1] {
        r.restore_retired(versions);
    }
    let (records, _) = read_records(wal);
    for m in &records {
        r.join_message(m).map_err(|e| e.to_string())?;
    }
    Ok(r)
}

/// A replica directory on disk: snapshot + write-ahead log, locked by one process.
pub struct Store {
    dir: PathBuf,
    wal: File,
    wal_len: u64,
    _lock: nix::fcntl::Flock<File>,
}

impl Store {
    /// Whether `dir` holds a replica (a snapshot), and if so its width and operator.
    pub fn peek(dir: &Path) -> Result<Option<(u32, Op)>, PersistError> {
        let path = dir.join("snapshot");
        let image = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Io { path, source }),
        };
        let corrupt = |why: &str| PersistError::Corrupt { path: path.clone(), why: why.to_owned() };
        if image.len() < 24 || &image[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let width = u32::from_le_bytes(image[16..20].try_into().expect("4 bytes"));
        let op = Op::from_code(u32::from_le_bytes(image[20..24].try_into().expect("4 bytes")))
            .ok_or_else(|| corrupt("unknown operator"))?;
        Ok(Some((width, op)))
    }

    /// Opens (or creates, with a fresh random origin id) the replica stored in `dir`.
    pub fn open(dir: &Path, cfg: Config) -> Result<(Store, Replica), PersistError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PersistError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| PersistError::Locked { path: dir.to_path_buf() })?;
        let snap_path = dir.join("snapshot");
        let wal_path = dir.join("wal");
        let mut wal_bytes = Vec::new();
        if let Ok(mut f) = File::open(&wal_path) {
            f.read_to_end(&mut wal_bytes).map_err(io(&wal_path))?;
        }
        let replica = match fs::read(&snap_path) {
            Ok(image) => decode_image(&image, &wal_bytes, cfg)
                .map_err(|why| PersistError::Corrupt { path: snap_path.clone(), why })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let r = Replica::new(random_id().map_err(io(Path::new("/dev/urandom")))?, cfg);
                write_atomic(dir, &snap_path, &encode_image(&r))?;
                wal_bytes.clear();
                r
            }
            Err(e) => return Err(io(&snap_path)(e)),
        };
        let (_, valid) = read_records(&wal_bytes);
        let wal = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&wal_path)
            .map_err(io(&wal_path))?;
        // Cut off a torn tail so new records follow the last good one.
        wal.set_len(valid as u64).map_err(io(&wal_path))?;
        wal.sync_data().map_err(io(&wal_path))?;
        let mut store = Store { dir: dir.to_path_buf(), wal, wal_len: valid as u64, _lock: lock };
        store.seek_end()?;
        Ok((store, replica))
    }

    fn seek_end(&mut self) -> Result<(), PersistError> {
        use std::io::Seek;
        let path = self.dir.join("wal");
        self.wal
            .seek(std::io::SeekFrom::End(0))
            .map(|_| ())
            .map_err(|source| PersistError::Io { path, source })
    }

    /// Appends `msg` to the log and fsyncs it: it is durable when this returns.
    pub fn log(&mut self, msg: &Message) -> Result<(), PersistError> {
        let mut rec = Vec::new();
        put_record(&mut rec, msg);
        let path = self.dir.join("wal");
        let io = |source| PersistError::Io { path: path.clone(), source };
        self.wal.write_all(&rec).map_err(io)?;
        self.wal.sync_data().map_err(io)?;
        self.wal_len += rec.len() as u64;
        Ok(())
    }

    /// Size of the log since the last checkpoint.
    pub fn wal_len(&self) -> u64 {
        self.wal_len
    }

    /// Writes a new snapshot atomically and empties the log.
    pub fn checkpoint(&mut self, r: &Replica) -> Result<(), PersistError> {
        let snap = self.dir.join("snapshot");
        write_atomic(&self.dir, &snap, &encode_image(r))?;
        let path = self.dir.join("wal");
        let io = |source| PersistError::Io { path: path.clone(), source };
        self.wal.set_len(0).map_err(io)?;
        self.wal.sync_data().map_err(io)?;
        self.wal_len = 0;
        self.seek_end()
    }

    /// Checkpoints when the log has grown past [`WAL_CHECKPOINT_BYTES`].
    pub fn maybe_checkpoint(&mut self, r: &Replica) -> Result<(), PersistError> {
        if self.wal_len > WAL_CHECKPOINT_BYTES {
            self.checkpoint(r)?;
        }
        Ok(())
    }
}

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let tmp = path.with_extension("tmp");
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| PersistError::Io { path, source }
    };
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(())
}

/// A fresh random 64-bit origin id (never 0).
pub fn random_id() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b).max(1))
}
