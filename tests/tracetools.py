"""Helpers of the trace tests: whole traces as columns, and the CLI's answer
to bad input."""

from __future__ import annotations

import os

import numpy as np

from linmem.cli import main
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


def assert_cli_rejects(capsys, args: list[str], where: str, what: str, out=None) -> None:
    """``linmem ARGS`` exits 2 with one line "linmem: WHERE...: ...WHAT..."
    on stderr, no traceback, and leaves no output file (nor a temporary one)."""
    capsys.readouterr()
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"linmem: {where}"), lines[0]
    assert what in lines[0], lines[0]
    if out is not None:
        assert not os.path.exists(out)
        assert not [n for n in os.listdir(os.path.dirname(out) or ".")
                    if n.startswith(f".{os.path.basename(out)}.")]
