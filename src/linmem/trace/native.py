"""linmem's native trace format: the columns of a :class:`~linmem.trace.Chunk`,
block after block, little-endian, to be read back at memory speed.

Layout, version 2 (every integer little-endian)::

    offset  bytes  field
    0       8      magic b"LINMEMTR"
    8       2      version (2)
    10      2      header size in bytes (16)
    12      1      what addr holds: 0 byte addresses, 1 object ids
    13      3      reserved, 0
    16      ...    blocks, each starting at a multiple of 8:

    REQS block, n requests (1 <= n <= MAX_BLOCK):
      +0      4    tag b"REQS"
      +4      4    n
      +8      8n   time  int64[n]
      +8+8n   8n   addr  int64[n]
      +8+16n  4n   pid   int32[n]
      +8+20n  4n   size  int32[n]
      +8+24n  n    op    uint8[n]   (0 read, 1 write, 2 ifetch)
      then zero bytes up to a multiple of 8

    DONE block, once, last:
      +0      4    tag b"DONE"
      +4      4    0
      +8      8    the number of requests in all REQS blocks, uint64

Byte 12 is the :class:`~linmem.trace.Chunk`'s ``objects`` flag, for the
whole file: 1 for a trace of objects (oracleGeneral, a csv with ``obj_id``,
txt ids), whose keys are the ids as they are; 0 for byte addresses (lackey),
whose pages are ``addr >> 12``. The writer takes it from the first
non-empty chunk and refuses a later chunk that holds the other kind.
Version 1 is the same layout with bytes 12 to 15 reserved and no flag; it
is read as byte addresses. The writer writes version 2.

The DONE block makes a file cut at a block boundary detectable: a reader
that meets the end of the file before it raises InputError, as it does for
a block cut short, naming the byte offset where the damage starts. A name
ending in ``.zst`` is written zstd-compressed (the columns compress well: the
time of a lackey trace is its request number) and read back decompressed;
offsets then count decompressed bytes.

The writer never leaves a partial file: it writes to a temporary name in the
same directory and renames it when the DONE block is written.
"""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Iterable, Iterator

import numpy as np

from linmem.errors import InputError
from linmem.trace import DEFAULT_CHUNK, Chunk, open_binary, register

MAGIC = b"LINMEMTR"
VERSION = 2
VERSIONS = (1, 2)                         # the versions read
HEADER = struct.Struct("<8sHHB3x")        # magic, version, header size, objects
OBJECTS_AT = 12                           # the offset of the objects byte
BLOCK_HEAD = struct.Struct("<4sI")        # tag, n
DONE_COUNT = struct.Struct("<Q")
MAX_BLOCK = 1 << 20                       # requests in one REQS block
# The columns of a REQS block in order: (name, dtype).
COLUMNS = (("time", "<i8"), ("addr", "<i8"), ("pid", "<i4"), ("size", "<i4"), ("op", "u1"))
RECORD_BYTES = sum(np.dtype(dt).itemsize for _, dt in COLUMNS)   # 25
MAX_OP = 2
ADDR_KINDS = {False: "byte addresses", True: "object ids"}   # the objects byte, 0 and 1


def block_bytes(n: int) -> int:
    """Bytes of a REQS block of n requests, its header and padding included."""
    return (BLOCK_HEAD.size + RECORD_BYTES * n + 7) & ~7


def write_native(path: str, chunks: Iterable[Chunk]) -> int:
    """Write the requests of ``chunks`` to ``path`` in the native format
    (zstd-compressed when the name ends in ``.zst``); the number written.

    The file appears only when complete: an error from ``chunks`` (a bad
    line of the trace being converted) or an interrupt leaves nothing.
    Raises InputError when ``path`` cannot be written, or ``"PATH: byte
    OFFSET"`` when a chunk holds object ids and an earlier one byte
    addresses (or the reverse).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    except OSError as err:
        raise InputError(path, f"cannot write the trace: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            out = _compressed(raw, path)
            total = _write_stream(out, chunks, path)
            if out is not raw:
                out.close()             # ends the zstd frame
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        os.unlink(tmp)
        if isinstance(err, OSError):
            raise InputError(path, f"cannot write the trace: {err.strerror}") from None
        raise
    return total


def _compressed(raw, path: str):
    """The stream to write the file's bytes to: raw, or a zstd compressor."""
    if not path.endswith(".zst"):
        return raw
    import zstandard
    return zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)


def _write_stream(out, chunks: Iterable[Chunk], path: str) -> int:
    """The header, the blocks and the DONE block; the header waits for the
    first non-empty chunk, which says what ``addr`` holds."""
    objects, total, offset = None, 0, HEADER.size
    for chunk in chunks:
        if not len(chunk):
            continue
        if objects is None:
            objects = bool(chunk.objects)
            out.write(HEADER.pack(MAGIC, VERSION, HEADER.size, objects))
        elif bool(chunk.objects) != objects:
            raise InputError(f"{path}: byte {offset}",
                             f"the requests from number {total} on hold "
                             f"{ADDR_KINDS[chunk.objects]}, those before them "
                             f"{ADDR_KINDS[objects]}: a native trace holds one kind")
        for start in range(0, len(chunk), MAX_BLOCK):
            n = _write_block(out, chunk, start, min(len(chunk), start + MAX_BLOCK))
            total, offset = total + n, offset + block_bytes(n)
    if objects is None:
        out.write(HEADER.pack(MAGIC, VERSION, HEADER.size, False))
    out.write(BLOCK_HEAD.pack(b"DONE", 0) + DONE_COUNT.pack(total))
    return total


def _write_block(out, chunk: Chunk, lo: int, hi: int) -> int:
    n = hi - lo
    out.write(BLOCK_HEAD.pack(b"REQS", n))
    for name, dtype in COLUMNS:
        out.write(np.ascontiguousarray(getattr(chunk, name)[lo:hi], dtype=dtype).data)
    out.write(bytes(block_bytes(n) - BLOCK_HEAD.size - RECORD_BYTES * n))
    return n


@register("native")
def read_native(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The requests of the native trace at ``path``, at most ``chunk`` at a
    time, their ``objects`` flag the file's. Raises InputError ``"PATH: byte
    OFFSET"`` for a file that is not a native trace, is of another version,
    or is cut short or damaged."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    with open_binary(path) as stream:
        reader = _NativeReader(path, stream)
        objects = reader.header()
        for block in reader.blocks():
            for lo in range(0, len(block), chunk):
                yield Chunk(*(getattr(block, name)[lo:lo + chunk]
                              for name in ("time", "pid", "addr", "op", "size")),
                            objects=objects)


class _NativeReader:
    """One pass over a native trace, keeping the byte offset for errors."""

    def __init__(self, path: str, stream):
        self.path, self.stream, self.offset = path, stream, 0

    def error(self, offset: int, what: str) -> InputError:
        return InputError(f"{self.path}: byte {offset}", what)

    def read(self, size: int) -> bytearray:
        """The next size bytes; fewer only at the end of the file."""
        buf = bytearray(size)
        view, got = memoryview(buf), 0
        while got < size:
            n = self.stream.readinto(view[got:])
            if not n:
                break
            got += n
        self.offset += got
        return buf if got == size else buf[:got]

    def header(self) -> bool:
        """Check the header; the file's ``objects`` flag (False for version 1)."""
        head = self.read(HEADER.size)
        if not head:
            raise self.error(0, "the file is empty, not a linmem native trace")
        if head[:8] != MAGIC[:len(head)]:
            raise self.error(0, f"not a linmem native trace (it starts {bytes(head[:8])!r}, "
                                f"not {MAGIC!r})")
        if len(head) < HEADER.size:
            raise self.error(len(head), f"truncated: the header is {HEADER.size} bytes, "
                                        f"the file ends after {len(head)}")
        _, version, size, objects = HEADER.unpack(head)
        if version not in VERSIONS:
            raise self.error(8, f"version {version} is not supported (this linmem reads "
                                f"versions {' and '.join(map(str, VERSIONS))})")
        if size != HEADER.size:
            raise self.error(10, f"header size {size}, version {version} has {HEADER.size}")
        if version == 1:
            return False
        if objects > 1:
            raise self.error(OBJECTS_AT, f"the objects flag is {objects}, not 0 (byte "
                                         f"addresses) or 1 (object ids)")
        return bool(objects)

    def blocks(self) -> Iterator[Chunk]:
        """The REQS blocks, as chunks, up to the DONE block."""
        total = 0
        while True:
            at = self.offset
            head = self.read(BLOCK_HEAD.size)
            if len(head) < BLOCK_HEAD.size:
                raise self.error(at, f"truncated: the file ends without its DONE block "
                                     f"(after {total} requests)")
            tag, n = BLOCK_HEAD.unpack(head)
            if tag == b"DONE":
                self.done(at, total)
                return
            if tag != b"REQS":
                raise self.error(at, f"unknown block tag {tag!r} (REQS or DONE)")
            if not 1 <= n <= MAX_BLOCK:
                raise self.error(at + 4, f"a block of {n} requests (1 to {MAX_BLOCK})")
            yield self.block(at, n)
            total += n

    def block(self, at: int, n: int) -> Chunk:
        """The columns of the REQS block of n requests at offset ``at``."""
        need = block_bytes(n) - BLOCK_HEAD.size
        data = self.read(need)
        if len(data) < need:
            raise self.error(at, f"truncated: a block of {n} requests needs {need} bytes "
                                 f"after its header, the file ends after {len(data)}")
        cols, pos = {}, 0
        for name, dtype in COLUMNS:
            cols[name] = np.frombuffer(data, dtype=dtype, count=n, offset=pos)
            pos += n * np.dtype(dtype).itemsize
        bad = np.flatnonzero(cols["op"] > MAX_OP)
        if len(bad):
            i = int(bad[0])
            raise self.error(at + BLOCK_HEAD.size + pos - n + i,
                             f"request {i} of the block has op {cols['op'][i]} "
                             f"(0 read, 1 write, 2 ifetch)")
        return Chunk(cols["time"], cols["pid"], cols["addr"], cols["op"], cols["size"])

    def done(self, at: int, total: int) -> None:
        """Check the DONE block: its count and that nothing follows it."""
        rest = self.read(DONE_COUNT.size)
        if len(rest) < DONE_COUNT.size:
            raise self.error(at, "truncated: the DONE block is cut short")
        (count,) = DONE_COUNT.unpack(rest)
        if count != total:
            raise self.error(at + BLOCK_HEAD.size, f"the DONE block counts {count} requests, "
                                                   f"the blocks hold {total}")
        if self.read(1):
            raise self.error(at + BLOCK_HEAD.size + DONE_COUNT.size,
                             "data after the DONE block")
