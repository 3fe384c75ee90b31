"""Compiled kernels: scanning the file LRU lists (mm/vmscan.c
shrink_inactive_list, shrink_folio_list, folio_check_references,
shrink_active_list).

The inactive list is scanned from its tail (the oldest folios):

* a folio under writeback is activated and marked PG_reclaim, so that the
  end of its writeback rotates it to the inactive tail for a quick second
  look (folio_rotate_reclaimable);
* an unmapped folio is reclaimed if clean, whether referenced or not
  (FOLIOREF_RECLAIM_CLEAN: read(2) accesses were already counted by
  folio_mark_accessed); dirty, it is marked PG_reclaim and activated so that
  writeback cleans it (NR_VMSCAN_IMMEDIATE);
* a folio someone else holds a reference to is kept.

Reclaiming removes the folio from its file's page cache (__remove_mapping)
and frees it. The active list is scanned from its tail too: each folio goes
to the inactive list with PG_workingset set (deactivation).

XXX: there is no reverse mapping yet, so a mapped folio cannot be unmapped:
mapped folios are kept on the inactive list (rotated to its head) and stay
on the active one; anonymous memory is not scanned (there is no swap).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine.jit import njit
from linmem.engine.memory import folio_nr, folio_put
from linmem.engine.readahead import NR_FILE_PAGES
from linmem.engine.workingset import workingset_eviction
from linmem.mm.frames import (PG_active, PG_dirty, PG_reclaim, PG_referenced, PG_workingset,
                              PG_writeback)
from linmem.mm.vmstat import node_item

S_SCANNED, S_RECLAIMED, S_ACTIVATED, S_DEACTIVATED, S_IMMEDIATE, S_KEPT = 0, 1, 2, 3, 4, 5
NR_SCAN_STATS = 6

NR_VMSCAN_IMMEDIATE = node_item("nr_vmscan_immediate_reclaim")


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
def remove_mapping(M, page):
    """Models __remove_mapping() + free: the folio leaves its file's page
    cache, a shadow entry in its place (workingset_eviction), and is freed
    (the page cache held the last reference)."""
    fid = M.mapping[page]
    slot = M.f_base[fid] + M.index[page]
    M.pc[slot] = -1
    M.shadow[slot] = workingset_eviction(M, page)
    M.node_stat[NR_FILE_PAGES] -= 1
    folio_put(M, page)


@njit
def _reclaim_one(M, page, memcg, nr, stats):
    """shrink_folio_list() for one folio of the inactive file list."""
    flags = M.flags[page]
    if flags & PG_writeback:
        _move(M, page, memcg, PG_reclaim | PG_active, 0, False)
        stats[S_ACTIVATED] += nr
    elif M.mapcount[page] > 0:
        _move(M, page, memcg, PG_referenced, 0, False)              # XXX: no rmap
        stats[S_KEPT] += nr
    elif flags & PG_dirty:
        _move(M, page, memcg, PG_reclaim | PG_active, PG_referenced, False)
        M.node_stat[NR_VMSCAN_IMMEDIATE] += nr
        stats[S_IMMEDIATE] += nr
        stats[S_ACTIVATED] += nr
    elif M.refcount[page] != 1:
        _move(M, page, memcg, 0, 0, False)
        stats[S_KEPT] += nr
    else:
        remove_mapping(M, page)
        stats[S_RECLAIMED] += nr


@njit
def _deactivate_one(M, page, memcg, nr, stats):
    """shrink_active_list() for one folio: to the inactive list, PG_workingset
    set; a mapped folio stays (XXX: no rmap to test its PTEs)."""
    if M.mapcount[page] > 0:
        _move(M, page, memcg, 0, 0, False)
    else:
        _move(M, page, memcg, PG_workingset, PG_active | PG_referenced, False)
        stats[S_DEACTIVATED] += nr


@njit
def _scan(M, memcg, lru, nr_to_scan, stats):
    """Walk up to ``nr_to_scan`` pages from the list's tail; the pages scanned."""
    page = M.lru_tail[memcg, 0, lru]
    scanned = 0
    while page >= 0 and scanned < nr_to_scan:
        prev = M.prv[page]
        nr = folio_nr(M, page)
        scanned += nr
        if lru == L.LRU_INACTIVE_FILE:
            _reclaim_one(M, page, memcg, nr, stats)
        else:
            _deactivate_one(M, page, memcg, nr, stats)
        page = prev
    return scanned


@njit
def shrink_inactive_file(M, memcg, nr_to_scan, stats):
    """Models shrink_inactive_list() for the inactive file list: scan up to
    ``nr_to_scan`` pages from the tail; counts go to ``stats``."""
    scanned = _scan(M, memcg, L.LRU_INACTIVE_FILE, nr_to_scan, stats)
    stats[S_SCANNED] += scanned
    return scanned


@njit
def shrink_active_file(M, memcg, nr_to_scan, stats):
    """Models shrink_active_list() for the active file list (pgrefill): up to
    ``nr_to_scan`` pages from the tail are deactivated."""
    return _scan(M, memcg, L.LRU_ACTIVE_FILE, nr_to_scan, stats)
