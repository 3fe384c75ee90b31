"""A small model of glibc malloc (ptmalloc2) on top of brk and mmap.

Enough of glibc's rules to put allocations where glibc puts them (malloc/
malloc.c, x86-64, glibc 2.36):

* a chunk is the request plus 8 bytes of header, rounded up to 16 bytes
  (at least 32);
* requests of at least ``mmap_threshold`` (128 KiB, M_MMAP_THRESHOLD) get
  their own anonymous mapping (sysmalloc -> mmap), the chunk plus 8 bytes
  rounded up to pages; free() unmaps it;
* smaller ones are cut from the top of the main arena, in the brk heap; when
  the top chunk is too small the heap grows by what is missing plus
  ``top_pad`` (128 KiB, M_TOP_PAD), rounded to pages (sbrk);
* free() of a heap chunk makes it reusable; when the free space at the top
  exceeds ``trim_threshold`` (128 KiB) the heap shrinks back to keep
  ``top_pad`` (systrim).

Deviations from glibc (``XXX``): free heap chunks are reused first-fit
without bins, tcache or consolidation order; the dynamic mmap threshold
(raised when a mapped chunk is freed) is not modelled; one arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIZE_SZ = 8
MALLOC_ALIGNMENT = 16
MINSIZE = 32
MMAP_THRESHOLD = 128 << 10
TOP_PAD = 128 << 10
TRIM_THRESHOLD = 128 << 10
PAGE = 4096


def request2size(n: int) -> int:
    """malloc.c:request2size: the chunk size for an n-byte request."""
    size = (n + SIZE_SZ + MALLOC_ALIGNMENT - 1) & ~(MALLOC_ALIGNMENT - 1)
    return max(size, MINSIZE)


def _pages(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


@dataclass
class Allocation:
    addr: int
    size: int          # chunk size
    mmapped: bool


@dataclass
class Arena:
    """The main arena: the brk heap, its top chunk and free chunks."""

    heap_start: int = 0          # start_brk when the arena was first used
    top: int = 0                 # address of the top chunk
    end: int = 0                 # current brk
    free_chunks: list[tuple[int, int]] = field(default_factory=list)   # (addr, size)


class Libc:
    """malloc/free of one process, calling back into its brk and mmap."""

    def __init__(self, sbrk, mmap, munmap):
        self.sbrk = sbrk              # sbrk(increment) -> old break, raises on ENOMEM
        self.mmap = mmap              # mmap(length) -> address
        self.munmap = munmap          # munmap(addr, length)
        self.arena = Arena()

    def malloc(self, n: int) -> Allocation:
        """Models __libc_malloc for one arena."""
        nb = request2size(n)
        if nb >= MMAP_THRESHOLD:
            length = _pages(nb + SIZE_SZ)
            return Allocation(self.mmap(length), length, True)
        for i, (addr, size) in enumerate(self.arena.free_chunks):
            if size >= nb:
                del self.arena.free_chunks[i]
                if size - nb >= MINSIZE:
                    self.arena.free_chunks.insert(i, (addr + nb, size - nb))
                return Allocation(addr, nb, False)
        return Allocation(self._from_top(nb), nb, False)

    def _from_top(self, nb: int) -> int:
        """Models sysmalloc's main-arena path: extend the heap with sbrk."""
        a = self.arena
        if a.end == 0:
            a.heap_start = a.top = a.end = self.sbrk(0)
        if a.end - a.top < nb + MINSIZE:
            grow = _pages(nb + MINSIZE - (a.end - a.top) + TOP_PAD)
            self.sbrk(grow)
            a.end += grow
        addr = a.top
        a.top += nb
        return addr

    def free(self, alloc: Allocation) -> None:
        """Models __libc_free: munmap a mapped chunk; else reuse, and trim the top."""
        if alloc.mmapped:
            self.munmap(alloc.addr, alloc.size)
            return
        a = self.arena
        if alloc.addr + alloc.size == a.top:
            a.top = alloc.addr
            while a.free_chunks and sum(a.free_chunks[-1]) == a.top:
                a.top = a.free_chunks.pop()[0]
        else:
            a.free_chunks.append((alloc.addr, alloc.size))
            a.free_chunks.sort()
        self._systrim()

    def _systrim(self) -> None:
        """Models systrim(): give back whole pages above top + top_pad."""
        a = self.arena
        if a.end - a.top <= TRIM_THRESHOLD:
            return
        extra = (a.end - a.top - TOP_PAD - 1) & ~(PAGE - 1)
        if extra > 0:
            self.sbrk(-extra)
            a.end -= extra
