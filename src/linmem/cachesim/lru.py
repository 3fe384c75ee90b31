"""LRU: evict the page used least recently.

One list, the most recently used page at its head::

    head                                   tail
    [k7] <-> [k3] <-> [k9] <-> ... <-> [k1]      full: a miss evicts k1
     ^ a hit moves its page here; a miss inserts here

Cross-checked: miss counts equal libCacheSim's ``LRU`` (tests/test_cachesim.py
on small traces, benchmarks/vs_libcachesim.py on 10 M requests). State:
the table (21.3 bytes per slot) and the links (8): 29.3 bytes per frame.
"""

from __future__ import annotations

from linmem.cachesim.dlist import dl_push_head, dl_tail, dl_to_head, dl_unlink, new_ends, new_links
from linmem.cachesim.hashtable import AHEAD, ht_find, ht_insert, ht_prefetch, ht_remove, new_table
from linmem.engine.jit import njit


def new_state(frames: int) -> tuple:
    return (*new_table(frames), new_links(frames), new_ends(1))


@njit
def replay(keys, state):
    """Replay ``keys``; the number of hits."""
    buckets, skeys, links, ends = state
    frames = len(skeys)
    hits = 0
    for i in range(len(keys)):
        ht_prefetch(buckets, keys, i + AHEAD)
        key = keys[i]
        s = ht_find(buckets, skeys, key)
        if s >= 0:
            hits += 1
            dl_to_head(links, ends, 0, s)
            continue
        used = ends[2]
        if used < frames:
            s = used
        else:
            s = dl_tail(ends, 0)
            dl_unlink(links, ends, 0, s)
            ht_remove(buckets, skeys, s)
        ht_insert(buckets, skeys, key, s)
        dl_push_head(links, ends, 0, s)
    return hits
