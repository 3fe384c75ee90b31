"""Page frames: the model of ``struct page`` / ``struct folio`` as arrays.

Linux describes every 4 KiB physical page frame with a ``struct page`` (64 bytes
on x86-64) kept in the memmap. linmem keeps the same facts as a *struct of
arrays*, one numpy array per field, indexed by page frame number (pfn), so that
a 64 GiB machine (16 M frames) is a handful of arrays rather than 16 M objects,
and the compiled kernels in ``linmem.engine`` can walk them::

    field     dtype   bytes  kernel counterpart
    flags     uint32    4    page->flags (PG_*) and the page type (PG_buddy)
    refcount  int32     4    page->_refcount
    mapcount  int32     4    page->_mapcount + 1 (0 = unmapped)
    lru_next  int32     4    page->lru.next   \\ one list link at a time: LRU list,
    lru_prev  int32     4    page->lru.prev   / buddy free list or pcp list
    mapping   int32     4    page->mapping (file / anon identity, by id)
    index     int32     4    page->index (page offset in the file or VMA)
    memcg     uint16    2    folio->memcg_data (memcg id, valid with PG_memcg)
    order     int8      1    buddy order of a free block, folio order of a head
                     ------
                       31 bytes per frame (the budget is 32)

With swap on, one more array (``KernelState.swp``, made at the first swapon)
holds folio->swap, the swap slot + 1 of a swap-cache folio: 4 bytes more.

A frame is in exactly one of these states, which ``check_invariants`` verifies:
reserved (``PG_reserved``: a firmware hole or memory memblock kept at boot),
free in a buddy block (the head has ``PG_buddy`` and the block's order; the
other frames of the block carry nothing), free on a per-cpu list (``PG_pcp``), or
allocated (refcount > 0 on the head of the allocation).

Like the kernel's list_head, ``lru_next``/``lru_prev`` serve whichever list the
frame is on; -1 ends a list. Pageblock migratetypes live in their own array,
one byte per 2 MiB pageblock (``pageblock_flags`` in the kernel).

Deviations from Linux: tail pages of a buddy block are not marked (the kernel
leaves them alone too, but zeroes them with ``__ClearPageBuddy`` on split);
``PG_pcp`` is linmem's own marker, the kernel identifies pcp pages by context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Page flags (include/linux/page-flags.h enum pageflags), in the kernel's order
# where they exist; PG_buddy stands for the PGTY_buddy page type.
PG_locked = 1 << 0
PG_referenced = 1 << 1
PG_uptodate = 1 << 2
PG_dirty = 1 << 3
PG_lru = 1 << 4
PG_head = 1 << 5
PG_waiters = 1 << 6
PG_active = 1 << 7
PG_workingset = 1 << 8
PG_owner_priv_1 = 1 << 9
PG_memcg = 1 << 10       # linmem: folio->memcg_data set (charged to memcg[pfn])
PG_reserved = 1 << 12
PG_private = 1 << 13
PG_writeback = 1 << 15
PG_reclaim = 1 << 16
PG_swapbacked = 1 << 17
PG_unevictable = 1 << 18
PG_mlocked = 1 << 19
PG_swapcache = 1 << 20
PG_anon = 1 << 21        # PageAnon: folio->mapping & PAGE_MAPPING_ANON
# The multi-gen LRU keeps a folio's generation (gen + 1, 0 = none) and its
# access count through file descriptors in the flags (page-flags-layout.h).
LRU_GEN_PGOFF, LRU_GEN_WIDTH = 22, 3
LRU_GEN_MASK = ((1 << LRU_GEN_WIDTH) - 1) << LRU_GEN_PGOFF
LRU_REFS_PGOFF, LRU_REFS_WIDTH = 25, 2
LRU_REFS_MASK = ((1 << LRU_REFS_WIDTH) - 1) << LRU_REFS_PGOFF
PG_buddy = 1 << 28       # page type: head of a free buddy block
PG_pcp = 1 << 29         # linmem: free, on a per-cpu page list
PG_slab = 1 << 30        # page type: slab page
PG_table = 1 << 31       # page type: page-table page

FLAG_NAMES = {
    PG_locked: "locked", PG_referenced: "referenced", PG_uptodate: "uptodate",
    PG_dirty: "dirty", PG_lru: "lru", PG_head: "head", PG_waiters: "waiters",
    PG_active: "active", PG_workingset: "workingset", PG_owner_priv_1: "owner_priv_1",
    PG_memcg: "memcg",
    PG_reserved: "reserved", PG_private: "private", PG_writeback: "writeback",
    PG_reclaim: "reclaim", PG_swapbacked: "swapbacked", PG_unevictable: "unevictable",
    PG_mlocked: "mlocked", PG_swapcache: "swapcache", PG_anon: "anon",
    PG_buddy: "buddy", PG_pcp: "pcp", PG_slab: "slab", PG_table: "table",
}

NO_PFN = -1

FIELDS = (
    ("flags", np.uint32),
    ("refcount", np.int32),
    ("mapcount", np.int32),
    ("lru_next", np.int32),
    ("lru_prev", np.int32),
    ("mapping", np.int32),
    ("index", np.int32),
    ("memcg", np.uint16),
    ("order", np.int8),
)

BYTES_PER_FRAME = sum(np.dtype(dt).itemsize for _, dt in FIELDS)


@dataclass(eq=False)
class FrameTable:
    """The memmap: one entry per page frame, as parallel numpy arrays.

    Arrays are created with ``np.zeros``, so the operating system backs them
    lazily: a frame that is never touched (free memory in the middle of a big
    buddy block) costs no resident memory of the simulator.
    """

    nr_frames: int
    flags: np.ndarray
    refcount: np.ndarray
    mapcount: np.ndarray
    lru_next: np.ndarray
    lru_prev: np.ndarray
    mapping: np.ndarray
    index: np.ndarray
    memcg: np.ndarray
    order: np.ndarray

    @classmethod
    def zeros(cls, nr_frames: int) -> "FrameTable":
        if nr_frames >= 2**31:
            raise ValueError(f"{nr_frames} frames do not fit 32-bit frame numbers")
        arrays = {name: np.zeros(nr_frames, dtype=dt) for name, dt in FIELDS}
        return cls(nr_frames=nr_frames, **arrays)

    def nbytes(self) -> int:
        """Bytes of the arrays (virtual size; resident size is what was touched)."""
        return sum(getattr(self, name).nbytes for name, _ in FIELDS)

    def flag_names(self, pfn: int) -> list[str]:
        """Names of the flags set on frame ``pfn``, for messages and debugging."""
        value = int(self.flags[pfn])
        return [name for bit, name in FLAG_NAMES.items() if value & bit]
