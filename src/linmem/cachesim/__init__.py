"""Trace-mode cache simulation: replacement policies replayed on a trace.

A trace is a sequence of keys: page numbers (``addr >> 12``) for traces of
byte addresses, object ids for traces of objects (a chunk's ``objects``
says which). A policy decides, for a cache of ``frames`` pages, which page
to evict on a miss; replaying a trace counts its hits and misses.

The driver first numbers the keys (:mod:`linmem.cachesim.idmap`): each
distinct key gets an id, 0, 1, 2... in order of first use, so a policy
keeps its per-page state in plain arrays indexed by id, without a table of
its own. Every policy is one module of this package with the same two
functions, as every libCacheSim policy fills in the same ``cache_t``
operations, and one table::

    new_state(frames) -> tuple of numpy arrays     the empty cache
    replay(ids, state) -> hits                     a compiled kernel
    PER_KEY = {index: (fill, width), ...}          which arrays of the state
                                                   have ``width`` elements per id

``replay`` takes an int32 array of ids (one chunk of the trace), updates
``state`` in place and returns how many of them were hits; the driver
(:class:`Cache`, :func:`replay_trace`) feeds it chunk after chunk, so a
trace of any length streams through, and grows the ``PER_KEY`` arrays
(new elements set to ``fill``) before a chunk brings ids beyond their
length. A module may also define ``MIN_FRAMES`` (default 1) and
``WHOLE_TRACE = True`` (the kernel wants the whole trace's keys at once,
as OPT does to see the future; it gets keys, not ids, and reports its
distinct keys and memory by ``usage(state)``). A policy's module
docstring names its paper, what it was cross-checked against and how the
paper's ambiguities were resolved. Adding a policy: write
``mypolicy.py`` with the two functions and the table, add its name to
:data:`POLICIES`; docs/trace-mode.md walks through an example.

Memory: the ids cost 10.7 to 16 bytes per distinct key (the id map; 16 to
24 once a key does not fit in 32 bits), the policies 1 to 17 bytes per
distinct key (their arrays grow by an eighth at a time) and some per
frame: the state follows the trace's distinct pages, not only the cache's.

Miss-ratio curves over all cache sizes at once are :mod:`linmem.cachesim.mrc`.
"""

from __future__ import annotations

import importlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

import numpy as np

# policy name -> module of this package
POLICIES: dict[str, str] = {
    "lru": "lru", "fifo": "fifo", "clock": "clock", "arc": "arc", "2q": "twoq",
    "lirs": "lirs", "opt": "opt",
}
CHUNK = 1 << 18          # requests read at a time (2 MiB of keys): the fewer chunks, the fewer
                         # switches between the id map and the policy state, which the caches
                         # do not hold together (LRU, 10 M requests: 0.39 s, 0.45 s with 1 << 16)


@dataclass
class Result:
    """The outcome of one replay. ``seconds`` counts reading the trace and
    replaying it, not compiling the kernels."""

    requests: int
    hits: int
    seconds: float
    distinct: int = 0            # distinct keys (pages) of the trace
    state_bytes: int = 0         # the memory of the policy's state and the id map

    @property
    def misses(self) -> int:
        return self.requests - self.hits

    @property
    def miss_ratio(self) -> float:
        return self.misses / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        """The six keys of every replay; then, when known, the distinct pages and the
        bytes of state."""
        out = {"requests": self.requests, "hits": self.hits, "misses": self.misses,
               "miss_ratio": self.miss_ratio, "seconds": self.seconds,
               "requests_per_second": self.requests_per_second}
        if self.distinct:
            out.update(distinct_pages=self.distinct, state_bytes=self.state_bytes)
        return out


def policy_module(name: str) -> ModuleType:
    """The module of policy ``name``; ValueError naming the policies if none."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r} (policies: {', '.join(POLICIES)})")
    return importlib.import_module(f"{__name__}.{POLICIES[name]}")


def trace_keys(path: str, fmt: str, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The keys of the trace, a chunk at a time: page numbers of byte
    addresses, or object ids as they are. oracleGeneral traces are read by
    their own key reader (only the obj_id column)."""
    if fmt == "oracleGeneral":
        from linmem.trace.oracle_general import read_oracle_general_keys
        yield from read_oracle_general_keys(path, chunk)
        return
    from linmem.trace import open_trace
    for c in open_trace(path, fmt, chunk):
        yield c.addr if c.objects else c.addr >> 12


class Cache:
    """A cache of ``frames`` pages under policy ``name``, fed chunk by chunk."""

    def __init__(self, name: str, frames: int):
        self.module = policy_module(name)
        minimum = getattr(self.module, "MIN_FRAMES", 1)
        if frames < minimum:
            raise ValueError(f"{name} needs at least {minimum} frame"
                             f"{'s' if minimum > 1 else ''}, got {frames}")
        self.name, self.frames = name, frames
        self.state = self.module.new_state(frames)
        self.whole_trace = getattr(self.module, "WHOLE_TRACE", False)
        self.per_key = getattr(self.module, "PER_KEY", {})
        if self.whole_trace:
            self.idmap = None
        else:
            from linmem.cachesim.idmap import IdMap        # compiled: loads numba
            self.idmap = IdMap()

    @property
    def nbytes(self) -> int:
        """The memory of the state and the id map: what the cache costs
        beyond the trace."""
        return sum(a.nbytes for a in self.state) + (self.idmap.nbytes if self.idmap else 0)

    @property
    def keys(self) -> int:
        """The distinct keys seen so far."""
        return len(self.idmap) if self.idmap else 0

    def replay(self, keys: np.ndarray) -> int:
        """Replay ``keys`` (int64); the hits. A WHOLE_TRACE policy wants the
        whole trace in one call and may overwrite it."""
        if self.whole_trace:
            return int(self.module.replay(keys, self.state))
        ids = self.idmap.ids(keys)
        return self.replay_ids(ids, len(self.idmap))

    def replay_ids(self, ids: np.ndarray, nids: int) -> int:
        """Replay ``ids``, numbered by this cache's id map, which then held
        ``nids`` ids; the hits."""
        self._fit(nids)
        return int(self.module.replay(ids, self.state))

    def _fit(self, nids: int) -> None:
        """Grow the per-key arrays of the state to ``nids`` ids or more, by
        an eighth at a time: in place (``ndarray.resize``: realloc, which
        moves the pages of a large array instead of copying them)."""
        for index, (fill, width) in self.per_key.items():
            array = self.state[index]
            old = len(array)
            if old < nids * width:
                array.resize(max(nids, old // width * 9 // 8) * width, refcheck=False)
                array[old:] = fill


def compile_policy(name: str) -> None:
    """Compile (or load from numba's cache) the kernels of policy ``name``."""
    module = policy_module(name)
    frames = getattr(module, "MIN_FRAMES", 1)
    Cache(name, frames).replay(np.arange(4, dtype=np.int64))


def replay_trace(path: str, fmt: str, name: str, frames: int, chunk: int = CHUNK,
                 threads: int | None = None) -> Result:
    """Replay the trace at ``path`` (format ``fmt``) on a cache of ``frames``
    pages under policy ``name``. Raises InputError for a bad trace,
    ValueError for a policy that cannot have so few frames.

    With ``threads`` 2 (the default when the machine has two CPUs or more)
    the replay is a pipeline of two threads: one numbers the next chunk
    while the other reads the chunk after it and runs the policy on this
    one (compiled code and numpy copies, which release the GIL); the result
    is the same as with 1."""
    cache = Cache(name, frames)
    compile_policy(name)
    if threads is None:
        threads = 2 if (os.cpu_count() or 1) > 1 else 1
    start = time.perf_counter()
    requests = hits = 0
    if cache.whole_trace:
        keys = np.concatenate(list(trace_keys(path, fmt, chunk)))
        requests, hits = len(keys), cache.replay(keys)
        distinct, nbytes = cache.module.usage(cache.state)
    else:
        for ids, nids in _numbered(trace_keys(path, fmt, chunk), cache.idmap, threads > 1):
            requests += len(ids)
            hits += cache.replay_ids(ids, nids)
        distinct, nbytes = cache.keys, cache.nbytes
    return Result(requests, hits, time.perf_counter() - start, distinct, nbytes)


def _numbered(chunks: Iterator[np.ndarray], idmap, pipelined: bool) -> Iterator[tuple]:
    """(ids, ids numbered so far) of each chunk of keys. When ``pipelined``,
    a second thread numbers the next chunk while this one reads the chunk
    after it and then runs the policy on this one: reading and the policy
    together take about as long as numbering, so the two threads are evenly
    loaded."""
    def number(keys):
        return idmap.ids(keys), len(idmap)

    if not pipelined:
        for keys in chunks:
            yield number(keys)
        return
    keys = next(chunks, None)
    if keys is None:
        return
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(number, keys)
        while ahead is not None:
            keys = next(chunks, None)
            item = ahead.result()
            ahead = None if keys is None else pool.submit(number, keys)
            yield item
