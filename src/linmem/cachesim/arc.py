"""ARC: the Adaptive Replacement Cache (Megiddo and Modha, FAST 2003).

Two LRU lists of cached pages, T1 (seen once recently) and T2 (seen at
least twice), each with a ghost list of pages recently evicted from it,
B1 and B2 (keys only, no data). A target ``p`` for the size of T1 adapts:
a miss that hits B1 says T1 was too small (p grows by max(|B2|/|B1|, 1)),
one that hits B2 says T2 was (p shrinks by max(|B1|/|B2|, 1))::

        T1 (recency)            T2 (frequency)
    B1 ghosts <- [ ... ] p [ ... ] -> B2 ghosts
                 <------ c frames ------>

    hit in T1 or T2     -> head of T2
    miss, key in B1/B2  -> adapt p, REPLACE, head of T2
    miss, key new       -> case IV of the paper, head of T1
    REPLACE: T1 tail to B1 if |T1| > p (or |T1| = p and the key was in B2,
             or T2 is empty), else T2 tail to B2

Cross-checked against libCacheSim's ``ARC`` (cache/eviction/ARC.c), whose
miss counts it equals; where the paper leaves a choice, this follows
libCacheSim:

- p and the deltas are floating point (the paper's "delta" is a ratio);
- eviction happens only when the cache is full: before that, a ghost hit
  adapts p and goes to T2 without replacing anything;
- case IV with |T1| + |B1| = c and B1 empty drops the tail of T1 outright
  (no ghost); with |T1| + |B1| < c, the tail of B2 is dropped when the four
  lists hold 2c pages, then REPLACE;
- REPLACE evicts from T1 when T2 is empty, whatever p says.

Every page is its id: the lists are linked through ``links`` (two int32
per distinct page) and ``which[id]`` names the list a page is on (NONE:
not cached and no ghost). A page back from a ghost list only changes list.
The links and list of the page NEAR requests on are asked for early, and
after a miss the links of the pages before the four tails (the next
misses move them).

State: 9 bytes per distinct page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import (dl_len, dl_pop_tail, dl_prefetch, dl_push_head, dl_tail,
                                   dl_to_head, dl_unlink, new_ends)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import hot, inline

T1, T2, B1, B2, NONE = 0, 1, 2, 3, 4
PER_KEY = {0: (-1, 2), 2: (NONE, 1)}


def new_state(frames: int) -> tuple:
    return (np.zeros(0, np.int32), new_ends(4), np.zeros(0, np.uint8),
            np.zeros(1, np.float64), np.array([frames], np.int64))


@inline
def _drop(links, ends, which, lst):
    """Forget the tail of list ``lst`` entirely."""
    which[dl_pop_tail(links, ends, lst)] = NONE


@inline
def _demote(links, ends, which, data, ghost):
    """Move the tail of list ``data`` to the head of its ghost list."""
    s = dl_pop_tail(links, ends, data)
    dl_push_head(links, ends, ghost, s)
    which[s] = ghost


@inline
def _replace(links, ends, which, p, hit_b2):
    """The paper's REPLACE: a page of T1 or T2 becomes a ghost."""
    t1 = dl_len(ends, T1)
    if (t1 > 0 and (t1 > p or (t1 == p and hit_b2))) or dl_len(ends, T2) == 0:
        _demote(links, ends, which, T1, B1)
    else:
        _demote(links, ends, which, T2, B2)


@inline
def _case_iv(links, ends, which, p, c):
    """Room for a page seen in no list, the cache full (the paper's case
    IV, as libCacheSim's _ARC_evict_miss_on_all_queues)."""
    if dl_len(ends, T1) + dl_len(ends, B1) + 1 > c:
        if dl_len(ends, B1) == 0:                   # T1 holds all: drop its tail
            _drop(links, ends, which, T1)
            return
        _drop(links, ends, which, B1)
    else:
        total = dl_len(ends, T1) + dl_len(ends, T2) + dl_len(ends, B1) + dl_len(ends, B2)
        if total >= 2 * c and dl_len(ends, B2) > 0:
            _drop(links, ends, which, B2)
    _replace(links, ends, which, p, False)


@inline
def _prefetch_tails(links, ends):
    """Ask early for what the next misses touch: the links of the pages
    before the tails of the four lists."""
    for lst in (T1, T2, B1, B2):
        t = dl_tail(ends, lst)
        if t >= 0:
            prefetch(links, 2 * links[2 * t])


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    links, ends, which, pbox, cbox = state
    c = cbox[0]
    p = pbox[0]
    hits = 0
    for i in range(len(ids)):
        dl_prefetch(links, which, ids, i)
        s = ids[i]
        lst = which[s]
        full = dl_len(ends, T1) + dl_len(ends, T2) == c
        if lst == T1:
            hits += 1
            dl_unlink(links, ends, T1, s)
            dl_push_head(links, ends, T2, s)
            which[s] = T2
            continue
        if lst == T2:
            hits += 1
            dl_to_head(links, ends, T2, s)
            continue
        if lst != NONE:
            # a ghost: adapt p; the page comes back to T2
            b1, b2 = dl_len(ends, B1), dl_len(ends, B2)
            if lst == B1:
                p = min(p + max(b2 / b1, 1.0), float(c))
            else:
                p = max(p - max(b1 / b2, 1.0), 0.0)
            dl_unlink(links, ends, lst, s)
            if full:
                _replace(links, ends, which, p, lst == B2)
            dl_push_head(links, ends, T2, s)
            which[s] = T2
            continue
        if full:                                    # a new page, to T1
            _case_iv(links, ends, which, p, c)
            _prefetch_tails(links, ends)
        dl_push_head(links, ends, T1, s)
        which[s] = T1
    pbox[0] = p
    return hits
