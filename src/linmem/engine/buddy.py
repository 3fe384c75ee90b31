"""Compiled kernels of the buddy allocator and the per-cpu page lists.

The algorithms are those of mm/page_alloc.c (Linux 6.18); the Python side
(``linmem.mm.page_alloc``) explains them and validates arguments. Everything
here works on the arrays of the kernel state ``S`` (``linmem.engine.state``)
and on plain integers, so it compiles with numba and runs unchanged as Python
under ``NUMBA_DISABLE_JIT=1``.

Lists are doubly linked through the frame arrays ``nxt``/``prv`` (the kernel's
``page->buddy_list`` and ``page->pcp_list`` overlay ``page->lru`` the same way),
with head and tail arrays per (zone, order, migratetype) and per (zone, cpu,
pcp list). -1 ends a list.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit
from linmem.mm.frames import PG_buddy, PG_lru, PG_pcp
from linmem.mm.vmstat import NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS, NUMA_HIT, NUMA_LOCAL, PGALLOC_DMA, PGFREE

MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = 11
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR_PAGES = 512
PAGE_ALLOC_COSTLY_ORDER = 3
HPAGE_PMD_ORDER = 9
PCP_BATCH_SCALE_MAX = 5          # CONFIG_PCP_BATCH_SCALE_MAX

# Migratetypes (include/linux/mmzone.h), as /proc/pagetypeinfo lists them.
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = 3
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")

# Fallback order when a migratetype's own lists are empty (page_alloc.c fallbacks[]).
FALLBACKS = np.array([[MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
                      [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
                      [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE]], dtype=np.int64)

# Per-cpu lists: 3 migratetypes x orders 0..3, then THP order (unmovable, movable).
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 2

# alloc_flags (mm/internal.h)
ALLOC_WMARK_MIN = 0
ALLOC_WMARK_LOW = 1
ALLOC_WMARK_HIGH = 2
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

# Free-page-internal flags (fpi_t)
FPI_NONE = 0
FPI_TO_TAIL = 2

# Zone scalar fields: zs[zone, field]
ZS_START = 0
ZS_END = 1
ZS_MANAGED = 2
ZS_PRESENT = 3
ZS_WMARK = 4                 # 4 fields: min, low, high, promo (without boost)
ZS_BOOST = 8
ZS_RESERVED_HIGHATOMIC = 9
ZS_FREE_HIGHATOMIC = 10
ZS_FLAGS = 11
ZS_LOWMEM_RESERVE = 12       # MAX_NR_ZONES fields
NR_ZS_FIELDS = ZS_LOWMEM_RESERVE + 5

# zone->flags bits
ZONE_BOOSTED_WATERMARK = 1
ZONE_RECLAIM_ACTIVE = 2
ZONE_BELOW_HIGH = 4

# Per-cpu pageset fields: pcp[zone, cpu, field]
P_COUNT = 0
P_HIGH = 1
P_BATCH = 2
P_HIGH_MIN = 3
P_HIGH_MAX = 4
P_FREE_COUNT = 5
P_ALLOC_FACTOR = 6
P_FLAGS = 7
NR_P_FIELDS = 8
PCPF_PREV_FREE_HIGH_ORDER = 1
PCPF_FREE_HIGH_BATCH = 2

# Machine-wide requests the allocator leaves for the Python side: wake[zone] = 1.
WATERMARK_BOOST_FACTOR_DEFAULT = 15000


T_BOOST_FACTOR = 0
T_MOBILITY_DISABLED = 1


# --------------------------------------------------------------------------
# list primitives (include/linux/list.h on frame indices)

@njit
def _list_add(head, tail, i, j, k, nxt, prv, pfn, to_tail):
    """Add ``pfn`` at the head (or tail) of list head[i, j, k]/tail[i, j, k]."""
    first = head[i, j, k]
    if first == -1:
        head[i, j, k] = pfn
        tail[i, j, k] = pfn
        nxt[pfn] = -1
        prv[pfn] = -1
    elif to_tail:
        last = tail[i, j, k]
        prv[pfn] = last
        nxt[pfn] = -1
        nxt[last] = pfn
        tail[i, j, k] = pfn
    else:
        nxt[pfn] = first
        prv[pfn] = -1
        prv[first] = pfn
        head[i, j, k] = pfn


@njit
def _list_del(head, tail, i, j, k, nxt, prv, pfn):
    """Unlink ``pfn`` from list head[i, j, k]/tail[i, j, k]."""
    n = nxt[pfn]
    p = prv[pfn]
    if p == -1:
        head[i, j, k] = n
    else:
        nxt[p] = n
    if n == -1:
        tail[i, j, k] = p
    else:
        prv[n] = p
    nxt[pfn] = -1
    prv[pfn] = -1


# --------------------------------------------------------------------------
# free lists

@njit
def account_freepages(S, z, nr_pages, mt):
    """Models account_freepages(): NR_FREE_PAGES and the highatomic free count."""
    if mt == MIGRATE_ISOLATE:
        return
    S.zstat[z, NR_FREE_PAGES] += nr_pages
    if mt == MIGRATE_HIGHATOMIC:
        S.zs[z, ZS_FREE_HIGHATOMIC] += nr_pages


@njit
def _add_to_free_list(S, pfn, z, order, mt, to_tail):
    """Models __add_to_free_list(): mark the block buddy and link it."""
    S.flags[pfn] |= PG_buddy
    S.order[pfn] = order
    if order >= PAGEBLOCK_ORDER and mt != MIGRATE_ISOLATE:
        S.zstat[z, NR_FREE_PAGES_BLOCKS] += 1 << order
    _list_add(S.fhead, S.ftail, z, order, mt, S.nxt, S.prv, pfn, to_tail)
    S.nfree[z, order, mt] += 1


@njit
def _del_from_free_list(S, pfn, z, order, mt):
    """Models __del_page_from_free_list() without the accounting."""
    _list_del(S.fhead, S.ftail, z, order, mt, S.nxt, S.prv, pfn)
    S.flags[pfn] &= ~np.uint32(PG_buddy)
    S.order[pfn] = 0
    S.nfree[z, order, mt] -= 1
    if order >= PAGEBLOCK_ORDER and mt != MIGRATE_ISOLATE:
        S.zstat[z, NR_FREE_PAGES_BLOCKS] -= 1 << order


@njit
def get_pfnblock_migratetype(S, pfn):
    return np.int64(S.pb_mt[pfn >> PAGEBLOCK_ORDER])


@njit
def _page_is_buddy(S, z, pfn, order):
    """Models page_is_buddy(): a free block of exactly this order in this zone."""
    if pfn < S.zs[z, ZS_START] or pfn >= S.zs[z, ZS_END]:
        return False
    return (S.flags[pfn] & PG_buddy) != 0 and S.order[pfn] == order


@njit
def _buddy_merge_likely(S, z, pfn, buddy_pfn, order):
    """Models buddy_merge_likely(): is the next-higher buddy free too?"""
    if order >= MAX_PAGE_ORDER - 1:
        return False
    higher = buddy_pfn & pfn
    higher_buddy = higher ^ (1 << (order + 1))
    return _page_is_buddy(S, z, higher_buddy, order + 1)


@njit
def free_one_page(S, pfn, z, order, mt, fpi):
    """Models __free_one_page(): merge with free buddies, then list the block.

    buddy = pfn ^ (1 << order); while the buddy is a free block of the same order
    (and, across pageblocks, of a mergeable type), take it off its list and
    double. The block goes to the tail when the next merge looks likely.
    """
    account_freepages(S, z, 1 << order, mt)
    while order < MAX_PAGE_ORDER:
        buddy = pfn ^ (1 << order)
        if not _page_is_buddy(S, z, buddy, order):
            break
        buddy_mt = mt
        if order >= PAGEBLOCK_ORDER:
            # Never merge a HighAtomic or isolated pageblock with a normal one.
            buddy_mt = get_pfnblock_migratetype(S, buddy)
            if buddy_mt != mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                break
        _del_from_free_list(S, buddy, z, order, buddy_mt)
        if buddy_mt != mt:
            S.pb_mt[buddy >> PAGEBLOCK_ORDER] = mt
        pfn = pfn & buddy
        order += 1
    if fpi & FPI_TO_TAIL:
        to_tail = True
    else:
        to_tail = _buddy_merge_likely(S, z, pfn, pfn ^ (1 << order), order)
    _add_to_free_list(S, pfn, z, order, mt, to_tail)


@njit
def expand(S, pfn, z, low, high, mt):
    """Models expand(): split a block of order ``high`` down to ``low``.

    The upper halves go back on the free lists (at the head); the lowest part
    is what the caller gets. Returns the pages put back.
    """
    nr_added = 0
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        _add_to_free_list(S, pfn + size, z, high, mt, False)
        nr_added += size
    return nr_added


@njit
def page_del_and_expand(S, pfn, z, low, high, mt):
    """Models page_del_and_expand()."""
    _del_from_free_list(S, pfn, z, high, mt)
    nr_pages = 1 << high
    nr_pages -= expand(S, pfn, z, low, high, mt)
    account_freepages(S, z, -nr_pages, mt)


@njit
def rmqueue_smallest(S, z, order, mt):
    """Models __rmqueue_smallest(): the smallest free block of this type that fits."""
    for current in range(order, NR_PAGE_ORDERS):
        pfn = S.fhead[z, current, mt]
        if pfn == -1:
            continue
        page_del_and_expand(S, pfn, z, order, current, mt)
        return np.int64(pfn)
    return np.int64(-1)


# --------------------------------------------------------------------------
# migratetype fallback

@njit
def should_try_claim_block(S, order, start_mt):
    """Models should_try_claim_block()."""
    if order >= PAGEBLOCK_ORDER // 2:
        return True
    if start_mt == MIGRATE_RECLAIMABLE or start_mt == MIGRATE_UNMOVABLE:
        return True
    return S.tunables[T_MOBILITY_DISABLED] != 0


@njit
def find_suitable_fallback(S, z, order, mt, claimable):
    """Models find_suitable_fallback(): -2 = too small to claim, -1 = none."""
    if claimable and not should_try_claim_block(S, order, mt):
        return -2
    for i in range(2):
        fmt = FALLBACKS[mt, i]
        if S.fhead[z, order, fmt] != -1:
            return fmt
    return -1


@njit
def boost_watermark(S, z):
    """Models boost_watermark(): raise the zone's marks after a fallback."""
    factor = S.tunables[T_BOOST_FACTOR]
    if factor == 0:
        return False
    if PAGEBLOCK_NR_PAGES * 4 > S.zs[z, ZS_MANAGED]:
        return False
    high = S.zs[z, ZS_WMARK + 2]
    max_boost = (high // 10000) * factor + ((high % 10000) * factor) // 10000
    if max_boost == 0:
        return False
    max_boost = max(PAGEBLOCK_NR_PAGES, max_boost)
    S.zs[z, ZS_BOOST] = min(S.zs[z, ZS_BOOST] + PAGEBLOCK_NR_PAGES, max_boost)
    return True


@njit
def move_freepages_block(S, z, block, old_mt, new_mt):
    """Models __move_freepages_block(): move the free blocks of one pageblock.

    Returns the pages moved.
    """
    start = block << PAGEBLOCK_ORDER
    end = start + PAGEBLOCK_NR_PAGES
    moved = 0
    pfn = start
    while pfn < end:
        if S.flags[pfn] & PG_buddy:
            order = np.int64(S.order[pfn])
            _del_from_free_list(S, pfn, z, order, old_mt)
            _add_to_free_list(S, pfn, z, order, new_mt, True)
            account_freepages(S, z, -(1 << order), old_mt)
            account_freepages(S, z, 1 << order, new_mt)
            moved += 1 << order
            pfn += 1 << order
        else:
            pfn += 1
    S.pb_mt[block] = new_mt
    return moved


@njit
def _count_block(S, z, block):
    """Models prep_move_freepages_block(): (ok, free pages, movable pages)."""
    start = block << PAGEBLOCK_ORDER
    end = start + PAGEBLOCK_NR_PAGES
    if start < S.zs[z, ZS_START] or end > S.zs[z, ZS_END]:
        return False, 0, 0
    free = 0
    movable = 0
    pfn = start
    while pfn < end:
        if S.flags[pfn] & PG_buddy:
            free += 1 << np.int64(S.order[pfn])
            pfn += 1 << np.int64(S.order[pfn])
        else:
            if S.flags[pfn] & PG_lru:
                movable += 1
            pfn += 1
    return True, free, movable


@njit
def try_to_claim_block(S, z, pfn, current, order, start_mt, block_mt, alloc_flags):
    """Models try_to_claim_block(): take a whole pageblock for our migratetype."""
    if current >= PAGEBLOCK_ORDER:
        _del_from_free_list(S, pfn, z, current, block_mt)
        account_freepages(S, z, -(1 << current), block_mt)
        for b in range(pfn >> PAGEBLOCK_ORDER, (pfn + (1 << current)) >> PAGEBLOCK_ORDER):
            S.pb_mt[b] = start_mt
        nr_added = expand(S, pfn, z, order, current, start_mt)
        account_freepages(S, z, nr_added, start_mt)
        return np.int64(pfn)
    if boost_watermark(S, z) and (alloc_flags & ALLOC_KSWAPD):
        S.zs[z, ZS_FLAGS] |= ZONE_BOOSTED_WATERMARK
    block = pfn >> PAGEBLOCK_ORDER
    ok, free, movable = _count_block(S, z, block)
    if not ok:
        return np.int64(-1)
    if start_mt == MIGRATE_MOVABLE:
        alike = movable
    elif block_mt == MIGRATE_MOVABLE:
        alike = PAGEBLOCK_NR_PAGES - (free + movable)
    else:
        alike = 0
    if free + alike >= (1 << (PAGEBLOCK_ORDER - 1)) or S.tunables[T_MOBILITY_DISABLED]:
        move_freepages_block(S, z, block, block_mt, start_mt)
        return rmqueue_smallest(S, z, order, start_mt)
    return np.int64(-1)


@njit
def rmqueue_claim(S, z, order, start_mt, alloc_flags):
    """Models __rmqueue_claim(): claim the largest fallback block first."""
    min_order = order
    if order < PAGEBLOCK_ORDER and (alloc_flags & ALLOC_NOFRAGMENT):
        min_order = PAGEBLOCK_ORDER
    for current in range(MAX_PAGE_ORDER, min_order - 1, -1):
        fmt = find_suitable_fallback(S, z, current, start_mt, True)
        if fmt == -1:
            continue
        if fmt == -2:
            break
        pfn = S.fhead[z, current, fmt]
        got = try_to_claim_block(S, z, pfn, current, order, start_mt, fmt, alloc_flags)
        if got != -1:
            return got
    return np.int64(-1)


@njit
def rmqueue_steal(S, z, order, start_mt):
    """Models __rmqueue_steal(): take one block of another type, leave its pageblock."""
    for current in range(order, NR_PAGE_ORDERS):
        fmt = find_suitable_fallback(S, z, current, start_mt, False)
        if fmt == -1:
            continue
        pfn = S.fhead[z, current, fmt]
        page_del_and_expand(S, pfn, z, order, current, fmt)
        return np.int64(pfn)
    return np.int64(-1)


@njit
def rmqueue(S, z, order, mt, alloc_flags):
    """Models __rmqueue(): own type, then claim, then (unless NOFRAGMENT) steal."""
    pfn = rmqueue_smallest(S, z, order, mt)
    if pfn != -1:
        return pfn
    pfn = rmqueue_claim(S, z, order, mt, alloc_flags)
    if pfn != -1:
        return pfn
    if not (alloc_flags & ALLOC_NOFRAGMENT):
        return rmqueue_steal(S, z, order, mt)
    return np.int64(-1)


# --------------------------------------------------------------------------
# per-cpu page lists

@njit
def order_to_pindex(mt, order):
    """Models order_to_pindex()."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (1 if mt == MIGRATE_MOVABLE else 0)
    return MIGRATE_PCPTYPES * order + mt


@njit
def pindex_to_order(pindex):
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return HPAGE_PMD_ORDER
    return pindex // MIGRATE_PCPTYPES


@njit
def pcp_allowed_order(order):
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == HPAGE_PMD_ORDER


@njit
def _pcp_push(S, z, cpu, pindex, pfn, to_tail):
    S.flags[pfn] |= PG_pcp
    _list_add(S.phead, S.ptail, z, cpu, pindex, S.nxt, S.prv, pfn, to_tail)


@njit
def _pcp_unlink(S, z, cpu, pindex, pfn):
    _list_del(S.phead, S.ptail, z, cpu, pindex, S.nxt, S.prv, pfn)
    S.flags[pfn] &= ~np.uint32(PG_pcp)


@njit
def nr_pcp_alloc(S, z, cpu, order):
    """Models nr_pcp_alloc(): how many blocks to take from the buddy in one go."""
    p = S.pcp[z, cpu]
    base_batch = p[P_BATCH]
    high_min = p[P_HIGH_MIN]
    high_max = p[P_HIGH_MAX]
    high = min(max(p[P_HIGH], high_min), high_max)
    p[P_HIGH] = high
    if high < base_batch:
        return np.int64(1)
    batch = base_batch if order else base_batch << p[P_ALLOC_FACTOR]
    if high_min != high_max and not (S.zs[z, ZS_FLAGS] & ZONE_BELOW_HIGH):
        high = min(high + batch, high_max)
        p[P_HIGH] = high
    if order == 0:
        max_nr_alloc = max(high - p[P_COUNT] - base_batch, base_batch)
        if batch <= max_nr_alloc and p[P_ALLOC_FACTOR] < PCP_BATCH_SCALE_MAX:
            p[P_ALLOC_FACTOR] += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


@njit
def rmqueue_bulk(S, z, cpu, order, count, mt, alloc_flags):
    """Models rmqueue_bulk(): refill a pcp list; returns the blocks added."""
    pindex = order_to_pindex(mt, order)
    i = 0
    while i < count:
        pfn = rmqueue(S, z, order, mt, alloc_flags)
        if pfn == -1:
            break
        S.order[pfn] = order
        _pcp_push(S, z, cpu, pindex, pfn, True)
        i += 1
    return i


@njit
def rmqueue_pcplist(S, z, cpu, order, mt, alloc_flags):
    """Models rmqueue_pcplist(): take the first block of the pcp list, refilling it."""
    p = S.pcp[z, cpu]
    p[P_FREE_COUNT] >>= 1
    pindex = order_to_pindex(mt, order)
    if S.phead[z, cpu, pindex] == -1:
        batch = nr_pcp_alloc(S, z, cpu, order)
        got = rmqueue_bulk(S, z, cpu, order, batch, mt, alloc_flags)
        p[P_COUNT] += got << order
        if got == 0:
            return np.int64(-1)
    pfn = S.phead[z, cpu, pindex]
    _pcp_unlink(S, z, cpu, pindex, pfn)
    p[P_COUNT] -= 1 << order
    return np.int64(pfn)


@njit
def free_pcppages_bulk(S, z, cpu, count, pindex):
    """Models free_pcppages_bulk(): return pages to the buddy, round robin over lists.

    The list just freed to is drained first; pages leave from the tail (the
    coldest end).
    """
    p = S.pcp[z, cpu]
    pindex = pindex - 1
    while count > 0 and p[P_COUNT] > 0:
        while True:
            pindex += 1
            if pindex > NR_PCP_LISTS - 1:
                pindex = 0
            if S.phead[z, cpu, pindex] != -1:
                break
        order = pindex_to_order(pindex)
        nr_pages = 1 << order
        while True:
            pfn = S.ptail[z, cpu, pindex]
            _pcp_unlink(S, z, cpu, pindex, pfn)
            count -= nr_pages
            p[P_COUNT] -= nr_pages
            free_one_page(S, pfn, z, order, get_pfnblock_migratetype(S, pfn), FPI_NONE)
            if count <= 0 or S.phead[z, cpu, pindex] == -1:
                break


@njit
def nr_pcp_high(S, z, cpu, batch, free_high):
    """Models nr_pcp_high(): the effective high mark, auto-tuning pcp->high."""
    p = S.pcp[z, cpu]
    high_min = p[P_HIGH_MIN]
    high_max = p[P_HIGH_MAX]
    high = min(max(p[P_HIGH], high_min), high_max)
    p[P_HIGH] = high
    if high == 0:
        return np.int64(0)
    if free_high:
        p[P_HIGH] = max(high - (batch << PCP_BATCH_SCALE_MAX), high_min)
        return np.int64(0)
    if S.zs[z, ZS_FLAGS] & ZONE_RECLAIM_ACTIVE:
        free_count = max(p[P_FREE_COUNT], batch)
        p[P_HIGH] = max(high - free_count, high_min)
        return min(batch << 2, p[P_HIGH])
    if high_min == high_max:
        return high
    if S.zs[z, ZS_FLAGS] & ZONE_BELOW_HIGH:
        free_count = max(p[P_FREE_COUNT], batch)
        p[P_HIGH] = max(high - free_count, high_min)
        high = max(p[P_COUNT], high_min)
    elif p[P_COUNT] >= high:
        need_high = p[P_FREE_COUNT] + batch
        if p[P_HIGH] < need_high:
            p[P_HIGH] = min(max(need_high, high_min), high_max)
    return high


@njit
def nr_pcp_free(S, z, cpu, batch, high, free_high):
    """Models nr_pcp_free(): how many pages one bulk free returns."""
    p = S.pcp[z, cpu]
    if free_high:
        return min(p[P_COUNT], batch << PCP_BATCH_SCALE_MAX)
    return min(max(p[P_FREE_COUNT], batch), max(high - batch, batch))


@njit
def free_pcp_commit(S, z, cpu, pfn, mt, order):
    """Models free_frozen_page_commit(): put a page on the pcp list, maybe drain."""
    p = S.pcp[z, cpu]
    p[P_ALLOC_FACTOR] >>= 1
    pindex = order_to_pindex(mt, order)
    S.order[pfn] = order
    _pcp_push(S, z, cpu, pindex, pfn, False)
    p[P_COUNT] += 1 << order
    batch = p[P_BATCH]
    free_high = False
    if order != 0 and order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (p[P_FREE_COUNT] >= batch + p[P_HIGH_MIN] // 2
                     and (p[P_FLAGS] & PCPF_PREV_FREE_HIGH_ORDER) != 0
                     and ((p[P_FLAGS] & PCPF_FREE_HIGH_BATCH) == 0 or p[P_COUNT] >= batch))
        p[P_FLAGS] |= PCPF_PREV_FREE_HIGH_ORDER
    elif p[P_FLAGS] & PCPF_PREV_FREE_HIGH_ORDER:
        p[P_FLAGS] &= ~PCPF_PREV_FREE_HIGH_ORDER
    if p[P_FREE_COUNT] < (batch << PCP_BATCH_SCALE_MAX):
        p[P_FREE_COUNT] += 1 << order
    high = nr_pcp_high(S, z, cpu, batch, free_high)
    if p[P_COUNT] < high:
        return
    free_pcppages_bulk(S, z, cpu, nr_pcp_free(S, z, cpu, batch, high, free_high), pindex)
    if (S.zs[z, ZS_FLAGS] & ZONE_BELOW_HIGH) and zone_watermark_ok(
            S, z, 0, S.zs[z, ZS_WMARK + 2] + S.zs[z, ZS_BOOST], S.zs.shape[0] - 1, 0):
        S.zs[z, ZS_FLAGS] &= ~ZONE_BELOW_HIGH


@njit
def drain_zone_cpu(S, z, cpu):
    """Models drain_pages_zone(): give back every page of one pcp."""
    free_pcppages_bulk(S, z, cpu, S.pcp[z, cpu, P_COUNT], 0)


# --------------------------------------------------------------------------
# watermarks and the zone iteration

@njit
def zone_watermark_unusable_free(S, z, order, alloc_flags):
    """Models __zone_watermark_unusable_free()."""
    unusable = (1 << order) - 1
    if not (alloc_flags & ALLOC_RESERVES):
        unusable += S.zs[z, ZS_FREE_HIGHATOMIC]
    return unusable


@njit
def zone_watermark_ok_free(S, z, order, mark, highest_zoneidx, alloc_flags, free_pages):
    """Models __zone_watermark_ok(): free pages above mark + lowmem_reserve, and
    for order > 0 a free block of at least that order on a usable list."""
    m = mark
    free_pages -= zone_watermark_unusable_free(S, z, order, alloc_flags)
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            m -= m // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                m -= m // 4
        if alloc_flags & ALLOC_OOM:
            m -= m // 2
    if free_pages <= m + S.zs[z, ZS_LOWMEM_RESERVE + highest_zoneidx]:
        return False
    if order == 0:
        return True
    for o in range(order, NR_PAGE_ORDERS):
        for mt in range(MIGRATE_PCPTYPES):
            if S.fhead[z, o, mt] != -1:
                return True
        if (alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) and \
                S.fhead[z, o, MIGRATE_HIGHATOMIC] != -1:
            return True
    return False


@njit
def zone_watermark_ok(S, z, order, mark, highest_zoneidx, alloc_flags):
    return zone_watermark_ok_free(S, z, order, mark, highest_zoneidx, alloc_flags,
                                  S.zstat[z, NR_FREE_PAGES])


@njit
def wmark_pages(S, z, which):
    return S.zs[z, ZS_WMARK + which] + S.zs[z, ZS_BOOST]


@njit
def zone_watermark_fast(S, z, order, mark, highest_zoneidx, alloc_flags):
    """Models zone_watermark_fast(): the order-0 shortcut, then the full test,
    then for __GFP_HIGH order-0 at the min mark a retry ignoring the boost."""
    free_pages = S.zstat[z, NR_FREE_PAGES]
    if order == 0:
        reserved = zone_watermark_unusable_free(S, z, 0, alloc_flags)
        usable = free_pages - min(free_pages, reserved)
        if usable > mark + S.zs[z, ZS_LOWMEM_RESERVE + highest_zoneidx]:
            return True
    if zone_watermark_ok_free(S, z, order, mark, highest_zoneidx, alloc_flags, free_pages):
        return True
    if order == 0 and (alloc_flags & ALLOC_MIN_RESERVE) and S.zs[z, ZS_BOOST] != 0 \
            and (alloc_flags & ALLOC_WMARK_MASK) == ALLOC_WMARK_MIN:
        return zone_watermark_ok_free(S, z, order, S.zs[z, ZS_WMARK], highest_zoneidx,
                                      alloc_flags, free_pages)
    return False


@njit
def reserve_highatomic_pageblock(S, z, pfn, order):
    """Models reserve_highatomic_pageblock(): keep a pageblock for atomic high orders."""
    managed = S.zs[z, ZS_MANAGED]
    if managed // 100 < PAGEBLOCK_NR_PAGES:
        return
    max_managed = (managed // 100 + PAGEBLOCK_NR_PAGES - 1) & ~(PAGEBLOCK_NR_PAGES - 1)
    if S.zs[z, ZS_RESERVED_HIGHATOMIC] >= max_managed:
        return
    mt = get_pfnblock_migratetype(S, pfn)
    if mt >= MIGRATE_PCPTYPES:
        return
    if order < PAGEBLOCK_ORDER:
        block = pfn >> PAGEBLOCK_ORDER
        ok, _free, _movable = _count_block(S, z, block)
        if not ok:
            return
        move_freepages_block(S, z, block, mt, MIGRATE_HIGHATOMIC)
        S.zs[z, ZS_RESERVED_HIGHATOMIC] += PAGEBLOCK_NR_PAGES
    else:
        for b in range(pfn >> PAGEBLOCK_ORDER, (pfn + (1 << order)) >> PAGEBLOCK_ORDER):
            S.pb_mt[b] = MIGRATE_HIGHATOMIC
        S.zs[z, ZS_RESERVED_HIGHATOMIC] += 1 << order


@njit
def rmqueue_buddy(S, z, order, mt, alloc_flags):
    """Models rmqueue_buddy(): under the zone lock, straight from the free lists."""
    pfn = np.int64(-1)
    if alloc_flags & ALLOC_HIGHATOMIC:
        pfn = rmqueue_smallest(S, z, order, MIGRATE_HIGHATOMIC)
    if pfn == -1:
        pfn = rmqueue(S, z, order, mt, alloc_flags)
        if pfn == -1 and (alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK)):
            pfn = rmqueue_smallest(S, z, order, MIGRATE_HIGHATOMIC)
    return pfn


@njit
def rmqueue_zone(S, z, cpu, order, mt, alloc_flags):
    """Models rmqueue(): pcp for small orders and THP, else the buddy lists."""
    pfn = np.int64(-1)
    if pcp_allowed_order(order):
        pfn = rmqueue_pcplist(S, z, cpu, order, mt, alloc_flags)
    if pfn == -1:
        pfn = rmqueue_buddy(S, z, order, mt, alloc_flags)
    if pfn != -1:
        if (alloc_flags & ALLOC_KSWAPD) and (S.zs[z, ZS_FLAGS] & ZONE_BOOSTED_WATERMARK):
            S.zs[z, ZS_FLAGS] &= ~ZONE_BOOSTED_WATERMARK
            S.kswapd_wake[z] = 1
    return pfn


@njit
def prep_new_page(S, pfn, z, order):
    """Models prep_new_page() and the counters of rmqueue(): pgalloc_<zone> in
    pages, numa_hit/numa_local once per allocation (zone_statistics)."""
    S.refcount[pfn] = 1
    S.order[pfn] = order
    S.events[PGALLOC_DMA + z] += 1 << order
    S.zstat[z, NUMA_HIT] += 1
    S.zstat[z, NUMA_LOCAL] += 1


@njit
def get_page_from_freelist(S, zonelist, order, mt, highest_zoneidx, alloc_flags, cpu):
    """Models get_page_from_freelist(): the first zone of the zonelist that passes
    its watermark gives the page.

    ``zonelist`` lists zone indices from the highest usable down. A pass with
    ALLOC_NOFRAGMENT that fails everywhere is retried without it. Returns
    (pfn, zone) or (-1, -1).
    """
    while True:
        for i in range(zonelist.shape[0]):
            z = zonelist[i]
            if S.zs[z, ZS_MANAGED] == 0:
                continue
            if not (S.zs[z, ZS_FLAGS] & ZONE_BELOW_HIGH):
                if not zone_watermark_fast(S, z, order, wmark_pages(S, z, ALLOC_WMARK_HIGH),
                                           highest_zoneidx, alloc_flags):
                    S.zs[z, ZS_FLAGS] |= ZONE_BELOW_HIGH
            if not (alloc_flags & ALLOC_NO_WATERMARKS):
                mark = wmark_pages(S, z, alloc_flags & ALLOC_WMARK_MASK)
                if not zone_watermark_fast(S, z, order, mark, highest_zoneidx, alloc_flags):
                    continue
            pfn = rmqueue_zone(S, z, cpu, order, mt, alloc_flags)
            if pfn != -1:
                prep_new_page(S, pfn, z, order)
                if alloc_flags & ALLOC_HIGHATOMIC and order > 0:
                    reserve_highatomic_pageblock(S, z, pfn, order)
                return np.int64(pfn), np.int64(z)
        if alloc_flags & ALLOC_NOFRAGMENT:
            alloc_flags &= ~ALLOC_NOFRAGMENT
            continue
        return np.int64(-1), np.int64(-1)


@njit
def free_pages(S, pfn, order, cpu):
    """Models __free_pages() -> free_frozen_pages(): pcp for small orders, else buddy.

    Returns False when the frame was not allocated (a double free).
    """
    if S.refcount[pfn] <= 0 or (S.flags[pfn] & (PG_buddy | PG_pcp)):
        return False
    S.refcount[pfn] = 0
    z = zone_of(S, pfn)
    mt = get_pfnblock_migratetype(S, pfn)
    S.events[PGFREE] += 1 << order
    if mt == MIGRATE_ISOLATE or not pcp_allowed_order(order):
        free_one_page(S, pfn, z, order, mt, FPI_NONE)
    else:
        # HighAtomic pages wait on the movable pcp list; draining puts them
        # back on their pageblock's list.
        free_pcp_commit(S, z, cpu, pfn, MIGRATE_MOVABLE if mt > MIGRATE_RECLAIMABLE
                        else mt, order)
    return True


@njit
def zone_of(S, pfn):
    for z in range(S.zs.shape[0]):
        if S.zs[z, ZS_START] <= pfn < S.zs[z, ZS_END]:
            return z
    return -1


@njit
def free_boot_range(S, z, start, end):
    """Models memblock_free_all() -> __free_pages_memory() for one range.

    The range is released in the largest aligned blocks that fit, to the tail of
    the lists, as __free_pages_core(FPI_TO_TAIL) does at boot, counted in
    pgfree as __free_pages_ok counts them.
    """
    S.events[PGFREE] += end - start
    pfn = start
    while pfn < end:
        order = MAX_PAGE_ORDER if pfn == 0 else min(MAX_PAGE_ORDER, _ffs(pfn))
        while pfn + (1 << order) > end:
            order -= 1
        free_one_page(S, pfn, z, order, get_pfnblock_migratetype(S, pfn), FPI_TO_TAIL)
        pfn += 1 << order


@njit
def _ffs(x):
    """Index of the lowest set bit (x > 0)."""
    n = 0
    while (x & 1) == 0:
        x >>= 1
        n += 1
    return n
