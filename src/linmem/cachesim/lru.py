"""LRU: evict the page used least recently, with a queue of uses.

Every request appends its page to the head of a queue; the page's place in the
queue is kept per page (``pos``, -1 while it is not cached). An entry is the
page's current one only while ``pos`` still points at it: a hit leaves the old
entry behind, stale, instead of taking it out of a list. The least recently
used page is then the oldest current entry: a miss on a full cache walks from
the tail past the stale entries to the first current one and evicts its page::

    tail                                        head
    [k1] [k3]' [k9] [k3]' [k7] [k3] ...  [k7]         ' stale: a later entry for the page
     ^ the next victim                    ^ appended by every request

This is exactly LRU (the same hits, victims and order as a linked list), but a
hit touches one page's state instead of three (its own and its two
neighbours'), and the queue is read and written in order. When
the head reaches the queue's end, the current entries (at most the cache's
size) are moved to its start, in order. The queue holds twice the cache, or
twice the distinct pages when that is smaller: a move leaves it at least
half empty, so it moves no more entries than there are requests.

Cross-checked: miss counts equal libCacheSim's ``LRU`` (tests/test_cachesim.py
on small traces, benchmarks/vs_libcachesim.py on 10 M requests). State: 12
bytes per distinct page (``pos``, and two queue entries).
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import hot

NEAR, AHEAD = 16, 16      # requests before a page's use; queue entries before the tail's
HEAD, TAIL, CACHED, FRAMES = 0, 1, 2, 3
PER_KEY = {0: (-1, 1), 1: (-1, 2)}


def new_state(frames: int) -> tuple:
    return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.array([0, 0, 0, frames], np.int64))


@hot
def _compact(pos, queue, tail, head):
    """Move the current entries of queue[tail:head] to its start; the new head."""
    n = 0
    for j in range(tail, head):
        x = queue[j]
        if pos[x] == j:
            queue[n] = x
            pos[x] = n
            n += 1
    return n


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    pos, queue, meta = state
    head, tail, cached, frames = meta[HEAD], meta[TAIL], meta[CACHED], meta[FRAMES]
    size = min(len(queue), 2 * frames + 2)
    hits = 0
    n = len(ids)
    for i in range(n):
        if i + NEAR < n:
            prefetch(pos, ids[i + NEAR])
        x = ids[i]
        if pos[x] >= 0:
            hits += 1
        elif cached < frames:
            cached += 1
        else:                                           # evict the oldest current entry
            while True:
                if tail + AHEAD < head:
                    prefetch(pos, queue[tail + AHEAD])
                v = queue[tail]
                if pos[v] == tail:
                    break
                tail += 1
            pos[v] = -1
            tail += 1
        if head == size:
            head = _compact(pos, queue, tail, head)
            tail = 0
        queue[head] = x
        pos[x] = head
        head += 1
    meta[HEAD], meta[TAIL], meta[CACHED] = head, tail, cached
    return hits
