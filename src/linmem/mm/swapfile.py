"""Swap areas: swapon, swapoff and /proc/swaps (mm/swapfile.c).

swapon(2) adds an area: a swapfile on the disk's file system, a partition,
or a zram device (compressed RAM, a synchronous device: no readahead, every
swap-in a major fault). An area of N pages has N - 1 slots (the first page
is the swap header). Its priority is the one given (-1 ... 32767), or, when
none is, the next of -2, -3, ... (least_priority). Slots are taken from the
highest priority area with room first, areas of equal priority taking turns
cluster by cluster (linmem.engine.swapfile). SwapTotal and SwapFree are the
sums over the areas that are on; the commit limit includes SwapTotal.

swapoff(2) brings every page of the area back into memory (try_to_unuse:
each swap entry in every address space is read and mapped again, and the
swap cache of the area is dropped) and then removes it; with too little
memory it fails with ENOMEM and the area stays on. Taking away an area of
negative priority moves the areas below it up by one (-3 becomes -2), as
the kernel does; an area that failed to go is put back with a new, lowest
default priority.

XXX: when memory runs out during try_to_unuse, the kernel's OOM killer
chooses the swapoff task itself (set_current_oom_origin) and swapoff fails
with EINTR; linmem kills nothing and fails with ENOMEM (Kernel.try_to_unuse).

The compiled state: ``K.si`` (a row per area and one machine-wide row),
``K.swap_map`` (each slot's count), ``K.swap_cache`` and ``K.swap_shadow``
(per slot), ``K.swp`` (per frame). An area's slots are a range of the global
numbering, never reused by another area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linmem.engine import swapfile as SW

PAGE_SIZE = 4096


class SwapError(Exception):
    """swapon/swapoff refused: ``errno`` names why."""

    def __init__(self, errno: str, message: str):
        super().__init__(message)
        self.errno = errno


@dataclass
class SwapArea:
    """One active area (swap_info_struct), as /proc/swaps lists it."""

    path: str
    kind: str            # file | partition | zram
    row: int             # its si row (the swap type)
    pages: int           # usable slots (si->pages)
    priority: int


class Swap:
    """The machine's swap areas."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.machine = kernel.machine
        self.K = kernel.mem.K
        self.areas: dict[str, SwapArea] = {}
        self.least_priority = -1

    # ------------------------------------------------------------ state

    def _grow(self, slots: int) -> int:
        """Room for ``slots`` more global slots; the first one's number."""
        K = self.K
        base = K.swap_map.shape[0]
        if K.swp.shape[0] == 0:
            K.replace(swp=np.zeros(K.flags.shape[0], dtype=np.int32))
        K.replace(swap_map=np.concatenate([K.swap_map, np.zeros(slots, dtype=np.uint8)]),
                  swap_cache=np.concatenate([K.swap_cache, np.zeros(slots, dtype=np.int32)]),
                  swap_shadow=np.concatenate([K.swap_shadow, np.zeros(slots, dtype=np.int64)]),
                  swap_cgroup=np.concatenate([K.swap_cgroup, np.zeros(slots, dtype=np.uint16)]))
        return base

    @property
    def total_pages(self) -> int:
        return int(self.K.si[SW.G_ROW, SW.G_TOTAL])

    @property
    def free_pages(self) -> int:
        return int(self.K.si[SW.G_ROW, SW.G_NR_FREE])

    @property
    def sync_reads(self) -> int:
        """Pages read from synchronous areas (zram) since boot."""
        return int(self.K.si[SW.G_ROW, SW.G_SYNC_IN])

    def used_pages(self, area: SwapArea) -> int:
        """swap_usage_in_pages(): the slots in use."""
        return int(self.K.si[area.row, SW.SI_INUSE])

    def set_page_cluster(self, value: int) -> None:
        self.K.si[SW.G_ROW, SW.G_PAGE_CLUSTER] = value

    # ----------------------------------------------------------- swapon

    def swapon(self, path: str, size: int, priority: int | None = None,
               kind: str = "file") -> SwapArea:
        """Models sys_swapon(): a new area of ``size`` bytes (mkswap'ed)."""
        si = self.K.si
        if path in self.areas:
            raise SwapError("EBUSY", f"swapon {path}: already in use")
        free_rows = [r for r in range(SW.MAX_SWAPFILES) if not si[r, SW.SI_FLAGS] & SW.SWP_USED]
        if not free_rows:
            raise SwapError("EPERM", f"swapon {path}: {SW.MAX_SWAPFILES} areas already")
        nr = size // PAGE_SIZE
        if nr < 10:
            raise SwapError("EINVAL", f"swapon {path}: an area needs at least 10 pages")
        if priority is None:
            self.least_priority -= 1
            priority = self.least_priority
        row = free_rows[0]
        base = self._grow(nr)
        self.K.swap_map[base] = SW.SWAP_MAP_BAD                # the header
        flags = SW.SWP_USED | SW.SWP_WRITEOK
        if kind == "zram":
            flags |= SW.SWP_SYNCHRONOUS_IO
        elif kind == "file":
            flags |= SW.SWP_FILE
        si[row] = 0
        si[row, SW.SI_BASE], si[row, SW.SI_MAX] = base, nr
        si[row, SW.SI_PRIO], si[row, SW.SI_FLAGS] = priority, flags
        si[row, SW.SI_INUSE] = 1                                # the header counts as in use
        si[SW.G_ROW, SW.G_SEQ] += 1
        si[row, SW.SI_SEQ] = si[SW.G_ROW, SW.G_SEQ]
        si[SW.G_ROW, SW.G_NR_FREE] += nr - 1
        si[SW.G_ROW, SW.G_TOTAL] += nr - 1
        area = SwapArea(path, kind, row, nr - 1, priority)
        self.areas[path] = area
        return area

    # ---------------------------------------------------------- swapoff

    def swapoff(self, path: str, total_vm: int = 0) -> None:
        """Models sys_swapoff(): every page of the area comes back into
        memory (try_to_unuse), then the area goes.

        ENOMEM, the area staying on, when the commit check refuses the
        area's pages (security_vm_enough_memory_mm with the caller's
        ``total_vm``: only with vm.overcommit_memory 2), or when memory runs
        out bringing them back. Removing an area of negative priority raises
        the priority of each area below it by one (and least_priority); an
        area put back after a failure gets a new one (reinsert_swap_info ->
        setup_swap_info: --least_priority).
        """
        from linmem.mm.memory import OutOfMemory
        from linmem.mm.util import vm_enough_memory
        area = self.areas.get(path)
        if area is None:
            raise SwapError("EINVAL", f"swapoff {path}: not a swap area in use")
        if not vm_enough_memory(self.machine, total_vm, area.pages):
            raise SwapError("ENOMEM", f"swapoff {path}: its {area.pages} pages would exceed "
                                      f"the commit limit")
        self.machine.committed_as -= area.pages                 # vm_unacct_memory
        si = self.K.si
        row = area.row
        free = area.pages - (self.used_pages(area) - 1)
        si[row, SW.SI_FLAGS] &= ~SW.SWP_WRITEOK                 # del_from_avail_list
        if area.priority < 0:
            for other in self.areas.values():
                if other.priority < area.priority:
                    self._set_priority(other, other.priority + 1)
            self.least_priority += 1
        si[SW.G_ROW, SW.G_NR_FREE] -= free
        si[SW.G_ROW, SW.G_TOTAL] -= area.pages
        if int(si[SW.G_ROW, SW.G_CUR_AREA]) == row:
            si[SW.G_ROW, SW.G_CUR_AREA] = -1
        try:
            self.kernel.try_to_unuse(int(si[row, SW.SI_BASE]), int(si[row, SW.SI_MAX]))
        except OutOfMemory as err:
            self._reinsert(area)
            raise SwapError("ENOMEM", f"swapoff {path}: {err}") from None
        except Exception:
            self._reinsert(area)
            raise
        self.K.swap_map[int(si[row, SW.SI_BASE])] = 0          # the header goes with swap_map
        si[row] = 0
        del self.areas[path]

    def _set_priority(self, area: SwapArea, priority: int) -> None:
        area.priority = priority
        self.K.si[area.row, SW.SI_PRIO] = priority

    def _reinsert(self, area: SwapArea) -> None:
        """Models reinsert_swap_info(): the area is open for writing again."""
        si = self.K.si
        if area.priority < 0:
            self.least_priority -= 1
            self._set_priority(area, self.least_priority)
        si[area.row, SW.SI_FLAGS] |= SW.SWP_WRITEOK
        si[SW.G_ROW, SW.G_NR_FREE] += area.pages - (self.used_pages(area) - 1)
        si[SW.G_ROW, SW.G_TOTAL] += area.pages

    # ------------------------------------------------------------- views

    def proc_swaps(self) -> list[tuple[str, str, int, int, int]]:
        """(path, type, size KiB, used KiB, priority) per area, in swap type order."""
        rows = []
        for area in sorted(self.areas.values(), key=lambda a: a.row):
            kind = "partition" if area.kind in ("partition", "zram") else "file"
            rows.append((area.path, kind, area.pages * 4, (self.used_pages(area) - 1) * 4,
                         area.priority))
        return rows
