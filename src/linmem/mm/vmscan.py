"""Page reclaim: kswapd and direct reclaim over the LRU lists (mm/vmscan.c).

When an allocation finds a zone below its low watermark it wakes kswapd,
which reclaims until every zone it was asked about is above its high
watermark (balance_pgdat), lowering the scan priority from 12 (scan 1/4096
of each list per round) to 0 (all of it). An allocation that still finds
nothing above the min watermark reclaims itself (try_to_free_pages: a batch
of SWAP_CLUSTER_MAX pages, priorities 12 down to 0), retries, and after
MAX_RECLAIM_RETRIES rounds without progress calls the OOM killer.

Each round (shrink_lruvec) scans the lists get_scan_count picks, in batches
of 32 pages: the inactive file list (shrink_inactive_list), and the active
file list only while the inactive one is too small (inactive_is_low: inactive
x sqrt(10 x GiB of the lists) < active). The compiled scans are in
linmem.engine.vmscan. Counters: pgscan/pgsteal (kswapd, direct, file),
pgdeactivate, pgrefill, pgactivate, allocstall, pageoutrun.

XXX: no swap yet, so anonymous memory is never scanned (get_scan_count's
SCAN_FILE when there is no swap space); mapped file pages are not unmapped
(no reverse mapping yet); kswapd runs as soon as it is woken, in the waker's
time.
"""

from __future__ import annotations

import math

import numpy as np

from linmem.engine import vmscan as E
from linmem.mm.mmzone import WMARK_HIGH
from linmem.mm.vmstat import node_item, vm_event

SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
MAX_RECLAIM_RETRIES = 16

NR_INACTIVE_FILE = node_item("nr_inactive_file")
NR_ACTIVE_FILE = node_item("nr_active_file")


def inactive_is_low(inactive: int, active: int) -> bool:
    """Models inactive_is_low(): the inactive list is too small when
    inactive x inactive_ratio < active, inactive_ratio = int_sqrt(10 x GiB)
    (1 below 1 GiB)."""
    gb = (inactive + active) >> (30 - 12)
    ratio = math.isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


class Reclaim:
    """The node's reclaim: kswapd and direct reclaim on one machine."""

    def __init__(self, machine):
        self.machine = machine
        self.S = machine.page_alloc.S
        self.events = self.S.events

    def _lists(self) -> tuple[int, int]:
        node = self.S.node_stat
        return int(node[NR_INACTIVE_FILE]), int(node[NR_ACTIVE_FILE])

    def shrink_lruvec(self, nr_to_reclaim: int, priority: int, stats: np.ndarray) -> None:
        """Models shrink_lruvec() with get_scan_count()'s SCAN_FILE: scan each
        file list's size >> priority pages in batches of 32, the active list
        only while the inactive one is low; stop once enough is reclaimed."""
        inactive, active = self._lists()
        left_inactive, left_active = inactive >> priority, active >> priority
        ref = self.S.ref
        while left_inactive > 0 or left_active > 0:
            batch = min(left_inactive, SWAP_CLUSTER_MAX)
            left_inactive -= batch
            if batch:
                E.shrink_inactive_file(ref, 0, batch, stats)
            batch = min(left_active, SWAP_CLUSTER_MAX)
            left_active -= batch
            if batch and inactive_is_low(*self._lists()):
                self.events[vm_event("pgrefill")] += E.shrink_active_file(ref, 0, batch, stats)
            if stats[E.S_RECLAIMED] >= nr_to_reclaim:
                break

    def _account(self, stats: np.ndarray, who: str) -> None:
        ev = self.events
        ev[vm_event(f"pgscan_{who}")] += stats[E.S_SCANNED]
        ev[vm_event(f"pgsteal_{who}")] += stats[E.S_RECLAIMED]
        ev[vm_event("pgscan_file")] += stats[E.S_SCANNED]
        ev[vm_event("pgsteal_file")] += stats[E.S_RECLAIMED]
        ev[vm_event("pgactivate")] += stats[E.S_ACTIVATED]
        ev[vm_event("pgdeactivate")] += stats[E.S_DEACTIVATED]

    def try_to_free_pages(self) -> int:
        """Models try_to_free_pages() -> do_try_to_free_pages(): direct
        reclaim of SWAP_CLUSTER_MAX pages, priority 12 down to 0. Returns
        the pages reclaimed."""
        stats = np.zeros(E.NR_SCAN_STATS, dtype=np.int64)
        for priority in range(DEF_PRIORITY, -1, -1):
            self.shrink_lruvec(SWAP_CLUSTER_MAX, priority, stats)
            if stats[E.S_RECLAIMED] >= SWAP_CLUSTER_MAX:
                break
        self._account(stats, "direct")
        return int(stats[E.S_RECLAIMED])

    def balanced(self, highest_zoneidx: int) -> bool:
        """Models pgdat_balanced(): a zone up to the class zone passes
        zone_watermark_ok_safe() at its high watermark, with the
        lowmem_reserve it keeps against allocations for the class zone."""
        pa = self.machine.page_alloc
        for zid in range(highest_zoneidx + 1):
            if not (pa.zones[zid].populated and pa.managed[zid]):
                continue
            mark = pa.wmark(zid, WMARK_HIGH) + int(pa.lowmem_reserve[zid, highest_zoneidx])
            if pa.nr_free_pages(zid) > mark:
                return True
        return False

    def kswapd(self, highest_zoneidx: int) -> int:
        """Models balance_pgdat(): reclaim, priority 12 down to 1, until the
        node is balanced for the zone kswapd was woken for; the pages reclaimed.
        A run that reclaims nothing counts a kswapd failure."""
        pa = self.machine.page_alloc
        stats = np.zeros(E.NR_SCAN_STATS, dtype=np.int64)
        for priority in range(DEF_PRIORITY, 0, -1):
            if self.balanced(highest_zoneidx):
                break
            target = sum(max(pa.wmark(z, WMARK_HIGH), SWAP_CLUSTER_MAX)
                         for z in range(highest_zoneidx + 1) if pa.zones[z].populated)
            self.shrink_lruvec(target, priority, stats)
        self._account(stats, "kswapd")
        if stats[E.S_RECLAIMED] == 0 and not self.balanced(highest_zoneidx):
            self.machine.kswapd_failures += 1
        elif stats[E.S_RECLAIMED]:
            self.machine.kswapd_failures = 0
        return int(stats[E.S_RECLAIMED])
