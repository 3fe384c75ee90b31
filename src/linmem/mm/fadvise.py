"""posix_fadvise(2) and MADV_WILLNEED on files (mm/fadvise.c, mm/madvise.c;
Linux 6.18).

Advice changes how the open file reads ahead, or acts on its page cache now:

* NORMAL: ra_pages back to the device's (32 pages), FMODE_RANDOM off;
* RANDOM: FMODE_RANDOM: every read reads exactly what it asks for
  (page_cache_sync_ra -> force_page_cache_ra), nothing more;
* SEQUENTIAL: ra_pages doubled (64: windows of 256 KiB), FMODE_RANDOM off;
* WILLNEED: read the range now (force_page_cache_readahead), but at most
  max(io_pages, ra_pages) = 320 pages (1.25 MiB) from its start: a larger
  range is not read whole;
* DONTNEED: drop the clean, unmapped pages wholly inside the range.

MADV_WILLNEED on a file mapping is POSIX_FADV_WILLNEED on the mapped range
of the file (madvise_willneed -> vfs_fadvise); on anonymous memory and shmem
it reads back swapped-out pages (nothing here: no swap yet).

Deviations from Linux (``XXX``): DONTNEED does not start writeback of dirty
pages first (__filemap_fdatawrite_range); NOREUSE is not modelled.
"""

from __future__ import annotations

from linmem.engine import memory as E
from linmem.engine import readahead as R
from linmem.mm.vma import SyscallError

POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL = 0, 1, 2
POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED = 3, 4
LLONG_MAX = (1 << 63) - 1
PAGE_SHIFT = 12


def generic_fadvise(mem, fid: int, isize: int, offset: int, length: int, advice: int,
                    memcg: int = 0) -> int:
    """Models generic_fadvise() on the open file ``fid`` of ``isize`` bytes;
    returns the pages dropped (DONTNEED), else 0. EINVAL for a negative
    length or unknown advice."""
    if length < 0:
        raise SyscallError("EINVAL", f"fadvise: negative length {length}")
    ra = mem.K.ra[fid]
    endbyte = offset + length                # inclusive end; length 0: to the end
    endbyte = LLONG_MAX if not length or endbyte > LLONG_MAX else endbyte - 1
    if advice == POSIX_FADV_NORMAL:
        ra[R.RA_PAGES] = R.VM_READAHEAD_PAGES
        ra[R.RA_FMODE] &= ~R.FMODE_RANDOM
    elif advice == POSIX_FADV_RANDOM:
        ra[R.RA_FMODE] |= R.FMODE_RANDOM
    elif advice == POSIX_FADV_SEQUENTIAL:
        ra[R.RA_PAGES] = 2 * R.VM_READAHEAD_PAGES
        ra[R.RA_FMODE] &= ~R.FMODE_RANDOM
    elif advice == POSIX_FADV_WILLNEED:
        start = offset >> PAGE_SHIFT         # first and last partial page
        nrpages = (endbyte >> PAGE_SHIFT) - start + 1
        force_page_cache_readahead(mem, fid, start, nrpages, memcg)
    elif advice == POSIX_FADV_DONTNEED:
        return _dontneed(mem, fid, isize, offset, endbyte)
    else:
        raise SyscallError("EINVAL", f"fadvise: unknown advice {advice}")
    return 0


def _dontneed(mem, fid: int, isize: int, offset: int, endbyte: int) -> int:
    """The DONTNEED case: only whole pages go; the last, partial one too when
    the range ends at the end of the file."""
    start = (offset + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
    end = endbyte >> PAGE_SHIFT
    if (endbyte & 4095) != 4095 and endbyte != isize - 1:
        if end == 0:
            return 0
        end -= 1
    if end < start:
        return 0
    return int(E.invalidate_mapping_pages(mem.K.ref, fid, start, end))


def force_page_cache_readahead(mem, fid: int, index: int, nr_to_read: int,
                               memcg: int = 0) -> None:
    """Models force_page_cache_readahead() -> force_page_cache_ra()."""
    nr = min(nr_to_read, 1 << 40)
    started = []

    def call(K):                             # after NEED_PAGE: finish the window
        status = R.ra_submit(K, fid, memcg) if started else \
            R.force_page_cache_ra(K, fid, index, nr, memcg)
        started.append(True)
        return status, 0
    mem.run_resumable(call)


def madvise_willneed(mem, fid: int, isize: int, vm_pgoff: int, vm_start: int,
                     start: int, end: int, memcg: int = 0) -> None:
    """Models madvise_willneed() for a file VMA: POSIX_FADV_WILLNEED on the
    file range [start, end) of the mapping maps."""
    offset = (start - vm_start) + (vm_pgoff << PAGE_SHIFT)
    generic_fadvise(mem, fid, isize, offset, end - start, POSIX_FADV_WILLNEED, memcg)
