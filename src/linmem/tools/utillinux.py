"""What util-linux 2.38.1 tools share: lib/strutils.c and libsmartcols' tables.

Ports, for the util-linux tool clones (``linmem fincore``):

* lib/strutils.c ``size_to_human_string`` (1-letter suffixes, one decimal,
  the 2.37+ rounding) and ``string_add_to_idarray`` (the ``-o LIST`` and
  ``-o +LIST`` parser), with ``column_name_to_id``'s case-insensitive match;
* libsmartcols 2.38.1 printing a flat table to a pipe: column widths as
  calculate.c ``count_column_width`` sets them, the human, raw
  (``fputs_nonblank``) and JSON (lib/jsonwrt.c) layouts, cells made safe as
  lib/mbsalign.c ``mbs_safe_encode`` does.

A table is printed whole, at the end, as ``scols_print_table`` does; bytes in,
bytes out, because file names are bytes.

The widths, for output that is not a terminal::

    width = max(width of the header, width of every cell)
    if no cell reaches the header's width: width = header's width
    elif whint >= 1 and width < whint and header's width < whint: width = whint

    RES (whint 5): "200M" -> " 200M";  "0B" alone -> " 0B" (the header wins)

On a terminal libsmartcols also widens the last column to the terminal, but a
left-aligned last column is never padded and a right-aligned one is never
widened, and a column with an absolute width hint is never shrunk, so the
bytes are the same there.

Deviations from util-linux:

* XXX: the locale is read from LC_ALL, LC_CTYPE and LANG (the first set):
  a name with "UTF-8" (any case, with or without the dash) prints printable
  multibyte characters as they are, anything else is the C locale, where every
  byte above 0x7f is escaped. Python's coercion of a bare ``LANG=C`` to
  C.UTF-8 (PEP 538) is not undone. The decimal point is always ".", as in
  the C and C.UTF-8 locales.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

from linmem.errors import InputError

# --- lib/strutils.c -----------------------------------------------------------

_UINT64_MAX = (1 << 64) - 1


def _get_exp(n: int) -> int:
    """strutils.c ``get_exp``: the power of two (0, 10, ... 60) that names n's unit."""
    shift = 10
    while shift <= 60 and n >= 1 << shift:
        shift += 10
    return shift - 10


def size_to_human_string(nbytes: int) -> str:
    """``size_to_human_string(SIZE_SUFFIX_1LETTER, nbytes)`` of util-linux 2.38.1.

    One decimal, rounded 4/5 from three digits taken by truncation:
    1.9375 MiB -> frac 937 -> (937 + 50) / 100 = 9 -> ``1.9M``; 1048575 B
    rounds to 1024.0 KiB -> ``1024K`` (the unit is chosen before rounding).
    """
    nbytes &= _UINT64_MAX
    exp = _get_exp(nbytes)
    letter = "BKMGTPE"[exp // 10]
    dec, frac = (nbytes >> exp, nbytes & ((1 << exp) - 1)) if exp else (nbytes, 0)
    if frac:
        if frac >= _UINT64_MAX // 1000:
            frac = ((frac // 1024) * 1000) // (1 << (exp - 10))
        else:
            frac = (frac * 1000) // (1 << exp)
        frac = ((frac + 50) // 100) * 10
        if frac == 100:
            dec, frac = dec + 1, 0
    if frac:
        return f"{dec}.{frac // 10}{letter}"      # "%d%s%02d" less its trailing zero
    return f"{dec}{letter}"


def column_name_to_id(names: list[str], item: str, rest: str) -> int:
    """Index of ``item`` in ``names``, compared without case (``strncasecmp``).

    An unknown name is an InputError quoting, as the C ``warnx`` does, the
    list from the unknown name to its end (``rest``).
    """
    for i, name in enumerate(names):
        if item.lower() == name.lower():
            return i
    raise InputError("fincore -o", f"unknown column: {rest}")


def string_add_to_idarray(text: str, ids: list[int], capacity: int, names: list[str]) -> list[int]:
    """strutils.c ``string_add_to_idarray``: ``-o a,b`` replaces ``ids``, ``-o +a,b`` appends.

    At most ``capacity`` ids in all. An empty list or item, or too many items,
    is an InputError (util-linux exits 1 without a word for those).
    """
    if not text:
        raise InputError("fincore -o", "empty column list")
    base = list(ids) if text.startswith("+") else []
    items = text[1:] if text.startswith("+") else text
    if len(base) > capacity or not items:
        raise InputError("fincore -o", f"bad column list: '{text}'")
    pos = 0
    out = base
    while pos < len(items):
        if len(out) >= capacity:
            raise InputError("fincore -o", f"too many columns (at most {capacity}): '{text}'")
        end = items.find(",", pos)
        # "a," is one item "a," (the C scanner sees the string end first).
        end = len(items) if end < 0 or end == len(items) - 1 else end
        if end == pos:
            raise InputError("fincore -o", f"empty column name in '{text}'")
        out.append(column_name_to_id(names, items[pos:end], items[pos:]))
        pos = end + 1
    return out


# --- lib/mbsalign.c and include/carefulputc.h -----------------------------------

def locale_is_utf8(environ=os.environ) -> bool:
    """Whether ``setlocale(LC_ALL, "")`` would pick a UTF-8 character set."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(var)
        if value:
            return "utf-8" in value.lower() or "utf8" in value.lower()
    return False


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _wcwidth(char: str) -> int:
    """glibc's width of a character in the current locale, -1 if not printable."""
    return _libc().wcwidth(ord(char)) if _libc().iswprint(ord(char)) else -1


def _wide_char(data: bytes, pos: int) -> tuple[str, int] | None:
    """The UTF-8 character at ``pos`` and its length, or None (``mbrtowc`` -1/-2)."""
    lead = data[pos]
    size = next((n for n, top in ((2, 0xE0), (3, 0xF0), (4, 0xF8)) if 0xC0 <= lead < top), 0)
    if not size:
        return None
    try:
        char = data[pos:pos + size].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (char, size) if len(char) == 1 else None


def mbs_safe_encode(data: bytes, utf8: bool) -> tuple[bytes, int]:
    """lib/mbsalign.c ``mbs_safe_encode``: the cell as printed, and its width.

    Control characters, a backslash before an ``x``, and (in the C locale,
    or when not a printable character) bytes above 0x7f become ``\\xHH``.
    """
    out = bytearray()
    width = 0
    pos = 0
    while pos < len(data):
        byte = data[pos]
        if byte < 0x20 or byte == 0x7F or (byte == 0x5C and data[pos + 1:pos + 2] == b"x"):
            out += b"\\x%02x" % byte
            width, pos = width + 4, pos + 1
        elif byte < 0x80:
            out.append(byte)
            width, pos = width + 1, pos + 1
        else:
            found = _wide_char(data, pos) if utf8 else None
            cells = _wcwidth(found[0]) if found else -1
            if found and cells >= 0:
                out += data[pos:pos + found[1]]
                width, pos = width + cells, pos + found[1]
            else:
                for b in data[pos:pos + (found[1] if found else 1)]:
                    out += b"\\x%02x" % b
                    width += 4
                pos += found[1] if found else 1
    return bytes(out), width


def fputs_nonblank(data: bytes) -> bytes:
    """carefulputc.h ``fputs_nonblank``: raw output escapes blanks, ``\\`` and unprintables."""
    return b"".join(b"\\x%02x" % b if b in b" \t\\" or not 0x20 <= b < 0x7F else bytes([b])
                    for b in data)


_JSON_SHORT = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r"}


def fputs_quoted_json(data: bytes) -> bytes:
    """carefulputc.h ``fputs_quoted_json``: quote, escape ``"``, ``\\`` and controls.

    Bytes from 0x7f up go out as they are (the C code compares a signed char).
    """
    out = bytearray(b'"')
    for b in data:
        if b in (0x22, 0x5C):
            out += b"\\" + bytes([b])
        elif b >= 0x20:
            out.append(b)
        else:
            out += _JSON_SHORT.get(b, b"\\u00%02x" % b)
    return bytes(out + b'"')


# --- libsmartcols: one flat table ------------------------------------------------

@dataclass(frozen=True)
class Column:
    """A column as ``scols_table_new_column`` takes it, and its JSON type."""

    name: str
    whint: float
    right: bool = False
    json_number: bool = False


def count_column_width(header_width: int, cell_widths: list[int], whint: float) -> int:
    """calculate.c ``count_column_width`` for output that is not a terminal."""
    width_min = max(header_width, 1)
    width = max(cell_widths, default=0)
    if width < width_min:
        return width_min
    if whint >= 1 and width < whint and width_min < whint:
        return int(whint)
    return width


def _human(columns: list[Column], rows: list[list[bytes]], noheadings: bool, utf8: bool) -> bytes:
    header = [mbs_safe_encode(c.name.encode(), utf8) for c in columns]
    body = [[mbs_safe_encode(cell, utf8) for cell in row] for row in rows]
    widths = [count_column_width(header[i][1], [row[i][1] for row in body], c.whint)
              for i, c in enumerate(columns)]
    lines = body if noheadings else [header] + body
    out = []
    for line in lines:
        cells = []
        for i, (text, width) in enumerate(line):
            pad = b" " * (widths[i] - width)
            last = i == len(columns) - 1
            cells.append(pad + text if columns[i].right else text if last else text + pad)
        out.append(b" ".join(cells) + b"\n")
    return b"".join(out)


def _raw(columns: list[Column], rows: list[list[bytes]], noheadings: bool) -> bytes:
    lines = rows if noheadings else [[c.name.encode() for c in columns]] + rows
    return b"".join(b" ".join(fputs_nonblank(cell) for cell in line) + b"\n" for line in lines)


def _json_value(column: Column, cell: bytes) -> bytes:
    """A number as it is, a string quoted, an empty cell ``null``."""
    if not cell:
        return b"null"
    return cell if column.json_number else fputs_quoted_json(cell)


def _json(name: str, columns: list[Column], rows: list[list[bytes]]) -> bytes:
    """lib/jsonwrt.c as libsmartcols 2.38.1 drives it: 3-space indents, ``},{``.

    An empty cell is ``null``; a table without lines is an empty array
    printed as ``[`` and ``]`` with an empty line between.
    """
    keys = [fputs_quoted_json(c.name.lower().encode()) for c in columns]
    blocks = []
    for row in rows:
        members = [b"         " + key + b": " + _json_value(column, cell)
                   for key, column, cell in zip(keys, columns, row)]
        blocks.append(b",\n".join(members))
    body = b"      {\n" + b"\n      },{\n".join(blocks) + b"\n      }" if blocks else b""
    return b"{\n   " + fputs_quoted_json(name.encode()) + b": [\n" + body + b"\n   ]\n}\n"


def print_table(columns: list[Column], rows: list[list[bytes]], *, name: str = "",
                raw: bool = False, json: bool = False, noheadings: bool = False,
                utf8: bool = False) -> bytes:
    """``scols_print_table``: the whole table as bytes.

    JSON wins over raw and ignores ``noheadings``; a table without lines
    prints nothing, not even its header, except in JSON.
    """
    if json:
        return _json(name, columns, rows)
    if not rows:
        return b""
    if raw:
        return _raw(columns, rows, noheadings)
    return _human(columns, rows, noheadings, utf8)
