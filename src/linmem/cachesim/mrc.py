"""Miss-ratio curves: the miss ratio of a policy at every cache size.

LRU in one pass (Mattson et al., "Evaluation techniques for storage
hierarchies", 1970). LRU has the *inclusion property*: a cache of c pages
holds the c most recently used pages, so a request hits at every size at
least its *stack distance* d, the number of distinct pages used since the
last use of its page, itself included (d = 1: the page just used). One pass
that finds every request's d gives the misses at every size at once:

    misses(c) = cold + #{requests with d > c}     (cold: first uses)

Finding d: each page keeps the *time* of its last use; the pages used since
time s are the ones whose last use is in [s, now), counted on a bitmap of
times holding a 1 at every page's last-use time::

    time:   0  1  2  3  4  5  6  7      now = 8, a request for B
    used:   A  B  C  B  D  A  C  E      last uses: B 3, D 4, A 5, C 6, E 7
    ones:   .  .  .  1  1  1  1  1      d(B) = ones in [3, 8) = 5 (B D A C E)

then B's bit moves from 3 to 8. The bitmap keeps the count of its ones per
512 bits, per 32768 and per 2**21, so the count over [s, now) reads the
rest of s's 64-bit word (POPCNT), of its 512-bit block, of its 32768-bit
block, then whole counts up to now's: at most 8 words and 63 + 63 counts
next to s, all in a few cache lines, and a few where now - s is small,
which is most requests of a skewed trace. (A Fenwick tree costs 3 log2 T
scattered reads per request: slower here.) Moving a bit updates four
words. When the times reach the bitmap's end they are renumbered 0..U-1 in
order (a time's new number is the ones before it), into a bitmap twice
the live pages if they fill more than half.

Memory per distinct key: its id (:class:`IdMap`, 10.7-16 bytes; 16-24 for
keys wider than 32 bits), its last-use time (4), the histogram of
distances (8), and the bitmap (at most T / 8 bytes for T < 4U times): 26
bytes measured on the benchmark's traces.

SHARDS (Waldspurger et al., FAST 2015) for huge traces: only the keys whose
hash falls below RATE x 2**24 are kept (spatial sampling: a key is in or
out for the whole trace), their stack distances are scaled by 1 / RATE, and
the misses are divided by the *expected* number of sampled requests
(N x RATE) rather than the number actually sampled (the paper's SHARDS_adj,
which counts the difference as hits of small distance, where the hottest
keys, whose sampling moves N_s most, reuse). The curve starts at 1 / RATE
frames (one sampled frame); it is accurate from about 100 sampled frames,
100 / RATE frames, up (within 0.02 of the exact curve on a Zipf trace in
tests/test_cachesim.py), and noisier below, where a few hot keys decide.

Other policies have no inclusion property: :func:`multi_size` replays them
at sizes spread log-uniformly up to the number of distinct keys, in
parallel processes.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context

import numpy as np

from linmem.cachesim import CHUNK, compile_policy, replay_trace, trace_keys
from linmem.cachesim.idmap import IdMap
from linmem.cachesim.intrinsics import popcount, prefetch
from linmem.engine.jit import hot, inline, njit

SHARDS_MODULUS = 1 << 24


@dataclass
class Curve:
    """Misses at cache sizes: ``misses[i]`` at ``frames[i]`` pages.
    ``requests`` is the trace's length (for SHARDS, the sampled misses are
    scaled to it); ``distinct`` its distinct keys."""

    policy: str
    requests: int
    distinct: int
    frames: np.ndarray
    misses: np.ndarray
    seconds: float
    rate: float = 1.0
    extra: dict = field(default_factory=dict)

    @property
    def miss_ratio(self) -> np.ndarray:
        return self.misses / max(self.requests, 1)

    def as_dict(self) -> dict:
        return {"policy": self.policy, "requests": self.requests, "distinct": self.distinct,
                "sampling_rate": self.rate, "seconds": self.seconds,
                "frames": [int(f) for f in self.frames],
                "miss_ratio": [float(m) for m in self.miss_ratio]}


class StackDistances:
    """LRU stack distances of a stream of keys, chunk by chunk."""

    def __init__(self, times: int = 1 << 21):
        self.ids = IdMap()
        self.last = np.empty(0, np.int32)          # last-use time of each id
        self.hist = np.zeros(2, np.int64)          # hist[d]: requests at distance d
        self.times = _new_times(times)
        self.clock = np.zeros(3, np.int64)         # now, live times, cold misses
        self.requests = 0

    @property
    def nbytes(self) -> int:
        return (self.ids.nbytes + self.last.nbytes + self.hist.nbytes
                + sum(a.nbytes for a in self.times))

    def add(self, keys: np.ndarray) -> None:
        ids = self.ids.ids(keys)
        n = len(self.ids)
        if n > len(self.last):
            grown = np.full(max(n, len(self.last) * 3 // 2), -1, np.int32)
            grown[:len(self.last)] = self.last
            self.last = grown
            hist = np.zeros(len(self.last) + 1, np.int64)
            hist[:len(self.hist)] = self.hist
            self.hist = hist
        size = len(self.times[0]) * 64
        if self.clock[0] + len(ids) > size:
            live = int(self.clock[1])
            new = _new_times(max(size, 2 * (live + len(ids))))
            _compact(self.last[:n], *self.times, *new, self.clock)
            self.times = new
        _distances(ids, self.last, self.hist, *self.times, self.clock)
        self.requests += len(keys)

    def misses(self, frames: np.ndarray) -> np.ndarray:
        """The misses of an LRU cache of each size in ``frames``."""
        # beyond[c] = requests with d > c
        beyond = np.concatenate([np.cumsum(self.hist[::-1])[::-1][1:], [0]])
        idx = np.minimum(np.asarray(frames, np.int64), len(beyond) - 1)
        return self.clock[2] + beyond[idx]


# The live times: a bitmap with a count of its ones per 512 bits (c1), per
# 32768 (c2) and per 2**21 (c3), so that counting the ones in [s, now) reads
# the rest of s's word, block and superblocks up to now's: a few words and
# counts next to s and next to now, however far apart they are.
SHIFT1, SHIFT2, SHIFT3 = 9, 15, 21


def _new_times(times: int) -> tuple[np.ndarray, ...]:
    """Room for ``times`` times (rounded up to a multiple of 64): the bitmap
    and its three levels of counts."""
    words = -(-times // 64)
    return (np.zeros(words, np.uint64),
            *(np.zeros(-(-words * 64 >> shift), np.int32) for shift in (SHIFT1, SHIFT2, SHIFT3)))


@inline
def _ones_from(bits, c1, c2, c3, s, now):
    """The ones in [s, now) (there are none from now on)."""
    w, wn = s >> 6, now >> 6
    total = np.int64(popcount(bits[w] >> np.uint64(s & 63)))
    end = min(((w >> 3) + 1) << 3, wn + 1)
    for x in range(w + 1, end):
        total += np.int64(popcount(bits[x]))
    if end > wn:
        return total
    b, bn = w >> 3, wn >> 3
    end = min(((b >> 6) + 1) << 6, bn + 1)
    for x in range(b + 1, end):
        total += c1[x]
    if end > bn:
        return total
    b, bn = b >> 6, bn >> 6
    end = min(((b >> 6) + 1) << 6, bn + 1)
    for x in range(b + 1, end):
        total += c2[x]
    if end > bn:
        return total
    for x in range((b >> 6) + 1, (bn >> 6) + 1):
        total += c3[x]
    return total


@inline
def _flip(bits, c1, c2, c3, t, delta):
    """Set (delta 1) or clear (-1) the bit of time t."""
    bits[t >> 6] ^= np.uint64(1) << np.uint64(t & 63)
    c1[t >> SHIFT1] += delta
    c2[t >> SHIFT2] += delta
    c3[t >> SHIFT3] += delta


@hot
def _distances(ids, last, hist, bits, c1, c2, c3, clock):
    now, live, cold = clock[0], clock[1], clock[2]
    n = len(ids)
    for i in range(n):
        # two requests ahead of time: load the last use of the key 16 ahead,
        # and what the count will read for the key 8 ahead
        if i + 16 < n:
            prefetch(last, ids[i + 16])
        if i + 8 < n:
            ahead = last[ids[i + 8]]
            if ahead >= 0:
                prefetch(bits, ahead >> 6)
                prefetch(c1, ahead >> SHIFT1)
        k = ids[i]
        s = last[k]
        if s < 0:
            cold += 1
            live += 1
        else:
            hist[_ones_from(bits, c1, c2, c3, s, now)] += 1
            _flip(bits, c1, c2, c3, s, -1)
        _flip(bits, c1, c2, c3, now, 1)
        last[k] = now
        now += 1
    clock[0], clock[1], clock[2] = now, live, cold


@njit
def _compact(last, bits, c1, c2, c3, nbits, nc1, nc2, nc3, clock):
    """Renumber the live times 0..live-1 in their order, into the new
    arrays ``n*``: a time's new number is the ones before it."""
    before = np.zeros(len(bits) + 1, np.int64)       # ones before each word
    for w in range(len(bits)):
        before[w + 1] = before[w] + np.int64(popcount(bits[w]))
    for k in range(len(last)):
        t = last[k]
        if t >= 0:
            mask = (np.uint64(1) << np.uint64(t & 63)) - np.uint64(1)
            last[k] = before[t >> 6] + np.int64(popcount(bits[t >> 6] & mask))
    live = before[len(bits)]
    for t in range(live):
        _flip(nbits, nc1, nc2, nc3, t, 1)
    clock[0] = live
    clock[1] = live


def shards_mask(keys: np.ndarray, rate: float) -> np.ndarray:
    """Which keys SHARDS keeps at sampling ``rate``: hash(key) mod 2**24 <
    rate x 2**24, with splitmix64's finalizer as the hash."""
    x = keys.view(np.uint64).copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x & np.uint64(SHARDS_MODULUS - 1)) < np.uint64(int(rate * SHARDS_MODULUS))


def log_sizes(largest: int, points: int, smallest: int = 1) -> np.ndarray:
    """About ``points`` cache sizes from ``smallest`` to ``largest``, log-uniform."""
    if largest <= smallest:
        return np.array([max(largest, 1)], np.int64)
    sizes = np.geomspace(smallest, largest, max(points, 2)).round().astype(np.int64)
    return _sorted_unique(sizes)


def lru_curve(path: str, fmt: str, points: int = 100, rate: float = 1.0,
              chunk: int = CHUNK) -> Curve:
    """The LRU miss-ratio curve of the trace, exact (``rate`` 1) or SHARDS-
    sampled; ``points`` sizes log-uniform up to the distinct keys (0: every
    size at which the curve steps)."""
    _compile_stack_distances()
    start = time.perf_counter()
    sd = StackDistances()
    requests = 0
    for keys in trace_keys(path, fmt, chunk):
        requests += len(keys)
        sd.add(keys[shards_mask(keys, rate)] if rate < 1 else keys)
    distinct = round(len(sd.ids) / rate)
    smallest = int(np.ceil(1 / rate))        # SHARDS cannot see below one sampled page
    if points:
        frames = log_sizes(distinct, points, smallest)
    else:                                    # where the curve steps: each distance
        steps = np.round(np.flatnonzero(sd.hist) / rate).astype(np.int64)
        frames = _sorted_unique(np.concatenate([[smallest], steps, [max(distinct, 1)]]))
        frames = frames[frames >= smallest]
    sampled = sd.misses(np.floor(frames * rate).astype(np.int64))
    if rate < 1:          # scaled to the trace; more misses than requests is noise
        sampled = np.minimum(np.round(sampled / rate), requests).astype(np.int64)
    misses = sampled
    return Curve("lru", requests, distinct, frames, misses, time.perf_counter() - start, rate,
                 {"bytes": sd.nbytes})


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (numpy 2's ``np.unique`` hashes: slow here)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def _compile_stack_distances() -> None:
    sd = StackDistances(times=4)
    sd.add(np.arange(8, dtype=np.int64) % 3)


def distinct_keys(path: str, fmt: str, chunk: int = CHUNK) -> tuple[int, int]:
    """(requests, distinct keys) of the trace."""
    idmap, requests = IdMap(), 0
    for keys in trace_keys(path, fmt, chunk):
        idmap.ids(keys)
        requests += len(keys)
    return requests, len(idmap)


def _misses_at(args: tuple) -> int:
    path, fmt, policy, frames = args
    return replay_trace(path, fmt, policy, int(frames)).misses


def multi_size(path: str, fmt: str, policy: str, points: int = 16,
               jobs: int | None = None) -> Curve:
    """The miss-ratio curve of ``policy`` from one replay per size, at
    ``points`` sizes log-uniform up to the distinct keys, ``jobs`` replays
    at a time in separate processes (default: one per CPU)."""
    start = time.perf_counter()
    requests, distinct = distinct_keys(path, fmt)
    frames = log_sizes(distinct, points)
    from linmem.cachesim import policy_module
    minimum = getattr(policy_module(policy), "MIN_FRAMES", 1)
    frames = np.unique(np.maximum(frames, minimum))
    work = [(path, fmt, policy, f) for f in frames]
    jobs = min(jobs or os.cpu_count() or 1, len(work))
    if jobs == 1:
        misses = [_misses_at(w) for w in work]
    else:
        # forked workers start with the kernels this process has loaded
        compile_policy(policy)
        context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            misses = list(pool.map(_misses_at, work))
    return Curve(policy, requests, distinct, frames, np.array(misses, np.int64),
                 time.perf_counter() - start)
