"""The kernel's own LRUs as trace-mode policies: ``linux`` (the two-list LRU
with refault distance) and ``mglru`` (the multi-gen LRU), on a cache of N
frames.

These policies are not written again here: the trace runs through the full
model's page cache and its memory-cgroup reclaim, the same code as
``linmem run`` and ``linmem replay --kernel``. Each distinct key of the
trace is one page of one file on the model's disk, numbered in the order
the trace first uses it, and each request is a read(2) of that 4 KiB page::

    trace keys     7   3   7   9   3   7 ...
    file page      0   1   0   2   1   0 ...      (first use order)
    read(2)        pread(fd, buf, 4096, page * 4096)

The file is opened with POSIX_FADV_RANDOM (FMODE_RANDOM), so a read that
misses reads its one page and nothing more (page_cache_sync_ra ->
force_page_cache_ra): no readahead brings in a page not asked for. The
reader runs in the memory cgroup ``/replay``, whose memory.max is N pages
above what the group holds before the first read:

    memory.max = memory.current after setup (0) + N

The reader's kernel stack, its page tables and the file's metadata (the
ext4 blocks its first lookup reads) are charged to the root cgroup before
the task moves to ``/replay`` (cgroup v2 does not move charges), and the
replay charges nothing but the file's pages there (the task takes no fault
and maps nothing), so memory.current of ``/replay`` *is* the file's page
cache. A miss that finds the group full has its charge refused
(try_charge_memcg), and the model's own memcg reclaim makes room:
try_to_free_mem_cgroup_pages -> shrink_lruvec, with the active/inactive
balance (inactive_is_low, shrink_active_list), folio_check_references, and
workingset_eviction leaving a shadow entry; a later miss on that page is a
refault, whose distance decides whether it comes back active
(workingset_refault -> workingset_test_recent). A hit is a read that finds
its page cached: folio_mark_accessed's two-touch rule marks the page
referenced, and activates it the second time. ``mglru`` is the same run on
a machine with the multi-gen LRU (``Machine(lru="mglru")``:
lru_gen_add_folio, lru_gen_inc_refs for read(2) accesses, the memcg's
lru_gen reclaim, lru_gen_refault).

Counting: a miss is a read that had to read its page from the disk. The
read path counts the pages it reads in ``pgpgin`` (in KiB: 4 a page), and
with FMODE_RANDOM a miss reads exactly its page, so the misses of a run of
reads are the growth of pgpgin / 4 and the hits are the rest. (The memcg's
pgfault and pgmajfault count page faults: read(2) takes none.)

The size of the cache: it never holds more than N pages. Each refused
charge reclaims at least SWAP_CLUSTER_MAX (32) pages, so once full the
cache holds N right after a miss that fitted and down to N minus one
reclaim's worth after one that did not: 38 to 46 pages a reclaim for the
two-list LRU and 32 to 57 for MGLRU (rarely up to 88) on the 1 M-request
Zipf trace of docs/trace-mode.md. For a cache of a few hundred frames or fewer that is a
sizeable part of it. The machine has RAM for the cache, a quarter more and
256 MiB, so its free memory stays far above the watermarks: kswapd and
global reclaim never run, only the memcg's limit reclaims. There is no
swap, and the machine's clock does not move (nothing is dirty: no
writeback is due).

Speed: hits, and misses while there is room, stay in one compiled call per
chunk of requests (filemap_read_calls); a refused charge returns to Python
for the memcg's reclaim (linmem.mm.memcontrol, linmem.mm.vmscan: a few
hundred microseconds a time, its list scans compiled), once per 40 to 55
misses. That path is the full model's and is shared with every scenario;
it is not batched here.

Deviations from a plain cache of N frames (``XXX``): two requests in a row
for the same key are one access, as the kernel counts repeated read(2)
calls inside one page (filemap_read does not mark the page accessed again
when the previous read ended in it: ra->prev_pos); object sizes are
ignored, one object is one page; the cache holds N minus up to one reclaim
batch once full, not exactly N.
"""

from __future__ import annotations

import time

import numpy as np

from linmem.cachesim import CHUNK, Result, trace_keys

PAGE = 4096
PAGE_SHIFT = 12
LRUS = {"linux": "classic", "mglru": "mglru"}     # policy -> Machine(lru=...)
CGROUP = "/replay"
FILE = "/data/trace.pages"
HEADROOM = 256 << 20                              # RAM for the kernel beyond the cache


def check_policy(name: str, frames: int) -> None:
    """ValueError unless ``name`` is a kernel policy and ``frames`` at least 1."""
    if name not in LRUS:
        raise ValueError(f"unknown kernel policy {name!r} (policies: {', '.join(LRUS)})")
    if frames < 1:
        raise ValueError(f"{name} needs at least 1 frame, got {frames}")


def machine_ram(frames: int) -> int:
    """RAM for a cache of ``frames`` pages: the cache, a quarter more and
    256 MiB, in whole MiB, so that free memory never nears the watermarks."""
    return -(-(frames * PAGE * 5 // 4 + HEADROOM) >> 20) << 20


class KernelCache:
    """A cache of ``frames`` pages run by the kernel model under policy
    ``name`` (linux or mglru), over a file of ``pages`` pages. ``replay``
    reads pages of the file (numbers 0 to pages - 1) and counts the hits.
    ValueError for an unknown policy or fewer than 1 frame."""

    def __init__(self, name: str, frames: int, pages: int):
        from linmem.kernel.machine import Machine
        check_policy(name, frames)
        self.name, self.frames, self.pages = name, frames, pages
        self.machine = Machine(ram=machine_ram(min(frames, pages)), thp="never",
                               lru=LRUS[name])
        self.kernel = k = self.machine.kernel
        self.inode = k.fs.create(FILE, pages * PAGE, boot=True)     # on disk, not cached
        self.task = k.spawn("/usr/bin/cat", ["replay"])
        self._open()
        self.memcg = k.memcg.mkdir(CGROUP)
        k.memcg.move(self.task, CGROUP)
        self.base = k.memcg.usage(self.memcg)
        k.memcg.write(CGROUP, "memory.max", (self.base + frames) * PAGE)

    def _open(self) -> None:
        """open(2) (the path lookup reads the file's metadata, charged to
        the root cgroup) and posix_fadvise(POSIX_FADV_RANDOM)."""
        from linmem.mm.fadvise import POSIX_FADV_RANDOM, generic_fadvise
        k = self.kernel
        k.read_file(self.task, FILE, np.zeros(0, dtype=np.int64), 0)
        generic_fadvise(k.mem, self.fid, self.inode.size, 0, 0, POSIX_FADV_RANDOM)

    @property
    def fid(self) -> int:
        """The file's page cache in the memory model."""
        return self.kernel.fs.fid(self.inode)

    @property
    def pgpgin(self) -> int:
        """Pages read from the disk so far (vmstat pgpgin counts KiB)."""
        from linmem.mm.vmstat import vm_event
        return int(self.machine.page_alloc.S.events[vm_event("pgpgin")]) // 4

    def cached(self) -> int:
        """Pages of the file in the page cache now."""
        return self.kernel.fs.residency(self.inode)[0]

    def replay(self, pages: np.ndarray) -> int:
        """read(2) of 4 KiB at each page of ``pages`` (int64), in order; the hits."""
        before = self.pgpgin
        offsets = np.ascontiguousarray(pages, dtype=np.int64) << PAGE_SHIFT
        self.kernel.read_file(self.task, FILE, offsets, PAGE)
        return len(offsets) - (self.pgpgin - before)

    def memory_stat(self) -> dict[str, int]:
        """memory.stat of the replay's cgroup (linmem.mm.memcontrol_stat)."""
        from linmem.mm.memcontrol_stat import memory_stat
        return memory_stat(self.kernel, self.memcg)


def compile_kernel_lru(name: str) -> None:
    """Compile (or load from numba's cache) what a replay under ``name``
    runs: reads that hit, miss and reclaim."""
    KernelCache(name, 40, 128).replay(np.tile(np.arange(128, dtype=np.int64), 2))


def replay_trace_kernel(path: str, fmt: str, name: str, frames: int,
                        chunk: int = CHUNK) -> Result:
    """Replay the trace at ``path`` (format ``fmt``) on a cache of ``frames``
    pages under the kernel's policy ``name`` (linux or mglru). Two passes
    over the trace: the first numbers its keys (the file's size), the second
    reads them; ``seconds`` counts both and the machine's boot, not
    compiling. Raises InputError for a bad trace (before compiling),
    ValueError for a bad policy or size."""
    from linmem.cachesim.idmap import IdMap
    check_policy(name, frames)
    IdMap().ids(np.arange(4, dtype=np.int64))             # compile the numbering
    idmap = IdMap()
    start = time.perf_counter()
    for keys in trace_keys(path, fmt, chunk):             # the first pass: the file's size
        idmap.ids(keys)
    seconds = time.perf_counter() - start
    compile_kernel_lru(name)
    start = time.perf_counter()
    cache = KernelCache(name, frames, len(idmap))
    requests = hits = 0
    for keys in trace_keys(path, fmt, chunk):             # the second: a read per request
        ids = idmap.ids(keys)
        requests += len(ids)
        hits += cache.replay(ids)
    return Result(requests, hits, seconds + time.perf_counter() - start)
