"""Compiled kernels: buffered writes, dirty pages and their writeback
(mm/filemap.c generic_perform_write, mm/page-writeback.c folio_mark_dirty,
folio_clear_dirty_for_io, __folio_start_writeback, __folio_end_writeback,
write_cache_pages; mm/truncate.c folio_cancel_dirty).

A write(2) looks each page of the range up in the page cache, creating it
if absent (write_begin). A page that the write covers only in part and that
holds data on disk must be read first (block_write_begin), which costs a
read; a page written whole, or beyond the old end of the file, needs none.
The copied page is marked dirty (folio_mark_dirty): PG_dirty, the node's
``nr_dirty`` and ``nr_dirtied``, the zone's ``nr_zone_write_pending``, and
the file's own count. The first dirty page of a clean file stamps its inode
with ``dirtied_when`` (the clock), which the flusher uses to find data older
than ``dirty_expire_centisecs``.

Writeback moves pages from dirty to under writeback (``nr_dirty`` down,
``nr_writeback`` up; still write-pending) and, when the device has written
them, ends it (``nr_writeback`` down, ``nr_written`` up). shmem/tmpfs pages
are swap-backed: marking them dirty accounts nothing (noop_dirty_folio) and
they are never written back here; reclaim writes them to swap
(``linmem.engine.shmem``).

Per file, ``M.fstat[file]``: the capacity of its slice of the page cache
index, its dirty and writeback page counts, and ``dirtied_when``.

Linux 6.18's write_begin looks folios up with FGP_WRITEBEGIN, which has no
FGP_ACCESSED, and generic_perform_write does not call folio_mark_accessed: a
write leaves the LRU state of a folio alone (the real kernel shows it:
tests/data/realkernel/writeback-6.18.json).
shmem differs (shmem_get_folio_gfp with SGP_WRITE, in
``linmem.engine.shmem.shmem_perform_write``): a new page starts referenced,
an existing one is marked accessed, so a tmpfs file written twice is active,
and a page swapped out is read back first.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine import lru as L
from linmem.engine.filemap import NR_FILE_PAGES, NR_SHMEM, folio_mark_accessed
from linmem.engine.readahead import PGPGIN, RA_SHMEM, find_get_page
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.workingset import workingset_refault
from linmem.engine.pgtable import C_NOW_US, KIND_USER, NEED_PAGE, OK, alloc_frame
from linmem.mm.frames import (PG_active, PG_dirty, PG_lru, PG_reclaim,
                              PG_swapbacked, PG_uptodate, PG_writeback)
from linmem.mm.vmstat import node_item, vm_event, zone_item

FS_CAP, FS_DIRTY, FS_WRITEBACK, FS_DIRTIED_WHEN = 0, 1, 2, 3
NR_FSTAT = 4

NR_FILE_DIRTY = node_item("nr_dirty")
NR_WRITEBACK = node_item("nr_writeback")
NR_DIRTIED = node_item("nr_dirtied")
NR_WRITTEN = node_item("nr_written")
NR_ZONE_WRITE_PENDING = zone_item("nr_zone_write_pending")
PGPGOUT = vm_event("pgpgout")
PGROTATED = vm_event("pgrotated")

# generic_perform_write progress, in an int64 array the caller keeps
W_INDEX, W_DIRTIED, W_READ = 0, 1, 2


@njit
def folio_mark_dirty(M, page):
    """Models folio_mark_dirty() -> filemap_dirty_folio() -> folio_account_dirtied()
    and __mark_inode_dirty(I_DIRTY_PAGES). Returns the pages newly dirtied
    (the writer's nr_dirtied for balance_dirty_pages)."""
    if M.flags[page] & PG_dirty:
        return 0
    M.flags[page] |= PG_dirty
    fid = M.mapping[page]
    if M.ra[fid, RA_SHMEM]:
        return 0                                     # shmem: noop_dirty_folio
    M.node_stat[NR_FILE_DIRTY] += 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_DIRTY, 1)
    M.node_stat[NR_DIRTIED] += 1
    M.zstat[B.zone_of(M, page), NR_ZONE_WRITE_PENDING] += 1
    if M.fstat[fid, FS_DIRTY] == 0 and M.fstat[fid, FS_WRITEBACK] == 0:
        M.fstat[fid, FS_DIRTIED_WHEN] = M.ctl[C_NOW_US]
    M.fstat[fid, FS_DIRTY] += 1
    return 1


@njit
def folio_cancel_dirty(M, page):
    """Models folio_cancel_dirty() -> folio_account_cleaned(): a dirty page
    truncated away is no longer dirty, and was never written."""
    if not (M.flags[page] & PG_dirty):
        return
    M.flags[page] &= ~np.uint32(PG_dirty)
    fid = M.mapping[page]
    if M.ra[fid, RA_SHMEM]:
        return
    M.node_stat[NR_FILE_DIRTY] -= 1
    MC.mod_memcg_page(M, page, MC.MS_FILE_DIRTY, -1)
    M.zstat[B.zone_of(M, page), NR_ZONE_WRITE_PENDING] -= 1
    _file_dirty_sub(M, fid, 1)


@njit
def _file_dirty_sub(M, fid, nr):
    M.fstat[fid, FS_DIRTY] -= nr
    if M.fstat[fid, FS_DIRTY] == 0 and M.fstat[fid, FS_WRITEBACK] == 0:
        M.fstat[fid, FS_DIRTIED_WHEN] = -1


@njit
def add_to_page_cache(M, fid, pgoff, pfn, memcg):
    """Models filemap_add_folio(): a new, up-to-date page of the file, on the
    inactive list of its kind (file, or anon for shmem)."""
    flags = PG_uptodate
    if M.ra[fid, RA_SHMEM]:
        flags |= PG_swapbacked
        M.node_stat[NR_SHMEM] += 1
        MC.mod_memcg_page(M, pfn, MC.MS_SHMEM, 1)
    M.flags[pfn] |= flags
    M.mapping[pfn] = fid
    M.index[pfn] = pgoff
    M.pc[M.f_base[fid] + pgoff] = pfn
    workingset_refault(M, M.f_base[fid] + pgoff, pfn, memcg)
    M.node_stat[NR_FILE_PAGES] += 1
    MC.mod_memcg_page(M, pfn, MC.MS_FILE_PAGES, 1)
    L.lruvec_add_folio(M, pfn, 1, memcg)


@njit
def grab_page(M, fid, index, read, memcg, progress):
    """A new page of the file at ``index``, its contents read from disk first
    when ``read`` (counted in W_READ); -1 when no page is free."""
    page = alloc_frame(M, KIND_USER)
    if page < 0:
        return page
    if read:
        M.events[PGPGIN] += 4
        progress[W_READ] += 1
    add_to_page_cache(M, fid, index, page, memcg)
    return page


@njit
def generic_perform_write(M, fid, start, end, head_partial, tail_partial, old_npages,
                          memcg, progress):
    """Models generic_perform_write() over pages [start, end) of a file (not
    shmem: linmem.engine.shmem.shmem_perform_write) whose pages before
    ``old_npages`` hold data on disk. ``head_partial`` and ``tail_partial``:
    the write covers the first/last page only in part. Resumable:
    ``progress`` holds the next page, the pages newly dirtied and the pages
    read first (W_INDEX, W_DIRTIED, W_READ)."""
    for index in range(progress[W_INDEX], end):
        page = find_get_page(M, fid, index)
        if page < 0:
            partial = (index == start and head_partial) or (index == end - 1 and tail_partial)
            read = partial and index < old_npages
            page = grab_page(M, fid, index, read, memcg, progress)   # block_write_begin
            if page < 0:
                progress[W_INDEX] = index
                return NEED_PAGE
        progress[W_DIRTIED] += folio_mark_dirty(M, page)
    progress[W_INDEX] = end
    return OK


@njit
def write_cache_pages(M, fid, start, end, nr_to_write, out):
    """Models write_cache_pages() with folio_clear_dirty_for_io() and
    __folio_start_writeback(): the dirty pages of [start, end) not already
    under writeback, at most ``nr_to_write``, go under writeback; their pfns
    are put in ``out``. Returns (how many, the index after the last one)."""
    n = 0
    index = start
    base = M.f_base[fid]
    while index < end and n < nr_to_write:
        page = M.pc[base + index]
        index += 1
        if page < 0 or not (M.flags[page] & PG_dirty) or (M.flags[page] & PG_writeback):
            continue
        M.flags[page] = (M.flags[page] & ~np.uint32(PG_dirty)) | PG_writeback
        M.node_stat[NR_FILE_DIRTY] -= 1
        MC.mod_memcg_page(M, page, MC.MS_FILE_DIRTY, -1)
        M.node_stat[NR_WRITEBACK] += 1
        MC.mod_memcg_page(M, page, MC.MS_WRITEBACK, 1)
        M.fstat[fid, FS_WRITEBACK] += 1
        _file_dirty_sub(M, fid, 1)
        M.events[PGPGOUT] += 4
        out[n] = page
        n += 1
    return n, index


@njit
def folio_end_writeback(M, pages, n):
    """Models folio_end_writeback() -> __folio_end_writeback() for ``n`` pages:
    the device has written them."""
    for k in range(n):
        page = pages[k]
        if not (M.flags[page] & PG_writeback):
            continue
        M.flags[page] &= ~np.uint32(PG_writeback)
        if M.flags[page] & PG_reclaim:               # reclaim looked at it: next in line
            rotate_reclaimable(M, page)
        fid = M.mapping[page]
        M.node_stat[NR_WRITEBACK] -= 1
        MC.mod_memcg_page(M, page, MC.MS_WRITEBACK, -1)
        M.node_stat[NR_WRITTEN] += 1
        M.zstat[B.zone_of(M, page), NR_ZONE_WRITE_PENDING] -= 1
        M.fstat[fid, FS_WRITEBACK] -= 1
        if M.fstat[fid, FS_DIRTY] == 0 and M.fstat[fid, FS_WRITEBACK] == 0:
            M.fstat[fid, FS_DIRTIED_WHEN] = -1


@njit
def rotate_reclaimable(M, page):
    """Models folio_rotate_reclaimable(): a folio reclaim marked PG_reclaim
    whose writeback ended goes to the tail of the inactive list, clean, to be
    reclaimed next (pgrotated)."""
    M.flags[page] &= ~np.uint32(PG_reclaim)
    if (M.flags[page] & PG_lru) and not (M.flags[page] & PG_dirty):
        memcg = M.memcg[page]
        L.lruvec_del_folio(M, page, 1, memcg)
        M.flags[page] &= ~np.uint32(PG_active)
        L.lruvec_add_folio_tail(M, page, 1, memcg)
        M.events[PGROTATED] += 1


@njit
def file_residency(M, fid):
    """(cached, dirty, writeback) pages of a file, by walking its index."""
    base = M.f_base[fid]
    cached = dirty = writeback = 0
    shmem = M.ra[fid, RA_SHMEM]
    for i in range(M.f_npages[fid]):
        page = M.pc[base + i]
        if page < 0:
            continue
        cached += 1
        if (M.flags[page] & PG_dirty) and not shmem:
            dirty += 1
        if M.flags[page] & PG_writeback:
            writeback += 1
    return cached, dirty, writeback


@njit
def touch_blocks(M, fid, indices, dirty, read_missing, memcg, progress):
    """Models __bread()/__getblk() and mark_buffer_dirty() on a block device's
    page cache, one 4 KiB block per page: each block of ``indices`` is looked
    up (touch_buffer: folio_mark_accessed) or, when missing, read from disk
    (``read_missing``) or created in memory (getblk of a block about to be
    written whole, such as a journal block); then marked dirty if ``dirty``.
    Resumable: ``progress`` holds the position in ``indices`` and the blocks
    read (W_INDEX, W_READ); W_DIRTIED counts the pages newly dirtied."""
    for k in range(progress[W_INDEX], len(indices)):
        index = indices[k]
        page = find_get_page(M, fid, index)
        if page < 0:
            page = grab_page(M, fid, index, read_missing, memcg, progress)
            if page < 0:
                progress[W_INDEX] = k
                return NEED_PAGE
        else:
            folio_mark_accessed(M, page)
        if dirty:
            progress[W_DIRTIED] += folio_mark_dirty(M, page)
    progress[W_INDEX] = len(indices)
    return OK
