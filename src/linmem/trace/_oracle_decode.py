"""The compiled decoder of oracleGeneral records (linmem.trace.oracle_general).

Apart from the reader so that importing the trace formats does not import
numba; the reader imports this when it runs.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.jit import hot, inline

INT32_MAX = (1 << 31) - 1


@inline
def _u32(b, at):
    return (np.uint32(b[at]) | (np.uint32(b[at + 1]) << np.uint32(8))
            | (np.uint32(b[at + 2]) << np.uint32(16)) | (np.uint32(b[at + 3]) << np.uint32(24)))


@hot
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


@hot
def decode_keys(raw, keys):
    """Only the obj_id of each 24-byte record of ``raw`` (uint8) into
    ``keys``, skipping requests of size 0, in one pass over the records;
    returns how many were kept."""
    kept = 0
    for i in range(len(raw) // 24):
        at = 24 * i
        if _u32(raw, at + 12) == 0:
            continue
        lo = np.uint64(_u32(raw, at + 4))
        hi = np.uint64(_u32(raw, at + 8))
        keys[kept] = np.int64(lo | (hi << np.uint64(32)))
        kept += 1
    return kept
