"""LIRS: Low Inter-reference Recency Set (Jiang and Zhang, SIGMETRICS 2002).

A page's IRR is the number of other pages used between its last two uses.
Pages of low IRR (LIR) keep almost all the frames (Llirs of them); the
others (HIR) share the rest (Lhirs = 1% of the frames, at least 1), and a
HIR page that is used again while its last use is recent enough, that is
while it is still in the stack S, becomes LIR and pushes the least recent
LIR page out to HIR::

    S (recency stack: LIR pages, and HIR pages used since the bottom LIR)
      top [h5r] [L2] [h7n] [L9] [h3r] [L4] bottom       bottom always LIR
    Q (the resident HIR pages, front evicted first)
      end [h5r] [h3r] [h1r] front                       r resident, n not

    hit on LIR X           X to the top of S; prune if it was the bottom
    hit on resident HIR X  in S: X becomes LIR, leaves Q; the bottom LIR
                           goes to the end of Q as HIR; prune.
                           not in S: X to the top of S and the end of Q.
    miss on X              the front of Q is evicted (still in S: kept
                           there, non-resident). X to the top of S; if X
                           was in S it becomes LIR and the bottom LIR goes
                           to Q as HIR, prune; else X is HIR, end of Q.
    prune                  drop the HIR pages at the bottom of S until a
                           LIR page is there (non-resident ones are forgotten)

Until Llirs pages are LIR every new page becomes LIR, then new pages are
resident HIR until the frames are full (section 3.3 of the paper).

The paper leaves the number of non-resident pages in S unbounded; like
libCacheSim's LIRS, linmem keeps S at most 2 x frames entries by
forgetting the non-resident page that became non-resident first. (This is
not libCacheSim's LIRS, which departs from the paper elsewhere, so miss
counts differ; tests/test_cachesim.py checks the paper's rules on
hand-made sequences, including its figure's example.)

Every page is its id: S is linked through ``links_s``, Q and the list of
the non-resident pages in S (oldest first out) through ``links_q`` (two
int32 per distinct page each), and ``flags[id]`` holds IN_S, LIR and
RESIDENT (0: a page LIRS does not track). The links and flags of the page
NEAR requests on are asked for early.

State: 17 bytes per distinct page.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.dlist import (dl_len, dl_pop_tail, dl_prefetch, dl_push_head, dl_tail,
                                   dl_to_head, dl_unlink, new_ends)
from linmem.engine.jit import hot, inline

MIN_FRAMES = 2
IN_S, LIR, RESIDENT = 1, 2, 4           # flags (cleared with ^= where known set)
S = 0                                   # the stack, on links_s / ends_s
Q, NR = 0, 1                            # resident HIR, non-resident in S: links_q / ends_q
FRAMES, LLIRS, NLIR = 0, 1, 2
PER_KEY = {0: (-1, 2), 2: (-1, 2), 4: (0, 1)}


def new_state(frames: int) -> tuple:
    if frames < MIN_FRAMES:
        raise ValueError(f"LIRS needs at least {MIN_FRAMES} frames, got {frames}")
    lhirs = max(1, frames // 100)
    return (np.zeros(0, np.int32), new_ends(1), np.zeros(0, np.int32), new_ends(2),
            np.zeros(0, np.uint8), np.array([frames, frames - lhirs, 0], np.int64))


@inline
def _prune(links_s, ends_s, links_q, ends_q, flags):
    """Drop the HIR pages at the bottom of S until a LIR page is there."""
    while dl_len(ends_s, S) > 0:
        b = dl_tail(ends_s, S)
        if flags[b] & LIR:
            return
        dl_unlink(links_s, ends_s, S, b)
        flags[b] ^= IN_S
        if not flags[b] & RESIDENT:
            dl_unlink(links_q, ends_q, NR, b)
            flags[b] = 0


@inline
def _demote_bottom(links_s, ends_s, links_q, ends_q, flags):
    """The LIR page at the bottom of S becomes HIR, at the end of Q (it is
    then an HIR page at the bottom of S: the pruning that follows drops it)."""
    b = dl_tail(ends_s, S)
    flags[b] ^= LIR
    dl_push_head(links_q, ends_q, Q, b)


@hot
def replay(ids, state):
    """Replay ``ids``; the number of hits."""
    links_s, ends_s, links_q, ends_q, flags, meta = state
    frames = meta[FRAMES]
    hits = 0
    for i in range(len(ids)):
        dl_prefetch(links_s, flags, ids, i)
        x = ids[i]
        f = flags[x]
        if f & LIR:
            hits += 1
            bottom = dl_tail(ends_s, S) == x
            dl_to_head(links_s, ends_s, S, x)
            if bottom:
                _prune(links_s, ends_s, links_q, ends_q, flags)
            continue
        if f & RESIDENT:
            hits += 1
            if f & IN_S:
                dl_to_head(links_s, ends_s, S, x)
                dl_unlink(links_q, ends_q, Q, x)
                flags[x] = f | LIR
                _demote_bottom(links_s, ends_s, links_q, ends_q, flags)
                _prune(links_s, ends_s, links_q, ends_q, flags)
            else:
                dl_push_head(links_s, ends_s, S, x)
                flags[x] = f | IN_S
                dl_to_head(links_q, ends_q, Q, x)
            continue
        # a miss: make room, then X is LIR (warming up, or back within S) or HIR
        if meta[NLIR] + dl_len(ends_q, Q) == frames:
            y = dl_pop_tail(links_q, ends_q, Q)
            if flags[y] & IN_S:
                flags[y] ^= RESIDENT
                dl_push_head(links_q, ends_q, NR, y)
            else:
                flags[y] = 0
        if flags[x]:                                # non-resident, in S
            dl_unlink(links_q, ends_q, NR, x)
            dl_to_head(links_s, ends_s, S, x)
            flags[x] = IN_S | LIR | RESIDENT
            _demote_bottom(links_s, ends_s, links_q, ends_q, flags)
            _prune(links_s, ends_s, links_q, ends_q, flags)
        else:
            dl_push_head(links_s, ends_s, S, x)
            if meta[NLIR] < meta[LLIRS]:
                flags[x] = IN_S | LIR | RESIDENT
                meta[NLIR] += 1
            else:
                flags[x] = IN_S | RESIDENT
                dl_push_head(links_q, ends_q, Q, x)
        while dl_len(ends_s, S) > 2 * frames and dl_len(ends_q, NR) > 0:
            y = dl_pop_tail(links_q, ends_q, NR)
            dl_unlink(links_s, ends_s, S, y)
            flags[y] = 0
    return hits
