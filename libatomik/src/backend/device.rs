//! The `/dev/atomik` backend: the kernel module owns the banks.
//!
//! Create, open, destroy, list, LOAD and SWAP are ioctls; the opened bank's pages are mapped
//! and ACCUM/READ run on them with the same [`BankMemory`] code as the userspace default, under
//! the same protocol (the module's LOAD and SWAP follow it from the kernel side). Banks whose
//! slots are on the FPGA are served by ioctls and the mapped ACCUM window ([`fpga_slots`]).

mod fpga_slots;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use memmap2::MmapOptions;

use crate::abi;
use crate::backend::{Access, Backend, BackendKind, BankInfo, Control, CreateOptions, Opened, OpenedSlots};
use crate::bank::BankMemory;
use crate::error::{Error, Result};
use crate::name::BankName;
use crate::Op;

/// The ioctls, generated from the ABI file's numbers; exposed through [`DeviceBackend`] only.
mod sys {
    use crate::abi::*;
    nix::ioctl_read_bad!(get_info, IOCTL_GET_INFO, Info);
    nix::ioctl_write_ptr_bad!(bank_create, IOCTL_BANK_CREATE, BankCreate);
    nix::ioctl_readwrite_bad!(bank_open, IOCTL_BANK_OPEN, BankOpen);
    nix::ioctl_write_ptr_bad!(bank_destroy, IOCTL_BANK_DESTROY, BankName);
    nix::ioctl_readwrite_bad!(bank_list, IOCTL_BANK_LIST, BankList);
    nix::ioctl_write_ptr_bad!(load, IOCTL_LOAD, SlotOp);
    nix::ioctl_readwrite_bad!(read, IOCTL_READ, SlotOp);
    nix::ioctl_readwrite_bad!(is_clean, IOCTL_IS_CLEAN, SlotOp);
    nix::ioctl_readwrite_bad!(swap, IOCTL_SWAP, SlotOp);
    nix::ioctl_readwrite_bad!(swap_set, IOCTL_SWAP_SET, SlotOp);
    nix::ioctl_read_bad!(bank_stats, IOCTL_BANK_STATS, BankStats);
}

/// Banks held by the `/dev/atomik` kernel module.
#[derive(Clone, Debug)]
pub struct DeviceBackend {
    path: PathBuf,
}

/// Turns an ioctl's errno into the library's error for bank `bank`.
fn ioctl_error(ioctl: &'static str, bank: &str, errno: nix::errno::Errno) -> Error {
    use nix::errno::Errno;
    match errno {
        Errno::ENOENT => Error::NotFound { name: bank.to_owned() },
        Errno::EEXIST => Error::Exists { name: bank.to_owned() },
        Errno::EACCES | Errno::EPERM => Error::PermissionDenied {
            name: bank.to_owned(),
            what: format!("{ioctl} refused by {}", abi::DEVICE_PATH),
        },
        e => {
            Error::Ioctl { ioctl, bank: bank.to_owned(), source: std::io::Error::from_raw_os_error(e as i32) }
        }
    }
}

fn name_of(raw: &[u8; abi::NAME_LEN]) -> String {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..len]).into_owned()
}

impl DeviceBackend {
    /// The device at `path`, checked to speak this ABI version.
    pub fn at(path: impl Into<PathBuf>) -> Result<DeviceBackend> {
        let backend = DeviceBackend { path: path.into() };
        let info = backend.info()?;
        if info.abi_version != abi::ABI_VERSION {
            return Err(Error::BackendUnavailable {
                backend: "device",
                reason: format!(
                    "{} speaks ABI {}, this build speaks {}",
                    backend.path.display(),
                    info.abi_version,
                    abi::ABI_VERSION
                ),
            });
        }
        Ok(backend)
    }

    /// `/dev/atomik`.
    pub fn open_default() -> Result<DeviceBackend> {
        DeviceBackend::at(abi::DEVICE_PATH)
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_device(&self, write: bool) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| Error::io("open", &self.path, e))
    }

    /// GET_INFO: ABI version, features, limits and usage of the module.
    pub fn info(&self) -> Result<abi::Info> {
        let dev = self.open_device(false)?;
        let mut info = abi::Info::default();
        // SAFETY: `info` is a valid, writable Info; the fd is open for the call's duration.
        unsafe { sys::get_info(dev.as_raw_fd(), &mut info) }.map_err(|e| ioctl_error("GET_INFO", "", e))?;
        Ok(info)
    }

    /// BANK_CREATE, on the FPGA when `opts.fpga`.
    fn create_bank(&self, name: &BankName, opts: &CreateOptions) -> Result<()> {
        let req = abi::BankCreate {
            name: name.to_abi(),
            slots: opts.slots,
            op: opts.op.code(),
            mode: opts.mode,
            shards: opts.shards,
            flags: if opts.fpga { abi::BANK_CREATE_FPGA } else { 0 },
        };
        let dev = self.open_device(true)?;
        // SAFETY: `req` is a valid BankCreate; the fd is open.
        unsafe { sys::bank_create(dev.as_raw_fd(), &req) }
            .map_err(|e| ioctl_error("BANK_CREATE", name.as_str(), e))
            .map(|_| ())
    }

    /// BANK_OPEN: the attached fd and the module's reply.
    fn open_bank(&self, name: &BankName, access: Access) -> Result<(File, abi::BankOpen)> {
        let writable = access == Access::ReadWrite;
        let dev = self.open_device(writable)?;
        let mut req = abi::BankOpen {
            name: name.to_abi(),
            access: if writable { abi::ACCESS_READ | abi::ACCESS_WRITE } else { abi::ACCESS_READ },
            op: 0,
            slots: 0,
            map_size: 0,
        };
        // SAFETY: `req` is a valid, writable BankOpen; the fd is open.
        unsafe { sys::bank_open(dev.as_raw_fd(), &mut req) }
            .map_err(|e| ioctl_error("BANK_OPEN", name.as_str(), e))?;
        Ok((dev, req))
    }

    /// Maps a memory bank attached to `dev`.
    fn map_bank(&self, dev: File, name: &BankName, req: &abi::BankOpen, access: Access) -> Result<Opened> {
        let writable = access == Access::ReadWrite;
        let location = self.path.join(name.as_str());
        let len = usize::try_from(req.map_size).map_err(|_| Error::Corrupt {
            path: location.clone(),
            reason: format!("size {}", req.map_size),
        })?;
        let mut opts = MmapOptions::new();
        opts.len(len);
        let map = if writable { opts.map_raw(&dev) } else { opts.map_raw_read_only(&dev) }
            .map_err(|e| Error::io("mmap", &location, e))?;
        let memory = BankMemory::from_map(map, &location, writable)?;
        let l = memory.layout();
        let info = self.bank_info(&dev, name, l.slots, l.shards, l.total_size)?;
        Ok(Opened { memory, control: Some(Box::new(DeviceControl { dev, name: name.to_string() })), info })
    }

    /// The bank's info: `slots`, `shards` and `bytes` as the caller knows them, the rest from
    /// BANK_STATS.
    fn bank_info(
        &self,
        dev: &File,
        name: &BankName,
        slots: u64,
        shards: u32,
        bytes: u64,
    ) -> Result<BankInfo> {
        let mut st = abi::BankStats::default();
        // SAFETY: `st` is a valid, writable BankStats; the fd is open.
        unsafe { sys::bank_stats(dev.as_raw_fd(), &mut st) }
            .map_err(|e| ioctl_error("BANK_STATS", name.as_str(), e))?;
        Ok(BankInfo {
            name: name.to_string(),
            slots,
            op: Op::from_code(st.op).unwrap_or(Op::Xor),
            shards,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            bytes,
            location: self.path.clone(),
        })
    }
}

/// The slot ioctls of a bank's fd that this library makes.
#[derive(Clone, Copy)]
enum SlotIoctl {
    Load,
    Read,
    Swap,
    SwapSet,
    IsClean,
}

impl SlotIoctl {
    fn name(self) -> &'static str {
        match self {
            SlotIoctl::Load => "LOAD",
            SlotIoctl::Read => "READ",
            SlotIoctl::Swap => "SWAP",
            SlotIoctl::SwapSet => "SWAP_SET",
            SlotIoctl::IsClean => "IS_CLEAN",
        }
    }
}

/// One slot ioctl on `dev`, attached to bank `bank`: the reply's value (the input `value` for
/// LOAD, which has no reply).
fn slot_ioctl(dev: &File, bank: &str, ioctl: SlotIoctl, slot: u64, value: u64) -> Result<u64> {
    let mut op = abi::SlotOp { slot, value };
    let fd = dev.as_raw_fd();
    // SAFETY: `op` is a valid, writable SlotOp that outlives the call; the fd is open (a bad or
    // unattached fd is an error, not UB).
    let r = unsafe {
        match ioctl {
            SlotIoctl::Load => sys::load(fd, &op),
            SlotIoctl::Read => sys::read(fd, &mut op),
            SlotIoctl::Swap => sys::swap(fd, &mut op),
            SlotIoctl::SwapSet => sys::swap_set(fd, &mut op),
            SlotIoctl::IsClean => sys::is_clean(fd, &mut op),
        }
    };
    r.map_err(|e| ioctl_error(ioctl.name(), bank, e))?;
    Ok(op.value)
}

/// LOAD and SWAP through ioctls on the fd attached to the bank.
struct DeviceControl {
    dev: File,
    name: String,
}

impl Control for DeviceControl {
    fn load(&self, slot: u64, v: u64) -> Result<()> {
        slot_ioctl(&self.dev, &self.name, SlotIoctl::Load, slot, v).map(|_| ())
    }

    fn swap(&self, slot: u64) -> Result<u64> {
        slot_ioctl(&self.dev, &self.name, SlotIoctl::Swap, slot, 0)
    }

    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        slot_ioctl(&self.dev, &self.name, SlotIoctl::SwapSet, slot, reference)
    }
}

impl Backend for DeviceBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Device
    }

    fn create(&self, name: &BankName, opts: &CreateOptions) -> Result<Opened> {
        opts.validate(name)?;
        opts.refuse_fpga(name, "a mapped bank")?;
        self.create_bank(name, opts)?;
        self.open(name, Access::ReadWrite)
    }

    fn create_slots(&self, name: &BankName, opts: &CreateOptions) -> Result<OpenedSlots> {
        opts.validate(name)?;
        self.create_bank(name, opts)?;
        self.open_slots(name, Access::ReadWrite)
    }

    fn open(&self, name: &BankName, access: Access) -> Result<Opened> {
        let (dev, req) = self.open_bank(name, access)?;
        if req.access & abi::BANK_OPEN_FPGA != 0 {
            // Its mapping is the device's write-only ACCUM window, not the shared layout.
            return Err(Error::io(
                "BANK_OPEN",
                self.path.join(name.as_str()),
                std::io::Error::other(
                    "the bank's slots are on the FPGA (BANK_OPEN_FPGA), not memory: open it through Bank",
                ),
            ));
        }
        self.map_bank(dev, name, &req, access)
    }

    fn open_slots(&self, name: &BankName, access: Access) -> Result<OpenedSlots> {
        let (dev, req) = self.open_bank(name, access)?;
        if req.access & abi::BANK_OPEN_FPGA == 0 {
            return self.map_bank(dev, name, &req, access).map(OpenedSlots::Mapped);
        }
        let location = self.path.join(name.as_str());
        let mut info = self.bank_info(&dev, name, req.slots, 0, req.slots * 16)?;
        info.location = PathBuf::from(format!("{} (slots on the FPGA)", location.display()));
        let slots = fpga_slots::FpgaSlots::new(dev, name.as_str(), &req, &location)?;
        Ok(OpenedSlots::Device { slots: Box::new(slots), info })
    }

    fn destroy(&self, name: &BankName) -> Result<()> {
        let dev = self.open_device(false)?;
        let req = abi::BankName { name: name.to_abi() };
        // SAFETY: `req` is a valid BankName; the fd is open.
        unsafe { sys::bank_destroy(dev.as_raw_fd(), &req) }
            .map_err(|e| ioctl_error("BANK_DESTROY", name.as_str(), e))?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<Result<BankInfo>>> {
        let dev = self.open_device(false)?;
        let mut entries = vec![abi::BankListEntry::EMPTY; 64];
        loop {
            let mut req = abi::BankList {
                entries: entries.as_mut_ptr() as u64,
                capacity: entries.len() as u32,
                count: 0,
            };
            // SAFETY: `entries` holds `capacity` writable entries and outlives the call.
            unsafe { sys::bank_list(dev.as_raw_fd(), &mut req) }
                .map_err(|e| ioctl_error("BANK_LIST", "", e))?;
            if req.count as usize > entries.len() && entries.len() < abi::BATCH_MAX as usize {
                entries.resize(
                    (req.count as usize).next_power_of_two().min(abi::BATCH_MAX as usize),
                    abi::BankListEntry::EMPTY,
                );
                continue;
            }
            entries.truncate((req.count as usize).min(entries.len()));
            break;
        }
        let mut out: Vec<Result<BankInfo>> = entries
            .iter()
            .map(|e| {
                let name = name_of(&e.name);
                let op = Op::from_code(e.op).ok_or_else(|| Error::Corrupt {
                    path: self.path.join(&name),
                    reason: format!("unknown operator code {}", e.op),
                })?;
                Ok(BankInfo {
                    location: self.path.clone(),
                    name,
                    slots: e.slots,
                    op,
                    shards: e.shards,
                    mode: e.mode,
                    uid: e.uid,
                    gid: e.gid,
                    bytes: e.bytes,
                })
            })
            .collect();
        out.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.name.cmp(&b.name),
            _ => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }
}
