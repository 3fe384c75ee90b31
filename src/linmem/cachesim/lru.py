"""LRU: evict the page used least recently.

One list, the most recently used page at its head::

    head                                   tail
    [k7] <-> [k3] <-> [k9] <-> ... <-> [k1]      full: a miss evicts k1
     ^ a hit moves its page here; a miss inserts here

The list is linked through ``links``, two int32 per distinct page (the
page before, towards the head, and the page after), as in
:mod:`linmem.cachesim.dlist`; a page not cached has OUT in both, so the
links also say whether a page is cached. A hit reads its page's links and
rewrites its two neighbours'; the links of the page NEAR requests on are
asked for early, and, a few requests before its turn, its neighbours'
(they may still change: a prefetch is only a hint).

Cross-checked: miss counts equal libCacheSim's ``LRU`` (tests/test_cachesim.py
on small traces, benchmarks/vs_libcachesim.py on 10 M requests). State: 8
bytes per distinct page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import hot, inline

NEAR, NEIGHBOURS = 16, 4  # requests between the prefetches and the use
OUT = -2                                # the links of a page not cached
HEAD, TAIL, CACHED = 0, 1, 2
PER_KEY = {0: (OUT, 2)}


def new_state(frames: int) -> tuple:
    return (np.zeros(0, np.int32), np.array([-1, -1, 0, frames], np.int64))


@inline
def _prefetch(links, ids, i):
    """Ask early for the links of request i + NEAR's page, and for those
    of request i + NEIGHBOURS's neighbours."""
    n = len(ids)
    if i + NEAR < n:
        prefetch(links, 2 * ids[i + NEAR])
    if i + NEIGHBOURS < n:
        x = ids[i + NEIGHBOURS]
        p, q = links[2 * x], links[2 * x + 1]
        if p >= 0:
            prefetch(links, 2 * p)
        if q >= 0:
            prefetch(links, 2 * q)


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    links, meta = state
    head, tail, cached, frames = meta[HEAD], meta[TAIL], meta[CACHED], meta[3]
    hits = 0
    for i in range(len(ids)):
        _prefetch(links, ids, i)
        x = ids[i]
        p = links[2 * x]
        if p != OUT:                                    # a hit: to the head
            hits += 1
            if p >= 0:
                q = links[2 * x + 1]
                links[2 * p + 1] = q
                if q >= 0:
                    links[2 * q] = p
                else:
                    tail = p
                links[2 * x], links[2 * x + 1] = -1, head
                links[2 * head] = x
                head = x
            continue
        if cached < frames:
            cached += 1
        else:                                           # evict the tail
            t = tail
            tail = links[2 * t]
            links[2 * t], links[2 * t + 1] = OUT, OUT
            if tail < 0:                                # one frame: the list is empty
                head = -1
            else:
                links[2 * tail + 1] = -1
                prefetch(links, 2 * links[2 * tail])    # the next victim's neighbour
        links[2 * x], links[2 * x + 1] = -1, head       # insert at the head
        if head >= 0:
            links[2 * head] = x
        else:
            tail = x
        head = x
    meta[HEAD], meta[TAIL], meta[CACHED] = head, tail, cached
    return hits
