"""Replaying a trace through the whole kernel model (``linmem replay --kernel``).

A trace's requests become memory accesses of one process on a machine of
the user's choice (RAM, swap, classic or multi-gen LRU): each distinct page
of the trace (``addr >> 12``, or, for a chunk whose ``objects`` is set, an
object id: one page per object) is
given its own page of an anonymous mapping, in the order pages first
appear, so the process touches exactly as many pages as the trace names.
Loads and stores keep their kind (a store dirties the page; a load of a
page never written maps the shared zero page, as on Linux), and the whole
model runs: page faults, the LRU lists, kswapd and direct reclaim,
swap-out and swap-in with readahead, the OOM killer. ``--all-writes``
makes every request a store, so that each page is really allocated (what
a cache trace means).

The anonymous memory is mapped in 256 MiB pieces as the trace reaches new
pages. Keys become page numbers by trace mode's id map
(:mod:`linmem.cachesim.idmap`: 10.7 to 24 bytes a key). Time: the trace's own clock is not used; the replay runs on
the simulated clock of :mod:`linmem.workload.replay_clock` (5 ns an access,
0.5 us a minor fault, 80 us a major one), whose timeline has a row per
simulated second.

Results: requests, minor and major faults, pswpin, pswpout, pages
reclaimed, OOM kills, the simulated seconds, the wall-clock seconds and
requests per second, and the timeline.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np

from linmem.cachesim.idmap import IdMap
from linmem.engine.jit import njit
from linmem.mm import vma as V
from linmem.mm.vmstat import vm_event
from linmem.trace import OP_WRITE
from linmem.workload.replay_clock import ReplayClock

PAGE_SHIFT = 12
PIECE_SHIFT = 16                     # 65536 pages (256 MiB) per anonymous mapping
PIECE_PAGES = 1 << PIECE_SHIFT
COUNTERS = ("pgfault", "pgmajfault", "pswpin", "pswpout", "pgsteal_kswapd",
            "pgsteal_direct", "pgscan_kswapd", "pgscan_direct", "oom_kill")


@njit
def page_addresses(ids, writes, bases, out):
    """The address of each page id in its piece, bit 0 set for a store."""
    for i in range(ids.shape[0]):
        p = ids[i]
        out[i] = bases[p >> PIECE_SHIFT] + ((p & (PIECE_PAGES - 1)) << PAGE_SHIFT) | writes[i]


@dataclass
class KernelReplay:
    """What a kernel-mode replay did."""

    requests: int = 0
    pages: int = 0
    seconds: float = 0.0
    simulated: float = 0.0
    counters: dict = field(default_factory=dict)
    timeline: list = field(default_factory=list)
    killed: bool = False

    def as_dict(self) -> dict:
        c = self.counters
        return {"requests": self.requests, "pages": self.pages,
                "minor_faults": c["pgfault"] - c["pgmajfault"], "major_faults": c["pgmajfault"],
                "pswpin": c["pswpin"], "pswpout": c["pswpout"],
                "reclaimed": c["pgsteal_kswapd"] + c["pgsteal_direct"],
                "scanned": c["pgscan_kswapd"] + c["pgscan_direct"], "oom_kill": c["oom_kill"],
                "killed": self.killed, "simulated_seconds": round(self.simulated, 9),
                "seconds": round(self.seconds, 6),
                "requests_per_second": round(self.requests / self.seconds, 1)
                if self.seconds > 0 else 0.0, "timeline": self.timeline}


def replay_kernel(chunks, ram: int, swap: int = 0, lru: str = "classic",
                  object_trace: bool = False, all_writes: bool = False) -> KernelReplay:
    """Run the requests of ``chunks`` (linmem.trace.Chunk) as one process's
    accesses on a machine with ``ram`` bytes (and a ``swap``-byte swapfile).
    ``object_trace`` takes every ``addr`` as an object id, as a chunk's
    ``objects`` flag does for that chunk."""
    from linmem.kernel.machine import Machine
    from linmem.mm.memory import OutOfMemory
    machine = Machine(ram=ram, lru=lru)
    k = machine.kernel
    if swap:
        k.swap.swapon("/swapfile", swap, None, "file")
    task = k.spawn("/usr/bin/cat", ["replay"])
    idmap = IdMap()
    bases = np.zeros(0, dtype=np.int64)
    out = KernelReplay()
    clock = ReplayClock(k, task)
    start = _time.perf_counter()
    try:
        for chunk in chunks:
            objects = object_trace or chunk.objects
            keys = chunk.addr if objects else chunk.addr >> PAGE_SHIFT
            ids = idmap.ids(keys)
            while len(bases) << PIECE_SHIFT < len(idmap):  # map the pages first reached
                addr = k.mmap(task, PIECE_PAGES << PAGE_SHIFT, V.PROT_READ | V.PROT_WRITE,
                              V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_NORESERVE)
                bases = np.append(bases, np.int64(addr))
            writes = np.ones(len(ids), dtype=np.int64) if all_writes else \
                (chunk.op == OP_WRITE).astype(np.int64)
            vas = np.empty(len(ids), dtype=np.int64)
            page_addresses(ids, writes, bases, vas)
            clock.access(vas)
    except OutOfMemory:
        out.killed = True
    clock.finish()
    out.seconds = _time.perf_counter() - start
    out.requests, out.simulated, out.timeline = clock.requests, clock.seconds, clock.timeline
    out.pages = len(idmap)
    ev = k.mem.K.events
    out.counters = {name: int(ev[vm_event(name)]) for name in COUNTERS}
    return out
