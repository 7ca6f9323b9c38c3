//! Where banks live: the userspace shared-memory default, `/dev/atomik`, or an FPGA.
//!
//! The mapped backends hand back the same thing for an open bank: a mapping of the shared
//! layout ([`BankMemory`]) used directly for ACCUM and READ, and optionally a [`Control`] that
//! performs LOAD and SWAP elsewhere (the kernel). The FPGA backend hands back
//! [`DeviceSlots`]: every operation is a register access to the device.

use std::path::PathBuf;

use crate::bank::BankMemory;
use crate::error::{Error, Result};
use crate::name::BankName;
use crate::Op;

pub mod device;
pub mod fpga;
pub mod soft;

/// Which backend serves banks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Files in shared memory (`/dev/shm/atomik`), no kernel module needed.
    Soft,
    /// The `/dev/atomik` kernel module.
    Device,
    /// An FPGA behind `/dev/atomik`.
    Fpga,
}

impl BackendKind {
    /// Lower-case name as `ATOMIK_BACKEND` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Soft => "soft",
            BackendKind::Device => "device",
            BackendKind::Fpga => "fpga",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of a new bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Number of slots (≥ 1).
    pub slots: u64,
    /// Group operator.
    pub op: Op,
    /// Permission bits (0o600 by default).
    pub mode: u32,
    /// Writer-private shards for dense batches (0 by default).
    pub shards: u32,
    /// Slots on the FPGA instead of memory (false by default): `/dev/atomik` with the device
    /// bound (`BANK_CREATE_FPGA`), or the FPGA backend, whose banks all are.
    pub fpga: bool,
}

impl CreateOptions {
    /// `slots` slots, XOR, mode 0600, no shards.
    pub const fn new(slots: u64) -> CreateOptions {
        CreateOptions { slots, op: Op::Xor, mode: 0o600, shards: 0, fpga: false }
    }

    /// With operator `op`.
    pub const fn op(mut self, op: Op) -> CreateOptions {
        self.op = op;
        self
    }

    /// With permission bits `mode`.
    pub const fn mode(mut self, mode: u32) -> CreateOptions {
        self.mode = mode;
        self
    }

    /// With `shards` writer-private shards.
    pub const fn shards(mut self, shards: u32) -> CreateOptions {
        self.shards = shards;
        self
    }

    /// With the slots on the FPGA when `fpga`.
    pub const fn fpga(mut self, fpga: bool) -> CreateOptions {
        self.fpga = fpga;
        self
    }

    /// BadParams when an FPGA bank is asked of a path that makes memory banks only.
    pub(crate) fn refuse_fpga(&self, name: &BankName, path: &str) -> Result<()> {
        if self.fpga {
            return Err(Error::BadParams {
                name: name.to_string(),
                reason: format!(
                    "{path} makes memory banks only: FPGA banks need /dev/atomik with the device bound, \
                     or ATOMIK_BACKEND=fpga"
                ),
            });
        }
        Ok(())
    }

    /// Checks the parameters for bank `name` and gives the layout they make: every backend
    /// refuses the same requests with the same error.
    pub fn validate(&self, name: &BankName) -> Result<crate::abi::BankLayout> {
        use crate::abi::{BankLayout, MAX_SHARDS, MAX_SLOTS};
        let bad = |reason: String| Error::BadParams { name: name.to_string(), reason };
        if self.mode & !0o777 != 0 {
            return Err(bad(format!("mode {:#o} has bits beyond 0777", self.mode)));
        }
        if self.shards as usize > MAX_SHARDS {
            return Err(bad(format!("{} shards, at most {MAX_SHARDS}", self.shards)));
        }
        BankLayout::new(self.slots, self.shards)
            .ok_or_else(|| bad(format!("{} slots, must be 1 to {MAX_SLOTS}", self.slots)))
    }
}

/// Access wanted when opening a bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// READ only; the mapping is read-only.
    ReadOnly,
    /// All operations.
    ReadWrite,
}

/// What is known of a bank without opening it for use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankInfo {
    /// Name.
    pub name: String,
    /// Slot count.
    pub slots: u64,
    /// Operator.
    pub op: Op,
    /// Writer shards.
    pub shards: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Bytes of memory the bank takes.
    pub bytes: u64,
    /// Where it lives (file path or device).
    pub location: PathBuf,
}

/// LOAD and SWAP done outside the mapping (by the kernel), for backends that want it.
pub trait Control: Send + Sync {
    /// LOAD `v` into `slot` (already range-checked).
    fn load(&self, slot: u64, v: u64) -> Result<()>;
    /// SWAP `slot` (already range-checked), returning the state.
    fn swap(&self, slot: u64) -> Result<u64>;
    /// SWAP_SET `slot` (already range-checked): returns the state, `reference` becomes the
    /// reference, the accumulator the identity.
    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64>;
}

/// An opened bank as a backend hands it over.
pub struct Opened {
    /// The mapped shared layout.
    pub memory: BankMemory,
    /// Where LOAD/SWAP go when not through the mapping.
    pub control: Option<Box<dyn Control>>,
    /// Description.
    pub info: BankInfo,
}

/// Slots that live on a device (an FPGA) instead of in a mapping: each operation is a register
/// access. Slots are range-checked by the caller ([`Bank`](crate::Bank)).
pub trait DeviceSlots: Send + Sync {
    /// Slot count.
    fn slots(&self) -> u64;
    /// Operator.
    fn op(&self) -> Op;
    /// Whether LOAD/ACCUM/SWAP are allowed.
    fn writable(&self) -> bool;
    /// ACCUM.
    fn accum(&self, slot: u64, d: u64) -> Result<()>;
    /// ACCUMs `deltas[i]` into `start + i` (a burst).
    fn accum_dense(&self, start: u64, deltas: &[u64]) -> Result<()>;
    /// LOAD.
    fn load(&self, slot: u64, v: u64) -> Result<()>;
    /// READs `start..start + out.len()`.
    fn read_range(&self, start: u64, out: &mut [u64]) -> Result<()>;
    /// Whether the accumulator is the identity.
    fn is_clean(&self, slot: u64) -> Result<bool>;
    /// SWAP.
    fn swap(&self, slot: u64) -> Result<u64>;
    /// SWAP_SET.
    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64>;
}

/// An opened bank, mapped or on a device.
pub enum OpenedSlots {
    /// A mapping of the shared layout (soft, device).
    Mapped(Opened),
    /// Slots on a device (FPGA).
    Device {
        /// The slots.
        slots: Box<dyn DeviceSlots>,
        /// Description.
        info: BankInfo,
    },
}

/// A place banks live.
pub trait Backend: Send + Sync {
    /// Which kind this is.
    fn kind(&self) -> BackendKind;
    /// Creates a bank (error if the name is taken) and opens it read-write.
    fn create(&self, name: &BankName, opts: &CreateOptions) -> Result<Opened>;
    /// Opens an existing bank.
    fn open(&self, name: &BankName, access: Access) -> Result<Opened>;
    /// Destroys a bank. Existing mappings stay valid until dropped.
    fn destroy(&self, name: &BankName) -> Result<()>;
    /// Describes every bank; an unreadable one gives its error in place.
    fn list(&self) -> Result<Vec<Result<BankInfo>>>;
    /// [`Backend::create`], for backends whose banks are not mappings (the FPGA overrides it).
    fn create_slots(&self, name: &BankName, opts: &CreateOptions) -> Result<OpenedSlots> {
        self.create(name, opts).map(OpenedSlots::Mapped)
    }
    /// [`Backend::open`], likewise.
    fn open_slots(&self, name: &BankName, access: Access) -> Result<OpenedSlots> {
        self.open(name, access).map(OpenedSlots::Mapped)
    }
}

/// The backend in use and why it was chosen.
pub struct Selection {
    /// The backend.
    pub backend: Box<dyn Backend>,
    /// One line: why this one.
    pub reason: String,
}

/// Environment variable forcing a backend.
pub const ENV_BACKEND: &str = "ATOMIK_BACKEND";

/// Chooses the backend: `ATOMIK_BACKEND` when set, else `/dev/atomik` when it exists, else an
/// FPGA whose ID register matches (see [`fpga::FpgaBackend::locate`]), else the userspace default.
pub fn select() -> Result<Selection> {
    match std::env::var(ENV_BACKEND) {
        Ok(v) if !v.is_empty() => match v.as_str() {
            "soft" => Ok(Selection {
                backend: Box::new(soft::SoftBackend::from_env()),
                reason: format!("{ENV_BACKEND}=soft"),
            }),
            "device" => Ok(Selection { backend: device()?, reason: format!("{ENV_BACKEND}=device") }),
            "fpga" => {
                let b = fpga::FpgaBackend::locate()?;
                let reason = format!("{ENV_BACKEND}=fpga: {}", b.describe());
                Ok(Selection { backend: Box::new(b), reason })
            }
            _ => Err(Error::BadBackend { value: v }),
        },
        _ => {
            if std::path::Path::new(crate::abi::DEVICE_PATH).exists() {
                // Present but unusable is an error, not a fall-back: the banks of this process
                // would silently be other ones than those of its peers on the device.
                return Ok(Selection {
                    backend: device()?,
                    reason: format!("{} is present", crate::abi::DEVICE_PATH),
                });
            }
            let no_fpga = match fpga::FpgaBackend::locate() {
                Ok(b) => {
                    let reason = format!("{} is absent; {}", crate::abi::DEVICE_PATH, b.describe());
                    return Ok(Selection { backend: Box::new(b), reason });
                }
                Err(e) => e.to_string(),
            };
            Ok(Selection {
                backend: Box::new(soft::SoftBackend::from_env()),
                reason: format!(
                    "{} is absent, no FPGA ({no_fpga}); using shared memory",
                    crate::abi::DEVICE_PATH
                ),
            })
        }
    }
}

/// The `/dev/atomik` backend, or an error that says why it cannot be used and how to choose
/// another: [`Error::DeviceDenied`] when it may not be opened.
fn device() -> Result<Box<dyn Backend>> {
    match device::DeviceBackend::open_default() {
        Ok(b) => Ok(Box::new(b)),
        Err(Error::Io { path, source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::DeviceDenied { path, source })
        }
        Err(e) => Err(Error::BackendUnavailable {
            backend: "device",
            reason: format!("{e}; set {ENV_BACKEND}=soft to use shared memory instead"),
        }),
    }
}
