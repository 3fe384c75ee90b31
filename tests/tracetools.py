"""Helpers of the trace tests: whole traces as columns."""

from __future__ import annotations

import numpy as np

from linmem.trace import Chunk

FIELDS = ("time", "pid", "addr", "op", "size")


def columns(chunks) -> dict[str, np.ndarray]:
    """The chunks of a trace joined into one array per field."""
    chunks = list(chunks)
    return {f: np.concatenate([getattr(c, f) for c in chunks]) if chunks else np.empty(0)
            for f in FIELDS}


def assert_same(a: dict, b: dict) -> None:
    for f in FIELDS:
        assert a[f].dtype == b[f].dtype, f
        np.testing.assert_array_equal(a[f], b[f], err_msg=f)


def chunk_of(**cols) -> Chunk:
    """A Chunk from lists, in the reader's dtypes."""
    dtypes = {"time": np.int64, "pid": np.int32, "addr": np.int64, "op": np.uint8,
              "size": np.int32}
    return Chunk(**{f: np.asarray(cols[f], dtype=dtypes[f]) for f in FIELDS})
