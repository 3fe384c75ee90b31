"""Doubly linked lists of pages in one numpy array, as the policies use them.

A page is its id (:mod:`linmem.cachesim.idmap`). ``links[2*s]`` is the page
before ``s`` (towards the head), ``links[2*s+1]`` the page after it
(towards the tail), -1 at the ends; the two are adjacent so one cache line
serves both. A policy may keep several lists (ARC's T1,
T2, B1, B2) in the same ``links``: list ``l`` has its head in ``ends[2*l]``
and its tail in ``ends[2*l+1]`` and its length in ``ends[2*L+l]`` for a
policy with L lists (see :func:`new_ends`). A page is on at most one list.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import inline, njit

NEAR = 16                               # requests between a page's prefetch and its use


def new_ends(nlists: int) -> np.ndarray:
    """Head, tail (-1: empty) and length of ``nlists`` lists."""
    ends = np.zeros(4 * nlists, np.int64)
    ends[:2 * nlists] = -1
    return ends


@inline
def dl_len(ends, lst):
    return ends[len(ends) // 2 + lst]


@inline
def dl_head(ends, lst):
    return ends[2 * lst]


@inline
def dl_tail(ends, lst):
    return ends[2 * lst + 1]


@inline
def dl_unlink(links, ends, lst, s):
    """Take page ``s`` off list ``lst``."""
    p = links[2 * s]
    n = links[2 * s + 1]
    if p >= 0:
        links[2 * p + 1] = n
    else:
        ends[2 * lst] = n
    if n >= 0:
        links[2 * n] = p
    else:
        ends[2 * lst + 1] = p
    ends[len(ends) // 2 + lst] -= 1


@inline
def dl_push_head(links, ends, lst, s):
    """Put page ``s`` at the head of list ``lst``."""
    h = ends[2 * lst]
    links[2 * s] = -1
    links[2 * s + 1] = h
    if h >= 0:
        links[2 * h] = s
    else:
        ends[2 * lst + 1] = s
    ends[2 * lst] = s
    ends[len(ends) // 2 + lst] += 1


@inline
def dl_pop_tail(links, ends, lst):
    """Take the page at the tail of list ``lst`` (not empty) off it; that page."""
    s = ends[2 * lst + 1]
    dl_unlink(links, ends, lst, s)
    return s


@inline
def dl_to_head(links, ends, lst, s):
    """Move page ``s``, on list ``lst``, to its head."""
    if ends[2 * lst] != s:
        dl_unlink(links, ends, lst, s)
        dl_push_head(links, ends, lst, s)


@inline
def dl_prefetch(links, flags, ids, i):
    """Ask early for the links and the flags (or list) of the page NEAR
    requests after request ``i``, if there is one."""
    if i + NEAR < len(ids):
        x = ids[i + NEAR]
        prefetch(links, 2 * x)
        prefetch(flags, x)
