"""The kernel state the compiled code works on: one struct of arrays.

Every array of the model (frames, zones, free lists, per-cpu lists, page
tables, mm and task counters, LRU heads, page cache) is a field of one
``KernelState``. Python code reads and writes the numpy arrays as attributes;
compiled code receives ``state.ref``, a numba *structref* holding the same
arrays, which is passed by pointer. (A tuple of arrays would be copied by value
into every call that is not inlined, which costs more than the work.)

Growing an array (more page tables, more processes) replaces the field and
builds a new ``ref``; the arrays themselves are shared, never copied. With
``NUMBA_DISABLE_JIT=1`` the interpreted kernels get the ``KernelState``
itself, whose attributes have the same names.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.experimental import structref

# name -> (dtype, ndim) of every field, in a fixed order
FIELDS = {
    # frames (struct page)
    "flags": (np.uint32, 1), "refcount": (np.int32, 1), "order": (np.int8, 1),
    "nxt": (np.int32, 1), "prv": (np.int32, 1), "mapcount": (np.int32, 1),
    "mapping": (np.int32, 1), "index": (np.int32, 1), "memcg": (np.uint16, 1),
    "swp": (np.int32, 1),
    # zones and the buddy allocator
    "pb_mt": (np.uint8, 1), "zs": (np.int64, 2), "fhead": (np.int32, 3), "ftail": (np.int32, 3),
    "nfree": (np.int64, 3), "zstat": (np.int64, 2), "events": (np.int64, 1),
    "pcp": (np.int64, 3), "phead": (np.int32, 3), "ptail": (np.int32, 3),
    "kswapd_wake": (np.int64, 1), "tunables": (np.int64, 1), "node_stat": (np.int64, 1),
    # page tables, mms, tasks, LRU lists, page cache
    "pt": (np.int64, 2), "pt_pfn": (np.int64, 1), "pt_free": (np.int64, 1),
    "mm_stat": (np.int64, 2), "task_stat": (np.int64, 2),
    "lru_head": (np.int32, 3), "lru_tail": (np.int32, 3), "ctl": (np.int64, 1),
    "pc": (np.int32, 1), "f_base": (np.int64, 1), "f_npages": (np.int64, 1),
    "ra": (np.int64, 2), "fstat": (np.int64, 2), "shadow": (np.int64, 1),
    "nonresident": (np.int64, 1), "lrucost": (np.int64, 2),
    # swap: areas, slot counts, the swap cache and its shadow entries
    "si": (np.int64, 2), "swap_map": (np.uint8, 1), "swap_cache": (np.int32, 1),
    "swap_shadow": (np.int64, 1), "swap_cgroup": (np.uint16, 1),
    # memory cgroups: page counters and lruvec statistics (linmem.engine.memcontrol)
    "mc": (np.int64, 2), "mstat": (np.int64, 2),
    # the multi-gen LRU (machine.lru: mglru; empty otherwise)
    "lrugen": (np.int64, 2), "lrugen_head": (np.int32, 3), "lrugen_tail": (np.int32, 3),
    "zl_user": (np.int64, 1), "zl_kernel": (np.int64, 1), "alloc": (np.int64, 1),
}


@structref.register
class KernelStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class KernelStateRef(structref.StructRefProxy):
    """The numba-side handle; only compiled code looks inside."""


structref.define_proxy(KernelStateRef, KernelStateType, list(FIELDS))


class KernelState:
    """All arrays of one machine's model, as attributes, plus ``ref`` for numba."""

    def __init__(self, **arrays):
        for name, (dtype, ndim) in FIELDS.items():
            array = arrays.get(name)
            if array is None:
                array = np.zeros((0,) * ndim, dtype=dtype)
            self._check(name, array)
            setattr(self, name, array)
        self._rebuild()

    @staticmethod
    def _check(name: str, array: np.ndarray) -> None:
        dtype, ndim = FIELDS[name]
        if array.dtype != dtype or array.ndim != ndim or not array.flags.c_contiguous:
            raise TypeError(f"state field {name}: expected C-contiguous {np.dtype(dtype)} "
                            f"with {ndim} dimensions, got {array.dtype} {array.shape}")

    def _rebuild(self) -> None:
        if numba.config.DISABLE_JIT:
            # Interpreted kernels read the attributes of this object directly.
            self.ref = self
            return
        self.ref = KernelStateRef(*(getattr(self, name) for name in FIELDS))

    def replace(self, **arrays) -> None:
        """Put new arrays in some fields (after growing them)."""
        for name, array in arrays.items():
            self._check(name, array)
            setattr(self, name, array)
        self._rebuild()
