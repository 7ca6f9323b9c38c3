// SPDX-License-Identifier: GPL-2.0
/*
 * Maps device memory (the FPGA's ACCUM window, see pci.rs and mmap.rs) into processes,
 * uncached, and takes every such mapping down when the device goes away. The Rust
 * abstractions of 7.3 have no way to set a VMA's page protection, its operations or its
 * pgoff, and pgprot_noncached() is a macro, so this part is C. Uncached, not write-combined:
 * a write-combining buffer merges two stores to the same word into one, which would lose an
 * ACCUM; uncached, each 64-bit store is one posted write.
 *
 * Pages are inserted at fault time, under the window's lock, and only while the device is
 * there. On unbind, atomik_io_window_revoke() marks the window gone and zaps the window pages
 * of every address space a mapping was made in: a PTE inserted before is zapped, a fault after
 * gets SIGBUS, and a mapping linked into its file after the zap has no PTE either. A process
 * can then no longer write to a BAR address the PCI core may give to another device.
 *
 * Window mappings sit at pgoff ATOMIK_IO_PGOFF and up in their file's address space, above any
 * memory bank's pages (those are mapped from pgoff 0 and have no fault handler), so that the
 * zap touches window mappings only.
 */
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/slab.h>

/* 2^32 pages, 16 TiB: far above the largest memory bank. */
#define ATOMIK_IO_PGOFF (1UL << 32)
/* Distinct device nodes (inodes of /dev/atomik) whose files may map windows. */
#define ATOMIK_IO_HOSTS 16

struct atomik_io_window {
	struct kref ref;
	struct mutex lock; /* gone, hosts, nhosts */
	bool gone;
	unsigned long pfn; /* first page of BAR 0 */
	unsigned long pages; /* pages of BAR 0 */
	unsigned int nhosts;
	struct inode *hosts[ATOMIK_IO_HOSTS]; /* held (ihold) until revoked or released */
};

/* Called from Rust only (pci.rs, mmap.rs), so no header declares these. */
struct atomik_io_window *atomik_io_window_new(phys_addr_t bar, unsigned long len);
void atomik_io_window_revoke(struct atomik_io_window *w);
void atomik_io_window_put(struct atomik_io_window *w);
int atomik_io_map(struct vm_area_struct *vma, struct atomik_io_window *w, unsigned long first_page,
		  unsigned long len);

struct atomik_io_window *atomik_io_window_new(phys_addr_t bar, unsigned long len)
{
	struct atomik_io_window *w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);

	if (!w)
		return NULL;
	kref_init(&w->ref);
	mutex_init(&w->lock);
	w->pfn = bar >> PAGE_SHIFT;
	w->pages = len >> PAGE_SHIFT;
	return w;
}

static void atomik_io_window_release(struct kref *ref)
{
	struct atomik_io_window *w = container_of(ref, struct atomik_io_window, ref);
	unsigned int i;

	for (i = 0; i < w->nhosts; i++)
		iput(w->hosts[i]);
	mutex_destroy(&w->lock);
	kfree(w);
}

void atomik_io_window_put(struct atomik_io_window *w)
{
	kref_put(&w->ref, atomik_io_window_release);
}

void atomik_io_window_revoke(struct atomik_io_window *w)
{
	struct inode *hosts[ATOMIK_IO_HOSTS];
	unsigned int i, n;

	mutex_lock(&w->lock);
	w->gone = true;
	n = w->nhosts;
	memcpy(hosts, w->hosts, n * sizeof(hosts[0]));
	w->nhosts = 0;
	mutex_unlock(&w->lock);
	/* Faults see `gone` from here on; zap what was inserted before. */
	for (i = 0; i < n; i++) {
		unmap_mapping_range(hosts[i]->i_mapping, (loff_t)ATOMIK_IO_PGOFF << PAGE_SHIFT,
				    (loff_t)w->pages << PAGE_SHIFT, 1);
		iput(hosts[i]);
	}
}

static void atomik_io_open(struct vm_area_struct *vma)
{
	struct atomik_io_window *w = vma->vm_private_data;

	kref_get(&w->ref);
}

static void atomik_io_close(struct vm_area_struct *vma)
{
	atomik_io_window_put(vma->vm_private_data);
}

static vm_fault_t atomik_io_fault(struct vm_fault *vmf)
{
	struct atomik_io_window *w = vmf->vma->vm_private_data;
	unsigned long page = vmf->pgoff - ATOMIK_IO_PGOFF;
	vm_fault_t r;

	mutex_lock(&w->lock);
	if (w->gone || vmf->pgoff < ATOMIK_IO_PGOFF || page >= w->pages)
		r = VM_FAULT_SIGBUS;
	else
		r = vmf_insert_pfn(vmf->vma, vmf->address & PAGE_MASK, w->pfn + page);
	mutex_unlock(&w->lock);
	return r;
}

static const struct vm_operations_struct atomik_io_vm_ops = {
	.open = atomik_io_open,
	.close = atomik_io_close,
	.fault = atomik_io_fault,
};

/*
 * Sets up `vma` (being made by mmap) to map `len` bytes of BAR 0 from page `first_page`,
 * uncached, faulted in. -EINVAL outside BAR 0, -ENODEV once revoked, -ENOMEM when
 * ATOMIK_IO_HOSTS device nodes already hold mappings. Nothing is changed on error.
 */
int atomik_io_map(struct vm_area_struct *vma, struct atomik_io_window *w, unsigned long first_page,
		  unsigned long len)
{
	struct inode *host = vma->vm_file->f_mapping->host;
	unsigned long pages = len >> PAGE_SHIFT;
	unsigned int i;

	if (pages == 0 || first_page > w->pages || pages > w->pages - first_page)
		return -EINVAL;
	mutex_lock(&w->lock);
	if (w->gone) {
		mutex_unlock(&w->lock);
		return -ENODEV;
	}
	for (i = 0; i < w->nhosts && w->hosts[i] != host; i++)
		;
	if (i == w->nhosts) {
		if (w->nhosts == ATOMIK_IO_HOSTS) {
			mutex_unlock(&w->lock);
			return -ENOMEM;
		}
		ihold(host);
		w->hosts[w->nhosts++] = host;
	}
	kref_get(&w->ref);
	mutex_unlock(&w->lock);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_pgoff = ATOMIK_IO_PGOFF + first_page;
	vma->vm_private_data = w;
	vma->vm_ops = &atomik_io_vm_ops;
	return 0;
}
