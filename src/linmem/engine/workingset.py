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

XXX: no shadow-node shrinker (workingset_nodes stays 0) and one lruvec per
memcg on one node; the anon lists join the workingset size once there is swap.
"""

from __future__ import annotations

from linmem.engine.jit import njit
from linmem.mm.frames import PG_active, PG_workingset
from linmem.mm.vmstat import node_item

NR_ACTIVE_FILE = node_item("nr_active_file")
WORKINGSET_REFAULT_FILE = node_item("workingset_refault_file")
WORKINGSET_ACTIVATE_FILE = node_item("workingset_activate_file")
WORKINGSET_RESTORE_FILE = node_item("workingset_restore_file")


@njit
def workingset_age_nonresident(M, memcg, nr):
    """Models workingset_age_nonresident(): the lruvec's clock ticks."""
    M.nonresident[memcg] += nr


@njit
def workingset_eviction(M, page):
    """Models workingset_eviction(): the shadow entry for a page being
    reclaimed (the clock before this eviction, and PG_workingset); ticks."""
    memcg = M.memcg[page]
    eviction = M.nonresident[memcg]
    workingset_age_nonresident(M, memcg, 1)
    return ((eviction << 1) | (1 if M.flags[page] & PG_workingset else 0)) + 1


@njit
def workingset_refault(M, slot, page, memcg):
    """Models workingset_refault() for a new page at a slot that holds a
    shadow entry: counted, and activated when its refault distance fits in
    the workingset (workingset_test_recent). The shadow is consumed."""
    shadow = M.shadow[slot]
    if shadow == 0:
        return
    M.shadow[slot] = 0
    packed = shadow - 1
    eviction, workingset = packed >> 1, packed & 1
    M.node_stat[WORKINGSET_REFAULT_FILE] += 1
    distance = M.nonresident[memcg] - eviction
    if distance > M.node_stat[NR_ACTIVE_FILE]:
        return
    M.flags[page] |= PG_active
    workingset_age_nonresident(M, memcg, 1)
    M.node_stat[WORKINGSET_ACTIVATE_FILE] += 1
    if workingset:
        M.flags[page] |= PG_workingset
        M.node_stat[WORKINGSET_RESTORE_FILE] += 1
