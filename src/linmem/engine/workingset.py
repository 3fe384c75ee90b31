"""Compiled kernels: workingset detection for the page cache (mm/workingset.c,
classic LRU).

Each lruvec keeps a clock, ``nonresident_age``, that ticks once per page
evicted and per page activated. A page reclaimed from a file's cache leaves
a shadow entry in its slot holding the clock at its eviction and whether it
was part of the workingset (PG_workingset). When the page is read back (a
refault), the refault distance is how far the clock moved meanwhile: the
pages that were evicted or activated since, which is how much more memory
the page would have needed to stay. If that distance is no more than the
active file list (plus the anon lists when there is swap), the page would
have survived with that memory: it comes back active (workingset_activate)
and ages the clock; a page that was in the workingset is also restored
(workingset_restore). Counters: workingset_refault/activate/restore_file.

Shadow entries live beside the page cache index (``M.shadow``, 0 for none);
truncation and drop_caches remove them with the pages; reclaim makes them.

Anonymous pages do the same through the swap cache: a page reclaimed from
it leaves its shadow in the swap slot (``M.swap_shadow``), and the swap-in
that reads it back is the refault (workingset_*_anon). Which lists count as
the workingset a refault competes with (workingset_test_recent): the active
file list, plus the inactive file list for anon refaults, plus the active
anon list (and the inactive anon list for file refaults) while there is free
swap. A restored page's refault is a cost of its type (lru_note_cost_refault).

Under the multi-gen LRU the shadow carries the generation and tier instead
(lru_gen_eviction/lru_gen_refault in linmem.engine.mm_inline).

Shadow entries cost memory (the xarray nodes that hold them), so a
shrinker bounds them: once the nodes holding only shadows exceed
present pages / 8 (a worst-case density of 1/8 of 64 slots: ~1.8% of
memory), each reclaim round frees half the excess, oldest first
(count_shadow_nodes, scan_shadow_nodes, shadow_lru_isolate:
workingset_nodes, workingset_nodereclaim). The nodes are counted from the
page cache when enough pages were evicted since the last count to matter
(linmem.mm.vmscan); workingset_nodes is the count then.

With memory cgroups each memcg's lruvec has its own clock; an eviction ticks
the clocks of the evicted folio's memcg and its ancestors, and the shadow
names that memcg (pack_shadow: clock, memcg id, PG_workingset), so that the
refault is measured on the clock and the lists of the memcg it was evicted
from, while the events count on the memcg of the folio that comes back.

XXX: one node; the eviction clock is not coarsened
into buckets; swap shadows (kept in the swap table in 6.18) are not shrunk.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.mm_inline import lru_gen_enabled, lru_gen_eviction, lru_gen_refault
from linmem.mm.frames import PG_active, PG_workingset
from linmem.mm.vmstat import node_item

NR_INACTIVE_ANON = node_item("nr_inactive_anon")
NR_ACTIVE_ANON = node_item("nr_active_anon")
NR_INACTIVE_FILE = node_item("nr_inactive_file")
NR_ACTIVE_FILE = node_item("nr_active_file")
WORKINGSET_REFAULT_ANON = node_item("workingset_refault_anon")
WORKINGSET_REFAULT_FILE = node_item("workingset_refault_file")
WORKINGSET_ACTIVATE_ANON = node_item("workingset_activate_anon")
WORKINGSET_ACTIVATE_FILE = node_item("workingset_activate_file")
WORKINGSET_RESTORE_ANON = node_item("workingset_restore_anon")
WORKINGSET_RESTORE_FILE = node_item("workingset_restore_file")
G_ROW, G_NR_FREE = 32, 0            # linmem.engine.swapfile: free swap slots


MEMCG_ID_SHIFT = 6                    # MAX_MEMCGS = 64 ids in a shadow


@njit
def workingset_age_nonresident(M, memcg, nr):
    """Models workingset_age_nonresident(): the clock of the lruvec and of
    every ancestor's ticks."""
    c = np.int64(memcg)
    while c >= 0:
        M.nonresident[c] += nr
        c = M.mc[c, MC.MC_PARENT]


@njit
def workingset_eviction(M, page):
    """Models workingset_eviction(): the shadow entry for a page being
    reclaimed (pack_shadow: its memcg's clock before this eviction, the memcg
    id and PG_workingset); the clocks tick."""
    if lru_gen_enabled(M):
        return lru_gen_eviction(M, page)
    memcg = np.int64(M.memcg[page])
    eviction = M.nonresident[memcg]
    workingset_age_nonresident(M, memcg, 1)
    packed = (eviction << MEMCG_ID_SHIFT) | memcg
    return ((packed << 1) | (1 if M.flags[page] & PG_workingset else 0)) + 1


@njit
def _nr_swap_free(M):
    return M.si[G_ROW, G_NR_FREE] if M.si.shape[0] > G_ROW else 0


@njit
def workingset_test_recent(M, memcg, eviction, file):
    """Models workingset_test_recent(): would the page have stayed had the
    workingset of the memcg it was evicted from had the memory its refault
    distance says it needed? (The lists of that memcg's subtree; anon lists
    count while that memcg may still swap.)"""
    distance = M.nonresident[memcg] - eviction
    size = M.mstat[memcg, MC.MS_LRU_H + L.LRU_ACTIVE_FILE]
    if not file:
        size += M.mstat[memcg, MC.MS_LRU_H + L.LRU_INACTIVE_FILE]
    if MC.nr_swap_pages(M, memcg, _nr_swap_free(M)) > 0:
        size += M.mstat[memcg, MC.MS_LRU_H + L.LRU_ACTIVE_ANON]
        if file:
            size += M.mstat[memcg, MC.MS_LRU_H + L.LRU_INACTIVE_ANON]
    return distance <= size


@njit
def _count(M, memcg, item, col, file):
    M.node_stat[item + file] += 1
    MC.count_workingset(M, memcg, col, file)


@njit
def _refault(M, shadow, page, memcg, file):
    """Models workingset_refault() for a page read back over ``shadow``."""
    if lru_gen_enabled(M):
        lru_gen_refault(M, shadow, page, memcg, file)
        return
    packed = (shadow - 1) >> 1
    workingset = (shadow - 1) & 1
    eviction = packed >> MEMCG_ID_SHIFT
    eviction_memcg = packed & ((1 << MEMCG_ID_SHIFT) - 1)
    memcg = np.int64(M.memcg[page])                     # folio_memcg(): counts go there
    _count(M, memcg, WORKINGSET_REFAULT_ANON, MC.MS_REFAULT, file)
    if not workingset_test_recent(M, eviction_memcg, eviction, file):
        return
    M.flags[page] |= PG_active
    workingset_age_nonresident(M, memcg, 1)
    _count(M, memcg, WORKINGSET_ACTIVATE_ANON, MC.MS_ACTIVATE, file)
    if workingset:
        M.flags[page] |= PG_workingset
        L.lru_note_cost(M, memcg, file, 1, 0)           # lru_note_cost_refault
        _count(M, memcg, WORKINGSET_RESTORE_ANON, MC.MS_RESTORE, file)


@njit
def workingset_refault(M, slot, page, memcg):
    """A new page-cache page at a slot that holds a shadow entry: the
    refault is counted, and the page activated when its refault distance
    fits in the workingset. The shadow is consumed."""
    shadow = M.shadow[slot]
    if shadow == 0:
        return
    M.shadow[slot] = 0
    _refault(M, shadow, page, memcg, 1)


@njit
def workingset_refault_anon(M, swap_slot, page, memcg):
    """The same for a page read back from swap, over the swap slot's shadow."""
    shadow = M.swap_shadow[swap_slot]
    if shadow == 0:
        return
    M.swap_shadow[swap_slot] = 0
    _refault(M, shadow, page, memcg, 0)


# --------------------------------------------------------------------------
# the shadow-node shrinker

XA_CHUNK_SHIFT = 6
XA_CHUNK_SIZE = 1 << XA_CHUNK_SHIFT
WORKINGSET_NODES = node_item("workingset_nodes")
WORKINGSET_NODERECLAIM = node_item("workingset_nodereclaim")


@njit
def shadow_nodes(M, fids, chunks, stamps):
    """The page-cache xarray nodes (64 slots of a file) that hold shadow
    entries and no page, as workingset_update_node() would have listed them:
    their file and chunk in ``fids``/``chunks``, and the clock of their
    newest shadow in ``stamps`` (arrays at least as long as the count).
    Returns how many."""
    n = 0
    for fid in range(M.f_base.shape[0]):
        base = M.f_base[fid]
        for c in range((M.f_npages[fid] + XA_CHUNK_SIZE - 1) >> XA_CHUNK_SHIFT):
            lo = base + (c << XA_CHUNK_SHIFT)
            hi = min(lo + XA_CHUNK_SIZE, base + M.f_npages[fid])
            newest = np.int64(-1)
            only_shadows = True
            for slot in range(lo, hi):
                if M.pc[slot] != -1:
                    only_shadows = False
                    break
                if M.shadow[slot] != 0:
                    newest = max(newest, (M.shadow[slot] - 1) >> (1 + MEMCG_ID_SHIFT))
            if only_shadows and newest >= 0:
                if n < fids.shape[0]:
                    fids[n], chunks[n], stamps[n] = fid, c, newest
                n += 1
    return n


@njit
def free_shadow_nodes(M, fids, chunks, order, nr):
    """Models shadow_lru_isolate() for the ``nr`` nodes first in ``order``:
    their shadow entries go (workingset_nodereclaim)."""
    for k in range(nr):
        i = order[k]
        fid = fids[i]
        lo = M.f_base[fid] + (chunks[i] << XA_CHUNK_SHIFT)
        hi = min(lo + XA_CHUNK_SIZE, M.f_base[fid] + M.f_npages[fid])
        for slot in range(lo, hi):
            M.shadow[slot] = 0
        M.node_stat[WORKINGSET_NODERECLAIM] += 1
        M.node_stat[WORKINGSET_NODES] -= 1
