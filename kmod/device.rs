// SPDX-License-Identifier: GPL-2.0
//! The misc device `/dev/atomik` and its per-file state: the bank the fd is attached to.

use crate::{bank::Bank, ioctl, ipc_ns::IpcNs, mmap, region::Regions, sdk_compat};
use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::virt::VmaNew,
    seq_file::SeqFile,
    prelude::*,
    sync::{Arc, Mutex, SetOnce},
};

/// The bank an fd is attached to and the access BANK_OPEN granted it.
pub(crate) struct Attachment {
    pub(crate) bank: Arc<Bank>,
    pub(crate) access: u32,
}

/// Private data of an open `/dev/atomik`.
pub(crate) struct AtomikFile {
    /// The IPC namespace of the opener: where this fd's bank names live (as its credentials,
    /// it travels with the fd).
    pub(crate) ipc_ns: IpcNs,
    /// Set once by BANK_OPEN (EBUSY on a second one); read without a lock by every op.
    pub(crate) attached: SetOnce<Attachment>,
    /// Page-change regions this fd watches (REGION_* ioctls).
    pub(crate) regions: Pin<KBox<Mutex<Regions>>>,
    /// Tables of the original SDK's ioctls (sdk_compat.rs), private to this fd.
    pub(crate) sdk: Pin<KBox<Mutex<sdk_compat::Tables>>>,
}

pub(crate) fn register() -> impl PinInit<MiscDeviceRegistration<AtomikFile>, Error> {
    MiscDeviceRegistration::register(MiscDeviceOptions { name: c"atomik" })
}

#[vtable]
impl MiscDevice for AtomikFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(
            AtomikFile {
                ipc_ns: IpcNs::current(),
                attached: SetOnce::new(),
                regions: KBox::pin_init(Regions::new(), GFP_KERNEL)?,
                sdk: KBox::pin_init(sdk_compat::Tables::new(), GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?)
    }

    fn mmap(me: Pin<&AtomikFile>, _file: &File, vma: &VmaNew) -> Result {
        mmap::map_bank(me.attached.as_ref().ok_or(EBADFD)?, vma)
    }

    fn ioctl(me: Pin<&AtomikFile>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, file, cmd, arg)
    }

    fn show_fdinfo(me: Pin<&AtomikFile>, m: &SeqFile, _file: &File) {
        if let Some(att) = me.attached.as_ref() {
            crate::stats::show_fdinfo(att, m);
        }
    }

    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(me: Pin<&AtomikFile>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // Every request struct has the same layout for 32-bit callers (u64 fields, no pointers
        // but u64 addresses).
        ioctl::dispatch(&me, file, cmd, arg)
    }
}
