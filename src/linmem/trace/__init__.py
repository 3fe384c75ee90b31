"""Memory-access traces: readers that stream a trace in chunks.

A trace is read in chunks of at most ``chunk`` requests, so that a 10 GB
trace never needs 10 GB of memory. Each chunk is a :class:`Chunk` of
parallel numpy arrays:

=========  =======  ==============================================================
field      dtype    meaning
=========  =======  ==============================================================
``time``   int64    the request's time (microseconds, or the request's number
                    where the format has no clock)
``pid``    int32    the process (0 where the format has none)
``addr``   int64    the byte address (page traces: page number << 12), or the
                    object id for object traces (libCacheSim's obj_id)
``op``     uint8    OP_READ, OP_WRITE or OP_IFETCH
``size``   int32    bytes of the request (1 where the format has none)
=========  =======  ==============================================================

``objects`` says which of the two ``addr`` holds: False (the default) for
byte addresses, whose page is ``addr >> 12``; True for object ids, which a
cache simulator takes as they are (libCacheSim's traces, a csv with an
``obj_id`` column).

Formats register themselves in :data:`FORMATS` (name -> reader function
``reader(path, chunk) -> Iterator[Chunk]``); :func:`open_trace` picks one by
name, decompressing ``.zst`` input on the fly. A malformed trace raises
``linmem.errors.InputError`` naming the file and the line or byte offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

OP_READ, OP_WRITE, OP_IFETCH = 0, 1, 2
DEFAULT_CHUNK = 1 << 20


@dataclass
class Chunk:
    """A run of consecutive requests of a trace."""

    time: np.ndarray
    pid: np.ndarray
    addr: np.ndarray
    op: np.ndarray
    size: np.ndarray
    objects: bool = False

    def __len__(self) -> int:
        return len(self.addr)


Reader = Callable[[str, int], Iterator[Chunk]]
FORMATS: dict[str, Reader] = {}


def register(name: str):
    """Decorator: make ``reader`` the reader of format ``name``."""
    def wrap(reader: Reader) -> Reader:
        FORMATS[name] = reader
        return reader
    return wrap


def open_trace(path: str, fmt: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The chunks of the trace at ``path`` in format ``fmt``."""
    from linmem.errors import InputError
    _load_formats()
    if fmt not in FORMATS:
        raise InputError(path, f"unknown trace format {fmt!r} (formats: "
                               f"{', '.join(sorted(FORMATS))})")
    return FORMATS[fmt](path, chunk)


def open_binary(path: str):
    """The trace file as a binary stream, decompressed on the fly when its
    name ends in ``.zst`` (zstandard, every frame); InputError when it cannot
    be read, is not zstd data or ends inside a frame."""
    from linmem.errors import InputError
    try:
        raw = open(path, "rb")
    except OSError as err:
        raise InputError(path, f"cannot read the trace: {err.strerror}") from None
    if not path.endswith(".zst"):
        return raw
    from linmem.trace._zstd import ZstdStream
    return ZstdStream(path, raw)


def _load_formats() -> None:
    """Import the modules that register the formats (not the private ones,
    such as compiled kernels, which their readers import when they run)."""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
