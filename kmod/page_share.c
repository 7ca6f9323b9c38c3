// SPDX-License-Identifier: GPL-2.0
/*
 * How a user page is mapped, for REGION_COW (region_cow.rs): whether it is anonymous and
 * whether it is mapped only once. The kernel answers this with inline functions only (no
 * exported symbol, no Rust helper), and `struct page`/`struct folio` must be read with the
 * C compiler's layout, so this one function is C; the module calls it with a page it holds a
 * reference to (from get_user_pages_remote).
 */
#include <linux/mm.h>
#include <linux/page-flags.h>

#define ATOMIK_SHARE_ANON 1u
#define ATOMIK_SHARE_ONCE 2u

/*
 * Whether @page of @folio is mapped once: the test /proc/PID/pagemap makes for its
 * "exclusively mapped" bit (fs/proc/task_mmu.c, __folio_page_mapped_exclusively, with
 * folio_precise_page_mapcount from fs/proc/internal.h, which a module cannot include).
 */
static bool atomik_mapped_once(struct folio *folio, struct page *page)
{
#ifdef CONFIG_PAGE_MAPCOUNT
	int mapcount = atomic_read(&page->_mapcount) + 1;

	if (page_mapcount_is_type(mapcount))
		mapcount = 0;
	if (folio_test_large(folio))
		mapcount += folio_entire_mapcount(folio);
	return mapcount == 1;
#else
	return !folio_maybe_mapped_shared(folio);
#endif
}

/*
 * ATOMIK_SHARE_ANON when @page is an anonymous page (not a zero page), with ATOMIK_SHARE_ONCE
 * when it is mapped once; 0 for anything else. The caller holds a reference to @page.
 */
unsigned int atomik_page_share(struct page *page);
unsigned int atomik_page_share(struct page *page)
{
	struct folio *folio;

	if (is_zero_page(page))
		return 0;
	folio = page_folio(page);
	if (!folio_test_anon(folio))
		return 0;
	return ATOMIK_SHARE_ANON | (atomik_mapped_once(folio, page) ? ATOMIK_SHARE_ONCE : 0);
}
