"""Compiled kernels: page faults, unmapping and fork's copy of the page tables.

The model of mm/memory.c and mm/huge_memory.c on the arrays of
``linmem.engine.pgtable``; ``linmem.mm.memory`` is the Python side and explains
the rules. A process's VMAs come in as an int64 array ``V`` (one row per VMA,
sorted by address, columns ``V_*``), which is all the compiled code needs.

Every function that may need memory returns a status; NEED_PAGE and
NEED_TABLES leave the state consistent so the caller can get memory and call
again (see pgtable.py).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine import filemap as F
from linmem.engine import lru as L
from linmem.engine import memcontrol as MC
from linmem.engine import page_writeback as PW
from linmem.engine import readahead as R
from linmem.engine import shmem as SH
from linmem.engine import swap_state as SS
from linmem.engine import swapfile as SW
from linmem.engine.jit import njit
from linmem.engine.mm_inline import lru_gen_enter_fault, lru_gen_exit_fault
from linmem.engine.pgtable import (
    _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_SPECIAL, _PAGE_TABLE,
    _PAGE_USER, C_HUGE_ZERO_PFN, C_PREALLOC_THP, C_SWAP_PEND_MM, C_SWAP_PEND_PAGE, C_SWAP_PEND_VA,
    C_THP_MODE,
    C_USE_ZERO_PAGE, C_ZERO_PFN,
    DEP_SHIFT, HPAGE_PMD_NR, HPAGE_PMD_ORDER, KIND_THP, KIND_USER, MM_ANONPAGES, MM_FILEPAGES,
    MM_HIWATER_RSS, MM_NR_PMDS, MM_NR_PTES, MM_NR_PUDS, MM_PGD, MM_SHMEMPAGES, MM_SWAPENTS,
    NEED_PAGE,
    OK, PAGE_SHIFT, PGD_SHIFT, PMD_SHIFT, PUD_SHIFT, SEGV, T_MAJ_FLT, T_MIN_FLT, alloc_frame,
    alloc_frame_unaccounted,
    alloc_table, free_frame, free_table, mk_entry, pmd_deposit, pte_pfn, table_index, walk_pmd,
    walk_pte,
)
from linmem.mm.frames import (LRU_REFS_MASK, PG_active, PG_anon, PG_dirty, PG_head, PG_lru,
                              PG_mlocked, PG_reclaim, PG_referenced, PG_swapbacked, PG_swapcache,
                              PG_unevictable, PG_uptodate, PG_workingset, PG_writeback)
from linmem.mm.vmstat import NR_MLOCK, PGFAULT, PGMAJFAULT, node_item, vm_event

# VMA rows
V_START, V_END, V_FLAGS, V_PGOFF, V_FILE, V_ANON = 0, 1, 2, 3, 4, 5
NR_V = 6

VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_LOCKED = 0x2000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000

# results of one access
HIT = 0          # no fault: the PTE allowed it
MINOR = 1
MAJOR = 2
FALLBACK = 3     # internal: THP not possible here, use small pages

NR_ANON_MAPPED = node_item("nr_anon_pages")
NR_FILE_MAPPED = node_item("nr_mapped")
NR_FILE_PAGES = node_item("nr_file_pages")
NR_ANON_THPS = node_item("nr_anon_transparent_hugepages")
THP_FAULT_ALLOC = vm_event("thp_fault_alloc")
THP_FAULT_FALLBACK = vm_event("thp_fault_fallback")
THP_SPLIT_PMD = vm_event("thp_split_pmd")
THP_ZERO_PAGE_ALLOC = vm_event("thp_zero_page_alloc")
UNEVICTABLE_PGS_MLOCKED = vm_event("unevictable_pgs_mlocked")
UNEVICTABLE_PGS_MUNLOCKED = vm_event("unevictable_pgs_munlocked")
PGREUSE = vm_event("pgreuse")
HPAGE_MASK = ~np.int64(HPAGE_PMD_NR - 1)


# --------------------------------------------------------------------------
# VMAs and folios

@njit
def find_vma(V, va):
    """Index of the VMA containing ``va``, or -1 (models vma_lookup)."""
    i = np.searchsorted(V[:, V_END], va, side="right")
    if i < V.shape[0] and V[i, V_START] <= va:
        return i
    return -1


@njit
def folio_head(M, pfn):
    """The head frame of the folio ``pfn`` belongs to (small or PMD-sized)."""
    h = pfn & HPAGE_MASK
    if h != pfn and (M.flags[h] & PG_head) and M.order[h] == HPAGE_PMD_ORDER:
        return h
    return pfn


@njit
def folio_nr(M, head):
    return np.int64(HPAGE_PMD_NR) if M.flags[head] & PG_head else np.int64(1)


@njit
def _mlock_folio(M, head, nr):
    """Models mlock_new_folio(): VM_LOCKED pages go to the unevictable list."""
    M.flags[head] |= PG_mlocked | PG_unevictable
    M.zstat[B.zone_of(M, head), NR_MLOCK] += nr
    M.events[UNEVICTABLE_PGS_MLOCKED] += nr


@njit
def new_anon_folio(M, pfn, nr, anon_vma, vpn, vm_flags, memcg):
    """Models folio_add_new_anon_rmap() + folio_add_lru_vma() for a new folio."""
    S = M
    S.flags[pfn] |= PG_anon | PG_swapbacked | PG_uptodate
    if nr > 1:
        S.flags[pfn] |= PG_head
        S.order[pfn] = HPAGE_PMD_ORDER
        M.index[pfn + 1] = 1                       # entire mapcount
        M.node_stat[NR_ANON_THPS] += nr
        MC.mod_memcg_page(M, pfn, MC.MS_ANON_THPS, nr)
    M.mapping[pfn] = anon_vma
    M.index[pfn] = vpn
    for i in range(nr):
        M.mapcount[pfn + i] = 1
    M.node_stat[NR_ANON_MAPPED] += nr
    MC.mod_memcg_page(M, pfn, MC.MS_ANON_MAPPED, nr)
    if vm_flags & VM_LOCKED:
        _mlock_folio(M, pfn, nr)
    L.lruvec_add_folio(M, pfn, nr, memcg)


@njit
def folio_put(M, head):
    """Drop one reference; the last one frees the folio (models folio_put)."""
    M.refcount[head] -= 1
    if M.refcount[head] > 0:
        return
    nr = folio_nr(M, head)
    if M.flags[head] & PG_lru:
        L.lruvec_del_folio(M, head, nr, M.memcg[head])
    if M.flags[head] & PG_mlocked:
        M.zstat[B.zone_of(M, head), NR_MLOCK] -= nr
    if M.flags[head] & PG_anon:
        M.flags[head] &= ~np.uint32(PG_dirty)          # an anonymous page's data is gone
    M.flags[head] &= ~np.uint32(PG_anon | PG_swapbacked | PG_uptodate | PG_head |
                                   PG_mlocked | PG_unevictable | PG_active | PG_referenced |
                                   PG_reclaim | PG_workingset | LRU_REFS_MASK)
    M.mapping[head] = 0
    M.index[head] = 0
    if nr > 1:
        M.index[head + 1] = 0
    free_frame(M, head, HPAGE_PMD_ORDER if nr > 1 else 0)


@njit
def truncate_file(M, fid):
    """Models truncate_inode_pages(): every cached page of the file leaves the
    cache (freed once no mapping holds it any more); dirty pages are
    cancelled (folio_cancel_dirty). The caller has waited for writeback. A
    shmem page swapped out gives its swap slot back, and its swap-cache
    folio goes too when nothing maps it (shmem_undo_range -> shmem_free_swap
    -> free_swap_and_cache)."""
    M.shadow[M.f_base[fid]:M.f_base[fid] + M.f_npages[fid]] = 0    # shadows go too
    for pgoff in range(M.f_npages[fid]):
        slot = M.f_base[fid] + pgoff
        page = np.int64(M.pc[slot])
        if R.pc_is_swap(page):
            M.pc[slot] = -1
            free_swap_and_cache(M, R.pc_swap_slot(page))
            continue
        if page < 0:
            continue
        PW.folio_cancel_dirty(M, page)
        M.pc[slot] = -1
        M.node_stat[F.NR_FILE_PAGES] -= 1
        MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, -1)
        if M.flags[page] & PG_swapbacked:
            M.node_stat[F.NR_SHMEM] -= 1
            MC.mod_memcg_page(M, page, MC.MS_SHMEM, -1)
        folio_put(M, page)


@njit
def invalidate_mapping_pages(M, fid, start=0, end=-1):
    """Models invalidate_mapping_pages() (mapping_try_invalidate) for
    drop_caches and POSIX_FADV_DONTNEED: the clean, unmapped, unlocked pages
    ``start..end`` (-1: to the end) of a file leave its cache and are freed.
    Returns how many."""
    dropped = 0
    last = M.f_npages[fid] - 1 if end < 0 else min(end, M.f_npages[fid] - 1)
    for pgoff in range(start, last + 1):
        slot = M.f_base[fid] + pgoff
        page = np.int64(M.pc[slot])
        if page < 0 or M.mapcount[page] != 0 or M.refcount[page] != 1 or \
                (M.flags[page] & (PG_dirty | PG_writeback | PG_swapbacked)):
            continue
        M.pc[slot] = -1
        M.node_stat[F.NR_FILE_PAGES] -= 1
        MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, -1)
        folio_put(M, page)
        dropped += 1
    return dropped


@njit
def _rss_add(M, mm, head, nr):
    if M.flags[head] & PG_anon:
        M.mm_stat[mm, MM_ANONPAGES] += nr
    elif M.flags[head] & PG_swapbacked:
        M.mm_stat[mm, MM_SHMEMPAGES] += nr
    else:
        M.mm_stat[mm, MM_FILEPAGES] += nr


@njit
def _page_unmapped(M, pfn, head):
    """One mapping of ``pfn`` went away: mapcount and the mapped counters."""
    M.mapcount[pfn] -= 1
    if M.mapcount[pfn] == 0:
        if M.flags[head] & PG_anon:
            M.node_stat[NR_ANON_MAPPED] -= 1
            MC.mod_memcg_page(M, head, MC.MS_ANON_MAPPED, -1)
        else:
            M.node_stat[NR_FILE_MAPPED] -= 1
            MC.mod_memcg_page(M, head, MC.MS_FILE_MAPPED, -1)


@njit
def update_hiwater_rss(M, mm):
    rss = M.mm_stat[mm, MM_FILEPAGES] + M.mm_stat[mm, MM_ANONPAGES] + M.mm_stat[mm, MM_SHMEMPAGES]
    if rss > M.mm_stat[mm, MM_HIWATER_RSS]:
        M.mm_stat[mm, MM_HIWATER_RSS] = rss


# --------------------------------------------------------------------------
# faults on small pages

@njit
def do_anonymous_page(M, V, vi, mm, pte_t, va, write, memcg):
    """Models do_anonymous_page(): a read maps the shared zero page, a write a
    new zeroed page, both young; a write also makes the PTE dirty."""
    i = table_index(va, PAGE_SHIFT)
    if not write:
        M.pt[pte_t, i] = mk_entry(M.ctl[C_ZERO_PFN], _PAGE_PRESENT | _PAGE_USER |
                                  _PAGE_SPECIAL | _PAGE_ACCESSED)
        return MINOR
    pfn = alloc_frame(M, KIND_USER)
    if pfn < 0:
        return NEED_PAGE
    new_anon_folio(M, pfn, 1, V[vi, V_ANON], va >> PAGE_SHIFT, V[vi, V_FLAGS], memcg)
    M.mm_stat[mm, MM_ANONPAGES] += 1
    M.pt[pte_t, i] = mk_entry(pfn, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED |
                              _PAGE_DIRTY)
    return MINOR


@njit
def do_file_page(M, V, vi, mm, pte_t, va, write, memcg):
    """Models do_read_fault()/do_cow_fault()/do_shared_fault() over the page
    cache (linmem.engine.filemap): a read tries fault-around first; then
    filemap_fault finds the page (starting readahead ahead of the reader when
    it is marked) or reads it, with read-around, as a major fault. shmem
    (shmem_fault) has no readahead: its page is cached, or read back from
    swap (a major fault unless the swap cache still has it), or a new zeroed
    one. A write to a private mapping copies the page into a new anonymous
    one."""
    fid = V[vi, V_FILE]
    pgoff = V[vi, V_PGOFF] + ((va - V[vi, V_START]) >> PAGE_SHIFT)
    if pgoff >= M.f_npages[fid]:
        return SEGV                                  # SIGBUS beyond the end of the file
    flags = V[vi, V_FLAGS]
    result = MINOR
    if M.ra[fid, F.RA_SHMEM]:
        if not write and F.do_fault_around(M, V, vi, mm, pte_t, va):
            return MINOR
        # shmem_fault: the cached page, a swapped-out one read back (major
        # unless still in the swap cache), or a new zeroed one for a hole
        st, page, major = SH.shmem_get_folio(M, fid, pgoff, SH.SGP_CACHE, memcg)
        if st != OK:
            return st
        if major:
            result = MAJOR
    else:
        st, page, major = F.filemap_fault(M, V, vi, mm, pte_t, va, pgoff, write, memcg)
        if st != OK:
            return st
        result = MAJOR if major else MINOR
        if page < 0:                                 # the retried fault-around mapped it
            return result
    i = table_index(va, PAGE_SHIFT)
    if write and not (flags & VM_SHARED):
        new = alloc_frame(M, KIND_USER)
        if new < 0:
            return NEED_PAGE                         # the cache page stays cached
        new_anon_folio(M, new, 1, V[vi, V_ANON], va >> PAGE_SHIFT, flags, memcg)
        M.mm_stat[mm, MM_ANONPAGES] += 1
        M.pt[pte_t, i] = mk_entry(new, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER |
                                  _PAGE_ACCESSED | _PAGE_DIRTY)
        return result
    F.map_file_page(M, mm, pte_t, i, page, flags)
    if write:                                        # do_shared_fault -> fault_dirty_shared_page
        M.pt[pte_t, i] |= _PAGE_RW | _PAGE_DIRTY
        PW.folio_mark_dirty(M, page)
    return result


@njit
def wp_page_copy(M, V, vi, mm, pte_t, va, old_entry, memcg):
    """Models wp_page_copy(): a private copy replaces a shared or zero page."""
    new = alloc_frame(M, KIND_USER)
    if new < 0:
        return NEED_PAGE
    new_anon_folio(M, new, 1, V[vi, V_ANON], va >> PAGE_SHIFT, V[vi, V_FLAGS], memcg)
    M.pt[pte_t, table_index(va, PAGE_SHIFT)] = mk_entry(
        new, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY)
    if old_entry & _PAGE_SPECIAL:
        M.mm_stat[mm, MM_ANONPAGES] += 1
        return MINOR
    old = pte_pfn(old_entry)
    head = folio_head(M, old)
    if not (M.flags[head] & PG_anon):
        M.mm_stat[mm, MM_FILEPAGES] -= 1
        M.mm_stat[mm, MM_ANONPAGES] += 1
    _page_unmapped(M, old, head)
    folio_put(M, head)
    return MINOR


@njit
def do_wp_page(M, V, vi, mm, pte_t, va, entry, memcg):
    """Models do_wp_page(): a write to a present, write-protected PTE.

    A shared file page is made writable in place; an anonymous page that only
    this mapping references is reused (wp_can_reuse_anon_folio: refcount 1);
    anything else (the zero page, a page shared after fork, a private file
    page) is copied.
    XXX: a PTE-mapped THP subpage is always copied (the kernel reuses it when
    one mm maps the whole folio exclusively).
    """
    i = table_index(va, PAGE_SHIFT)
    if entry & _PAGE_SPECIAL:
        return wp_page_copy(M, V, vi, mm, pte_t, va, entry, memcg)
    pfn = pte_pfn(entry)
    head = folio_head(M, pfn)
    flags = V[vi, V_FLAGS]
    if not (M.flags[head] & PG_anon):
        if flags & VM_SHARED:                        # wp_page_shared: page_mkwrite, dirty
            M.pt[pte_t, i] = entry | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED
            PW.folio_mark_dirty(M, head)
            return MINOR
        return wp_page_copy(M, V, vi, mm, pte_t, va, entry, memcg)
    if head == pfn and M.refcount[head] == 1:
        M.pt[pte_t, i] = entry | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED
        M.events[PGREUSE] += 1
        return MINOR
    return wp_page_copy(M, V, vi, mm, pte_t, va, entry, memcg)


# --------------------------------------------------------------------------
# swap-in

@njit
def should_try_to_free_swap(M, page, vm_flags, write):
    """Models should_try_to_free_swap(): drop the swap copy of a page being
    mapped when swap is more than half full, the VMA is mlocked, or a write
    maps it and nobody else holds it (only the swap cache does)."""
    if not (M.flags[page] & PG_swapcache):
        return False
    if SW.vm_swap_full(M) or (vm_flags & VM_LOCKED) or (M.flags[page] & PG_mlocked):
        return True
    return write and M.refcount[page] == 1


@njit
def do_swap_page(M, V, vi, mm, pte_t, va, entry, write, memcg):
    """Models do_swap_page(): the PTE holds a swap entry.

    Found in the swap cache it is a minor fault (a readahead hit counts);
    else the page is read, a major fault: straight into a new folio on a
    synchronous device (zram) when the slot has one user, else through the
    swap cache with readahead around it. The PTE's reference on the slot
    goes (swap_free), and the swap copy too when should_try_to_free_swap
    says so. The page is mapped young, writable when the VMA is and the
    page exclusive (dirty for a write); a write to a shared one copies."""
    slot = SW.swp_slot(entry)
    i = table_index(va, PAGE_SHIFT)
    flags = V[vi, V_FLAGS]
    result = MINOR
    page = SS.lookup_swap_cache(M, slot)
    if M.ctl[C_SWAP_PEND_VA] == va and M.ctl[C_SWAP_PEND_MM] == mm and page >= 0:
        # resumed: the page was read, its readahead waited for memory
        if SS.swap_ra_read(M, mm, pte_t, va, memcg) == NEED_PAGE:
            return NEED_PAGE
        M.refcount[page] -= 1                        # the fault's hold on it
        result = MAJOR
    elif page >= 0:
        SS.swap_update_readahead(M, page, mm, va)
    else:
        M.ctl[C_SWAP_PEND_VA] = -1
        a = SW.swap_area(M, slot)
        page = alloc_frame(M, KIND_USER)
        if page < 0:
            return NEED_PAGE
        result = MAJOR
        if (M.si[a, SW.SI_FLAGS] & SW.SWP_SYNCHRONOUS_IO) and SW.swap_count(M, slot) == 1:
            SS.swapin_new_folio(M, page, slot, memcg, False)
            M.refcount[page] = 0                     # the mapping below takes the first
        else:
            SW.swapcache_prepare(M, slot)
            SS.swapin_new_folio(M, page, slot, memcg, True)
            M.refcount[page] += 1                    # held while reading ahead
            M.ctl[C_SWAP_PEND_PAGE] = page
            if SS.swap_vma_readahead(M, mm, pte_t, va, V[vi, V_START], V[vi, V_END],
                                     memcg) == NEED_PAGE:
                return NEED_PAGE
            M.refcount[page] -= 1
    SW.swap_free(M, slot)
    M.mm_stat[mm, MM_SWAPENTS] -= 1
    M.mm_stat[mm, MM_ANONPAGES] += 1
    if should_try_to_free_swap(M, page, flags, write) and SS.folio_free_swap(M, page):
        M.refcount[page] -= 1
    exclusive = (entry & SW._PAGE_SWP_EXCLUSIVE) != 0 or M.refcount[page] == 0
    if not (M.flags[page] & PG_anon):                # folio_add_new_anon_rmap
        M.flags[page] |= PG_anon | PG_swapbacked
        M.mapping[page] = V[vi, V_ANON]
        M.index[page] = va >> PAGE_SHIFT
    M.refcount[page] += 1
    M.mapcount[page] += 1
    if M.mapcount[page] == 1:
        M.node_stat[NR_ANON_MAPPED] += 1
        MC.mod_memcg_page(M, page, MC.MS_ANON_MAPPED, 1)
    pte = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
    if exclusive and (flags & VM_WRITE):
        pte |= _PAGE_RW
        if write:
            pte |= _PAGE_DIRTY
    M.pt[pte_t, i] = mk_entry(page, pte)
    if flags & VM_LOCKED:
        _mlock_folio_present(M, page, True)
    if write and not (pte & _PAGE_RW):
        r = do_wp_page(M, V, vi, mm, pte_t, va, M.pt[pte_t, i], memcg)
        if r == NEED_PAGE:
            return NEED_PAGE                         # retried: now a write to a present PTE
    return result


# --------------------------------------------------------------------------
# transparent huge pages

@njit
def thp_eligible(M, V, vi, va):
    """Models thp_vma_allowable_order() + transhuge_vma_suitable() for anonymous
    memory: THP "always", or "madvise" with MADV_HUGEPAGE; never with
    MADV_NOHUGEPAGE; the aligned 2 MiB range must lie inside the VMA."""
    mode = M.ctl[C_THP_MODE]
    flags = V[vi, V_FLAGS]
    if mode == 0 or (flags & VM_NOHUGEPAGE) or V[vi, V_FILE] >= 0 or (flags & VM_SHARED):
        return False
    if mode == 1 and not (flags & VM_HUGEPAGE):
        return False
    haddr = va & ~np.int64((1 << PMD_SHIFT) - 1)
    return haddr >= V[vi, V_START] and haddr + (1 << PMD_SHIFT) <= V[vi, V_END]


@njit
def _huge_zero_pfn(M):
    """Models mm_get_huge_zero_folio(): allocated at first use, then shared;
    charged to no memcg (the kernel allocates it without __GFP_ACCOUNT)."""
    pfn = M.ctl[C_HUGE_ZERO_PFN]
    if pfn >= 0:
        return pfn
    pfn = alloc_frame_unaccounted(M, KIND_THP)
    if pfn < 0:
        return pfn
    M.ctl[C_HUGE_ZERO_PFN] = pfn
    M.events[THP_ZERO_PAGE_ALLOC] += 1
    return pfn


@njit
def do_huge_pmd_anonymous_page(M, V, vi, mm, pmd_t, va, write, memcg):
    """Models do_huge_pmd_anonymous_page(): one fault maps 2 MiB.

    A read maps the huge zero page (use_zero_page); a write a new THP folio.
    Either way a PTE table is deposited for a later split (it counts in
    PageTables and VmPTE). Returns FALLBACK when no huge page can be had.
    """
    if M.ctl[C_PREALLOC_THP] == -2:                  # the slow path found none
        M.ctl[C_PREALLOC_THP] = -1
        M.events[THP_FAULT_FALLBACK] += 1
        return FALLBACK
    use_zero = not write and M.ctl[C_USE_ZERO_PAGE] != 0
    pfn = _huge_zero_pfn(M) if use_zero else alloc_frame(M, KIND_THP)
    if pfn < 0:
        return NEED_PAGE
    dep, st = alloc_table(M)
    if st != OK:
        if not use_zero:
            MC.uncharge_folio(M, pfn, HPAGE_PMD_NR)  # keep it for the retry, uncharged
            M.ctl[C_PREALLOC_THP] = pfn
        return st
    M.mm_stat[mm, MM_NR_PTES] += 1
    pi = table_index(va, PMD_SHIFT)
    if use_zero:
        M.pt[pmd_t, pi] = (dep << DEP_SHIFT) | mk_entry(
            pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE | _PAGE_SPECIAL | _PAGE_ACCESSED)
        return MINOR
    haddr = va & ~np.int64((1 << PMD_SHIFT) - 1)
    new_anon_folio(M, pfn, HPAGE_PMD_NR, V[vi, V_ANON], haddr >> PAGE_SHIFT,
                   V[vi, V_FLAGS], memcg)
    M.mm_stat[mm, MM_ANONPAGES] += HPAGE_PMD_NR
    M.pt[pmd_t, pi] = (dep << DEP_SHIFT) | mk_entry(
        pfn, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY)
    M.events[THP_FAULT_ALLOC] += 1
    MC.count_memcg_event(M, pfn, MC.MS_THP_FAULT_ALLOC, 1)
    return MINOR


@njit
def split_huge_pmd(M, pmd_t, va):
    """Models __split_huge_pmd_locked(): the deposited table takes the PMD's
    place, one PTE per subpage with the PMD's protections. The folio stays
    whole; only the mapping changes (its entire mapcount moves to the pages)."""
    pi = table_index(va, PMD_SHIFT)
    e = M.pt[pmd_t, pi]
    dep = pmd_deposit(e)
    pfn = pte_pfn(e)
    flags = e & (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY)
    if e & _PAGE_SPECIAL:                            # the huge zero page: 4K zero pages
        for i in range(HPAGE_PMD_NR):
            M.pt[dep, i] = mk_entry(M.ctl[C_ZERO_PFN],
                                    (flags & ~_PAGE_RW & ~_PAGE_DIRTY) | _PAGE_SPECIAL)
    else:
        for i in range(HPAGE_PMD_NR):
            M.pt[dep, i] = mk_entry(pfn + i, flags)
        M.refcount[pfn] += HPAGE_PMD_NR - 1        # a reference per PTE instead of one
        M.index[pfn + 1] -= 1
        if M.index[pfn + 1] == 0:
            M.node_stat[NR_ANON_THPS] -= HPAGE_PMD_NR
            MC.mod_memcg_page(M, pfn, MC.MS_ANON_THPS, -HPAGE_PMD_NR)
    M.pt[pmd_t, pi] = (dep << PAGE_SHIFT) | _PAGE_TABLE | _PAGE_PRESENT | _PAGE_RW | _PAGE_USER
    M.events[THP_SPLIT_PMD] += 1
    return dep


@njit
def do_huge_zero_wp_pmd(M, V, vi, mm, pmd_t, va, entry, memcg):
    """Models do_huge_zero_wp_pmd() (6.13+): a write to the huge zero page
    allocates a THP for the whole 2 MiB, one fault; FALLBACK without one."""
    if M.ctl[C_PREALLOC_THP] == -2:
        M.ctl[C_PREALLOC_THP] = -1
        return FALLBACK
    pfn = alloc_frame(M, KIND_THP)
    if pfn < 0:
        return NEED_PAGE
    haddr = va & ~np.int64((1 << PMD_SHIFT) - 1)
    new_anon_folio(M, pfn, HPAGE_PMD_NR, V[vi, V_ANON], haddr >> PAGE_SHIFT,
                   V[vi, V_FLAGS], memcg)
    M.mm_stat[mm, MM_ANONPAGES] += HPAGE_PMD_NR
    dep = pmd_deposit(entry)
    M.pt[pmd_t, table_index(va, PMD_SHIFT)] = (dep << DEP_SHIFT) | mk_entry(
        pfn, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY)
    M.events[THP_FAULT_ALLOC] += 1
    MC.count_memcg_event(M, pfn, MC.MS_THP_FAULT_ALLOC, 1)
    return MINOR


@njit
def do_huge_pmd_wp_page(M, V, vi, mm, pmd_t, va, entry, memcg):
    """Models do_huge_pmd_wp_page(): the huge zero page gets a THP of its own;
    a THP only this mapping holds is reused (one fault for 2 MiB); otherwise
    the PMD is split and the PTE level copies 4 KiB."""
    pi = table_index(va, PMD_SHIFT)
    if entry & _PAGE_SPECIAL:
        r = do_huge_zero_wp_pmd(M, V, vi, mm, pmd_t, va, entry, memcg)
        if r != FALLBACK:
            return r
    else:
        head = pte_pfn(entry)
        if M.refcount[head] == 1:
            M.pt[pmd_t, pi] = entry | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED
            return MINOR
    split_huge_pmd(M, pmd_t, va)
    return FALLBACK


# --------------------------------------------------------------------------
# the fault handler and the access loop

@njit
def handle_mm_fault(M, V, vi, mm, va, write, memcg):
    """Models __handle_mm_fault(): allocate the tables down to the PMD, try a
    huge page where allowed, else the PTE level (handle_pte_fault)."""
    pmd_t, st = walk_pmd(M, mm, va, True)
    if st != OK:
        return st
    pe = M.pt[pmd_t, table_index(va, PMD_SHIFT)]
    if pe == 0 and thp_eligible(M, V, vi, va):
        r = do_huge_pmd_anonymous_page(M, V, vi, mm, pmd_t, va, write, memcg)
        if r != FALLBACK:
            return r
    elif pe & _PAGE_PSE:
        if not write or pe & _PAGE_RW:
            return HIT
        r = do_huge_pmd_wp_page(M, V, vi, mm, pmd_t, va, pe, memcg)
        if r != FALLBACK:
            return r
    pte_t, st = walk_pte(M, mm, va, True)
    if st != OK:
        return st
    e = M.pt[pte_t, table_index(va, PAGE_SHIFT)]
    if e & _PAGE_PRESENT:
        if write and not (e & _PAGE_RW):
            return do_wp_page(M, V, vi, mm, pte_t, va, e, memcg)
        return HIT
    if SW.is_swap_pte(e):
        return do_swap_page(M, V, vi, mm, pte_t, va, e, write, memcg)
    if V[vi, V_FILE] >= 0:
        return do_file_page(M, V, vi, mm, pte_t, va, write, memcg)
    return do_anonymous_page(M, V, vi, mm, pte_t, va, write, memcg)


@njit
def _access_allowed(flags, write):
    if write:
        return (flags & VM_WRITE) != 0
    return (flags & (VM_READ | VM_WRITE | VM_EXEC)) != 0


@njit
def try_hit(M, mm, va, write):
    """The no-fault path: a present entry that allows the access gets its
    accessed (and, for a write, dirty) bit, as the MMU sets them."""
    pmd_t, _st = walk_pmd(M, mm, va, False)
    if pmd_t < 0:
        return False
    pi = table_index(va, PMD_SHIFT)
    pe = M.pt[pmd_t, pi]
    set_bits = _PAGE_ACCESSED | (_PAGE_DIRTY if write else 0)
    if pe & _PAGE_PSE:
        if write and not (pe & _PAGE_RW):
            return False
        M.pt[pmd_t, pi] = pe | set_bits
        return True
    if not (pe & _PAGE_TABLE):
        return False
    pte_t = pe >> PAGE_SHIFT
    i = table_index(va, PAGE_SHIFT)
    e = M.pt[pte_t, i]
    if not (e & _PAGE_PRESENT) or (write and not (e & _PAGE_RW)):
        return False
    M.pt[pte_t, i] = e | set_bits
    return True


ACCESS_READ, ACCESS_WRITE, ACCESS_WRITE_IN_ADDR = 0, 1, 2


@njit
def access_pages(M, V, mm, pid, vas, write, start, memcg, max_faults):
    """Replay accesses ``vas[start:]`` by task ``pid`` of mm ``mm``: loads
    (``write`` ACCESS_READ), stores (ACCESS_WRITE), or each as bit 0 of its
    address says (ACCESS_WRITE_IN_ADDR: 1 for a store; addresses are of
    pages, so the bit is free).

    Returns (status, next index): OK when all were done, or when the next
    access would fault and ``max_faults`` faults were taken (a negative
    ``max_faults``: no limit); NEED_* to be resumed at the index; SEGV at
    the offending access. Faults are counted as handle_mm_fault and
    mm_account_fault count them (pgfault, and the task's min_flt or maj_flt).
    """
    faults = 0
    for k in range(start, vas.shape[0]):
        va = vas[k]
        w = write != ACCESS_READ
        if write == ACCESS_WRITE_IN_ADDR:
            w = (va & 1) != 0
            va &= ~np.int64(1)
        if try_hit(M, mm, va, w):
            continue
        if faults == max_faults:
            return OK, k
        vi = find_vma(V, va)
        if vi < 0 or not _access_allowed(V[vi, V_FLAGS], w):
            return SEGV, k
        lru_gen_enter_fault(M, V[vi, V_FLAGS])
        r = handle_mm_fault(M, V, vi, mm, va, w, memcg)
        lru_gen_exit_fault(M)
        if r < 0:
            return r, k
        if r == HIT:
            continue
        faults += 1
        M.events[PGFAULT] += 1
        MC.count_fault(M, r == MAJOR)
        if r == MAJOR:
            M.events[PGMAJFAULT] += 1
            M.task_stat[pid, T_MAJ_FLT] += 1
        else:
            M.task_stat[pid, T_MIN_FLT] += 1
    return OK, vas.shape[0]


# --------------------------------------------------------------------------
# unmapping

@njit
def free_swap_and_cache(M, slot):
    """Models free_swap_and_cache(): a swap entry is zapped; a page left in
    the swap cache with nobody mapping it goes too."""
    SW.swap_free(M, slot)
    page = SS.lookup_swap_cache(M, slot)
    if page < 0 or M.mapcount[page] > 0 or (M.flags[page] & PG_writeback):
        return
    if SS.folio_free_swap(M, page):
        folio_put(M, page)


@njit
def _zap_pte(M, mm, pte_t, i):
    """Models zap_present_ptes()/zap_nonpresent_ptes() for one entry: a file
    page's young bit marks it accessed and its dirty bit dirties it; a swap
    entry gives its slot back."""
    e = M.pt[pte_t, i]
    M.pt[pte_t, i] = 0
    if SW.is_swap_pte(e):
        M.mm_stat[mm, MM_SWAPENTS] -= 1
        free_swap_and_cache(M, SW.swp_slot(e))
        return
    if not (e & _PAGE_PRESENT) or (e & _PAGE_SPECIAL):
        return
    pfn = pte_pfn(e)
    head = folio_head(M, pfn)
    if not (M.flags[head] & PG_anon):
        if e & _PAGE_DIRTY and not (M.flags[head] & PG_dirty):
            PW.folio_mark_dirty(M, head)
        if e & _PAGE_ACCESSED:
            F.folio_mark_accessed(M, head)
    _rss_add(M, mm, head, -1)
    _page_unmapped(M, pfn, head)
    if (M.flags[head] & PG_swapcache) and M.mapcount[head] == 0 and \
            not (M.flags[head] & PG_writeback) and SS.folio_free_swap(M, head):
        folio_put(M, head)                          # free_swap_cache
    folio_put(M, head)


@njit
def _zap_huge_pmd(M, mm, pmd_t, pi):
    """Models zap_huge_pmd(): the folio loses a whole mapping; the deposited
    table is freed."""
    e = M.pt[pmd_t, pi]
    M.pt[pmd_t, pi] = 0
    free_table(M, pmd_deposit(e))
    M.mm_stat[mm, MM_NR_PTES] -= 1
    if e & _PAGE_SPECIAL:
        return
    head = pte_pfn(e)
    M.mm_stat[mm, MM_ANONPAGES] -= HPAGE_PMD_NR
    for i in range(HPAGE_PMD_NR):
        _page_unmapped(M, head + i, head)
    M.index[head + 1] -= 1
    if M.index[head + 1] == 0:
        M.node_stat[NR_ANON_THPS] -= HPAGE_PMD_NR
        MC.mod_memcg_page(M, head, MC.MS_ANON_THPS, -HPAGE_PMD_NR)
    folio_put(M, head)


@njit
def zap_range(M, mm, start, end):
    """Models zap_page_range_single()/unmap_page_range(): drop every mapping in
    [start, end). A huge PMD partly in the range is split first. Returns the
    status (splitting needs no memory: the table was deposited)."""
    update_hiwater_rss(M, mm)
    va = start
    while va < end:
        pmd_t, _st = walk_pmd(M, mm, va, False)
        next_pmd = (va | ((1 << PMD_SHIFT) - 1)) + 1
        if pmd_t < 0:
            va = (va | ((1 << PUD_SHIFT) - 1)) + 1
            continue
        pi = table_index(va, PMD_SHIFT)
        pe = M.pt[pmd_t, pi]
        if pe & _PAGE_PSE:
            if va & ((1 << PMD_SHIFT) - 1) == 0 and next_pmd <= end:
                _zap_huge_pmd(M, mm, pmd_t, pi)
                va = next_pmd
                continue
            split_huge_pmd(M, pmd_t, va)
            pe = M.pt[pmd_t, pi]
        if pe & _PAGE_TABLE:
            pte_t = pe >> PAGE_SHIFT
            stop = min(end, next_pmd)
            while va < stop:
                _zap_pte(M, mm, pte_t, table_index(va, PAGE_SHIFT))
                va += 1 << PAGE_SHIFT
        va = next_pmd


@njit
def _table_empty(M, tid):
    for i in range(512):
        if M.pt[tid, i] != 0:
            return False
    return True


@njit
def free_pgtables(M, mm, start, end, floor, ceiling):
    """Models free_pgtables() -> free_pgd_range(): free the page-table pages
    that map only addresses in [start, end) and no VMA (nothing between the
    neighbouring VMAs ``floor`` and ``ceiling``)."""
    pgd = M.mm_stat[mm, MM_PGD]
    va = start & ~np.int64((1 << PMD_SHIFT) - 1)
    while va < end:                                  # only where upper tables exist
        pud = _lower(M, pgd, va, PGD_SHIFT)
        if pud < 0:
            va = (va | ((1 << PGD_SHIFT) - 1)) + 1
            continue
        if _lower(M, pud, va, PUD_SHIFT) < 0:
            va = (va | ((1 << PUD_SHIFT) - 1)) + 1
            continue
        _free_pte_table(M, mm, pgd, va, floor, ceiling)
        va += 1 << PMD_SHIFT
    va = start & ~np.int64((1 << PUD_SHIFT) - 1)
    while va < end:
        if _lower(M, pgd, va, PGD_SHIFT) < 0:
            va = (va | ((1 << PGD_SHIFT) - 1)) + 1
            continue
        _free_pmd_table(M, mm, pgd, va, floor, ceiling)
        va += 1 << PUD_SHIFT
    va = start & ~np.int64((1 << PGD_SHIFT) - 1)
    while va < end:
        _free_pud_table(M, mm, pgd, va, floor, ceiling)
        va += 1 << PGD_SHIFT


@njit
def _span_free(va, shift, floor, ceiling):
    lo = va & ~np.int64((1 << shift) - 1)
    return lo >= floor and lo + (1 << shift) <= ceiling


@njit
def _free_pte_table(M, mm, pgd, va, floor, ceiling):
    if not _span_free(va, PMD_SHIFT, floor, ceiling):
        return
    pud = _lower(M, pgd, va, PGD_SHIFT)
    pmd = _lower(M, pud, va, PUD_SHIFT) if pud >= 0 else -1
    if pmd < 0:
        return
    pi = table_index(va, PMD_SHIFT)
    e = M.pt[pmd, pi]
    if e & _PAGE_TABLE:
        free_table(M, e >> PAGE_SHIFT)
        M.pt[pmd, pi] = 0
        M.mm_stat[mm, MM_NR_PTES] -= 1


@njit
def _free_empty_table(M, mm, parent, va, shift, counter, floor, ceiling):
    """Free the (empty) table an entry of ``parent`` points to, when the span it
    maps is free of VMAs (free_pmd_range/free_pud_range)."""
    if parent < 0 or not _span_free(va, shift, floor, ceiling):
        return
    pi = table_index(va, shift)
    e = M.pt[parent, pi]
    if e & _PAGE_TABLE and _table_empty(M, e >> PAGE_SHIFT):
        free_table(M, e >> PAGE_SHIFT)
        M.pt[parent, pi] = 0
        M.mm_stat[mm, counter] -= 1


@njit
def _free_pmd_table(M, mm, pgd, va, floor, ceiling):
    _free_empty_table(M, mm, _lower(M, pgd, va, PGD_SHIFT), va, PUD_SHIFT, MM_NR_PMDS,
                      floor, ceiling)


@njit
def _free_pud_table(M, mm, pgd, va, floor, ceiling):
    _free_empty_table(M, mm, pgd, va, PGD_SHIFT, MM_NR_PUDS, floor, ceiling)


@njit
def _lower(M, tid, va, shift):
    e = M.pt[tid, table_index(va, shift)]
    if e & _PAGE_TABLE:
        return e >> PAGE_SHIFT
    return np.int64(-1)


@njit
def _unuse_free_swap(M, e):
    """unuse_pte_range()'s folio_free_swap() after unuse_pte(): a page brought
    back whose slot no other page table holds leaves the swap cache, so that
    reclaim gives it a slot of an area still on, not the one going away."""
    if not (e & _PAGE_PRESENT):
        return
    page = folio_head(M, pte_pfn(e))
    if (M.flags[page] & PG_swapcache) and not (M.flags[page] & PG_writeback) and \
            SS.folio_free_swap(M, page):
        M.refcount[page] -= 1                        # the cache's reference; the PTE holds one


@njit
def unuse_vmas(M, V, mm, lo, hi, progress, memcg):
    """Models unuse_mm() for swapoff: every swap entry of slots [lo, hi) in
    the VMAs ``V`` of ``mm`` is read back and mapped (as do_swap_page does).
    Resumable: ``progress`` = (VMA index, address) to go on from."""
    for vi in range(progress[0], V.shape[0]):
        va = max(progress[1], V[vi, V_START])
        while va < V[vi, V_END]:
            pte_t, _st = walk_pte(M, mm, va, False)
            if pte_t < 0:
                va = (va | ((1 << PMD_SHIFT) - 1)) + 1
                continue
            e = M.pt[pte_t, table_index(va, PAGE_SHIFT)]
            if SW.is_swap_pte(e) and lo <= SW.swp_slot(e) < hi:
                if do_swap_page(M, V, vi, mm, pte_t, va, e, False, memcg) == NEED_PAGE:
                    progress[0], progress[1] = vi, va
                    return NEED_PAGE
                _unuse_free_swap(M, M.pt[pte_t, table_index(va, PAGE_SHIFT)])
            va += 1 << PAGE_SHIFT
        progress[1] = 0
    progress[0] = V.shape[0]
    return OK


@njit
def drop_swap_cache_range(M, lo, hi):
    """The end of try_to_unuse(): every folio left in the swap cache for
    slots [lo, hi) leaves it (folio_free_swap); the slots still held by
    something (none, normally) are counted."""
    held = 0
    for slot in range(lo, hi):
        page = SS.lookup_swap_cache(M, slot)
        if page >= 0:
            if M.flags[page] & PG_writeback:
                SS.swap_end_writeback(M, page)
            if SS.folio_free_swap(M, page):
                folio_put(M, page)
        if M.swap_map[slot] != 0 and M.swap_map[slot] != SW.SWAP_MAP_BAD:
            held += 1
    return held


# --------------------------------------------------------------------------
# fork

@njit
def copy_range(M, src_mm, dst_mm, start, end):
    """Models copy_page_range() for one VMA that needs its PTEs copied
    (private anonymous memory): both sides write-protected, the child's entries
    old, every page one more mapping and reference; a huge PMD is shared the
    same way with a table deposited for the child (copy_huge_pmd).

    Resumable: returns (status, address reached).
    """
    va = start
    while va < end:
        next_pmd = (va | ((1 << PMD_SHIFT) - 1)) + 1
        spmd, _st = walk_pmd(M, src_mm, va, False)
        if spmd < 0:
            va = (va | ((1 << PUD_SHIFT) - 1)) + 1
            continue
        pi = table_index(va, PMD_SHIFT)
        pe = M.pt[spmd, pi]
        if pe == 0:
            va = next_pmd
            continue
        dpmd, st = walk_pmd(M, dst_mm, va, True)
        if st != OK:
            return st, va
        if pe & _PAGE_PSE:
            if M.pt[dpmd, pi] == 0:
                dep, st = alloc_table(M)
                if st != OK:
                    return st, va
                M.mm_stat[dst_mm, MM_NR_PTES] += 1
                pe &= ~np.int64(_PAGE_RW)
                M.pt[spmd, pi] = pe
                M.pt[dpmd, pi] = ((pe & ((np.int64(1) << DEP_SHIFT) - 1)) & ~np.int64(_PAGE_ACCESSED)) \
                    | (dep << DEP_SHIFT)
                if not (pe & _PAGE_SPECIAL):
                    head = pte_pfn(pe)
                    M.refcount[head] += 1
                    M.index[head + 1] += 1
                    for i in range(HPAGE_PMD_NR):
                        M.mapcount[head + i] += 1
                    M.mm_stat[dst_mm, MM_ANONPAGES] += HPAGE_PMD_NR
            va = next_pmd
            continue
        dpte, st = walk_pte(M, dst_mm, va, True)
        if st != OK:
            return st, va
        spte = pe >> PAGE_SHIFT
        stop = min(end, next_pmd)
        while va < stop:
            i = table_index(va, PAGE_SHIFT)
            e = M.pt[spte, i]
            if SW.is_swap_pte(e) and M.pt[dpte, i] == 0:     # copy_nonpresent_pte
                e &= ~np.int64(SW._PAGE_SWP_EXCLUSIVE)
                M.pt[spte, i] = e
                M.pt[dpte, i] = e
                SW.swap_duplicate(M, SW.swp_slot(e))
                M.mm_stat[dst_mm, MM_SWAPENTS] += 1
            elif e & _PAGE_PRESENT and M.pt[dpte, i] == 0:
                e &= ~np.int64(_PAGE_RW)
                M.pt[spte, i] = e
                M.pt[dpte, i] = e & ~np.int64(_PAGE_ACCESSED)
                if not (e & _PAGE_SPECIAL):
                    pfn = pte_pfn(e)
                    head = folio_head(M, pfn)
                    M.refcount[head] += 1
                    M.mapcount[pfn] += 1
                    _rss_add(M, dst_mm, head, 1)
            va += 1 << PAGE_SHIFT
        va = next_pmd
    return OK, end


# --------------------------------------------------------------------------
# mlock of pages already present

@njit
def _mlock_folio_present(M, head, lock):
    """Models mlock_folio()/munlock_folio(): the folio moves to (or back from)
    the unevictable list; NR_MLOCK follows."""
    nr = folio_nr(M, head)
    if bool(M.flags[head] & PG_mlocked) == lock:
        return
    memcg = M.memcg[head]
    on_lru = (M.flags[head] & PG_lru) != 0
    if on_lru:
        L.lruvec_del_folio(M, head, nr, memcg)
    if lock:
        _mlock_folio(M, head, nr)
    else:
        M.flags[head] &= ~np.uint32(PG_mlocked | PG_unevictable)
        M.zstat[B.zone_of(M, head), NR_MLOCK] -= nr
        M.events[UNEVICTABLE_PGS_MUNLOCKED] += nr
    if on_lru:
        L.lruvec_add_folio(M, head, nr, memcg)


@njit
def mlock_range(M, mm, start, end, lock):
    """Models mlock_vma_pages_range(): every page mapped in [start, end) is
    mlocked (or munlocked)."""
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
                _mlock_folio_present(M, pte_pfn(pe), lock)
        elif pe & _PAGE_TABLE:
            pte_t = pe >> PAGE_SHIFT
            stop = min(end, next_pmd)
            while va < stop:
                e = M.pt[pte_t, table_index(va, PAGE_SHIFT)]
                if (e & _PAGE_PRESENT) and not (e & _PAGE_SPECIAL):
                    _mlock_folio_present(M, folio_head(M, pte_pfn(e)), lock)
                va += 1 << PAGE_SHIFT
        va = next_pmd
