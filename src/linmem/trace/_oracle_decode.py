"""The compiled decoder of oracleGeneral records (linmem.trace.oracle_general).

Apart from the reader so that importing the trace formats does not import
numba; the reader imports this when it runs.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import njit

INT32_MAX = (1 << 31) - 1


@njit
def _u32(b, at):
    return (np.uint32(b[at]) | (np.uint32(b[at + 1]) << np.uint32(8))
            | (np.uint32(b[at + 2]) << np.uint32(16)) | (np.uint32(b[at + 3]) << np.uint32(24)))


@njit
def decode(raw, time, addr, size):
    """Unpack the 24-byte records of ``raw`` (uint8) into the columns,
    skipping requests of size 0; returns how many were kept."""
    kept = 0
    for i in range(len(raw) // 24):
        at = 24 * i
        obj_size = _u32(raw, at + 12)
        if obj_size == 0:
            continue
        lo = np.uint64(_u32(raw, at + 4))
        hi = np.uint64(_u32(raw, at + 8))
        time[kept] = _u32(raw, at)
        addr[kept] = np.int64(lo | (hi << np.uint64(32)))
        size[kept] = min(np.int64(obj_size), INT32_MAX)
        kept += 1
    return kept
