"""The multi-gen LRU (mm/vmscan.c CONFIG_LRU_GEN, Documentation/mm/multigen_lru.rst;
Linux 6.18), chosen by a scenario's ``machine: {lru: mglru}``.

Instead of an active and an inactive list per type, each lruvec keeps up to
four generations per type (anon, file), numbered by sequence numbers from
min_seq[type] (oldest) to max_seq (youngest). A folio's generation is in its
flags. New folios enter young (faulted in: max_seq - 1; anon: max_seq - 1)
or old (read(2) page cache: min_seq); accesses through file descriptors
count in the flags and sort folios into *tiers*; page-table accesses are
found by the reverse map, whose look-around promotes the young neighbours
to max_seq. Reclaim (lru_gen_shrink_node -> try_to_shrink_lruvec):

* get_nr_to_scan: should_run_aging decides whether a new generation is
  needed (only MIN_NR_GENS + 1 left: wanted; MIN_NR_GENS: needed); at the
  default priority reclaim does without, else it ages (try_to_inc_max_seq:
  the page-table walk promotes what was used, then a new generation) and
  stops this round; the pages to scan are the evictable types' pages
  >> priority;
* evict_folios, in batches, until that many were scanned, or (root
  reclaim) enough reclaimed, or (kswapd) every zone is above its high
  watermark + MIN_LRU_BATCH (should_abort_scan). The oldest generation of
  the type get_type_to_scan picks is sorted and its unprotected folios
  reclaimed through shrink_folio_list; the PID controller compares the
  refaults of each tier and type (refaulted / evicted + protected) so that
  a type, or a tier, that refaults more is protected.

Swappiness: 0 evicts file only (anon is never swapped, unlike the classic
LRU, which still swaps at priority 0 or when the file LRU is tiny); 1 scans
file first; 200 anon first; in between the controller weighs anon by
swappiness and file by 200 - swappiness. The set_initial_priority of the
kernel starts kswapd at the priority at which the inactive pages >>
priority make the target, 6 to 12.

The compiled side is ``linmem.engine.lru_gen`` (aging, eviction) and
``linmem.engine.mm_inline`` (per-folio helpers, shadows).

XXX: the mm walk visits every PTE table (no Bloom filters, no PMD-mapped
THPs; see linmem.engine.lru_gen); no min_ttl_ms/thrashing prevention; no memcg iteration (one lruvec);
folios rejected by shrink_folio_list are not retried once; runtime
switching of /sys/kernel/mm/lru_gen/enabled is not modelled.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru_gen as E
from linmem.engine import mm_inline as MI
from linmem.engine import vmscan as V
from linmem.mm.mmzone import WMARK_HIGH
from linmem.mm.vmstat import node_item

DEF_PRIORITY = 12
LRU_GEN_ENABLED = 0x0007          # /sys/kernel/mm/lru_gen/enabled: CONFIG_LRU_GEN_ENABLED


def lru_gen_init(K, nr_memcgs: int, nr_zones: int) -> None:
    """Models lru_gen_init_lruvec(): max_seq = MIN_NR_GENS + 1, min_seq 0,
    empty lists, for every lruvec."""
    if nr_zones > MI.NZ:
        raise ValueError(f"MGLRU counts {MI.NZ} zones, the machine has {nr_zones}")
    lrugen = np.zeros((nr_memcgs, MI.NR_LG), dtype=np.int64)
    lrugen[:, MI.LG_ENABLED] = 1
    lrugen[:, MI.LG_MAX_SEQ] = MI.MIN_NR_GENS + 1
    K.replace(lrugen=lrugen,
              lrugen_head=np.full((nr_memcgs, MI.MAX_NR_GENS, 2), -1, dtype=np.int32),
              lrugen_tail=np.full((nr_memcgs, MI.MAX_NR_GENS, 2), -1, dtype=np.int32))


class LruGen:
    """lru_gen_shrink_node and what it calls, for one Reclaim."""

    def __init__(self, reclaim):
        self.reclaim = reclaim
        self.machine = reclaim.machine
        self.S = reclaim.S
        self.batch = np.zeros(E.MIN_LRU_BATCH + 2, dtype=np.int64)

    # ------------------------------------------------------------ policy

    def get_swappiness(self, sc) -> int:
        """Models get_swappiness(): 0 without swap space (or may_swap off)."""
        if not sc.may_swap or self.reclaim.nr_swap_free() < E.MIN_LRU_BATCH:
            return 0
        return self.reclaim.swappiness()

    def set_initial_priority(self, sc) -> None:
        """Models set_initial_priority(): (inactive >> priority) x
        inactive/total = nr_to_reclaim, clamped to 6..12."""
        if sc.priority != DEF_PRIORITY or sc.nr_to_reclaim < E.MIN_LRU_BATCH:
            return
        node = self.S.node_stat
        reclaimable = int(node[node_item("nr_inactive_file")])
        if self.reclaim.nr_swap_free() > 0:
            reclaimable += int(node[node_item("nr_inactive_anon")])
        priority = reclaimable.bit_length() - 1 - (sc.nr_to_reclaim - 1).bit_length()
        sc.priority = min(max(priority, DEF_PRIORITY // 2), DEF_PRIORITY)

    def get_nr_to_scan(self, sc, swappiness: int, memcg: int = 0) -> int:
        """Models get_nr_to_scan(): pages to scan, or 0 / -1 after aging."""
        K = self.S.ref
        max_seq = int(self.S.lrugen[memcg, MI.LG_MAX_SEQ])
        success, nr_to_scan = E.should_run_aging(K, memcg, swappiness)
        if not success or sc.priority == DEF_PRIORITY:
            return int(nr_to_scan) >> sc.priority
        rows = self.reclaim._rows()
        return -1 if E.try_to_inc_max_seq(self.S.ref, rows, memcg, max_seq, swappiness) else 0

    def should_abort_scan(self, sc, start: int) -> bool:
        """Models should_abort_scan(): root reclaim stops with enough
        reclaimed; kswapd once every zone is safely above its high mark."""
        if sc.nr_reclaimed - start >= max(sc.nr_to_reclaim, 2):
            return True
        if not sc.kswapd:
            return False
        pa = self.machine.page_alloc
        for z in range(len(pa.zones)):
            if not (pa.zones[z].populated and pa.managed[z]):
                continue
            if pa.nr_free_pages(z) <= pa.wmark(z, WMARK_HIGH) + E.MIN_LRU_BATCH:
                return False
        return True

    # -------------------------------------------------------------- scans

    def try_to_shrink_lruvec(self, sc, start: int, memcg: int = 0) -> None:
        """Models try_to_shrink_lruvec(): evict in batches until the target
        of get_nr_to_scan is scanned."""
        swappiness = self.get_swappiness(sc)
        scanned = 0
        while True:
            nr_to_scan = self.get_nr_to_scan(sc, swappiness, memcg)
            if nr_to_scan <= 0:
                break
            rows = self.reclaim._rows()
            delta = E.evict_folios(self.S.ref, rows, memcg, nr_to_scan, swappiness, sc.stats,
                                   self.reclaim.wb, self.batch)
            if not delta:
                break
            scanned += int(delta)
            if scanned >= nr_to_scan:
                break
            if self.should_abort_scan(sc, start):
                break

    def shrink_node(self, sc) -> None:
        """Models lru_gen_shrink_node(): each memcg's lruvec below the
        reclaim's target in turn (skipping those within memory.min, and
        within memory.low unless the pass reclaims below low), until enough
        is reclaimed.

        XXX: the kernel orders a root reclaim's memcgs by the memcg LRU
        (shrink_many) and runs a cgroup reclaim through shrink_node_memcgs;
        both walk the tree in pre-order here."""
        start = sc.nr_reclaimed if sc.kswapd else 0
        self.set_initial_priority(sc)
        cg = self.reclaim.memcgs
        if cg is None or len(cg.by_id) == 1:
            self.try_to_shrink_lruvec(sc, start)
        else:
            target = sc.target or cg.root
            cg.calculate_protection(target)
            for memcg in target.subtree():
                if not cg.eligible(target, memcg, sc):
                    continue
                self.try_to_shrink_lruvec(sc, start, memcg.id)
                if self.should_abort_scan(sc, start):
                    break
        V.end_swap_writeback(self.S.ref, self.reclaim.wb)


# ------------------------------------------------------------ inspection

def generations(machine, memcg: int = 0) -> list[tuple[int, int, int, int]]:
    """(seq, age in ms, anon pages, file pages) of every generation, oldest
    first, as /sys/kernel/debug/lru_gen shows them."""
    K = machine.page_alloc.S
    G = K.lrugen[memcg]
    max_seq = int(G[MI.LG_MAX_SEQ])
    min_seq = int(min(G[MI.LG_MIN_SEQ], G[MI.LG_MIN_SEQ + 1]))
    now_ms = int(K.ctl[E.C_NOW_US]) // 1000 if K.ctl.shape[0] > E.C_NOW_US else 0
    out = []
    for seq in range(min_seq, max_seq + 1):
        gen = seq % MI.MAX_NR_GENS
        nr = [0, 0]
        for type_ in range(2):
            if seq < G[MI.LG_MIN_SEQ + type_]:
                continue
            nr[type_] = int(sum(G[MI.nr_idx(gen, type_, z)] for z in range(MI.NZ)))
        age = max(now_ms - int(G[MI.LG_TIMESTAMPS + gen]) // 1000, 0)
        out.append((seq, age, nr[0], nr[1]))
    return out


def debugfs_lru_gen(machine) -> str:
    """The text of /sys/kernel/debug/lru_gen (lru_gen_seq_show, not -full)."""
    lines = ["memcg     0 /", " node     0"]
    for seq, age, anon, file in generations(machine):
        lines.append(f"{seq:>20d} {age:>10d} {anon:>10d} {file:>10d}")
    return "\n".join(lines) + "\n"


def check_lru_gen(machine, seen: np.ndarray) -> np.ndarray:
    """The generation lists agree with the folios' flags and the counters;
    min_seq..max_seq spans 2 to 4 generations and no other generation holds
    a folio. Returns the pages that count as (inactive anon, active anon,
    inactive file, active file)."""
    K = machine.page_alloc.S
    counts, bad = E.walk_lru_gen(K.ref, seen)
    if bad >= 0:
        raise AssertionError(f"pfn {bad} is on the wrong generation list, or a list loops "
                             f"(flags {machine.frames.flag_names(int(bad))})")
    lists = np.zeros(4, dtype=np.int64)
    for cg in range(K.lrugen.shape[0]):
        G = K.lrugen[cg]
        max_seq = int(G[MI.LG_MAX_SEQ])
        nr = G[MI.LG_NR_PAGES:MI.LG_NR_PAGES + MI.MAX_NR_GENS * 2 * MI.NZ]
        if not (nr.reshape(MI.MAX_NR_GENS, 2, MI.NZ) == counts[cg]).all():
            raise AssertionError(f"memcg {cg}: nr_pages {nr.tolist()} but the generation "
                                 f"lists hold {counts[cg].ravel().tolist()}")
        for type_ in range(2):
            min_seq = int(G[MI.LG_MIN_SEQ + type_])
            if not MI.MIN_NR_GENS <= max_seq - min_seq + 1 <= MI.MAX_NR_GENS:
                raise AssertionError(f"memcg {cg} type {type_}: min_seq {min_seq}, "
                                     f"max_seq {max_seq}")
            live = {s % MI.MAX_NR_GENS for s in range(min_seq, max_seq + 1)}
            for gen in range(MI.MAX_NR_GENS):
                n = int(counts[cg, gen, type_].sum())
                if gen not in live and n:
                    raise AssertionError(f"memcg {cg} type {type_}: generation {gen} is "
                                         f"outside min_seq..max_seq but holds {n} pages")
                active = gen in (max_seq % MI.MAX_NR_GENS, (max_seq - 1) % MI.MAX_NR_GENS)
                lists[type_ * 2 + active] += n
    return lists
