"""libCacheSim's ``oracleGeneral`` binary traces (format name ``oracleGeneral``).

The format of the public cache traces that libCacheSim's authors distribute
(Twitter, Meta, CloudPhysics, MSR... converted), and the one its tools read
fastest. A file is a plain array of 24-byte little-endian records, one per
request, with no header::

    offset  bytes  field
    0       4      clock_time         uint32, seconds
    4       8      obj_id             uint64
    12      4      obj_size           uint32, bytes
    16      8      next_access_vtime  int64: the number of the request that next
                                      asks for obj_id; -1 (or INT64_MAX) if none

as ``libCacheSim/traceReader/customizedReader/oracle/oracleGeneralBin.h``
reads it. What a record becomes in a :class:`~linmem.trace.Chunk`: ``time``
the clock_time, ``addr`` the obj_id (its 64-bit pattern: ids from 2**63 up
read as negative), ``size`` the obj_size (capped at 2**31 - 1), ``pid`` 0,
``op`` OP_READ; the chunk's ``objects`` is True. Requests of size 0 are
skipped, as libCacheSim's readers skip them by default
(``ignore_size_zero_req``), so that miss counts agree on the same file.
next_access_vtime is not kept: linmem's OPT computes the next accesses
itself, from any trace.

The records are unpacked by a compiled loop (:mod:`linmem.trace._oracle_decode`),
imported when a trace is read; a cache replay reads only the obj_id column
(:func:`read_oracle_general_keys`). A file whose length is not a multiple
of 24 bytes was cut in the middle of a record: InputError names the byte
offset where the partial record starts.
Nothing else in the format can be checked (every 24 bytes are a record), so
:func:`write_oracle_general` is the safe way to make one.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterator

import numpy as np

from linmem.errors import InputError
from linmem.trace import DEFAULT_CHUNK, OP_READ, Chunk, open_binary, register

RECORD = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                   ("next_access_vtime", "<i8")])
assert RECORD.itemsize == 24


@register("oracleGeneral")
def read_oracle_general(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The requests of the oracleGeneral trace at ``path``, at most ``chunk``
    at a time. Raises InputError ``"PATH: byte N"`` for a truncated last
    record, ``"PATH"`` for a file that cannot be read or holds no request."""
    from linmem.trace._oracle_decode import decode
    for raw in _records(path, chunk):
        yield _chunk(decode, raw)


def read_oracle_general_keys(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Only the obj_id column of the trace at ``path`` (int64), at most
    ``chunk`` requests at a time, requests of size 0 skipped: what a cache
    replay needs. An uncompressed file is mapped into memory and the column
    gathered from the mapping in one compiled pass; the same errors as
    :func:`read_oracle_general`."""
    from linmem.trace._oracle_decode import decode_keys
    records = _mapped(path)
    if records is None:
        parts = _records(path, chunk)
    else:
        whole = np.asarray(records).view(np.uint8)          # a plain array, not a memmap
        step = chunk * RECORD.itemsize
        parts = (whole[i:i + step] for i in range(0, len(whole), step))
    for raw in parts:
        keys = np.empty(len(raw) // RECORD.itemsize, np.int64)
        kept = decode_keys(raw, keys)
        yield keys if kept == len(keys) else keys[:kept]
    if records is not None:
        _check_whole(path, os.path.getsize(path))


def _mapped(path: str) -> np.ndarray | None:
    """The whole records of an uncompressed trace, mapped read-only; None
    for a compressed one, or one that cannot be mapped (read instead)."""
    if path.endswith(".zst"):
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None                              # the reader names the error
    if size < RECORD.itemsize:
        return None
    return np.memmap(path, RECORD, mode="r", shape=(size // RECORD.itemsize,))


def _check_whole(path: str, size: int) -> None:
    """InputError for a trace cut inside its last record."""
    whole = size - size % RECORD.itemsize
    if size != whole:
        raise InputError(f"{path}: byte {whole}",
                         f"truncated: the last request has {size - whole} of its "
                         f"{RECORD.itemsize} bytes")


def _records(path: str, chunk: int) -> Iterator[np.ndarray]:
    """The bytes (uint8) of the whole records of the trace, at most ``chunk``
    records at a time, in a buffer reused for the next; the errors of
    :func:`read_oracle_general`."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    buf = bytearray(chunk * RECORD.itemsize)
    raw = np.frombuffer(buf, np.uint8)
    offset = 0
    with open_binary(path) as stream:
        while True:
            nbytes = _fill(stream, buf)
            whole = nbytes - nbytes % RECORD.itemsize
            if whole:
                yield raw[:whole]
            _check_whole(path, offset + nbytes)
            offset += nbytes
            if nbytes < len(buf):
                break
    if offset == 0:
        raise InputError(path, "the trace holds no request (an empty file)")


def _fill(stream, buf: bytearray) -> int:
    """Read into ``buf`` until it is full or the stream ends; the bytes read."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _chunk(decode, raw: np.ndarray) -> Chunk:
    """The Chunk of the records in the bytes ``raw`` (copied out: the buffer
    is reused), by the compiled ``decode``."""
    n = len(raw) // RECORD.itemsize
    time, addr, size = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int32)
    kept = decode(raw, time, addr, size)
    return Chunk(time=time[:kept], pid=np.zeros(kept, np.int32), addr=addr[:kept],
                 op=np.full(kept, OP_READ, np.uint8), size=size[:kept], objects=True)


def next_access(obj_ids: np.ndarray) -> np.ndarray:
    """For each request, the number of the next request for the same object,
    -1 where there is none (the next_access_vtime column)."""
    order = np.argsort(obj_ids, kind="stable")
    same = obj_ids[order[1:]] == obj_ids[order[:-1]]
    nxt = np.full(len(obj_ids), -1, np.int64)
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def write_oracle_general(path: str, obj_ids: np.ndarray, obj_size: int = 1,
                         clock_time: np.ndarray | None = None) -> None:
    """Write the requests ``obj_ids`` (int64 or uint64) as an oracleGeneral
    trace at ``path``, with next_access_vtime filled in; every request has
    ``obj_size`` bytes, and ``clock_time`` (default: the request's number in
    thousands). Written to a temporary name, then renamed: never half a file."""
    obj_ids = np.asarray(obj_ids)
    rec = np.empty(len(obj_ids), RECORD)
    n = np.arange(len(obj_ids), dtype=np.int64)
    rec["clock_time"] = n // 1000 if clock_time is None else clock_time
    rec["obj_id"] = obj_ids.view(np.uint64) if obj_ids.dtype == np.int64 else obj_ids
    rec["obj_size"] = obj_size
    rec["next_access_vtime"] = next_access(obj_ids)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".oracleGeneral-")
    try:
        with os.fdopen(fd, "wb") as out:
            rec.tofile(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
