"""FIFO: evict the page that came in first; a hit changes nothing.

The frames are a ring of page ids and ``hand`` the oldest::

    ring:   0    1    2    3    4
          [k5] [k6] [k2] [k3] [k4]        hand = 2: k2 came in first
                     ^ a miss replaces k2 with the new page, hand -> 3

``cached[id]`` says whether the page is in the ring: a request reads one
byte, a miss writes two and one ring slot. The byte of the request NEAR
positions on is asked for early. Cross-checked: miss counts equal
libCacheSim's ``FIFO``. State: the ring (4 bytes per frame) and the flag
(1 byte per distinct page).
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import NEAR
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import hot, inline

HAND, CACHED = 0, 1
PER_KEY = {1: (0, 1)}


def new_state(frames: int) -> tuple:
    return (np.zeros(max(frames, 1), np.int32), np.zeros(0, np.uint8), np.zeros(2, np.int64))


@inline
def ring_insert(ring, page, meta, x, state):
    """Put page ``x`` in the ring, setting ``page[x]`` to ``state``: in a
    free slot while the ring fills, then in the slot at the hand, whose
    page is evicted (``page`` 0), the hand moving on."""
    frames = len(ring)
    if meta[CACHED] < frames:
        s = meta[CACHED]
        meta[CACHED] += 1
    else:
        s = meta[HAND]
        meta[HAND] = s + 1 if s + 1 < frames else 0
        page[ring[s]] = 0
    ring[s] = x
    page[x] = state


@inline
def prefetch_page(page, ids, i):
    """Ask early for the state of the page NEAR requests after request ``i``."""
    if i + NEAR < len(ids):
        prefetch(page, ids[i + NEAR])


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    ring, cached, meta = state
    hits = 0
    for i in range(len(ids)):
        prefetch_page(cached, ids, i)
        x = ids[i]
        if cached[x]:
            hits += 1
        else:
            ring_insert(ring, cached, meta, x, 1)
    return hits
