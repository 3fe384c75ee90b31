"""LRU: evict the page used least recently.

One list, the most recently used page at its head::

    head                                   tail
    [k7] <-> [k3] <-> [k9] <-> ... <-> [k1]      full: a miss evicts k1
     ^ a hit moves its page here; a miss inserts here

A miss searches the table once: the new page goes where its lookup
stopped (or where the eviction left a hole, :func:`ht_place`). The next
victims are known, the tail and the page before it, so their buckets and
links are asked for early, as are the slots of the hits a few requests on.

Cross-checked: miss counts equal libCacheSim's ``LRU`` (tests/test_cachesim.py
on small traces, benchmarks/vs_libcachesim.py on 10 M requests). State:
the table (22.5 bytes per frame) and links (8): 30.5 bytes per frame.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import new_links
from linmem.cachesim.hashtable import (AHEAD, NEAR, ht_lookup, ht_peek, ht_place, ht_prefetch,
                                       ht_prefetch_slot, ht_put, ht_remove, new_table)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit

HEAD, TAIL, CACHED = 0, 1, 2


def new_state(frames: int) -> tuple:
    return (*new_table(frames), new_links(frames), np.array([-1, -1, 0], np.int64))


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, links, meta = state
    head, tail, cached = meta[HEAD], meta[TAIL], meta[CACHED]
    frames = len(skeys)
    hits = 0
    for i in range(len(keys)):
        ht_prefetch(buckets, keys, i + AHEAD)
        t = ht_peek(buckets, keys, i + NEAR)
        if t >= 0:
            prefetch(skeys, t)
            prefetch(links, 2 * t)
        key = keys[i]
        s = ht_lookup(buckets, skeys, key)
        if s >= 0:                                      # a hit: to the head
            hits += 1
            if s != head:
                p, n = links[2 * s], links[2 * s + 1]
                links[2 * p + 1] = n
                if n >= 0:
                    links[2 * n] = p
                else:
                    tail = p
                links[2 * s], links[2 * s + 1] = -1, head
                links[2 * head] = s
                head = s
            continue
        empty = -1 - s
        if cached < frames:
            s = cached
            cached += 1
        else:                                           # evict the tail, reuse its slot
            s = tail
            tail = links[2 * s]
            empty = ht_place(buckets, key, empty, ht_remove(buckets, skeys, s))
            if tail < 0:                                # one frame: the list is empty
                head = -1
            else:
                links[2 * tail + 1] = -1
                ht_prefetch_slot(buckets, skeys, tail)  # the next victims
                before = links[2 * tail]
                if before >= 0:
                    prefetch(skeys, before)
                    prefetch(links, 2 * before)
        ht_put(buckets, skeys, empty, key, s)           # insert at the head
        links[2 * s], links[2 * s + 1] = -1, head
        if head >= 0:
            links[2 * head] = s
        else:
            tail = s
        head = s
    meta[HEAD], meta[TAIL], meta[CACHED] = head, tail, cached
    return hits
