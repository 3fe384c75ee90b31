"""Compiled kernels: the LRU lists of each lruvec (node x memcg).

Five lists per lruvec (include/linux/mmzone.h enum lru_list): inactive anon,
active anon, inactive file, active file, unevictable. A folio on a list has
PG_lru; its list follows from its flags (folio_lru_list): unevictable if
PG_unevictable, else active if PG_active, anon if PG_swapbacked. The lists link
through the frames' ``lru_next``/``lru_prev``, head = most recently added.
Sizes are kept in the node counters (nr_inactive_anon...) and, per zone, in
nr_zone_inactive_anon...: the pages of a large folio all count.

Reclaim scans these lists (linmem.engine.vmscan); here folios are added
and removed. Under the multi-gen LRU (machine.lru: mglru) evictable folios
go to the generation lists instead (linmem.engine.mm_inline).

XXX: Linux batches additions per CPU (a folio_batch of 31 folios drained on
overflow or by lru_add_drain); linmem adds at once, so the counters never lag.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine.jit import njit
from linmem.engine.memcontrol import MC_PARENT, MS_LRU_H, mod_lru_size
from linmem.engine.mm_inline import lru_gen_add_folio, lru_gen_del_folio
from linmem.mm.frames import PG_active, PG_lru, PG_swapbacked, PG_unevictable
from linmem.mm.vmstat import NR_ZONE_INACTIVE_ANON, node_item

LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_INACTIVE_FILE = 2
LRU_ACTIVE_FILE = 3
LRU_UNEVICTABLE = 4
NR_LRU_LISTS = 5
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")

NR_INACTIVE_ANON = node_item("nr_inactive_anon")    # the five node items are consecutive


@njit
def folio_lru_list(M, pfn):
    """Models folio_lru_list(): which list the folio's flags put it on."""
    flags = M.flags[pfn]
    if flags & PG_unevictable:
        return LRU_UNEVICTABLE
    lru = LRU_INACTIVE_FILE
    if flags & PG_swapbacked:
        lru = LRU_INACTIVE_ANON
    if flags & PG_active:
        lru += 1
    return lru


@njit
def _account(M, pfn, memcg, lru, nr):
    M.node_stat[NR_INACTIVE_ANON + lru] += nr
    z = B.zone_of(M, pfn)
    M.zstat[z, NR_ZONE_INACTIVE_ANON + lru] += nr
    mod_lru_size(M, memcg, lru, nr)


@njit
def _add(M, pfn, nr_pages, memcg, to_tail):
    memcg = np.int64(M.memcg[pfn])                  # folio_lruvec(): the folio's memcg
    if lru_gen_add_folio(M, pfn, nr_pages, memcg, to_tail):   # machine.lru: mglru
        M.flags[pfn] |= PG_lru
        return
    lru = folio_lru_list(M, pfn)
    B._list_add(M.lru_head, M.lru_tail, memcg, 0, lru, M.nxt, M.prv, pfn, to_tail)
    M.flags[pfn] |= PG_lru
    _account(M, pfn, memcg, lru, nr_pages)


@njit
def lruvec_add_folio(M, pfn, nr_pages, memcg):
    """Models lruvec_add_folio(): at the head of its list, PG_lru set."""
    _add(M, pfn, nr_pages, memcg, False)


@njit
def lruvec_add_folio_tail(M, pfn, nr_pages, memcg):
    """Models lruvec_add_folio_tail(): at the tail (next to be scanned)."""
    _add(M, pfn, nr_pages, memcg, True)


@njit
def lruvec_del_folio(M, pfn, nr_pages, memcg):
    """Models lruvec_del_folio(): off its list, PG_lru cleared."""
    memcg = np.int64(M.memcg[pfn])
    if lru_gen_del_folio(M, pfn, nr_pages, memcg, False):     # machine.lru: mglru
        M.flags[pfn] &= ~np.uint32(PG_lru)
        return
    lru = folio_lru_list(M, pfn)
    B._list_del(M.lru_head, M.lru_tail, memcg, 0, lru, M.nxt, M.prv, pfn)
    M.flags[pfn] &= ~np.uint32(PG_lru)
    _account(M, pfn, memcg, lru, -nr_pages)


# the lruvec's reclaim costs (lrucost[memcg, ...])
COST_ANON, COST_FILE, REFAULTS_ANON, REFAULTS_FILE = 0, 1, 2, 3
NR_LRUCOST = 4


@njit
def lru_note_cost(M, memcg, file, nr_io, nr_rotated):
    """Models lru_note_cost() (mm/swap.c): reclaim of one type cost
    ``nr_io`` pages of I/O (weighted x SWAP_CLUSTER_MAX) and ``nr_rotated``
    pages put back, on the lruvec and each ancestor's; each lruvec's costs
    halve once they pass a quarter of its LRU pages (a floating average)."""
    cost = nr_io * 32 + nr_rotated
    c = np.int64(memcg)
    while c >= 0:
        M.lrucost[c, COST_FILE if file else COST_ANON] += cost
        lrusize = 0
        for lru in range(LRU_UNEVICTABLE):
            lrusize += M.mstat[c, MS_LRU_H + lru]
        if M.lrucost[c, COST_FILE] + M.lrucost[c, COST_ANON] > lrusize // 4:
            M.lrucost[c, COST_FILE] //= 2
            M.lrucost[c, COST_ANON] //= 2
        c = M.mc[c, MC_PARENT]
