//! The C header agrees with abi.rs: a C program compiled against it prints every size,
//! offset, constant and ioctl number, and each must equal the Rust definition.

use std::mem::{offset_of, size_of};
use std::process::Command;

use atomik::abi::*;

#[test]
fn c_header_matches_the_rust_abi() {
    let dir = std::env::temp_dir().join(format!("atomik-c-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("check.c");
    let exe = dir.join("check");
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let program = r#"
#include <stdio.h>
#include <stddef.h>
#include "atomik.h"
#define S(t) printf(#t " %zu\n", sizeof(struct t))
#define O(t, f) printf(#t "." #f " %zu\n", offsetof(struct t, f))
#define N(x) printf(#x " %llu\n", (unsigned long long)(x))
int main(void) {
    S(atomik_info); S(atomik_bank_create); S(atomik_bank_open); S(atomik_bank_name);
    S(atomik_slot_op); S(atomik_batch_entry); S(atomik_batch); S(atomik_bank_stats);
    S(atomik_bank_header); S(atomik_bank_list_entry); S(atomik_bank_list);
    O(atomik_bank_list_entry, slots); O(atomik_bank_list_entry, shards); O(atomik_bank_list, count);
    O(atomik_info, max_slots); O(atomik_info, max_batch);
    O(atomik_bank_create, slots); O(atomik_bank_create, op); O(atomik_bank_create, shards);
    O(atomik_bank_open, access); O(atomik_bank_open, slots); O(atomik_bank_open, map_size);
    O(atomik_batch_entry, status); O(atomik_batch_entry, slot); O(atomik_batch_entry, value);
    O(atomik_batch, count); O(atomik_batch, done);
    O(atomik_bank_stats, uid); O(atomik_bank_stats, op);
    O(atomik_bank_header, slot_count); O(atomik_bank_header, op); O(atomik_bank_header, total_size);
    O(atomik_bank_header, seq_off); O(atomik_bank_header, shard_stride);
    O(atomik_bank_header, taken_off); O(atomik_bank_header, card_off);
    O(atomik_bank_header, origin); O(atomik_bank_header, incarnation); O(atomik_bank_header, owner);
    O(atomik_bank_header, shard_owner); O(atomik_bank_header, name);
    N(ATOMIK_IOCTL_GET_INFO); N(ATOMIK_IOCTL_BANK_CREATE); N(ATOMIK_IOCTL_BANK_OPEN);
    N(ATOMIK_IOCTL_BANK_DESTROY); N(ATOMIK_IOCTL_BANK_LIST); N(ATOMIK_IOCTL_LOAD); N(ATOMIK_IOCTL_ACCUM);
    N(ATOMIK_IOCTL_READ); N(ATOMIK_IOCTL_SWAP); N(ATOMIK_IOCTL_BATCH); N(ATOMIK_IOCTL_BANK_STATS);
    N(ATOMIK_ABI_VERSION); N(ATOMIK_BANK_MAGIC); N(ATOMIK_NAME_LEN); N(ATOMIK_BATCH_MAX);
    N(ATOMIK_MAX_SHARDS); N(ATOMIK_MAX_SLOTS); N(ATOMIK_OP_ADD); N(ATOMIK_KIND_SWAP);
    N(ATOMIK_FEATURE_FPGA); N(ATOMIK_ACCESS_WRITE); N(ATOMIK_BANK_HEADER_SIZE);
    N(ATOMIK_BANK_OPEN_FPGA); N(ATOMIK_BANK_CREATE_FPGA);
    N(ATOMIK_CARD_SLOTS); N(ATOMIK_SEQ_COUNTER_MASK); N(ATOMIK_OWNER_TAG);
    N(ATOMIK_KIND_SWAP_SET); N(ATOMIK_IOCTL_SWAP_SET);
    S(atomik_region_watch); S(atomik_region_check); S(atomik_region_id);
    O(atomik_region_watch, start); O(atomik_region_watch, id); O(atomik_region_watch, unreadable);
    O(atomik_region_check, bitmap); O(atomik_region_check, fingerprints);
    O(atomik_region_check, pages); O(atomik_region_check, unreadable);
    N(ATOMIK_IOCTL_REGION_WATCH); N(ATOMIK_IOCTL_REGION_CHECK); N(ATOMIK_IOCTL_REGION_CHECKPOINT);
    N(ATOMIK_IOCTL_REGION_UNWATCH); N(ATOMIK_FEATURE_REGION);
    S(atomik_region_cow); O(atomik_region_cow, page_bits); O(atomik_region_cow, pages);
    O(atomik_region_cow, shared); O(atomik_region_cow, identical);
    N(ATOMIK_IOCTL_REGION_COW); N(ATOMIK_REGION_WATCH_COW); N(ATOMIK_COW_PAGE_ANON);
    N(ATOMIK_COW_PAGE_SHARED); N(ATOMIK_COW_PAGE_BROKE); N(ATOMIK_COW_PAGE_IDENTICAL);
    return 0;
}
"#;
    std::fs::write(&src, program).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I", include, "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running C compiler {cc}: {e} (install build-essential)"));
    assert!(st.success(), "the C header does not compile");
    let out = Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let c: std::collections::HashMap<&str, u64> =
        text.lines().map(|l| l.rsplit_once(' ').unwrap()).map(|(k, v)| (k, v.parse().unwrap())).collect();
    let expect: &[(&str, u64)] = &[
        ("atomik_info", size_of::<Info>() as u64),
        ("atomik_bank_create", size_of::<BankCreate>() as u64),
        ("atomik_bank_open", size_of::<BankOpen>() as u64),
        ("atomik_bank_name", size_of::<BankName>() as u64),
        ("atomik_slot_op", size_of::<SlotOp>() as u64),
        ("atomik_batch_entry", size_of::<BatchEntry>() as u64),
        ("atomik_batch", size_of::<Batch>() as u64),
        ("atomik_bank_stats", size_of::<BankStats>() as u64),
        ("atomik_bank_header", size_of::<BankHeader>() as u64),
        ("atomik_bank_list_entry", size_of::<BankListEntry>() as u64),
        ("atomik_bank_list", size_of::<BankList>() as u64),
        ("atomik_bank_list_entry.slots", offset_of!(BankListEntry, slots) as u64),
        ("atomik_bank_list_entry.shards", offset_of!(BankListEntry, shards) as u64),
        ("atomik_bank_list.count", offset_of!(BankList, count) as u64),
        ("atomik_info.max_slots", offset_of!(Info, max_slots) as u64),
        ("atomik_info.max_batch", offset_of!(Info, max_batch) as u64),
        ("atomik_bank_create.slots", offset_of!(BankCreate, slots) as u64),
        ("atomik_bank_create.op", offset_of!(BankCreate, op) as u64),
        ("atomik_bank_create.shards", offset_of!(BankCreate, shards) as u64),
        ("atomik_bank_open.access", offset_of!(BankOpen, access) as u64),
        ("atomik_bank_open.slots", offset_of!(BankOpen, slots) as u64),
        ("atomik_bank_open.map_size", offset_of!(BankOpen, map_size) as u64),
        ("atomik_batch_entry.status", offset_of!(BatchEntry, status) as u64),
        ("atomik_batch_entry.slot", offset_of!(BatchEntry, slot) as u64),
        ("atomik_batch_entry.value", offset_of!(BatchEntry, value) as u64),
        ("atomik_batch.count", offset_of!(Batch, count) as u64),
        ("atomik_batch.done", offset_of!(Batch, done) as u64),
        ("atomik_bank_stats.uid", offset_of!(BankStats, uid) as u64),
        ("atomik_bank_stats.op", offset_of!(BankStats, op) as u64),
        ("atomik_bank_header.slot_count", offset_of!(BankHeader, slot_count) as u64),
        ("atomik_bank_header.op", offset_of!(BankHeader, op) as u64),
        ("atomik_bank_header.total_size", offset_of!(BankHeader, total_size) as u64),
        ("atomik_bank_header.seq_off", offset_of!(BankHeader, seq_off) as u64),
        ("atomik_bank_header.shard_stride", offset_of!(BankHeader, shard_stride) as u64),
        ("atomik_bank_header.taken_off", offset_of!(BankHeader, taken_off) as u64),
        ("atomik_bank_header.card_off", offset_of!(BankHeader, card_off) as u64),
        ("atomik_bank_header.origin", offset_of!(BankHeader, origin) as u64),
        ("atomik_bank_header.incarnation", offset_of!(BankHeader, incarnation) as u64),
        ("atomik_bank_header.owner", offset_of!(BankHeader, owner) as u64),
        ("atomik_bank_header.shard_owner", offset_of!(BankHeader, shard_owner) as u64),
        ("atomik_bank_header.name", offset_of!(BankHeader, name) as u64),
        ("ATOMIK_IOCTL_GET_INFO", IOCTL_GET_INFO as u64),
        ("ATOMIK_IOCTL_BANK_CREATE", IOCTL_BANK_CREATE as u64),
        ("ATOMIK_IOCTL_BANK_OPEN", IOCTL_BANK_OPEN as u64),
        ("ATOMIK_IOCTL_BANK_DESTROY", IOCTL_BANK_DESTROY as u64),
        ("ATOMIK_IOCTL_BANK_LIST", IOCTL_BANK_LIST as u64),
        ("ATOMIK_IOCTL_LOAD", IOCTL_LOAD as u64),
        ("ATOMIK_IOCTL_ACCUM", IOCTL_ACCUM as u64),
        ("ATOMIK_IOCTL_READ", IOCTL_READ as u64),
        ("ATOMIK_IOCTL_SWAP", IOCTL_SWAP as u64),
        ("ATOMIK_IOCTL_BATCH", IOCTL_BATCH as u64),
        ("ATOMIK_IOCTL_BANK_STATS", IOCTL_BANK_STATS as u64),
        ("ATOMIK_ABI_VERSION", ABI_VERSION as u64),
        ("ATOMIK_BANK_MAGIC", BANK_MAGIC),
        ("ATOMIK_NAME_LEN", NAME_LEN as u64),
        ("ATOMIK_BATCH_MAX", BATCH_MAX as u64),
        ("ATOMIK_MAX_SHARDS", MAX_SHARDS as u64),
        ("ATOMIK_MAX_SLOTS", MAX_SLOTS),
        ("ATOMIK_OP_ADD", OP_ADD as u64),
        ("ATOMIK_KIND_SWAP", KIND_SWAP as u64),
        ("ATOMIK_FEATURE_FPGA", FEATURE_FPGA as u64),
        ("ATOMIK_ACCESS_WRITE", ACCESS_WRITE as u64),
        ("ATOMIK_BANK_OPEN_FPGA", BANK_OPEN_FPGA as u64),
        ("ATOMIK_BANK_CREATE_FPGA", BANK_CREATE_FPGA as u64),
        ("ATOMIK_BANK_HEADER_SIZE", BANK_HEADER_SIZE),
        ("ATOMIK_CARD_SLOTS", CARD_SLOTS),
        ("ATOMIK_KIND_SWAP_SET", KIND_SWAP_SET as u64),
        ("ATOMIK_IOCTL_SWAP_SET", IOCTL_SWAP_SET as u64),
        ("ATOMIK_SEQ_COUNTER_MASK", SEQ_COUNTER_MASK),
        ("ATOMIK_OWNER_TAG", OWNER_TAG),
        ("atomik_region_watch", size_of::<RegionWatch>() as u64),
        ("atomik_region_check", size_of::<RegionCheck>() as u64),
        ("atomik_region_id", size_of::<RegionId>() as u64),
        ("atomik_region_watch.start", offset_of!(RegionWatch, start) as u64),
        ("atomik_region_watch.id", offset_of!(RegionWatch, id) as u64),
        ("atomik_region_watch.unreadable", offset_of!(RegionWatch, unreadable) as u64),
        ("atomik_region_check.bitmap", offset_of!(RegionCheck, bitmap) as u64),
        ("atomik_region_check.fingerprints", offset_of!(RegionCheck, fingerprints) as u64),
        ("atomik_region_check.pages", offset_of!(RegionCheck, pages) as u64),
        ("atomik_region_check.unreadable", offset_of!(RegionCheck, unreadable) as u64),
        ("ATOMIK_IOCTL_REGION_WATCH", IOCTL_REGION_WATCH as u64),
        ("ATOMIK_IOCTL_REGION_CHECK", IOCTL_REGION_CHECK as u64),
        ("ATOMIK_IOCTL_REGION_CHECKPOINT", IOCTL_REGION_CHECKPOINT as u64),
        ("ATOMIK_IOCTL_REGION_UNWATCH", IOCTL_REGION_UNWATCH as u64),
        ("ATOMIK_FEATURE_REGION", FEATURE_REGION as u64),
        ("atomik_region_cow", size_of::<RegionCow>() as u64),
        ("atomik_region_cow.page_bits", offset_of!(RegionCow, page_bits) as u64),
        ("atomik_region_cow.pages", offset_of!(RegionCow, pages) as u64),
        ("atomik_region_cow.shared", offset_of!(RegionCow, shared) as u64),
        ("atomik_region_cow.identical", offset_of!(RegionCow, identical) as u64),
        ("ATOMIK_IOCTL_REGION_COW", IOCTL_REGION_COW as u64),
        ("ATOMIK_REGION_WATCH_COW", REGION_WATCH_COW as u64),
        ("ATOMIK_COW_PAGE_ANON", COW_PAGE_ANON as u64),
        ("ATOMIK_COW_PAGE_SHARED", COW_PAGE_SHARED as u64),
        ("ATOMIK_COW_PAGE_BROKE", COW_PAGE_BROKE as u64),
        ("ATOMIK_COW_PAGE_IDENTICAL", COW_PAGE_IDENTICAL as u64),
    ];
    for (k, v) in expect {
        assert_eq!(c.get(k), Some(v), "{k}: C header and abi.rs disagree");
    }
    assert_eq!(c.len(), expect.len(), "every printed item is checked");
    let _ = std::fs::remove_dir_all(&dir);
}
