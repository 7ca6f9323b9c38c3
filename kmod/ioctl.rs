// SPDX-License-Identifier: GPL-2.0
//! ioctl dispatch: one small function per command. Every request is copied in whole, checked,
//! then acted on; replies are copied out after every lock is released.

use crate::{
    abi::{self, *},
    access::{self, Owner},
    batch,
    device::{AtomikFile, Attachment},
    limits::Limits,
    region, region_cow, registry, sdk_compat,
};
use core::mem::size_of;
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    prelude::*,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

pub(crate) fn dispatch(me: &AtomikFile, file: &File, cmd: u32, arg: usize) -> Result<isize> {
    let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
    match cmd {
        IOCTL_GET_INFO => get_info(me, user.writer()),
        IOCTL_BANK_CREATE => create(me, file, user.reader()),
        IOCTL_BANK_OPEN => open(me, file, user),
        IOCTL_BANK_DESTROY => destroy(me, file, user.reader()),
        IOCTL_BANK_LIST => list(me, user),
        IOCTL_LOAD => slot_op(me, KIND_LOAD, user, arg),
        IOCTL_ACCUM => slot_op(me, KIND_ACCUM, user, arg),
        IOCTL_READ => slot_op(me, KIND_READ, user, arg),
        IOCTL_SWAP => slot_op(me, KIND_SWAP, user, arg),
        IOCTL_SWAP_SET => slot_op(me, KIND_SWAP_SET, user, arg),
        IOCTL_IS_CLEAN => is_clean(attached(me)?, user),
        IOCTL_BATCH => batch::run(attached(me)?, user, arg),
        IOCTL_BANK_STATS => stats(attached(me)?, user.writer()),
        IOCTL_REGION_WATCH => region::watch(me, user, arg),
        IOCTL_REGION_CHECK => region::check(me, user),
        IOCTL_REGION_CHECKPOINT => region::checkpoint(me, user.reader()),
        IOCTL_REGION_UNWATCH => region::unwatch(me, user.reader()),
        IOCTL_REGION_COW => region_cow::cow(me, user),
        _ if sdk_compat::handles(cmd) => sdk_compat::dispatch(&me.sdk, file, cmd, arg),
        _ => Err(ENOTTY),
    }
}

/// The fd's bank: EBADFD before BANK_OPEN.
pub(crate) fn attached(me: &AtomikFile) -> Result<&Attachment> {
    me.attached.as_ref().ok_or(EBADFD)
}

/// The access an op of `kind` needs: READ reads, LOAD and ACCUM write, SWAP and SWAP_SET
/// write and return the state (read and write, as System V asks of a writable attach).
pub(crate) fn needed_access(kind: u32) -> u32 {
    match kind {
        KIND_READ => ACCESS_READ,
        KIND_SWAP | KIND_SWAP_SET => ACCESS_READ | ACCESS_WRITE,
        _ => ACCESS_WRITE,
    }
}

/// EACCES unless `access` has every bit an op of `kind` needs.
pub(crate) fn check_access(access: u32, kind: u32) -> Result {
    if needed_access(kind) & !access != 0 {
        Err(EACCES)
    } else {
        Ok(())
    }
}

fn get_info(me: &AtomikFile, mut w: UserSliceWriter) -> Result<isize> {
    let limits = Limits::get();
    let (bank_count, used_bytes) = registry::usage(&me.ipc_ns);
    let fpga = if crate::fpga_bound() { FEATURE_FPGA } else { 0 };
    let info = Info {
        abi_version: ABI_VERSION,
        features: FEATURE_MMAP | FEATURE_BATCH | FEATURE_STATS | FEATURE_REGION | fpga,
        bank_count,
        max_banks_per_user: limits.banks_per_user,
        max_slots: limits.slots,
        max_total_bytes: limits.total_bytes,
        used_bytes,
        max_batch: BATCH_MAX,
        reserved: 0,
    };
    w.write(&info)?;
    Ok(0)
}

fn create(me: &AtomikFile, file: &File, mut r: UserSliceReader) -> Result<isize> {
    let req: BankCreate = r.read()?;
    if req.op != OP_XOR && req.op != OP_ADD {
        return Err(EINVAL);
    }
    if req.flags & !BANK_CREATE_FPGA != 0 || req.mode & !0o777 != 0 || req.slots == 0 {
        return Err(EINVAL);
    }
    let on_fpga = req.flags & BANK_CREATE_FPGA != 0;
    if on_fpga && req.shards != 0 {
        // Writer shards are memory; the device has none.
        return Err(EINVAL);
    }
    if req.shards as usize > MAX_SHARDS {
        return Err(EINVAL);
    }
    if req.slots > Limits::get().slots {
        return Err(ENOMEM);
    }
    let layout = BankLayout::new(req.slots, req.shards).ok_or(EINVAL)?;
    let exempt = access::exempt_from_user_limit(file);
    registry::create(&me.ipc_ns, req.name, Owner::of(file, req.mode), req.op, layout, exempt, on_fpga)?;
    Ok(0)
}

fn open(me: &AtomikFile, file: &File, user: UserSlice) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: BankOpen = r.read()?;
    if me.attached.as_ref().is_some() {
        return Err(EBUSY);
    }
    let bank = registry::find(&me.ipc_ns, &req.name)?;
    bank.owner.check(file, req.access)?;
    req.op = bank.op;
    req.slots = bank.layout.slots;
    req.map_size = bank.bytes();
    if bank.on_fpga().is_some() {
        req.access |= BANK_OPEN_FPGA;
    }
    // The reply first: a reply that cannot be written leaves the fd unattached.
    w.write(&req)?;
    let access = req.access & !BANK_OPEN_FPGA;
    if !me.attached.populate(Attachment { bank, access }) {
        return Err(EBUSY);
    }
    Ok(0)
}

fn destroy(me: &AtomikFile, file: &File, mut r: UserSliceReader) -> Result<isize> {
    let req: BankName = r.read()?;
    registry::destroy(&me.ipc_ns, &req.name, |bank| bank.owner.check_destroy(file))?;
    Ok(0)
}

fn list(me: &AtomikFile, user: UserSlice) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: BankList = r.read()?;
    if req.capacity > BATCH_MAX {
        return Err(E2BIG);
    }
    let (entries, count) = registry::list(&me.ipc_ns, req.capacity as usize)?;
    let addr = usize::try_from(req.entries).map_err(|_| EFAULT)?;
    let mut out = UserSlice::new(UserPtr::from_addr(addr), entries.len() * size_of::<BankListEntry>()).writer();
    for e in entries.iter() {
        out.write(e)?;
    }
    req.count = count;
    w.write(&req)?;
    Ok(0)
}

fn slot_op(me: &AtomikFile, kind: u32, user: UserSlice, arg: usize) -> Result<isize> {
    let att = attached(me)?;
    let (mut r, mut w) = user.reader_writer();
    let mut req: SlotOp = r.read()?;
    check_access(att.access, kind)?;
    if kind == KIND_SWAP || kind == KIND_SWAP_SET {
        // SWAP and SWAP_SET change the slot and return what they took: make sure the reply
        // can be written before taking it (only a concurrent unmap can fail it afterwards).
        att.bank.check_slot(req.slot)?;
        UserSlice::new(UserPtr::from_addr(arg), size_of::<SlotOp>()).writer().write(&req)?;
    }
    let out = att.bank.apply(kind, req.slot, req.value)?;
    if kind == KIND_READ || kind == KIND_SWAP || kind == KIND_SWAP_SET {
        req.value = out;
        w.write(&req)?;
    }
    Ok(0)
}

fn is_clean(att: &Attachment, user: UserSlice) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: SlotOp = r.read()?;
    check_access(att.access, KIND_READ)?;
    req.value = u64::from(att.bank.is_clean(req.slot)?);
    w.write(&req)?;
    Ok(0)
}

fn stats(att: &Attachment, mut w: UserSliceWriter) -> Result<isize> {
    let bank = &att.bank;
    let (uid, gid) = bank.owner.ids();
    let mut out = abi::BankStats {
        slots: bank.layout.slots,
        uid,
        gid,
        mode: bank.owner.mode,
        op: bank.op,
        ..Default::default()
    };
    bank.stats.fill(&mut out);
    w.write(&out)?;
    Ok(0)
}
