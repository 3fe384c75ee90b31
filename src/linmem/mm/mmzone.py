"""Zones, watermarks, lowmem_reserve and the per-cpu list sizes.

Physical memory of a node is split into zones by what devices can address:
on x86-64 DMA (below 16 MiB), DMA32 (below 4 GiB), Normal (the rest), and the
empty Movable and Device zones; on i386 DMA, Normal (below 896 MiB) and HighMem.
Each zone keeps three watermarks that steer the allocator and kswapd::

    free pages
      ^
      |  high  ---- kswapd stops reclaiming here
      |  low   ---- allocations below this wake kswapd
      |  min   ---- only __GFP_HIGH / atomic / OOM-victim allocations go below
      |  + lowmem_reserve[j]: extra pages a lower zone keeps back from
      |    allocations that could have used a higher zone j
      0

All numbers here are computed exactly as Linux 6.18 computes them, from each
zone's ``managed`` pages and the sysctls ``min_free_kbytes``,
``watermark_scale_factor``, ``lowmem_reserve_ratio`` and
``percpu_pagelist_high_fraction``. The functions are pure (arrays in, arrays
out) so that tests can feed them the real kernel's /proc/zoneinfo.

Sources: mm/page_alloc.c (calculate_min_free_kbytes, __setup_per_zone_wmarks,
setup_per_zone_lowmem_reserve, calculate_totalreserve_pages, nr_free_zone_pages,
zone_batchsize, zone_highsize), mm/khugepaged.c
(set_recommended_min_free_kbytes), mm/vmstat.c (calculate_normal_threshold).
"""

from __future__ import annotations

from math import isqrt

import numpy as np

from linmem.units import PAGE_SHIFT

NR_PAGE_ORDERS = 11
MAX_PAGE_ORDER = 10
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER
PAGE_ALLOC_COSTLY_ORDER = 3
SWAP_CLUSTER_MAX = 32
MIGRATE_PCPTYPES = 3
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8

WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO = 0, 1, 2, 3
NR_WMARK = 4

DEFAULT_LOWMEM_RESERVE_RATIO = {
    "DMA": 256, "DMA32": 256, "Normal": 32, "HighMem": 0, "Movable": 0, "Device": 0,
}


def is_highmem_or_movable(name: str) -> bool:
    return name in ("HighMem", "Movable", "Device")


def is_lowmem(name: str) -> bool:
    """Zones that GFP_USER/GFP_KERNEL can use: up to Normal (gfp_zone(GFP_USER))."""
    return name in ("DMA", "DMA32", "Normal")


def nr_free_buffer_pages(managed, high, names) -> int:
    """Pages above the high watermark in the zones GFP_USER may use.

    Models mm/page_alloc.c:nr_free_buffer_pages -> nr_free_zone_pages.
    """
    return int(sum(max(int(m) - int(h), 0)
                   for m, h, n in zip(managed, high, names) if is_lowmem(n)))


def calculate_min_free_kbytes(lowmem_pages: int, user_min_free_kbytes: int = -1,
                              current: int = 0) -> int:
    """The default ``min_free_kbytes``: 4 * sqrt(low memory in KiB), clamped.

    Models mm/page_alloc.c:calculate_min_free_kbytes. A value the user wrote is
    kept unless the new one is larger.
    """
    lowmem_kbytes = lowmem_pages << (PAGE_SHIFT - 10)
    new = isqrt(lowmem_kbytes * 16)
    if new > user_min_free_kbytes:
        return min(max(new, 128), 262144)
    return current


def recommended_min_free_kbytes(managed, high, names, min_free_kbytes: int) -> int:
    """``min_free_kbytes`` raised for THP when it is enabled.

    Models mm/khugepaged.c:set_recommended_min_free_kbytes: two free pageblocks
    per populated low zone, plus MIGRATE_PCPTYPES^2 pageblocks for fallbacks,
    at most 5 % of low memory.
    """
    nr_zones = sum(1 for m, n in zip(managed, names) if m > 0 and is_lowmem(n))
    rec = PAGEBLOCK_NR_PAGES * nr_zones * 2
    rec += PAGEBLOCK_NR_PAGES * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    rec = min(rec, nr_free_buffer_pages(managed, high, names) // 20)
    rec <<= PAGE_SHIFT - 10
    return max(rec, min_free_kbytes)


def mult_frac(x: int, n: int, d: int) -> int:
    """The kernel's mult_frac(): x * n / d without overflow, truncating."""
    q, r = divmod(x, d)
    return q * n + (r * n) // d


def setup_per_zone_wmarks(managed, names, min_free_kbytes: int,
                          watermark_scale_factor: int) -> np.ndarray:
    """Watermarks min/low/high/promo of every zone, in pages: shape (nr_zones, 4).

    Models mm/page_alloc.c:__setup_per_zone_wmarks: min_free_kbytes is shared
    among low zones in proportion to their managed pages; HighMem and Movable
    get a small min (managed/1024 clamped to 32..128); the gaps between the
    marks are the larger of min/4 and watermark_scale_factor/10000 of the zone.
    The Device zone is never populated and keeps zeros.
    """
    pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem = sum(int(m) for m, n in zip(managed, names) if not is_highmem_or_movable(n))
    wmarks = np.zeros((len(names), NR_WMARK), dtype=np.int64)
    for zid, (m, name) in enumerate(zip(managed, names)):
        if name == "Device":
            continue
        m = int(m)
        tmp = pages_min * m // lowmem if lowmem else 0
        if is_highmem_or_movable(name):
            wmarks[zid, WMARK_MIN] = min(max(m // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            wmarks[zid, WMARK_MIN] = tmp
        gap = max(tmp >> 2, mult_frac(m, watermark_scale_factor, 10000))
        wmarks[zid, WMARK_LOW] = wmarks[zid, WMARK_MIN] + gap
        wmarks[zid, WMARK_HIGH] = wmarks[zid, WMARK_LOW] + gap
        wmarks[zid, WMARK_PROMO] = wmarks[zid, WMARK_HIGH] + gap
    return wmarks


def setup_per_zone_lowmem_reserve(managed, ratios) -> np.ndarray:
    """``lowmem_reserve[i][j]``: pages zone i keeps from allocations that may use zone j.

    Models mm/page_alloc.c:setup_per_zone_lowmem_reserve: the managed pages of
    the zones above i up to j, divided by lowmem_reserve_ratio[i]; zero for
    j <= i, for a ratio of 0 and for an empty zone i.
    """
    n = len(managed)
    reserve = np.zeros((n, n), dtype=np.int64)
    for i in range(n - 1):
        ratio = int(ratios[i])
        clear = ratio <= 0 or int(managed[i]) == 0
        upper = 0
        for j in range(i + 1, n):
            upper += int(managed[j])
            reserve[i, j] = 0 if clear else upper // ratio
    return reserve


def calculate_totalreserve_pages(managed, lowmem_reserve, high) -> int:
    """Pages the kernel treats as not available to userspace.

    Models mm/page_alloc.c:calculate_totalreserve_pages: per zone the largest
    lowmem_reserve plus the high watermark, at most the zone's managed pages.
    """
    total = 0
    for i, m in enumerate(managed):
        r = int(max(lowmem_reserve[i, i:].max(initial=0), 0)) + int(high[i])
        total += min(r, int(m))
    return total


def zone_batchsize(managed: int) -> int:
    """The per-cpu list batch: about a quarter of managed/1024, at most 63.

    Models mm/page_alloc.c:zone_batchsize (CONFIG_MMU).
    """
    batch = min(managed >> 10, (1 << 20) >> PAGE_SHIFT) // 4
    batch = max(batch, 1)
    return (1 << ((batch + batch // 2).bit_length() - 1)) - 1


def zone_highsize(managed: int, low_wmark: int, batch: int, nr_cpus: int,
                  high_fraction: int) -> int:
    """The per-cpu list high mark of one CPU.

    Models mm/page_alloc.c:zone_highsize: the low watermark (or managed /
    percpu_pagelist_high_fraction) split over the node's CPUs, at least 4 batches.
    """
    total = low_wmark if not high_fraction else managed // high_fraction
    return max(total // nr_cpus, batch << 2)


def pcp_high_and_batch(managed: int, low_wmark: int, nr_cpus: int,
                       high_fraction: int) -> tuple[int, int, int]:
    """(batch, high_min, high_max) of a zone's per-cpu lists.

    Models mm/page_alloc.c:zone_set_pageset_high_and_batch (6.7+ auto-tuning
    bounds; a set percpu_pagelist_high_fraction pins high_min = high_max).
    """
    batch = max(1, zone_batchsize(managed))
    if high_fraction:
        high = zone_highsize(managed, low_wmark, batch, nr_cpus, high_fraction)
        return batch, high, high
    return (batch, zone_highsize(managed, low_wmark, batch, nr_cpus, 0),
            zone_highsize(managed, low_wmark, batch, nr_cpus,
                          MIN_PERCPU_PAGELIST_HIGH_FRACTION))


def calculate_normal_threshold(managed: int, nr_cpus: int) -> int:
    """The vmstat per-cpu counter threshold shown in /proc/zoneinfo.

    Models mm/vmstat.c:calculate_normal_threshold.
    """
    mem = managed >> (27 - PAGE_SHIFT)
    return min(125, 2 * nr_cpus.bit_length() * (1 + mem.bit_length()))
