"""The reverse-map index reclaim walks (mm/rmap.c: anon_vma chains, and the
files' i_mmap trees).

The kernel keeps, for every anon_vma, the VMAs that may map its pages (the
anon_vma_chain, grown by fork) and, for every file, the VMAs that map it (the
i_mmap interval tree). linmem flattens both into one int64 array, a row per
(key, VMA) sorted by key, which the compiled reclaim code searches
(``linmem.engine.rmap``): key = anon_vma id for each anon_vma in a VMA's
chain, -(file id + 1) for a file mapping. The array is rebuilt only when an
address space changed (a VMA tree's generation, or the set of address
spaces).
"""

from __future__ import annotations

import numpy as np

from linmem.engine.rmap import NR_R


class RmapIndex:
    """The rows of every live address space's VMAs, by key."""

    def __init__(self, kernel):
        self.kernel = kernel
        self._version: tuple = ()
        self._rows = np.zeros((0, NR_R), dtype=np.int64)

    def _mms(self) -> list:
        seen: dict[int, object] = {}
        for task in self.kernel.tasks.values():
            if task.mm is not None:
                seen.setdefault(id(task.mm), task.mm)
        return list(seen.values())

    def rows(self) -> np.ndarray:
        """The index, rebuilt if an address space changed since last time."""
        mms = self._mms()
        version = tuple((mm.serial, mm.vmas.generation) for mm in mms)
        if version != self._version:
            self._rows = self._build(mms)
            self._version = version
        return self._rows

    def _build(self, mms: list) -> np.ndarray:
        rows = []
        file_id = self.kernel.file_id
        for mm in mms:
            for v in mm.vmas:
                fid = file_id(v.file) if v.file is not None else -1
                if fid >= 0:
                    rows.append((-fid - 1, mm.id, v.start, v.end, v.pgoff, v.flags))
                for anon_vma in v.anon_vma_chain:
                    rows.append((anon_vma, mm.id, v.start, v.end, v.pgoff, v.flags))
        if not rows:
            return np.zeros((0, NR_R), dtype=np.int64)
        table = np.array(rows, dtype=np.int64)
        return np.ascontiguousarray(table[np.argsort(table[:, 0], kind="stable")])
