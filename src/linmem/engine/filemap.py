"""Compiled kernels: the page cache as file faults and read(2) use it
(mm/filemap.c, mm/memory.c do_fault_around, mm/swap.c folio_mark_accessed;
Linux 6.18). The readahead windows themselves are ``linmem.engine.readahead``.

**Faults.** A read fault on a file page first tries *fault-around*: map,
without I/O, the pages of the aligned 64 KiB window around the address that
are cached and up to date (filemap_map_pages). Pages marked PG_readahead are
skipped, so that touching one reaches filemap_fault, which then starts the
next readahead window ahead of the reader (do_async_mmap_readahead). A page
not cached at all is a major fault, read by do_sync_mmap_readahead:

* by default, *read-around*: the ra_pages (32) around it, PG_readahead a
  quarter before the end; after MMAP_LOTSAMISS faults that fault-around did
  not make up for (mmap_miss), that page alone;
* MADV_SEQUENTIAL (VM_SEQ_READ): page_cache_sync_ra with a request of
  ra_pages, as read(2) would: from the page on, PG_readahead half way;
* MADV_RANDOM (VM_RAND_READ): that page alone, and no readahead later;
* an executable mapping (VM_EXEC): ra_pages from the page on, within the
  VMA, no mark; MADV_HUGEPAGE: the 4 MiB from the 2 MiB boundary, marked half
  way.

filemap_fault drops the mmap lock to wait for I/O and returns VM_FAULT_RETRY;
the fault runs again and its fault-around maps what the read brought in. So a
cold sequential read takes one fault per 16 pages, plus one where a window's
PG_readahead page is not the first of a 16-page block:

    pages   0 ........ 15 16 ...... 23 24 ...... 31 32 ....... 63
    fault 0:  read-around reads 0-31, marks 24; the retry maps 0-15  (major)
    fault 16: maps 16-31 but 24                                       (minor)
    fault 24: async readahead reads 32-63, marks 32; maps 24          (minor)
    fault 32: maps 33-47, reads 64-95, marks 64; maps 32 ... one per 16 pages

With MADV_SEQUENTIAL the first window marks page 16: no extra fault at all.

**read(2)** (filemap_read) copies through batches of up to 31 cached pages
(filemap_get_pages): a missing page starts page_cache_sync_ra for the rest of
the request, a batch ending on a PG_readahead page page_cache_async_ra. Every
folio copied is marked accessed (the two-touch rule of folio_mark_accessed:
a file read twice is active, tests/data/realkernel/read-twice-6.18.json),
except the first of a batch when the previous read ended in it (prev_pos):
repeated small reads of one page are one access.

Per open file (``struct file_ra_state``): the window, prev_pos, ra_pages,
mmap_miss and FMODE_RANDOM, in ``M.ra[file]`` (``linmem.engine.readahead``).

Deviations from Linux (``XXX``): one ``struct file`` per path, shared by
every mapping and read of it (a ``read`` step re-opens it, resetting the
readahead state its mappings use too); the page cache holds 4 KiB folios only;
I/O completes at once, so no page is ever found locked under I/O (on the real
kernel a fast reader catches up with its readahead and takes a few more
faults: 3204..3210 minor faults for a cold 200 MiB read where linmem takes
3200); fault_around_bytes is 64 KiB; faults of get_user_pages
(MAP_POPULATE, mlock) are counted as user faults (a GUP fault retried after
I/O counts as major in the kernel).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine import readahead as R
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.mm_inline import lru_gen_enabled, lru_gen_inc_refs
from linmem.engine.workingset import workingset_age_nonresident
from linmem.engine.pgtable import (_PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER,
                                   HPAGE_PMD_NR, KIND_USER, MM_FILEPAGES, MM_SHMEMPAGES, OK,
                                   PAGE_SHIFT, alloc_frame, mk_entry, table_index)
from linmem.engine.readahead import (RA_ASYNC, RA_MMAP_MISS, RA_PAGES, RA_PEND_END,
                                     RA_PEND_INDEX, RA_PEND_MAJOR, RA_PREV_POS, RA_SIZE,
                                     RA_START, PG_readahead, find_get_page)
from linmem.mm.frames import (PG_active, PG_lru, PG_referenced, PG_swapbacked,
                              PG_unevictable, PG_uptodate, PG_workingset, PG_writeback)
from linmem.mm.vmstat import node_item, vm_event

NR_RA, RA_SHMEM = R.NR_RA, R.RA_SHMEM  # the per-file row (linmem.engine.readahead)
FAULT_AROUND_PAGES = 16              # fault_around_bytes 64 KiB
MMAP_LOTSAMISS = 100
PAGEVEC_SIZE = 31                    # folios per filemap_get_pages batch

NR_FILE_PAGES = node_item("nr_file_pages")
NR_SHMEM = node_item("nr_shmem")
NR_FILE_MAPPED = node_item("nr_mapped")
PGACTIVATE = vm_event("pgactivate")

V_START, V_END, V_FLAGS, V_PGOFF, V_FILE = 0, 1, 2, 3, 4
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_SEQ_READ = 0x8000
VM_RAND_READ = 0x10000
VM_HUGEPAGE = 0x20000000


# --------------------------------------------------------------------------
# faults

@njit
def do_sync_mmap_readahead(M, fid, pgoff, vm_flags, vm_pgoff, vm_pages, memcg):
    """Models do_sync_mmap_readahead(): the readahead of a major fault on
    ``pgoff`` (see the module docstring). Reading nothing is allowed: the
    fault then reads the page alone."""
    ra = M.ra[fid]
    if vm_flags & VM_HUGEPAGE:               # even with readahead off; ra->start stays
        index = pgoff & ~np.int64(HPAGE_PMD_NR - 1)
        ra[RA_SIZE] = HPAGE_PMD_NR if vm_flags & VM_RAND_READ else 2 * HPAGE_PMD_NR
        ra[RA_ASYNC] = HPAGE_PMD_NR
        return R.do_page_cache_ra(M, fid, index, ra[RA_SIZE], ra[RA_ASYNC], memcg)
    if (vm_flags & (VM_RAND_READ | VM_EXEC)) == VM_RAND_READ or ra[RA_PAGES] == 0:
        return OK
    if vm_flags & VM_SEQ_READ:
        return R.page_cache_sync_ra(M, fid, pgoff, ra[RA_PAGES], memcg)
    if ra[RA_MMAP_MISS] < MMAP_LOTSAMISS * 10:
        ra[RA_MMAP_MISS] += 1
    if ra[RA_MMAP_MISS] > MMAP_LOTSAMISS:    # misses more than hits: no readahead
        return OK
    if vm_flags & VM_EXEC:                   # exec_folio_order() is 0 on x86
        ra[RA_START] = max(pgoff, vm_pgoff)
        ra[RA_SIZE] = min(ra[RA_START] + ra[RA_PAGES], vm_pgoff + vm_pages) - ra[RA_START]
        ra[RA_ASYNC] = 0
    else:                                    # read-around
        ra[RA_START] = max(0, pgoff - ra[RA_PAGES] // 2)
        ra[RA_SIZE] = ra[RA_PAGES]
        ra[RA_ASYNC] = ra[RA_PAGES] // 4
    return R.page_cache_ra_order(M, fid, memcg)


@njit
def do_async_mmap_readahead(M, fid, page, pgoff, vm_flags, memcg):
    """Models do_async_mmap_readahead(): a cache hit in filemap_fault counts
    against mmap_miss; on a PG_readahead page the next window is read
    (page_cache_async_ra, a request of ra_pages)."""
    ra = M.ra[fid]
    if vm_flags & VM_RAND_READ or ra[RA_PAGES] == 0:
        return OK
    if ra[RA_MMAP_MISS] > 0:                 # the folio is never locked here
        ra[RA_MMAP_MISS] -= 1
    if M.flags[page] & PG_readahead:
        return R.page_cache_async_ra(M, fid, pgoff, page, ra[RA_PAGES], memcg)
    return OK


@njit
def _drops_lock_for_async(M, page, vm_flags, ra_pages):
    """Whether do_async_mmap_readahead drops the mmap lock (and the fault is
    retried): a PG_readahead page, readahead wanted."""
    return (M.flags[page] & PG_readahead) != 0 and not (M.flags[page] & PG_writeback) \
        and not (vm_flags & VM_RAND_READ) and ra_pages > 0


@njit
def filemap_fault(M, V, vi, mm, pte_t, va, pgoff, write, memcg):
    """Models a file (not shmem) fault through filemap_fault(), with
    fault-around first for a read, and its retry.

    Returns (status, page, major): the page to map, or -1 when the retried
    fault's fault-around mapped it; major when the page was not cached. A
    fault that started I/O (a read, or an async readahead) is retried
    (VM_FAULT_RETRY): the retry's fault-around maps the window just read. A
    write retried after an async readahead runs do_async_mmap_readahead
    again (one more mmap_miss hit); one retried after a major fault does not
    (FAULT_FLAG_TRIED). A window cut short by NEED_PAGE is finished first.
    """
    fid = V[vi, V_FILE]
    flags = V[vi, V_FLAGS]
    ra = M.ra[fid]
    retried = False
    if ra[RA_PEND_INDEX] < ra[RA_PEND_END]:
        st = R.ra_submit(M, fid, memcg)
        if st != OK:
            return st, -1, False
        retried = True
    elif not write and do_fault_around(M, V, vi, mm, pte_t, va):
        return OK, -1, False
    else:
        page = find_get_page(M, fid, pgoff)
        if page >= 0:
            retried = _drops_lock_for_async(M, page, flags, ra[RA_PAGES])
            st = do_async_mmap_readahead(M, fid, page, pgoff, flags, memcg)
            if retried and write and ra[RA_MMAP_MISS] > 0:
                ra[RA_MMAP_MISS] -= 1
        else:
            ra[RA_PEND_MAJOR] = pgoff + 1
            st = do_sync_mmap_readahead(M, fid, pgoff, flags, V[vi, V_PGOFF],
                                        (V[vi, V_END] - V[vi, V_START]) >> PAGE_SHIFT, memcg)
            retried = True
        if st != OK:
            return st, -1, False
    page = find_get_page(M, fid, pgoff)
    if page < 0:                             # no readahead: read_folio of the page alone
        st = R.page_cache_ra_unbounded(M, fid, pgoff, 1, 0, memcg)
        if st != OK:
            return st, -1, False
        page = find_get_page(M, fid, pgoff)
    major = ra[RA_PEND_MAJOR] == pgoff + 1
    ra[RA_PEND_MAJOR] = 0
    if retried and not write and do_fault_around(M, V, vi, mm, pte_t, va):
        return OK, -1, major
    return OK, page, major


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
    M.pc[M.f_base[fid] + pgoff] = pfn
    M.node_stat[NR_FILE_PAGES] += 1
    MC.mod_memcg_page(M, pfn, MC.MS_FILE_PAGES, 1)
    M.node_stat[NR_SHMEM] += 1
    MC.mod_memcg_page(M, pfn, MC.MS_SHMEM, 1)
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
        MC.mod_memcg_page(M, page, MC.MS_FILE_MAPPED, 1)
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
    date, not-readahead pages of the aligned 16-page window within the VMA,
    the PTE table and the file; True when the faulting page got mapped. Each
    such page (mapped now or before; not a refault, PG_workingset) is a hit
    that lowers mmap_miss."""
    fid = V[vi, V_FILE]
    pte_off = table_index(va, PAGE_SHIFT)
    vma_off = (va - V[vi, V_START]) >> PAGE_SHIFT
    from_pte = max(pte_off & ~(FAULT_AROUND_PAGES - 1), pte_off - min(pte_off, vma_off))
    vma_pages = (V[vi, V_END] - V[vi, V_START]) >> PAGE_SHIFT
    to_pte = min(from_pte + FAULT_AROUND_PAGES, 512, pte_off + vma_pages - vma_off)
    base_pgoff = V[vi, V_PGOFF] + vma_off - pte_off
    mapped_target = False
    hits = 0
    for i in range(from_pte, to_pte):
        page = find_get_page(M, fid, base_pgoff + i)
        if page < 0 or (M.flags[page] & PG_readahead) or not (M.flags[page] & PG_uptodate):
            continue
        if not (M.flags[page] & PG_workingset):
            hits += 1
        if M.pt[pte_t, i] != 0:
            continue
        map_file_page(M, mm, pte_t, i, page, V[vi, V_FLAGS])
        if i == pte_off:
            mapped_target = True
    ra = M.ra[fid]
    ra[RA_MMAP_MISS] = max(0, ra[RA_MMAP_MISS] - hits)
    return mapped_target


# --------------------------------------------------------------------------
# read(2)

@njit
def folio_mark_accessed(M, page):
    """Models folio_mark_accessed(): the two-touch rule. An inactive folio is
    first marked referenced; referenced again, it is activated. Under the
    multi-gen LRU the access counts towards the folio's tier instead."""
    if lru_gen_enabled(M):
        lru_gen_inc_refs(M, page)
        return
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
        MC.count_memcg_event(M, page, MC.MS_PGACTIVATE, nr)
        workingset_age_nonresident(M, memcg, nr)     # workingset_activation


@njit
def filemap_get_read_batch(M, fid, index, max_index):
    """Models filemap_get_read_batch(): how many cached pages follow from
    ``index`` (to ``max_index``, at most 31); a PG_readahead or not up to date
    page ends the batch, as its last."""
    n = 0
    while n < PAGEVEC_SIZE and index + n <= max_index:
        page = find_get_page(M, fid, index + n)
        if page < 0:
            break
        n += 1
        if not (M.flags[page] & PG_uptodate) or (M.flags[page] & PG_readahead):
            break
    return n


@njit
def filemap_get_pages(M, fid, index, last_index, memcg):
    """Models filemap_get_pages(): (status, batch length) of the pages from
    ``index`` for a read ending before ``last_index``. Nothing cached: the
    synchronous readahead of the request's pages (page_cache_sync_ra); a
    batch ending on a PG_readahead page: the next window (filemap_readahead
    -> page_cache_async_ra)."""
    n = filemap_get_read_batch(M, fid, index, last_index - 1)
    if n == 0:
        st = R.page_cache_sync_ra(M, fid, index, last_index - index, memcg)
        if st != OK:
            return st, 0
        n = filemap_get_read_batch(M, fid, index, last_index - 1)
    last = index + n - 1
    page = find_get_page(M, fid, last)
    if M.flags[page] & PG_readahead:
        st = R.page_cache_async_ra(M, fid, last, page, last_index - last, memcg)
        if st != OK:
            return st, 0
    return OK, n


@njit
def filemap_read(M, fid, isize, prog, memcg):
    """Models filemap_read(): one read(2) of bytes ``prog[0]..prog[1]`` of a
    file of ``isize`` bytes; ``prog[2]`` is where the last read ended
    (ra->prev_pos when the call began). Resumable: ``prog`` holds the
    progress when it returns NEED_PAGE; prev_pos is set when the call ends."""
    st = R.ra_submit(M, fid, memcg)          # a window cut short by NEED_PAGE
    if st != OK:
        return st
    pos, end, last_pos = prog[0], prog[1], prog[2]
    while pos < end and pos < isize:
        index = pos >> PAGE_SHIFT
        last_index = (end + 4095) >> PAGE_SHIFT
        st, n = filemap_get_pages(M, fid, index, last_index, memcg)
        if st != OK:
            return st
        end_offset = min(isize, end)
        if (pos >> PAGE_SHIFT) != ((last_pos - 1) >> PAGE_SHIFT):
            folio_mark_accessed(M, find_get_page(M, fid, index))
        for i in range(n):
            if end_offset < (index + i) << PAGE_SHIFT:
                break
            if i > 0:
                folio_mark_accessed(M, find_get_page(M, fid, index + i))
            pos += min(end_offset - pos, 4096 - (pos & 4095))
            last_pos = pos
        prog[0], prog[2] = pos, last_pos
    M.ra[fid, RA_PREV_POS] = last_pos
    return OK


@njit
def filemap_read_calls(M, fid, isize, offsets, counts, prog, memcg):
    """read(2) calls of ``counts[k]`` bytes at ``offsets[k]``, in order.
    ``prog``: [next call, its pos, its end, its last_pos, 1 inside a call].
    Returns (status, calls done); resumable after NEED_PAGE."""
    while prog[0] < offsets.shape[0]:
        k = prog[0]
        if prog[4] == 0:
            prog[1], prog[2] = offsets[k], offsets[k] + counts[k]
            prog[3] = M.ra[fid, RA_PREV_POS]
            prog[4] = 1
        st = filemap_read(M, fid, isize, prog[1:4], memcg)
        if st != OK:
            return st, k
        prog[4] = 0
        prog[0] = k + 1
    return OK, prog[0]
