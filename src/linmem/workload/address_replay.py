"""Replaying a captured program in its own address space.

A capture (:mod:`linmem.workload.capture`) gives a trace and the guest's
mappings over time. The replay rebuilds that address space in a process of
the model and makes the trace's accesses there, in order, so that the whole
model decides what they cost: file pages come through the page cache
(readahead, fault-around), private file pages written are copied (COW),
anonymous pages are allocated on the first store (a load of a page never
written maps the zero page), and reclaim, swap and the OOM killer act as on
Linux.

From mappings to regions (:func:`build_regions`)::

    polls:  rec A  [==========)          file F, r--p     (ld.so's reservation)
            rec B        [=====================)  anon rw-p
    space:  |--- a ---|-- b --|------ c ------|
    region: a: A alone; b: A and B overlap in space -> the one seen last (B);
            c: B alone. Adjacent pieces with the same record merge.

Each elementary interval of the address space (between two boundaries of
any record) goes to the record covering it that was seen last; its
permissions are the union of those of the records of the same object (the
same file at the same place, or anonymous memory) covering it, so that a
store made before an mprotect(PROT_READ) (ld.so's RELRO) is allowed; its
life is the union of the lives of every record covering it, from the poll
before the first sighting to the poll after the last. A region is mapped
(MAP_FIXED) when its life starts and unmapped when it ends (never, when it
lived to the end of the capture).

File mappings map files of the simulated disk of the captured size,
created on demand (on disk, not cached); ``warm`` reads each into the page
cache first, as when the program ran a moment before (the state in which
``/usr/bin/time`` measures it). Anonymous mappings are private anonymous
memory; ``s`` (shared) mappings are shared.

Requests become page accesses: a load (or instruction fetch) or a store of
the page of its address, and of the next page too when the request crosses
a page boundary. Consecutive requests to the same page are one access (and
the first store after loads of that page, a second one): they change
nothing more in the model. An access outside every live region is dropped
and counted (``dropped``); one the region's protection forbids is counted
(``denied``) and skipped.

In a scenario the runner's clock times the replay; ``linmem replay
--kernel`` (:func:`run_captured`) times it on a
:class:`~linmem.workload.replay_clock.ReplayClock`, whose timeline has a
row per simulated second.

Deviations, marked: XXX: a region's pages stay mapped between two mappings
of the same place (munmap then mmap at the same address, between polls, is
seen as one); XXX: the writes the kernel makes into user memory (read(2)
into a buffer, the initial stack, which valgrind writes for the guest) are
not in the trace: a page only the kernel wrote is, on replay, a zero page
when the program then loads from it.
"""

from __future__ import annotations

import time

from dataclasses import dataclass, field

import numpy as np

from linmem.engine.jit import njit
from linmem.engine.memory import ACCESS_WRITE_IN_ADDR
from linmem.errors import InputError
from linmem.mm import vma as V
from linmem.trace import OP_WRITE

PAGE_SHIFT = 12
PAGE = 1 << PAGE_SHIFT
NEVER = np.iinfo(np.int64).max
BLOCK_SHIFT = 21                  # 2 MiB: the blocks of a trace replayed without its maps
USER_TOP = 1 << 47                # TASK_SIZE of x86-64 with 4-level page tables
SEGV = -3


@dataclass
class Region:
    """A piece of the rebuilt address space and its life in request numbers."""

    start: int
    end: int
    prot: int
    shared: bool
    file: str | None
    offset: int
    file_size: int
    map_at: int
    unmap_at: int


def _prot(perms: str) -> int:
    return ((V.PROT_READ if perms[0] == "r" else 0) | (V.PROT_WRITE if perms[1] == "w" else 0)
            | (V.PROT_EXEC if perms[2] == "x" else 0))


def _identity(m: dict):
    """What a record maps: a file at a place (its start minus offset), or anonymous."""
    return (m["file"], m["start"] - m["offset"]) if m["file"] else None


def build_regions(mappings: list[dict]) -> list[Region]:
    """The regions of the captured address space (see the module's docstring)."""
    bounds = sorted({m["start"] for m in mappings} | {m["end"] for m in mappings})
    pieces = []                                   # (start, end, rep index, prot, map, unmap)
    for lo, hi in zip(bounds, bounds[1:]):
        cover = [i for i, m in enumerate(mappings) if m["start"] <= lo and hi <= m["end"]]
        if not cover:
            continue
        rep = max(cover, key=lambda i: (mappings[i]["last"], mappings[i]["first"], i))
        same = [mappings[i] for i in cover if _identity(mappings[i]) == _identity(mappings[rep])]
        prot = 0
        for m in same:
            prot |= _prot(m["perms"])
        map_at = min(m["after"] if m["after"] is not None else 0 for m in (mappings[i] for i in cover))
        unmap_at = max(NEVER if m["gone"] is None else m["gone"] for m in (mappings[i] for i in cover))
        if pieces and pieces[-1][1] == lo and pieces[-1][2:] == (rep, prot, map_at, unmap_at):
            pieces[-1] = (pieces[-1][0], hi, rep, prot, map_at, unmap_at)
        else:
            pieces.append((lo, hi, rep, prot, map_at, unmap_at))
    regions = []
    for lo, hi, rep, prot, map_at, unmap_at in pieces:
        m = mappings[rep]
        size = m["file_size"] if m["file_size"] is not None else m["offset"] + m["end"] - m["start"]
        regions.append(Region(lo, hi, prot, m["perms"][3] == "s", m["file"],
                              m["offset"] + lo - m["start"] if m["file"] else 0, size,
                              map_at, unmap_at))
    return regions


@njit
def page_accesses(addr, op, size, time, write_op, out_va, out_time, out_req):
    """The page accesses of a chunk of requests: page address, bit 0 set for
    a store; a request that crosses a page boundary touches the next page
    too; repeats of the last access (and loads after a store) are dropped.
    Returns the number of accesses written to out_va, out_time (the
    request's time) and out_req (its index in the chunk), which hold
    2 * len(addr)."""
    n = 0
    last_page = -1
    last_write = 0
    for i in range(addr.shape[0]):
        w = 1 if op[i] == write_op else 0
        first = addr[i] >> PAGE_SHIFT
        final = (addr[i] + max(size[i], 1) - 1) >> PAGE_SHIFT
        for p in range(first, min(final, first + 1) + 1):
            if p == last_page and (w == 0 or last_write == 1):
                continue
            if p != last_page:
                last_write = 0
            last_page = p
            last_write |= w
            out_va[n] = (p << PAGE_SHIFT) | w
            out_time[n] = time[i]
            out_req[n] = i
            n += 1
    return n


@dataclass
class AddressReplay:
    """What a replay in the captured address space did."""

    requests: int = 0
    accesses: int = 0
    dropped: int = 0
    denied: int = 0
    regions: int = 0
    mapped: int = 0
    unmapped: int = 0
    delta: int = 0
    killed: bool = False
    peak_rss_kb: int = 0
    counters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "accesses": self.accesses, "dropped": self.dropped,
                "denied": self.denied, "regions": self.regions, "mapped": self.mapped,
                "unmapped": self.unmapped, "relocated_by": self.delta, "killed": self.killed}


class _Space:
    """The live regions of the replaying process."""

    def __init__(self, kernel, task, regions: list[Region], delta: int, warm: bool,
                 auto: bool = False):
        self.kernel, self.task, self.delta, self.warm = kernel, task, delta, warm
        self.auto = auto
        self.live: list[Region] = []
        self.starts = self.ends = np.zeros(0, np.int64)
        events = [(r.map_at, 1, i) for i, r in enumerate(regions)]
        events += [(r.unmap_at, 0, i) for i, r in enumerate(regions) if r.unmap_at != NEVER]
        self.events = sorted(events)          # (time, map?, region): unmaps first at a time
        self.regions = regions
        self.next = 0

    def next_time(self) -> int:
        return self.events[self.next][0] if self.next < len(self.events) else NEVER

    def advance(self, now: int, out: AddressReplay) -> None:
        """Apply every map and unmap due at or before request ``now``."""
        while self.next < len(self.events) and self.events[self.next][0] <= now:
            _, is_map, i = self.events[self.next]
            self.next += 1
            r = self.regions[i]
            if is_map:
                self._map(r)
                self.live.append(r)
                out.mapped += 1
            elif r in self.live:
                self.kernel.munmap(self.task, r.start + self.delta, r.end - r.start)
                self.live.remove(r)
                out.unmapped += 1
        self.live.sort(key=lambda r: r.start)
        self._index()

    def _index(self) -> None:
        self.starts = np.array([r.start + self.delta for r in self.live], dtype=np.int64)
        self.ends = np.array([r.end + self.delta for r in self.live], dtype=np.int64)

    def _map(self, r: Region) -> None:
        k = self.kernel
        flags = (V.MAP_SHARED if r.shared else V.MAP_PRIVATE) | V.MAP_FIXED
        file = None
        if r.file is None:
            flags |= V.MAP_ANONYMOUS
        else:
            file = k.fs.open(self._file(r))
        k.mmap(self.task, r.end - r.start, r.prot, flags, file=file, offset=r.offset,
               addr=r.start + self.delta)

    def _file(self, r: Region) -> str:
        """The simulated file of a region, created (and read, when warm) on first use."""
        fs = self.kernel.fs
        size = max(r.file_size, 1)
        inode = fs.inodes.get(r.file)
        if inode is None:
            fs.create(r.file, size, boot=True)
            if self.warm:
                self.kernel.read_file(self.task, r.file)
        return r.file

    def map_blocks(self, vas: np.ndarray, out: AddressReplay) -> None:
        """Map private anonymous memory over the 2 MiB blocks of ``vas`` (a
        trace with no capture)."""
        for block in np.unique((vas & ~np.int64(1)) >> BLOCK_SHIFT):
            lo, hi = int(block) << BLOCK_SHIFT, (int(block) + 1) << BLOCK_SHIFT
            if lo <= 0 or hi > USER_TOP or \
                    self.task.mm.vmas.find_vma_intersection(lo, hi) is not None:
                continue                  # the process's own mappings are not replaced
            r = Region(lo, hi, V.PROT_READ | V.PROT_WRITE, False, None, 0, 0, 0, NEVER)
            self._map(r)
            self.live.append(r)
            out.mapped += 1
        self.live.sort(key=lambda r: r.start)
        self._index()

    def inside(self, vas: np.ndarray) -> np.ndarray:
        """Which page addresses (bit 0: the store flag) fall in a live region."""
        pages = vas & ~np.int64(1)
        idx = np.searchsorted(self.starts, pages, side="right") - 1
        ok = idx >= 0
        ok[ok] = pages[ok] < self.ends[idx[ok]]
        return ok


def relocation(task, regions: list[Region]) -> int:
    """0 when the captured places are free in ``task``; otherwise the
    smallest shift (a multiple of 1 GiB) that moves all of them, together,
    to free places below the top of the user address space."""
    vmas = task.mm.vmas

    def free(delta: int) -> bool:
        return all(vmas.find_vma_intersection(r.start + delta, r.end + delta) is None
                   for r in regions)
    if not regions or free(0):
        return 0
    lo = min(r.start for r in regions)
    hi = max(r.end for r in regions)
    step = 1 << 30
    for base in range(1 << 40, (1 << 47) - (hi - lo), step << 6):
        delta = base - lo
        if free(delta):
            return delta
    raise InputError("replay", "no room in the address space for the captured mappings")


class CapturedReplay:
    """A replay in progress: ``step()`` replays the next chunk of the trace.

    Without ``mappings`` (a trace with no capture) the trace's pages are
    private anonymous memory at their own addresses, mapped in 2 MiB blocks
    as the trace first reaches them. ``access(vas, reqs)`` makes the page
    accesses (default: Kernel.access; a ReplayClock's times them), ``reqs``
    the number of requests done once each access is made.
    """

    def __init__(self, kernel, task, chunks, mappings: list[dict] | None, warm: bool = True,
                 access=None):
        regions = build_regions(mappings or [])
        self.kernel, self.task, self.chunks = kernel, task, iter(chunks)
        self.access = access or (lambda vas, reqs: kernel.access(task, vas,
                                                                 ACCESS_WRITE_IN_ADDR))
        self.out = AddressReplay(regions=len(regions))
        self.out.delta = relocation(task, regions)
        self.space = _Space(kernel, task, regions, self.out.delta, warm,
                            auto=mappings is None)
        self.space.advance(0, self.out)

    def step(self) -> bool:
        """Replay the next chunk; False when the trace has ended (or the
        OOM killer chose the task: ``out.killed``)."""
        from linmem.mm.memory import OutOfMemory
        chunk = next(self.chunks, None)
        if chunk is None:
            return False
        try:
            _replay_chunk(self.access, self.space, chunk, self.out)
        except OutOfMemory:
            self.out.killed = True
            return False
        return True


def replay_captured(kernel, task, chunks, mappings: list[dict] | None, warm: bool = True,
                    on_chunk=None, access=None) -> AddressReplay:
    """Run the requests of ``chunks`` in ``task``, in the address space the
    captured ``mappings`` describe (see :class:`CapturedReplay`)."""
    run = CapturedReplay(kernel, task, chunks, mappings, warm, access)
    while run.step():
        if on_chunk is not None:
            on_chunk(run.out)
    return run.out


def _replay_chunk(access, space: _Space, chunk, out: AddressReplay) -> None:
    n = len(chunk)
    va, times, reqs = (np.empty(2 * n, np.int64) for _ in range(3))
    m = page_accesses(chunk.addr.astype(np.int64, copy=False), chunk.op, chunk.size,
                      chunk.time.astype(np.int64, copy=False), OP_WRITE, va, times, reqs)
    va, times, reqs = va[:m], times[:m], reqs[:m] + (out.requests + 1)
    out.requests += n
    done = 0
    while done < m:
        space.advance(int(times[done]), out)
        upto = done + int(np.searchsorted(times[done:], space.next_time(), side="left"))
        _access(access, space, va[done:upto], reqs[done:upto], out)
        done = upto


def _access(access, space: _Space, vas: np.ndarray, reqs: np.ndarray,
            out: AddressReplay) -> None:
    ok = space.inside(vas)
    if space.auto and not ok.all():
        space.map_blocks(vas[~ok], out)
        ok = space.inside(vas)
    out.dropped += int(len(vas) - ok.sum())
    vas, reqs = vas[ok] + np.int64(space.delta), reqs[ok]
    while len(vas):
        status, where = access(vas, reqs)
        if status != SEGV:
            out.accesses += len(vas)
            return
        out.accesses += where
        out.denied += 1
        vas, reqs = vas[where + 1:], reqs[where + 1:]


def run_captured(trace: str, fmt: str, maps: str, ram: int, swap: int, lru: str,
                 warm: bool = True) -> dict:
    """Replay a captured trace in its address space on a new machine; the results."""
    from linmem.kernel.machine import Machine
    from linmem.mm.vmstat import vm_event
    from linmem.procfs.pid import mm_counters
    from linmem.trace import open_trace
    from linmem.workload.capture import load_maps
    from linmem.workload.replay_clock import ReplayClock

    doc = load_maps(maps)
    machine = Machine(ram=ram, lru=lru)
    k = machine.kernel
    if swap:
        k.swap.swapon("/swapfile", swap, None, "file")
    task = k.spawn("/usr/bin/cat", ["replay"])
    clock = ReplayClock(k, task)
    start = time.perf_counter()
    r = replay_captured(k, task, open_trace(trace, fmt), doc["mappings"], warm=warm,
                        access=clock.access)
    clock.finish(r.requests)
    seconds = time.perf_counter() - start
    ev = k.mem.K.events
    counts = {name: int(ev[vm_event(name)]) for name in ("pswpin", "pswpout", "oom_kill")}
    out = {"trace": trace, "maps": maps, **r.as_dict()}
    if task.mm is not None:
        c = mm_counters(k, task)
        minor, major = k.mem.faults(task.pid)
        out.update({"peak_rss_kb": c["hiwater_rss"] * 4, "rss_kb": c["rss"] * 4,
                    "rss_anon_kb": c["anon"] * 4, "rss_file_kb": c["file"] * 4,
                    "minor_faults": minor, "major_faults": major})
    out.update(counts)
    out["simulated_seconds"] = round(clock.seconds, 9)
    out["seconds"] = round(seconds, 3)
    out["timeline"] = clock.timeline
    return out
