"""2Q, the full version (Johnson and Shasha, VLDB 1994, section 2.2).

A page seen once waits in A1in, a FIFO of Kin frames; evicted from there,
its key goes to A1out, a FIFO of Kout ghosts. Only a page referenced again
while its key is in A1out earns a place in Am, the LRU list of pages seen
twice; a hit in A1in changes nothing (correlated references)::

    new page -> A1in (FIFO, Kin) --evicted--> A1out (ghost FIFO, Kout)
                                                 | referenced again
    hit in Am -> head of Am  <-------------------+  Am (LRU)

    reclaimfor(X), the cache full: if |A1in| > Kin, the tail of A1in goes
    (its key to the head of A1out, whose tail drops when it holds Kout);
    else the tail of Am goes (no ghost: it was not used for a while).

The paper's tuning: Kin = 25% of the frames, Kout = 50% (keys).
Ambiguities, resolved as libCacheSim's ``TwoQ`` does (so its miss counts
agree too, from 4 frames up): a key found in A1out leaves A1out before
reclaimfor runs; Kin = frames // 4 (at least 1, where libCacheSim's 0
caches nothing) and Kout = frames // 2; and Am never holds more than
frames - Kin pages (it cannot: A1in never falls below Kin once the cache is
full). Checked against the paper's rules on hand-made sequences
(tests/test_cachesim.py).

A page whose key is in A1out enters Am in that key's slot; a new page goes
where its lookup stopped, or into the hole the reclaim left (:func:`ht_place`).

State: frames + Kout slots, each with the table (22.5 bytes), links (8,
which also chain the free slots) and its list (1): 31.5 bytes per tracked
page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import dl_len, dl_push_head, dl_tail, dl_to_head, dl_unlink, new_ends, new_links
from linmem.cachesim.hashtable import (AHEAD, NEAR, ht_lookup, ht_peek, ht_place, ht_prefetch,
                                       ht_put, new_free, new_table, slot_forget, slot_take)
from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit

AIN, AM, AOUT = 0, 1, 2
FRAMES, KIN, KOUT = 0, 1, 2


def new_state(frames: int) -> tuple:
    kin, kout = max(1, frames // 4), frames // 2
    slots = frames + kout + 1
    links = new_links(slots)
    return (*new_table(slots), links, new_ends(3), np.zeros(slots, np.uint8), new_free(links),
            np.array([frames, kin, kout], np.int64))


@njit
def _reclaim(buckets, skeys, links, ends, which, free, meta):
    """Free a frame: the tail of A1in if it is over Kin (its key to A1out),
    else the tail of Am; the bucket left empty by a forgotten key, or -1."""
    if dl_len(ends, AIN) <= meta[KIN]:
        return _forget_tail(buckets, skeys, links, ends, free, AM)
    s = dl_tail(ends, AIN)
    dl_unlink(links, ends, AIN, s)
    if meta[KOUT] == 0:
        return slot_forget(buckets, skeys, links, free, s)
    hole = -1
    if dl_len(ends, AOUT) == meta[KOUT]:
        hole = _forget_tail(buckets, skeys, links, ends, free, AOUT)
    dl_push_head(links, ends, AOUT, s)
    which[s] = AOUT
    return hole


@njit
def _forget_tail(buckets, skeys, links, ends, free, lst):
    s = dl_tail(ends, lst)
    dl_unlink(links, ends, lst, s)
    return slot_forget(buckets, skeys, links, free, s)


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, links, ends, which, free, meta = state
    frames = meta[FRAMES]
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
        full = dl_len(ends, AIN) + dl_len(ends, AM) == frames
        if s >= 0:
            lst = which[s]
            if lst == AIN:
                hits += 1
                continue
            if lst == AM:
                hits += 1
                dl_to_head(links, ends, AM, s)
                continue
            # its key is in A1out: it leaves A1out, then, in its slot, enters Am
            dl_unlink(links, ends, AOUT, s)
            if full:
                _reclaim(buckets, skeys, links, ends, which, free, meta)
            if dl_len(ends, AM) >= frames - meta[KIN]:
                _forget_tail(buckets, skeys, links, ends, free, AM)
            dl_push_head(links, ends, AM, s)
            which[s] = AM
            continue
        empty = -1 - s                              # a new page, to A1in
        if full:
            hole = _reclaim(buckets, skeys, links, ends, which, free, meta)
            if hole >= 0:
                empty = ht_place(buckets, key, empty, hole)
        s = slot_take(links, free)
        ht_put(buckets, skeys, empty, key, s)
        dl_push_head(links, ends, AIN, s)
        which[s] = AIN
    return hits
