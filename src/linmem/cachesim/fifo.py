"""FIFO: evict the page that came in first; a hit changes nothing.

The frames are a ring of slots and ``hand`` the oldest::

    slot:   0    1    2    3    4
          [k5] [k6] [k2] [k3] [k4]        hand = 2: k2 came in first
                     ^ a miss replaces k2 with the new page, hand -> 3

Slot s of the ring is slot s of the table, so the ring is ``skeys`` itself.
A miss searches the table once (:func:`ht_place`), and the next victim's
bucket is asked for early. Cross-checked: miss counts equal libCacheSim's
``FIFO``. State: the table, 22.5 bytes per frame.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.hashtable import (AHEAD, NEAR, ht_lookup, ht_peek, ht_place, ht_prefetch,
                                       ht_prefetch_slot, ht_put, ht_remove, new_table)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit

CACHED, HAND = 0, 1


def new_state(frames: int) -> tuple:
    return (*new_table(frames), np.zeros(2, np.int64))


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, meta = state
    frames = len(skeys)
    hits = 0
    for i in range(len(keys)):
        ht_prefetch(buckets, keys, i + AHEAD)
        t = ht_peek(buckets, keys, i + NEAR)
        if t >= 0:
            prefetch(skeys, t)
        key = keys[i]
        s = ht_lookup(buckets, skeys, key)
        if s >= 0:
            hits += 1
            continue
        empty = -1 - s
        s = ring_slot(buckets, skeys, meta, frames)
        if s < 0:
            s = -1 - s
            empty = ht_place(buckets, key, empty, ht_remove(buckets, skeys, s))
        ht_put(buckets, skeys, empty, key, s)
    return hits


@njit
def ring_slot(buckets, skeys, meta, frames):
    """The slot for a new page: a free one while the ring fills; then -1 -
    the slot at the hand (its page is the victim), the hand moving on."""
    if meta[CACHED] < frames:
        meta[CACHED] += 1
        return meta[CACHED] - 1
    s = meta[HAND]
    meta[HAND] = s + 1 if s + 1 < frames else 0
    ht_prefetch_slot(buckets, skeys, meta[HAND])
    return -1 - s
