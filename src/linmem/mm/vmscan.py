"""Page reclaim: kswapd and direct reclaim over the LRU lists (mm/vmscan.c).

When an allocation finds a zone below its low watermark it wakes kswapd,
which reclaims until every zone it was asked about is above its high
watermark (balance_pgdat), lowering the scan priority from 12 (scan 1/4096
of each list per round) to 1. An allocation that still finds nothing above
the min watermark reclaims itself (try_to_free_pages: a batch of
SWAP_CLUSTER_MAX pages, priorities 12 down to 0), retries, and after
MAX_RECLAIM_RETRIES rounds without progress calls the OOM killer.

Each round (shrink_node -> shrink_lruvec) first decides how hard to press on
anonymous and on file memory (get_scan_count):

* no free swap: file only (SCAN_FILE);
* priority 0 with swappiness > 0: both lists by size (SCAN_EQUAL);
* file nearly gone (file + free below the high watermarks while the
  inactive anon list is not low): anon only (file_is_tiny, SCAN_ANON);
* enough inactive file pages that are not refaulting: file only
  (cache_trim_mode);
* else each type in proportion to swappiness (0-200) over the cost of
  reclaiming it (anon_cost, file_cost: the I/O and rotations that
  lru_note_cost recorded, decayed by half whenever they pass a quarter of
  the LRU): ap = swappiness x (T + 1) / (anon_cost' + 1),
  fp = (200 - swappiness) x (T + 1) / (file_cost' + 1), with
  anon_cost' = total + anon_cost, file_cost' = total + file_cost,
  T = anon_cost' + file_cost'.

Each list's share, size >> priority, is then scanned in batches of 32
(shrink_list): the inactive lists by shrink_inactive_list, the active ones
by shrink_active_list when deactivation is allowed (may_deactivate: the
inactive list is low, inactive x int_sqrt(10 x GiB) < active, or that
type's workingset activations moved since the last snapshot). Once enough
is reclaimed, kswapd finishes the scan in proportion (the smaller type
stops, the larger is cut to the same fraction). Afterwards, with swap, the
active anon list is aged when the inactive one is low. The compiled list
scans are in linmem.engine.vmscan.

Swap writes started by a round complete when the round ends (XXX: the
device time of the writes is not simulated; a synchronous device, zram,
completes them at once). Counters: pgscan/pgsteal (kswapd, direct, anon, file),
pgactivate, pgdeactivate, pgrefill, allocstall, pageoutrun, pswpout.

With ``machine: {lru: mglru}`` shrink_node runs the multi-gen LRU instead
(linmem.mm.lru_gen).

XXX: kswapd runs as soon as it is woken, in the waker's time; the only
shrinker is the workingset's (no slab);
PGDAT_WRITEBACK/PGDAT_DIRTY are not tracked (kswapd never writes file pages,
as the kernel prefers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from linmem.engine import lru as L
from linmem.engine import memcontrol as MC
from linmem.engine import swapfile as SW
from linmem.engine import vmscan as E
from linmem.engine.buddy import ZS_PRESENT
from linmem.mm.mmzone import WMARK_HIGH
from linmem.mm.vmstat import node_item, vm_event

SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
MAX_RECLAIM_RETRIES = 16
MAX_SWAPPINESS = 200
SWAPPINESS_ANON_ONLY = MAX_SWAPPINESS + 1
DEACTIVATE_ANON, DEACTIVATE_FILE = 1, 2
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = 0, 1, 2, 3

IA, AA, IF, AF = L.LRU_INACTIVE_ANON, L.LRU_ACTIVE_ANON, L.LRU_INACTIVE_FILE, L.LRU_ACTIVE_FILE
NR_LIST = {lru: node_item(f"nr_{name}") for lru, name in enumerate(L.LRU_NAMES)}
WORKINGSET_ACTIVATE = {0: node_item("workingset_activate_anon"),
                       1: node_item("workingset_activate_file")}
WB_BUFFER = 1 << 16


def inactive_is_low(inactive: int, active: int) -> bool:
    """Models inactive_is_low(): the inactive list is too small when
    inactive x inactive_ratio < active, inactive_ratio = int_sqrt(10 x GiB)
    (1 below 1 GiB)."""
    gb = (inactive + active) >> (30 - 12)
    ratio = math.isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


@dataclass
class ScanControl:
    """struct scan_control, as far as the model needs it."""

    nr_to_reclaim: int
    priority: int = DEF_PRIORITY
    kswapd: bool = False
    may_swap: bool = True
    may_deactivate: int = 0
    skipped_deactivate: bool = False
    force_deactivate: bool = False
    cache_trim_mode: bool = False
    file_is_tiny: bool = False
    anon_cost: int = 0
    file_cost: int = 0
    target: object = None             # the memcg whose limit is reclaimed for; None: global
    memcg_low_reclaim: bool = False
    memcg_low_skipped: bool = False
    memcg_full_walk: bool = False
    proactive: bool = False
    swappiness: int | None = None     # memory.reclaim's swappiness= (201: max), else the sysctl
    stats: np.ndarray = field(default_factory=lambda: np.zeros(E.NR_SCAN_STATS, dtype=np.int64))

    @property
    def nr_reclaimed(self) -> int:
        return int(self.stats[E.S_RECLAIMED])


class Reclaim:
    """The node's reclaim: kswapd and direct reclaim on one machine."""

    def __init__(self, machine, rmap=None):
        self.machine = machine
        self.S = machine.page_alloc.S
        self.events = self.S.events
        self.rmap = rmap                       # linmem.mm.rmap.RmapIndex, or None
        self.wb = np.zeros(WB_BUFFER + 1, dtype=np.int64)
        self._shadow_nodes = 0           # shadow-only nodes at the last count
        self._shadow_clock = 0           # the nonresident clock then
        self.memcgs = None               # the memory controller (linmem.mm.memcontrol)
        self.lru_gen = None
        if machine.lru == "mglru":                  # the multi-gen LRU instead of the lists
            from linmem.mm.lru_gen import LruGen
            self.lru_gen = LruGen(self)

    # ------------------------------------------------------------ helpers

    def size(self, lru: int, memcg: int = 0) -> int:
        """The pages on one list of a memcg's lruvec (lruvec_lru_size; the
        root's holds the pages charged to no other memcg)."""
        return int(self.S.mstat[memcg, MC.MS_LRU + lru])

    def lruvec_size(self, lru: int, memcg: int = 0) -> int:
        """The lruvec statistic: one list over the memcg's subtree (the
        root's: the node's)."""
        return int(self.S.mstat[memcg, MC.MS_LRU_H + lru])

    def inactive_is_low(self, file: bool, memcg: int = 0) -> bool:
        base = IF if file else IA
        return inactive_is_low(self.lruvec_size(base, memcg), self.lruvec_size(base + 1, memcg))

    def swappiness(self, sc: ScanControl | None = None) -> int:
        """sc_swappiness(): memory.reclaim's, else vm.swappiness (cgroup v2
        has no per-group swappiness)."""
        if sc is not None and sc.swappiness is not None:
            return sc.swappiness
        return int(self.machine.sysctl["swappiness"])

    def _rows(self) -> np.ndarray:
        if self.rmap is None:
            return np.zeros((0, 6), dtype=np.int64)
        return self.rmap.rows()

    def nr_swap_free(self, memcg: int = 0) -> int:
        """Free swap the memcg may use (mem_cgroup_get_nr_swap_pages)."""
        si = self.S.si
        free = int(si[SW.G_ROW, SW.G_NR_FREE]) if si.shape[0] else 0
        return int(MC.nr_swap_pages(self.S.ref, memcg, free)) if memcg else free

    def total_swap(self) -> int:
        si = self.S.si
        return int(si[SW.G_ROW, SW.G_TOTAL]) if si.shape[0] else 0

    # ---------------------------------------------------- scan decisions

    @staticmethod
    def _target(sc: ScanControl) -> int:
        return sc.target.id if sc.target is not None else 0

    def prepare_scan_control(self, sc: ScanControl) -> None:
        """Models prepare_scan_control() on the target lruvec (the memcg
        reclaimed for, or the node's): the costs, whether each type may be
        deactivated, cache_trim_mode, and for global reclaim file_is_tiny."""
        t = self._target(sc)
        cost = self.S.lrucost[t]
        sc.anon_cost, sc.file_cost = int(cost[L.COST_ANON]), int(cost[L.COST_FILE])
        activations = self.S.mstat[t, MC.MS_ACTIVATE_H:MC.MS_ACTIVATE_H + 2]
        sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE if sc.force_deactivate else 0
        for file, bit, snap in ((0, DEACTIVATE_ANON, L.REFAULTS_ANON),
                                (1, DEACTIVATE_FILE, L.REFAULTS_FILE)):
            if activations[file] != cost[snap] or self.inactive_is_low(bool(file), t):
                sc.may_deactivate |= bit
        sc.cache_trim_mode = bool(self.lruvec_size(IF, t) >> sc.priority) and \
            not (sc.may_deactivate & DEACTIVATE_FILE)
        sc.file_is_tiny = False
        if sc.target is not None:                   # cgroup reclaim: no file_is_tiny
            return
        pa = self.machine.page_alloc
        free = pa.nr_free_pages()
        file = self.lruvec_size(IF) + self.lruvec_size(AF)
        high = sum(pa.wmark(z, WMARK_HIGH) for z in range(len(pa.zones))
                   if pa.zones[z].populated and pa.managed[z])
        sc.file_is_tiny = file + free <= high and not (sc.may_deactivate & DEACTIVATE_ANON) \
            and bool(self.lruvec_size(IA) >> sc.priority)

    def snapshot_refaults(self, sc: ScanControl | None = None) -> None:
        """Models snapshot_refaults(): remember the target lruvec's workingset
        activations."""
        t = self._target(sc) if sc is not None else 0
        cost = self.S.lrucost[t]
        cost[L.REFAULTS_ANON] = self.S.mstat[t, MC.MS_ACTIVATE_H]
        cost[L.REFAULTS_FILE] = self.S.mstat[t, MC.MS_ACTIVATE_H + 1]

    def scan_balance(self, sc: ScanControl, memcg: int = 0) -> tuple[int, int, int]:
        """The choice of get_scan_count(): (balance, anon fraction, file fraction)."""
        swappiness = self.swappiness(sc)
        if not sc.may_swap or self.nr_swap_free(memcg) <= 0:
            return SCAN_FILE, 0, 0
        if sc.target is not None and not swappiness:   # memcg users may turn swap off
            return SCAN_FILE, 0, 0
        if swappiness == SWAPPINESS_ANON_ONLY:         # memory.reclaim swappiness=max
            return SCAN_ANON, 0, 0
        if sc.priority == 0 and swappiness:
            return SCAN_EQUAL, 0, 0
        if sc.file_is_tiny:
            return SCAN_ANON, 0, 0
        if sc.cache_trim_mode:
            return SCAN_FILE, 0, 0
        total = sc.anon_cost + sc.file_cost
        anon_cost = total + sc.anon_cost
        file_cost = total + sc.file_cost
        total = anon_cost + file_cost
        ap = swappiness * (total + 1) // (anon_cost + 1)
        fp = (MAX_SWAPPINESS - swappiness) * (total + 1) // (file_cost + 1)
        return SCAN_FRACT, ap, fp

    def get_scan_count(self, sc: ScanControl, memcg=None) -> list[int]:
        """Models get_scan_count(): pages to scan on each evictable list of
        the memcg's lruvec; a memcg with protection (emin/elow from the
        target) has its scan cut by protection / usage
        (apply_proportional_protection), to no less than SWAP_CLUSTER_MAX."""
        mid = memcg.id if memcg is not None else 0
        balance, ap, fp = self.scan_balance(sc, mid)
        cg = self.memcgs
        emin = elow = 0
        if memcg is not None and cg is not None:
            emin, elow = cg.protection(sc.target or cg.root, memcg)
        nr = [0, 0, 0, 0]
        for lru in (IA, AA, IF, AF):
            file = lru >= IF
            size = self.size(lru, mid)
            if emin or elow:
                if not sc.memcg_low_reclaim and elow > emin:
                    protection = elow
                    sc.memcg_low_skipped = True
                else:
                    protection = emin
                cgroup_size = max(cg.usage(memcg), protection)
                scan = size - size * protection // (cgroup_size + 1)
                scan = max(scan, SWAP_CLUSTER_MAX)
            else:
                scan = size
            scan >>= sc.priority
            if balance == SCAN_FRACT:
                scan = scan * (fp if file else ap) // (ap + fp) if ap + fp else 0
            elif balance in (SCAN_FILE, SCAN_ANON) and (balance == SCAN_FILE) != file:
                scan = 0
            nr[lru] = scan
        return nr

    # -------------------------------------------------------------- scans

    def shrink_lruvec(self, sc: ScanControl, memcg=None) -> None:
        """Models shrink_lruvec() on a memcg's lruvec (the root's when
        ``memcg`` is None): scan get_scan_count's shares in batches of 32
        until done, or (kswapd, memcg reclaim, and global direct reclaim below
        DEF_PRIORITY) in proportion once enough is reclaimed (the
        loop is compiled: linmem.engine.vmscan.shrink_lruvec_lists); then,
        with swap, age the active anon list if the inactive is low."""
        mid = memcg.id if memcg is not None else 0
        nr = np.array(self.get_scan_count(sc, memcg), dtype=np.int64)
        if (nr[AA] and not sc.may_deactivate & DEACTIVATE_ANON) or \
                (nr[AF] and not sc.may_deactivate & DEACTIVATE_FILE):
            sc.skipped_deactivate = True               # shrink_list could not deactivate
        # a global direct reclaim at DEF_PRIORITY scans its whole share: it
        # does not stop once enough is reclaimed (proportional_reclaim)
        proportional = not sc.kswapd and sc.target is None and sc.priority == DEF_PRIORITY
        before = sc.stats.copy()
        rows = self._rows()              # first: it may register a file (a new ref)
        E.shrink_lruvec_lists(self.S.ref, rows, mid, nr, sc.nr_to_reclaim, proportional,
                              sc.may_deactivate, sc.stats, self.wb)
        if self.total_swap() > 0 and self.inactive_is_low(False, mid):
            E.shrink_active_list(self.S.ref, rows, mid, AA, SWAP_CLUSTER_MAX, sc.stats)
        if memcg is not None:
            count_memcg_reclaim(memcg, sc, sc.stats - before)

    def shrink_node(self, sc: ScanControl) -> None:
        """Models shrink_node() on the one node: each memcg's lruvec below
        the target (shrink_node_memcgs; or the multi-gen LRU's
        lru_gen_shrink_node), then shrink_slab (the shadow-node shrinker).
        The swap writes it started complete as it ends (the device is quick
        next to a reclaim round): their folios rotate to the inactive tail."""
        reclaimed = sc.nr_reclaimed
        if self.lru_gen is not None:
            self.lru_gen.shrink_node(sc)            # lru_gen_shrink_node
        else:
            self.prepare_scan_control(sc)
            self.shrink_node_memcgs(sc)
        self.shrink_shadow_nodes(sc)
        E.end_swap_writeback(self.S.ref, self.wb)
        if sc.nr_reclaimed > reclaimed and sc.target is None:
            self.machine.kswapd_failures = 0        # progress revives a dormant kswapd

    def shrink_node_memcgs(self, sc: ScanControl) -> None:
        """Models shrink_node_memcgs(): the memcgs of the target's subtree in
        pre-order (mem_cgroup_iter). A memcg at or below its effective min
        is skipped; one at or below its effective low is skipped unless this
        is the second, low-reclaiming pass (then it counts a low event).
        Direct and memcg reclaim walk from where the last walk for the same
        target stopped and stop once they have reclaimed enough; kswapd
        walks the whole tree."""
        cg = self.memcgs
        if cg is None or len(cg.by_id) == 1:
            self.shrink_lruvec(sc, cg.root if cg is not None else None)
            return
        target = sc.target or cg.root
        cg.calculate_protection(target)
        order = target.subtree()
        partial = not sc.kswapd and not sc.memcg_full_walk
        start = 0
        if partial:
            last = cg.reclaim_cursor.get(target.id)
            ids = [m.id for m in order]
            if last in ids and ids.index(last) + 1 < len(ids):
                start = ids.index(last) + 1
        for memcg in order[start:]:
            if partial:
                cg.reclaim_cursor[target.id] = memcg.id
            if not cg.eligible(target, memcg, sc):
                continue
            self.shrink_lruvec(sc, memcg)
            if partial and sc.nr_reclaimed >= sc.nr_to_reclaim:
                return
        if partial:
            cg.reclaim_cursor.pop(target.id, None)       # the walk reached the end

    def shrink_shadow_nodes(self, sc: ScanControl) -> None:
        """Models the workingset shadow shrinker (count_shadow_nodes,
        scan_shadow_nodes with seeks 0: half the excess per round). Nodes
        holding only shadows become new only by evictions: while the nodes
        last counted plus the pages reclaimed since cannot pass the limit,
        nothing is counted."""
        from linmem.engine import workingset as W
        limit = int(self.S.zs[:, ZS_PRESENT].sum()) >> (W.XA_CHUNK_SHIFT - 3)   # node_present_pages
        ev = self.events
        clock = int(ev[vm_event("pgsteal_kswapd")] + ev[vm_event("pgsteal_direct")] +
                    sc.stats[E.S_RECLAIMED])
        if self._shadow_nodes + clock - self._shadow_clock <= limit:
            return
        cap = self._shadow_nodes + clock - self._shadow_clock + 1
        fids, chunks, stamps = (np.zeros(cap, dtype=np.int64) for _ in range(3))
        ref = self.S.ref
        nodes = int(W.shadow_nodes(ref, fids, chunks, stamps))
        n = min(nodes, cap)
        self.S.node_stat[W.WORKINGSET_NODES] = nodes
        if nodes > limit:
            order = np.argsort(stamps[:n], kind="stable")
            W.free_shadow_nodes(ref, fids, chunks, order, min((nodes - limit) // 2, n))
        self._shadow_nodes = int(self.S.node_stat[W.WORKINGSET_NODES])
        self._shadow_clock = clock

    def _finish(self, sc: ScanControl, who: str) -> None:
        """The pass's swap writes complete; its counts go to vmstat (a
        memcg's reclaim counts pgscan/pgsteal_{kswapd,direct,proactive} and
        pgrefill only in the memcg, the rest also machine-wide)."""
        E.end_swap_writeback(self.S.ref, self.wb)
        st, ev = sc.stats, self.events
        anon_scanned, anon_stolen = st[E.S_SCANNED_ANON], st[E.S_RECLAIMED_ANON]
        if sc.target is None:
            ev[vm_event(f"pgscan_{who}")] += st[E.S_SCANNED]
            ev[vm_event(f"pgsteal_{who}")] += st[E.S_RECLAIMED]
            ev[vm_event("pgrefill")] += st[E.S_REFILL]
        ev[vm_event("pgscan_anon")] += anon_scanned
        ev[vm_event("pgsteal_anon")] += anon_stolen
        ev[vm_event("pgscan_file")] += st[E.S_SCANNED] - anon_scanned
        ev[vm_event("pgsteal_file")] += st[E.S_RECLAIMED] - anon_stolen
        ev[vm_event("pgactivate")] += st[E.S_ACTIVATED]
        ev[vm_event("pgdeactivate")] += st[E.S_DEACTIVATED]
        self.snapshot_refaults(sc)

    # ------------------------------------------------------------ reclaim

    def do_try_to_free_pages(self, sc: ScanControl) -> int:
        """Models do_try_to_free_pages(): priority 12 down to 0 until enough
        is reclaimed. When that freed nothing: once more walking every memcg
        (memcg_full_walk, where the first walk was partial); then, if an
        active list was left alone (skipped_deactivate), with forced
        deactivation; then, if memcgs were skipped for their memory.low,
        reclaiming them too (memcg_low_reclaim). Returns the pages reclaimed."""
        cgroups = self.memcgs is not None and len(self.memcgs.by_id) > 1
        while True:
            for priority in range(DEF_PRIORITY, -1, -1):
                sc.priority = priority
                self.shrink_node(sc)
                if sc.nr_reclaimed >= sc.nr_to_reclaim:
                    break
            if sc.nr_reclaimed:
                break
            if cgroups and not sc.memcg_full_walk:
                sc.memcg_full_walk = True
                continue
            if sc.skipped_deactivate:
                sc.force_deactivate, sc.skipped_deactivate = True, False   # retry, deactivating
                continue
            if sc.memcg_low_skipped:
                sc.force_deactivate = False
                sc.memcg_low_reclaim, sc.memcg_low_skipped = True, False
                continue
            break
        return sc.nr_reclaimed

    def try_to_free_pages(self) -> int:
        """Models try_to_free_pages(): direct reclaim of SWAP_CLUSTER_MAX
        pages from the whole node (every memcg); the pages reclaimed."""
        sc = ScanControl(nr_to_reclaim=SWAP_CLUSTER_MAX)
        self.do_try_to_free_pages(sc)
        self._finish(sc, "direct")
        return sc.nr_reclaimed

    def try_to_free_mem_cgroup_pages(self, memcg, nr_pages: int, may_swap: bool = True,
                                     proactive: bool = False,
                                     swappiness: int | None = None) -> int:
        """Models try_to_free_mem_cgroup_pages(): reclaim at least
        SWAP_CLUSTER_MAX pages from the memcg's subtree (its limit was hit,
        memory.high, or memory.reclaim); the pages reclaimed."""
        sc = ScanControl(nr_to_reclaim=max(nr_pages, SWAP_CLUSTER_MAX), target=memcg,
                         may_swap=may_swap, proactive=proactive, swappiness=swappiness)
        self.do_try_to_free_pages(sc)
        self._finish(sc, "proactive" if proactive else "direct")
        return sc.nr_reclaimed

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

    def kswapd_age_node(self, sc: ScanControl) -> None:
        """Models kswapd_age_node(): with swap, deactivate anon when the
        inactive anon list is low. (MGLRU: lru_gen_age_node, nothing to do
        without min_ttl_ms.)"""
        if self.lru_gen is None and self.total_swap() > 0 and self.inactive_is_low(False):
            rows = self._rows()
            ids = [m.id for m in self.memcgs.memcgs()] if self.memcgs is not None else [0]
            for mid in ids:                         # every memcg's lruvec whose is low
                if self.inactive_is_low(False, mid):
                    E.shrink_active_list(self.S.ref, rows, mid, AA, SWAP_CLUSTER_MAX, sc.stats)

    def kswapd(self, highest_zoneidx: int) -> int:
        """Models balance_pgdat(): reclaim until the node is balanced for the
        zone kswapd was woken for, the priority going from 12 down to 1
        whenever a round scanned less than its target (the high watermarks)
        or reclaimed nothing; the pages reclaimed. A run that reclaims
        nothing counts a kswapd failure."""
        pa = self.machine.page_alloc
        target = sum(max(pa.wmark(z, WMARK_HIGH), SWAP_CLUSTER_MAX)
                     for z in range(highest_zoneidx + 1) if pa.zones[z].populated)
        sc = ScanControl(nr_to_reclaim=target, kswapd=True)
        sc.priority = DEF_PRIORITY
        while sc.priority >= 1 and not self.balanced(highest_zoneidx):
            self.kswapd_age_node(sc)
            scanned, reclaimed = int(sc.stats[E.S_SCANNED]), sc.nr_reclaimed
            self.shrink_node(sc)                      # kswapd_shrink_node
            raise_priority = sc.stats[E.S_SCANNED] - scanned < target
            if raise_priority or sc.nr_reclaimed == reclaimed:
                sc.priority -= 1
        self._finish(sc, "kswapd")
        if sc.nr_reclaimed == 0 and not self.balanced(highest_zoneidx):
            self.machine.kswapd_failures += 1
        elif sc.nr_reclaimed:
            self.machine.kswapd_failures = 0
        self.kswapd_priority = sc.priority        # where the run ended (kswapd_sleep event)
        return sc.nr_reclaimed


RECLAIM_EVENTS = (("pgscan", E.S_SCANNED), ("pgsteal", E.S_RECLAIMED))


def count_memcg_reclaim(memcg, sc: ScanControl, delta: np.ndarray) -> None:
    """The memcg's own reclaim events (__count_memcg_events): pgscan and
    pgsteal by reclaimer, pgrefill, pgactivate, pgdeactivate."""
    who = "kswapd" if sc.kswapd else ("proactive" if sc.proactive else "direct")
    ev = memcg.vm_events
    for name, col in RECLAIM_EVENTS:
        key = f"{name}_{who}"
        ev[key] = ev.get(key, 0) + int(delta[col])
    for name, col in (("pgrefill", E.S_REFILL), ("pgactivate", E.S_ACTIVATED),
                      ("pgdeactivate", E.S_DEACTIVATED)):
        ev[name] = ev.get(name, 0) + int(delta[col])
