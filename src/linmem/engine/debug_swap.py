"""Compiled walk for the swap invariant checks (mm/debug.py:check_swap): the
swap entries of one address space's page tables."""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit
from linmem.engine.pgtable import _PAGE_PSE, _PAGE_TABLE, MM_PGD, PAGE_SHIFT, PTRS_PER_TABLE
from linmem.engine.swapfile import is_swap_pte, swp_slot


@njit
def count_swap_ptes(M, mm, refs):
    """Walk every page table of ``mm`` (PGD, PUD, PMD, PTE; huge PMDs have no
    swap entries): ``refs[slot]`` is raised once per swap PTE naming the
    slot. Returns (swap PTEs found, the first slot beyond ``refs``, or -1)."""
    found = 0
    pgd = M.mm_stat[mm, MM_PGD]
    for i in range(PTRS_PER_TABLE):
        e1 = M.pt[pgd, i]
        if not (e1 & _PAGE_TABLE):
            continue
        pud = e1 >> PAGE_SHIFT
        for j in range(PTRS_PER_TABLE):
            e2 = M.pt[pud, j]
            if not (e2 & _PAGE_TABLE):
                continue
            pmd = e2 >> PAGE_SHIFT
            for k in range(PTRS_PER_TABLE):
                e3 = M.pt[pmd, k]
                if (e3 & _PAGE_PSE) or not (e3 & _PAGE_TABLE):
                    continue
                pte = e3 >> PAGE_SHIFT
                for n in range(PTRS_PER_TABLE):
                    e = M.pt[pte, n]
                    if is_swap_pte(e):
                        slot = swp_slot(e)
                        if slot < 0 or slot >= refs.shape[0]:
                            return found, slot
                        refs[slot] += 1
                        found += 1
    return found, np.int64(-1)
