"""The compiled line scanner behind :mod:`linmem.trace.lackey`.

Private: the format registry does not import it, so only reading a lackey
trace loads numba. The kernels take only byte arrays, integers and the output
columns; :func:`linmem.trace.lackey.read_lackey` validates and drives them.

A record takes one of two paths. The fast one (:func:`fast_record`) accepts
what lackey prints, ``ADDR,SIZE`` with at most 15 hex digits and a size of
1 to 9 digits, looking hex digits up in a table. Anything else goes to the
exact parsers (:func:`parse_addr`, :func:`parse_size`), which accept the rest
of the valid records (16-digit addresses, trailing blanks) and name what is
wrong with the others; for a record both accept, both give the same values.
"""

from __future__ import annotations

import numba
import numpy as np

from linmem.engine.jit import njit
from linmem.trace import OP_IFETCH, OP_READ, OP_WRITE

# The fast path is inlined into scan() by numba itself: as a call it made
# the scanner about a quarter slower.
njit_inline = numba.njit(cache=True, nogil=True, inline="always")

# What scan() found wrong with a line (0: nothing), and the words for it.
E_NO_ADDR, E_ADDR_NOT_HEX, E_ADDR_LONG, E_NO_SIZE, E_SIZE_NOT_DEC, E_SIZE_RANGE, \
    E_PID_RANGE = range(1, 8)
ERRORS = ("", "the record has no address", "the address is not hexadecimal",
          "the address has more than 16 hex digits", "the record has no size (ADDR,SIZE)",
          "the size is not a decimal number", "the size is out of range (1 to 2147483647 bytes)",
          "the pid is out of range")

# The request kinds a record line makes; MODIFY is a load and a store.
K_READ, K_WRITE, K_IFETCH, K_MODIFY = OP_READ, OP_WRITE, OP_IFETCH, 3

NL, SPACE, TAB, CR, COMMA, EQ = 10, 32, 9, 13, 44, 61
TWO_59 = 1 << 59
TWO_62 = 1 << 62
INT32_MAX = (1 << 31) - 1

# HEX[c]: the value of the hex digit c (either case), or -1.
HEX = np.full(256, -1, dtype=np.int64)
HEX[48:58] = np.arange(10)
HEX[97:103] = HEX[65:71] = np.arange(10, 16)


@njit
def record_kind(buf, pos, end):
    """The kind of the record on the line at buf[pos], or -1 when the line
    does not start with one of lackey's prefixes "I  ", " L ", " S ", " M "."""
    if end - pos < 3 or buf[pos + 2] != SPACE:
        return -1
    c0, c1 = buf[pos], buf[pos + 1]
    if c0 == 73 and c1 == SPACE:          # 'I'
        return K_IFETCH
    if c0 != SPACE:
        return -1
    if c1 == 76:                          # 'L'
        return K_READ
    if c1 == 83:                          # 'S'
        return K_WRITE
    if c1 == 77:                          # 'M'
        return K_MODIFY
    return -1


@njit
def hex_digit(c):
    """The value of hex digit c (either case), or -1."""
    c = int(c)        # a Python int, not a wrapping uint8, when not compiled
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit
def parse_addr(buf, p, end):
    """Parse the hex address at buf[p:] up to its comma: (error, addr, p of
    the comma). Sixteen digits with the top bit set wrap to a negative int64,
    the same 64-bit pattern, so that the interpreter and numba agree."""
    v = 0
    nd = 0
    while p < end:
        d = hex_digit(buf[p])
        if d < 0:
            break
        if nd == 16:
            return E_ADDR_LONG, 0, p
        if nd == 15 and v >= TWO_59:      # this digit sets bit 63
            v = (v - TWO_59) * 16 + d - TWO_62 - TWO_62
        else:
            v = v * 16 + d
        nd += 1
        p += 1
    if p < end and buf[p] != COMMA and buf[p] != NL:
        return E_ADDR_NOT_HEX, 0, p
    if nd == 0:
        return E_NO_ADDR, 0, p
    if p == end or buf[p] == NL:
        return E_NO_SIZE, 0, p
    return 0, v, p


@njit
def parse_size(buf, p, end):
    """Parse the decimal size at buf[p:] to the end of its line, trailing
    blanks allowed: (error, size, p of the newline or end)."""
    v = 0
    nd = 0
    while p < end and 48 <= buf[p] <= 57:
        if nd < 11:
            v = v * 10 + (int(buf[p]) - 48)
        nd += 1
        p += 1
    while p < end and (buf[p] == SPACE or buf[p] == TAB or buf[p] == CR):
        p += 1
    if p < end and buf[p] != NL:
        return E_SIZE_NOT_DEC, 0, p
    if nd == 0:
        return E_NO_SIZE, 0, p
    if v < 1 or nd > 10 or v > INT32_MAX:
        return E_SIZE_RANGE, 0, p
    return 0, v, p


@njit
def parse_pid(buf, pos, eol):
    """The pid of a valgrind message line "==PID== ...": the pid, -1 when the
    line is not one, -2 when the pid does not fit an int32."""
    if eol - pos < 5 or buf[pos] != EQ or buf[pos + 1] != EQ:
        return -1
    p = pos + 2
    v = 0
    while p < eol and 48 <= buf[p] <= 57 and p < pos + 13:
        v = v * 10 + (int(buf[p]) - 48)
        p += 1
    if p == pos + 2 or p + 1 >= eol or buf[p] != EQ or buf[p + 1] != EQ:
        return -1
    return v if v <= INT32_MAX else -2


@njit_inline
def fast_record(buf, p, end, hexv):
    """The common record "ADDR,SIZE" at buf[p:], ADDR of 1 to 15 hex digits
    (hexv: the HEX table), SIZE of 1 to 9 decimal digits and not 0, then
    the newline or end: (True, addr, size, p of the newline), or (False, 0,
    0, p) for anything else."""
    start = p
    limit = min(end, p + 15)
    v = 0
    while p < limit:
        d = hexv[buf[p]]
        if d < 0:
            break
        v = v * 16 + d
        p += 1
    if p == start or p == end or buf[p] != COMMA:
        return False, 0, 0, p
    p += 1
    start = p
    size = 0
    while p < end:
        c = int(buf[p])
        if c < 48 or c > 57:
            break
        size = size * 10 + (c - 48)
        p += 1
    if p == start or p - start > 9 or size == 0 or (p < end and buf[p] != NL):
        return False, 0, 0, p
    return True, v, size, p


@njit
def scan(buf, pos, end, pid, out_pid, out_addr, out_op, out_size, n, cap, hexv):
    """Parse the lines of buf[pos:end] into the output columns from row n on,
    until end or until n reaches cap (the columns hold cap + 1 rows: an "M"
    line makes two). Returns (pos, n, pid, lines, error): the start of the
    next line, the rows filled, the current pid, the lines consumed and, on
    error, the code, with pos at the start of the offending line. hexv is
    the HEX table."""
    lines = 0
    while pos < end and n < cap:
        kind = record_kind(buf, pos, end)
        if kind >= 0:                     # one pass over a record's bytes
            ok, addr, size, p = fast_record(buf, pos + 3, end, hexv)
            if not ok:
                err, addr, p = parse_addr(buf, pos + 3, end)
                if err == 0:
                    err, size, p = parse_size(buf, p + 1, end)
                if err != 0:
                    return pos, n, pid, lines, err
            if kind == K_MODIFY:
                out_pid[n], out_addr[n], out_op[n], out_size[n] = pid, addr, K_READ, size
                n += 1
                kind = K_WRITE
            out_pid[n], out_addr[n], out_op[n], out_size[n] = pid, addr, kind, size
            n += 1
            pos = p + 1
        else:
            eol = pos
            while eol < end and buf[eol] != NL:
                eol += 1
            if buf[pos] == EQ:
                new = parse_pid(buf, pos, eol)
                if new == -2:
                    return pos, n, pid, lines, E_PID_RANGE
                if new >= 0:
                    pid = new
            pos = eol + 1
        lines += 1
    return pos, n, pid, lines, 0
