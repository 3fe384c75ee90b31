"""Compiled kernels: the page walks behind /proc/PID/smaps (fs/proc/task_mmu.c).

``smaps_range`` walks one VMA's page tables and sums what smaps_pte_entry and
smaps_pmd_entry sum: resident size, PSS (in the kernel's fixed point, bytes <<
12), shared/private clean/dirty, referenced, anonymous, THP. A page mapped
once (refcount 1) counts wholly private; otherwise each page counts shared
when its mapcount is 2 or more, and PSS divides it by that mapcount
(smaps_account). The zero pages are not "normal" pages and count nowhere.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit
from linmem.engine.memory import folio_head
from linmem.engine.pgtable import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE,
                                   _PAGE_SPECIAL, _PAGE_TABLE, HPAGE_PMD_NR, PAGE_SHIFT,
                                   PMD_SHIFT, PUD_SHIFT, pte_pfn, table_index, walk_pmd)
from linmem.engine.swapfile import is_swap_pte, swap_count, swp_slot
from linmem.mm.frames import PG_anon, PG_dirty, PG_referenced, PG_swapbacked

PSS_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# fields of the result (bytes; the PSS ones in fixed point)
RESIDENT, PSS, PSS_ANON, PSS_FILE, PSS_SHMEM, PSS_DIRTY, PSS_LOCKED = 0, 1, 2, 3, 4, 5, 6
SHARED_CLEAN, SHARED_DIRTY, PRIVATE_CLEAN, PRIVATE_DIRTY = 7, 8, 9, 10
REFERENCED, ANONYMOUS, ANONYMOUS_THP, LAZYFREE, SWAP, SWAP_PSS = 11, 12, 13, 14, 15, 16
NR_SMAPS = 17


@njit
def _accumulate(out, flags, size, pss, dirty, locked, private):
    """Models smaps_page_accumulate()."""
    out[PSS] += pss
    if flags & PG_anon:
        out[PSS_ANON] += pss
    elif flags & PG_swapbacked:
        out[PSS_SHMEM] += pss
    else:
        out[PSS_FILE] += pss
    if locked:
        out[PSS_LOCKED] += pss
    if dirty or (flags & PG_dirty):
        out[PSS_DIRTY] += pss
        out[PRIVATE_DIRTY if private else SHARED_DIRTY] += size
    else:
        out[PRIVATE_CLEAN if private else SHARED_CLEAN] += size


@njit
def smaps_account(M, out, pfn, nr, young, dirty, locked):
    """Models smaps_account() for ``nr`` pages from ``pfn`` mapped by one entry."""
    head = folio_head(M, pfn)
    flags = M.flags[head]
    size = nr * PAGE_SIZE
    if flags & PG_anon:
        out[ANONYMOUS] += size
    out[RESIDENT] += size
    if young or (flags & PG_referenced):
        out[REFERENCED] += size
    if M.refcount[head] == 1:
        _accumulate(out, flags, size, size << PSS_SHIFT, dirty, locked, True)
        return
    for i in range(nr):
        mapcount = M.mapcount[pfn + i]
        pss = PAGE_SIZE << PSS_SHIFT
        if mapcount >= 2:
            pss //= mapcount
        _accumulate(out, flags, PAGE_SIZE, pss, dirty, locked, mapcount < 2)


@njit
def smaps_range(M, mm, start, end, locked, out):
    """Sum the smaps fields of [start, end) of ``mm`` into ``out``."""
    va = start
    while va < end:
        next_pmd = (va | ((1 << PMD_SHIFT) - 1)) + 1
        pmd_t, _st = walk_pmd(M, mm, va, False)
        if pmd_t < 0:
            va = (va | ((1 << PUD_SHIFT) - 1)) + 1
            continue
        pe = M.pt[pmd_t, table_index(va, PMD_SHIFT)]
        if pe & _PAGE_PSE:
            if not (pe & _PAGE_SPECIAL):
                pfn = pte_pfn(pe)
                if M.flags[pfn] & PG_anon:
                    out[ANONYMOUS_THP] += HPAGE_PMD_NR * PAGE_SIZE
                smaps_account(M, out, pfn, HPAGE_PMD_NR, (pe & _PAGE_ACCESSED) != 0,
                              (pe & _PAGE_DIRTY) != 0, locked)
            va = next_pmd
            continue
        if pe & _PAGE_TABLE:
            pte_t = pe >> PAGE_SHIFT
            stop = min(end, next_pmd)
            while va < stop:
                e = M.pt[pte_t, table_index(va, PAGE_SHIFT)]
                if (e & _PAGE_PRESENT) and not (e & _PAGE_SPECIAL):
                    smaps_account(M, out, pte_pfn(e), 1, (e & _PAGE_ACCESSED) != 0,
                                  (e & _PAGE_DIRTY) != 0, locked)
                elif is_swap_pte(e):                 # smaps_pte_entry: a swap entry
                    out[SWAP] += PAGE_SIZE
                    users = swap_count(M, swp_slot(e))
                    out[SWAP_PSS] += (PAGE_SIZE << PSS_SHIFT) // users if users >= 2 \
                        else PAGE_SIZE << PSS_SHIFT
                va += PAGE_SIZE
        va = next_pmd


def smaps_stats(K, mm: int, start: int, end: int, locked: bool) -> np.ndarray:
    """The smaps sums of one VMA range (a fresh int64 array of NR_SMAPS)."""
    out = np.zeros(NR_SMAPS, dtype=np.int64)
    smaps_range(K.ref, mm, start, end, locked, out)
    return out
