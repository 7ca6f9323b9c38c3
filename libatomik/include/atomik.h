/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0 */
/*
 * atomik.h — the /dev/atomik ABI and the shared bank layout for C callers.
 *
 * Mirrors libatomik/src/abi.rs, the single source of truth; a test
 * (libatomik/tests/c_header.rs) compiles a program against this header and checks every
 * size, offset and ioctl number against the Rust definitions, and every field's direction
 * below was audited against the module (kmod/ioctl.rs, batch.rs, region.rs). The mapped-memory
 * protocol is at the end. For the library itself (the userspace default as well as
 * /dev/atomik) from C, use capi/include/atomik_capi.h instead.
 *
 * Bank names are scoped to the IPC namespace of the process that opened /dev/atomik, as
 * System V IPC keys are; access is checked like ipcperms (kmod/README.md, "Access model").
 */
#ifndef ATOMIK_H
#define ATOMIK_H

#include <stdint.h>
#include <linux/ioctl.h>

#define ATOMIK_ABI_VERSION 2u
#define ATOMIK_IOC_MAGIC 0xA7
#define ATOMIK_DEVICE_PATH "/dev/atomik"
#define ATOMIK_NAME_LEN 64
#define ATOMIK_BATCH_MAX 65536u
#define ATOMIK_MAX_SHARDS 16
#define ATOMIK_PAGE_SIZE 4096ull
/* Largest slot count the layout allows; /dev/atomik's own limit (GET_INFO .max_slots, a module
 * parameter) is usually far lower: check that one before BANK_CREATE. */
#define ATOMIK_MAX_SLOTS (1ull << 40)

#define ATOMIK_OP_XOR 0u
#define ATOMIK_OP_ADD 1u

#define ATOMIK_KIND_LOAD 0u
#define ATOMIK_KIND_ACCUM 1u
#define ATOMIK_KIND_READ 2u
#define ATOMIK_KIND_SWAP 3u
/* SWAP with a new reference: value in = the new reference, value out = the state before. */
#define ATOMIK_KIND_SWAP_SET 4u

#define ATOMIK_FEATURE_MMAP (1u << 0)
#define ATOMIK_FEATURE_BATCH (1u << 1)
#define ATOMIK_FEATURE_STATS (1u << 2)
#define ATOMIK_FEATURE_REGION (1u << 3)
#define ATOMIK_FEATURE_FPGA (1u << 4)

#define ATOMIK_ACCESS_READ 1u
#define ATOMIK_ACCESS_WRITE 2u
/* BANK_OPEN reply: the bank is on the FPGA; its mapping is its part of the ACCUM window */
#define ATOMIK_BANK_OPEN_FPGA (1u << 16)
/* BANK_CREATE flags: create the bank on the FPGA */
#define ATOMIK_BANK_CREATE_FPGA 1u

/*
 * Every field below is marked "in" (read by the kernel), "out" (written by it; its input value is
 * ignored) or "in/out". Reserved fields marked "zero" must be 0 (else EINVAL).
 */

/* GET_INFO reply: all out. */
struct atomik_info {
	uint32_t abi_version;        /* out: ATOMIK_ABI_VERSION of the module */
	uint32_t features;           /* out: ATOMIK_FEATURE_* bits */
	uint32_t bank_count;         /* out: banks named in the caller's IPC namespace */
	uint32_t max_banks_per_user; /* out: module parameter: banks one uid may own (ENOSPC) */
	uint64_t max_slots;          /* out: module parameter: slots in one bank (ENOMEM) */
	uint64_t max_total_bytes;    /* out: module parameter: bank memory in all (ENOMEM) */
	uint64_t used_bytes;         /* out: bank memory in use, all namespaces, destroyed banks
	                              * still attached or mapped included */
	uint32_t max_batch;          /* out: ATOMIK_BATCH_MAX */
	uint32_t reserved;           /* out: 0 */
};

/* BANK_CREATE request: all in. The bank is owned by the opener's euid and egid. */
struct atomik_bank_create {
	char name[ATOMIK_NAME_LEN]; /* in: [A-Za-z0-9._-]{1,63}, not starting with '.', NUL-terminated
	                             * (bytes after the NUL are ignored); unique in the opener's
	                             * IPC namespace (EEXIST) */
	uint64_t slots;  /* in: 1 .. GET_INFO max_slots (0: EINVAL, above: ENOMEM) */
	uint32_t op;     /* in: ATOMIK_OP_XOR or ATOMIK_OP_ADD */
	uint32_t mode;   /* in: permission bits, 0 .. 0777 (else EINVAL) */
	uint32_t shards; /* in: writer-private shards, 0 .. ATOMIK_MAX_SHARDS */
	uint32_t flags;  /* in: ATOMIK_BANK_CREATE_FPGA or zero */
};

/* BANK_OPEN request and reply: attaches the fd (once: EBUSY) to a bank of its IPC namespace. */
struct atomik_bank_open {
	char name[ATOMIK_NAME_LEN]; /* in: as for BANK_CREATE */
	uint32_t access;            /* in: ATOMIK_ACCESS_READ and/or ATOMIK_ACCESS_WRITE (nonzero) */
	uint32_t op;                /* out: the bank's operator */
	uint64_t slots;             /* out: slot count */
	uint64_t map_size;          /* out: bytes to mmap for the whole bank (header included) */
};

/* BANK_DESTROY request. */
struct atomik_bank_name {
	char name[ATOMIK_NAME_LEN]; /* in: as for BANK_CREATE */
};

/* LOAD, ACCUM, READ, SWAP, SWAP_SET request (and reply) on the fd's bank. */
struct atomik_slot_op {
	uint64_t slot;  /* in: < slot count (else EINVAL) */
	uint64_t value; /* LOAD: in, the new reference; ACCUM: in, the delta; READ and SWAP: out,
	                 * the state; SWAP_SET: in, the new reference, and out, the state before */
};

/* One BATCH entry. */
struct atomik_batch_entry {
	uint32_t kind;   /* in: ATOMIK_KIND_* */
	int32_t status;  /* out: 0, or the negative errno of this entry (validation, or the wait
	                  * of the entry at index done that stopped the batch) */
	uint64_t slot;   /* in: as for atomik_slot_op */
	uint64_t value;  /* in/out: as for atomik_slot_op of that kind (LOAD and ACCUM: unchanged) */
};

/* BATCH request and reply. */
struct atomik_batch {
	uint64_t entries; /* in: user pointer to count struct atomik_batch_entry (may be 0 when
	                   * count is 0); the entries are written back */
	uint32_t count;   /* in: 0 .. ATOMIK_BATCH_MAX (else E2BIG) */
	uint32_t done;    /* out: entries applied, in order (all of them on success) */
};

/* BANK_STATS reply on the fd's bank: all out. Counters count ops made through ioctls, single
 * or in a BATCH (not ACCUMs through a mapping); swaps counts SWAP and SWAP_SET. */
struct atomik_bank_stats {
	uint64_t loads, accums, reads, swaps; /* out: ops by kind */
	uint64_t batches;                     /* out: BATCH ioctls whose entries all validated */
	uint64_t mmaps;                       /* out: successful mmap calls */
	uint64_t slots;                       /* out: slot count */
	uint32_t uid, gid;                    /* out: owner as the caller's user namespace maps it
	                                       * (65534 when unmapped) */
	uint32_t mode, op;                    /* out: permission bits, operator */
};

/* One BANK_LIST entry: all out. */
struct atomik_bank_list_entry {
	char name[ATOMIK_NAME_LEN]; /* out: NUL-terminated, zero-filled */
	uint64_t slots;             /* out: slot count */
	uint64_t bytes;             /* out: bytes the bank takes (its whole mapping) */
	uint32_t op, mode;          /* out: operator, permission bits */
	uint32_t uid, gid;          /* out: owner as the caller's user namespace maps it (65534 when
	                             * unmapped) */
	uint32_t shards;            /* out: writer-private shards */
	uint32_t reserved;          /* out: 0 */
};

/* BANK_LIST request and reply: the banks of the caller's IPC namespace (every opener sees all
 * of them, like ipcs), in creation order. */
struct atomik_bank_list {
	uint64_t entries;  /* in: user pointer to capacity struct atomik_bank_list_entry (may be 0
	                    * when capacity is 0); min(capacity, count) entries are written */
	uint32_t capacity; /* in: 0 .. ATOMIK_BATCH_MAX (else E2BIG) */
	uint32_t count;    /* out: banks that exist (more than capacity: ask again) */
};
/* BANK_LIST with a buffer shorter than the banks that exist succeeds (returns 0), fills
 * capacity entries and sets count to the total: compare count with capacity. E2BIG only when
 * capacity is above ATOMIK_BATCH_MAX. A BATCH of count 0 succeeds without reading entries (it
 * may be 0). mmap of a /dev/atomik fd not attached by BANK_OPEN fails with EBADFD. */

#define ATOMIK_IOCTL_GET_INFO _IOR(ATOMIK_IOC_MAGIC, 0x00, struct atomik_info)
#define ATOMIK_IOCTL_BANK_CREATE _IOW(ATOMIK_IOC_MAGIC, 0x01, struct atomik_bank_create)
#define ATOMIK_IOCTL_BANK_OPEN _IOWR(ATOMIK_IOC_MAGIC, 0x02, struct atomik_bank_open)
#define ATOMIK_IOCTL_BANK_DESTROY _IOW(ATOMIK_IOC_MAGIC, 0x03, struct atomik_bank_name)
#define ATOMIK_IOCTL_BANK_LIST _IOWR(ATOMIK_IOC_MAGIC, 0x04, struct atomik_bank_list)
#define ATOMIK_IOCTL_LOAD _IOW(ATOMIK_IOC_MAGIC, 0x10, struct atomik_slot_op)
#define ATOMIK_IOCTL_ACCUM _IOW(ATOMIK_IOC_MAGIC, 0x11, struct atomik_slot_op)
#define ATOMIK_IOCTL_READ _IOWR(ATOMIK_IOC_MAGIC, 0x12, struct atomik_slot_op)
#define ATOMIK_IOCTL_SWAP _IOWR(ATOMIK_IOC_MAGIC, 0x13, struct atomik_slot_op)
/* Returns the state, sets the reference to .value, resets the accumulator (needs read and
 * write access, as SWAP does). LOAD, READ, SWAP and SWAP_SET wait for a locked slot: EINTR on
 * a signal, ETIMEDOUT when it stays locked for the module's slot_wait_ms (1 s by default). */
#define ATOMIK_IOCTL_SWAP_SET _IOWR(ATOMIK_IOC_MAGIC, 0x16, struct atomik_slot_op)
#define ATOMIK_IOCTL_BATCH _IOWR(ATOMIK_IOC_MAGIC, 0x14, struct atomik_batch)
#define ATOMIK_IOCTL_BANK_STATS _IOR(ATOMIK_IOC_MAGIC, 0x15, struct atomik_bank_stats)

/* Shared bank layout: header page, then page-aligned arrays (see abi.rs). */
#define ATOMIK_BANK_MAGIC 0x4b424b494d4f5441ull /* "ATOMIKBK" little-endian */
#define ATOMIK_BANK_HEADER_SIZE 4096u
/* Slots per dirty card; ACCUM marks card[slot / ATOMIK_CARD_SLOTS] (see abi.rs). */
#define ATOMIK_CARD_SLOTS 512u
/* Low bits of a sequence word: the counter; the locking pid sits above (0 = the kernel). */
#define ATOMIK_SEQ_COUNTER_MASK 0xffffffffull
/* High half of the header's owner word when a creator uid is recorded ("OWNR"). */
#define ATOMIK_OWNER_TAG 0x4f574e5200000000ull

struct atomik_bank_header {
	uint64_t magic;
	uint32_t abi_version;
	uint32_t header_size;
	uint64_t slot_count;
	uint32_t op;
	uint32_t shard_count;
	uint64_t total_size;
	uint64_t seq_off;
	uint64_t ref_off;
	uint64_t acc_off;
	uint64_t shard_off;
	uint64_t base_off;
	uint64_t shard_stride;
	uint64_t taken_off;   /* replicated-accumulator words, one per slot */
	uint64_t card_off;    /* dirty cards: one uint64_t per ATOMIK_CARD_SLOTS slots */
	uint64_t origin;      /* replica origin id when bound by a sync daemon, else 0 */
	uint64_t incarnation; /* binding id when bound, else 0 */
	uint64_t owner;       /* userspace default: ATOMIK_OWNER_TAG | creator uid; 0 from the kernel */
	uint64_t shard_owner[ATOMIK_MAX_SHARDS];
	char name[ATOMIK_NAME_LEN];
	uint8_t reserved1[3776];
};

/*
 * Page-change regions (REGION_* ioctls, feature ATOMIK_FEATURE_REGION): the kernel fingerprints
 * a range of a process's pages and reports which changed since a baseline. See abi.rs for the
 * errno of each ioctl.
 */
struct atomik_region_watch {
	int32_t pid;         /* in: process in the caller's pid namespace, 0 = the caller */
	uint32_t flags;      /* in: ATOMIK_REGION_WATCH_COW or 0 (other bits: EINVAL) */
	uint64_t start;      /* in: page aligned */
	uint64_t len;        /* in: nonzero multiple of the page size, start + len not overflowing */
	uint32_t id;         /* out: region id on this fd, nonzero */
	uint32_t reserved;   /* in: zero */
	uint64_t unreadable; /* out: pages that could not be read (unmapped, PROT_NONE, I/O) */
};

/* REGION_CHECK: what it saw becomes what REGION_CHECKPOINT takes, only once all of its
 * results are written (a check that fails records nothing). */
struct atomik_region_check {
	uint32_t id;               /* in: a region of this fd */
	uint32_t flags;            /* in: zero */
	uint64_t bitmap;           /* in: user pointer or 0: bit i%8 of byte i/8 = page i changed */
	uint64_t bitmap_len;       /* in: bytes at bitmap, at least (pages + 7) / 8 (else EINVAL) */
	uint64_t fingerprints;     /* in: user pointer to uint64_t[pages] or 0 (0 = unreadable) */
	uint64_t fingerprints_len; /* in: entries at fingerprints, at least pages (else EINVAL) */
	uint64_t pages;            /* out: pages in the region */
	uint64_t changed;          /* out: pages changed since the baseline */
	uint64_t unreadable;       /* out: pages this check could not read */
};

/* REGION_CHECKPOINT and REGION_UNWATCH request. */
struct atomik_region_id {
	uint32_t id;       /* in: a region of this fd (else EINVAL) */
	uint32_t reserved; /* in: zero */
};

/*
 * Copy-on-write figures of a region watched with ATOMIK_REGION_WATCH_COW, since the previous
 * sample (the last successful REGION_COW, or the REGION_WATCH): see RegionCow in abi.rs for
 * the exact meaning of shared, break and identical copy. No page frame number leaves the kernel.
 */
#define ATOMIK_REGION_WATCH_COW 1u
#define ATOMIK_COW_PAGE_ANON 0x01u      /* anonymous, present, not the zero page */
#define ATOMIK_COW_PAGE_SHARED 0x02u    /* mapped more than once now */
#define ATOMIK_COW_PAGE_BROKE 0x04u     /* was shared, now a different page mapped once */
#define ATOMIK_COW_PAGE_IDENTICAL 0x08u /* a break whose copy kept the fingerprint */

struct atomik_region_cow {
	uint32_t id;
	uint32_t flags;         /* zero */
	uint64_t page_bits;     /* user pointer to uint8_t[pages] of ATOMIK_COW_PAGE_* bits, or 0 */
	uint64_t page_bits_len; /* bytes at page_bits */
	uint64_t pages;         /* out */
	uint64_t anon;          /* out */
	uint64_t shared;        /* out */
	uint64_t breaks;        /* out */
	uint64_t identical;     /* out */
};

#define ATOMIK_IOCTL_REGION_WATCH _IOWR(ATOMIK_IOC_MAGIC, 0x20, struct atomik_region_watch)
#define ATOMIK_IOCTL_REGION_CHECK _IOWR(ATOMIK_IOC_MAGIC, 0x21, struct atomik_region_check)
#define ATOMIK_IOCTL_REGION_CHECKPOINT _IOW(ATOMIK_IOC_MAGIC, 0x22, struct atomik_region_id)
#define ATOMIK_IOCTL_REGION_UNWATCH _IOW(ATOMIK_IOC_MAGIC, 0x23, struct atomik_region_id)
#define ATOMIK_IOCTL_REGION_COW _IOWR(ATOMIK_IOC_MAGIC, 0x24, struct atomik_region_cow)

/* The sizes the ioctl numbers encode (abi.rs asserts the same on the Rust side). */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct atomik_info) == 48, "atomik_info");
_Static_assert(sizeof(struct atomik_bank_create) == 88, "atomik_bank_create");
_Static_assert(sizeof(struct atomik_bank_open) == 88, "atomik_bank_open");
_Static_assert(sizeof(struct atomik_bank_name) == 64, "atomik_bank_name");
_Static_assert(sizeof(struct atomik_slot_op) == 16, "atomik_slot_op");
_Static_assert(sizeof(struct atomik_batch_entry) == 24, "atomik_batch_entry");
_Static_assert(sizeof(struct atomik_batch) == 16, "atomik_batch");
_Static_assert(sizeof(struct atomik_bank_stats) == 72, "atomik_bank_stats");
_Static_assert(sizeof(struct atomik_bank_list_entry) == 104, "atomik_bank_list_entry");
_Static_assert(sizeof(struct atomik_bank_list) == 16, "atomik_bank_list");
_Static_assert(sizeof(struct atomik_bank_header) == ATOMIK_BANK_HEADER_SIZE, "atomik_bank_header");
_Static_assert(sizeof(struct atomik_region_watch) == 40, "atomik_region_watch");
_Static_assert(sizeof(struct atomik_region_check) == 64, "atomik_region_check");
_Static_assert(sizeof(struct atomik_region_id) == 8, "atomik_region_id");
_Static_assert(sizeof(struct atomik_region_cow) == 64, "atomik_region_cow");
#endif

/*
 * The mapped-memory protocol, for callers that mmap a bank (a /dev/atomik fd attached with
 * BANK_OPEN, or a userspace-default bank file under /dev/shm/atomik) and work on it directly.
 * `base` is the start of the whole mapping (offset 0: the header page). Rules (abi.rs,
 * "Concurrency protocol"):
 *   - every word is a native-endian uint64_t accessed only atomically;
 *   - producers only ACCUM: an atomic RMW of acc[slot], then the slot's dirty card is marked
 *     (a sync daemon finds changes through the cards: an ACCUM that skips the card is not
 *     replicated);
 *   - READ is a seqlock read of seq[slot] around ref, acc and the shards;
 *   - LOAD, SWAP and SWAP_SET take the slot's sequence word as a writer: use the ioctls (the
 *     kernel) or libatomik; on a bank bound to a sync daemon (header origin/incarnation not 0)
 *     do not LOAD or SWAP at all, and never write ref, taken or the header.
 * Shards (shard_count > 0) are folded by READ as the sum over k of shard_k[slot] ∘ base_k[slot]⁻¹.
 */
static inline uint64_t *atomik_word_(void *base, uint64_t off, uint64_t i)
{
	return (uint64_t *)((char *)base + off) + i;
}

static inline uint64_t atomik_combine_(uint32_t op, uint64_t a, uint64_t b)
{
	return op == ATOMIK_OP_ADD ? a + b : a ^ b;
}

/* ACCUM through the mapping: acc[slot] ∘= d, then mark the slot's dirty card. Wait-free. The
 * caller checks slot < h->slot_count. */
static inline void atomik_mapped_accum(void *base, uint64_t slot, uint64_t d)
{
	const struct atomik_bank_header *h = (const struct atomik_bank_header *)base;
	uint64_t *acc = atomik_word_(base, h->acc_off, slot);
	uint64_t *card = atomik_word_(base, h->card_off, slot / ATOMIK_CARD_SLOTS);
	if (h->op == ATOMIK_OP_ADD)
		__atomic_fetch_add(acc, d, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_xor(acc, d, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(card, __ATOMIC_SEQ_CST) == 0)
		__atomic_store_n(card, 1, __ATOMIC_SEQ_CST);
}

/* READ through the mapping: reference ∘ accumulator ∘ unfolded shards, retried while a writer
 * holds the slot (odd sequence word) or ran in between. Spins: a writer holds a slot for a few
 * instructions (a killed userspace writer's lock is released by libatomik's waiters). */
static inline uint64_t atomik_mapped_read(const void *cbase, uint64_t slot)
{
	void *base = (void *)cbase;
	const struct atomik_bank_header *h = (const struct atomik_bank_header *)base;
	uint64_t *seq = atomik_word_(base, h->seq_off, slot);
	for (;;) {
		uint64_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		uint64_t v = __atomic_load_n(atomik_word_(base, h->ref_off, slot), __ATOMIC_RELAXED);
		v = atomik_combine_(h->op, v, __atomic_load_n(atomik_word_(base, h->acc_off, slot), __ATOMIC_ACQUIRE));
		for (uint32_t k = 0; k < h->shard_count; k++) {
			uint64_t sh = __atomic_load_n(atomik_word_(base, h->shard_off + k * h->shard_stride, slot), __ATOMIC_ACQUIRE);
			uint64_t b = __atomic_load_n(atomik_word_(base, h->base_off + k * h->shard_stride, slot), __ATOMIC_RELAXED);
			v = atomik_combine_(h->op, v, h->op == ATOMIK_OP_ADD ? sh - b : sh ^ b);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(seq, __ATOMIC_RELAXED) == s1)
			return v;
	}
}

#endif /* ATOMIK_H */
