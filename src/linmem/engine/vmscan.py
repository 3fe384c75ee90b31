"""Compiled kernels: scanning the LRU lists (mm/vmscan.c shrink_inactive_list,
shrink_folio_list, folio_check_references, shrink_active_list).

The inactive lists are scanned from their tails (the oldest folios). For each
folio (shrink_folio_list):

* under writeback: marked PG_reclaim and activated, so that the end of its
  writeback rotates it to the inactive tail for a quick second look;
* folio_check_references asks the reverse map (linmem.engine.rmap) how many
  page-table entries used it since the last look, clearing their young bits:
  a VM_LOCKED mapping mlocks it (to the unevictable list); used through two
  entries, or used once and already PG_referenced, or an executable file
  mapping used once: activated; used once: PG_referenced set and kept on the
  inactive list; not used (a referenced unmapped file folio included): on;
* an anonymous folio not yet in the swap cache gets a swap slot and enters
  it, dirty (add_to_swap); with no free slot it is activated. A huge folio
  is split first (linmem.engine.huge_memory);
* a mapped folio is unmapped from every page table (try_to_unmap): an
  anonymous PTE becomes a swap entry, a file or shmem PTE is cleared;
* a dirty file folio is marked PG_reclaim and activated for the flusher to
  write (nr_vmscan_immediate_reclaim); a dirty shmem folio moves from its
  file's page cache to the swap cache (pageout -> shmem_writeout,
  linmem.engine.shmem; no swap slot: activated); a dirty swap-cache folio
  is written (swap_writeout, pswpout). On a synchronous device (zram) the
  write is done at once and the folio is freed now; otherwise it stays under
  writeback, and its end rotates it to the inactive tail;
* a clean folio nobody else holds is freed: out of its file's page cache or
  the swap cache, leaving a shadow entry (workingset_eviction); a clean
  shmem folio (a hole a read fault filled) leaves its file with no shadow.

Each batch notes its cost (lru_note_cost): the pages written x 32 plus the
pages scanned but not reclaimed. The active lists are scanned from their
tails too (shrink_active_list): a referenced folio of an executable file
mapping goes round the active list again (a rotation, also a cost); every
other folio moves to the inactive list with PG_workingset (deactivation).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine import shmem as SH
from linmem.engine import swap_state as SS
from linmem.engine import swapfile as SW
from linmem.engine.huge_memory import split_folio_for_reclaim
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.memory import _mlock_folio, folio_nr, folio_put
from linmem.engine.filemap import NR_SHMEM
from linmem.engine.readahead import NR_FILE_PAGES
from linmem.engine.rmap import (UNMAP_LOCKED, UNMAP_OK, VM_LOCKED, folio_referenced,
                                try_to_unmap)
from linmem.engine.workingset import workingset_eviction
from linmem.mm.frames import (PG_active, PG_anon, PG_dirty, PG_mlocked, PG_reclaim,
                              PG_referenced, PG_swapbacked, PG_swapcache, PG_unevictable,
                              PG_workingset, PG_writeback)
from linmem.mm.vmstat import node_item

S_SCANNED, S_RECLAIMED, S_ACTIVATED, S_DEACTIVATED, S_IMMEDIATE, S_KEPT = 0, 1, 2, 3, 4, 5
S_SCANNED_ANON, S_RECLAIMED_ANON, S_PAGEOUT, S_REFILL, S_ROTATED = 6, 7, 8, 9, 10
NR_SCAN_STATS = 11

FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE = 0, 1, 2, 3

VM_EXEC = 0x4
NR_VMSCAN_IMMEDIATE = node_item("nr_vmscan_immediate_reclaim")
NR_VMSCAN_WRITE = node_item("nr_vmscan_write")


@njit
def _move(M, page, memcg, flags_set, flags_clear, to_tail):
    """Take a folio off its list and put it on the one its new flags name."""
    nr = folio_nr(M, page)
    L.lruvec_del_folio(M, page, nr, memcg)
    M.flags[page] = (M.flags[page] | flags_set) & ~np.uint32(flags_clear)
    if to_tail:
        L.lruvec_add_folio_tail(M, page, nr, memcg)
    else:
        L.lruvec_add_folio(M, page, nr, memcg)


@njit
def _mlock_found(M, page, memcg):
    """mlock_vma_folio() from the reverse map: to the unevictable list."""
    nr = folio_nr(M, page)
    if M.flags[page] & PG_mlocked:
        return
    L.lruvec_del_folio(M, page, nr, memcg)
    _mlock_folio(M, page, nr)
    L.lruvec_add_folio(M, page, nr, memcg)


@njit
def folio_check_references(M, R, page):
    """Models folio_check_references(): what the young bits and
    PG_referenced say about a folio on the inactive list."""
    referenced_ptes, vm_flags = folio_referenced(M, R, page)
    referenced_folio = (M.flags[page] & PG_referenced) != 0
    M.flags[page] &= ~np.uint32(PG_referenced)
    file = not (M.flags[page] & PG_swapbacked)
    if vm_flags & VM_LOCKED:
        _mlock_found(M, page, M.memcg[page])
        return FOLIOREF_ACTIVATE
    if referenced_ptes:
        M.flags[page] |= PG_referenced
        if referenced_folio or referenced_ptes > 1:
            return FOLIOREF_ACTIVATE
        if (vm_flags & VM_EXEC) and file:
            return FOLIOREF_ACTIVATE
        return FOLIOREF_KEEP
    if referenced_folio and file:
        return FOLIOREF_RECLAIM_CLEAN
    return FOLIOREF_RECLAIM


@njit
def remove_mapping(M, page):
    """Models __remove_mapping() + free for a file folio: it leaves its
    file's page cache, a shadow entry in its place (workingset_eviction),
    and is freed (the page cache held the last reference)."""
    fid = M.mapping[page]
    slot = M.f_base[fid] + M.index[page]
    M.pc[slot] = -1
    if M.flags[page] & PG_swapbacked:                # shmem: not on a file LRU, no shadow
        M.shadow[slot] = 0
        M.node_stat[NR_SHMEM] -= 1
        MC.mod_memcg_page(M, page, MC.MS_SHMEM, -1)
    else:
        M.shadow[slot] = workingset_eviction(M, page)
    M.node_stat[NR_FILE_PAGES] -= 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, -1)
    folio_put(M, page)


@njit
def _activate(M, page, memcg, nr, stats):
    """activate_locked: a swap copy goes when swap is short or the folio is
    mlocked; an evictable folio goes to the active list (pgactivate)."""
    if (M.flags[page] & PG_swapcache) and (SW.vm_swap_full(M) or (M.flags[page] & PG_mlocked)):
        if SS.folio_free_swap(M, page):
            M.refcount[page] -= 1
    if M.flags[page] & PG_mlocked:
        _move(M, page, memcg, 0, 0, False)
        return
    _move(M, page, memcg, PG_active, 0, False)
    stats[S_ACTIVATED] += nr


@njit
def _keep(M, page, memcg, nr, stats):
    _move(M, page, memcg, 0, 0, False)
    stats[S_KEPT] += nr


@njit
def _reclaim_one(M, R, page, memcg, nr, stats, wb):
    """shrink_folio_list() for one folio of an inactive list; the pages
    freed (0, or the folio's)."""
    flags = M.flags[page]
    if flags & PG_unevictable:
        _move(M, page, memcg, 0, 0, False)              # culled to its list
        return 0
    if flags & PG_writeback:
        _move(M, page, memcg, PG_reclaim | PG_active, 0, False)
        stats[S_ACTIVATED] += nr
        return 0
    return reclaim_referenced(M, R, page, memcg, nr, stats, wb,
                              folio_check_references(M, R, page))


@njit
def reclaim_referenced(M, R, page, memcg, nr, stats, wb, ref):
    """shrink_folio_list() for one folio once folio_check_references has
    said ``ref`` (the multi-gen LRU decides it its own way); the pages
    freed (0, or the folio's)."""
    file = not (M.flags[page] & PG_swapbacked)
    if ref == FOLIOREF_ACTIVATE:
        _activate(M, page, memcg, nr, stats)
        return 0
    if ref == FOLIOREF_KEEP:
        _keep(M, page, memcg, nr, stats)
        return 0
    if (M.flags[page] & PG_anon) and not (M.flags[page] & PG_swapcache):
        if nr > 1:                                      # a THP: split, swap its pages
            if SW.nr_swap_free(M) <= 0 or not split_folio_for_reclaim(M, R, page, memcg):
                _keep(M, page, memcg, nr, stats)
                return 0
            nr = 1
        slot = SW.folio_alloc_swap(M, page)                      # add_to_swap
        if slot < 0:
            _activate(M, page, memcg, nr, stats)
            return 0
        SS.add_to_swap_cache(M, page, slot, True)
        M.flags[page] |= PG_dirty
    if M.mapcount[page] > 0:
        slot = SS.folio_slot(M, page) if M.flags[page] & PG_swapcache else -1
        unmapped = try_to_unmap(M, R, page, slot)
        if unmapped == UNMAP_LOCKED:
            _mlock_found(M, page, memcg)
            return 0
        if unmapped != UNMAP_OK:
            _activate(M, page, memcg, nr, stats)
            return 0
    if M.flags[page] & PG_dirty:
        if file:
            _move(M, page, memcg, PG_reclaim | PG_active, PG_referenced, False)
            M.node_stat[NR_VMSCAN_IMMEDIATE] += nr
            stats[S_IMMEDIATE] += nr
            stats[S_ACTIVATED] += nr
            return 0
        if not (M.flags[page] & PG_swapcache) and not SH.shmem_writeout(M, page):
            _activate(M, page, memcg, nr, stats)        # shmem redirtied: AOP_WRITEPAGE_ACTIVATE
            return 0
        M.flags[page] |= PG_reclaim                     # pageout
        SS.swap_writeout(M, page)
        M.node_stat[NR_VMSCAN_WRITE] += nr
        stats[S_PAGEOUT] += nr
        a = SW.swap_area(M, SS.folio_slot(M, page))
        if M.si[a, SW.SI_FLAGS] & SW.SWP_SYNCHRONOUS_IO:
            M.flags[page] &= ~np.uint32(PG_reclaim)     # written by the time it returns
            SS.swap_end_writeback(M, page)
        else:
            _keep(M, page, memcg, nr, stats)
            n = wb[0]
            if n + 1 < wb.shape[0]:
                wb[n + 1] = page
                wb[0] = n + 1
            else:
                SS.swap_end_writeback(M, page)
            return 0
    if M.refcount[page] != 1:
        _keep(M, page, memcg, nr, stats)
        return 0
    if M.flags[page] & PG_swapcache:
        SS.delete_from_swap_cache(M, page, workingset_eviction(M, page))
        folio_put(M, page)
    else:
        remove_mapping(M, page)
    if not file:
        stats[S_RECLAIMED_ANON] += nr
    stats[S_RECLAIMED] += nr
    return nr


@njit
def _deactivate_one(M, R, page, memcg, nr, stats):
    """shrink_active_list() for one folio."""
    if M.flags[page] & PG_unevictable:
        _move(M, page, memcg, 0, 0, False)
        return
    referenced, vm_flags = folio_referenced(M, R, page)
    if referenced and (vm_flags & VM_EXEC) and not (M.flags[page] & PG_swapbacked):
        _move(M, page, memcg, 0, 0, False)
        stats[S_ROTATED] += nr
        return
    _move(M, page, memcg, PG_workingset, PG_active, False)
    stats[S_DEACTIVATED] += nr


@njit
def shrink_inactive_list(M, R, memcg, lru, nr_to_scan, stats, wb):
    """Models shrink_inactive_list(): scan up to ``nr_to_scan`` pages from
    the tail of an inactive list; counts go to ``stats``, pages left under
    swap writeback to ``wb`` (wb[0] is their number). Returns the pages
    scanned."""
    file = lru == L.LRU_INACTIVE_FILE
    page = M.lru_tail[memcg, 0, lru]
    scanned = 0
    reclaimed = 0
    pageout = stats[S_PAGEOUT]
    while page >= 0 and scanned < nr_to_scan:
        prev = M.prv[page]
        nr = folio_nr(M, page)
        scanned += nr
        reclaimed += _reclaim_one(M, R, page, memcg, nr, stats, wb)
        page = prev
    stats[S_SCANNED] += scanned
    if not file:
        stats[S_SCANNED_ANON] += scanned
    L.lru_note_cost(M, memcg, file, stats[S_PAGEOUT] - pageout, scanned - reclaimed)
    return scanned


@njit
def shrink_active_list(M, R, memcg, lru, nr_to_scan, stats):
    """Models shrink_active_list(): up to ``nr_to_scan`` pages from the tail
    of an active list are deactivated, or rotated (pgrefill counts them)."""
    file = lru == L.LRU_ACTIVE_FILE
    page = M.lru_tail[memcg, 0, lru]
    scanned = 0
    rotated = stats[S_ROTATED]
    while page >= 0 and scanned < nr_to_scan:
        prev = M.prv[page]
        nr = folio_nr(M, page)
        scanned += nr
        _deactivate_one(M, R, page, memcg, nr, stats)
        page = prev
    stats[S_REFILL] += scanned
    if stats[S_ROTATED] > rotated:
        L.lru_note_cost(M, memcg, file, 0, stats[S_ROTATED] - rotated)
    return scanned


@njit
def end_swap_writeback(M, wb):
    """The swap writes of a reclaim pass complete (the pages in ``wb``)."""
    for k in range(1, wb[0] + 1):
        page = wb[k]
        if M.flags[page] & PG_writeback:
            SS.swap_end_writeback(M, page)
    wb[0] = 0


@njit
def shrink_lruvec_lists(M, R, memcg, nr, nr_to_reclaim, proportional, may_deactivate, stats, wb):
    """The loop of shrink_lruvec(): scan ``nr`` (pages per evictable list,
    from get_scan_count) in batches of SWAP_CLUSTER_MAX, list by list (an
    active list only where ``may_deactivate`` allows: bit 1 anon, bit 2
    file). Unless ``proportional``, once ``nr_to_reclaim`` pages are freed
    the smaller type stops and the larger is cut to the same fraction of
    its target, then finished."""
    targets = nr.copy()
    start = stats[S_RECLAIMED]
    ia, aa, if_, af = L.LRU_INACTIVE_ANON, L.LRU_ACTIVE_ANON, L.LRU_INACTIVE_FILE, \
        L.LRU_ACTIVE_FILE
    while nr[ia] or nr[af] or nr[if_]:
        for lru in range(4):
            if nr[lru]:
                batch = min(nr[lru], 32)
                nr[lru] -= batch
                if lru == aa or lru == af:
                    if may_deactivate & (1 << (1 if lru == af else 0)):
                        shrink_active_list(M, R, memcg, lru, batch, stats)
                else:
                    shrink_inactive_list(M, R, memcg, lru, batch, stats, wb)
        if stats[S_RECLAIMED] - start < nr_to_reclaim or proportional:
            continue
        nr_file = nr[if_] + nr[af]
        nr_anon = nr[ia] + nr[aa]
        if nr_file == 0 or nr_anon == 0:
            break
        if nr_file > nr_anon:
            stop, other = ia, if_
            percentage = nr_anon * 100 // (targets[ia] + targets[aa] + 1)
        else:
            stop, other = if_, ia
            percentage = nr_file * 100 // (targets[if_] + targets[af] + 1)
        nr[stop] = 0
        nr[stop + 1] = 0
        for lru in (other, other + 1):
            scanned = targets[lru] - nr[lru]
            nr[lru] = targets[lru] * (100 - percentage) // 100
            nr[lru] -= min(nr[lru], scanned)
