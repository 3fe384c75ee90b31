"""Per-process /proc files as libproc2 (procps-ng 4.0.2) reads them.

The shared reading layer of ``linmem ps``, ``linmem pmap`` and ``linmem
smem``. Each function names the libproc2 function it follows
(library/readproc.c, escape.c, devname.c, wchan.c, pwcache.c) so that a
tool built on it shows what the procps tool shows for the same files:

* :func:`stat2proc` -- ``stat2proc``: the command name is the text between
  the first ``(`` and the *last* ``)``; the fields after it are read in
  ``sscanf`` order, missing trailing fields keep their defaults.
* :func:`status2proc` -- ``status2proc``: ``Name:\\tvalue`` lines; the loop
  stops at the first line whose colon is not followed by a tab.
* :func:`read_cmdline` -- ``read_unvectored`` + ``fill_cmdline_cvt``: NULs
  and newlines become spaces, an empty command line becomes ``[comm]``
  (plus `` <defunct>`` for a zombie).
* :func:`lib_escape` -- ``escape_str``: control characters become ``.``
  (``?`` in a UTF-8 locale), bytes above 126 ``?`` unless they form UTF-8.
* :func:`dev_to_tty` -- ``dev_to_tty``: ``PROC/tty/drivers``, then the
  ``fd/2`` link, then the built-in names, each checked against ``/dev``.

procps reads garbage silently; here a per-process file that cannot be read
as the kernel writes it raises :class:`linmem.errors.InputError` naming the
file and line. A process whose directory or ``stat`` vanishes (or cannot be
read) is skipped, as procps skips it. No numpy, no simulator: the tools must
start instantly.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod

from linmem.errors import InputError

try:
    HERTZ = os.sysconf("SC_CLK_TCK")
except (ValueError, OSError):  # pragma: no cover - every Linux has it
    HERTZ = 100
if HERTZ <= 0:  # pragma: no cover
    HERTZ = 100
try:
    PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
except (ValueError, OSError):  # pragma: no cover
    PAGE_SIZE = 4096

MAX_BUFSZ = 1024 * 64 * 2          # readproc.c MAX_BUFSZ
U64 = 1 << 64

# errors that mean "this process is gone or hidden": procps skips it
GONE = (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError)


# --- locale ------------------------------------------------------------------

def utf8_locale() -> bool:
    """Whether ``setlocale(LC_ALL, "")`` would pick a UTF-8 character set.

    The first non-empty of LC_ALL, LC_CTYPE, LANG decides, as glibc does.
    (Python itself may coerce a C locale to C.UTF-8 by setting LC_CTYPE;
    run the tools with LC_ALL=C to compare with procps in the C locale.)
    """
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value:
            low = value.lower()
            return "utf-8" in low or "utf8" in low
    return False


# --- escape.c ------------------------------------------------------------------

# ESC_tab: 0x01-0x1f and 0x7f -> '.', 0x80-0xff -> '?', printable ASCII kept
_ESC_ALL = bytes(
    (c if 0x20 <= c < 0x7f else (ord(".") if c < 0x20 or c == 0x7f else ord("?")))
    for c in range(256))
# UTF_tab: length of a sequence by its first byte, -1 if it cannot start one
_UTF_LEN = [1] * 0x80 + [-1] * 0x42 + [2] * 30 + [3] * 16 + [4] * 5 + [-1] * 11


def esc_all(data: bytes) -> bytes:
    """escape.c ``esc_all``: replace every non-printing byte."""
    return data.translate(_ESC_ALL)


def esc_ctl(data: bytes) -> bytes:
    """escape.c ``esc_ctl``: UTF-8 aware; corrupt text falls back to ``esc_all``."""
    out = bytearray(data)
    i, n = 0, len(out)
    while i < n:
        length = _UTF_LEN[out[i]]
        if length < 0 or i + length > n:
            out[i:] = esc_all(bytes(out[i:]))
            return bytes(out)
        if out[i] < 0x20 or out[i] == 0x7f:
            out[i] = ord("?")
        i += length
    return bytes(out)


def lib_escape(raw: bytes, bufsize: int = MAX_BUFSZ, utf8: bool | None = None) -> bytes:
    """libproc2 ``escape_str``: copy at most ``bufsize - 1`` bytes, escaped."""
    if utf8 is None:
        utf8 = utf8_locale()
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    raw = raw[: bufsize - 1]
    return esc_ctl(raw) if utf8 else esc_all(raw)


def escape_command(cmd: bytes, state: str, bufsize: int = MAX_BUFSZ) -> bytes:
    """escape.c ``escape_command`` with ESC_BRACKETS|ESC_DEFUNCT."""
    overhead = 2 + (10 if state == "Z" else 0)
    if overhead + 1 >= bufsize:
        return b""
    out = b"[" + lib_escape(cmd, bufsize - overhead) + b"]"
    if state == "Z":
        out += b" <defunct>"
    return out


def text(data: bytes) -> str:
    """Bytes of an escaped string as text (valid UTF-8 or ASCII by now)."""
    return data.decode("utf-8", "replace")


# --- reading files -------------------------------------------------------------

def read_bytes(path: str) -> bytes:
    """Read a whole file; GONE errors propagate (the caller skips the process)."""
    with open(path, "rb") as fh:
        return fh.read()


def pid_dirs(proc: str) -> list[tuple[int, str]]:
    """readproc.c ``simple_nextpid``: ``(pid, name)`` of PROC's process entries.

    In directory order (readdir order, as procps walks it): names starting
    with 1-9, read as ``strtoul`` reads them (leading digits).
    """
    try:
        names = os.listdir(proc)
    except FileNotFoundError:
        raise InputError(proc, "no such directory") from None
    except NotADirectoryError:
        raise InputError(proc, "not a directory") from None
    out = []
    for name in names:
        if name[:1] in "123456789" and name[:1]:
            m = re.match(r"\d+", name)
            out.append((int(m.group()), name))
    return out


# --- stat ----------------------------------------------------------------------

# sscanf conversions of stat2proc after ") ": (name, kind); kind "c" char,
# "d" int, "u" unsigned long (long long), "s" skipped word
_STAT_FIELDS = (
    ("state", "c"), ("ppid", "d"), ("pgrp", "d"), ("session", "d"), ("tty", "d"),
    ("tpgid", "d"), ("flags", "u"), ("min_flt", "u"), ("cmin_flt", "u"), ("maj_flt", "u"),
    ("cmaj_flt", "u"), ("utime", "u"), ("stime", "u"), ("cutime", "u"), ("cstime", "u"),
    ("priority", "d"), ("nice", "d"), ("nlwp", "d"), ("alarm", "u"), ("start_time", "u"),
    ("vsize", "u"), ("rss", "u"), ("rss_rlim", "u"), ("start_code", "u"), ("end_code", "u"),
    ("start_stack", "u"), ("kstk_esp", "u"), ("kstk_eip", "u"), (None, "s"), (None, "s"),
    (None, "s"), (None, "s"), ("wchan", "u"), (None, "s"), (None, "s"),
    ("exit_signal", "d"), ("processor", "d"), ("rtprio", "d"), ("sched", "d"),
    ("blkio_tics", "u"), ("gtime", "u"), ("cgtime", "u"),
)
_INT_RE = re.compile(r"[+-]?\d+\Z")


def _c_int(value: int) -> int:
    """A value as C ``int`` (32 bits, two's complement)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def stat2proc(data: bytes, where: str) -> dict:
    """readproc.c ``stat2proc``: the fields of /proc/PID/stat.

    ``cmd`` is the escaped command name (bytes). Defaults as stat2proc sets
    them: processor 0, rtprio -1, sched -1; nlwp 0 becomes 1.
    """
    p = {name: 0 for name, _ in _STAT_FIELDS if name}
    p.update(rtprio=-1, sched=-1)
    open_at = data.find(b"(")
    close_at = data.rfind(b")")
    if open_at < 0 or close_at < open_at or close_at + 1 >= len(data):
        raise InputError(f"{where}:1", "expected 'pid (comm) state ...'")
    p["cmd"] = lib_escape(data[open_at + 1:close_at], 64)
    words = data[close_at + 2:].split()
    for (name, kind), word in zip(_STAT_FIELDS, words):
        if kind == "s":
            continue
        if kind == "c":
            p[name] = chr(word[0])
            if len(word) != 1:
                raise InputError(f"{where}:1", f"state: expected one letter, got {word[:20]!r}")
            continue
        token = word.decode("ascii", "replace")
        if not _INT_RE.match(token):
            raise InputError(f"{where}:1", f"{name}: expected a number, got {token[:20]!r}")
        value = int(token)
        p[name] = _c_int(value) if kind == "d" else value % U64
    if not words:
        raise InputError(f"{where}:1", "no fields after the command name")
    if not p["nlwp"]:
        p["nlwp"] = 1
    return p


# --- status --------------------------------------------------------------------

_STATUS_NUMERIC = {
    "Tgid": "tgid_s", "Pid": "pid_s", "PPid": "ppid", "Threads": "threads",
    "VmData": "vm_data", "VmExe": "vm_exe", "VmLck": "vm_lock", "VmLib": "vm_lib",
    "VmRSS": "vm_rss", "RssAnon": "vm_rss_anon", "RssFile": "vm_rss_file",
    "RssShmem": "vm_rss_shared", "VmSize": "vm_size", "VmStk": "vm_stack",
    "VmSwap": "vm_swap",
}
_STATUS_SIGS = {"ShdPnd": "signal", "SigBlk": "blocked", "SigCgt": "sigcatch",
                "SigIgn": "sigignore", "SigPnd": "_sigpnd"}
_LEADING_INT = re.compile(rb"[ \t\n\v\f\r]*([+-]?\d+)")


def _strtol(rest: bytes, where: str, what: str) -> tuple[int, bytes]:
    """``strtol(S, &S, 10)``: the number and the text after it."""
    m = _LEADING_INT.match(rest)
    if not m:
        raise InputError(where, f"{what}: expected a number, got {rest.strip()[:20]!r}")
    return int(m.group(1)), rest[m.end():]


def status2proc(data: bytes, where: str) -> dict:
    """readproc.c ``status2proc``: the fields of /proc/PID/status that procps uses.

    Keys: state, ppid, tgid, tid (if Threads is present), nlwp, ruid euid
    suid fuid, rgid egid sgid fgid, vm_* (kB), supgid (text), signal masks.
    Absent numeric fields are absent from the result.
    """
    p: dict = {}
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    at, number = 0, 0
    while at < len(data):
        # as status2proc: stop when fewer than 4 bytes remain, or when the next
        # colon (searched past the line end) is not followed by a tab
        start, at = at, data.find(b"\n", at)
        at = len(data) if at < 0 else at + 1
        number += 1
        if len(data) - start < 4:
            break
        colon = data.find(b":", start)
        if colon < 0 or data[colon + 1:colon + 2] != b"\t":
            break
        if colon >= at:
            continue                      # the colon belongs to a later line
        line = data[start:at].rstrip(b"\n")
        name = line[:colon - start].decode("ascii", "replace")
        rest = line[colon - start + 2:]
        here = f"{where}:{number}"
        if name in _STATUS_NUMERIC:
            value, _ = _strtol(rest, here, name)
            p[_STATUS_NUMERIC[name]] = value
        elif name == "State":
            p["state"] = chr(rest[0]) if rest else "\0"
        elif name in ("Uid", "Gid"):
            values = []
            for i in range(4):
                value, rest = _strtol(rest, here, name)
                values.append(value)
            kind = "uid" if name == "Uid" else "gid"
            for prefix, value in zip("resf", values):
                p[prefix + kind] = value % (1 << 32)
        elif name in _STATUS_SIGS:
            p[_STATUS_SIGS[name]] = rest[:16].decode("ascii", "replace")
        elif name == "Groups":
            groups = rest.strip(b" \t")
            if groups:
                p["supgid"] = groups.rstrip(b" ").replace(b" ", b",").decode("ascii", "replace")
    return p


def statm2proc(data: bytes, where: str) -> dict:
    """readproc.c ``statm2proc``: size resident share trs lrs drs dt (pages)."""
    words = data.split()
    names = ("size", "resident", "share", "trs", "lrs", "drs", "dt")
    out = dict.fromkeys(names, 0)
    for name, word in zip(names, words):
        if not word.isdigit():
            raise InputError(f"{where}:1", f"{name}: expected a number, got {word[:20]!r}")
        out[name] = int(word) % U64
    return out


_ROLLUP_KEYS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Shared_Clean",
                "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous",
                "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
                "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked")


def smaps2proc(data: bytes) -> dict:
    """readproc.c ``smaps2proc``: each key found with strstr, in this order."""
    out = dict.fromkeys(_ROLLUP_KEYS, 0)
    at = 0
    for key in _ROLLUP_KEYS:
        item = key.encode() + b":"
        found = data.find(item, at)
        if found < 0:
            continue
        m = _LEADING_INT.match(data, found + len(item))
        if m and not m.group(1).startswith(b"-"):
            out[key] = int(m.group(1)) % U64
            at = m.end()
        else:
            at = found + len(item)
    return out


# --- cmdline --------------------------------------------------------------------

def read_unvectored(path: str, sep: bytes = b" ", size: int = MAX_BUFSZ) -> bytes:
    """readproc.c ``read_unvectored``: NULs and newlines become ``sep``.

    Returns b"" when the file cannot be read or is empty.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(size - 1)
    except OSError:
        return b""
    if not data:
        return b""
    body = data.rstrip(b"\0")
    body = body.replace(b"\0", sep).replace(b"\n", sep)
    if len(body) == len(data) and body.endswith(b" "):
        body = body[:-1]
    return body


def read_cmdline(piddir: str, cmd: bytes, state: str) -> bytes:
    """readproc.c ``fill_cmdline_cvt``: the escaped command line (``?`` if empty)."""
    raw = read_unvectored(os.path.join(piddir, "cmdline"))
    out = lib_escape(raw) if raw else escape_command(cmd, state)
    return out or b"?"


# --- users and groups (pwcache.c) --------------------------------------------------

_USERS: dict[int, str] = {}
_GROUPS: dict[int, str] = {}
P_G_SZ = 33


def user_name(uid: int) -> str:
    """pwcache.c ``pwcache_get_user``: the name, or the number if unknown."""
    if uid not in _USERS:
        import pwd
        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            name = None
        _USERS[uid] = name if name is not None and len(name.encode()) < P_G_SZ else str(uid)
    return _USERS[uid]


def group_name(gid: int) -> str:
    """pwcache.c ``pwcache_get_group``."""
    if gid not in _GROUPS:
        import grp
        try:
            name = grp.getgrgid(gid).gr_name
        except (KeyError, OverflowError):
            name = None
        _GROUPS[gid] = name if name is not None and len(name.encode()) < P_G_SZ else str(gid)
    return _GROUPS[gid]


# --- ttys (devname.c) ------------------------------------------------------------

def _major(dev: int) -> int:
    return ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)


def _minor(dev: int) -> int:
    return (dev & 0xFF) | ((dev >> 12) & ~0xFF)


_LOW_DENSITY = (
    ["LU0", "LU1", "LU2", "LU3", "FB0", "SA0", "SA1", "SA2", "SC0", "SC1", "SC2", "SC3",
     "FW0", "FW1", "FW2", "FW3"] + [f"AM{i}" for i in range(16)] + [f"DB{i}" for i in range(8)]
    + ["SG0", "SMX0", "SMX1", "SMX2", "MM0", "MM1", "CPM0", "CPM1", "CPM2", "CPM3"]
    + [f"IOC{i}" for i in range(32)] + ["VR0", "VR1"] + [f"IOC{i}" for i in range(84, 116)]
    + [f"SIOC{i}" for i in range(32)] + [f"PSC{i}" for i in range(6)]
    + [f"AT{i}" for i in range(16)] + [f"NX{i}" for i in range(16)]
    + ["J0", "UL0", "UL1", "UL2", "UL3", "xvc0", "PZ0", "PZ1", "PZ2", "PZ3"]
    + [f"TX{i}" for i in range(8)] + ["SC0", "SC1", "SC2", "SC3", "MAX0", "MAX1", "MAX2", "MAX3"])
_SIMPLE_TTYS = {11: "ttyB", 17: "ttyH", 19: "ttyC", 22: "ttyD", 23: "ttyD", 24: "ttyE",
                32: "ttyX", 43: "ttyI", 46: "ttyR", 48: "ttyL", 57: "ttyP", 71: "ttyF",
                75: "ttyW", 78: "ttyM", 105: "ttyV", 112: "ttyM", 148: "ttyT", 154: "ttySR",
                164: "ttyCH", 166: "ttyACM", 172: "ttyMX", 174: "ttySI", 188: "ttyUSB",
                208: "ttyU", 216: "ttyUB", 224: "ttyY", 227: "3270/tty", 229: "iseries/vtty",
                256: "ttyEQ"}


class TtyNames:
    """devname.c ``dev_to_tty`` with the driver table of one proc tree."""

    def __init__(self, proc: str):
        self.proc = proc
        self._drivers: list | None = None
        self._cache: dict[tuple[int, int], str | None] = {}

    def _load_drivers(self) -> list:
        """devname.c ``load_drivers``: ``PROC/tty/drivers`` (most recent line first)."""
        drivers: list = []
        try:
            with open(os.path.join(self.proc, "tty", "drivers"), "rb") as fh:
                buf = fh.read(9999)
        except OSError:
            return drivers
        at = 0
        while True:
            at = buf.find(b" /dev/", at)
            if at < 0:
                break
            at += 6
            end = buf.find(b" ", at)
            if end < 0:
                continue
            name = buf[at:end]
            devfs = len(name) >= 3 and name.endswith(b"%d")
            if devfs:
                name = name[:-2]
            name = name[:15]
            p = end
            while buf[p:p + 1] == b" ":
                p += 1
            m = re.match(rb"\d*", buf[p:])
            major = int(m.group() or b"0")
            p += m.end()
            while buf[p:p + 1] == b" ":
                p += 1
            m = re.match(rb"\s*(\d+)(?:-\s*(\d+))?", buf[p:])
            at = end
            if not m:
                continue
            first = int(m.group(1)) % (1 << 32)
            last = int(m.group(2)) % (1 << 32) if m.group(2) else first
            drivers.insert(0, (name.decode("ascii", "replace"), devfs, major & 0xFFFF, first, last))
        return drivers

    @staticmethod
    def _is_dev(path: str, maj: int, mnr: int) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return _minor(st.st_rdev) == mnr and _major(st.st_rdev) == maj

    def _driver_name(self, maj: int, mnr: int) -> str | None:
        if self._drivers is None:
            self._drivers = self._load_drivers()
        for name, devfs, major, first, last in self._drivers:
            if major == maj and first <= mnr <= last:
                break
        else:
            return None
        for path in (f"/dev/{name}{mnr}", f"/dev/{name}/{mnr}"):
            if os.path.exists(path):
                return path if self._is_dev(path, maj, mnr) else None
        if devfs:
            return None
        path = f"/dev/{name}"
        return path if self._is_dev(path, maj, mnr) else None

    def _link_name(self, maj: int, mnr: int, pid: int, name: str) -> str | None:
        try:
            target = os.readlink(os.path.join(self.proc, str(pid), name))
        except OSError:
            return None
        if not target or len(target) >= 127:
            return None
        return target if self._is_dev(target, maj, mnr) else None

    @staticmethod
    def _guess_name(maj: int, mnr: int) -> str | None:
        if maj == 3:
            if mnr > 255:
                return None
            path = "/dev/tty" + "pqrstuvwxyzabcde"[mnr >> 4] + "0123456789abcdef"[mnr & 15]
        elif maj == 4:
            path = f"/dev/tty{mnr}" if mnr < 64 else f"/dev/ttyS{mnr - 64}"
        elif 136 <= maj <= 143:
            path = f"/dev/pts/{mnr + (maj - 136) * 256}"
        elif maj == 156:
            path = f"/dev/ttySR{mnr + 256}"
        elif maj == 204:
            if mnr >= len(_LOW_DENSITY):
                return None
            path = "/dev/tty" + _LOW_DENSITY[mnr]
        elif maj in _SIMPLE_TTYS:
            path = f"/dev/{_SIMPLE_TTYS[maj]}{mnr}"
        else:
            return None
        return path if TtyNames._is_dev(path, maj, mnr) else None

    def name(self, dev: int, pid: int, abbrev_tty: bool = False, chop: int = 64) -> str:
        """The tty name of device number ``dev`` (``?`` for none), ``/dev/`` dropped.

        ``abbrev_tty`` also drops ``tty`` and ``pts/`` (ps ``tty4``).
        """
        dev %= 1 << 32
        if dev == 0:
            return "?"
        maj, mnr = _major(dev), _minor(dev)
        path = (self._driver_name(maj, mnr) or self._link_name(maj, mnr, pid, "fd/2")
                or self._guess_name(maj, mnr) or self._link_name(maj, mnr, pid, "fd/255"))
        if path is None:
            return "?"
        if path.startswith("/dev/") and len(path) > 5:
            path = path[5:]
        if abbrev_tty:
            if path.startswith("tty") and len(path) > 3:
                path = path[3:]
            if path.startswith("pts/") and len(path) > 4:
                path = path[4:]
        path = path[:chop]
        return "".join(c if " " < c <= "~" else "?" for c in path)


# --- misc per-process files ---------------------------------------------------------

def lookup_wchan(piddir: str) -> str:
    """wchan.c ``lookup_wchan``."""
    try:
        with open(os.path.join(piddir, "wchan"), "rb") as fh:
            buf = fh.read(63)
    except OSError:
        return "?"
    if not buf:
        return "?"
    buf = buf.split(b"\0", 1)[0]
    if buf == b"0":
        return "-"
    if buf.startswith(b"."):
        buf = buf[1:]
    return buf.lstrip(b"_").decode("ascii", "replace")


def dir_owner(piddir: str) -> tuple[int, int] | None:
    """``stat()`` of the process directory: (uid, gid), or None if it is gone."""
    try:
        st = os.stat(piddir)
    except OSError:
        return None
    if not stat_mod.S_ISDIR(st.st_mode):
        return None
    return st.st_uid, st.st_gid
