"""Compiled walks for the invariant checks (mm/debug.py): the LRU lists."""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit
from linmem.engine.lru import NR_LRU_LISTS, folio_lru_list
from linmem.engine.memory import folio_nr


@njit
def walk_lru(M, seen):
    """Walk every LRU list of every lruvec: pages per (memcg, list), each
    folio's ``seen`` count raised. Returns (counts, the first folio found on
    the wrong list or in a cycle, or -1)."""
    nr_memcgs = M.lru_head.shape[0]
    counts = np.zeros((nr_memcgs, NR_LRU_LISTS), dtype=np.int64)
    limit = M.flags.shape[0]
    for cg in range(nr_memcgs):
        for lru in range(NR_LRU_LISTS):
            p = M.lru_head[cg, 0, lru]
            steps = 0
            while p >= 0:
                seen[p] += 1
                if folio_lru_list(M, p) != lru or M.memcg[p] != cg or steps > limit:
                    return counts, p
                counts[cg, lru] += folio_nr(M, p)
                p = M.nxt[p]
                steps += 1
    return counts, -1
