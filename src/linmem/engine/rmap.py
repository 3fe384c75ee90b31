"""Compiled kernels: the reverse map (mm/rmap.c): from a folio to the
page-table entries that map it.

Reclaim needs to ask of a folio "who maps it, and did they use it lately?"
(folio_referenced) and to take it away from them (try_to_unmap). The kernel
finds the mappings through the folio's ``mapping``: for an anonymous folio the
anon_vma, whose chain lists every VMA (in every process forked from the
first) that may map it, at the address ``index << PAGE_SHIFT``; for a file
folio the file's i_mmap tree of VMAs, at ``vm_start + (index - vm_pgoff)``.

Here the same facts come as one sorted int64 array ``R`` (built by
``linmem.mm.rmap``), a row per (key, VMA): key = anon_vma id for anonymous
memory (one row for every anon_vma in a VMA's chain), -(file id + 1) for a
file mapping; then the mm, start, end, pgoff and flags of the VMA. A lookup
is a binary search on the key; each candidate VMA's page table is walked at
the folio's address and counts only if its entry maps this very page.

* folio_referenced: harvests (tests and clears) the young bit of every PTE
  or PMD that maps the folio; a VM_LOCKED mapping stops the walk and says so;
  mappings with MADV_SEQUENTIAL (VM_SEQ_READ) are skipped (vma_has_recency).
* try_to_unmap: clears every PTE, moving its dirty bit to the folio; an
  anonymous page's PTE becomes a swap entry for the folio's swap slot (one
  more reference on the slot, MM_SWAPENTS); a VM_LOCKED mapping makes it
  fail (the folio is then mlocked where it was found).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import page_writeback as PW
from linmem.engine import swapfile as SW
from linmem.engine.jit import njit
from linmem.engine.memory import _page_unmapped, _rss_add, folio_head
from linmem.engine.pgtable import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE,
                                   _PAGE_SPECIAL, _PAGE_TABLE, MM_ANONPAGES, MM_SWAPENTS,
                                   PAGE_SHIFT, PMD_SHIFT, pte_pfn, table_index, walk_pmd)
from linmem.mm.frames import PG_anon, PG_dirty

R_KEY, R_MM, R_START, R_END, R_PGOFF, R_FLAGS = 0, 1, 2, 3, 4, 5
NR_R = 6

VM_SEQ_READ = 0x8000
VM_LOCKED = 0x2000


@njit
def rmap_key(M, page):
    """The key of a folio's mappings in ``R``: its anon_vma, or its file."""
    if M.flags[page] & PG_anon:
        return np.int64(M.mapping[page])
    return -np.int64(M.mapping[page]) - 1


@njit
def _rows(R, key):
    keys = R[:, R_KEY]
    return np.searchsorted(keys, key, side="left"), np.searchsorted(keys, key, side="right")


@njit
def _address(M, R, r, page):
    """vma_address(): where the VMA of row ``r`` would map the page, or -1."""
    if M.flags[page] & PG_anon:
        # index is the virtual page number, kept in 32 bits: the VMA's
        # start supplies the high bits
        low = np.int64(M.index[page]) & 0xFFFFFFFF
        start_vpn = R[r, R_START] >> PAGE_SHIFT
        vpn = start_vpn - (start_vpn & 0xFFFFFFFF) + low
        if vpn < start_vpn:
            vpn += np.int64(1) << 32
        va = vpn << PAGE_SHIFT
    else:
        va = R[r, R_START] + ((np.int64(M.index[page]) - R[r, R_PGOFF]) << PAGE_SHIFT)
    if va < R[r, R_START] or va >= R[r, R_END]:
        return np.int64(-1)
    return va


@njit
def _entry(M, mm, va, page):
    """page_vma_mapped_walk() at one address: (table, index) of the entry
    that maps ``page`` (a PMD entry when the folio is PMD-mapped), or -1."""
    pmd_t, _st = walk_pmd(M, mm, va, False)
    if pmd_t < 0:
        return np.int64(-1), np.int64(0)
    pi = table_index(va, PMD_SHIFT)
    pe = M.pt[pmd_t, pi]
    if pe & _PAGE_PSE:
        if not (pe & _PAGE_SPECIAL) and pte_pfn(pe) == folio_head(M, page):
            return pmd_t, pi
        return np.int64(-1), np.int64(0)
    if not (pe & _PAGE_TABLE):
        return np.int64(-1), np.int64(0)
    pte_t = pe >> PAGE_SHIFT
    i = table_index(va, PAGE_SHIFT)
    e = M.pt[pte_t, i]
    if (e & _PAGE_PRESENT) and not (e & _PAGE_SPECIAL) and pte_pfn(e) == page:
        return pte_t, i
    return np.int64(-1), np.int64(0)


@njit
def folio_referenced(M, R, page):
    """Models folio_referenced(): (young entries found and cleared, the
    union of the flags of the VMAs that map it)."""
    referenced = 0
    vm_flags = np.int64(0)
    if M.mapcount[page] == 0:
        return referenced, vm_flags
    lo, hi = _rows(R, rmap_key(M, page))
    for r in range(lo, hi):
        flags = R[r, R_FLAGS]
        if flags & VM_SEQ_READ:
            continue
        va = _address(M, R, r, page)
        if va < 0:
            continue
        t, i = _entry(M, R[r, R_MM], va, page)
        if t < 0:
            continue
        if flags & VM_LOCKED:
            vm_flags |= VM_LOCKED
            break
        e = M.pt[t, i]
        if e & _PAGE_ACCESSED:
            M.pt[t, i] = e & ~np.int64(_PAGE_ACCESSED)
            referenced += 1
        vm_flags |= flags
    return referenced, vm_flags


UNMAP_OK, UNMAP_MAPPED, UNMAP_LOCKED = 0, 1, 2


@njit
def try_to_unmap(M, R, page, slot):
    """Models try_to_unmap() for a small folio: every PTE that maps it is
    cleared (an anonymous one becomes the swap entry of ``slot``). Returns
    UNMAP_OK, UNMAP_LOCKED when a VM_LOCKED mapping keeps it, UNMAP_MAPPED
    when some mapping was not found."""
    lo, hi = _rows(R, rmap_key(M, page))
    anon = (M.flags[page] & PG_anon) != 0
    for r in range(lo, hi):
        if M.mapcount[page] == 0:
            break
        va = _address(M, R, r, page)
        if va < 0:
            continue
        mm = R[r, R_MM]
        t, i = _entry(M, mm, va, page)
        if t < 0:
            continue
        if R[r, R_FLAGS] & VM_LOCKED:
            return UNMAP_LOCKED
        e = M.pt[t, i]
        if e & _PAGE_DIRTY:
            if anon:
                M.flags[page] |= PG_dirty
            else:
                PW.folio_mark_dirty(M, page)
        if anon:
            exclusive = M.mapcount[page] == 1 and M.refcount[page] == 2
            M.pt[t, i] = SW.mk_swp_pte(slot, exclusive)
            SW.swap_duplicate(M, slot)
            M.mm_stat[mm, MM_ANONPAGES] -= 1
            M.mm_stat[mm, MM_SWAPENTS] += 1
        else:
            M.pt[t, i] = 0
            _rss_add(M, mm, page, -1)
        _page_unmapped(M, page, page)
        M.refcount[page] -= 1
    return UNMAP_OK if M.mapcount[page] == 0 else UNMAP_MAPPED
