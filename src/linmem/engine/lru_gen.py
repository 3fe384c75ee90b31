"""Compiled kernels: aging and eviction of the multi-gen LRU (mm/vmscan.c
CONFIG_LRU_GEN; Linux 6.18). The per-folio helpers (generations in the
flags, where a folio enters, refs and tiers, shadows) are
``linmem.engine.mm_inline``; the driving loop is ``linmem.mm.lru_gen``.

**Aging** (try_to_inc_max_seq -> inc_max_seq) opens a new youngest
generation: max_seq + 1. A type that already has MAX_NR_GENS generations
first retires its oldest (inc_min_seq: its folios move up one generation,
counted as protected in their tier). The active/inactive counters move with
the generations (the two youngest are active). Before, the page tables of
every mm are walked (walk_mm, lru_gen/enabled 0x0002, on by default on
x86): each young PTE is cleared and its folio promoted to the current
max_seq (folio_update_gen: a folio seen young the first time only gets
PG_referenced). Between walks, eviction finds page-table accesses through
the reverse map, and lru_gen_look_around promotes the young neighbours of
the PTE found (up to 64 PTEs of the same table) the same way.

**Eviction** (evict_folios) scans the oldest generation of one type
(scan_folios, from the tail), the type chosen by get_type_to_scan:
swappiness 0/1 file only, 200 anon first, else a PID controller that
compares refaulted / (evicted + protected) of all anon tiers against all
file tiers, weighted by swappiness and 200 - swappiness (positive_ctrl_err).
Each folio is sorted first (sort_folio): already promoted -> to its
generation; its tier above the tier the controller protects (get_tier_idx:
tiers refaulting no more than tier 0 x 3/2), or five accesses with
PG_workingset -> one generation up (folio_inc_gen, protected[]); dirty file
or under writeback -> one generation up with PG_reclaim. The rest are
isolated (a batch of up to 64) and go through shrink_folio_list
(linmem.engine.vmscan.reclaim_referenced) with references decided the
MGLRU way (lru_gen_set_refs: an unmapped folio is reclaimed, a young PTE
sets PG_referenced the first time and activates the second). A rejected
folio is not put back in the oldest generation (PG_active: max_seq - 1).
When a type's oldest generation is empty its min_seq advances
(try_to_inc_min_seq), folding the tier counters into their averages
(reset_ctrl_pos).

Counters: pgscan (isolated), pgsteal, pgrefill (sorted), via the stats
array of linmem.engine.vmscan.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine import mm_inline as MI
from linmem.engine import page_writeback as PW
from linmem.engine.jit import njit
from linmem.engine.memory import folio_head, folio_nr
from linmem.engine.mm_inline import (LG_AVG_REFAULTED, LG_AVG_TOTAL, LG_EVICTED, LG_MAX_SEQ,
                                     LG_MIN_SEQ, LG_PROTECTED, LG_REFAULTED, LG_TIMESTAMPS,
                                     LRU_GEN_BATCH, LRU_REFS_FLAGS, MAX_NR_GENS, MAX_NR_TIERS,
                                     MIN_NR_GENS, folio_lru_gen, folio_type, lru_gen_from_seq,
                                     tier_idx)
from linmem.engine.pgtable import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE,
                                   _PAGE_SPECIAL, _PAGE_TABLE, C_NOW_US, PAGE_SHIFT, PMD_SHIFT,
                                   PTRS_PER_TABLE, pte_pfn, walk_pmd)
from linmem.engine.rmap import (R_END, R_FLAGS, R_MM, R_START, VM_LOCKED, VM_SEQ_READ,
                                _address, _entry, _rows, rmap_key)
from linmem.engine.vmscan import (FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM,
                                  S_REFILL, S_SCANNED, S_SCANNED_ANON, _mlock_found,
                                  reclaim_referenced)
from linmem.mm.frames import (LRU_GEN_MASK, LRU_GEN_PGOFF, LRU_REFS_MASK, LRU_REFS_WIDTH,
                              PG_active, PG_anon, PG_dirty, PG_lru, PG_reclaim, PG_referenced,
                              PG_swapbacked, PG_swapcache, PG_unevictable, PG_workingset,
                              PG_writeback)

MIN_LRU_BATCH = 64               # BITS_PER_LONG
MAX_LRU_BATCH = MIN_LRU_BATCH * 64
MAX_SWAPPINESS = 200
VM_RAND_READ = 0x10000


# --------------------------------------------------------------------------
# moving folios between generations

@njit
def _move_gen(M, memcg, page, old_gen, new_gen, to_tail):
    """The folio changes generation (flags, sizes, list)."""
    nr = folio_nr(M, page)
    type_ = folio_type(M, page)
    MI.lru_gen_update_size(M, memcg, page, nr, old_gen, new_gen)
    MI.list_del(M, memcg, old_gen, type_, page)
    MI.list_add(M, memcg, new_gen, type_, page, to_tail)


@njit
def folio_update_gen(M, memcg, page, new_gen):
    """Models folio_update_gen(): a young PTE found by the aging (here the
    look-around) promotes a folio used before to ``new_gen``; the first use
    only sets PG_referenced. Returns the old generation or -1."""
    flags = M.flags[page]
    if not (flags & PG_referenced) and not (flags & PG_workingset):
        M.flags[page] = (flags & ~np.uint32(LRU_REFS_MASK)) | PG_referenced
        return -1
    if not (flags & LRU_GEN_MASK) or (flags & LRU_GEN_BATCH):
        return -1                                   # isolated by lru_gen_del_folio()
    old_gen = folio_lru_gen(M, page)
    M.flags[page] = (flags & ~np.uint32(LRU_GEN_MASK | LRU_REFS_FLAGS)) | \
        np.uint32((new_gen + 1) << LRU_GEN_PGOFF)
    if old_gen != new_gen:
        _move_gen(M, memcg, page, old_gen, new_gen, False)
    return old_gen


@njit
def folio_inc_gen(M, memcg, page, reclaiming, to_tail):
    """Models folio_inc_gen(): one generation up from the oldest, refs
    cleared (PG_workingset kept); PG_reclaim when waiting for writeback."""
    type_ = folio_type(M, page)
    old_gen = lru_gen_from_seq(M.lrugen[memcg, LG_MIN_SEQ + type_])
    new_gen = (old_gen + 1) % MAX_NR_GENS
    flags = M.flags[page] & ~np.uint32(LRU_GEN_MASK | LRU_REFS_FLAGS)
    flags |= np.uint32((new_gen + 1) << LRU_GEN_PGOFF)
    if reclaiming:
        flags |= PG_reclaim
    M.flags[page] = flags
    _move_gen(M, memcg, page, old_gen, new_gen, to_tail)
    return new_gen


# --------------------------------------------------------------------------
# the reverse map: folio_referenced under MGLRU, with the look-around

@njit
def lru_gen_look_around(M, memcg, t, i, start_i, end_i, new_gen):
    """Models lru_gen_look_around() with a walk: the other young PTEs of the
    table around index ``i`` (within the VMA, at most MIN_LRU_BATCH) are
    cleared and their folios promoted to ``new_gen``; a dirty PTE dirties
    its file folio."""
    if end_i - start_i > MIN_LRU_BATCH:
        if i - start_i < MIN_LRU_BATCH // 2:
            end_i = start_i + MIN_LRU_BATCH
        elif end_i - i < MIN_LRU_BATCH // 2:
            start_i = end_i - MIN_LRU_BATCH
        else:
            start_i = i - MIN_LRU_BATCH // 2
            end_i = i + MIN_LRU_BATCH // 2
    for k in range(start_i, end_i):
        if k != i:
            _update_young(M, memcg, t, k, new_gen)


@njit
def _update_young(M, memcg, t, k, new_gen):
    """One PTE of a walk or look-around: if young, clear it and promote its
    folio (walk_update_folio with a walk: folio_update_gen)."""
    e = M.pt[t, k]
    if not (e & _PAGE_PRESENT) or (e & (_PAGE_SPECIAL | _PAGE_PSE)) or \
            not (e & _PAGE_ACCESSED):
        return
    pfn = pte_pfn(e)
    if pfn >= M.flags.shape[0]:
        return
    folio = folio_head(M, pfn)
    if not (M.flags[folio] & PG_lru) or M.memcg[folio] != memcg or folio_lru_gen(M, folio) < 0:
        return
    M.pt[t, k] = e & ~np.int64(_PAGE_ACCESSED)
    if (e & _PAGE_DIRTY) and not (M.flags[folio] & PG_dirty) and \
            not ((M.flags[folio] & PG_anon) and (M.flags[folio] & PG_swapbacked) and
                 not (M.flags[folio] & PG_swapcache)):
        if M.flags[folio] & PG_anon:
            M.flags[folio] |= PG_dirty
        else:
            PW.folio_mark_dirty(M, folio)
    folio_update_gen(M, memcg, folio, new_gen)


@njit
def lru_gen_check_references(M, R, page):
    """folio_referenced() + folio_check_references() under MGLRU: harvest
    the young bits of the PTEs that map the folio (each young one looks
    around), then: mlocked -> activate (to the unevictable list); no young
    PTE -> reclaim; else lru_gen_set_refs (keep the first time, activate
    after)."""
    memcg = M.memcg[page]
    referenced = 0
    locked = False
    if M.mapcount[page] > 0:
        new_gen = lru_gen_from_seq(M.lrugen[memcg, LG_MAX_SEQ])
        lo, hi = _rows(R, rmap_key(M, page))
        for r in range(lo, hi):
            flags = R[r, R_FLAGS]
            if flags & (VM_SEQ_READ | VM_RAND_READ):
                continue                            # !vma_has_recency()
            va = _address(M, R, r, page)
            if va < 0:
                continue
            t, i = _entry(M, R[r, R_MM], va, page)
            if t < 0:
                continue
            if flags & VM_LOCKED:
                locked = True
                break
            e = M.pt[t, i]
            if not (e & _PAGE_ACCESSED):
                continue
            M.pt[t, i] = e & ~np.int64(_PAGE_ACCESSED)
            referenced += 1
            if e & _PAGE_PSE:
                continue                            # a PMD: no look-around (pvmw.pte only)
            # the look-around covers this PTE table, inside the VMA
            tbl_start = (va >> PMD_SHIFT) << PMD_SHIFT
            lo_va = max(tbl_start, R[r, R_START])
            hi_va = min(tbl_start + (PTRS_PER_TABLE << PAGE_SHIFT), R[r, R_END])
            lru_gen_look_around(M, memcg, t, i, (lo_va - tbl_start) >> PAGE_SHIFT,
                                (hi_va - tbl_start) >> PAGE_SHIFT, new_gen)
    if locked:
        _mlock_found(M, page, memcg)
        return FOLIOREF_ACTIVATE
    if not referenced:
        return FOLIOREF_RECLAIM
    return FOLIOREF_ACTIVATE if MI.lru_gen_set_refs(M, page) else FOLIOREF_KEEP


# --------------------------------------------------------------------------
# the PID controller

@njit
def read_ctrl_pos(M, memcg, type_, tier, gain):
    """Models read_ctrl_pos(): (refaulted, total, gain) of one tier, or of
    all tiers with ``tier`` = MAX_NR_TIERS."""
    G = M.lrugen[memcg]
    refaulted = 0
    total = 0
    for i in range(tier % MAX_NR_TIERS, min(tier, MAX_NR_TIERS - 1) + 1):
        k = tier_idx(type_, i)
        refaulted += G[LG_AVG_REFAULTED + k] + G[LG_REFAULTED + k]
        total += G[LG_AVG_TOTAL + k] + G[LG_PROTECTED + k] + G[LG_EVICTED + k]
    return refaulted, total, gain


@njit
def positive_ctrl_err(sp_ref, sp_tot, sp_gain, pv_ref, pv_tot, pv_gain):
    """Models positive_ctrl_err(): the PV has few refaults, or a lower
    refaulted/total than the SP."""
    return pv_ref < MIN_LRU_BATCH or \
        pv_ref * (sp_tot + MIN_LRU_BATCH) * sp_gain <= (sp_ref + 1) * pv_tot * pv_gain


@njit
def get_tier_idx(M, memcg, type_):
    """Models get_tier_idx(): the highest tier that refaults no more than
    tier 0 (gains 2:3); the tiers above it are protected."""
    a, b, c = read_ctrl_pos(M, memcg, type_, 0, 2)
    tier = 1
    while tier < MAX_NR_TIERS:
        x, y, z = read_ctrl_pos(M, memcg, type_, tier, 3)
        if not positive_ctrl_err(a, b, c, x, y, z):
            break
        tier += 1
    return tier - 1


@njit
def get_type_to_scan(M, memcg, swappiness):
    """Models get_type_to_scan()."""
    if swappiness <= 1:
        return 1
    if swappiness >= MAX_SWAPPINESS:
        return 0
    a, b, c = read_ctrl_pos(M, memcg, 0, MAX_NR_TIERS, swappiness)
    x, y, z = read_ctrl_pos(M, memcg, 1, MAX_NR_TIERS, MAX_SWAPPINESS - swappiness)
    return 1 if positive_ctrl_err(a, b, c, x, y, z) else 0


@njit
def reset_ctrl_pos(M, memcg, type_, carryover):
    """Models reset_ctrl_pos() with NR_HIST_GENS 1: on carryover (min_seq
    advanced) the averages take half of (average + this generation's
    counts), which restart from zero."""
    if not carryover:
        return
    G = M.lrugen[memcg]
    for tier in range(MAX_NR_TIERS):
        k = tier_idx(type_, tier)
        G[LG_AVG_REFAULTED + k] = (G[LG_AVG_REFAULTED + k] + G[LG_REFAULTED + k]) // 2
        G[LG_AVG_TOTAL + k] = (G[LG_AVG_TOTAL + k] + G[LG_PROTECTED + k] +
                               G[LG_EVICTED + k]) // 2
        G[LG_REFAULTED + k] = 0
        G[LG_EVICTED + k] = 0
        G[LG_PROTECTED + k] = 0


# --------------------------------------------------------------------------
# aging

@njit
def evictable_min_seq(M, memcg, swappiness):
    """min_seq of the types reclaim may evict (file only at swappiness 0)."""
    if swappiness == 0:
        return M.lrugen[memcg, LG_MIN_SEQ + 1]
    return min(M.lrugen[memcg, LG_MIN_SEQ], M.lrugen[memcg, LG_MIN_SEQ + 1])


@njit
def get_nr_gens(M, memcg, type_):
    return M.lrugen[memcg, LG_MAX_SEQ] - M.lrugen[memcg, LG_MIN_SEQ + type_] + 1


@njit
def inc_min_seq(M, memcg, type_, swappiness):
    """Models inc_min_seq(): the oldest generation of a type is retired; its
    folios move up one generation (counted as protected in their tier,
    except the lazily promoted workingset), unless the type is not
    evictable (anon at swappiness 0)."""
    if type_ == 1 or swappiness != 0:
        old_gen = lru_gen_from_seq(M.lrugen[memcg, LG_MIN_SEQ + type_])
        page = M.lrugen_tail[memcg, old_gen, type_]
        while page >= 0:
            refs = MI.folio_lru_refs(M, page)
            ws = 1 if M.flags[page] & PG_workingset else 0
            folio_inc_gen(M, memcg, page, False, True)
            if refs + ws != (1 << LRU_REFS_WIDTH) + 1:
                tier = MI.lru_tier_from_refs(refs, ws)
                M.lrugen[memcg, LG_PROTECTED + tier_idx(type_, tier)] += folio_nr(M, page)
            page = M.lrugen_tail[memcg, old_gen, type_]
    reset_ctrl_pos(M, memcg, type_, True)
    M.lrugen[memcg, LG_MIN_SEQ + type_] += 1


@njit
def try_to_inc_min_seq(M, memcg, swappiness):
    """Models try_to_inc_min_seq(): min_seq passes the empty oldest
    generations; anon and file stay within MIN_NR_GENS of each other."""
    max_seq = M.lrugen[memcg, LG_MAX_SEQ]
    min_seq = np.zeros(2, dtype=np.int64)
    inc = False
    for type_ in range(2):
        min_seq[type_] = M.lrugen[memcg, LG_MIN_SEQ + type_]
        if type_ == 0 and swappiness == 0:
            continue
        while min_seq[type_] + MIN_NR_GENS <= max_seq:
            gen = lru_gen_from_seq(min_seq[type_])
            if M.lrugen_head[memcg, gen, type_] >= 0:
                break
            min_seq[type_] += 1
            inc = True
    if not inc:
        return False
    if swappiness:
        seq = max_seq - MIN_NR_GENS
        if min_seq[0] > seq and min_seq[1] < seq:
            min_seq[0] = seq
        elif min_seq[1] > seq and min_seq[0] < seq:
            min_seq[1] = seq
    success = False
    for type_ in range(2):
        if type_ == 0 and swappiness == 0:
            continue
        if min_seq[type_] <= M.lrugen[memcg, LG_MIN_SEQ + type_]:
            continue
        reset_ctrl_pos(M, memcg, type_, True)
        M.lrugen[memcg, LG_MIN_SEQ + type_] = min_seq[type_]
        success = True
    return success


@njit
def inc_max_seq(M, memcg, swappiness):
    """Models inc_max_seq(): a new youngest generation. max_seq - 1 becomes
    inactive, the new one (which may still hold the retired oldest
    generation's folios, when inc_min_seq left them) active."""
    G = M.lrugen[memcg]
    for type_ in range(2):
        if get_nr_gens(M, memcg, type_) == MAX_NR_GENS:
            inc_min_seq(M, memcg, type_, swappiness)
    prev = lru_gen_from_seq(G[LG_MAX_SEQ] - 1)
    nxt = lru_gen_from_seq(G[LG_MAX_SEQ] + 1)
    for type_ in range(2):
        for zone in range(MI.NZ):
            delta = G[MI.nr_idx(prev, type_, zone)] - G[MI.nr_idx(nxt, type_, zone)]
            if delta:
                MI.update_lru_size(M, memcg, type_ * 2, zone, delta)
                MI.update_lru_size(M, memcg, type_ * 2 + 1, zone, -delta)
    G[LG_TIMESTAMPS + nxt] = M.ctl[C_NOW_US]
    G[LG_MAX_SEQ] += 1
    return True


@njit
def walk_mm(M, R, memcg, new_gen):
    """Models walk_mm() over every mm (the kernel's mm_list): in each VMA
    with recency (not VM_SEQ_READ/VM_RAND_READ, not VM_LOCKED), every young
    PTE is cleared and its folio promoted to ``new_gen`` (folio_update_gen:
    a folio seen young the first time only gets PG_referenced); a dirty PTE
    dirties its file folio. Rows of ``R`` that repeat a VMA (one per
    anon_vma of its chain) find the young bits already cleared."""
    for r in range(R.shape[0]):
        flags = R[r, R_FLAGS]
        if flags & (VM_SEQ_READ | VM_RAND_READ | VM_LOCKED):
            continue
        mm = R[r, R_MM]
        va = R[r, R_START]
        end = R[r, R_END]
        while va < end:
            nxt = min(((va >> PMD_SHIFT) + 1) << PMD_SHIFT, end)
            pmd_t, _st = walk_pmd(M, mm, va, False)
            if pmd_t >= 0:
                pe = M.pt[pmd_t, (va >> PMD_SHIFT) & (PTRS_PER_TABLE - 1)]
                if (pe & _PAGE_TABLE) and not (pe & _PAGE_PSE):
                    t = pe >> PAGE_SHIFT
                    for i in range((va >> PAGE_SHIFT) & (PTRS_PER_TABLE - 1),
                                   (((nxt - 1) >> PAGE_SHIFT) & (PTRS_PER_TABLE - 1)) + 1):
                        _update_young(M, memcg, t, i, new_gen)
            va = nxt


@njit
def try_to_inc_max_seq(M, R, memcg, max_seq, swappiness):
    """Models try_to_inc_max_seq(): walk the mms for young PTEs (into the
    current max_seq), then inc_max_seq.

    XXX: every PTE table of every VMA is walked; the kernel's Bloom filters
    skip the tables where the previous walk (or the look-around) found few
    young PTEs, and its PMD walk ages PMD-mapped THPs (not here)."""
    if max_seq < M.lrugen[memcg, LG_MAX_SEQ]:
        return False
    walk_mm(M, R, memcg, lru_gen_from_seq(max_seq))
    return inc_max_seq(M, memcg, swappiness)


@njit
def should_run_aging(M, memcg, swappiness):
    """Models should_run_aging(): (run the aging, pages of the evictable
    types). Aging is needed when eviction is impossible (only
    MIN_NR_GENS generations left) and wanted at MIN_NR_GENS + 1."""
    max_seq = M.lrugen[memcg, LG_MAX_SEQ]
    ems = evictable_min_seq(M, memcg, swappiness)
    if ems + MIN_NR_GENS > max_seq:
        return True, 0
    size = 0
    for type_ in range(0 if swappiness else 1, 2):
        for seq in range(M.lrugen[memcg, LG_MIN_SEQ + type_], max_seq + 1):
            gen = lru_gen_from_seq(seq)
            for zone in range(MI.NZ):
                size += max(M.lrugen[memcg, MI.nr_idx(gen, type_, zone)], 0)
    return ems + MIN_NR_GENS == max_seq, size


# --------------------------------------------------------------------------
# eviction

@njit
def sort_folio(M, memcg, page, tier_idx_):
    """Models sort_folio(): True when the folio was moved rather than
    isolated for reclaim."""
    type_ = folio_type(M, page)
    gen = folio_lru_gen(M, page)
    refs = MI.folio_lru_refs(M, page)
    ws = 1 if M.flags[page] & PG_workingset else 0
    tier = MI.lru_tier_from_refs(refs, ws)
    nr = folio_nr(M, page)
    if M.flags[page] & PG_unevictable:                    # to the unevictable list
        L.lruvec_del_folio(M, page, nr, memcg)
        L.lruvec_add_folio(M, page, nr, memcg)
        return True
    if gen != lru_gen_from_seq(M.lrugen[memcg, LG_MIN_SEQ + type_]):
        return True                                       # promoted (already moved)
    if tier > tier_idx_ or refs + ws == (1 << LRU_REFS_WIDTH) + 1:
        folio_inc_gen(M, memcg, page, False, False)
        if refs + ws != (1 << LRU_REFS_WIDTH) + 1:
            M.lrugen[memcg, LG_PROTECTED + tier_idx(type_, tier)] += nr
        return True
    flags = M.flags[page]
    if (flags & PG_writeback) or (type_ == 1 and (flags & PG_dirty)):
        folio_inc_gen(M, memcg, page, True, False)
        return True
    return False


@njit
def scan_folios(M, memcg, type_, tier, nr_to_scan, batch):
    """Models scan_folios() + isolate_folio(): sort the oldest generation's
    folios from the tail; up to MIN_LRU_BATCH are isolated into ``batch``
    (batch[0] is their number; they stay on the list, marked LRU_GEN_BATCH).
    Returns (pages scanned, or 0 when nothing could be isolated; sorted)."""
    batch[0] = 0
    if get_nr_gens(M, memcg, type_) == MIN_NR_GENS:
        return 0, 0
    gen = lru_gen_from_seq(M.lrugen[memcg, LG_MIN_SEQ + type_])
    remaining = min(nr_to_scan, MAX_LRU_BATCH)
    scanned = 0
    isolated = 0
    sorted_ = 0
    page = M.lrugen_tail[memcg, gen, type_]
    while page >= 0:
        prev = M.prv[page]
        nr = folio_nr(M, page)
        scanned += nr
        if sort_folio(M, memcg, page, tier):
            sorted_ += nr
        else:
            if not (M.flags[page] & PG_referenced):
                M.flags[page] &= ~np.uint32(LRU_REFS_MASK)
            M.flags[page] = (M.flags[page] & ~np.uint32(PG_reclaim)) | LRU_GEN_BATCH
            n = batch[0] + 1
            batch[n] = page
            batch[0] = n
            isolated += nr
        remaining -= 1
        if remaining <= 0 or isolated >= MIN_LRU_BATCH:
            break
        page = prev
    if isolated or remaining <= 0:
        return scanned, sorted_
    return 0, sorted_


@njit
def evict_folios(M, R, memcg, nr_to_scan, swappiness, stats, wb, batch):
    """Models evict_folios(): isolate a batch from the oldest generation of
    the type get_type_to_scan picks (the other type when that one has
    nothing), reclaim it through shrink_folio_list, put the rejected
    folios back no lower than min_seq + 1, advance min_seq. Returns the
    pages scanned (0 when eviction cannot go on)."""
    type_ = get_type_to_scan(M, memcg, swappiness)
    scanned = 0
    ntypes = 1 if swappiness == 0 else 2
    for _ in range(ntypes):
        tier = get_tier_idx(M, memcg, type_)
        scanned, sorted_ = scan_folios(M, memcg, type_, tier, nr_to_scan, batch)
        stats[S_REFILL] += sorted_
        if scanned:
            break
        if swappiness == 0:
            break
        type_ = 1 - type_
    n = batch[0]
    isolated = 0
    for k in range(1, n + 1):
        page = batch[k]
        M.flags[page] &= ~np.uint32(LRU_GEN_BATCH)
        nr = folio_nr(M, page)
        isolated += nr
        ref = lru_gen_check_references(M, R, page)
        freed = reclaim_referenced(M, R, page, memcg, nr, stats, wb, ref)
        if not freed and (M.flags[page] & PG_lru) and folio_lru_gen(M, page) >= 0:
            # don't add rejected folios to the oldest generation
            t = folio_type(M, page)
            if folio_lru_gen(M, page) == lru_gen_from_seq(M.lrugen[memcg, LG_MIN_SEQ + t]) \
                    and not (M.flags[page] & PG_writeback):
                MI.lru_gen_del_folio(M, page, nr, memcg, True)
                M.flags[page] = (M.flags[page] & ~np.uint32(LRU_REFS_FLAGS)) | PG_active
                MI.lru_gen_add_folio(M, page, nr, memcg, False)
    batch[0] = 0
    stats[S_SCANNED] += isolated
    if type_ == 0:
        stats[S_SCANNED_ANON] += isolated
    if try_to_inc_min_seq(M, memcg, swappiness):
        scanned += 1
    if evictable_min_seq(M, memcg, swappiness) + MIN_NR_GENS > M.lrugen[memcg, LG_MAX_SEQ]:
        scanned = 0
    return scanned


# --------------------------------------------------------------------------
# debugging

@njit
def walk_lru_gen(M, seen):
    """Walk every generation list: pages per (memcg, gen, type, zone), each
    folio's ``seen`` raised. Returns (counts, first folio whose flags
    disagree with its list, or -1)."""
    nr_memcgs = M.lrugen_head.shape[0]
    counts = np.zeros((nr_memcgs, MAX_NR_GENS, 2, MI.NZ), dtype=np.int64)
    limit = M.flags.shape[0]
    for cg in range(nr_memcgs):
        for gen in range(MAX_NR_GENS):
            for type_ in range(2):
                p = M.lrugen_head[cg, gen, type_]
                steps = 0
                while p >= 0:
                    seen[p] += 1
                    f = M.flags[p]
                    if folio_lru_gen(M, p) != gen or folio_type(M, p) != type_ or \
                            M.memcg[p] != cg or not (f & PG_lru) or (f & PG_active) or \
                            (f & PG_unevictable) or (f & LRU_GEN_BATCH) or steps > limit:
                        return counts, p
                    counts[cg, gen, type_, MI.B.zone_of(M, p)] += folio_nr(M, p)
                    p = M.nxt[p]
                    steps += 1
    return counts, -1
