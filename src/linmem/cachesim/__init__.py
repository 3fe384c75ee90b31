"""Trace-mode cache simulation: replacement policies replayed on a trace.

A trace is a sequence of keys: page numbers (``addr >> 12``) for traces of
byte addresses, object ids for traces of objects (a chunk's ``objects``
says which). A policy decides, for a cache of ``frames`` pages, which page
to evict on a miss; replaying a trace counts its hits and misses. Every
policy is one module of this package with the same two functions, as
every libCacheSim policy fills in the same ``cache_t`` operations::

    new_state(frames) -> tuple of numpy arrays     the empty cache
    replay(keys, state) -> hits                    a compiled kernel

``replay`` takes an int64 array of keys (one chunk of the trace), updates
``state`` in place and returns how many of the keys were hits; the driver
(:func:`replay_trace`) feeds it chunk after chunk, so a trace of any length
streams through in a few megabytes, and counts. A module may also define
``MIN_FRAMES`` (default 1) and ``WHOLE_TRACE = True`` (the kernel needs
the whole trace at once, as OPT does to see the future).

Keys become *slots* through the table of :mod:`linmem.cachesim.hashtable`
(open addressing, only the keys the policy tracks), and the policies keep
their lists in arrays indexed by slot (:mod:`linmem.cachesim.dlist`); a
policy's module docstring names its paper, what it was cross-checked
against and how the paper's ambiguities were resolved. Adding a policy:
write ``mypolicy.py`` with the two functions, add its name to
:data:`POLICIES`; docs/trace-mode.md walks through an example.

Miss-ratio curves over all cache sizes at once are :mod:`linmem.cachesim.mrc`.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

import numpy as np

# policy name -> module of this package
POLICIES: dict[str, str] = {
    "lru": "lru", "fifo": "fifo", "clock": "clock", "arc": "arc", "2q": "twoq",
    "lirs": "lirs", "opt": "opt",
}
CHUNK = 1 << 16          # requests read at a time: small enough to stay in the caches


@dataclass
class Result:
    """The outcome of one replay. ``seconds`` counts reading the trace and
    replaying it, not compiling the kernels."""

    requests: int
    hits: int
    seconds: float

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
        return {"requests": self.requests, "hits": self.hits, "misses": self.misses,
                "miss_ratio": self.miss_ratio, "seconds": self.seconds,
                "requests_per_second": self.requests_per_second}


def policy_module(name: str) -> ModuleType:
    """The module of policy ``name``; ValueError naming the policies if none."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r} (policies: {', '.join(POLICIES)})")
    return importlib.import_module(f"{__name__}.{POLICIES[name]}")


def trace_keys(path: str, fmt: str, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The keys of the trace, a chunk at a time: page numbers of byte
    addresses, or object ids as they are."""
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

    @property
    def nbytes(self) -> int:
        """The memory of the state: what the cache costs beyond the trace."""
        return sum(a.nbytes for a in self.state)

    def replay(self, keys: np.ndarray) -> int:
        """Replay ``keys`` (int64); the hits. A WHOLE_TRACE policy wants the
        whole trace in one call and may overwrite it."""
        return int(self.module.replay(keys, self.state))


def compile_policy(name: str) -> None:
    """Compile (or load from numba's cache) the kernels of policy ``name``."""
    module = policy_module(name)
    frames = getattr(module, "MIN_FRAMES", 1)
    Cache(name, frames).replay(np.arange(4, dtype=np.int64))


def replay_trace(path: str, fmt: str, name: str, frames: int, chunk: int = CHUNK) -> Result:
    """Replay the trace at ``path`` (format ``fmt``) on a cache of ``frames``
    pages under policy ``name``. Raises InputError for a bad trace,
    ValueError for a policy that cannot have so few frames."""
    cache = Cache(name, frames)
    compile_policy(name)
    start = time.perf_counter()
    requests = hits = 0
    if cache.whole_trace:
        keys = np.concatenate(list(trace_keys(path, fmt, chunk)))
        requests, hits = len(keys), cache.replay(keys)
    else:
        for keys in trace_keys(path, fmt, chunk):
            requests += len(keys)
            hits += cache.replay(keys)
    return Result(requests, hits, time.perf_counter() - start)
