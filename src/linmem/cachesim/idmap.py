"""Numbering a trace's keys: every distinct key gets an id, 0, 1, 2... in
order of first use, so that the policies keep their per-page state in
plain arrays indexed by id.

A key is any int64 (a page number, an object id); an id is an int32. The
map is an open-addressing table of buckets in one uint32 array, each
bucket the key and its id. While every key seen fits in 32 bits (page
numbers below 16 TiB, small object ids), a bucket is two words; the first
key that does not makes the table *wide*, three words a bucket, and every
key is placed again::

    narrow   table uint32[2 T]   bucket j: [key            | id]
    wide     table uint32[3 T]   bucket j: [key low | key high | id]
             id == EMPTY (2**32 - 1): the bucket is free

    home(key) = (hash32(key) * T) >> 32      hash32: the upper half of
                                             key * 2**64/phi (Fibonacci)

A lookup starts at the key's home bucket and probes linearly until it
finds the key (its id) or a free bucket (a new key: it takes the next id
there). Nothing is ever removed, so there are no tombstones and a search
stops at the first free bucket. The key and its id share the bucket: one
cache line (rarely two), and the lookup of the request ``AHEAD`` positions
on is asked for early (a prefetch), so the processor fetches many buckets
at once instead of waiting for each.

The table grows by half (every key is placed again) before a piece of a
chunk could take it past LOAD = 3/4 full: between 1/2 and 3/4 full, that is 10.7 to 16
bytes per key narrow, 16 to 24 wide. Placing again is cheap: a key's home
scales with the table, so the old table, read in order, gives the keys
nearly in the order of their new homes (0.04 s for the 19 growths to 1.9 M
keys, 5.7 M placements). At 3/4 a lookup probes 2.5 buckets on
average when the key is there and 8.5 when it is new.
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import hot, inline


EMPTY = np.uint32(0xFFFFFFFF)
LOAD = 0.75
AHEAD = 64                                   # requests between a bucket's prefetch and its use
NARROW, WIDE = 2, 3                          # words per bucket
MIN_PIECE = 1 << 8                           # keys numbered at a time, at least
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)      # 2**64 / phi, odd
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def new_table(buckets: int, words: int) -> np.ndarray:
    """An empty table of ``buckets`` buckets of ``words`` words."""
    return np.full(words * max(buckets, 8), EMPTY, np.uint32)


@inline
def home(key, nbuckets):
    """The bucket where the search for ``key`` starts: the upper half of its
    Fibonacci hash, scaled to the table."""
    h = (np.uint64(key) * _GOLDEN) >> _SHIFT32
    return np.int64((h * np.uint64(nbuckets)) >> _SHIFT32)


@inline
def _find_or_add(table, words, key, nids):
    """The id of ``key``; if the table lacks it, it is added with id ``nids``."""
    nbuckets = len(table) // words
    lo = np.uint32(np.uint64(key) & _MASK32)
    hi = np.uint32(np.uint64(key) >> _SHIFT32)
    j = home(key, nbuckets)
    while True:
        b = words * j
        found = table[b + words - 1]
        if found == EMPTY:
            table[b] = lo
            if words == WIDE:
                table[b + 1] = hi
            table[b + words - 1] = np.uint32(nids)
            return nids
        if table[b] == lo and (words == NARROW or table[b + 1] == hi):
            return np.int64(found)
        j += 1
        if j == nbuckets:
            j = 0


@hot
def number_narrow(keys, table, nids, out):
    """``out[i]``: the id of ``keys[i]``, numbering the new keys from
    ``nids[0]`` on (updated). The table has room for every key added, and
    every key fits in 32 bits."""
    _number(keys, table, NARROW, nids, out)


@hot
def number_wide(keys, table, nids, out):
    """:func:`number_narrow` for a wide table."""
    _number(keys, table, WIDE, nids, out)


@inline
def _number(keys, table, words, nids, out):
    nbuckets = len(table) // words
    count = nids[0]
    n = len(keys)
    for i in range(n):
        if i + AHEAD < n:
            j = words * home(keys[i + AHEAD], nbuckets)
            prefetch(table, j)
            prefetch(table, j + words - 1)
        found = _find_or_add(table, words, keys[i], count)
        if found == count:
            count += 1
        out[i] = found
    nids[0] = count


@hot
def fits_narrow(keys):
    """Whether every key is in [0, 2**32)."""
    for k in keys:
        if k < 0 or k > 0xFFFFFFFF:
            return False
    return True


@hot
def _rehash(old, old_words, table, words):
    """Place every key of the table ``old`` in the empty ``table``. The
    home of a key is its hash scaled to the table, so the keys come out of
    ``old`` nearly in the order of their homes in ``table``: the writes
    move forward through it, and need no prefetch. The keys are distinct,
    so each goes to the first free bucket from its home, unread."""
    nbuckets = len(table) // words
    for b in range(0, len(old), old_words):
        found = old[b + old_words - 1]
        if found == EMPTY:
            continue
        key = _key(old, b, old_words)
        j = home(key, nbuckets)
        while table[words * j + words - 1] != EMPTY:
            j = j + 1 if j + 1 < nbuckets else 0
        t = words * j
        table[t] = old[b]
        if words == WIDE:
            table[t + 1] = np.uint32(np.uint64(key) >> _SHIFT32)
        table[t + words - 1] = found


@inline
def _key(table, b, words):
    """The key in bucket word ``b`` of a table of ``words``-word buckets."""
    hi = np.uint64(table[b + 1]) if words == WIDE else np.uint64(0)
    return np.int64(np.uint64(table[b]) | (hi << _SHIFT32))


class IdMap:
    """Numbers every distinct key of a trace 0, 1, 2... in order of first
    use (the same keys get the same ids in every chunk)."""

    def __init__(self, capacity: int = 1 << 10):
        self.words = NARROW
        self.table = new_table(int(capacity / LOAD) + 1, self.words)
        self.nids = np.zeros(1, np.int64)

    def __len__(self) -> int:
        return int(self.nids[0])

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    @property
    def buckets(self) -> int:
        return len(self.table) // self.words

    def ids(self, keys: np.ndarray) -> np.ndarray:
        """The ids (int32) of ``keys`` (int64), numbering the new ones."""
        keys = np.ascontiguousarray(keys, np.int64)
        if self.words == NARROW and not fits_narrow(keys):
            self._rebuild(self.buckets, WIDE)
        out = np.empty(len(keys), np.int32)
        done = 0
        while done < len(keys):
            # numbered in pieces the table has room for even if every key is new
            room = int(LOAD * self.buckets) - len(self)
            if room < min(len(keys) - done, MIN_PIECE):
                self._rebuild(self.buckets * 3 // 2, self.words)
                continue
            piece = slice(done, done + min(room, len(keys) - done))
            (number_narrow if self.words == NARROW else number_wide)(
                keys[piece], self.table, self.nids, out[piece])
            done = piece.stop
        if len(self) > np.iinfo(np.int32).max:
            raise OverflowError("more than 2**31 - 1 distinct keys")
        return out

    def _rebuild(self, buckets: int, words: int) -> None:
        table = new_table(buckets, words)
        _rehash(self.table, self.words, table, words)
        self.table, self.words = table, words
