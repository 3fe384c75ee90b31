"""Compiled kernels: the page cache as file faults and read(2) use it
(mm/filemap.c, mm/readahead.c, mm/swap.c folio_mark_accessed, mm/memory.c
do_fault_around).

A file fault first tries *fault-around*: map, without I/O, the pages of the
aligned 64 KiB window around the address that are already cached and up to
date (filemap_map_pages). Pages marked PG_readahead are skipped, so that
touching one reaches filemap_fault, which then starts the next readahead
window ahead of the reader (page_cache_async_ra). A page not cached at all
is read: with MADV_RANDOM that page alone; otherwise the 128 KiB around it
("read-around", do_sync_mmap_readahead), marking PG_readahead a quarter
before the end. Reading waits for the disk: a major fault.

    pages   0 ........ 15 16 ....... 31 32 ....... 63
    fault 0: read-around reads 0-31, marks 24         (major)
    fault 1: fault-around maps 1-15                    (minor)
    fault 16: maps 16-31 but 24                        (minor)
    fault 24: async readahead reads 32-63, marks 32    (minor)
    fault 32: ... and so on: one fault per 16 pages

Per open file (``struct file_ra_state``): the window start, size, async size
and mmap_miss, in ``M.ra[file]``.

read(2) (filemap_read) reads missing pages by on-demand readahead and marks
every folio it copies accessed: the two-touch rule of folio_mark_accessed
puts a file read twice on the active list, as the real kernel does
(tests/data/realkernel/read-twice-6.18.json).

Deviations from Linux (``XXX``): MADV_SEQUENTIAL reads around like the
default; read(2) is modelled for sequential whole-range readers (no random
read detection, no prev_pos dedup of repeated small reads of one page); the readahead size is the default 128 KiB (read_ahead_kb) and
fault_around_bytes 64 KiB; reads complete at once (no page is ever found
locked under I/O, which on the real kernel adds a few faults).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine.jit import njit
from linmem.engine.pgtable import (_PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER,
                                   KIND_USER, MM_FILEPAGES, MM_SHMEMPAGES, NEED_PAGE, OK,
                                   PAGE_SHIFT, alloc_frame, mk_entry, table_index)
from linmem.mm.frames import (PG_active, PG_lru, PG_reclaim, PG_referenced, PG_swapbacked,
                              PG_unevictable, PG_uptodate)
from linmem.mm.vmstat import node_item, vm_event

PG_readahead = PG_reclaim            # the same bit, as in the kernel
RA_PAGES = 32                        # read_ahead_kb 128
FAULT_AROUND_PAGES = 16              # fault_around_bytes 64 KiB
MMAP_LOTSAMISS = 100
RA_START, RA_SIZE, RA_ASYNC, RA_MMAP_MISS, RA_SHMEM = 0, 1, 2, 3, 4
NR_RA = 5                            # per file: readahead state, and 1 for shmem

NR_FILE_PAGES = node_item("nr_file_pages")
NR_SHMEM = node_item("nr_shmem")
NR_FILE_MAPPED = node_item("nr_mapped")
PGPGIN = vm_event("pgpgin")
PGACTIVATE = vm_event("pgactivate")

V_START, V_END, V_FLAGS, V_PGOFF, V_FILE = 0, 1, 2, 3, 4
VM_WRITE = 0x2
VM_SHARED = 0x8
VM_RAND_READ = 0x10000


@njit
def find_get_page(M, fid, pgoff):
    """The cached page of (file, index), or -1 (filemap_get_folio)."""
    return np.int64(M.pc[M.f_base[fid] + pgoff])


@njit
def page_cache_ra_unbounded(M, fid, start, nr, lookahead, memcg):
    """Models page_cache_ra_unbounded(): read the pages of [start, start + nr)
    that are not cached (to the inactive file list), marking PG_readahead on
    the new page at ``nr - lookahead``. Returns the status (resumable)."""
    npages = M.f_npages[fid]
    for i in range(nr):
        pgoff = start + i
        if pgoff >= npages:
            break
        if find_get_page(M, fid, pgoff) >= 0:
            continue
        pfn = alloc_frame(M, KIND_USER)
        if pfn < 0:
            return NEED_PAGE
        M.flags[pfn] |= PG_uptodate
        if lookahead and i == nr - lookahead:
            M.flags[pfn] |= PG_readahead
        M.mapping[pfn] = fid
        M.index[pfn] = pgoff
        M.memcg[pfn] = memcg
        M.pc[M.f_base[fid] + pgoff] = pfn            # the page cache holds a reference
        M.node_stat[NR_FILE_PAGES] += 1
        M.events[PGPGIN] += 4
        L.lruvec_add_folio(M, pfn, 1, memcg)
    return OK


@njit
def get_next_ra_size(cur, max_pages):
    """Models get_next_ra_size()."""
    if cur < max_pages // 16:
        return 4 * cur
    if cur <= max_pages // 2:
        return 2 * cur
    return max_pages


@njit
def do_sync_mmap_readahead(M, fid, pgoff, vm_flags, memcg):
    """Models do_sync_mmap_readahead(): MADV_RANDOM reads one page; after too
    many misses (mmap_miss > MMAP_LOTSAMISS) too; otherwise read-around."""
    ra = M.ra[fid]
    if vm_flags & VM_RAND_READ:
        return page_cache_ra_unbounded(M, fid, pgoff, 1, 0, memcg)
    if ra[RA_MMAP_MISS] < MMAP_LOTSAMISS * 10:
        ra[RA_MMAP_MISS] += 1
    if ra[RA_MMAP_MISS] > MMAP_LOTSAMISS:
        return page_cache_ra_unbounded(M, fid, pgoff, 1, 0, memcg)
    start = max(0, pgoff - RA_PAGES // 2)
    st = page_cache_ra_unbounded(M, fid, start, RA_PAGES, RA_PAGES // 4, memcg)
    if st == OK:
        ra[RA_START] = start
        ra[RA_SIZE] = RA_PAGES
        ra[RA_ASYNC] = RA_PAGES // 4
    return st


@njit
def do_async_mmap_readahead(M, fid, page, pgoff, vm_flags, memcg):
    """Models do_async_mmap_readahead() -> page_cache_async_ra(): a fault on a
    PG_readahead page reads the next window ahead of the reader."""
    ra = M.ra[fid]
    if vm_flags & VM_RAND_READ:
        return OK
    if ra[RA_MMAP_MISS] > 0:
        ra[RA_MMAP_MISS] -= 1
    if not (M.flags[page] & PG_readahead):
        return OK
    if pgoff == ra[RA_START] + ra[RA_SIZE] - ra[RA_ASYNC]:
        start = ra[RA_START] + ra[RA_SIZE]
        size = get_next_ra_size(ra[RA_SIZE], RA_PAGES)
    else:                                            # a reader elsewhere: restart there
        start = pgoff + 1
        size = get_next_ra_size(RA_PAGES, RA_PAGES)
    st = page_cache_ra_unbounded(M, fid, start, size, size, memcg)
    if st == OK:
        M.flags[page] &= ~np.uint32(PG_readahead)
        ra[RA_START] = start
        ra[RA_SIZE] = size
        ra[RA_ASYNC] = size
    return st


@njit
def shmem_get_page(M, fid, pgoff, memcg):
    """Models shmem_get_folio_gfp(SGP_CACHE) for a hole: a new zeroed,
    swap-backed page in the shmem file's cache (no I/O: not a major fault)."""
    pfn = alloc_frame(M, KIND_USER)
    if pfn < 0:
        return pfn
    M.flags[pfn] |= PG_uptodate | PG_swapbacked
    M.mapping[pfn] = fid
    M.index[pfn] = pgoff
    M.memcg[pfn] = memcg
    M.pc[M.f_base[fid] + pgoff] = pfn
    M.node_stat[NR_FILE_PAGES] += 1
    M.node_stat[NR_SHMEM] += 1
    L.lruvec_add_folio(M, pfn, 1, memcg)
    return pfn


@njit
def map_file_page(M, mm, pte_t, i, page, vm_flags):
    """Map one cache page (set_pte_range for a file folio): read-only, except
    shared writable shmem, which needs no write notification."""
    M.refcount[page] += 1
    M.mapcount[page] += 1
    if M.mapcount[page] == 1:
        M.node_stat[NR_FILE_MAPPED] += 1
    pte = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
    if M.flags[page] & PG_swapbacked:
        M.mm_stat[mm, MM_SHMEMPAGES] += 1
        if (vm_flags & (VM_SHARED | VM_WRITE)) == (VM_SHARED | VM_WRITE):
            pte |= _PAGE_RW
    else:
        M.mm_stat[mm, MM_FILEPAGES] += 1
    M.pt[pte_t, i] = mk_entry(page, pte)


@njit
def do_fault_around(M, V, vi, mm, pte_t, va):
    """Models do_fault_around() -> filemap_map_pages(): map the cached, up to
    date, not-readahead pages of the aligned 16-page window within the VMA and
    the PTE table; True when the faulting page got mapped."""
    fid = V[vi, V_FILE]
    pte_off = table_index(va, PAGE_SHIFT)
    vma_off = (va - V[vi, V_START]) >> PAGE_SHIFT
    from_pte = max(pte_off & ~(FAULT_AROUND_PAGES - 1), pte_off - min(pte_off, vma_off))
    vma_pages = (V[vi, V_END] - V[vi, V_START]) >> PAGE_SHIFT
    to_pte = min(from_pte + FAULT_AROUND_PAGES, 512, pte_off + vma_pages - vma_off)
    base_pgoff = V[vi, V_PGOFF] + vma_off - pte_off
    mapped_target = False
    for i in range(from_pte, to_pte):
        pgoff = base_pgoff + i
        if pgoff >= M.f_npages[fid] or M.pt[pte_t, i] != 0:
            continue
        page = find_get_page(M, fid, pgoff)
        if page < 0 or (M.flags[page] & PG_readahead) or not (M.flags[page] & PG_uptodate):
            continue
        map_file_page(M, mm, pte_t, i, page, V[vi, V_FLAGS])
        if i == pte_off:
            mapped_target = True
    ra = M.ra[fid]
    if ra[RA_MMAP_MISS] > 0:
        ra[RA_MMAP_MISS] -= 1
    return mapped_target


# --------------------------------------------------------------------------
# read(2)

@njit
def get_init_ra_size(size, max_pages):
    """Models get_init_ra_size(): the first window of a sequential reader."""
    newsize = 1
    while newsize < size:
        newsize <<= 1
    if newsize <= max_pages // 32:
        return newsize * 4
    if newsize <= max_pages // 4:
        return newsize * 2
    return max_pages


@njit
def folio_mark_accessed(M, page):
    """Models folio_mark_accessed(): the two-touch rule. An inactive folio is
    first marked referenced; referenced again, it is activated."""
    flags = M.flags[page]
    if flags & PG_unevictable:
        M.flags[page] |= PG_referenced
        return
    if not (flags & PG_referenced):
        M.flags[page] |= PG_referenced
    elif not (flags & PG_active) and (flags & PG_lru):
        nr = 1
        memcg = M.memcg[page]
        L.lruvec_del_folio(M, page, nr, memcg)
        M.flags[page] = (M.flags[page] | PG_active) & ~np.uint32(PG_referenced)
        L.lruvec_add_folio(M, page, nr, memcg)
        M.events[PGACTIVATE] += nr


@njit
def filemap_read(M, fid, start, npages, req, memcg):
    """Models filemap_read() for a sequential reader asking ``req`` pages at a
    time: missing pages are read by on-demand readahead (page_cache_sync_ra;
    page_cache_async_ra at a PG_readahead page), every folio copied is marked
    accessed. Resumable: (status, next page)."""
    end = min(start + npages, M.f_npages[fid])
    ra = M.ra[fid]
    index = start
    while index < end:
        page = find_get_page(M, fid, index)
        if page < 0:
            size = get_init_ra_size(req, RA_PAGES)
            async_size = size - req if size > req else size >> 1
            st = page_cache_ra_unbounded(M, fid, index, size, async_size, memcg)
            if st != OK:
                return st, index
            ra[RA_START] = index
            ra[RA_SIZE] = size
            ra[RA_ASYNC] = async_size
            page = find_get_page(M, fid, index)
        elif M.flags[page] & PG_readahead:
            if index == ra[RA_START] + ra[RA_SIZE] - ra[RA_ASYNC]:
                nstart = ra[RA_START] + ra[RA_SIZE]
                size = get_next_ra_size(ra[RA_SIZE], RA_PAGES)
            else:
                nstart = index + 1
                size = RA_PAGES
            st = page_cache_ra_unbounded(M, fid, nstart, size, size, memcg)
            if st != OK:
                return st, index
            M.flags[page] &= ~np.uint32(PG_readahead)
            ra[RA_START] = nstart
            ra[RA_SIZE] = size
            ra[RA_ASYNC] = size
        folio_mark_accessed(M, page)
        index += 1
    return OK, end
