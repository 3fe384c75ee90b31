"""Compiled kernels: readahead, as mm/readahead.c (Linux 6.18) does it.

A read that finds a page missing from the page cache reads more than that
page: the *readahead window*. Its state lives in the open file
(``struct file_ra_state``: start, size, async_size, prev_pos, ra_pages); here
it is the row ``M.ra[file]`` (columns ``RA_*``).

    |<------------------- size ------------------->|
    |=================#============================|
    ^start            ^PG_readahead    |<- async ->|

The page ``async_size`` pages before the end of a new window is marked
PG_readahead. A reader reaching it starts the next window before it needs
it (page_cache_async_ra): the window moves on by its size, which grows
(get_next_ra_size: x4 while small, then x2, up to ra_pages).

A miss (page_cache_sync_ra) decides whether the reader is sequential:

* index 0, a request larger than the window, or a read right after the
  previous one (``index - prev_index <= 1``, prev_pos being where the last
  read(2) ended): a new window, get_init_ra_size(request): x4 of the request
  rounded to a power of two while small, x2 while medium, else ra_pages;
* otherwise the pages cached just before ``index`` tell: fewer than the
  request (page_cache_prev_miss), a random read: exactly the request, no mark
  and no window; more: a window of that history plus the request;
* a file opened for random access (FMODE_RANDOM, POSIX_FADV_RANDOM): exactly
  the request (force_page_cache_ra), always.

Worked numbers, read(2) of 4 KiB blocks from 0 (ra_pages 32): windows
(start, size, async) (0, 4, 3), (4, 8, 8), (12, 16, 16), (28, 32, 32),
(60, 32, 32)...; of 128 KiB blocks: (0, 32, 16), (32, 32, 32), (64, 32, 32)...

A window is read by page_cache_ra_unbounded. When it cannot get a page the
compiled code returns NEED_PAGE with the rest of the window kept in the row
(``RA_PEND_*``); ra_submit() finishes it when called again.

Deviations from Linux (``XXX``): the page cache holds 4 KiB folios only, as
a mapping without large-folio support (ext4 data=journal, the recorded
experiments' file system): page_cache_ra_order() reads order 0 pages;
readahead allocations are not __GFP_NORETRY (a window is never cut short by
a failed allocation); bdi->ra_pages is 32 (read_ahead_kb 128) and
bdi->io_pages 320 (max_sectors_kb 1280, the default of SCSI/SATA disks and
of loop devices) for every file; I/O completes at once.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import lru as L
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.engine.workingset import workingset_refault
from linmem.engine.pgtable import KIND_USER, NEED_PAGE, OK, alloc_frame
from linmem.mm.frames import PG_reclaim, PG_uptodate, PG_writeback
from linmem.mm.vmstat import node_item, vm_event

PG_readahead = PG_reclaim            # the same bit, as in the kernel

# M.ra columns: struct file_ra_state, two fields of struct file, and the rest
# of a window not read yet (NEED_PAGE): pages PEND_INDEX..PEND_END, the one to
# mark, and 1 + the index of a major fault waiting for them (0: none).
RA_START, RA_SIZE, RA_ASYNC, RA_MMAP_MISS, RA_SHMEM = 0, 1, 2, 3, 4
RA_PREV_POS, RA_PAGES, RA_FMODE = 5, 6, 7
RA_PEND_INDEX, RA_PEND_END, RA_PEND_MARK, RA_PEND_MAJOR = 8, 9, 10, 11
NR_RA = 12

VM_READAHEAD_PAGES = 32              # bdi->ra_pages: read_ahead_kb 128
IO_PAGES = 320                       # bdi->io_pages: max_sectors_kb 1280
FMODE_RANDOM = 0x1000                # f_mode bit set by POSIX_FADV_RANDOM
ULONG_MAX = -1                       # page_cache_prev_miss() wrapped below index 0

NR_FILE_PAGES = node_item("nr_file_pages")
PGPGIN = vm_event("pgpgin")


def file_ra_state_init(row: np.ndarray) -> None:
    """Models file_ra_state_init() on a zeroed struct file (do_dentry_open):
    no window, prev_pos -1, ra_pages from the device, no FMODE_RANDOM."""
    shmem = row[RA_SHMEM]
    row[:] = 0
    row[RA_SHMEM] = shmem
    row[RA_PREV_POS] = -1
    row[RA_PAGES] = VM_READAHEAD_PAGES


# A page-cache slot ``M.pc[f_base[file] + index]`` holds the pfn of the cached
# page, -1 for none, or, in a shmem file whose page went to swap, the swap
# entry in its place (the kernel's xarray value entry): -(slot + 2).
PC_NONE = -1


@njit
def pc_is_swap(entry):
    """xa_is_value(): the slot holds a swap entry, not a page."""
    return entry <= -2


@njit
def pc_swap_slot(entry):
    """radix_to_swp_entry(): the swap slot of a value entry."""
    return -np.int64(entry) - 2


@njit
def pc_swap_entry(slot):
    """swp_to_radix_entry(): the value entry for a swap slot."""
    return -np.int64(slot) - 2


@njit
def filemap_get_entry(M, fid, index):
    """Models filemap_get_entry(): what the slot holds (a pfn, -1, or a swap
    entry); -1 beyond the end of the file."""
    if index < 0 or index >= M.f_npages[fid]:
        return np.int64(PC_NONE)
    return np.int64(M.pc[M.f_base[fid] + index])


@njit
def find_get_page(M, fid, index):
    """The cached page of (file, index), or -1 (filemap_get_folio): a swap
    entry of a shmem file is not a cached page; nothing is cached beyond the
    end of the file."""
    entry = filemap_get_entry(M, fid, index)
    return entry if entry >= 0 else np.int64(PC_NONE)


@njit
def get_init_ra_size(size, max_pages):
    """Models get_init_ra_size(): the first window for a request of ``size``
    pages: roundup_pow_of_two(size) x4 up to max/32, x2 up to max/4, else max
    (ra_pages 32: 1-2 pages -> 4, 3-4 -> 8, 5-8 -> 16, 9 or more -> 32)."""
    newsize = 1
    while newsize < size:
        newsize <<= 1
    if newsize <= max_pages // 32:
        return newsize * 4
    if newsize <= max_pages // 4:
        return newsize * 2
    return max_pages


@njit
def get_next_ra_size(cur, max_pages):
    """Models get_next_ra_size(): the next window, x4 while below max/16, x2
    up to max/2, then max."""
    if cur < max_pages // 16:
        return 4 * cur
    if cur <= max_pages // 2:
        return 2 * cur
    return max_pages


@njit
def ractl_max_pages(ra_pages, req_size):
    """Models ractl_max_pages(): the window limit, ra_pages, raised for a
    larger request up to the device's optimal I/O size (io_pages)."""
    max_pages = ra_pages
    if req_size > max_pages and IO_PAGES > max_pages:
        max_pages = min(req_size, IO_PAGES)
    return max_pages


@njit
def page_cache_prev_miss(M, fid, index, max_scan):
    """Models page_cache_prev_miss(): the highest index in
    [index - max_scan + 1, index] that is not cached; index - max_scan when
    all are; ULONG_MAX (-1) when the scan passes below index 0."""
    i = index
    for _ in range(max_scan):
        if i < 0:
            return np.int64(ULONG_MAX)
        if find_get_page(M, fid, i) < 0:
            return i
        i -= 1
    return index - max_scan


@njit
def page_cache_next_miss(M, fid, index, max_scan):
    """Models page_cache_next_miss(): the lowest index in
    [index, index + max_scan) that is not cached, else index + max_scan."""
    for i in range(index, index + max_scan):
        if find_get_page(M, fid, i) < 0:
            return i
    return index + max_scan


@njit
def ra_submit(M, fid, memcg):
    """Read the pending window ``RA_PEND_INDEX..RA_PEND_END`` (the loop of
    page_cache_ra_unbounded): each page not cached is allocated, added to the
    page cache and the inactive file LRU, and read (pgpgin); the new page at
    ``RA_PEND_MARK`` is marked PG_readahead. NEED_PAGE leaves the rest pending."""
    ra = M.ra[fid]
    index = ra[RA_PEND_INDEX]
    while index < ra[RA_PEND_END]:
        if find_get_page(M, fid, index) < 0:
            pfn = alloc_frame(M, KIND_USER)
            if pfn < 0:
                ra[RA_PEND_INDEX] = index
                return NEED_PAGE
            M.flags[pfn] |= PG_uptodate
            if index == ra[RA_PEND_MARK]:
                M.flags[pfn] |= PG_readahead
            M.mapping[pfn] = fid
            M.index[pfn] = index
            M.pc[M.f_base[fid] + index] = pfn         # the page cache holds a reference
            workingset_refault(M, M.f_base[fid] + index, pfn, memcg)
            M.node_stat[NR_FILE_PAGES] += 1
            MC.mod_memcg_page(M, pfn, MC.MS_FILE_PAGES, 1)
            M.events[PGPGIN] += 4                     # KiB
            L.lruvec_add_folio(M, pfn, 1, memcg)
        index += 1
    ra[RA_PEND_INDEX] = index
    return OK


@njit
def page_cache_ra_unbounded(M, fid, index, nr_to_read, lookahead_size, memcg):
    """Models page_cache_ra_unbounded(): read the pages of
    [index, index + nr_to_read) that are not cached; the page
    ``nr_to_read - lookahead_size`` into the range gets PG_readahead if it is
    read now (none when lookahead_size is 0 or larger than the range)."""
    ra = M.ra[fid]
    ra[RA_PEND_INDEX] = index
    ra[RA_PEND_END] = index + nr_to_read
    ra[RA_PEND_MARK] = index + nr_to_read - lookahead_size if lookahead_size <= nr_to_read \
        else -1
    return ra_submit(M, fid, memcg)


@njit
def do_page_cache_ra(M, fid, index, nr_to_read, lookahead_size, memcg):
    """Models do_page_cache_ra(): page_cache_ra_unbounded() within the file
    (nothing past the page holding its last byte)."""
    npages = M.f_npages[fid]
    if npages == 0 or index >= npages:
        return OK
    end_index = npages - 1
    if nr_to_read > end_index - index:
        nr_to_read = end_index - index + 1
    return page_cache_ra_unbounded(M, fid, index, nr_to_read, lookahead_size, memcg)


@njit
def force_page_cache_ra(M, fid, index, nr_to_read, memcg):
    """Models force_page_cache_ra(): read exactly ``nr_to_read`` pages from
    ``index`` (at most max(io_pages, ra_pages)), no window, no mark. The
    kernel reads it in 2 MiB chunks; 320 pages are one chunk."""
    max_pages = max(IO_PAGES, M.ra[fid, RA_PAGES])
    nr_to_read = min(nr_to_read, max_pages)
    return do_page_cache_ra(M, fid, index, nr_to_read, 0, memcg)


@njit
def page_cache_ra_order(M, fid, memcg):
    """Models page_cache_ra_order() for a mapping without large folios: read
    the window ``M.ra[fid]`` describes with order-0 pages (the fallback:
    do_page_cache_ra of size pages, async_size of them ahead)."""
    ra = M.ra[fid]
    return do_page_cache_ra(M, fid, ra[RA_START], ra[RA_SIZE], ra[RA_ASYNC], memcg)


@njit
def page_cache_sync_ra(M, fid, index, req_count, memcg):
    """Models page_cache_sync_ra(): ``index`` is not cached; read it and
    what a sequential reader will want next (see the module docstring)."""
    ra = M.ra[fid]
    ra_pages = ra[RA_PAGES]
    do_forced_ra = (ra[RA_FMODE] & FMODE_RANDOM) != 0
    if ra_pages == 0:                        # readahead off: the request's first page
        req_count = 1
        do_forced_ra = True
    if do_forced_ra:
        return force_page_cache_ra(M, fid, index, req_count, memcg)
    max_pages = ractl_max_pages(ra_pages, req_count)
    prev_pos = ra[RA_PREV_POS]
    # (unsigned long long)prev_pos >> PAGE_SHIFT: -1 (no read yet) is never
    # at or just before index
    prev_index = prev_pos >> 12 if prev_pos >= 0 else np.int64(-1)
    if index == 0 or req_count > max_pages or \
            (prev_index >= 0 and 0 <= index - prev_index <= 1):
        ra[RA_START] = index
        ra[RA_SIZE] = get_init_ra_size(req_count, max_pages)
        ra[RA_ASYNC] = ra[RA_SIZE] - req_count if ra[RA_SIZE] > req_count else ra[RA_SIZE] >> 1
        return page_cache_ra_order(M, fid, memcg)
    miss = page_cache_prev_miss(M, fid, index - 1, max_pages)
    contig_count = index if miss == ULONG_MAX else index - miss - 1
    if contig_count <= req_count:            # a small random read: as is, no window
        return do_page_cache_ra(M, fid, index, req_count, 0, memcg)
    if miss == ULONG_MAX:                    # cached from the start: a long stream
        contig_count *= 2
    ra[RA_START] = index
    ra[RA_SIZE] = min(contig_count + req_count, max_pages)
    ra[RA_ASYNC] = 1
    return page_cache_ra_order(M, fid, memcg)


@njit
def page_cache_async_ra(M, fid, index, page, req_count, memcg):
    """Models page_cache_async_ra(): the reader reached ``page`` (at
    ``index``), marked PG_readahead. At the expected place
    (start + size - async_size) the window moves on and grows; elsewhere
    (interleaved readers) the next window starts at the first page not
    cached after it. The window's end is rounded down to a multiple of 4
    pages (ra->order + 2: 0 + 2 for order-0 folios)."""
    ra = M.ra[fid]
    if ra[RA_PAGES] == 0:
        return OK
    if M.flags[page] & PG_writeback:         # PG_reclaim, not PG_readahead
        return OK
    M.flags[page] &= ~np.uint32(PG_readahead)
    max_pages = ractl_max_pages(ra[RA_PAGES], req_count)
    if index == ra[RA_START] + ra[RA_SIZE] - ra[RA_ASYNC]:
        ra[RA_START] += ra[RA_SIZE]
        ra[RA_SIZE] = max(ra[RA_SIZE], get_next_ra_size(ra[RA_SIZE], max_pages))
    else:
        start = page_cache_next_miss(M, fid, index + 1, max_pages)
        if start == 0 or start - index > max_pages:
            return OK
        ra[RA_START] = start
        ra[RA_SIZE] = get_next_ra_size(start - index + req_count, max_pages)
    lowbit = 0                               # ffs(max_pages) - 1
    while not (max_pages >> lowbit) & 1:
        lowbit += 1
    align = np.int64(1) << min(2, lowbit)
    end = ra[RA_START] + ra[RA_SIZE]
    aligned_end = end // align * align
    if aligned_end > ra[RA_START]:
        ra[RA_SIZE] -= end - aligned_end
    ra[RA_ASYNC] = ra[RA_SIZE]
    return page_cache_ra_order(M, fid, memcg)
