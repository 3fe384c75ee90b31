"""The simulated clock of ``linmem replay --kernel`` and its timeline, a row a second.

A replay is timed as the scenario runner times its ``replay`` step
(:mod:`linmem.workload.steps`): a page access takes ``T_ACCESS`` (5 ns), a
minor fault ``T_MINOR`` (0.5 us) more, a major fault ``T_MAJOR`` (80 us)
more. The clock counts whole nanoseconds, which the three costs are, so no
rounding builds up over billions of accesses. The machine's clock follows
it, and the kernel's timers (the flusher, I/O completions) fire on the way,
as between a scenario's steps.

The timeline has one row per simulated second since the replay began: the
requests made in it, the minor and major faults, pswpin, pswpout and the
pages reclaimed (pgsteal, kswapd's and direct) in it, and MemFree when it
ends. An access belongs to the second in which it starts, with its fault;
the last row is the part of a second the replay ran::

    clock     0.99999 s                1 s
    accesses  .. h h h [minor] h h [   major fault: 80 us   ] h h ..
                                    ^ starts before 1 s: row 0, fault and all;
                                      row 0's counters are read when it ends

The rows are exact, although the compiled loop makes a whole array of
accesses at a time: the accesses go to the kernel in pieces that can start
no access past the next second. A piece of n accesses that stops before
its (F+1)-th fault (``max_faults`` of ``Kernel.access``) starts its last
access at most (n-1) T_ACCESS + F T_MAJOR after its first, so with B ns
left in the second a piece takes F = B/2 / T_MAJOR faults and n =
(B - 1 - F T_MAJOR) / T_ACCESS + 1 accesses. Within 160 us of the second F
is 0: a piece makes the hits up to the next fault, and the faulting access
then goes alone. A piece is at most MAX_PIECE accesses, as a call's own
work (finding the VMAs its stores fall in) grows with its length. A second
of major faults takes a few dozen pieces, one of minor faults (2 M) about
2 700, one of hits (200 M) about 3 000; a call costs about 25 us, so the
replay runs as fast as it would in whole chunks.

Deviations: XXX: the time model is the runner's ``replay`` step's, with no
disk queue and no zram time. XXX: a request of a capture that adds no page
access of its own (a repeat of the page just accessed, or outside every
mapping) counts in the row of the next access made.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.memory import ACCESS_WRITE_IN_ADDR
from linmem.engine.pgtable import OK, SEGV
from linmem.mm.vmstat import vm_event
from linmem.workload.steps import T_ACCESS, T_MAJOR, T_MINOR

ACCESS_NS, MINOR_NS, MAJOR_NS = (round(t * 1e9) for t in (T_ACCESS, T_MINOR, T_MAJOR))
SECOND_NS = 1_000_000_000
MAX_PIECE = 1 << 16          # accesses handed to the kernel at a time, at most
# The vm events a row counts; the clock charges for the first two.
EVENTS = ("pgfault", "pgmajfault", "pswpin", "pswpout", "pgsteal_kswapd", "pgsteal_direct")


class ReplayClock:
    """The clock of one task's replay: ``access`` makes accesses as
    ``Kernel.access`` does and times them; ``finish`` closes the timeline."""

    def __init__(self, kernel, task, row_ns: int = SECOND_NS):
        self.kernel, self.task, self.machine = kernel, task, kernel.machine
        self.row_ns = row_ns                    # the time a row covers: a second
        self.origin = self.machine.clock
        self.index = np.array([vm_event(name) for name in EVENTS])
        self.now = 0                            # ns since the replay began
        self.requests = 0                       # requests whose accesses are made
        self.seen = self._events()              # the events the clock has charged for
        self.row_start = (self.seen, 0)         # the events and requests at the row's start
        self.timeline: list[dict] = []

    @property
    def seconds(self) -> float:
        """Simulated seconds since the replay began."""
        return self.now / SECOND_NS

    def _events(self) -> np.ndarray:
        return self.kernel.mem.K.events[self.index].astype(np.int64)

    def access(self, vas: np.ndarray, reqs: np.ndarray | None = None) -> tuple[int, int]:
        """Make the accesses ``vas`` (page addresses, bit 0 set for a store);
        (status, index reached) as Kernel.access. ``reqs[j]`` is the number
        of requests done once access j is made (default: a request an access)."""
        done = 0
        while done < len(vas):
            n, faults = self._piece(len(vas) - done)
            status, k = self.kernel.access(self.task, vas[done:done + n], ACCESS_WRITE_IN_ADDR,
                                           max_faults=faults)
            if k == 0 and status != SEGV:       # F was 0 and the first access faults
                status, k = self.kernel.access(self.task, vas[done:done + 1],
                                               ACCESS_WRITE_IN_ADDR)
            if k:
                self.requests = (self.requests + k) if reqs is None else int(reqs[done + k - 1])
            done += k
            self._charge(k)
            if status == SEGV:
                return status, done
        return OK, done

    def _piece(self, left: int) -> tuple[int, int]:
        """(accesses, faults) of a piece that starts no access past the second."""
        budget = self._next_row() - self.now
        faults = budget // 2 // MAJOR_NS
        n = (budget - 1 - faults * MAJOR_NS) // ACCESS_NS + 1
        return min(n, left, MAX_PIECE), faults

    def _next_row(self) -> int:
        return (len(self.timeline) + 1) * self.row_ns

    def _charge(self, accesses: int) -> None:
        """Move the clock over ``accesses`` and the faults taken since the
        last charge; close the rows of the seconds it passes."""
        now = self._events()
        faults, major = (now[:2] - self.seen[:2]).tolist()          # pgfault, pgmajfault
        minor = faults - major
        self.seen = now
        self.now += accesses * ACCESS_NS + minor * MINOR_NS + major * MAJOR_NS
        until = self.origin + self.now / SECOND_NS
        self.machine.advance(max(0.0, until - self.machine.clock))
        while self.now >= self._next_row():
            self._close_row()

    def _close_row(self) -> None:
        events, requests = self.row_start
        now = self._events()
        d = dict(zip(EVENTS, (now - events).tolist()))
        self.timeline.append({
            "second": len(self.timeline), "requests": self.requests - requests,
            "minor_faults": d["pgfault"] - d["pgmajfault"], "major_faults": d["pgmajfault"],
            "pswpin": d["pswpin"], "pswpout": d["pswpout"],
            "reclaimed": d["pgsteal_kswapd"] + d["pgsteal_direct"],
            "free_kb": self.machine.page_alloc.nr_free_pages() * 4})
        self.row_start = (now, self.requests)

    def finish(self, requests: int | None = None) -> None:
        """Charge what the last accesses did (all of it, when the OOM killer
        cut them short) and close the last, partial row; ``requests``: the
        replay's count, when some made no access."""
        self._charge(0)
        if requests is not None:
            self.requests = requests
        events, before = self.row_start
        if self.now > len(self.timeline) * self.row_ns or before != self.requests or \
                (self._events() != events).any():
            self._close_row()
