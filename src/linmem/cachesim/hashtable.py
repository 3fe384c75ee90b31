"""The key -> slot map of the policies: open addressing in numpy arrays.

A policy keeps its per-page state (list links, reference bits...) in arrays
indexed by a *slot*, a small integer, and the key of each slot in
``skeys[slot]``; this table finds the slot of a key. It holds only the keys
the policy tracks (the cached pages, and the ghosts of ARC, 2Q and LIRS),
never every key of the trace, so its size follows the cache, as
libCacheSim's does::

    buckets  int64[T]   hash << 32 | slot, or EMPTY (-1)
    skeys    int64[S]   the key of each of the S slots

    bucket:  63            32 31             0
            [ hash(key) >> 32 |      slot     ]

The upper half of a bucket is the upper half of the key's 64-bit hash
(Fibonacci hashing, key * 2**64/phi), which is also where the search for
the key starts: ``home = hash32 * T >> 32``. So a lookup compares 32 hash
bits before it reads the slot's key (a key is read only when its hash
matches, almost always the right one), and deleting recomputes the home of
an entry from the bucket alone, without touching its slot.

Linear probing from the home bucket; deletion by backward shift (Knuth
6.4, Algorithm R): the entries after a deleted bucket that may move back
do, so there are no tombstones and a search stops at the first empty
bucket. Entries move but slots never do, so nothing outside the table
changes when they move.

T = S / LOAD. At LOAD 0.55 a search probes 1.6 buckets on average when the
key is there and 3 when it is not, almost always in one cache line; the
table costs 8 / 0.55 + 8 = 22.5 bytes per slot. Every int64 key can be
tracked (EMPTY cannot be a bucket: slots are below 2**31).

The trace is known in advance, so a policy hides the memory latency of
its lookups by asking for them early: :func:`ht_prefetch` the bucket of
the key AHEAD requests on, :func:`ht_peek` the slot that bucket names
NEAR requests on (to prefetch the slot's own state), :func:`ht_prefetch_slot`
the bucket of a slot's key (the next victim's, before its eviction).
:func:`ht_lookup` leaves the empty bucket where a missing key would go, so
a miss inserts without searching again (:func:`ht_put`), even after an
eviction (:func:`ht_place`).
"""

from __future__ import annotations

import numpy as np

from linmem.cachesim.intrinsics import prefetch
from linmem.engine.jit import njit

EMPTY = np.int64(-1)
LOAD = 0.55
AHEAD = 16                                   # requests between a bucket's prefetch and use
NEAR = 4                                     # requests between a slot's prefetch and use
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)      # 2**64 / phi, odd
_LOW = np.int64(0xFFFFFFFF)


def new_table(slots: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty table for ``slots`` slots: (buckets, skeys)."""
    nbuckets = max(8, int(slots / LOAD) + 1)
    return np.full(nbuckets, EMPTY, np.int64), np.zeros(max(slots, 1), np.int64)


@njit
def hash32(key):
    """The upper 32 bits of the key's Fibonacci hash."""
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(32))


@njit
def home(h32, nbuckets):
    """The bucket where the search for a key of hash ``h32`` starts."""
    return (h32 * nbuckets) >> 32


@njit
def ht_lookup(buckets, skeys, key):
    """The slot of ``key`` (>= 0); if the table does not hold it, -1 - b for
    the empty bucket b where it would go (until the table changes)."""
    n = len(buckets)
    h = hash32(key)
    i = home(h, n)
    while True:
        b = buckets[i]
        if b == EMPTY:
            return -1 - i
        if ((b >> 32) & _LOW) == h and skeys[b & _LOW] == key:
            return b & _LOW
        i += 1
        if i == n:
            i = 0


@njit
def ht_put(buckets, skeys, bucket, key, slot):
    """Add ``key`` in ``slot`` at ``bucket``, the empty one ht_lookup named."""
    buckets[bucket] = (hash32(key) << 32) | slot
    skeys[slot] = key


@njit
def ht_insert(buckets, skeys, key, slot):
    """Add ``key`` (not in the table) in ``slot``."""
    n = len(buckets)
    h = hash32(key)
    i = home(h, n)
    while buckets[i] != EMPTY:
        i += 1
        if i == n:
            i = 0
    buckets[i] = (h << 32) | slot
    skeys[slot] = key


@njit
def ht_remove(buckets, skeys, slot):
    """Forget the key of ``slot`` (which holds one); later entries shift
    back. Returns the bucket left empty at the end of the shift."""
    n = len(buckets)
    h = hash32(skeys[slot])
    want = (h << 32) | slot
    hole = home(h, n)
    while buckets[hole] != want:
        hole += 1
        if hole == n:
            hole = 0
    j = hole
    while True:
        j += 1
        if j == n:
            j = 0
        b = buckets[j]
        if b == EMPTY:
            break
        k = home((b >> 32) & _LOW, n)
        # the entry at j may fill the hole unless its home lies cyclically
        # in (hole, j]: then it would sit before its home
        if (hole <= j and (k <= hole or k > j)) or (hole > j and k <= hole and k > j):
            buckets[hole] = b
            hole = j
    buckets[hole] = EMPTY
    return hole


@njit
def ht_place(buckets, key, empty, hole):
    """Where ``key`` goes after one removal: its lookup stopped at bucket
    ``empty`` before; the removal left only ``hole`` newly empty, so that is
    the place if it now comes first on the key's path, else ``empty``."""
    start = home(hash32(key), len(buckets))
    if start <= empty:
        return hole if start <= hole < empty else empty
    return hole if hole >= start or hole < empty else empty


def new_free(links: np.ndarray) -> np.ndarray:
    """The free slots of a policy whose tracked keys come and go (ghosts),
    chained through the 'next' links of ``links`` (see dlist: a free slot is
    on no list): returns the chain's head, ``free[0]``; all slots start free."""
    slots = len(links) // 2
    links[1::2] = np.arange(1, slots + 1)
    links[-1] = -1
    return np.zeros(1, np.int64)


@njit
def slot_take(links, free):
    """A free slot (there is one: the policy bounds what it tracks)."""
    s = free[0]
    free[0] = links[2 * s + 1]
    return s


@njit
def slot_forget(buckets, skeys, links, free, slot):
    """Forget the key of ``slot`` (on no list now) and free the slot; the
    bucket the removal left empty (see ht_place)."""
    hole = ht_remove(buckets, skeys, slot)
    links[2 * slot + 1] = free[0]
    free[0] = slot
    return hole


@njit
def ht_prefetch(buckets, keys, i):
    """Hint the processor to load the home bucket of ``keys[i]``, if any."""
    if i < len(keys):
        prefetch(buckets, home(hash32(keys[i]), len(buckets)))


@njit
def ht_peek(buckets, keys, i):
    """The slot named by the home bucket of ``keys[i]`` (most likely the
    key's, if the table holds it), or -1: for prefetching only."""
    if i >= len(keys):
        return -1
    b = buckets[home(hash32(keys[i]), len(buckets))]
    return -1 if b == EMPTY else b & _LOW


@njit
def ht_prefetch_slot(buckets, skeys, slot):
    """Hint the processor to load the home bucket of the key of ``slot``."""
    prefetch(buckets, home(hash32(skeys[slot]), len(buckets)))


class IdMap:
    """Numbers every distinct key of a trace 0, 1, 2... in order of first
    use, for the computations that need every key at once (OPT's next uses,
    miss-ratio curves). The same buckets as the policies' tables, with the
    id as the slot and ``idkeys[id]`` its key; nothing is removed, so ids
    stay. 22.5 bytes per key at LOAD, 34 just after growing by half."""

    def __init__(self, capacity: int = 1 << 16):
        self.buckets, self.idkeys = new_table(capacity)
        self.nids = np.zeros(1, np.int64)

    def __len__(self) -> int:
        return int(self.nids[0])

    @property
    def nbytes(self) -> int:
        return self.buckets.nbytes + self.idkeys.nbytes

    def ids(self, keys: np.ndarray) -> np.ndarray:
        """The ids (int32) of ``keys``, numbering the new ones."""
        need = len(self) + len(keys)
        if need > len(self.idkeys):
            self._grow(max(need, len(self.idkeys) * 3 // 2))
        out = np.empty(len(keys), np.int32)
        _number(keys, self.buckets, self.idkeys, self.nids, out)
        return out

    def _grow(self, capacity: int) -> None:
        buckets, idkeys = new_table(capacity)
        n = len(self)
        idkeys[:n] = self.idkeys[:n]
        _rehash(buckets, idkeys, n)
        self.buckets, self.idkeys = buckets, idkeys


@njit
def _number(keys, buckets, idkeys, nids, out):
    n = len(buckets)
    count = nids[0]
    for x in range(len(keys)):
        ht_prefetch(buckets, keys, x + AHEAD)
        key = keys[x]
        h = hash32(key)
        i = home(h, n)
        while True:
            b = buckets[i]
            if b == EMPTY:
                buckets[i] = (h << 32) | count
                idkeys[count] = key
                out[x] = count
                count += 1
                break
            if ((b >> 32) & _LOW) == h and idkeys[b & _LOW] == key:
                out[x] = b & _LOW
                break
            i += 1
            if i == n:
                i = 0
    nids[0] = count


@njit
def _rehash(buckets, idkeys, nids):
    for i in range(nids):
        ht_insert(buckets, idkeys, idkeys[i], i)
