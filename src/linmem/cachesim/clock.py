"""CLOCK (second chance): FIFO that spares a page referenced since it came in.

The frames are a ring with a hand at the oldest page; each page has a
reference bit, set by a hit. A miss in a full cache moves the hand: a page
with its bit set loses it and is passed over (it is now the newest), the
first page without it is replaced by the new page, whose bit is clear::

    slot:   0     1     2     3          hand = 1
          [k5,1] [k6,1] [k2,0] [k3,1]    miss: k6 loses its bit, k2 goes;
                                         the new page takes slot 2, hand -> 3

This is libCacheSim's ``Clock`` with its defaults (n_bit_counter = 1,
init_freq = 0): a queue whose tail, if its frequency is at least 1, is
decremented and moved to the head; the ring with a hand is that queue
without the moves (libCacheSim's ``Clock.c``: Clock_find, Clock_evict).
Cross-checked: miss counts equal libCacheSim's. State: the table (22.5
bytes per frame) and the bit (1): 23.5 bytes per frame.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.fifo import CACHED, HAND, ring_slot
from linmem.cachesim.hashtable import (AHEAD, NEAR, ht_lookup, ht_peek, ht_place, ht_prefetch,
                                       ht_put, ht_remove, new_table)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit


def new_state(frames: int) -> tuple:
    return (*new_table(frames), np.zeros(max(frames, 1), np.uint8), np.zeros(2, np.int64))


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, referenced, meta = state
    frames = len(skeys)
    hits = 0
    for i in range(len(keys)):
        ht_prefetch(buckets, keys, i + AHEAD)
        t = ht_peek(buckets, keys, i + NEAR)
        if t >= 0:
            prefetch(skeys, t)
            prefetch(referenced, t)
        key = keys[i]
        s = ht_lookup(buckets, skeys, key)
        if s >= 0:
            hits += 1
            referenced[s] = 1
            continue
        empty = -1 - s
        if meta[CACHED] == frames:                      # pass the referenced pages
            hand = meta[HAND]
            while referenced[hand]:
                referenced[hand] = 0
                hand = hand + 1 if hand + 1 < frames else 0
            meta[HAND] = hand
        s = ring_slot(buckets, skeys, meta, frames)
        if s < 0:
            s = -1 - s
            empty = ht_place(buckets, key, empty, ht_remove(buckets, skeys, s))
        ht_put(buckets, skeys, empty, key, s)
        referenced[s] = 0
    return hits
