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

A page back from a ghost list keeps the ghost's slot and table entry (only
its list changes); a new page goes where its lookup stopped, or into the
hole the eviction left (:func:`ht_place`).

State: up to 2c slots (cached pages and ghosts), each with the table (22.5
bytes), links (8, which also chain the free slots) and its list (1): 31.5
bytes per tracked page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import (dl_len, dl_push_head, dl_tail, dl_to_head, dl_unlink,
                                   new_ends, new_links)
from linmem.cachesim.hashtable import (AHEAD, NEAR, ht_lookup, ht_peek, ht_place, ht_prefetch,
                                       ht_prefetch_slot, ht_put, new_free, new_table, slot_forget,
                                       slot_take)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit

T1, T2, B1, B2 = 0, 1, 2, 3


def new_state(frames: int) -> tuple:
    slots = 2 * frames + 1
    links = new_links(slots)
    return (*new_table(slots), links, new_ends(4), np.zeros(slots, np.uint8), new_free(links),
            np.zeros(1, np.float64), np.array([frames], np.int64))


@njit
def _drop(buckets, skeys, links, ends, free, lst):
    """Forget the tail of list ``lst`` entirely; the bucket left empty."""
    s = dl_tail(ends, lst)
    dl_unlink(links, ends, lst, s)
    return slot_forget(buckets, skeys, links, free, s)


@njit
def _demote(links, ends, which, data, ghost):
    """Move the tail of list ``data`` to the head of its ghost list."""
    s = dl_tail(ends, data)
    dl_unlink(links, ends, data, s)
    dl_push_head(links, ends, ghost, s)
    which[s] = ghost


@njit
def _replace(links, ends, which, p, hit_b2):
    """The paper's REPLACE: a page of T1 or T2 becomes a ghost."""
    t1 = dl_len(ends, T1)
    if (t1 > 0 and (t1 > p or (t1 == p and hit_b2))) or dl_len(ends, T2) == 0:
        _demote(links, ends, which, T1, B1)
    else:
        _demote(links, ends, which, T2, B2)


@njit
def _case_iv(buckets, skeys, links, ends, which, free, p, c):
    """Room for a page seen in no list, the cache full (the paper's case
    IV, as libCacheSim's _ARC_evict_miss_on_all_queues); the bucket left
    empty by forgetting a page, or -1."""
    if dl_len(ends, T1) + dl_len(ends, B1) + 1 > c:
        if dl_len(ends, B1) == 0:                   # T1 holds all: drop its tail
            return _drop(buckets, skeys, links, ends, free, T1)
        hole = _drop(buckets, skeys, links, ends, free, B1)
    else:
        hole = -1
        total = dl_len(ends, T1) + dl_len(ends, T2) + dl_len(ends, B1) + dl_len(ends, B2)
        if total >= 2 * c and dl_len(ends, B2) > 0:
            hole = _drop(buckets, skeys, links, ends, free, B2)
    _replace(links, ends, which, p, False)
    return hole


@njit
def _prefetch_tails(buckets, skeys, links, ends):
    """Ask early for what the next misses touch: the links of the tails of
    the four lists and of the pages before them, the buckets of the ghosts."""
    for lst in (T1, T2, B1, B2):
        t = dl_tail(ends, lst)
        if t < 0:
            continue
        before = links[2 * t]
        if before >= 0:
            prefetch(links, 2 * before)
            prefetch(skeys, before)
        if lst >= B1:
            ht_prefetch_slot(buckets, skeys, t)


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, links, ends, which, free, pbox, cbox = state
    c = cbox[0]
    p = pbox[0]
    hits = 0
    for i in range(len(keys)):
        ht_prefetch(buckets, keys, i + AHEAD)
        t = ht_peek(buckets, keys, i + NEAR)
        if t >= 0:
            prefetch(skeys, t)
            prefetch(links, 2 * t)
            prefetch(which, t)
        key = keys[i]
        s = ht_lookup(buckets, skeys, key)
        full = dl_len(ends, T1) + dl_len(ends, T2) == c
        if s >= 0:
            lst = which[s]
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
            # a ghost: adapt p; the page comes back to T2 in the ghost's slot
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
        empty = -1 - s                              # a new page, to T1
        if full:
            hole = _case_iv(buckets, skeys, links, ends, which, free, p, c)
            if hole >= 0:
                empty = ht_place(buckets, key, empty, hole)
            _prefetch_tails(buckets, skeys, links, ends)
        s = slot_take(links, free)
        ht_put(buckets, skeys, empty, key, s)
        dl_push_head(links, ends, T1, s)
        which[s] = T1
    pbox[0] = p
    return hits
