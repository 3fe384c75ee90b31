"""OPT: Belady's MIN, the fewest misses any policy can have (Belady 1966).

On a miss in a full cache, evict the page whose next use is farthest in
the future (one never used again first). Knowing the future, OPT reads the
whole trace before it starts: a backward pass finds each request's next
use, ``next[i]`` (the number of the next request for the same page, or
NEVER), and the forward pass needs nothing else. The cache is the set of
the next uses of its pages; every request i either finds its own page's
next use, i, in the set (a hit), or is a miss:

    set = { next use of each cached page }        |set| <= frames
    request i:  i in set     -> hit; replace i by next[i]
                otherwise    -> miss; if full, drop max(set) (NEVER first);
                                insert next[i]

The set is a bitmap over request numbers with a summary bit per 64-bit
word, and per word of that, up to one word (:class:`_Bitset`): membership
is one load, the maximum a few; pages never used again are only counted.

Cross-checked: miss counts equal libCacheSim's ``Belady`` (which reads the
next uses from oracleGeneral's next_access_vtime, and also inserts a page
that will never be used again, evicting another for it). Ties between
pages never used again do not change the count.

Memory: the trace's keys are read whole (8 bytes per request, reused for
the next uses), their ids (4 bytes per request, :class:`IdMap`: 16 to 24
bytes per distinct key), the last use of each key during the backward
pass (8 bytes per key), and the bitmap (about 1/8 byte per request).
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.idmap import IdMap
from linmem.engine.jit import hot, inline

WHOLE_TRACE = True
NEVER = -1


FRAMES, DISTINCT, BYTES = 0, 1, 2


def new_state(frames: int) -> tuple:
    return (np.array([frames, 0, 0], np.int64),)


def usage(state: tuple) -> tuple[int, int]:
    """(distinct keys, bytes used beyond the trace's keys) of the last replay."""
    return int(state[0][DISTINCT]), int(state[0][BYTES])


def replay(keys: np.ndarray, state: tuple) -> int:
    """Replay the whole trace ``keys`` (overwritten); the number of hits."""
    if not len(keys):
        return 0
    idmap = IdMap(max(1 << 16, len(keys) // 16))
    ids = np.concatenate([idmap.ids(keys[i:i + (1 << 20)])
                          for i in range(0, len(keys), 1 << 20)])
    nxt = keys
    last = np.full(len(idmap), NEVER, np.int64)
    _next_uses(ids, last, nxt)
    levels = _levels(len(nxt))
    meta = state[0]
    meta[DISTINCT] = len(idmap)
    meta[BYTES] = idmap.nbytes + ids.nbytes + last.nbytes + 8 * int(levels[-1])
    del ids, idmap, last
    return _belady(nxt, int(meta[FRAMES]), levels, np.zeros(levels[-1], np.uint64))


@hot
def _next_uses(ids, last, nxt):
    """``nxt[i]``: the next request for the key of request i, or NEVER."""
    for i in range(len(ids) - 1, -1, -1):
        k = ids[i]
        nxt[i] = last[k]
        last[k] = i


def _levels(n: int) -> np.ndarray:
    """The offsets of the bitmap's levels in one array: level 0 has a bit per
    request, each level above a bit per word below; the last is one word."""
    offsets = [0]
    words = (n + 63) // 64
    while True:
        offsets.append(offsets[-1] + max(words, 1))
        if words <= 1:
            return np.array(offsets, np.int64)
        words = (words + 63) // 64


@inline
def _msb(x):
    """The number of the highest set bit of ``x`` (> 0)."""
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(shift):
            x >>= np.uint64(shift)
            n += shift
    return n


@inline
def _set(bits, offsets, t):
    for lv in range(len(offsets) - 1):
        w = offsets[lv] + (t >> 6)
        was = bits[w]
        bits[w] = was | (np.uint64(1) << np.uint64(t & 63))
        if was:
            return
        t >>= 6


@inline
def _clear(bits, offsets, t):
    for lv in range(len(offsets) - 1):
        w = offsets[lv] + (t >> 6)
        bits[w] &= ~(np.uint64(1) << np.uint64(t & 63))
        if bits[w]:
            return
        t >>= 6


@inline
def _max(bits, offsets):
    """The highest member (the set is not empty)."""
    t = 0
    for lv in range(len(offsets) - 2, -1, -1):
        t = (t << 6) + _msb(bits[offsets[lv] + t])
    return t


@hot
def _belady(nxt, frames, offsets, bits):
    size = 0                # pages cached
    never = 0               # of which never used again
    hits = 0
    for i in range(len(nxt)):
        if (bits[i >> 6] >> np.uint64(i & 63)) & np.uint64(1):
            hits += 1
            _clear(bits, offsets, i)
        elif size == frames:
            if never:
                never -= 1
            else:
                _clear(bits, offsets, _max(bits, offsets))
        else:
            size += 1
        if nxt[i] == NEVER:
            never += 1
        else:
            _set(bits, offsets, nxt[i])
    return hits
