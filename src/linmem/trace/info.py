"""What a trace holds, in one streamed pass: ``linmem trace info``.

:func:`trace_info` counts the requests by op and by pid, the distinct
addresses (objects, for object traces such as oracleGeneral's) and the
distinct pages: the 4 KiB pages they fall in for byte-address traces such as
lackey's, one per object for object traces (the keys of trace mode and of
``replay --kernel``),
the span of the requests' times, and whether ``addr`` holds object ids or
byte addresses (the chunks' ``objects`` flag). Memory grows with the number
of distinct pages, never with the length of the trace.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from linmem.trace import OP_IFETCH, OP_READ, OP_WRITE, Chunk

PAGE_SHIFT = 12


class DistinctCounter:
    """The number of distinct int64 values seen, chunk after chunk.

    Each chunk's unique values wait in a list; they are merged into one
    sorted array when the list outgrows it, so every value is merged a
    logarithmic number of times.
    """

    def __init__(self):
        self.seen = np.empty(0, dtype=np.int64)
        self.pending: list[np.ndarray] = []
        self.pending_len = 0

    def add(self, values: np.ndarray) -> None:
        values = np.unique(values)
        self.pending.append(values)
        self.pending_len += len(values)
        if self.pending_len > max(len(self.seen), 1 << 20):
            self._merge()

    def _merge(self) -> None:
        self.seen = np.unique(np.concatenate([self.seen, *self.pending]))
        self.pending, self.pending_len = [], 0

    def __len__(self) -> int:
        self._merge()
        return len(self.seen)


def trace_info(chunks: Iterable[Chunk]) -> dict:
    """Counts of the requests of ``chunks`` (a JSON-ready dict)."""
    ops = np.zeros(3, dtype=np.int64)
    pids: dict[int, int] = {}
    addrs, pages = DistinctCounter(), DistinctCounter()
    first = last = None
    nbytes, objects = 0, False
    for c in chunks:
        objects |= bool(c.objects)
        if not len(c):
            continue
        ops += np.bincount(c.op, minlength=3)[:3]
        for pid, count in zip(*np.unique(c.pid, return_counts=True)):
            pids[int(pid)] = pids.get(int(pid), 0) + int(count)
        addrs.add(c.addr)
        pages.add(c.addr if c.objects else c.addr >> PAGE_SHIFT)
        lo, hi = int(c.time.min()), int(c.time.max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
        nbytes += int(c.size.sum(dtype=np.int64))
    return {
        "requests": int(ops.sum()),
        "objects": objects,
        "reads": int(ops[OP_READ]),
        "writes": int(ops[OP_WRITE]),
        "ifetches": int(ops[OP_IFETCH]),
        "bytes": nbytes,
        "distinct_addresses": len(addrs),
        "distinct_pages": len(pages),
        "pids": {str(pid): pids[pid] for pid in sorted(pids)},
        "time": {"first": first, "last": last,
                 "span": None if first is None else last - first},
    }
