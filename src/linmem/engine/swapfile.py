"""Compiled kernels: swap areas and their slots (mm/swapfile.c).

A swap area is a run of page-sized slots on a device; slot 0 holds the swap
header (mkswap), so an area of N pages has N - 1 usable slots. All areas
share one numbering here: area ``a`` owns the global slots
``si[a, SI_BASE] .. + si[a, SI_MAX]``, and a PTE holds the global slot of
its page. Each slot has a count (``swap_map``, as the kernel's byte): the
number of page-table entries (and shmem references) that hold it, plus
SWAP_HAS_CACHE while a folio for it is in the swap cache. A slot is free
when its count is 0.

Allocation (folio_alloc_swap -> swap_alloc_fast / swap_alloc_slow): a CPU
keeps taking slots from the cluster (512 slots) it has; when that is used up
it takes a new cluster from the first area in priority order that has free
slots, and requeues that area behind the others of its priority
(plist_requeue), so areas of equal priority take turns cluster by cluster
and a higher priority area is used until it is full.

XXX: one CPU's cluster for the whole machine; a new cluster is the next one
with a free slot after the area's cursor (the kernel's free/nonfull cluster
lists prefer empty clusters); no discard; no swap continuation counts (a slot
is held by at most 0x3e page-table entries plus the cache).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.pgtable import _PAGE_PRESENT, PAGE_SHIFT

MAX_SWAPFILES = 32
SWAPFILE_CLUSTER = 512

# si[] columns (struct swap_info_struct)
SI_BASE, SI_MAX, SI_PRIO, SI_FLAGS, SI_INUSE, SI_NEXT, SI_SEQ = 0, 1, 2, 3, 4, 5, 6
SI_CUR_NEXT, SI_CUR_END = 7, 8     # the CPU's cluster (kept in row 0 for all areas)
NR_SI = 9

# si flags
SWP_USED = 1 << 0
SWP_WRITEOK = 1 << 1
SWP_SYNCHRONOUS_IO = 1 << 2      # zram: reads and writes complete at once
SWP_FILE = 1 << 3                # a swapfile (else a partition or zram)

# swap_map values
SWAP_HAS_CACHE = 0x40
SWAP_MAP_MAX = 0x3e
SWAP_MAP_BAD = 0x3f
COUNT_MASK = 0x3f

# the swap PTE: not present, the global slot above the flag bits
_PAGE_SWP = 1 << 11                # linmem's marker of a swap entry
_PAGE_SWP_EXCLUSIVE = 1 << 3       # PTE_MARKER-like bit: the page was exclusive (anon)

# machine-wide swap state, in a spare row of si[] (MAX_SWAPFILES)
G_ROW = MAX_SWAPFILES
G_NR_FREE, G_TOTAL, G_CUR_AREA, G_SEQ, G_PAGE_CLUSTER = 0, 1, 2, 3, 4
# swap_cluster_readahead's machine-wide state (swapin_nr_pages): the hits on
# readahead pages since the last window (swapin_readahead_hits, 4 at boot),
# the offset of the last miss without hits and the last window
G_RA_HITS, G_RA_PREV_OFFSET, G_RA_LAST_PAGES = 5, 6, 7
SWAPIN_READAHEAD_HITS_INIT = 4
G_SYNC_IN = 8          # pages read from synchronous (zram) areas, for the time model


@njit
def mk_swp_pte(slot, exclusive):
    """The PTE of a swapped-out page (swp_entry_to_pte)."""
    e = (np.int64(slot) << PAGE_SHIFT) | _PAGE_SWP
    if exclusive:
        e |= _PAGE_SWP_EXCLUSIVE
    return e


@njit
def is_swap_pte(e):
    """is_swap_pte(): not present, and a swap entry."""
    return (e & (_PAGE_PRESENT | _PAGE_SWP)) == _PAGE_SWP


@njit
def swp_slot(e):
    return e >> PAGE_SHIFT


@njit
def swap_area(M, slot):
    """The area (si row) a global slot belongs to, or -1."""
    for a in range(MAX_SWAPFILES):
        if M.si[a, SI_FLAGS] & SWP_USED and \
                M.si[a, SI_BASE] <= slot < M.si[a, SI_BASE] + M.si[a, SI_MAX]:
            return a
    return -1


@njit
def swap_count(M, slot):
    """swap_count(): the page-table references of a slot (no cache bit)."""
    return np.int64(M.swap_map[slot] & COUNT_MASK)


@njit
def nr_swap_free(M):
    """get_nr_swap_pages(): free slots in the areas that take new pages."""
    return M.si[G_ROW, G_NR_FREE]


@njit
def vm_swap_full(M):
    """vm_swap_full(): more than half of the swap space is in use."""
    return M.si[G_ROW, G_NR_FREE] * 2 < M.si[G_ROW, G_TOTAL]


@njit
def _pick_area(M, tried):
    """The first area in plist order (highest priority, then the longest
    waiting of that priority) with room, not yet ``tried``; -1 when none.
    ``SI_INUSE`` counts the header slot too."""
    best = -1
    for a in range(MAX_SWAPFILES):
        flags = M.si[a, SI_FLAGS]
        if not (flags & SWP_USED) or not (flags & SWP_WRITEOK):
            continue
        if M.si[a, SI_INUSE] >= M.si[a, SI_MAX] or (tried >> a) & 1:
            continue
        if best < 0 or M.si[a, SI_PRIO] > M.si[best, SI_PRIO] or \
                (M.si[a, SI_PRIO] == M.si[best, SI_PRIO] and M.si[a, SI_SEQ] < M.si[best, SI_SEQ]):
            best = a
    return best


@njit
def _take(M, a, off):
    slot = M.si[a, SI_BASE] + off
    M.swap_map[slot] = SWAP_HAS_CACHE
    M.si[a, SI_INUSE] += 1
    M.si[G_ROW, G_NR_FREE] -= 1
    return slot


@njit
def _scan_cluster(M, a, start, end):
    base = M.si[a, SI_BASE]
    for off in range(start, end):
        if M.swap_map[base + off] == 0:
            return off
    return -1


@njit
def _new_cluster(M, a):
    """The next cluster of area ``a`` with a free slot, from its cursor on:
    it becomes the CPU's cluster. The offset of its first free slot."""
    nmax = M.si[a, SI_MAX]
    nclusters = (nmax + SWAPFILE_CLUSTER - 1) // SWAPFILE_CLUSTER
    c = M.si[a, SI_NEXT]
    for _ in range(nclusters):
        start = c * SWAPFILE_CLUSTER
        end = min(start + SWAPFILE_CLUSTER, nmax)
        off = _scan_cluster(M, a, start, end)
        c = (c + 1) % nclusters
        if off >= 0:
            M.si[a, SI_NEXT] = c
            M.si[G_ROW, G_CUR_AREA] = a
            M.si[0, SI_CUR_NEXT] = off + 1
            M.si[0, SI_CUR_END] = end
            return off
    return -1


@njit
def get_swap_slot(M):
    """Models folio_alloc_swap() for one page: a free slot with
    SWAP_HAS_CACHE set, or -1 when swap is full or off."""
    if M.si.shape[0] == 0 or M.si[G_ROW, G_NR_FREE] <= 0:
        return np.int64(-1)
    a = M.si[G_ROW, G_CUR_AREA]
    if a >= 0 and (M.si[a, SI_FLAGS] & SWP_WRITEOK):          # swap_alloc_fast
        off = _scan_cluster(M, a, M.si[0, SI_CUR_NEXT], M.si[0, SI_CUR_END])
        if off >= 0:
            M.si[0, SI_CUR_NEXT] = off + 1
            return _take(M, a, off)
    tried = np.int64(0)
    while True:                                               # swap_alloc_slow
        a = _pick_area(M, tried)
        if a < 0:
            M.si[G_ROW, G_CUR_AREA] = -1
            return np.int64(-1)
        tried |= np.int64(1) << a
        M.si[G_ROW, G_SEQ] += 1
        M.si[a, SI_SEQ] = M.si[G_ROW, G_SEQ]                  # plist_requeue
        off = _new_cluster(M, a)
        if off >= 0:
            return _take(M, a, off)


@njit
def folio_alloc_swap(M, pfn):
    """Models folio_alloc_swap() for a page of the folio at ``pfn``: a slot,
    charged to the folio's memcg (__mem_cgroup_try_charge_swap); -1 when
    swap is full or off, or the memcg's memory.swap.max refuses."""
    slot = get_swap_slot(M)
    if slot >= 0 and not MC.try_charge_swap(M, pfn, slot):
        M.swap_map[slot] = 0                                  # put_swap_folio, uncharged
        _free_slot(M, slot, False)
        return np.int64(-1)
    return slot


@njit
def _free_slot(M, slot, charged=True):
    """swap_entries_free(): the slot is free again, its shadow dropped, its
    memcg uncharged."""
    if charged:
        MC.uncharge_swap(M, slot)
    M.swap_map[slot] = 0
    M.swap_shadow[slot] = 0
    a = swap_area(M, slot)
    M.si[a, SI_INUSE] -= 1
    if M.si[a, SI_FLAGS] & SWP_WRITEOK:                       # not while swapoff empties it
        M.si[G_ROW, G_NR_FREE] += 1


@njit
def swap_duplicate(M, slot):
    """swap_duplicate(): one more page-table reference (fork, unmap)."""
    M.swap_map[slot] += 1


@njit
def swap_free(M, slot):
    """swap_free(): a page-table reference is gone; the slot is freed when
    nothing holds it (no reference, not in the swap cache)."""
    M.swap_map[slot] -= 1
    if M.swap_map[slot] == 0:
        _free_slot(M, slot)


@njit
def put_swap_folio(M, slot):
    """put_swap_folio(): the swap cache lets go of the slot."""
    M.swap_map[slot] &= ~np.uint8(SWAP_HAS_CACHE)
    if M.swap_map[slot] == 0:
        _free_slot(M, slot)


@njit
def swapcache_prepare(M, slot):
    """swapcache_prepare(): mark a swapped-out slot as cached; False when it
    is free or already cached."""
    v = M.swap_map[slot]
    if (v & COUNT_MASK) == 0 or (v & COUNT_MASK) == SWAP_MAP_BAD or (v & SWAP_HAS_CACHE):
        return False
    M.swap_map[slot] = v | SWAP_HAS_CACHE
    return True
