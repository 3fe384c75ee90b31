"""Text traces: ``txt`` (one request per line) and ``csv`` (columns named by a
header).

``txt`` -- one request per line, as libCacheSim's plain-text traces: either
an object id in decimal (``123456``), or a byte address in hexadecimal with
its ``0x`` prefix (``0x7ffd1234a000``). The first request decides which the
trace holds, and every line must then be of the same kind. Blank lines and
lines starting with ``#`` are skipped. ``time`` is the request's number.

``csv`` -- comma-separated values whose first line names the columns (names
are case-insensitive; columns with other names are ignored)::

    time,obj_id,size,op          time,pid,addr,op
    0,42,4096,r                  12,1001,0x7ffd1234a008,w

    column                    meaning
    obj_id (id, key)          the object id, decimal or 0x-hex (the trace holds
                              objects)
    addr (address)            the byte address, decimal or 0x-hex
    page                      the page number, decimal or 0x-hex (addr = page << 12)
    time (timestamp,          the request's time (default: its number)
          clock_time)
    pid                       the process (default 0)
    op                        r / w / i, or read / write / ifetch, or 0 / 1 / 2
                              (default r); libCacheSim's get / set mean r / w
    size (obj_size)           bytes (default 1)

Exactly one of obj_id, addr and page must be present. Numbers must fit in
64 bits (object ids and addresses keep their 64-bit pattern: from 2**63 up
they read as negative); a pid or a size must fit in 32 bits.

Both are read a block at a time and streamed in chunks. A line that does
not parse raises InputError ``"PATH:LINE"`` naming what is wrong with the
offending text; an empty trace (no request) is an error too.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from linmem.errors import InputError
from linmem.trace import (DEFAULT_CHUNK, OP_IFETCH, OP_READ, OP_WRITE, Chunk,
                          open_binary, register)

BLOCK = 1 << 22             # bytes read at a time
U64 = 1 << 64
OPS = {"r": OP_READ, "read": OP_READ, "get": OP_READ, "0": OP_READ,
       "w": OP_WRITE, "write": OP_WRITE, "set": OP_WRITE, "1": OP_WRITE,
       "i": OP_IFETCH, "ifetch": OP_IFETCH, "2": OP_IFETCH}
COLUMN_NAMES = {"obj_id": "obj_id", "id": "obj_id", "key": "obj_id",
                "addr": "addr", "address": "addr", "page": "page",
                "time": "time", "timestamp": "time", "clock_time": "time",
                "pid": "pid", "op": "op", "size": "size", "obj_size": "size"}
KEY_COLUMNS = ("obj_id", "addr", "page")


def _lines(path: str) -> Iterator[tuple[int, list[bytes]]]:
    """The lines of the file, a block at a time: (number of the first, lines)."""
    number, rest = 1, b""
    with open_binary(path) as stream:
        while True:
            block = stream.read(BLOCK)
            if not block:
                break
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            yield number, lines
            number += len(lines)
    if rest:
        yield number, [rest]


def _u64(text: str, base: int = 0) -> int:
    """``text`` as a 64-bit pattern (int64); ValueError when it is not a
    number of that base (0: decimal, or hex after ``0x``) or does not fit in
    64 bits."""
    if base == 0:
        base, text = (16, text[2:]) if text[:2].lower() == "0x" else (10, text)
    value = int(text, base)
    if not 0 <= value < U64:
        raise ValueError
    return value - U64 if value >= 1 << 63 else value


class _Rows:
    """The columns of the rows parsed so far; hands out full chunks."""

    def __init__(self, chunk: int, objects: bool):
        self.chunk, self.objects = chunk, objects
        self.count = 0                      # rows added, taken or not
        self.cols: dict[str, list[int]] = {f: [] for f in ("time", "pid", "addr", "op", "size")}

    def add(self, time: int, pid: int, addr: int, op: int, size: int) -> None:
        for name, value in (("time", time), ("pid", pid), ("addr", addr), ("op", op),
                            ("size", size)):
            self.cols[name].append(value)
        self.count += 1

    def __len__(self) -> int:
        return len(self.cols["addr"])

    def take(self) -> Chunk:
        """The rows so far as a Chunk (then none are left)."""
        c = self.cols
        out = Chunk(time=np.array(c["time"], np.int64), pid=np.array(c["pid"], np.int32),
                    addr=np.array(c["addr"], np.int64), op=np.array(c["op"], np.uint8),
                    size=np.array(c["size"], np.int32), objects=self.objects)
        for values in c.values():
            values.clear()
        return out


@register("txt")
def read_txt(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The requests of the plain-text trace at ``path``, at most ``chunk`` at
    a time (a decimal object id or a 0x-hex byte address per line)."""
    rows: _Rows | None = None
    for first, lines in _lines(path):
        for number, raw in enumerate(lines, first):
            text = _decode(path, number, raw).strip()
            if not text or text.startswith("#"):
                continue
            hexa = text[:2].lower() == "0x"
            if rows is None:
                rows = _Rows(chunk, objects=not hexa)
            elif hexa == rows.objects:
                kind = "object ids" if rows.objects else "hex addresses"
                raise InputError(f"{path}:{number}", f"{text!r} in a trace of {kind} (the "
                                 "first request decides: decimal ids or 0x-hex addresses)")
            try:
                key = _u64(text[2:], 16) if hexa else _u64(text, 10)
            except ValueError:
                what = "a hex address" if hexa else "a decimal object id"
                raise InputError(f"{path}:{number}",
                                 f"not {what} of at most 64 bits: {text!r}") from None
            rows.add(rows.count, 0, key, OP_READ, 1)
            if len(rows) == chunk:
                yield rows.take()
    yield from _last(path, rows)


def _last(path: str, rows: _Rows | None) -> Iterator[Chunk]:
    if rows is None or not rows.count:
        raise InputError(path, "the trace holds no request")
    if len(rows):
        yield rows.take()


def _decode(path: str, number: int, raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise InputError(f"{path}:{number}",
                         f"not a line of text (bytes {raw[:40]!r})") from None


def _header(path: str, text: str) -> dict[str, int]:
    """The column of each field named by the csv header line ``text``."""
    columns: dict[str, int] = {}
    for i, name in enumerate(n.strip().lower() for n in text.split(",")):
        field = COLUMN_NAMES.get(name)
        if field is None:
            continue
        if field in columns:
            raise InputError(f"{path}:1", f"two columns give the {field}: {text!r}")
        columns[field] = i
    keys = [k for k in KEY_COLUMNS if k in columns]
    if len(keys) != 1:
        raise InputError(f"{path}:1", "the header must name exactly one of the columns "
                         f"obj_id, addr and page, got {text!r}")
    return columns


class _CsvRow:
    """Parses the fields of one csv line into a row, naming what is wrong."""

    def __init__(self, path: str, columns: dict[str, int]):
        self.path, self.columns = path, columns
        self.width = max(columns.values()) + 1
        self.key = next(k for k in KEY_COLUMNS if k in columns)

    def parse(self, number: int, text: str, index: int) -> tuple[int, int, int, int, int]:
        fields = text.split(",")
        if len(fields) < self.width:
            raise InputError(f"{self.path}:{number}",
                             f"{len(fields)} fields, the header names {self.width}: {text!r}")
        col = self.columns
        value = fields[col[self.key]].strip()
        key = self._number(number, self.key, value)
        if self.key == "page":
            if not 0 <= key < 1 << 52:
                raise InputError(f"{self.path}:{number}",
                                 f"page number out of range (0 to 2**52 - 1): {value!r}")
            key <<= 12
        time = self._int(number, fields, "time", index, 1 << 63)
        pid = self._int(number, fields, "pid", 0, 1 << 31)
        size = self._int(number, fields, "size", 1, 1 << 31)
        op = OP_READ
        if "op" in col:
            op = OPS.get(fields[col["op"]].strip().lower(), -1)
            if op < 0:
                raise InputError(f"{self.path}:{number}", "op must be r, w or i (read, write, "
                                 f"ifetch; 0, 1, 2), got {fields[col['op']].strip()!r}")
        return time, pid, key, op, size

    def _number(self, number: int, name: str, value: str) -> int:
        try:
            return _u64(value)
        except ValueError:
            raise InputError(f"{self.path}:{number}",
                             f"{name} is not a 64-bit number: {value!r}") from None

    def _int(self, number: int, fields: list[str], name: str, default: int, bound: int) -> int:
        if name not in self.columns:
            return default
        value = fields[self.columns[name]].strip()
        try:
            out = int(value, 10)
        except ValueError:
            out = -1
        if not 0 <= out < bound:
            raise InputError(f"{self.path}:{number}",
                             f"{name} must be a number from 0 to {bound - 1}, got {value!r}")
        return out


@register("csv")
def read_csv(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The requests of the csv trace at ``path``, at most ``chunk`` at a time."""
    rows: _Rows | None = None
    parser: _CsvRow | None = None
    for first, lines in _lines(path):
        for number, raw in enumerate(lines, first):
            text = _decode(path, number, raw).strip()
            if parser is None:
                parser = _CsvRow(path, _header(path, text))
                rows = _Rows(chunk, objects=parser.key == "obj_id")
                continue
            if not text:
                continue
            rows.add(*parser.parse(number, text, rows.count))
            if len(rows) == chunk:
                yield rows.take()
    if parser is None:
        raise InputError(path, "the trace is empty (a csv trace starts with a header line)")
    yield from _last(path, rows)
