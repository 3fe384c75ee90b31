"""valgrind lackey traces: ``valgrind --tool=lackey --trace-mem=yes PROG``.

Lackey (valgrind's example tool, ``lackey/lk_main.c``) prints one line per
memory reference the program makes, in the order it makes them::

    ==18834== Command: /bin/true          valgrind's messages: "==PID== ..."
    I  0401ab70,3                         instruction fetch:  "I  %08lx,%lu"
     S 1fff000778,8                       store:              " S %08lx,%lu"
     L 04229e70,8                         load:               " L %08lx,%lu"
     M 0422a000,4                         modify:             " M %08lx,%lu"

The address is hexadecimal (at least 8 digits, more when it needs them), the
size decimal bytes. A line is a record when it starts with one of the four
prefixes ``"I  "``, ``" L "``, ``" S "``, ``" M "``; a record that does not
parse (no address, a digit that is not hex, no size, a size of 0) is an
error naming the file and line. Every other line is skipped: valgrind's
``==PID==`` messages, blank lines, and the program's own output where it
shares the stream.

What a record becomes (one row of a :class:`~linmem.trace.Chunk`):

- ``I`` -> OP_IFETCH, ``L`` -> OP_READ, ``S`` -> OP_WRITE.
- ``M`` (an instruction that reads and writes the same location, such as
  ``inc [mem]``) -> two requests, OP_READ then OP_WRITE of the same bytes,
  as the CPU makes them and as cachegrind counts them.
- ``pid``: the pid of the last ``==PID==`` line before the record (0 before
  any), so the log of ``--trace-children=yes`` keeps its processes apart.
- ``time``: the request's number in the trace (lackey has no clock).
- ``addr``: the byte address; the sixteen-digit addresses of the kernel half
  (the vsyscall page) keep their 64-bit pattern, so they read as negative.

The trace is read in blocks of :data:`BLOCK` bytes (decompressed on the fly
for ``.zst``) and each block's whole lines are parsed by a compiled scanner
(:mod:`linmem.trace._lackey_scan`) at tens of millions of lines a second;
a line cut by a block boundary waits for the next block.
"""

from __future__ import annotations

from functools import partial
from typing import Iterator

import numpy as np

from linmem.errors import InputError
from linmem.trace import DEFAULT_CHUNK, Chunk, open_binary, register

BLOCK = 1 << 24         # bytes read at a time

@register("lackey")
def read_lackey(path: str, chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """The requests of the lackey trace at ``path``, ``chunk`` at a time
    (every chunk but the last holds exactly ``chunk``).

    Raises InputError ``"PATH:LINE"`` for a malformed record, ``"PATH"``
    for a file that cannot be read or holds no record at all.
    """
    from linmem.trace._lackey_scan import HEX, scan
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    with open_binary(path) as stream:
        yield from _LackeyReader(path, stream, chunk, partial(scan, hexv=HEX)).chunks()


class _LackeyReader:
    """The state of one pass over a trace: the current block of bytes, the
    line number at its parse position, the current pid and the rows filled."""

    def __init__(self, path, stream, chunk, scan):
        self.path, self.stream, self.chunk, self.scan = path, stream, chunk, scan
        self.data = bytearray(BLOCK)    # data[pos:end]: whole lines; end..size: a part
        self.buf = np.frombuffer(self.data, dtype=np.uint8)
        self.pos, self.end, self.size, self.eof = 0, 0, 0, False
        self.line, self.pid, self.time = 1, 0, 0

    def chunks(self) -> Iterator[Chunk]:
        cols, n = _columns(self.chunk), 0
        while self._refill():
            n = self._parse(cols, n)
            if n >= self.chunk:
                yield self._chunk(cols, self.chunk)
                cols, n = _carry(cols, self.chunk, n)
        if n:
            yield self._chunk(cols, n)
        elif self.time == 0:
            what = "the file is empty" if self.line == 1 else \
                "no lackey records (lines \"I  ADDR,SIZE\", \" L \", \" S \", \" M \")"
            raise InputError(self.path, what)

    def _refill(self) -> bool:
        """Make sure whole lines wait at pos: read blocks until a newline or
        the end of the stream. False when everything is parsed."""
        while self.pos >= self.end:
            if self.eof:
                if self.pos >= self.size:
                    return False
                self.end = self.size    # the last line, with no newline
                break
            self._read()
        return True

    def _read(self) -> None:
        """Move the part line at pos to the front and read after it."""
        left = self.size - self.pos
        if left == len(self.data):      # a line longer than the buffer
            self.data = self.data + bytearray(len(self.data))
            self.buf = np.frombuffer(self.data, dtype=np.uint8)
        self.data[:left] = self.data[self.pos:self.size]
        got = self.stream.readinto(memoryview(self.data)[left:])
        self.eof = not got
        self.pos, self.size = 0, left + got
        self.end = self.data.rfind(b"\n", 0, self.size) + 1

    def _parse(self, cols, n: int) -> int:
        """Scan whole lines into cols from row n on; the new row count."""
        pos, n, self.pid, lines, err = self.scan(self.buf, self.pos, self.end, self.pid,
                                                 cols.pid, cols.addr, cols.op, cols.size,
                                                 n, self.chunk)
        if err:
            raise self._error(pos, self.line + lines, err)
        self.pos, self.line = pos, self.line + lines
        return n

    def _chunk(self, cols: Chunk, n: int) -> Chunk:
        """The first n rows of cols, numbered from the requests seen so far."""
        out = Chunk(np.arange(self.time, self.time + n, dtype=np.int64), cols.pid[:n],
                    cols.addr[:n], cols.op[:n], cols.size[:n])
        self.time += n
        return out

    def _error(self, pos: int, line: int, err: int) -> InputError:
        from linmem.trace._lackey_scan import ERRORS
        eol = self.data.find(b"\n", pos, self.end)
        text = bytes(self.data[pos:eol if eol >= 0 else self.end]).decode("utf-8", "replace")
        text = text.rstrip("\r")
        if len(text) > 60:
            text = text[:57] + "..."
        return InputError(f"{self.path}:{line}", f"{ERRORS[err]}: {text!r}")


def _columns(chunk: int) -> Chunk:
    """Empty output columns for a chunk, with the one spare row that an "M"
    record on the last row needs (time is filled when the chunk is cut)."""
    rows = chunk + 1
    return Chunk(None, np.empty(rows, np.int32), np.empty(rows, np.int64),
                 np.empty(rows, np.uint8), np.empty(rows, np.int32))


def _carry(cols: Chunk, chunk: int, n: int) -> tuple[Chunk, int]:
    """Fresh columns holding the rows of cols beyond the chunk just cut."""
    new = _columns(chunk)
    extra = n - chunk
    for name in ("pid", "addr", "op", "size"):
        getattr(new, name)[:extra] = getattr(cols, name)[chunk:n]
    return new, extra
