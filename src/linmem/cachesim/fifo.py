"""FIFO: evict the page that came in first; a hit changes nothing.

The frames are a ring of slots and ``hand`` the oldest::

    slot:   0    1    2    3    4
          [k5] [k6] [k2] [k3] [k4]        hand = 2: k2 came in first
                     ^ a miss replaces k2 with the new page, hand -> 3

Slot s of the ring is slot s of the table too, so the ring is ``skeys``
itself. Cross-checked: miss counts equal libCacheSim's ``FIFO``. State:
the table, 21.3 bytes per frame.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.hashtable import AHEAD, ht_find, ht_insert, ht_prefetch, ht_remove, new_table
from linmem.engine.jit import njit

USED, HAND = 0, 1


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
        key = keys[i]
        if ht_find(buckets, skeys, key) >= 0:
            hits += 1
            continue
        if meta[USED] < frames:
            s = meta[USED]
            meta[USED] += 1
        else:
            s = meta[HAND]
            meta[HAND] = s + 1 if s + 1 < frames else 0
            ht_remove(buckets, skeys, s)
        ht_insert(buckets, skeys, key, s)
    return hits
