"""Compiled kernels: memory cgroup charging (mm/memcontrol.c, mm/page_counter.c).

Every page a task brings into memory is charged to its memory cgroup (memcg):
anonymous and page-cache folios when they are allocated for it, page-table
pages (__GFP_ACCOUNT), kernel stacks. The charge stays with that memcg until
the page is freed, whatever happens to the task. Each memcg has a page
counter (``mc[memcg, MC_USAGE]``) that counts its own pages and those of its
descendants: a charge walks from the memcg up to the root
(page_counter_try_charge) and fails at the first ancestor whose usage would
pass its ``memory.max``; that ancestor is where reclaim, and then the OOM
killer, must make room (``linmem.mm.memcontrol`` runs that slow path).

Swap entries are charged the same way to a second counter, ``MC_SWAP``
(``memory.swap.current``, limited by ``memory.swap.max``), when a folio is
given a swap slot (__mem_cgroup_try_charge_swap); ``swap_cgroup[slot]``
remembers whom, and the charge goes when the slot is freed.

A charged frame has ``PG_memcg`` (folio->memcg_data set) and its memcg id in
``memcg[pfn]``. Per memcg, ``mstat`` keeps what reclaim needs of its lruvec:
the LRU list sizes of its own pages (lru_zone_size) and, walking up, of its
subtree (the lruvec statistics), the workingset events and the pages charged
and uncharged (pgpgin, pgpgout).

XXX: charges are not batched through a per-CPU stock (MEMCG_CHARGE_BATCH);
memory.current is exact at every moment, where the kernel's runs up to 64
pages per CPU ahead. The root memcg is charged like the others (the kernel
skips its counter); nothing reads its limit.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit
from linmem.mm.frames import PG_memcg

MAX_MEMCGS = 64
C_MEMCG = 17                  # the ctl slot of the current task's memcg (pgtable.C_MEMCG)
MEMCG_CHARGE_BATCH = 64
PAGE_COUNTER_MAX = np.int64((2**63 - 1) // 4096)    # LONG_MAX / PAGE_SIZE

# mc[memcg, ...]: the page counters and settings of each memcg (pages)
MC_PARENT = 0          # parent id, -1 for the root (and for unused ids)
MC_USAGE = 1           # memory.current (hierarchical, like the page counter)
MC_MAX = 2             # memory.max
MC_HIGH = 3            # memory.high
MC_LOW = 4             # memory.low
MC_MIN = 5             # memory.min
MC_PEAK = 6            # memory.peak (page_counter watermark)
MC_FAILCNT = 7         # v1 memory.failcnt
MC_SWAP = 8            # memory.swap.current
MC_SWAP_MAX = 9        # memory.swap.max
MC_SWAP_PEAK = 10      # memory.swap.peak
MC_ONLINE = 11         # 1 while the cgroup exists
MC_OVER = 12           # the counter that refused the last charge (a memcg id), -1 none
MC_SWAP_EVENTS_MAX = 13    # memory.swap.events max (the limit was hit)
MC_SWAP_EVENTS_FAIL = 14   # memory.swap.events fail (a swap-out was refused)
NR_MC = 15

# mstat[memcg, ...]
MS_LRU = 0             # 5 columns: the memcg's own LRU list sizes (lru_zone_size)
MS_LRU_H = 5           # 5 columns: its subtree's (the lruvec statistics)
MS_REFAULT = 10        # workingset_refault_{anon,file}   (own events)
MS_ACTIVATE = 12       # workingset_activate_{anon,file}
MS_RESTORE = 14        # workingset_restore_{anon,file}
MS_PGPGIN = 16         # pages charged
MS_PGPGOUT = 17        # pages uncharged
MS_PAGETABLES = 18     # page-table pages charged
MS_ACTIVATE_H = 19     # 2 columns: workingset_activate over the subtree (the
                       #   lruvec statistic prepare_scan_control compares)
MS_KSTACK = 21         # kernel-stack pages charged (kept by linmem.kernel.task)
# the memcg's own share of node counters (__mod_lruvec_page_state)
MS_ANON_MAPPED = 22    # NR_ANON_MAPPED
MS_FILE_PAGES = 23     # NR_FILE_PAGES (page cache, shmem, swap cache)
MS_SHMEM = 24          # NR_SHMEM
MS_FILE_MAPPED = 25    # NR_FILE_MAPPED
MS_FILE_DIRTY = 26     # NR_FILE_DIRTY
MS_WRITEBACK = 27      # NR_WRITEBACK
MS_SWAPCACHE = 28      # NR_SWAPCACHE
MS_ANON_THPS = 29      # NR_ANON_THPS
MS_PGFAULT = 30        # the memcg's pgfault and pgmajfault events
MS_PGMAJFAULT = 31
MS_PSWPIN = 32         # its pswpin, pswpout, thp_fault_alloc and the activations
MS_PSWPOUT = 33        #   of folio_mark_accessed (count_memcg_folio_events)
MS_THP_FAULT_ALLOC = 34
MS_PGACTIVATE = 35
NR_MS = 36


def new_mc() -> np.ndarray:
    """The page counters of MAX_MEMCGS memcgs, none online but the root."""
    mc = np.zeros((MAX_MEMCGS, NR_MC), dtype=np.int64)
    mc[:, MC_PARENT] = -1
    for col in (MC_MAX, MC_HIGH, MC_SWAP_MAX):
        mc[:, col] = PAGE_COUNTER_MAX
    mc[:, MC_OVER] = -1
    mc[0, MC_ONLINE] = 1
    return mc


@njit
def _walk_charge(M, memcg, col, nr):
    c = memcg
    while c >= 0:
        M.mc[c, col] += nr
        c = M.mc[c, MC_PARENT]


@njit
def _refusing(M, memcg, nr):
    """The first counter from ``memcg`` up that ``nr`` more pages would take
    past its max, or -1."""
    c = np.int64(memcg)
    while c >= 0:
        if M.mc[c, MC_USAGE] + nr > M.mc[c, MC_MAX]:
            return c
        c = M.mc[c, MC_PARENT]
    return np.int64(-1)


@njit
def page_counter_try_charge(M, memcg, nr):
    """Models try_charge_memcg()'s fast path: page_counter_try_charge() of a
    MEMCG_CHARGE_BATCH, then of the folio alone; each refusal counts in the
    refusing counter's failcnt (v1's memory.failcnt). On failure nothing is
    charged and the refusing memcg's id is left in MC_OVER.
    XXX: the batch's surplus is not kept in a per-CPU stock: only the pages
    asked for are charged."""
    batch = max(nr, MEMCG_CHARGE_BATCH)
    c = _refusing(M, memcg, batch)
    if c >= 0:
        M.mc[c, MC_FAILCNT] += 1
        c = _refusing(M, memcg, nr)
        if c >= 0:
            M.mc[c, MC_FAILCNT] += 1
            M.mc[memcg, MC_OVER] = c
            return False
    page_counter_charge(M, memcg, nr)
    return True


@njit
def page_counter_charge(M, memcg, nr):
    """Models page_counter_charge(): charge unconditionally (a forced
    charge may pass the limit), keeping each counter's watermark."""
    c = memcg
    while c >= 0:
        usage = M.mc[c, MC_USAGE] + nr
        M.mc[c, MC_USAGE] = usage
        if usage > M.mc[c, MC_PEAK]:
            M.mc[c, MC_PEAK] = usage
        c = M.mc[c, MC_PARENT]
    M.mc[memcg, MC_OVER] = -1
    M.mstat[memcg, MS_PGPGIN] += nr


@njit
def commit_charge(M, pfn, memcg):
    """Models commit_charge(): the folio belongs to ``memcg`` now."""
    M.memcg[pfn] = memcg
    M.flags[pfn] |= PG_memcg


@njit
def charge_folio(M, pfn, memcg, nr, kernel):
    """Models mem_cgroup_charge() (``kernel``: the kmem charge of a page-table page):
    False when a counter refused, the folio then uncharged."""
    if not page_counter_try_charge(M, memcg, nr):
        return False
    commit_charge(M, pfn, memcg)
    if kernel:
        M.mstat[memcg, MS_PAGETABLES] += nr
    return True


@njit
def uncharge_folio(M, pfn, nr):
    """Models __mem_cgroup_uncharge() when a charged folio is freed."""
    if not (M.flags[pfn] & PG_memcg):
        return
    memcg = np.int64(M.memcg[pfn])
    _walk_charge(M, memcg, MC_USAGE, -nr)
    M.mstat[memcg, MS_PGPGOUT] += nr
    M.flags[pfn] &= ~np.uint32(PG_memcg)


@njit
def mod_memcg_page(M, pfn, col, nr):
    """The memcg side of __mod_lruvec_page_state(): a node counter of the
    folio at ``pfn`` (its head) changed by ``nr``; its memcg's share too."""
    if M.flags[pfn] & PG_memcg:
        M.mstat[M.memcg[pfn], col] += nr


@njit
def count_memcg_event(M, pfn, col, nr):
    """count_memcg_folio_events(): an event of the folio at ``pfn``, on its memcg."""
    if M.flags[pfn] & PG_memcg:
        M.mstat[M.memcg[pfn], col] += nr


@njit
def count_fault(M, major):
    """count_memcg_event_mm(PGFAULT, and PGMAJFAULT): a fault of the current
    task counts in its memcg."""
    memcg = M.ctl[C_MEMCG]
    M.mstat[memcg, MS_PGFAULT] += 1
    if major:
        M.mstat[memcg, MS_PGMAJFAULT] += 1


@njit
def above_high(M, memcg):
    """The high check of try_charge_memcg(): is the memcg or an ancestor
    above its memory.high?"""
    c = np.int64(memcg)
    while c > 0:
        if M.mc[c, MC_USAGE] > M.mc[c, MC_HIGH]:
            return True
        c = M.mc[c, MC_PARENT]
    return False


@njit
def mod_lru_size(M, memcg, lru, nr):
    """The memcg's own list size (mem_cgroup_update_lru_size) and its
    subtree's lruvec statistic, walking up."""
    M.mstat[memcg, MS_LRU + lru] += nr
    c = np.int64(memcg)
    while c >= 0:
        M.mstat[c, MS_LRU_H + lru] += nr
        c = M.mc[c, MC_PARENT]


@njit
def count_workingset(M, memcg, col, file):
    """A workingset event on the memcg's lruvec (mod_lruvec_state)."""
    M.mstat[memcg, col + file] += 1
    if col == MS_ACTIVATE:
        c = np.int64(memcg)
        while c >= 0:
            M.mstat[c, MS_ACTIVATE_H + file] += 1
            c = M.mc[c, MC_PARENT]


@njit
def nr_swap_pages(M, memcg, global_free):
    """Models mem_cgroup_get_nr_swap_pages(): the free swap the memcg may
    still use (the tightest swap.max margin up the tree, within the free
    swap of the machine)."""
    nr = global_free
    c = np.int64(memcg)
    while c > 0:                                   # the root has no swap limit
        margin = M.mc[c, MC_SWAP_MAX] - M.mc[c, MC_SWAP]
        if margin < nr:
            nr = margin
        c = M.mc[c, MC_PARENT]
    return max(nr, 0)


@njit
def try_charge_swap(M, pfn, slot):
    """Models __mem_cgroup_try_charge_swap() for one page: charge the swap
    counters of the folio's memcg up to the root; when a swap.max would be
    passed, count max on that memcg and fail on the folio's memcg (the
    swap-out is refused: the folio stays in memory)."""
    memcg = np.int64(M.memcg[pfn]) if M.flags[pfn] & PG_memcg else np.int64(0)
    c = memcg
    while c > 0:
        if M.mc[c, MC_SWAP] + 1 > M.mc[c, MC_SWAP_MAX]:
            M.mc[c, MC_SWAP_EVENTS_MAX] += 1
            M.mc[memcg, MC_SWAP_EVENTS_FAIL] += 1
            return False
        c = M.mc[c, MC_PARENT]
    c = memcg
    while c >= 0:
        usage = M.mc[c, MC_SWAP] + 1
        M.mc[c, MC_SWAP] = usage
        if usage > M.mc[c, MC_SWAP_PEAK]:
            M.mc[c, MC_SWAP_PEAK] = usage
        c = M.mc[c, MC_PARENT]
    M.swap_cgroup[slot] = memcg
    return True


@njit
def uncharge_swap(M, slot):
    """Models __mem_cgroup_uncharge_swap(): the slot is free again."""
    memcg = np.int64(M.swap_cgroup[slot])
    _walk_charge(M, memcg, MC_SWAP, -1)
    M.swap_cgroup[slot] = 0
