//! The FPGA backend: banks whose slots are ranges of an atomik device's slot array
//! (hw/regs/atomik.rdl), reached through one register-level driver ([`FpgaDevice`]) over any
//! [`Mmio`]: a PCIe BAR (sysfs `resource0`, `resource0_wc` for ACCUM bursts), a UIO map (a
//! Zynq AXI window), the RTL model's socket, or (feature `rtl-model`) the RTL model in process.
//!
//! Which banks exist, and which slots each holds, is kept in one small file per bank in
//! `ATOMIK_FPGA_DIR` (default `/dev/shm/atomik-fpga`), allocated first-fit under a lock.
//! Every open handle holds a shared flock(2) on its bank's record, so a destroyed bank's
//! record (renamed out of sight) keeps its slots until the last handle, or its process, is
//! gone — as the other backends keep a destroyed bank's memory.
//!
//! Crash points, all under the directory's lock and each safe because locks die with their
//! process: a create that dies before its record is linked in leaves its slots free and a
//! `.tmp.` file that the next allocation removes; a destroy that dies after the rename leaves
//! a `.dead.` record that the next allocation frees once no handle holds it; a SWAP_SET that
//! dies between staging and reading leaves only a staged word the next SWAP_SET overwrites.
//! Direct register access needs whoever can open the BAR or UIO node (root by default), so
//! bank modes here are advisory among those; per-user permissions are the kernel path's.

pub mod driver;
pub mod mmio;
pub mod regs;
#[cfg(feature = "rtl-model")]
pub mod rtl;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

pub use driver::FpgaDevice;
pub use mmio::{MappedMmio, Mmio, SocketMmio};

use super::{Access, Backend, BackendKind, BankInfo, CreateOptions, DeviceSlots, Opened, OpenedSlots};
use crate::error::{Error, Result};
use crate::name::BankName;
use crate::Op;

/// Environment variable naming the device: `unix:PATH` (the RTL model's server),
/// `pci:DDDD:BB:DD.F`, `uio:/dev/uioN`, or `rtl` (an in-process model, feature `rtl-model`).
pub const ENV_FPGA: &str = "ATOMIK_FPGA";
/// Environment variable overriding the bank record directory.
pub const ENV_FPGA_DIR: &str = "ATOMIK_FPGA_DIR";
/// Default bank record directory.
pub const DEFAULT_DIR: &str = "/dev/shm/atomik-fpga";
/// UIO devices named this are atomik devices.
pub const UIO_NAME: &str = "atomik";

fn unavailable(reason: String) -> Error {
    Error::BackendUnavailable { backend: "fpga", reason }
}

/// The PCI vendor:device of atomik devices (from the ID register's reset value).
pub fn pci_id() -> (u16, u16) {
    (regs::ID_PCI_VENDOR_RESET as u16, regs::ID_PCI_DEVICE_RESET as u16)
}

fn read_hex(path: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// The kernel driver of ours, whose slot allocator owns the device while it is bound.
const KERNEL_DRIVER: &str = "atomik";

fn pci_mmio(dev: &Path) -> Result<Box<dyn Mmio>> {
    let name = dev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Two slot allocators on one device (the module's and this library's records) would hand
    // out the same slots: while atomik.ko is bound, its banks are the only ones.
    if let Ok(driver) = std::fs::read_link(dev.join("driver")) {
        if driver.file_name().is_some_and(|d| d == KERNEL_DRIVER) {
            return Err(unavailable(format!(
                "PCI {name} is bound to {KERNEL_DRIVER}.ko, which owns its slots: use its banks through \
                 /dev/atomik, or unbind it (echo {name} > /sys/bus/pci/drivers/{KERNEL_DRIVER}/unbind) to \
                 drive the device from userspace"
            )));
        }
    }
    let m = MappedMmio::open(
        PathBuf::from(format!("PCI {name} BAR 0")),
        &dev.join("resource0"),
        Some(&dev.join("resource0_wc")),
    )?;
    Ok(Box::new(m))
}

fn uio_mmio(node: &Path) -> Result<Box<dyn Mmio>> {
    // Map 0 of a UIO device is at offset 0 of its node.
    Ok(Box::new(MappedMmio::open(node.to_owned(), node, None)?))
}

/// The sysfs directory of the first PCI function with our vendor:device, if any.
pub fn pci_function() -> Option<PathBuf> {
    let (vendor, device) = pci_id();
    std::fs::read_dir("/sys/bus/pci/devices").ok()?.flatten().map(|e| e.path()).find(|p| {
        read_hex(&p.join("vendor")) == Some(vendor as u64)
            && read_hex(&p.join("device")) == Some(device as u64)
    })
}

/// Finds the device: `ATOMIK_FPGA` when set, else a PCI function with our vendor:device, else
/// a UIO device named `atomik`. The error says where it looked.
pub fn find() -> Result<Box<dyn Mmio>> {
    if let Ok(v) = std::env::var(ENV_FPGA) {
        if !v.is_empty() {
            return match v.split_once(':').unwrap_or((v.as_str(), "")) {
                ("unix", p) => Ok(Box::new(SocketMmio::connect(Path::new(p))?)),
                ("pci", bdf) => pci_mmio(&Path::new("/sys/bus/pci/devices").join(bdf)),
                ("uio", node) => uio_mmio(Path::new(node)),
                #[cfg(feature = "rtl-model")]
                ("rtl", _) => Ok(Box::new(rtl::RtlModel::new()?)),
                _ => Err(unavailable(format!("{ENV_FPGA}={v:?} is not unix:PATH, pci:BDF, uio:NODE or rtl"))),
            };
        }
    }
    if let Some(p) = pci_function() {
        return pci_mmio(&p);
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/uio") {
        for e in entries.flatten() {
            let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
            if name.trim() == UIO_NAME {
                return uio_mmio(&Path::new("/dev").join(e.file_name()));
            }
        }
    }
    let (vendor, device) = pci_id();
    Err(unavailable(format!(
        "no PCI device {vendor:04x}:{device:04x}, no UIO device named {UIO_NAME}, {ENV_FPGA} unset"
    )))
}

/// Records of destroyed banks start so: out of `list` and `open`, kept while a handle holds them.
const DEAD_PREFIX: &str = ".dead.";
/// Records being written start so: linked under the bank's name once complete.
const TMP_PREFIX: &str = ".tmp.";

/// Banks on one atomik device.
pub struct FpgaBackend {
    dev: Arc<FpgaDevice>,
    dir: PathBuf,
    swap_set: Arc<SwapSetLock>,
}

/// Serialises SWAP_SET's stage-then-read pair (one staging word for the whole device) across
/// every user of the device: this backend's threads (the mutex) and other backends and
/// processes (an exclusive flock(2) on one file of the record directory). Holding it across
/// two register accesses is bounded; a holder that dies releases it.
struct SwapSetLock {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl SwapSetLock {
    fn with<T>(&self, op: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let file = match slot.take() {
            Some(f) => f,
            None => lock_file(&self.path)?,
        };
        let held = match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(h) => h,
            Err((file, e)) => {
                *slot = Some(file);
                return Err(Error::io("flock", &self.path, e.into()));
            }
        };
        let result = op();
        // On an unlock error the file is dropped, which closes it and so releases the lock.
        *slot = held.unlock().ok();
        result
    }
}

fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Whether `a` and `b` are the same file.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// A bank's record: which device slots it holds, with which operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    base: u64,
    slots: u64,
    op: Op,
}

impl Record {
    fn parse(text: &str) -> Option<Record> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let op = match v.get("op")?.as_str()? {
            "xor" => Op::Xor,
            "add" => Op::Add,
            _ => return None,
        };
        Some(Record { base: v.get("base")?.as_u64()?, slots: v.get("slots")?.as_u64()?, op })
    }

    fn to_json(self) -> String {
        serde_json::json!({ "base": self.base, "slots": self.slots, "op": self.op.name() }).to_string()
    }
}

impl FpgaBackend {
    /// Finds and probes the device ([`find`], [`FpgaDevice::probe`]), records in `ATOMIK_FPGA_DIR`.
    pub fn locate() -> Result<FpgaBackend> {
        let dev = FpgaDevice::probe(find()?)?;
        let dir =
            std::env::var_os(ENV_FPGA_DIR).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        Ok(FpgaBackend::new(Arc::new(dev), dir))
    }

    /// Banks on `dev`, recorded in `dir`.
    pub fn new(dev: Arc<FpgaDevice>, dir: PathBuf) -> FpgaBackend {
        let swap_set = Arc::new(SwapSetLock { path: dir.join(".swap_set"), file: Mutex::new(None) });
        FpgaBackend { dev, dir, swap_set }
    }

    /// The device.
    pub fn device(&self) -> &FpgaDevice {
        &self.dev
    }

    /// One line for `atomikctl status`: which device, its geometry and version.
    pub fn describe(&self) -> String {
        let (major, minor) = self.dev.version();
        format!(
            "atomik FPGA at {} (ID matches; register map {major}.{minor}, {} slots, {} lanes)",
            self.dev.location().display(),
            self.dev.slots(),
            self.dev.lanes()
        )
    }

    fn dir(&self) -> Result<&Path> {
        match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir) {
            Ok(()) => Ok(&self.dir),
            Err(e) => Err(Error::io("mkdir", &self.dir, e)),
        }
    }

    /// Holds the directory's lock for allocation and removal.
    fn lock(&self) -> Result<Flock<File>> {
        let path = self.dir()?.join(".lock");
        Flock::lock(lock_file(&path)?, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("flock", &path, std::io::Error::from(e)))
    }

    /// Slot ranges of destroyed banks that a handle still holds, with the directory's lock
    /// held. A dead record nobody holds is removed (its slots are free), and so is any
    /// `.tmp.` record: its create died, since creates hold the lock until they finish.
    fn held_dead_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let dir = self.dir()?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| Error::io("readdir", dir, e))? {
            let e = e.map_err(|e| Error::io("readdir", dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let remove = |path: &Path| match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("unlink", path, e)),
                _ => Ok(()),
            };
            if name.starts_with(TMP_PREFIX) {
                remove(&path)?;
                continue;
            }
            if !name.starts_with(DEAD_PREFIX) {
                continue;
            }
            let f = File::open(&path).map_err(|err| Error::io("open", &path, err))?;
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(_unheld) => remove(&path)?,
                Err((mut f, Errno::EWOULDBLOCK)) => {
                    let r = self.read_record(&name, &path, &mut f)?;
                    out.push((r.base, r.base + r.slots));
                }
                Err((_, e)) => return Err(Error::io("flock", &path, e.into())),
            }
        }
        Ok(out)
    }

    fn record_path(&self, name: &BankName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    fn read_record(&self, name: &str, path: &Path, file: &mut File) -> Result<Record> {
        let mut text = String::new();
        std::io::Read::read_to_string(file, &mut text).map_err(|e| Error::io("read", path, e))?;
        let rec = Record::parse(&text)
            .ok_or_else(|| Error::Corrupt { path: path.to_owned(), reason: "not a bank record".into() })?;
        if rec.slots == 0 || rec.base.checked_add(rec.slots).is_none_or(|end| end > self.dev.slots()) {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                reason: format!(
                    "bank {name:?} claims slots {}..+{} of a {}-slot device",
                    rec.base,
                    rec.slots,
                    self.dev.slots()
                ),
            });
        }
        Ok(rec)
    }

    fn info(&self, name: &str, rec: Record, meta: &std::fs::Metadata) -> BankInfo {
        BankInfo {
            name: name.to_owned(),
            slots: rec.slots,
            op: rec.op,
            shards: 0,
            mode: meta.mode() & 0o777,
            uid: meta.uid(),
            gid: meta.gid(),
            bytes: rec.slots * 16,
            location: PathBuf::from(format!(
                "{} slots {}..{}",
                self.dev.location().display(),
                rec.base,
                rec.base + rec.slots
            )),
        }
    }

    fn records(&self) -> Result<Vec<(String, Result<Record>)>> {
        let dir = self.dir()?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| Error::io("readdir", dir, e))? {
            let e = e.map_err(|e| Error::io("readdir", dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            let rec = File::open(&path)
                .map_err(|err| Error::io("open", &path, err))
                .and_then(|mut f| self.read_record(&name, &path, &mut f));
            out.push((name, rec));
        }
        Ok(out)
    }

    fn opened(&self, name: &str, rec: Record, hold: Flock<File>, writable: bool) -> Result<OpenedSlots> {
        let path = self.dir.join(name);
        let meta = hold.metadata().map_err(|e| Error::io("stat", &path, e))?;
        Ok(OpenedSlots::Device {
            info: self.info(name, rec, &meta),
            slots: Box::new(FpgaBank {
                dev: self.dev.clone(),
                rec,
                writable,
                swap_set: self.swap_set.clone(),
                _hold: hold,
            }),
        })
    }
}

fn not_mapped() -> Error {
    unavailable("FPGA banks are not memory-mapped: open them through Bank".into())
}

impl Backend for FpgaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fpga
    }

    fn create(&self, _: &BankName, _: &CreateOptions) -> Result<Opened> {
        Err(not_mapped())
    }

    fn open(&self, _: &BankName, _: Access) -> Result<Opened> {
        Err(not_mapped())
    }

    fn create_slots(&self, name: &BankName, opts: &CreateOptions) -> Result<OpenedSlots> {
        opts.validate(name)?;
        let bad = |reason: String| Error::BadParams { name: name.to_string(), reason };
        if opts.shards != 0 {
            return Err(
                bad("writer shards are a shared-memory feature; FPGA banks take ACCUM bursts".into()),
            );
        }
        let _lock = self.lock()?;
        let mut used = self.held_dead_ranges()?;
        for (n, rec) in self.records()? {
            match rec {
                Ok(r) => used.push((r.base, r.base + r.slots)),
                Err(e) => {
                    return Err(bad(format!(
                        "record of bank {n:?} unreadable, so free slots are unknown: {e}"
                    )))
                }
            }
        }
        used.sort();
        let mut base = 0;
        for &(s, e) in &used {
            if s >= base + opts.slots {
                break;
            }
            base = base.max(e);
        }
        if base + opts.slots > self.dev.slots() {
            let free = self.dev.slots() - used.iter().map(|(s, e)| e - s).sum::<u64>();
            return Err(bad(format!(
                "{} slots wanted, the FPGA at {} has {free} free of {} (none contiguous enough)",
                opts.slots,
                self.dev.location().display(),
                self.dev.slots()
            )));
        }
        let rec = Record { base, slots: opts.slots, op: opts.op };
        let path = self.record_path(name);
        if path.exists() {
            return Err(Error::Exists { name: name.to_string() });
        }
        // Every slot of the range, free until the record is linked: reference 0, accumulator
        // identity, the bank's operator.
        self.dev.load(base, &vec![0; opts.slots as usize], opts.op)?;
        // The record is written whole under a temporary name, then linked under the bank's.
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let _ = std::fs::remove_file(&tmp);
        let undo = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .open(&tmp)
            .map_err(|e| undo(Error::io("create", &tmp, e)))?;
        // The mode is the caller's, whatever the umask.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(opts.mode))
            .map_err(|e| undo(Error::io("chmod", &tmp, e)))?;
        f.write_all(rec.to_json().as_bytes()).map_err(|e| undo(Error::io("write", &tmp, e)))?;
        let hold = Flock::lock(f, FlockArg::LockShared)
            .map_err(|(_, e)| undo(Error::io("flock", &tmp, e.into())))?;
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(undo(Error::Exists { name: name.to_string() }))
            }
            Err(e) => return Err(undo(Error::io("link", &path, e))),
        }
        let _ = std::fs::remove_file(&tmp);
        self.opened(name.as_str(), rec, hold, true)
    }

    fn open_slots(&self, name: &BankName, access: Access) -> Result<OpenedSlots> {
        let path = self.record_path(name);
        let writable = access == Access::ReadWrite;
        let mut f = match OpenOptions::new().read(true).write(writable).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { name: name.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::PermissionDenied {
                    name: name.to_string(),
                    what: if writable { "read-write" } else { "read" }.into(),
                })
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let rec = self.read_record(name.as_str(), &path, &mut f)?;
        let hold =
            Flock::lock(f, FlockArg::LockShared).map_err(|(_, e)| Error::io("flock", &path, e.into()))?;
        // A destroy between the open and the lock renamed this record, and an allocation may
        // have freed its slots since: the bank is gone. Once locked, a rename keeps the slots.
        let held = hold.metadata().map_err(|e| Error::io("stat", &path, e))?;
        match std::fs::metadata(&path) {
            Ok(now) if same_file(&now, &held) => {}
            Ok(_) => return Err(Error::NotFound { name: name.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { name: name.to_string() })
            }
            Err(e) => return Err(Error::io("stat", &path, e)),
        }
        self.opened(name.as_str(), rec, hold, writable)
    }

    fn destroy(&self, name: &BankName) -> Result<()> {
        let _lock = self.lock()?;
        let path = self.record_path(name);
        // Out of sight at once; its slots stay allocated until no handle holds the record
        // (freed then by the next allocation, see held_dead_ranges).
        let dead = (0u64..)
            .map(|k| self.dir.join(format!("{DEAD_PREFIX}{name}.{k}")))
            .find(|p| !p.exists())
            .expect("an unused name");
        match std::fs::rename(&path, &dead) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound { name: name.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(Error::PermissionDenied { name: name.to_string(), what: "remove".into() })
            }
            Err(e) => Err(Error::io("unlink", &path, e)),
        }
    }

    fn list(&self) -> Result<Vec<Result<BankInfo>>> {
        let mut out = Vec::new();
        for (name, rec) in self.records()? {
            let path = self.dir.join(&name);
            out.push(rec.and_then(|r| {
                let meta = std::fs::metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
                Ok(self.info(&name, r, &meta))
            }));
        }
        Ok(out)
    }
}

/// One bank's slots on the device.
struct FpgaBank {
    dev: Arc<FpgaDevice>,
    rec: Record,
    writable: bool,
    swap_set: Arc<SwapSetLock>,
    /// The shared lock on the bank's record that keeps its slots allocated.
    _hold: Flock<File>,
}

impl DeviceSlots for FpgaBank {
    fn slots(&self) -> u64 {
        self.rec.slots
    }
    fn op(&self) -> Op {
        self.rec.op
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn accum(&self, slot: u64, d: u64) -> Result<()> {
        self.dev.accum(self.rec.base + slot, d)
    }
    fn accum_dense(&self, start: u64, deltas: &[u64]) -> Result<()> {
        self.dev.accum_dense(self.rec.base + start, deltas)
    }
    fn load(&self, slot: u64, v: u64) -> Result<()> {
        self.dev.load(self.rec.base + slot, &[v], self.rec.op)
    }
    fn read_range(&self, start: u64, out: &mut [u64]) -> Result<()> {
        self.dev.read(self.rec.base + start, out)
    }
    fn is_clean(&self, slot: u64) -> Result<bool> {
        self.dev.is_clean(self.rec.base + slot)
    }
    fn swap(&self, slot: u64) -> Result<u64> {
        self.dev.swap(self.rec.base + slot)
    }
    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        self.swap_set.with(|| self.dev.swap_set(self.rec.base + slot, reference))
    }
}
