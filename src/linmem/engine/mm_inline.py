"""Compiled kernels: the multi-gen LRU's per-folio helpers
(include/linux/mm_inline.h lru_gen_*, mm/swap.c lru_gen_inc_refs,
mm/workingset.c lru_gen_eviction/lru_gen_refault; Linux 6.18).

With ``machine: {lru: mglru}`` every evictable folio on an LRU sits in one of
the generations of its lruvec and type (anon, file), numbered by sequence
numbers min_seq[type]..max_seq (2 to 4 generations: MIN_NR_GENS, MAX_NR_GENS);
generation ``seq % 4`` holds a list per type. The folio's generation is in
its flags (LRU_GEN_MASK, gen + 1). Where a folio enters (lru_gen_folio_seq):

* PG_active (set by folio_add_lru for a folio added during a page fault of a
  VMA with recency, lru_gen_in_fault; and by reclaim for a folio to keep):
  max_seq with PG_workingset, else max_seq - 1;
* reclaim putting it at the tail (folio_rotate_reclaimable): min_seq;
* anon not in the swap cache, or PG_reclaim and dirty/under writeback:
  max_seq - 1;
* else (page cache read by read(2), swap-cache readahead): max_seq - 3
  (max_seq - 2 with PG_workingset), no older than min_seq.

The two youngest generations count as active in the node's
nr_active_anon/file (lru_gen_update_size), the others as inactive. Accesses
through file descriptors (read(2), folio_mark_accessed) count in the flags:
PG_referenced first, then LRU_REFS_MASK (2 bits), then PG_workingset
(lru_gen_inc_refs); the folio's *tier* is order_base_2(refs), tier 3 with
PG_workingset (lru_tier_from_refs). Eviction leaves a shadow entry with
min_seq, refs and PG_workingset; the refault is *recent* when max_seq moved
less than 4 generations since, and then counts in the refaulted[] of its
tier for the PID controller (linmem.engine.lru_gen).

State: ``M.lrugen[memcg]`` (an int64 row: the LG_* fields below) and the
lists ``M.lrugen_head/tail[memcg, gen, type]``. Classic lists stay for
unevictable folios (lru_gen_add_folio refuses them).

XXX: one list per generation and type, not per zone (nr_pages is per zone,
for the zone counters); NR_HIST_GENS is 1 (CONFIG_LRU_GEN_STATS off).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine.jit import njit
from linmem.engine.memcontrol import (MS_ACTIVATE, MS_REFAULT, MS_RESTORE, count_workingset,
                                      mod_lru_size)
from linmem.mm.frames import (LRU_GEN_MASK, LRU_GEN_PGOFF, LRU_REFS_MASK, LRU_REFS_PGOFF,
                              LRU_REFS_WIDTH, PG_active, PG_dirty, PG_referenced, PG_reclaim,
                              PG_swapbacked, PG_swapcache, PG_unevictable, PG_workingset,
                              PG_writeback)
from linmem.mm.vmstat import NR_ZONE_INACTIVE_ANON, node_item

MIN_NR_GENS, MAX_NR_GENS, MAX_NR_TIERS = 2, 4, 4
LRU_GEN_ANON, LRU_GEN_FILE = 0, 1
LRU_REFS_FLAGS = LRU_REFS_MASK | PG_referenced
LRU_GEN_BATCH = 1 << 27          # linmem: isolated in the batch being reclaimed
NZ = 5                           # zones counted in nr_pages (MAX_NR_ZONES)
VM_SEQ_READ, VM_RAND_READ = 0x8000, 0x10000

# the fields of one lruvec's row of M.lrugen
LG_ENABLED, LG_MAX_SEQ, LG_MIN_SEQ, LG_IN_FAULT = 0, 1, 2, 4
LG_TIMESTAMPS = 5                                  # [gen], microseconds
LG_NR_PAGES = LG_TIMESTAMPS + MAX_NR_GENS          # [gen][type][zone]
LG_AVG_REFAULTED = LG_NR_PAGES + MAX_NR_GENS * 2 * NZ   # [type][tier]
LG_AVG_TOTAL = LG_AVG_REFAULTED + 2 * MAX_NR_TIERS
LG_REFAULTED = LG_AVG_TOTAL + 2 * MAX_NR_TIERS
LG_EVICTED = LG_REFAULTED + 2 * MAX_NR_TIERS
LG_PROTECTED = LG_EVICTED + 2 * MAX_NR_TIERS
NR_LG = LG_PROTECTED + 2 * MAX_NR_TIERS

NR_INACTIVE_ANON = node_item("nr_inactive_anon")
WORKINGSET_REFAULT_ANON = node_item("workingset_refault_anon")
WORKINGSET_ACTIVATE_ANON = node_item("workingset_activate_anon")
WORKINGSET_RESTORE_ANON = node_item("workingset_restore_anon")


@njit
def lru_gen_enabled(M):
    return M.lrugen.shape[0] > 0 and M.lrugen[0, LG_ENABLED] != 0


@njit
def lru_gen_from_seq(seq):
    return seq % MAX_NR_GENS


@njit
def folio_lru_gen(M, pfn):
    """The folio's generation, -1 when on no generation list."""
    return np.int64((M.flags[pfn] & LRU_GEN_MASK) >> LRU_GEN_PGOFF) - 1


@njit
def folio_type(M, pfn):
    """folio_is_file_lru(): 1 for file, 0 for anon."""
    return 0 if M.flags[pfn] & PG_swapbacked else 1


@njit
def lru_gen_is_active(M, memcg, gen):
    max_seq = M.lrugen[memcg, LG_MAX_SEQ]
    return gen == lru_gen_from_seq(max_seq) or gen == lru_gen_from_seq(max_seq - 1)


@njit
def nr_idx(gen, type_, zone):
    return LG_NR_PAGES + (gen * 2 + type_) * NZ + zone


@njit
def tier_idx(type_, tier):
    return type_ * MAX_NR_TIERS + tier


@njit
def update_lru_size(M, memcg, lru, zone, delta):
    """update_lru_size(): the node's and the zone's nr_{in,}active_*, and
    the memcg's (mem_cgroup_update_lru_size)."""
    M.node_stat[NR_INACTIVE_ANON + lru] += delta
    M.zstat[zone, NR_ZONE_INACTIVE_ANON + lru] += delta
    mod_lru_size(M, memcg, lru, delta)


@njit
def lru_gen_update_size(M, memcg, pfn, nr, old_gen, new_gen):
    """Models lru_gen_update_size(): nr_pages per generation, and the
    active/inactive counters (the two youngest generations are active)."""
    type_ = folio_type(M, pfn)
    zone = B.zone_of(M, pfn)
    lru = type_ * 2
    G = M.lrugen[memcg]
    if old_gen >= 0:
        G[nr_idx(old_gen, type_, zone)] -= nr
    if new_gen >= 0:
        G[nr_idx(new_gen, type_, zone)] += nr
    if old_gen < 0:
        update_lru_size(M, memcg, lru + (1 if lru_gen_is_active(M, memcg, new_gen) else 0), zone, nr)
        return
    if new_gen < 0:
        update_lru_size(M, memcg, lru + (1 if lru_gen_is_active(M, memcg, old_gen) else 0), zone, -nr)
        return
    if not lru_gen_is_active(M, memcg, old_gen) and lru_gen_is_active(M, memcg, new_gen):
        update_lru_size(M, memcg, lru, zone, -nr)
        update_lru_size(M, memcg, lru + 1, zone, nr)


@njit
def lru_gen_folio_seq(M, memcg, pfn, reclaiming):
    """Models lru_gen_folio_seq(): the generation a folio enters."""
    flags = M.flags[pfn]
    type_ = folio_type(M, pfn)
    ws = 1 if flags & PG_workingset else 0
    if flags & PG_active:
        gen = MIN_NR_GENS - ws
    elif reclaiming:
        gen = MAX_NR_GENS
    elif (type_ == LRU_GEN_ANON and not (flags & PG_swapcache)) or \
            ((flags & PG_reclaim) and (flags & (PG_dirty | PG_writeback))):
        gen = MIN_NR_GENS
    else:
        gen = MAX_NR_GENS - ws
    return max(M.lrugen[memcg, LG_MAX_SEQ] - gen + 1, M.lrugen[memcg, LG_MIN_SEQ + type_])


@njit
def list_add(M, memcg, gen, type_, pfn, to_tail):
    B._list_add(M.lrugen_head, M.lrugen_tail, memcg, gen, type_, M.nxt, M.prv, pfn, to_tail)


@njit
def list_del(M, memcg, gen, type_, pfn):
    B._list_del(M.lrugen_head, M.lrugen_tail, memcg, gen, type_, M.nxt, M.prv, pfn)


@njit
def lru_gen_add_folio(M, pfn, nr, memcg, reclaiming):
    """Models lru_gen_add_folio(): False when the classic lists take it
    (MGLRU off, or an unevictable folio)."""
    if not lru_gen_enabled(M) or (M.flags[pfn] & PG_unevictable):
        return False
    if M.lrugen[0, LG_IN_FAULT] and not reclaiming:
        M.flags[pfn] |= PG_active                  # folio_add_lru() in a fault
    seq = lru_gen_folio_seq(M, memcg, pfn, reclaiming)
    gen = lru_gen_from_seq(seq)
    M.flags[pfn] = (M.flags[pfn] & ~np.uint32(LRU_GEN_MASK | PG_active)) | \
        np.uint32((gen + 1) << LRU_GEN_PGOFF)
    lru_gen_update_size(M, memcg, pfn, nr, -1, gen)
    list_add(M, memcg, gen, folio_type(M, pfn), pfn, reclaiming)
    return True


@njit
def lru_gen_del_folio(M, pfn, nr, memcg, reclaiming):
    """Models lru_gen_del_folio(): False when the folio is on no generation
    list. Leaving an active generation (not for reclaim) sets PG_active."""
    gen = folio_lru_gen(M, pfn)
    if gen < 0:
        return False
    active = not reclaiming and lru_gen_is_active(M, memcg, gen)
    M.flags[pfn] &= ~np.uint32(LRU_GEN_MASK)
    if active:
        M.flags[pfn] |= PG_active
    lru_gen_update_size(M, memcg, pfn, nr, gen, -1)
    list_del(M, memcg, gen, folio_type(M, pfn), pfn)
    return True


@njit
def folio_lru_refs(M, pfn):
    """Models folio_lru_refs(): accesses through file descriptors, counting
    PG_referenced (0 without it)."""
    flags = M.flags[pfn]
    if not (flags & PG_referenced):
        return 0
    return np.int64((flags & LRU_REFS_MASK) >> LRU_REFS_PGOFF) + 1


@njit
def lru_tier_from_refs(refs, workingset):
    """Models lru_tier_from_refs(): order_base_2(refs); the top tier for
    PG_workingset."""
    if workingset:
        return MAX_NR_TIERS - 1
    tier = 0
    while (1 << tier) < refs:
        tier += 1
    return tier


@njit
def lru_gen_inc_refs(M, pfn):
    """Models lru_gen_inc_refs() (folio_mark_accessed under MGLRU):
    PG_referenced, then the refs bits, then PG_workingset."""
    flags = M.flags[pfn]
    if flags & PG_unevictable:
        return
    if not (flags & PG_referenced):
        M.flags[pfn] = (flags & ~np.uint32(LRU_REFS_MASK)) | PG_referenced
        return
    if (flags & LRU_REFS_MASK) == LRU_REFS_MASK:
        M.flags[pfn] |= PG_workingset
        return
    M.flags[pfn] = flags + np.uint32(1 << LRU_REFS_PGOFF)


@njit
def lru_gen_set_refs(M, pfn):
    """Models lru_gen_set_refs(): a young PTE found by reclaim. The first
    time PG_referenced (False), then PG_workingset (True: to be activated)."""
    flags = M.flags[pfn]
    if not (flags & PG_referenced) and not (flags & PG_workingset):
        M.flags[pfn] = (flags & ~np.uint32(LRU_REFS_MASK)) | PG_referenced
        return False
    M.flags[pfn] = (flags & ~np.uint32(LRU_REFS_FLAGS)) | PG_workingset
    return True


@njit
def lru_gen_enter_fault(M, vm_flags):
    """Models lru_gen_enter_fault(): current->in_lru_fault = vma_has_recency()."""
    if M.lrugen.shape[0] > 0:
        M.lrugen[0, LG_IN_FAULT] = 0 if vm_flags & (VM_SEQ_READ | VM_RAND_READ) else 1


@njit
def lru_gen_exit_fault(M):
    if M.lrugen.shape[0] > 0:
        M.lrugen[0, LG_IN_FAULT] = 0


# --------------------------------------------------------------------------
# workingset (mm/workingset.c)

@njit
def lru_gen_eviction(M, pfn):
    """Models lru_gen_eviction(): count the eviction in its tier; the shadow
    holds (min_seq, refs - 1) and PG_workingset."""
    memcg = M.memcg[pfn]
    type_ = folio_type(M, pfn)
    refs = folio_lru_refs(M, pfn)
    ws = 1 if M.flags[pfn] & PG_workingset else 0
    tier = lru_tier_from_refs(refs, ws)
    min_seq = M.lrugen[memcg, LG_MIN_SEQ + type_]
    token = (min_seq << LRU_REFS_WIDTH) | max(refs - 1, 0)
    M.lrugen[memcg, LG_EVICTED + tier_idx(type_, tier)] += 1
    return ((token << 1) | ws) + 1


@njit
def lru_gen_refault(M, shadow, pfn, memcg, file):
    """Models lru_gen_refault(): a refault is recent when max_seq moved
    fewer than MAX_NR_GENS since the eviction's min_seq; it counts in its
    tier's refaulted[] and restores refs, or PG_workingset. All of it on
    the folio's lruvec (folio_lruvec: its memcg, charged already), not the
    caller's ``memcg``. XXX: the shadow does not name the memcg it was
    evicted from; the kernel counts nothing when that differs."""
    memcg = np.int64(M.memcg[pfn])
    packed = shadow - 1
    ws = packed & 1
    token = packed >> 1
    M.node_stat[WORKINGSET_REFAULT_ANON + file] += 1
    count_workingset(M, memcg, MS_REFAULT, file)
    if abs(M.lrugen[memcg, LG_MAX_SEQ] - (token >> LRU_REFS_WIDTH)) >= MAX_NR_GENS:
        return
    refs = (token & ((1 << LRU_REFS_WIDTH) - 1)) + 1
    tier = lru_tier_from_refs(refs, ws)
    M.lrugen[memcg, LG_REFAULTED + tier_idx(file, tier)] += 1
    if M.lrugen[0, LG_IN_FAULT]:
        M.node_stat[WORKINGSET_ACTIVATE_ANON + file] += 1
        count_workingset(M, memcg, MS_ACTIVATE, file)
    if ws:
        M.flags[pfn] |= PG_workingset
        M.node_stat[WORKINGSET_RESTORE_ANON + file] += 1
        count_workingset(M, memcg, MS_RESTORE, file)
    else:
        M.flags[pfn] = (M.flags[pfn] & ~np.uint32(LRU_REFS_MASK)) | \
            np.uint32((refs - 1) << LRU_REFS_PGOFF)
