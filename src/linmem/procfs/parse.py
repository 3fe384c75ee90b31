"""Defensive parsers of /proc text, as the procps-ng 4.0.2 library reads it.

The tools ``linmem free`` and ``linmem vmstat`` read a proc directory (the
host's ``/proc`` or a tree a simulation wrote) through these functions. Each
parser follows the reading code of libproc2 from procps-ng 4.0.2, so that the
tools built on it print what procps prints for the same files:

* ``parse_meminfo`` -- library/meminfo.c ``meminfo_read_failed``: a line is
  split on its first colon, the key is the text before it (taken verbatim),
  the value is read as ``strtoul`` reads it (leading blanks, then digits; the
  " kB" unit is ignored). A later duplicate wins. Absent fields count as 0.
* ``derive_meminfo`` -- the derived values of the same function (used,
  cache, low/high used, swap used) with its container fix-ups
  (MemAvailable absent or larger than MemTotal -> MemFree) and the C
  ``unsigned long`` arithmetic (results are taken modulo 2**64).
* ``parse_vmstat`` -- library/vmstat.c ``vmstat_read_failed``: "name value".
* ``parse_stat`` -- library/stat.c ``stat_read_failed``: the summary ``cpu``
  line needs at least 8 tick counters; ``intr``, ``ctxt``, ``btime``,
  ``processes``, ``procs_blocked`` and ``procs_running`` are found with
  ``strstr`` after the per-cpu lines and count as 0 when absent.
* ``parse_uptime`` -- library/uptime.c: two seconds counts.

Where procps would silently read garbage (a line with no colon, a value with
no digits, a negative or overflowing number, a truncated ``cpu`` line) these
parsers raise :class:`linmem.errors.InputError` naming the file and line.
One procps limit is not reproduced: libproc2 reads only the first 8191 bytes
of /proc/meminfo and /proc/vmstat; real files are far shorter.

This module imports nothing heavy: the tools must start instantly.
"""

from __future__ import annotations

import os
import re

from linmem.errors import InputError

U64 = 1 << 64
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)(\d+)")
_STAT_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq",
                    "softirq", "steal", "guest", "guest_nice")
_STAT_SYS_FIELDS = ("intr", "ctxt", "btime", "processes", "procs_blocked", "procs_running")


def u64(value: int) -> int:
    """Return ``value`` as a C ``unsigned long`` (modulo 2**64)."""
    return value % U64


def s64(value: int) -> int:
    """Return ``value`` as a C ``long``: modulo 2**64, then two's complement."""
    value %= U64
    return value - U64 if value >= 1 << 63 else value


# --- files ---------------------------------------------------------------

def check_proc_dir(proc: str | os.PathLike) -> str:
    """Return ``proc`` as a string, or raise InputError if it is no directory."""
    path = os.fspath(proc)
    if not os.path.exists(path):
        raise InputError(path, "no such directory")
    if not os.path.isdir(path):
        raise InputError(path, "not a directory")
    return path


def read_proc_file(proc: str | os.PathLike, name: str) -> tuple[str, str]:
    """Read ``PROC/name``; return ``(path, text)``. Unreadable -> InputError."""
    path = os.path.join(check_proc_dir(proc), name)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a file") from None
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror or err}") from None
    if not data:
        raise InputError(path, "empty file")
    try:
        return path, data.decode("ascii")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}", "not ASCII text") from None


# --- numbers as strtoul / sscanf("%llu") read them -----------------------

def _number(text: str, where: str, what: str) -> int:
    """Read the leading unsigned number of ``text`` (blanks skipped) or raise."""
    m = _NUMBER.match(text)
    if not m:
        shown = text.strip()[:40]
        raise InputError(where, f"{what}: expected a number, got {shown!r}")
    if m.group(1) == "-":
        raise InputError(where, f"{what}: negative value -{m.group(2)}")
    value = int(m.group(2))
    if value >= U64:
        raise InputError(where, f"{what}: value {value} does not fit in 64 bits")
    return value


def _lines(text: str):
    """Yield ``(line_number, line)`` for each non-blank line of ``text``."""
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield number, line


# --- /proc/meminfo -------------------------------------------------------

def parse_meminfo(text: str, where: str = "meminfo") -> dict[str, int]:
    """Parse /proc/meminfo text into ``{key: value}`` (values in kB or counts).

    Keys are kept verbatim (``Active(anon)``, ``HugePages_Total``...).
    """
    fields: dict[str, int] = {}
    for number, line in _lines(text):
        key, colon, rest = line.partition(":")
        if not colon:
            raise InputError(f"{where}:{number}", f"expected 'Name: value kB', got {line.strip()[:40]!r}")
        fields[key] = _number(rest, f"{where}:{number}", key.strip())
    return fields


def derive_meminfo(fields: dict[str, int]) -> dict[str, int]:
    """Return the values procps-ng 4.0.2 libproc2 derives from meminfo fields.

    Keys: total, free, available, used, shared, buffers, cached, cached_all,
    active, inactive, low_total, low_free, low_used, high_total, high_free,
    high_used, swap_total, swap_free, swap_used, commit_limit, committed_as.
    All in kB, as C ``unsigned long`` values.
    """
    g = fields.get
    total, free = g("MemTotal", 0), g("MemFree", 0)
    available = g("MemAvailable", 0) or free
    if available > total:
        available = free
    used = s64(total - available)
    if used < 0:
        used = s64(total - free)
    low_total, low_free = g("LowTotal", 0), g("LowFree", 0)
    if low_total == 0:
        low_total, low_free = total, free
    high_total, high_free = g("HighTotal", 0), g("HighFree", 0)
    swap_total, swap_free = g("SwapTotal", 0), g("SwapFree", 0)
    return {
        "total": total, "free": free, "available": available, "used": u64(used),
        "shared": g("Shmem", 0), "buffers": g("Buffers", 0), "cached": g("Cached", 0),
        "cached_all": u64(g("Cached", 0) + g("SReclaimable", 0)),
        "active": g("Active", 0), "inactive": g("Inactive", 0),
        "low_total": low_total, "low_free": low_free,
        "low_used": low_total - low_free if low_free < low_total else 0,
        "high_total": high_total, "high_free": high_free,
        "high_used": high_total - high_free if high_free < high_total else 0,
        "swap_total": swap_total, "swap_free": swap_free,
        "swap_used": swap_total - swap_free if swap_free < swap_total else 0,
        "commit_limit": g("CommitLimit", 0), "committed_as": g("Committed_AS", 0),
    }


def read_meminfo(proc: str | os.PathLike) -> dict[str, int]:
    """Read and parse ``PROC/meminfo``."""
    path, text = read_proc_file(proc, "meminfo")
    return parse_meminfo(text, path)


# --- /proc/vmstat --------------------------------------------------------

def parse_vmstat(text: str, where: str = "vmstat") -> dict[str, int]:
    """Parse /proc/vmstat text ("name value" lines) into ``{name: value}``."""
    counters: dict[str, int] = {}
    for number, line in _lines(text):
        key, space, rest = line.partition(" ")
        if not space:
            raise InputError(f"{where}:{number}", f"expected 'name value', got {line.strip()[:40]!r}")
        counters[key] = _number(rest, f"{where}:{number}", key)
    return counters


def read_vmstat(proc: str | os.PathLike) -> dict[str, int]:
    """Read and parse ``PROC/vmstat``."""
    path, text = read_proc_file(proc, "vmstat")
    return parse_vmstat(text, path)


# --- /proc/stat ----------------------------------------------------------

def _parse_cpu_line(line: str, where: str) -> dict[str, int]:
    """Parse the summary ``cpu`` line: at least 8 of the 10 tick counters."""
    if not line.startswith("cpu") or line[3:4].isdigit():
        raise InputError(where, f"expected the summary 'cpu' line first, got {line[:40]!r}")
    words = line[3:].split()
    values = []
    for word in words[: len(_STAT_CPU_FIELDS)]:
        if not word.isdigit():
            break
        values.append(_number(word, where, f"cpu field {len(values) + 1}"))
    if len(values) < 8:
        raise InputError(where, f"'cpu' line has {len(values)} tick counters, expected at least 8")
    values += [0] * (len(_STAT_CPU_FIELDS) - len(values))
    return dict(zip(_STAT_CPU_FIELDS, values))


def _find_counter(text: str, start: int, key: str, where: str) -> int:
    """Value after the first ``key + ' '`` at or after ``start`` (strstr), or 0."""
    at = text.find(key + " ", start)
    if at < 0:
        return 0
    line = text.count("\n", 0, at) + 1
    return _number(text[at + len(key) + 1:], f"{where}:{line}", key)


def parse_stat(text: str, where: str = "stat") -> dict:
    """Parse /proc/stat text.

    Returns ``{"cpu": {user, nice, system, idle, iowait, irq, softirq, steal,
    guest, guest_nice}, "ncpus": N, "intr": total, "ctxt", "btime",
    "processes", "procs_blocked", "procs_running"}``.
    """
    lines = text.split("\n")
    result: dict = {"cpu": _parse_cpu_line(lines[0], f"{where}:1")}
    ncpus, offset = 0, len(lines[0]) + 1
    for line in lines[1:]:
        if not re.match(r"cpu\d+\s", line):
            break
        ncpus += 1
        offset += len(line) + 1
    result["ncpus"] = ncpus
    for key in _STAT_SYS_FIELDS:
        result[key] = _find_counter(text, min(offset, len(text)), key, where)
    return result


def read_stat(proc: str | os.PathLike) -> dict:
    """Read and parse ``PROC/stat``."""
    path, text = read_proc_file(proc, "stat")
    return parse_stat(text, path)


# --- /proc/uptime --------------------------------------------------------

def parse_uptime(text: str, where: str = "uptime") -> tuple[float, float]:
    """Parse /proc/uptime text: ``(seconds since boot, idle seconds)``."""
    words = text.split()
    if len(words) < 2:
        raise InputError(f"{where}:1", f"expected two numbers, got {text.strip()[:40]!r}")
    try:
        up, idle = float(words[0]), float(words[1])
    except ValueError:
        raise InputError(f"{where}:1", f"expected two numbers, got {text.strip()[:40]!r}") from None
    if not (up >= 0 and idle >= 0) or up == float("inf") or idle == float("inf"):
        raise InputError(f"{where}:1", f"expected two non-negative numbers, got {text.strip()[:40]!r}")
    return up, idle


def read_uptime(proc: str | os.PathLike) -> tuple[float, float]:
    """Read and parse ``PROC/uptime``."""
    path, text = read_proc_file(proc, "uptime")
    return parse_uptime(text, path)
