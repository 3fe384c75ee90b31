"""CLOCK (second chance): FIFO that spares a page referenced since it came in.

The frames are a ring with a hand at the oldest page; each page has a
reference bit, set by a hit. A miss in a full cache moves the hand: a page
with its bit set loses it and is passed over (it is now the newest), the
first page without it is replaced by the new page, whose bit is clear::

    ring:   0     1     2     3          hand = 1
          [k5,1] [k6,1] [k2,0] [k3,1]    miss: k6 loses its bit, k2 goes;
                                         the new page takes slot 2, hand -> 3

This is libCacheSim's ``Clock`` with its defaults (n_bit_counter = 1,
init_freq = 0): a queue whose tail, if its frequency is at least 1, is
decremented and moved to the head; the ring with a hand is that queue
without the moves (libCacheSim's ``Clock.c``: Clock_find, Clock_evict).
Cross-checked: miss counts equal libCacheSim's. State: the ring (4 bytes
per frame) and a byte per distinct page: 0 not cached, RESIDENT, or
RESIDENT | REFERENCED.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.fifo import CACHED, HAND, prefetch_page, ring_insert
from linmem.engine.jit import hot

RESIDENT, REFERENCED = 1, 2
PER_KEY = {1: (0, 1)}


def new_state(frames: int) -> tuple:
    return (np.zeros(max(frames, 1), np.int32), np.zeros(0, np.uint8), np.zeros(2, np.int64))


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    ring, page, meta = state
    frames = len(ring)
    hits = 0
    for i in range(len(ids)):
        prefetch_page(page, ids, i)
        x = ids[i]
        if page[x]:
            hits += 1
            page[x] = RESIDENT | REFERENCED
            continue
        if meta[CACHED] == frames:                      # pass the referenced pages
            hand = meta[HAND]
            while page[ring[hand]] & REFERENCED:
                page[ring[hand]] = RESIDENT
                hand = hand + 1 if hand + 1 < frames else 0
            meta[HAND] = hand
        ring_insert(ring, page, meta, x, RESIDENT)
    return hits
