"""Compiled kernels: shmem/tmpfs pages and swap (mm/shmem.c, with
swap_cluster_readahead of mm/swap_state.c; Linux 6.18).

A shmem file (a tmpfs file, or the object behind MAP_SHARED anonymous
memory) keeps its pages in its page cache like any file, but they are
swap-backed: on the anon LRU lists, never written back to a disk. Reclaim
sends a dirty one to swap (shmem_writeout, called by pageout() once
try_to_unmap has cleared every PTE that mapped it):

* a slot is allocated (folio_alloc_swap; none, or no swap at all: the folio
  is redirtied and reclaim activates it);
* the folio moves from the file's page cache to the swap cache: the
  page-cache slot now holds the *swap entry* (``-(slot + 2)`` in ``M.pc``,
  the kernel's xarray value entry), which is the file's reference on the
  swap slot (its count goes to 1, besides SWAP_HAS_CACHE);
  nr_file_pages is unchanged (the swap cache counts there too), nr_shmem
  drops, nr_swapcached rises (shmem_delete_from_page_cache);
* it is written (swap_writeout, pswpout) and, once written and found again
  by reclaim, freed from the swap cache like an anonymous folio, its shadow
  entry left in the swap slot.

A clean shmem folio (never written: a page a read fault created in a hole)
is not written out: __remove_mapping drops it from the page cache, with no
shadow (it is not on a file LRU), and the hole reads as zeros again.

Swap-in (shmem_swapin_folio, from shmem_get_folio_gfp) happens where the
kernel looks a page up with SGP_READ (read(2)), SGP_CACHE (a fault; swapoff)
or SGP_WRITE (write(2)): a folio still in the swap cache is taken from there
(a minor fault); otherwise it is read, and a fault is major (PGMAJFAULT,
VM_FAULT_MAJOR) even though the fault itself counts no major fault of its
own. The read goes through shmem_swapin_cluster -> swap_cluster_readahead:
no VMA readahead for shmem (there is no VMA in the lookup), but the aligned
block of 2^n slots around the slot, where n comes from swapin_nr_pages (the
machine-wide hits on readahead pages, at most page-cluster): every slot of
it in use and not cached is read into the swap cache, PG_readahead
(swap_ra); a later lookup that hits one counts swap_ra_hit and one more hit.
A synchronous device (zram) skips the swap cache and readahead
(shmem_swap_alloc_folio). The folio then goes back into the page cache
(shmem_add_to_page_cache), leaves the swap cache, is marked dirty (its swap
copy is gone) and the file's reference on the slot is dropped (swap_free):
the slot is free.

Truncation (shmem_undo_range, also when the last mapping of a MAP_SHARED
object goes or an unlinked tmpfs file is closed) frees a swapped page's slot
with free_swap_and_cache, which drops its swap-cache folio too when nothing
maps it. drop_caches and POSIX_FADV_DONTNEED leave shmem alone.

Deviations (``XXX``): the readahead folios and the faulting one are read in
one go, the faulting one first (the kernel reads the block in slot order and
then takes the faulting one); shmem_unuse (swapoff) reads the entries one by
one through the same path; madvise(MADV_WILLNEED) does not start swap-in of
a shmem range (shmem_swapin_range).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import page_writeback as PW
from linmem.engine import swap_state as SS
from linmem.engine import swapfile as SW
from linmem.engine.filemap import NR_FILE_PAGES, NR_SHMEM, folio_mark_accessed, shmem_get_page
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.pgtable import (C_NEED_KIND, C_SWAP_PEND_END, C_SWAP_PEND_MM,
                                   C_SWAP_PEND_NEXT, C_SWAP_PEND_PAGE, C_SWAP_PEND_VA, KIND_USER,
                                   NEED_PAGE, OK, PAGE_SHIFT, alloc_frame, table_index, walk_pte)
from linmem.engine.readahead import (PG_readahead, filemap_get_entry, pc_is_swap, pc_swap_entry,
                                     pc_swap_slot)
from linmem.mm.frames import PG_dirty, PG_referenced, PG_writeback

# enum sgp_type
SGP_READ, SGP_NOALLOC, SGP_CACHE, SGP_WRITE = 0, 1, 2, 3

# C_SWAP_PEND_MM of a shmem swap-in waiting in its readahead for memory (the
# slot is in C_SWAP_PEND_VA): no mm has this id
SHMEM_PEND = -2


# --------------------------------------------------------------------------
# swap-out

@njit
def shmem_writeout(M, page):
    """Models shmem_writeout() up to swap_writeout(): the folio (unmapped,
    dirty) moves from its file's page cache to the swap cache under a new
    slot. False when there is no swap or no free slot (the caller redirties
    it and reclaim activates it)."""
    if M.si.shape[0] == 0 or M.si[SW.G_ROW, SW.G_TOTAL] == 0:
        return False
    slot = SW.folio_alloc_swap(M, page)                       # folio_alloc_swap
    if slot < 0:
        return False
    fid = M.mapping[page]
    SS.add_to_swap_cache(M, page, slot, False)       # the page cache's reference moves over
    SW.swap_duplicate(M, slot)                       # the file's reference on the slot
    M.pc[M.f_base[fid] + M.index[page]] = pc_swap_entry(slot)   # shmem_delete_from_page_cache
    M.node_stat[NR_FILE_PAGES] -= 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, -1)
    M.node_stat[NR_SHMEM] -= 1
    MC.mod_memcg_page(M, page, MC.MS_SHMEM, -1)
    return True


# --------------------------------------------------------------------------
# swap-in

@njit
def swapin_nr_pages(M, offset):
    """Models swapin_nr_pages(): the cluster readahead window for a miss at
    area offset ``offset``, from the hits since the last one."""
    max_pages = np.int64(1) << M.si[SW.G_ROW, SW.G_PAGE_CLUSTER]
    if max_pages <= 1:
        return np.int64(1)
    hits = M.si[SW.G_ROW, SW.G_RA_HITS]
    M.si[SW.G_ROW, SW.G_RA_HITS] = 0
    pages = SS.swapin_nr_pages(M.si[SW.G_ROW, SW.G_RA_PREV_OFFSET], offset, hits, max_pages,
                               M.si[SW.G_ROW, SW.G_RA_LAST_PAGES])
    if hits == 0:
        M.si[SW.G_ROW, SW.G_RA_PREV_OFFSET] = offset
    M.si[SW.G_ROW, SW.G_RA_LAST_PAGES] = pages
    return pages


@njit
def swap_cluster_ra_read(M, slot, memcg):
    """Read the pending block ``C_SWAP_PEND_NEXT..END`` of slots around
    ``slot`` (read already): each slot in use and not cached is read into the
    swap cache, PG_readahead (swap_ra). NEED_PAGE (the rest left pending)
    when the allocator's fast path has no page."""
    s = M.ctl[C_SWAP_PEND_NEXT]
    end = M.ctl[C_SWAP_PEND_END]
    while s < end:
        if s != slot:
            page, allocated = SS.swap_cache_alloc_folio(M, s, memcg)
            if allocated:
                M.flags[page] |= PG_readahead
                M.events[SS.SWAP_RA] += 1
            elif page < 0 and M.ctl[C_NEED_KIND] == -2:
                M.ctl[C_NEED_KIND] = KIND_USER
                M.ctl[C_SWAP_PEND_NEXT] = s
                return NEED_PAGE
        s += 1
    M.ctl[C_SWAP_PEND_VA] = -1
    return OK


@njit
def swap_cluster_readahead(M, slot, memcg):
    """Models swap_cluster_readahead() around ``slot``: the aligned block of
    swapin_nr_pages() slots, within the area and past its header."""
    a = SW.swap_area(M, slot)
    base = M.si[a, SW.SI_BASE]
    offset = slot - base
    mask = swapin_nr_pages(M, offset) - 1
    if mask == 0:
        M.ctl[C_SWAP_PEND_VA] = -1
        return OK
    start = offset & ~mask
    end = offset | mask
    if start == 0:
        start = 1                                    # the swap header
    if end >= M.si[a, SW.SI_MAX]:
        end = M.si[a, SW.SI_MAX] - 1
    M.ctl[C_SWAP_PEND_NEXT] = base + start
    M.ctl[C_SWAP_PEND_END] = base + end + 1
    return swap_cluster_ra_read(M, slot, memcg)


@njit
def swap_cache_hit(M, page):
    """Models swap_update_readahead(folio, NULL, 0): a readahead folio found
    counts swap_ra_hit and a hit for the next window."""
    if M.flags[page] & PG_readahead:
        M.flags[page] &= ~np.uint32(PG_readahead)
        M.events[SS.SWAP_RA_HIT] += 1
        M.si[SW.G_ROW, SW.G_RA_HITS] += 1


@njit
def shmem_swapin_folio(M, fid, index, slot, sgp, memcg):
    """Models shmem_swapin_folio(): the page of (file, index), swapped out to
    ``slot``, back in the page cache. Returns (status, page, major): major
    when it had to be read. Resumable: NEED_PAGE before anything changed, or
    with the readahead pending (the faulting folio held in the swap cache)."""
    page = SS.lookup_swap_cache(M, slot)
    major = False
    skip_swapcache = False
    if M.ctl[C_SWAP_PEND_MM] == SHMEM_PEND and M.ctl[C_SWAP_PEND_VA] == slot and page >= 0:
        # resumed: the folio was read, its readahead waited for memory
        if swap_cluster_ra_read(M, slot, memcg) == NEED_PAGE:
            return NEED_PAGE, np.int64(-1), False
        M.refcount[page] -= 1
        major = True
    elif page >= 0:
        swap_cache_hit(M, page)
    else:
        major = True
        page = alloc_frame(M, KIND_USER)
        if page < 0:
            return NEED_PAGE, np.int64(-1), False
        SW.swapcache_prepare(M, slot)
        a = SW.swap_area(M, slot)
        if M.si[a, SW.SI_FLAGS] & SW.SWP_SYNCHRONOUS_IO:     # shmem_swap_alloc_folio
            skip_swapcache = True
            SS.swapin_new_folio(M, page, slot, memcg, False)
        else:                                                 # shmem_swapin_cluster
            SS.swapin_new_folio(M, page, slot, memcg, True)
            M.refcount[page] += 1                             # held while reading ahead
            M.ctl[C_SWAP_PEND_MM] = SHMEM_PEND
            M.ctl[C_SWAP_PEND_VA] = slot
            M.ctl[C_SWAP_PEND_PAGE] = page
            if swap_cluster_readahead(M, slot, memcg) == NEED_PAGE:
                return NEED_PAGE, np.int64(-1), False
            M.refcount[page] -= 1
    if M.flags[page] & PG_writeback:                          # folio_wait_writeback
        SS.swap_end_writeback(M, page)
    # shmem_add_to_page_cache
    M.pc[M.f_base[fid] + index] = page
    M.mapping[page] = fid
    M.index[page] = index
    M.refcount[page] += 1
    M.node_stat[NR_FILE_PAGES] += 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_PAGES, 1)
    M.node_stat[NR_SHMEM] += 1
    MC.mod_memcg_page(M, page, MC.MS_SHMEM, 1)
    if sgp == SGP_WRITE:
        folio_mark_accessed(M, page)
    if skip_swapcache:
        M.swap_map[slot] &= ~np.uint8(SW.SWAP_HAS_CACHE)     # swapcache_clear
    else:
        SS.delete_from_swap_cache(M, page, 0)
    M.refcount[page] -= 1               # the swap cache's (or the new folio's) reference
    M.flags[page] |= PG_dirty                                 # folio_mark_dirty
    SW.swap_free(M, slot)                                     # the file's reference
    return OK, page, major


@njit
def shmem_get_folio(M, fid, index, sgp, memcg):
    """Models shmem_get_folio_gfp(): (status, page, major) for (file, index):
    the cached page (SGP_WRITE marks it accessed), the swapped-out page read
    back, or for a hole a new zeroed page (SGP_WRITE: referenced) but with
    SGP_READ none (-1: the reader copies zeros)."""
    entry = filemap_get_entry(M, fid, index)
    if pc_is_swap(entry):
        return shmem_swapin_folio(M, fid, index, pc_swap_slot(entry), sgp, memcg)
    if entry >= 0:
        if sgp == SGP_WRITE:
            folio_mark_accessed(M, entry)
        return OK, entry, False
    if sgp == SGP_READ:
        return OK, np.int64(-1), False
    page = shmem_get_page(M, fid, index, memcg)
    if page < 0:
        return NEED_PAGE, np.int64(-1), False
    if sgp == SGP_WRITE:
        M.flags[page] |= PG_referenced
    return OK, page, False


# --------------------------------------------------------------------------
# read(2) and write(2)

@njit
def shmem_file_read(M, fid, isize, prog, memcg):
    """Models shmem_file_read_iter(): one read(2) of bytes ``prog[0]..prog[1]``;
    each page looked up with SGP_READ (swapped in if it is swapped out), a
    hole read as zeros; a folio read from its start is marked accessed. No
    page-cache readahead. Resumable through ``prog``; prog[2] is set to where
    the read ended."""
    pos, end = prog[0], prog[1]
    while pos < end and pos < isize:
        index = pos >> PAGE_SHIFT
        st, page, _major = shmem_get_folio(M, fid, index, SGP_READ, memcg)
        if st != OK:
            prog[0] = pos
            return st
        offset = pos & 4095
        if page >= 0 and offset == 0:
            folio_mark_accessed(M, page)
        pos += min(min(end, isize) - pos, 4096 - offset)
    prog[0], prog[2] = pos, pos
    return OK


@njit
def shmem_read_calls(M, fid, isize, offsets, counts, prog, memcg):
    """read(2) calls of ``counts[k]`` bytes at ``offsets[k]``, in order
    (``prog``: [next call, its pos, its end, its last pos, 1 inside a call]).
    Returns (status, calls done); resumable after NEED_PAGE."""
    while prog[0] < offsets.shape[0]:
        k = prog[0]
        if prog[4] == 0:
            prog[1], prog[2] = offsets[k], offsets[k] + counts[k]
            prog[4] = 1
        st = shmem_file_read(M, fid, isize, prog[1:4], memcg)
        if st != OK:
            return st, k
        prog[4] = 0
        prog[0] = k + 1
    return OK, prog[0]


@njit
def shmem_perform_write(M, fid, start, end, memcg, progress):
    """generic_perform_write() over pages [start, end) of a shmem file, whose
    write_begin is shmem_get_folio(SGP_WRITE): a hole gets a new page
    (referenced), a cached page is marked accessed, a swapped-out one is read
    back; each is marked dirty (noop_dirty_folio: no dirty accounting).
    Resumable: ``progress`` as generic_perform_write's (W_INDEX, W_DIRTIED,
    W_READ)."""
    for index in range(progress[PW.W_INDEX], end):
        st, page, _major = shmem_get_folio(M, fid, index, SGP_WRITE, memcg)
        if st != OK:
            progress[PW.W_INDEX] = index
            return st
        progress[PW.W_DIRTIED] += PW.folio_mark_dirty(M, page)
    progress[PW.W_INDEX] = end
    return OK


# --------------------------------------------------------------------------
# swapoff, smaps

@njit
def shmem_unuse_file(M, fid, lo, hi, progress, memcg):
    """Models shmem_unuse_inode() for swapoff: every page of the file
    swapped out to slots [lo, hi) is read back (SGP_CACHE). Resumable:
    ``progress[0]`` is the index to go on from."""
    base = M.f_base[fid]
    for index in range(progress[0], M.f_npages[fid]):
        entry = M.pc[base + index]
        if pc_is_swap(entry) and lo <= pc_swap_slot(entry) < hi:
            st, _page, _major = shmem_swapin_folio(M, fid, index, pc_swap_slot(entry),
                                                   SGP_CACHE, memcg)
            if st != OK:
                progress[0] = index
                return st
    progress[0] = M.f_npages[fid]
    return OK


@njit
def shmem_partial_swap_usage(M, fid, start, end):
    """Models shmem_partial_swap_usage(): the pages of indices [start, end)
    of the file that are swapped out."""
    n = 0
    base = M.f_base[fid]
    for index in range(max(start, 0), min(end, M.f_npages[fid])):
        if pc_is_swap(M.pc[base + index]):
            n += 1
    return n


@njit
def shmem_swap_holes(M, mm, fid, vm_start, vm_end, vm_pgoff):
    """smaps_pte_hole() with smaps_shmem_walk_ops (a private writable shmem
    mapping): the swapped-out file pages where the mapping has no PTE (not
    replaced by a private copy)."""
    n = 0
    base = M.f_base[fid]
    va = vm_start
    while va < vm_end:
        index = vm_pgoff + ((va - vm_start) >> PAGE_SHIFT)
        if index >= M.f_npages[fid]:
            break
        if pc_is_swap(M.pc[base + index]):
            pte_t, _st = walk_pte(M, mm, va, False)
            if pte_t < 0 or M.pt[pte_t, table_index(va, PAGE_SHIFT)] == 0:
                n += 1
        va += np.int64(1) << PAGE_SHIFT
    return n
