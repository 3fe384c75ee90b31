"""Compiled kernels: splitting a transparent huge page for reclaim
(mm/huge_memory.c split_huge_page_to_list_to_order, unmap_folio with
TTU_SPLIT_HUGE_PMD; mm/vmscan.c shrink_folio_list's split before swap-out).

A 2 MiB anonymous folio picked for reclaim is split so that its pages can
be swapped one by one: every PMD that maps it is first split into a table of
512 PTEs (split_huge_pmd, the deposited table), then the folio itself
becomes 512 small folios, each with the flags, anon_vma and LRU list of the
whole, its own index (the virtual page) and as many references as page
tables map it. The split fails (the folio is kept) when a reference other
than the mappings holds it (can_split_folio) or a mapping cannot be found.
Counters: thp_split_pmd, thp_split_page (thp_split_page_failed),
thp_swpout_fallback (reclaim swaps the pages, not the folio).

XXX: the kernel (THP_SWAP) first tries to swap the folio whole into a free
512-slot cluster (thp_swpout); linmem always splits.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine.jit import njit
from linmem.engine.memory import split_huge_pmd
from linmem.engine.pgtable import (_PAGE_PSE, _PAGE_SPECIAL, HPAGE_PMD_NR, PMD_SHIFT, pte_pfn,
                                   table_index, walk_pmd)
from linmem.engine.rmap import R_END, R_MM, R_START, _address, _rows, rmap_key
from linmem.mm.frames import (PG_active, PG_anon, PG_dirty, PG_head, PG_lru, PG_memcg,
                              PG_mlocked, PG_referenced, PG_swapbacked, PG_unevictable,
                              PG_uptodate, PG_workingset)
from linmem.mm.vmstat import vm_event

THP_SPLIT_PAGE = vm_event("thp_split_page")
THP_SPLIT_PAGE_FAILED = vm_event("thp_split_page_failed")
THP_SWPOUT_FALLBACK = vm_event("thp_swpout_fallback")
KEEP_FLAGS = (PG_anon | PG_swapbacked | PG_uptodate | PG_active | PG_referenced |
              PG_workingset | PG_dirty | PG_mlocked | PG_unevictable | PG_memcg)


@njit
def _split_pmds(M, R, head):
    """unmap_folio(TTU_SPLIT_HUGE_PMD): split every PMD mapping ``head``."""
    lo, hi = _rows(R, rmap_key(M, head))
    for r in range(lo, hi):
        va = _address(M, R, r, head)
        if va < 0:
            continue
        va &= ~np.int64((1 << PMD_SHIFT) - 1)
        if va < R[r, R_START] or va + (1 << PMD_SHIFT) > R[r, R_END]:
            continue
        pmd_t, _st = walk_pmd(M, R[r, R_MM], va, False)
        if pmd_t < 0:
            continue
        pe = M.pt[pmd_t, table_index(va, PMD_SHIFT)]
        if (pe & _PAGE_PSE) and not (pe & _PAGE_SPECIAL) and pte_pfn(pe) == head:
            split_huge_pmd(M, pmd_t, va)


@njit
def split_folio_for_reclaim(M, R, head, memcg):
    """Split the THP ``head`` into small folios; True when it was split."""
    _split_pmds(M, R, head)
    mapped = 0
    for i in range(HPAGE_PMD_NR):
        mapped += M.mapcount[head + i]
    if M.index[head + 1] != 0 or M.refcount[head] != mapped:
        M.events[THP_SPLIT_PAGE_FAILED] += 1
        return False
    on_lru = (M.flags[head] & PG_lru) != 0
    if on_lru:
        L.lruvec_del_folio(M, head, HPAGE_PMD_NR, memcg)
    flags = M.flags[head] & KEEP_FLAGS
    vpn = np.int64(M.index[head])
    for i in range(HPAGE_PMD_NR):
        page = head + i
        M.flags[page] = (M.flags[page] & ~np.uint32(KEEP_FLAGS | PG_head)) | flags
        M.order[page] = 0
        M.mapping[page] = M.mapping[head]
        M.index[page] = vpn + i                      # kept in 32 bits, as at the fault
        M.memcg[page] = M.memcg[head]
        M.refcount[page] = M.mapcount[page]
        if on_lru:
            L.lruvec_add_folio_tail(M, page, 1, memcg)
    M.events[THP_SPLIT_PAGE] += 1
    M.events[THP_SWPOUT_FALLBACK] += 1
    return True

