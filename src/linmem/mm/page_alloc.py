"""The zoned buddy allocator: boot, watermarks, allocation and freeing.

Free memory of each zone is kept in power-of-two blocks of 2^order pages,
orders 0 to 10 (4 KiB to 4 MiB), on one free list per (order, migratetype).
A block of order k at pfn p has its buddy at p ^ (1 << k)::

    order 2:  [p .. p+3] [p+4 .. p+7]      buddies: p ^ 4
    order 3:  [p ....................p+7]  after a merge

Allocating order k takes the first block of the smallest order >= k on the
requested migratetype's list and splits it (``expand``), returning the upper
halves to lower lists. Freeing merges with the buddy as long as it is free with
the same order (``__free_one_page``). Pageblocks (512 pages) carry a
migratetype; when a type's lists are empty the allocator claims or steals from
another type (the fallback), preferring large blocks to limit fragmentation.

Small orders (0-3) and THP (order 9) go through per-cpu lists first: frees
land there and are returned in batches; allocations refill them in batches.
Their pages are not counted in NR_FREE_PAGES, which is why MemFree and the free
lists of a real machine never add up to the same number as "free + pcp".

An allocation walks the zonelist (Normal, DMA32, DMA) from the highest zone its
GFP mask allows; a zone serves it only if, after it, the free pages stay above
the zone's watermark plus the lowmem_reserve it keeps against that request
(``zone_watermark_fast``). The fast path uses the low watermark; the slow path
wakes kswapd and retries at min, drains the per-cpu lists, reclaims
(linmem.mm.vmscan) and finally calls the OOM killer.

Kernel: mm/page_alloc.c, mm/mm_init.c (Linux 6.18). Compiled parts are in
``linmem.engine.buddy``; this module sets them up and holds the policy.

Deviations from Linux (``XXX``):
* no compaction: the slow path goes straight from reclaim to the OOM killer;
* no NUMA: one node, so no ALLOC_NOFRAGMENT spreading to remote nodes;
* the per-cpu high mark is auto-tuned on alloc/free as 6.7+ does, but the
  periodic decay (``decay_pcp_high`` from vmstat_update) is not modelled;
* without a reclaim hook (a machine with no processes) or when the OOM killer
  finds no victim, a failed allocation fails (returns ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linmem.engine import buddy as B
from linmem.mm import gfp as G
from linmem.mm import mmzone
from linmem.mm.frames import PG_reserved, FrameTable
from linmem.mm.memblock import PAGES_PER_SECTION, BootLayout
from linmem.engine.state import KernelState
from linmem.mm.vmstat import NR_FREE_PAGES, NR_NODE_ITEMS, NR_VM_EVENTS, NR_ZONE_ITEMS, vm_event

MAX_RECLAIM_RETRIES = 16


@dataclass
class Zone:
    """The static facts of one zone; its changing state lives in the arrays."""

    zid: int
    name: str
    start_pfn: int
    spanned: int
    present: int

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.spanned

    @property
    def populated(self) -> bool:
        return self.present > 0


class PageAllocator:
    """The buddy allocator of one node, with its zones and per-cpu lists."""

    def __init__(self, layout: BootLayout, nr_cpus: int, frames: FrameTable):
        self.layout = layout
        self.nr_cpus = nr_cpus
        self.frames = frames
        self.zone_names = layout.zone_names
        self.zones = [Zone(z, name, layout.zone_span(z)[0], layout.spanned(z),
                           layout.present(z)) for z, name in enumerate(layout.zone_names)]
        nz = len(self.zones)
        self.S = KernelState(
            flags=frames.flags, refcount=frames.refcount, order=frames.order,
            nxt=frames.lru_next, prv=frames.lru_prev, mapcount=frames.mapcount,
            mapping=frames.mapping, index=frames.index, memcg=frames.memcg,
            node_stat=np.zeros(NR_NODE_ITEMS, dtype=np.int64),
            pb_mt=np.full((frames.nr_frames >> B.PAGEBLOCK_ORDER) + 1, B.MIGRATE_MOVABLE,
                          dtype=np.uint8),
            zs=np.zeros((nz, B.NR_ZS_FIELDS), dtype=np.int64),
            fhead=np.full((nz, B.NR_PAGE_ORDERS, B.MIGRATE_TYPES), -1, dtype=np.int32),
            ftail=np.full((nz, B.NR_PAGE_ORDERS, B.MIGRATE_TYPES), -1, dtype=np.int32),
            nfree=np.zeros((nz, B.NR_PAGE_ORDERS, B.MIGRATE_TYPES), dtype=np.int64),
            zstat=np.zeros((nz, NR_ZONE_ITEMS), dtype=np.int64),
            events=np.zeros(NR_VM_EVENTS, dtype=np.int64),
            pcp=np.zeros((nz, nr_cpus, B.NR_P_FIELDS), dtype=np.int64),
            phead=np.full((nz, nr_cpus, B.NR_PCP_LISTS), -1, dtype=np.int32),
            ptail=np.full((nz, nr_cpus, B.NR_PCP_LISTS), -1, dtype=np.int32),
            kswapd_wake=np.zeros(nz, dtype=np.int64),
            tunables=np.array([B.WATERMARK_BOOST_FACTOR_DEFAULT, 0, nz, 0], dtype=np.int64),
        )
        for z in self.zones:
            self.S.zs[z.zid, B.ZS_START] = z.start_pfn
            self.S.zs[z.zid, B.ZS_END] = z.end_pfn
            self.S.zs[z.zid, B.ZS_PRESENT] = z.present
        self.totalreserve_pages = 0
        self.pcp_used = np.zeros((nz, nr_cpus), dtype=bool)
        self.lowmem_reserve = np.zeros((nz, nz), dtype=np.int64)
        self.alloc_failures = 0
        self.reclaim = None          # linmem.mm.vmscan.Reclaim, once there is anything to reclaim
        self.out_of_memory = None    # the OOM killer: (order, gfp) -> True when it freed memory
        self.kswapd_listeners: list = []   # called with ("wake"|"sleep", dict) around each run

    # ------------------------------------------------------------------ boot

    def boot(self) -> None:
        """Reserve what memblock kept, then free the rest into the buddy lists.

        Models mm/mm_init.c:memmap_init (every frame starts reserved) and
        mm/memblock.c:memblock_free_all (free ranges are released, zone by zone,
        in maximal aligned blocks, to the tail of the lists).
        """
        f = self.frames
        if f.nr_frames < B.PAGEBLOCK_NR_PAGES * B.MIGRATE_TYPES:
            self.S.tunables[B.T_MOBILITY_DISABLED] = 1
        free = self.layout.free_ranges()
        pos = 0
        for start, end in free + [(f.nr_frames, f.nr_frames)]:
            # Frames outside the free ranges (holes, reservations) stay reserved,
            # with the reference memmap_init gives them. Free frames are left
            # untouched (zero) so that their memory is never made resident.
            f.flags[pos:start] = PG_reserved
            f.refcount[pos:start] = 1
            pos = end
        for start, end in free:
            for z in self.zones:
                lo, hi = max(start, z.start_pfn), min(end, z.end_pfn)
                if lo < hi:
                    B.free_boot_range(self.S.ref, z.zid, lo, hi)
        for z in self.zones:
            self.S.zs[z.zid, B.ZS_MANAGED] = self.S.zstat[z.zid, NR_FREE_PAGES]

    # ---------------------------------------------------------- watermarks

    @property
    def managed(self) -> np.ndarray:
        return self.S.zs[:, B.ZS_MANAGED].copy()

    def watermarks(self) -> np.ndarray:
        """Raw watermarks (min, low, high, promo) per zone, without boost."""
        return self.S.zs[:, B.ZS_WMARK:B.ZS_WMARK + 4].copy()

    def default_min_free_kbytes(self, thp_enabled: bool) -> int:
        """min_free_kbytes as the kernel sets it at boot.

        Models init_per_zone_wmark_min -> calculate_min_free_kbytes (the
        watermarks are still zero then) and, when THP is enabled, khugepaged's
        start-up set_recommended_min_free_kbytes (with the first watermarks set).
        """
        managed = self.managed
        zeros = np.zeros(len(managed), dtype=np.int64)
        value = mmzone.calculate_min_free_kbytes(
            mmzone.nr_free_buffer_pages(managed, zeros, self.zone_names))
        if thp_enabled:
            wm = mmzone.setup_per_zone_wmarks(managed, self.zone_names, value, 10)
            value = mmzone.recommended_min_free_kbytes(
                managed, wm[:, mmzone.WMARK_HIGH], self.zone_names, value)
        return value

    def setup_per_zone_wmarks(self, min_free_kbytes: int, watermark_scale_factor: int,
                              high_fraction: int) -> None:
        """Models setup_per_zone_wmarks(): marks, totalreserve, then pcp sizes."""
        wm = mmzone.setup_per_zone_wmarks(self.managed, self.zone_names,
                                          min_free_kbytes, watermark_scale_factor)
        self.S.zs[:, B.ZS_WMARK:B.ZS_WMARK + 4] = wm
        self.S.zs[:, B.ZS_BOOST] = 0
        self._update_totalreserve()
        self.zone_pcp_update(high_fraction)

    def setup_per_zone_lowmem_reserve(self, ratios) -> None:
        """Models setup_per_zone_lowmem_reserve() and calculate_totalreserve_pages()."""
        self.lowmem_reserve = mmzone.setup_per_zone_lowmem_reserve(self.managed, ratios)
        nz = len(self.zones)
        self.S.zs[:, B.ZS_LOWMEM_RESERVE:B.ZS_LOWMEM_RESERVE + nz] = self.lowmem_reserve
        self._update_totalreserve()

    def _update_totalreserve(self) -> None:
        self.totalreserve_pages = mmzone.calculate_totalreserve_pages(
            self.managed, self.lowmem_reserve, self.S.zs[:, B.ZS_WMARK + mmzone.WMARK_HIGH])

    def zone_pcp_update(self, high_fraction: int) -> None:
        """Models zone_pcp_update() -> zone_set_pageset_high_and_batch() for all zones."""
        for z in self.zones:
            low = int(self.S.zs[z.zid, B.ZS_WMARK + mmzone.WMARK_LOW])
            batch, high_min, high_max = mmzone.pcp_high_and_batch(
                int(self.S.zs[z.zid, B.ZS_MANAGED]), low, self.nr_cpus, high_fraction)
            p = self.S.pcp[z.zid]
            p[:, B.P_BATCH] = batch
            p[:, B.P_HIGH_MIN] = high_min
            p[:, B.P_HIGH_MAX] = high_max

    def wmark(self, zid: int, which: int) -> int:
        """``wmark_pages(zone, which)``: the raw mark plus the boost."""
        return int(self.S.zs[zid, B.ZS_WMARK + which] + self.S.zs[zid, B.ZS_BOOST])

    # ---------------------------------------------------------- allocation

    def zonelist(self, highest_zoneidx: int) -> np.ndarray:
        """Populated zones from ``highest_zoneidx`` down (one node's zonelist)."""
        return np.array([z.zid for z in reversed(self.zones[:highest_zoneidx + 1])
                         if z.populated], dtype=np.int64)

    def alloc_flags_nofragment(self, preferred: int, gfp: int) -> int:
        """Models alloc_flags_nofragment(): ALLOC_KSWAPD, and ALLOC_NOFRAGMENT
        when the preferred zone is Normal and a DMA32 zone exists."""
        flags = B.ALLOC_KSWAPD if gfp & G._GFP_KSWAPD_RECLAIM else 0
        if self.zone_names[preferred] == "Normal" and "DMA32" in self.zone_names:
            flags |= B.ALLOC_NOFRAGMENT
        return flags

    def gfp_to_alloc_flags(self, gfp: int, order: int) -> int:
        """Models gfp_to_alloc_flags() (6.3+ reserve semantics)."""
        flags = B.ALLOC_WMARK_MIN | B.ALLOC_CPUSET
        if gfp & G._GFP_HIGH:
            flags |= B.ALLOC_MIN_RESERVE
        if gfp & G._GFP_KSWAPD_RECLAIM:
            flags |= B.ALLOC_KSWAPD
        if not gfp & G._GFP_DIRECT_RECLAIM:
            if not gfp & G._GFP_NOMEMALLOC:
                flags |= B.ALLOC_NON_BLOCK
                if order > 0:
                    flags |= B.ALLOC_HIGHATOMIC
            if flags & B.ALLOC_MIN_RESERVE:
                flags &= ~B.ALLOC_CPUSET
        return flags

    def alloc_pages(self, order: int, gfp: int = G.GFP_KERNEL, cpu: int = 0) -> int | None:
        """Allocate 2^order contiguous frames; return the first pfn, or None.

        Models __alloc_pages(): the fast path at the low watermark, then
        __alloc_pages_slowpath().
        """
        if not 0 <= order <= B.MAX_PAGE_ORDER:
            raise ValueError(f"order {order} is outside 0..{B.MAX_PAGE_ORDER}")
        if not 0 <= cpu < self.nr_cpus:
            raise ValueError(f"cpu {cpu} is outside 0..{self.nr_cpus - 1}")
        highest = G.gfp_zone(gfp, self.zone_names)
        zonelist = self.zonelist(highest)
        if len(zonelist) == 0:
            return None
        mt = G.gfp_migratetype(gfp)
        flags = B.ALLOC_WMARK_LOW | self.alloc_flags_nofragment(int(zonelist[0]), gfp)
        pfn, zid = B.get_page_from_freelist(self.S.ref, zonelist, order, mt, highest, flags, cpu)
        if pfn < 0:
            pfn, zid = self._slowpath(zonelist, order, gfp, mt, highest, cpu)
        self._service_kswapd()
        if pfn < 0:
            return None
        self.pcp_used[zid, cpu] = True
        return int(pfn)

    def _slowpath(self, zonelist, order, gfp, mt, highest, cpu):
        """Models __alloc_pages_slowpath() up to reclaim.

        Wakes kswapd, retries at the min watermark; a request that may reclaim
        then drains the per-cpu lists (what __alloc_pages_direct_reclaim does
        when reclaim brought no page) and retries once more.
        Then direct reclaim (linmem.mm.vmscan) until it brings a page;
        after MAX_RECLAIM_RETRIES rounds without progress, the OOM killer
        (should_reclaim_retry, __alloc_pages_may_oom), and again.
        XXX: no compaction; retries count rounds without progress only.
        """
        flags = self.gfp_to_alloc_flags(gfp, order)
        if flags & B.ALLOC_KSWAPD:
            self.wake_all_kswapds(order, zonelist)
        pfn, zid = B.get_page_from_freelist(self.S.ref, zonelist, order, mt, highest, flags, cpu)
        if pfn >= 0 or not gfp & G._GFP_DIRECT_RECLAIM:
            if pfn < 0:
                self.alloc_failures += 1
            return pfn, zid
        self.S.events[vm_event("allocstall_dma") + highest] += 1
        self.drain_all_pages()
        pfn, zid = B.get_page_from_freelist(self.S.ref, zonelist, order, mt, highest, flags, cpu)
        no_progress = 0
        while pfn < 0 and self.reclaim is not None:
            # __alloc_pages_direct_reclaim, should_reclaim_retry, then the OOM killer
            progress = self.reclaim.try_to_free_pages()
            self.drain_all_pages()
            pfn, zid = B.get_page_from_freelist(self.S.ref, zonelist, order, mt, highest,
                                                flags, cpu)
            no_progress = 0 if progress else no_progress + 1
            if pfn < 0 and no_progress >= MAX_RECLAIM_RETRIES:
                if self.out_of_memory is None or not self.out_of_memory(order, gfp):
                    break
                no_progress = 0
        if pfn < 0:
            self.alloc_failures += 1
        return pfn, zid

    def wake_all_kswapds(self, order: int, zonelist) -> None:
        """Models wake_all_kswapds(): one request per node, for the first zone."""
        self.S.kswapd_wake[int(zonelist[0])] = order + 1

    def _service_kswapd(self) -> None:
        """Let kswapd act on pending wake requests: balance_pgdat
        (linmem.mm.vmscan) for the highest zone asked for, counted in
        pageoutrun; a round ends by clearing every watermark boost (its
        "if (boosted)" epilogue). ``kswapd_listeners`` hear of each run:
        ("wake", zone and order asked) before it, ("sleep", pages scanned and
        reclaimed, the final priority, whether the node is balanced) after.

        XXX: kswapd runs here, right after the allocation that woke it.
        """
        if not self.S.kswapd_wake.any():
            return
        highest = int(np.flatnonzero(self.S.kswapd_wake).max())
        order = int(self.S.kswapd_wake[highest]) - 1      # a boosted-watermark wake asks order 0
        self.S.kswapd_wake[:] = 0
        if self.reclaim is not None and self.reclaim.machine.node_unreclaimable:
            return              # wakeup_kswapd: a hopeless node is left to direct reclaim
        self.S.events[vm_event("pageoutrun")] += 1
        if self.kswapd_listeners:
            self._kswapd_trace("wake", {"zone": self.zone_names[highest], "order": max(order, 0)})
        ev = self.S.events
        scanned, stolen = int(ev[vm_event("pgscan_kswapd")]), int(ev[vm_event("pgsteal_kswapd")])
        if self.reclaim is not None:
            self.reclaim.kswapd(highest)
        self.S.zs[:, B.ZS_BOOST] = 0
        if self.kswapd_listeners:
            self._kswapd_trace("sleep", {
                "zone": self.zone_names[highest],
                "scanned": int(ev[vm_event("pgscan_kswapd")]) - scanned,
                "reclaimed": int(ev[vm_event("pgsteal_kswapd")]) - stolen,
                "priority": getattr(self.reclaim, "kswapd_priority", None),
                "balanced": bool(self.reclaim.balanced(highest)) if self.reclaim else None})

    def _kswapd_trace(self, what: str, info: dict) -> None:
        """The tracepoints mm_vmscan_kswapd_wake and mm_vmscan_kswapd_sleep:
        each listener is called with ("wake" | "sleep", info)."""
        for listener in self.kswapd_listeners:
            listener(what, info)

    def free_pages(self, pfn: int, order: int, cpu: int = 0) -> None:
        """Free a block allocated with ``alloc_pages`` (models __free_pages())."""
        if not 0 <= pfn < self.frames.nr_frames:
            raise ValueError(f"pfn {pfn} is outside the machine")
        if not B.free_pages(self.S.ref, pfn, order, cpu):
            raise ValueError(f"pfn {pfn} is not allocated (double free?)")

    def drain_all_pages(self) -> None:
        """Models drain_all_pages(): every cpu's pcp lists back to the buddy."""
        for z in self.zones:
            for cpu in range(self.nr_cpus):
                B.drain_zone_cpu(self.S.ref, z.zid, cpu)

    # ------------------------------------------------------------- queries

    def nr_free_pages(self, zid: int | None = None) -> int:
        """NR_FREE_PAGES of one zone, or of all."""
        col = self.S.zstat[:, NR_FREE_PAGES]
        return int(col.sum() if zid is None else col[zid])

    def pcp_pages(self, zid: int | None = None) -> int:
        """Pages sitting on per-cpu lists (``free_pcp`` of show_mem)."""
        counts = self.S.pcp[:, :, B.P_COUNT]
        return int(counts.sum() if zid is None else counts[zid].sum())

    def free_area_nr_free(self, zid: int) -> np.ndarray:
        """``free_area[order].nr_free`` of a zone: blocks per order, all types."""
        return self.S.nfree[zid].sum(axis=1)

    def pageblock_counts(self, zid: int) -> np.ndarray:
        """Pageblocks of each migratetype in a zone (pagetypeinfo's second table).

        Models pagetypeinfo_showblockcount_print(): pageblocks from the zone's
        start, skipping sections without memory (pfn_to_online_page is NULL).
        """
        z = self.zones[zid]
        if not z.populated:
            return np.zeros(B.MIGRATE_TYPES, dtype=np.int64)
        starts = np.arange(z.start_pfn, z.end_pfn, B.PAGEBLOCK_NR_PAGES)
        section = PAGES_PER_SECTION
        online = np.zeros(len(starts), dtype=bool)
        for lo, hi in self.layout.memory:
            online |= (starts // section >= lo // section) & (starts // section <= (hi - 1) // section)
        types = self.S.pb_mt[starts[online] >> B.PAGEBLOCK_ORDER]
        return np.bincount(types, minlength=B.MIGRATE_TYPES)[:B.MIGRATE_TYPES]
