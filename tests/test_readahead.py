"""Readahead as mm/readahead.c and mm/filemap.c (Linux 6.18) do it: the
windows of read(2) (get_init_ra_size, get_next_ra_size, the async trigger at
PG_readahead, random read detection, FMODE_RANDOM), posix_fadvise, and the
readahead of mmap faults (read-around, MADV_SEQUENTIAL, MADV_WILLNEED).

Windows are written (start, size, async_size) in pages; ra_pages is 32
(read_ahead_kb 128), io_pages 320 (max_sectors_kb 1280). Every expected
number below is worked out from the kernel's formulas in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linmem.engine import readahead as R
from linmem.errors import InputError
from linmem.kernel.machine import Machine
from linmem.mm import fadvise as FA
from linmem.mm import vma as V
from linmem.mm.frames import PG_active, PG_reclaim, PG_referenced
from linmem.mm.vmstat import node_item, vm_event
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

KiB, MiB = 1 << 10, 1 << 20
RECORDED = json.loads((Path(__file__).parent / "data/realkernel/faults-6.18.json").read_text())


class File:
    """A file of a fresh machine, read through the kernel's page cache."""

    def __init__(self, size, machine=None, name="/data/f"):
        self.m = machine or Machine(ram=1 << 30)
        self.k = self.m.kernel
        self.f = self.k.open_file(V.MappedFile(name, size))
        self.fid = self.k.file_id(self.f)

    def read(self, offset, count):
        self.k.mem.read(self.fid, self.f.size, [offset], count)

    def read_all(self, block):
        self.k.mem.read(self.fid, self.f.size, np.arange(0, self.f.size, block), block)

    def window(self):
        ra = self.k.mem.K.ra[self.fid]
        return int(ra[R.RA_START]), int(ra[R.RA_SIZE]), int(ra[R.RA_ASYNC])

    def pgpgin(self):
        """Pages read from disk so far (pgpgin counts KiB)."""
        return int(self.m.page_alloc.S.events[vm_event("pgpgin")]) // 4

    def fadvise(self, advice, offset=0, length=0):
        return FA.generic_fadvise(self.k.mem, self.fid, self.f.size, offset, length, advice)

    def page(self, index):
        return int(self.k.mem.K.pc[self.k.mem.K.f_base[self.fid] + index])

    def flags(self, index):
        return int(self.k.mem.K.flags[self.page(index)])

    def marked(self):
        """Indexes of the cached pages marked PG_readahead."""
        return [i for i in range(self.k.mem.K.f_npages[self.fid])
                if self.page(i) >= 0 and self.flags(i) & PG_reclaim]


def windows_of(file, offsets, count):
    """The distinct windows after each read(2) of ``count`` bytes at ``offsets``."""
    seen = []
    for off in offsets:
        file.read(off, count)
        if not seen or seen[-1] != file.window():
            seen.append(file.window())
    return seen


# ------------------------------------------------------------------ read(2)

def test_4k_sequential_reader_ramps_the_window_up():
    """Read 0 misses at index 0: get_init_ra_size(1, 32) = 4 pages, async 3
    (PG_readahead on page 1). Each mark reached moves the window on by its
    size and grows it: get_next_ra_size 4 -> 8 (<= max/2: x2), 8 -> 16,
    16 -> 32, then max. The last window starts at 252 and is cut at the end
    of the 256-page file."""
    f = File(1 * MiB)
    assert windows_of(f, range(0, 1 * MiB, 4 * KiB), 4 * KiB) == \
        [(0, 4, 3), (4, 8, 8), (12, 16, 16), (28, 32, 32), (60, 32, 32), (92, 32, 32),
         (124, 32, 32), (156, 32, 32), (188, 32, 32), (220, 32, 32), (252, 32, 32)]
    assert f.pgpgin() == 256 and f.marked() == []
    f.m.check_invariants()


def test_4k_reader_reads_ahead_of_what_it_asked():
    """Ten 4 KiB reads from 0: windows 0-3, 4-11, 12-27 are read: 28 pages;
    the next mark is page 12."""
    f = File(1 * MiB)
    for i in range(10):
        f.read(i * 4096, 4096)
    assert f.pgpgin() == 4 + 8 + 16 and f.marked() == [12]
    f.m.check_invariants()


def test_128k_reader_one_window_per_read():
    """A 128 KiB read at 0 asks 32 pages = ra_pages: window (0, 32, 16)
    (async = size >> 1 when size is not above the request); the batch ends
    on the mark at 16, which starts (32, 32, 32) in the same call. Each
    later read starts on a mark and reads the next 32 pages."""
    f = File(1 * MiB)
    f.read(0, 128 * KiB)
    assert f.window() == (32, 32, 32) and f.pgpgin() == 64 and f.marked() == [32]
    assert windows_of(f, range(128 * KiB, 1 * MiB, 128 * KiB), 128 * KiB) == \
        [(64, 32, 32), (96, 32, 32), (128, 32, 32), (160, 32, 32), (192, 32, 32),
         (224, 32, 32), (256, 32, 32)]
    assert f.pgpgin() == 256
    f.m.check_invariants()


def test_1m_reads_use_the_device_io_size():
    """A 1 MiB read asks 256 pages > ra_pages: ractl_max_pages allows
    min(256, io_pages 320) = 256; get_init_ra_size(256, 256) = 256, async
    128; the mark at 128 starts (256, 256, 256) in the same call."""
    f = File(4 * MiB)
    f.read(0, 1 * MiB)
    assert f.window() == (256, 256, 256) and f.pgpgin() == 512
    f.m.check_invariants()


def test_random_reads_are_read_as_asked_and_leave_the_window_alone():
    """page_cache_sync_ra's tests, one 4 KiB read after another (pages):
    100: no read before (prev_pos -1), page 99 not cached: random, 1 page;
    7, 50: not right after the previous read, nothing cached before: 1 page;
    51: right after 50 (index - prev_index = 0): sequential, (51, 4, 3);
    52: the mark: (55, 8 - 3, 5), the end 63 rounded down to a multiple of 4;
    300: random again, 1 page; the window stays (55, 5, 5)."""
    f = File(2 * MiB)
    read = []
    for page in (100, 7, 50, 51, 52, 300):
        f.read(page * 4096, 4096)
        read.append(f.pgpgin())
    assert read == [1, 2, 3, 7, 12, 13]
    assert f.window() == (55, 5, 5) and f.marked() == [55]
    f.m.check_invariants()


def test_cached_history_before_a_miss_makes_a_stream():
    """A miss not right after the previous read, with pages cached just
    before it (page_cache_prev_miss, at most ra_pages back): more than the
    request is a stream: window (index, contig + request, 1), the mark on its
    last page; contig is doubled when the file is cached from its start."""
    f = File(1 * MiB)
    f.fadvise(FA.POSIX_FADV_RANDOM)
    f.read(100 * 4096, 10 * 4096)            # FMODE_RANDOM: exactly pages 100-109
    f.fadvise(FA.POSIX_FADV_NORMAL)
    f.read(5 * 4096, 4096)                   # random: page 5 alone
    f.read(110 * 4096, 4096)                 # 10 cached before 110 (99 is not): 10 + 1
    assert f.window() == (110, 11, 1) and f.marked() == [120] and f.pgpgin() == 10 + 1 + 11
    g = File(1 * MiB)
    g.fadvise(FA.POSIX_FADV_RANDOM)
    g.read(0, 10 * 4096)                     # pages 0-9
    g.fadvise(FA.POSIX_FADV_NORMAL)
    g.read(200 * 4096, 4096)                 # random: page 200 alone
    g.read(10 * 4096, 4096)                  # 0-9 cached: ULONG_MAX, contig 10 x 2 + 1
    assert g.window() == (10, 21, 1) and g.marked() == [30] and g.pgpgin() == 10 + 1 + 21
    f.m.check_invariants()
    g.m.check_invariants()


def test_fmode_random_reads_exactly_the_request():
    """POSIX_FADV_RANDOM: page_cache_sync_ra forces a read of the request
    (force_page_cache_ra), no window, no mark: ten 4 KiB reads read 10 pages,
    a 1 MiB file read with 128 KiB reads 256, the readahead state untouched."""
    f = File(1 * MiB)
    f.fadvise(FA.POSIX_FADV_RANDOM)
    for i in range(10):
        f.read(i * 4096, 4096)
    assert f.pgpgin() == 10
    f.read_all(128 * KiB)
    assert f.pgpgin() == 256 and f.window() == (0, 0, 0) and f.marked() == []
    f.m.check_invariants()


def test_fadvise_sequential_doubles_the_window():
    """ra_pages 64: a 128 KiB read at 0 gets get_init_ra_size(32, 64) = 64,
    async 64 - 32 = 32; the next reads move it by 64 (get_next_ra_size(64, 64)
    = 64; the end stays a multiple of 4)."""
    f = File(2 * MiB)
    f.fadvise(FA.POSIX_FADV_SEQUENTIAL)
    assert windows_of(f, range(0, 1 * MiB, 128 * KiB), 128 * KiB) == \
        [(0, 64, 32), (64, 64, 64), (128, 64, 64), (192, 64, 64), (256, 64, 64)]
    assert f.pgpgin() == 320
    f.fadvise(FA.POSIX_FADV_NORMAL)
    assert int(f.k.mem.K.ra[f.fid, R.RA_PAGES]) == 32


@pytest.mark.parametrize("block", ["4k", "128k", "1M"])
def test_every_folio_read_is_marked_accessed(block):
    """tests/data/realkernel/read-twice-6.18.json: whatever the block size, a
    file read once is inactive, read twice active (folio_mark_accessed on
    every folio of a batch after the first, and on the first unless the last
    read ended in it)."""
    real = json.loads((Path(__file__).parent / "data/realkernel/read-twice-6.18.json")
                      .read_text())
    once, twice, _ = real["reads"][block]
    assert once["inactive_file"] > 0.99 * 51200 and twice["active_file"] > 0.99 * 51200
    f = File(8 * MiB)
    size = {"4k": 4 * KiB, "128k": 128 * KiB, "1M": MiB}[block]
    node = lambda name: int(f.m.node_stat[node_item(name)])  # noqa: E731
    f.read_all(size)
    assert (node("nr_inactive_file"), node("nr_active_file")) == (2048, 0)
    f.read_all(size)
    assert (node("nr_inactive_file"), node("nr_active_file")) == (0, 2048)
    assert f.pgpgin() == 2048
    f.m.check_invariants()


def test_small_reads_of_one_page_are_one_access():
    """prev_pos: ten 100-byte reads in page 0 mark it once (referenced, not
    active); a read of page 0 after a read elsewhere marks it again."""
    f = File(1 * MiB)
    for i in range(10):
        f.read(i * 100, 100)
    assert f.flags(0) & (PG_referenced | PG_active) == PG_referenced
    f.read(8192, 100)
    f.read(1000, 100)
    assert f.flags(0) & (PG_referenced | PG_active) == PG_active
    assert int(f.m.page_alloc.S.events[vm_event("pgactivate")]) == 1


# ---------------------------------------------------------------- fadvise

def test_willneed_reads_at_most_io_pages():
    """POSIX_FADV_WILLNEED of a 200 MiB file: force_page_cache_ra reads at
    most max(io_pages, ra_pages) = 320 pages, no mark, no window."""
    f = File(200 * MiB)
    f.fadvise(FA.POSIX_FADV_WILLNEED)
    assert f.pgpgin() == 320 and f.marked() == [] and f.window() == (0, 0, 0)
    f.fadvise(FA.POSIX_FADV_WILLNEED, 1 * MiB + 100, 8 * KiB)   # pages 256-258
    assert f.pgpgin() == 320
    f.fadvise(FA.POSIX_FADV_WILLNEED, 2 * MiB + 100, 8 * KiB)   # pages 512-514
    assert f.pgpgin() == 323
    f.m.check_invariants()


def test_dontneed_drops_whole_clean_unmapped_pages():
    """DONTNEED of bytes 4196..12387 (pages 1-3, partly): only the whole page
    2 goes; of the whole file: every page not mapped."""
    f = File(1 * MiB)
    f.read_all(128 * KiB)
    assert f.fadvise(FA.POSIX_FADV_DONTNEED, 4096 + 100, 8192) == 1
    assert f.page(2) < 0 and f.page(1) >= 0 and f.page(3) >= 0
    t = f.k.spawn("/usr/bin/sleep", ["sleep"])
    a = f.k.mmap(t, 64 * KiB, V.PROT_READ, V.MAP_SHARED, file=f.f)
    f.k.access(t, np.arange(a, a + 64 * KiB, 4096), False)      # page 2 is read again
    assert f.pgpgin() == 257
    assert f.fadvise(FA.POSIX_FADV_DONTNEED) == 256 - 16
    assert int(f.m.node_stat[node_item("nr_file_pages")]) == 16
    f.m.check_invariants()


# ------------------------------------------------------------------- mmap

def mmap_read(size, advice=None, prot=V.PROT_READ, flags=V.MAP_SHARED, first=0):
    """Faults (minor, major), pages read before and pages read by a
    sequential read, one byte per page from page ``first``, of a cold
    mapping of a ``size`` file."""
    f = File(size, Machine(ram=2 << 30))
    t = f.k.spawn("/usr/bin/sleep", ["sleep"])
    a = mmap_read.addr = f.k.mmap(t, size, prot, flags, file=f.f)
    if advice is not None:
        f.k.madvise(t, a, size, advice)
    before, read_before = f.k.mem.faults(t.pid), f.pgpgin()
    status, _ = f.k.access(t, np.arange(a + first * 4096, a + size, 4096), False)
    after = f.k.mem.faults(t.pid)
    assert status == 0
    f.m.check_invariants()
    return (after[0] - before[0], after[1] - before[1]), read_before, f.pgpgin() - read_before


def real(spec):
    phase = RECORDED["results"][spec]["phases"]["read"]
    return phase["minflt"], phase["majflt"]


@pytest.mark.parametrize("mib", [16, 200])
def test_madv_sequential_mmap_read(mib):
    """VM_SEQ_READ: the major fault at 0 is page_cache_sync_ra(0, 32):
    window (0, 32, 16); its retry maps pages 0-15. Page 16, the mark, is the
    first of its 16-page block: its fault maps 17-31, starts (32, 32, 32) and
    maps 16. Every later mark is a block's first page: one fault per 16 pages
    in all. Recorded: 3199 + 1 for 200 MiB (equal); 256 + 1 for 16 MiB, one
    more than the rules give (its runs took 256 or 257: pages still under
    I/O; the 200 MiB runs reached the rules' number)."""
    pages = mib * MiB // 4096
    faults, _, read = mmap_read(mib * MiB, V.MADV_SEQUENTIAL)
    assert faults == (pages // 16 - 1, 1) and read == pages
    rec = real(f"file-mmap-read @file{mib}M sequential")
    assert rec == ((3199, 1) if mib == 200 else (faults[0] + 1, 1))


@pytest.mark.parametrize("mib", [16, 200])
def test_default_mmap_read(mib):
    """Read-around at the major fault on 0: (0, 32, 8), the mark on page 24;
    the retry maps 0-15; the fault on 16 maps 16-31 but 24; the fault on 24
    starts (32, 32, 32) (mark 32, a block's first page): pages / 16 + 1
    faults in all. Recorded: 3204 + 1 and 258 + 1: the real reader catches up
    with its readahead (runs of 200 MiB took 3204 to 3210)."""
    pages = mib * MiB // 4096
    faults, _, read = mmap_read(mib * MiB)
    assert faults == (pages // 16, 1) and read == pages
    rec = real(f"file-mmap-read @file{mib}M")
    lo, hi = RECORDED["results"][f"file-mmap-read @file{mib}M"]["minflt_range"]["read"]
    assert rec[1] == 1 and faults[0] < lo <= rec[0] <= hi <= faults[0] + 10


@pytest.mark.parametrize("mib", [16, 200])
def test_madv_random_mmap_read(mib):
    """VM_RAND_READ: no readahead, one major fault per page (recorded)."""
    faults, _, read = mmap_read(mib * MiB, V.MADV_RANDOM)
    assert faults == real(f"file-mmap-read @file{mib}M random") == (0, mib * 256)


def test_madv_willneed_then_mmap_read_200mib():
    """MADV_WILLNEED -> vfs_fadvise(WILLNEED): no fault, pages 0-319 read
    (io_pages). The read then faults 20 times in them (fault-around, minor),
    major at 320 (read-around from 304: pages 320-335, mark 328), once more
    at 328, then one fault per 16 pages: 3200 minor + 1 major, 50880 pages
    read by the faults."""
    faults, willneed, read = mmap_read(200 * MiB, V.MADV_WILLNEED)
    assert willneed == 320 and faults == (3200, 1) and read == 51200 - 320


def test_madv_willneed_of_a_small_mapping_reads_it_all():
    """1 MiB (256 pages <= 320): all read by MADV_WILLNEED; the read takes
    one minor fault per 64 KiB block of addresses it spans (fault-around; a
    mapping this small is not 2 MiB aligned) and reads nothing."""
    faults, willneed, read = mmap_read(1 * MiB, V.MADV_WILLNEED)
    first = mmap_read.addr // 4096 % 16             # its first page's place in its block
    assert willneed == 256 and faults == (-(-(first + 256) // 16), 0) and read == 0


def test_exec_mapping_reads_forward_without_async_readahead():
    """VM_EXEC (6.16+): a major fault reads ra_pages from the page on, within
    the VMA, async_size 0: no mark, so every 32 pages a major fault (its
    retry maps the first 16) and a minor one."""
    faults, _, read = mmap_read(4 * MiB, prot=V.PROT_READ | V.PROT_EXEC, flags=V.MAP_PRIVATE)
    assert faults == (32, 32) and read == 1024


def test_madv_hugepage_file_mapping_reads_4mib_at_a_time():
    """VM_HUGEPAGE: the major fault reads 2 x 512 pages from the 2 MiB
    boundary, marked half way, without setting ra->start (0 still). From
    page 0 of an 8 MiB file: the mark 512 is where ra->start (0) + size - async
    expects it: the next window 1024-2047; 1 major fault, 127 minor."""
    faults, _, read = mmap_read(8 * MiB, V.MADV_HUGEPAGE)
    assert faults == (127, 1) and read == 2048


def test_madv_hugepage_stale_window_start_stops_readahead():
    """From page 600: pages 512-1535 read, mark 1024; ra->start is still 0,
    so at 1024 the async readahead finds the window unexpected and the next
    miss (1025 + 32 pages on) too far: nothing read. 1536 is a second major
    fault: 1536-2047, the mark on 1536 itself (512 pages, 512 ahead). 91
    fault-around blocks from 592: 89 minor, 2 major."""
    faults, _, read = mmap_read(8 * MiB, V.MADV_HUGEPAGE, first=600)
    assert faults == (89, 2) and read == 1024 + 512


def test_mmap_miss_stops_read_around_for_a_file_that_misses():
    """do_sync_mmap_readahead counts misses (mmap_miss), filemap_map_pages
    takes one off per cached page of a fault-around window (mapped or not).
    Faults on every 64th page of a cold 64 MiB file: each misses (+1) and its
    retry's fault-around finds the 16 pages read around it (-16): read-around
    goes on. With the count at 100, a miss makes it 101 > MMAP_LOTSAMISS: the
    page is read alone, and its retry's fault-around takes 1 off."""
    f = File(64 * MiB, Machine(ram=2 << 30))
    t = f.k.spawn("/usr/bin/sleep", ["sleep"])
    a = f.k.mmap(t, 64 * MiB, V.PROT_READ, V.MAP_SHARED, file=f.f)
    f.k.access(t, np.arange(a, a + 64 * MiB, 64 * 4096), False)
    assert f.pgpgin() == 256 * 32 and int(f.k.mem.K.ra[f.fid, R.RA_MMAP_MISS]) == 0
    f.k.mem.K.ra[f.fid, R.RA_MMAP_MISS] = 100
    f.k.access(t, np.array([a + 40 * 4096]), False)         # 101 > MMAP_LOTSAMISS
    assert f.pgpgin() == 256 * 32 + 1
    assert int(f.k.mem.K.ra[f.fid, R.RA_MMAP_MISS]) == 101 - 1   # the retry mapped page 40
    f.m.check_invariants()


# ------------------------------------------------------------ the read step

SCEN = ("machine: {{ram: 1GiB}}\nfiles: {{/data/f: 64MiB}}\nprocesses:\n"
        "  - name: r\n    program: cat\n    steps:\n      - read: {{{read}}}\n")


def run_read(read):
    result = run_scenario(parse_scenario(SCEN.format(read=read), "s.yaml"))
    return [e for e in result.events if e["event"] == "read"][0]["pages_read_from_disk"]


def test_read_step_part_block_and_advice():
    """A part of 1 MiB at 1 MiB (pages 256-511), 4 KiB reads. 256: no read
    before, 255 not cached: random, 1 page. 257, right after: (257, 4, 3),
    mark 258. Then each window grows (get_next_ra_size) and its end is
    rounded down to a multiple of 4: (261, 8 - 1, 7), (268, 14 - 2, 12),
    (280, 24, 24), then 32 pages from 304 on; the mark of the window at 496
    is reached: 528-559 are read too. FMODE_RANDOM: the 256 pages asked.
    WILLNEED: the 256 pages at once, the reads add nothing."""
    part = "file: /data/f, offset: 1MiB, size: 1MiB, block: 4KiB"
    assert run_read(part) == 1 + 4 + 7 + 12 + 24 + 32 * 8
    assert run_read(part + ", advice: random") == 256
    assert run_read(part + ", advice: willneed") == 256


def test_read_step_random_blocks_read_one_block_each():
    """16 KiB blocks at seeded random offsets of 64 MiB: each read is
    random for page_cache_sync_ra (not right after the previous read, at most
    one block cached just before it), so exactly its 4 pages are read."""
    from linmem.workload.steps import read_requests
    sc = parse_scenario(SCEN.format(read="file: /data/f, pattern: random, count: 200, "
                                         "block: 16KiB"), "s.yaml")
    args = sc.processes[0].steps[0].args
    offsets, _ = read_requests(args, 64 * MiB, np.random.default_rng(0))
    blocks, seen = offsets // (16 * KiB), set()
    for i, b in enumerate(blocks):                   # the case the expectation assumes
        assert not (i and blocks[i - 1] == b - 1) and not {b - 1, b - 2} <= seen
        seen.add(b)
    assert run_read("file: /data/f, pattern: random, count: 200, block: 16KiB") == 4 * len(seen)


BAD = [
    ("offset: -4096", "read.offset", "must not be negative"),
    ("size: 0", "read.size", "greater than 0"),
    ("block: 0", "read.block", "greater than 0"),
    ("colour: red", "read.colour", "unknown key 'colour'"),
    ("pattern: zigzag", "read.pattern", "'zigzag'"),
    ("advice: noreuse", "read.advice", "'noreuse'"),
    ("count: 5", "read.count", "count is only for pattern random, not sequential"),
    ("pattern: random, count: 0", "read.count", "at least 1"),
    ("offset: 64MiB", "read.offset", "offset 67108864 is at or beyond the end of /data/f"),
    ("offset: 32MiB, size: 33MiB", "read.size", "goes beyond the end of /data/f"),
]


@pytest.mark.parametrize("extra,path,fragment", BAD, ids=[b[1] + ":" + b[0] for b in BAD])
def test_read_step_validation(extra, path, fragment):
    with pytest.raises(InputError) as info:
        parse_scenario(SCEN.format(read="file: /data/f, " + extra), "s.yaml")
    assert info.value.where == f"s.yaml:7: processes[0].steps[0].{path}"
    assert fragment in info.value.what
