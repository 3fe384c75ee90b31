"""Compiled kernels: the swap cache and swap readahead (mm/swap_state.c),
and swap I/O (mm/page_io.c).

The swap cache is the page cache of swap: a folio on its way out to swap
(or just read back) sits in it under its slot (``M.swap_cache[slot]`` =
pfn + 1), with PG_swapcache and ``M.swp[pfn]`` = slot + 1. It counts in
NR_FILE_PAGES and nr_swapcached (SwapCached), and holds one reference to the
folio and the slot's SWAP_HAS_CACHE. A fault that finds its page here is a
minor fault; a folio leaving it by reclaim leaves a shadow entry in the slot.

Swap-in reads ahead around the fault (swap_vma_readahead, the default): the
window is decided by __swapin_nr_pages from how many readahead pages were
hit since the last decision: hits + 2 rounded up to a power of two (at
least 4), at most 2^page-cluster, never less than half the previous window;
with no hits, 2 pages when the fault is next to the previous one, else 1.
The window starts at the fault when the faults go up, ends at it when they
go down, and is centred otherwise; it stays within the VMA and the PMD.
Every swap entry in it that is not cached is read (pswpin, swap_ra). A
fault that hits a readahead page counts swap_ra_hit and one more hit.
The state (last fault address, window, hits) is the VMA's
swap_readahead_info; here one per mm (XXX).

zram (SWP_SYNCHRONOUS_IO) skips all this when the slot has one user: the
page is read at once into a new folio that never enters the swap cache.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine import lru as L
from linmem.engine import page_writeback as PW
from linmem.engine import swapfile as SW
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.pgtable import (C_NEED_KIND, C_SWAP_PEND_END, C_SWAP_PEND_MM,
                                   C_SWAP_PEND_NEXT, C_SWAP_PEND_VA, KIND_USER, MM_SWAP_RA, NEED_PAGE,
                                   OK, PAGE_SHIFT, PMD_SHIFT, alloc_frame, table_index)
from linmem.engine.workingset import workingset_refault_anon
from linmem.mm.frames import (PG_dirty, PG_reclaim, PG_swapbacked, PG_swapcache, PG_uptodate,
                              PG_writeback)
from linmem.mm.vmstat import node_item, vm_event, zone_item

PG_readahead = PG_reclaim            # the same bit, as in the kernel
NR_FILE_PAGES = node_item("nr_file_pages")
NR_SWAPCACHE = node_item("nr_swapcached")
NR_WRITEBACK = node_item("nr_writeback")
NR_WRITTEN = node_item("nr_written")
NR_ZONE_WRITE_PENDING = zone_item("nr_zone_write_pending")
PSWPIN = vm_event("pswpin")
PSWPOUT = vm_event("pswpout")
PGPGIN = vm_event("pgpgin")
PGPGOUT = vm_event("pgpgout")
SWAP_RA = vm_event("swap_ra")
SWAP_RA_HIT = vm_event("swap_ra_hit")

SWAP_RA_WIN_SHIFT = PAGE_SHIFT // 2
SWAP_RA_HITS_MASK = (1 << SWAP_RA_WIN_SHIFT) - 1
SWAP_RA_WIN_MASK = ((1 << PAGE_SHIFT) - 1) & ~SWAP_RA_HITS_MASK
SWAP_RA_ORDER_CEILING = 5


# --------------------------------------------------------------------------
# the cache

@njit
def lookup_swap_cache(M, slot):
    """The folio cached for ``slot``, or -1 (swap_cache_get_folio)."""
    return np.int64(M.swap_cache[slot]) - 1


@njit
def add_to_swap_cache(M, page, slot, take_ref):
    """Models swap_cache_add_folio(): the folio enters the cache under
    ``slot`` (whose SWAP_HAS_CACHE the caller set); the cache takes a
    reference unless ``take_ref`` is False (a new folio whose first
    reference becomes the cache's)."""
    M.swap_cache[slot] = page + 1
    M.swp[page] = slot + 1
    M.flags[page] |= PG_swapcache | PG_swapbacked
    if take_ref:
        M.refcount[page] += 1
    M.node_stat[NR_FILE_PAGES] += 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, 1)
    M.node_stat[NR_SWAPCACHE] += 1
    MC.mod_memcg_page(M, page, MC.MS_SWAPCACHE, 1)


@njit
def folio_slot(M, page):
    return np.int64(M.swp[page]) - 1


@njit
def delete_from_swap_cache(M, page, shadow):
    """Models __swap_cache_del_folio() + put_swap_folio(): the folio leaves
    the cache (``shadow`` stays in the slot; 0 for none) and the slot loses
    SWAP_HAS_CACHE. The caller drops the cache's reference (folio_put)."""
    slot = folio_slot(M, page)
    M.swap_cache[slot] = 0
    M.swp[page] = 0
    M.flags[page] &= ~np.uint32(PG_swapcache)
    M.node_stat[NR_FILE_PAGES] -= 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, -1)
    M.node_stat[NR_SWAPCACHE] -= 1
    MC.mod_memcg_page(M, page, MC.MS_SWAPCACHE, -1)
    SW.put_swap_folio(M, slot)
    if M.swap_map[slot] != 0:
        M.swap_shadow[slot] = shadow      # only a slot still in use keeps a shadow


@njit
def folio_free_swap(M, page):
    """Models folio_free_swap(): a folio in the swap cache whose slot no
    page table refers to any more leaves the cache (no shadow); True when it
    did. The caller drops the reference."""
    if not (M.flags[page] & PG_swapcache):
        return False
    if SW.swap_count(M, folio_slot(M, page)) != 0:
        return False
    delete_from_swap_cache(M, page, 0)
    return True


# --------------------------------------------------------------------------
# I/O

@njit
def swap_read_folio(M, page, slot):
    """Models swap_read_folio(): the page is read from ``slot`` (pswpin,
    pgpgin); reads from zram are also counted apart (they are no disk I/O)."""
    M.events[PSWPIN] += 1
    MC.count_memcg_event(M, page, MC.MS_PSWPIN, 1)
    M.events[PGPGIN] += 4                          # KiB
    if M.si[SW.swap_area(M, slot), SW.SI_FLAGS] & SW.SWP_SYNCHRONOUS_IO:
        M.si[SW.G_ROW, SW.G_SYNC_IN] += 1
    M.flags[page] |= PG_uptodate


@njit
def swap_writeout(M, page):
    """Models swap_writeout() -> __swap_writepage() with
    folio_clear_dirty_for_io() and __folio_start_writeback(): the page goes
    under writeback to its slot (pswpout)."""
    M.flags[page] = (M.flags[page] & ~np.uint32(PG_dirty)) | PG_writeback
    M.node_stat[NR_WRITEBACK] += 1
    MC.mod_memcg_page(M, page, MC.MS_WRITEBACK, 1)
    M.zstat[B.zone_of(M, page), NR_ZONE_WRITE_PENDING] += 1
    M.events[PSWPOUT] += 1
    MC.count_memcg_event(M, page, MC.MS_PSWPOUT, 1)
    M.events[PGPGOUT] += 4


@njit
def swap_end_writeback(M, page):
    """Models folio_end_writeback() for a swap write: done; a folio that
    reclaim marked PG_reclaim goes to the inactive tail (pgrotated)."""
    M.flags[page] &= ~np.uint32(PG_writeback)
    M.node_stat[NR_WRITEBACK] -= 1
    MC.mod_memcg_page(M, page, MC.MS_WRITEBACK, -1)
    M.node_stat[NR_WRITTEN] += 1
    M.zstat[B.zone_of(M, page), NR_ZONE_WRITE_PENDING] -= 1
    if M.flags[page] & PG_reclaim:
        PW.rotate_reclaimable(M, page)


@njit
def swapin_new_folio(M, page, slot, memcg, into_cache):
    """A new folio for the swapped-out ``slot`` (__swap_cache_prepare_and_add,
    or for a synchronous device the folio alone): into the swap cache (its
    first reference becomes the cache's) or merely swap-backed; its refault
    counted (workingset_refault), onto the LRU, and read."""
    if into_cache:
        add_to_swap_cache(M, page, slot, False)
    else:
        M.flags[page] |= PG_swapbacked
    workingset_refault_anon(M, slot, page, memcg)
    L.lruvec_add_folio(M, page, 1, memcg)
    swap_read_folio(M, page, slot)


# --------------------------------------------------------------------------
# readahead

@njit
def swap_cache_alloc_folio(M, slot, memcg):
    """Models swap_cache_alloc_folio() for readahead: (folio, allocated). A
    folio already cached is returned as is; a free slot gives -1; a new folio
    (from the allocator's fast path: -1 with ctl[C_NEED_KIND] = -2 when that
    fails) enters the swap cache and the LRU (after workingset_refault) and
    is read."""
    page = lookup_swap_cache(M, slot)
    if page >= 0:
        return page, False
    if not SW.swapcache_prepare(M, slot):
        return np.int64(-1), False
    page = alloc_frame(M, KIND_USER)
    if page < 0:
        M.swap_map[slot] &= ~np.uint8(SW.SWAP_HAS_CACHE)
        M.ctl[C_NEED_KIND] = -2                      # tells swap_ra_read to get memory
        return np.int64(-1), False
    swapin_new_folio(M, page, slot, memcg, True)
    return page, True


@njit
def swapin_nr_pages(prev_offset, offset, hits, max_pages, prev_win):
    """Models __swapin_nr_pages(): the readahead window."""
    pages = hits + 2
    if pages == 2:
        if offset != prev_offset + 1 and offset != prev_offset - 1:
            pages = 1
    else:
        roundup = 4
        while roundup < pages:
            roundup <<= 1
        pages = roundup
    if pages > max_pages:
        pages = max_pages
    last_ra = prev_win // 2
    if pages < last_ra:
        pages = last_ra
    return pages


@njit
def _ra_val(M, mm):
    v = M.mm_stat[mm, MM_SWAP_RA]
    return v if v != 0 else np.int64(4)       # GET_SWAP_RA_VAL: start with 4 hits


@njit
def _set_ra_val(M, mm, addr, win, hits):
    M.mm_stat[mm, MM_SWAP_RA] = (addr & ~np.int64((1 << PAGE_SHIFT) - 1)) | \
        ((win << SWAP_RA_WIN_SHIFT) & SWAP_RA_WIN_MASK) | (hits & SWAP_RA_HITS_MASK)


@njit
def swap_update_readahead(M, page, mm, va):
    """Models swap_update_readahead(): a fault found ``page`` in the swap
    cache; a readahead page counts a hit."""
    readahead = (M.flags[page] & PG_readahead) != 0
    M.flags[page] &= ~np.uint32(PG_readahead)
    v = _ra_val(M, mm)
    win = (v & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT
    hits = v & SWAP_RA_HITS_MASK
    if readahead:
        hits = min(hits + 1, SWAP_RA_HITS_MASK)
        M.events[SWAP_RA_HIT] += 1
    _set_ra_val(M, mm, va, win, hits)


@njit
def swap_vma_ra_win(M, mm, va, vm_start, vm_end):
    """Models swap_vma_ra_win(): (window, start, end) of the readahead."""
    max_win = 1 << min(M.si[SW.G_ROW, SW.G_PAGE_CLUSTER], SWAP_RA_ORDER_CEILING)
    if max_win == 1:
        return 1, va, va
    v = _ra_val(M, mm)
    prev_faddr = v & ~np.int64((1 << PAGE_SHIFT) - 1)
    prev_win = (v & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT
    hits = v & SWAP_RA_HITS_MASK
    win = swapin_nr_pages(prev_faddr >> PAGE_SHIFT, va >> PAGE_SHIFT, hits, max_win, prev_win)
    _set_ra_val(M, mm, va, win, 0)
    if win == 1:
        return 1, va, va
    page_size = np.int64(1) << PAGE_SHIFT
    if va == prev_faddr + page_size:
        left = va
    elif prev_faddr == va + page_size:
        left = va - (win << PAGE_SHIFT) + page_size
    else:
        left = va - (((win - 1) // 2) << PAGE_SHIFT)
    right = left + (win << PAGE_SHIFT)
    if left < 0:
        left = 0
    pmd_mask = ~np.int64((1 << PMD_SHIFT) - 1)
    start = max(left, vm_start, va & pmd_mask)
    end = min(right, vm_end, (va & pmd_mask) + (1 << PMD_SHIFT))
    return win, start, end


@njit
def swap_ra_read(M, mm, pte_t, va, memcg):
    """Read the pending readahead window ``C_SWAP_PEND_NEXT..END`` around the
    fault at ``va``: every swap entry not cached is read into the swap cache
    with PG_readahead (swap_ra). NEED_PAGE (the rest left pending) when the
    allocator's fast path has no page: the slow path gets one and the fault
    resumes here."""
    addr = M.ctl[C_SWAP_PEND_NEXT]
    end = M.ctl[C_SWAP_PEND_END]
    while addr < end:
        if addr != va:
            e = M.pt[pte_t, table_index(addr, PAGE_SHIFT)]
            if SW.is_swap_pte(e):
                page, allocated = swap_cache_alloc_folio(M, SW.swp_slot(e), memcg)
                if allocated:
                    M.flags[page] |= PG_readahead
                    M.events[SWAP_RA] += 1
                elif page < 0 and M.ctl[C_NEED_KIND] == -2:
                    M.ctl[C_NEED_KIND] = KIND_USER
                    M.ctl[C_SWAP_PEND_NEXT] = addr
                    return NEED_PAGE
        addr += np.int64(1) << PAGE_SHIFT
    M.ctl[C_SWAP_PEND_VA] = -1
    return OK


@njit
def swap_vma_readahead(M, mm, pte_t, va, vm_start, vm_end, memcg):
    """Models swap_vma_readahead() for the pages around the faulting one
    (which the caller read): decide the window, then read it (swap_ra_read;
    resumable)."""
    win, start, end = swap_vma_ra_win(M, mm, va, vm_start, vm_end)
    if win == 1:
        return OK
    M.ctl[C_SWAP_PEND_MM] = mm
    M.ctl[C_SWAP_PEND_VA] = va
    M.ctl[C_SWAP_PEND_NEXT] = start
    M.ctl[C_SWAP_PEND_END] = end
    return swap_ra_read(M, mm, pte_t, va, memcg)
