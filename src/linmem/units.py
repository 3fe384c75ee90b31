"""Sizes, durations and the kernel's page arithmetic.

Sizes follow the scenario contract: a plain integer is bytes; suffixes are
binary (``KiB``, ``MiB``, ``GiB``, ``TiB``; ``K``/``M``/``G``/``T`` and ``kB`` as
/proc writes it mean the same). Durations: ``250ms``, ``10s``, ``2m``, ``1h``.
"""

from __future__ import annotations

import re

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
    "p": 1 << 50, "pb": 1 << 50, "pib": 1 << 50,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Return a size in bytes from ``4096``, ``"64KiB"``, ``"1.5GiB"``...

    Raises ValueError with the offending value when it is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 512MiB, got {value!r}")
    m = _SIZE_RE.match(value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use bytes or a unit: KiB, MiB, GiB, TiB)")
    number, unit = m.groups()
    size = float(number) * _SIZE_UNITS[unit.lower()]
    if size != int(size):
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(size)


def parse_duration(value: int | float | str) -> float:
    """Return seconds from ``"250ms"``, ``"10s"``, ``"2m"``, or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 10s, got {value!r}")
    m = _DURATION_RE.match(value)
    unit = m.group(2).lower() if m else None
    if not m or (unit or "s") not in _DURATION_UNITS:
        raise ValueError(f"not a duration: {value!r} (use ms, s, m or h)")
    return float(m.group(1)) * _DURATION_UNITS[unit or "s"]


def pages_to_kb(pages: int) -> int:
    """The kernel's K(x): pages to KiB."""
    return pages << (PAGE_SHIFT - 10)


def kb_to_pages(kb: int) -> int:
    return kb >> (PAGE_SHIFT - 10)


def format_size(nbytes: int) -> str:
    """Binary size with the largest exact unit, as scenarios write it (``64MiB``)."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)
