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

Every page is its id: the lists are linked through ``links`` (two int32
per distinct page) and ``which[id]`` names the list a page is on (NONE:
neither cached nor in A1out). The links and list of the page NEAR requests
on are asked for early.

State: 9 bytes per distinct page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import (dl_len, dl_pop_tail, dl_prefetch, dl_push_head, dl_to_head,
                                   dl_unlink, new_ends)
from linmem.engine.jit import hot, inline

AIN, AM, AOUT, NONE = 0, 1, 2, 3
FRAMES, KIN, KOUT = 0, 1, 2
PER_KEY = {0: (-1, 2), 2: (NONE, 1)}


def new_state(frames: int) -> tuple:
    kin, kout = max(1, frames // 4), frames // 2
    return (np.zeros(0, np.int32), new_ends(3), np.zeros(0, np.uint8),
            np.array([frames, kin, kout], np.int64))


@inline
def _reclaim(links, ends, which, meta):
    """Free a frame: the tail of A1in if it is over Kin (its key to A1out),
    else the tail of Am."""
    if dl_len(ends, AIN) <= meta[KIN]:
        _forget_tail(links, ends, which, AM)
        return
    s = dl_pop_tail(links, ends, AIN)
    if meta[KOUT] == 0:
        which[s] = NONE
        return
    if dl_len(ends, AOUT) == meta[KOUT]:
        _forget_tail(links, ends, which, AOUT)
    dl_push_head(links, ends, AOUT, s)
    which[s] = AOUT


@inline
def _forget_tail(links, ends, which, lst):
    which[dl_pop_tail(links, ends, lst)] = NONE


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    links, ends, which, meta = state
    frames = meta[FRAMES]
    hits = 0
    for i in range(len(ids)):
        dl_prefetch(links, which, ids, i)
        s = ids[i]
        lst = which[s]
        if lst == AIN:
            hits += 1
            continue
        if lst == AM:
            hits += 1
            dl_to_head(links, ends, AM, s)
            continue
        full = dl_len(ends, AIN) + dl_len(ends, AM) == frames
        if lst == AOUT:
            # its key is in A1out: it leaves A1out, then enters Am
            dl_unlink(links, ends, AOUT, s)
            if full:
                _reclaim(links, ends, which, meta)
            if dl_len(ends, AM) >= frames - meta[KIN]:
                _forget_tail(links, ends, which, AM)
            dl_push_head(links, ends, AM, s)
            which[s] = AM
            continue
        if full:                                    # a new page, to A1in
            _reclaim(links, ends, which, meta)
        dl_push_head(links, ends, AIN, s)
        which[s] = AIN
    return hits
