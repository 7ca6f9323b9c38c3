// SPDX-License-Identifier: GPL-2.0
/*
 * Maps device memory (the FPGA's ACCUM window, see pci.rs and mmap.rs) into a process,
 * uncached. The Rust abstractions of 7.3 have no way to set a VMA's page protection or to
 * remap PFNs, and pgprot_noncached() is a macro, so this one function is C. Uncached, not
 * write-combined: a write-combining buffer merges two stores to the same word into one, which
 * would lose an ACCUM; uncached, each 64-bit store is one posted write.
 */
#include <linux/mm.h>
#include <linux/io.h>

/* Called from Rust only (mmap.rs), so no header declares it. */
int atomik_io_map(struct vm_area_struct *vma, phys_addr_t start, unsigned long len);

int atomik_io_map(struct vm_area_struct *vma, phys_addr_t start, unsigned long len)
{
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	/* Sets VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. */
	return io_remap_pfn_range(vma, vma->vm_start, start >> PAGE_SHIFT, len, vma->vm_page_prot);
}
