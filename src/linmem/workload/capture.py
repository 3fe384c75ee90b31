"""Capturing a real program: its memory accesses and its mappings.

``linmem capture -- CMD ARGS`` runs CMD under valgrind's lackey tool::

    valgrind --tool=lackey --trace-mem=yes --log-fd=N CMD ARGS
         |                                      |
         | one line per access, to a pipe       | /proc/PID/maps, polled
         v                                      v
    lackey scanner -> native trace (OUT)    guest mappings (OUT.maps.json)

The trace is converted to linmem's native format as it streams (the lackey
text, several GB for a second of a program, is never stored). Between two
chunks of the trace (:data:`POLL_REQUESTS` requests) the capture reads
``/proc/PID/maps`` of the valgrind process. Valgrind runs the program (the
*guest*) inside its own process, so that file lists the guest's mappings
among valgrind's own; and because the guest waits on the pipe while the
chunk is parsed, the number of requests read so far is the guest's clock
at the poll, to within the pipe's 64 KiB.

Which mappings are the guest's (:func:`guest_verdict`), the rule:

1. a mapping of a file in valgrind's own directory (``/usr/libexec/valgrind/``
   or ``lib*/valgrind/``: the tool, ``vgpreload_*.so`` that valgrind puts
   into the guest) or of valgrind's gdbserver pipe (``/tmp/vgdb-pipe-*``)
   is valgrind's;
2. the kernel's special mappings (``[stack]``, ``[vvar]``, ``[vdso]``,
   ``[vsyscall]``, ``[heap]``) belong to the host process, valgrind: the
   guest gets no vDSO, and its stack and brk heap are anonymous mappings
   that valgrind made for it;
3. any other file mapping is the guest's (its program, ld.so, libraries,
   locale files);
4. an anonymous mapping is the guest's when a request of the trace falls in
   it, valgrind's otherwise: valgrind's own heap, translation cache and
   stacks are never in lackey's output, which reports only guest code. A
   guest mapping that was never touched holds no pages, so leaving it out
   changes no resident set.

For each guest mapping (a distinct start, end, permissions, file and
offset) the capture keeps the request numbers of the polls at which it was
first and last seen, and, to bound its real life, the polls just before
(``after``: it was not there yet) and just after (``gone``: it was no
longer there; null when it lived to the end). A mapping that lived and
died between two polls is not seen; requests into it are dropped (and
counted) at replay.

The maps file (version 1) is JSON::

    {"version": 1, "command": [...], "requests": N, "polls": P,
     "mappings": [{"start": 4194304, "end": 4321280, "perms": "r--p",
                   "offset": 0, "file": "/usr/bin/python3.11", "file_size": 6.8e6,
                   "first": 0, "last": 1234567, "after": null, "gone": null}, ...],
     "excluded": {"valgrind": 12, "untouched": 9}}

``file`` is null for an anonymous mapping; ``file_size`` is the size of the
file when the capture ended (null when it could not be read).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from linmem.errors import InputError

MAPS_VERSION = 1
POLL_REQUESTS = 1 << 16           # requests between two polls of /proc/PID/maps
PAGE_SHIFT = 12
_MAPS_LINE = re.compile(
    rb"^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) [0-9a-f]+:[0-9a-f]+ \d+\s*(.*)$")
VALGRIND_DIRS = re.compile(r"^/usr/(libexec|lib|lib64|lib/x86_64-linux-gnu)/valgrind/")
SPECIAL = ("[stack]", "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]", "[heap]")


@dataclass(frozen=True)
class MapsLine:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str
    offset: int
    name: str            # the path, a [special] name, or "" for anonymous memory

    @property
    def anonymous(self) -> bool:
        return not self.name


def parse_maps(text: bytes) -> list[MapsLine]:
    """The lines of a /proc/PID/maps text (show_map_vma's format); lines
    that do not parse (none should) are skipped."""
    out = []
    for raw in text.splitlines():
        m = _MAPS_LINE.match(raw)
        if m:
            name = m.group(5).decode("utf-8", "replace").rstrip()
            if name.endswith(" (deleted)"):
                name = name[:-len(" (deleted)")]
            out.append(MapsLine(int(m.group(1), 16), int(m.group(2), 16),
                                m.group(3).decode(), int(m.group(4), 16), name))
    return out


def guest_verdict(line: MapsLine) -> str:
    """"guest", "valgrind" or "touched?" (anonymous: the guest's when the
    trace touches it), by the rule in the module's docstring."""
    if line.anonymous:
        return "touched?"
    if VALGRIND_DIRS.match(line.name) or line.name.startswith("/tmp/vgdb-pipe"):
        return "valgrind"
    if line.name in SPECIAL or line.name.startswith("["):
        return "valgrind"
    return "guest"


class MapsRecorder:
    """The guest's candidate mappings over the polls, with their lives."""

    def __init__(self):
        self.records: dict[tuple, dict] = {}     # key -> record
        self.polls = 0
        self.last_poll = None                     # request number of the last poll
        self.valgrind: set[tuple] = set()

    def poll(self, text: bytes, now: int) -> None:
        """Note the mappings of one read of /proc/PID/maps at request ``now``."""
        seen = set()
        for line in parse_maps(text):
            key = (line.start, line.end, line.perms, line.offset, line.name)
            if guest_verdict(line) == "valgrind":
                self.valgrind.add(key)
                continue
            seen.add(key)
            rec = self.records.get(key)
            if rec is None:
                self.records[key] = rec = {"first": now, "after": self.last_poll, "gone": None}
            rec["last"] = now
        for key, rec in self.records.items():
            if rec["gone"] is None and key not in seen and rec["last"] != now:
                rec["gone"] = now
        self.polls += 1
        self.last_poll = now

    def mappings(self, touched: np.ndarray) -> tuple[list[dict], int]:
        """The guest's mappings (anonymous ones only when a page of
        ``touched``, the sorted distinct page numbers of the trace, falls
        in them) and how many anonymous ones were left out."""
        out, untouched = [], 0
        for (start, end, perms, offset, name), rec in sorted(self.records.items()):
            if not name:
                lo = np.searchsorted(touched, start >> PAGE_SHIFT)
                if lo >= len(touched) or touched[lo] >= end >> PAGE_SHIFT:
                    untouched += 1
                    continue
            out.append({"start": start, "end": end, "perms": perms, "offset": offset,
                        "file": name or None, "file_size": _file_size(name),
                        "first": rec["first"], "last": rec["last"],
                        "after": rec["after"], "gone": rec["gone"]})
        return out, untouched


def _file_size(name: str) -> int | None:
    if not name:
        return None
    try:
        return os.stat(name).st_size
    except OSError:
        return None


class PageSet:
    """The distinct page numbers of a trace, gathered chunk by chunk."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.pending = 0

    def add(self, addr: np.ndarray) -> None:
        self.parts.append(np.unique(addr >> PAGE_SHIFT))
        self.pending += 1
        if self.pending >= 64:
            self.parts = [np.unique(np.concatenate(self.parts))]
            self.pending = 0

    def pages(self) -> np.ndarray:
        return np.unique(np.concatenate(self.parts)) if self.parts else np.zeros(0, np.int64)


# --------------------------------------------------------------- the maps file

def maps_path(trace_path: str) -> str:
    """The maps file that goes with a captured trace."""
    return f"{trace_path}.maps.json"


def write_maps(path: str, doc: dict) -> None:
    """Write the maps file atomically (a temporary name, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_dumps(doc))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _dumps(doc: dict) -> str:
    """The maps document as JSON, one mapping a line."""
    head = {k: v for k, v in doc.items() if k != "mappings"}
    lines = ",\n".join("  " + json.dumps(m) for m in doc["mappings"])
    body = json.dumps(head, indent=1)[:-2]
    return f'{body},\n "mappings": [\n{lines}\n ]\n}}\n'


_FIELDS = {"start": int, "end": int, "perms": str, "offset": int, "file": (str, type(None)),
           "file_size": (int, type(None)), "first": int, "last": int,
           "after": (int, type(None)), "gone": (int, type(None))}


def load_maps(path: str) -> dict:
    """The maps file at ``path``, checked; InputError naming the file and
    the key path of the first thing wrong."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except OSError as err:
        raise InputError(path, f"cannot read the maps file: {err.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f"{path}:{err.lineno}" if isinstance(err, json.JSONDecodeError) else path
        raise InputError(where, f"not JSON: {getattr(err, 'msg', err)}") from None
    if not isinstance(doc, dict):
        raise InputError(path, "a maps file is a JSON object with \"mappings\"")
    if doc.get("version") != MAPS_VERSION:
        raise InputError(f"{path}: version", f"{doc.get('version')!r} is not supported "
                         f"(this linmem reads version {MAPS_VERSION})")
    maps = doc.get("mappings")
    if not isinstance(maps, list):
        raise InputError(f"{path}: mappings", "missing, or not a list")
    for i, m in enumerate(maps):
        _check_mapping(f"{path}: mappings[{i}]", m)
    return doc


def _check_mapping(where: str, m) -> None:
    if not isinstance(m, dict):
        raise InputError(where, f"a mapping is an object, not {type(m).__name__}")
    for key, kind in _FIELDS.items():
        if key not in m:
            raise InputError(f"{where}.{key}", "missing")
        if not isinstance(m[key], kind) or isinstance(m[key], bool):
            raise InputError(f"{where}.{key}", f"{m[key]!r} has the wrong type")
    unknown = sorted(set(m) - set(_FIELDS))
    if unknown:
        raise InputError(f"{where}.{unknown[0]}", "unknown key")
    if m["start"] < 0 or m["start"] % 4096 or m["end"] % 4096 or m["end"] <= m["start"]:
        raise InputError(f"{where}", f"bad range {m['start']:#x}-{m['end']:#x} (page-aligned, "
                         "start < end)")
    if m["offset"] < 0 or m["offset"] % 4096:
        raise InputError(f"{where}.offset", f"{m['offset']} is not a page-aligned offset")
    if not re.fullmatch(r"[r-][w-][x-][ps]", m["perms"]):
        raise InputError(f"{where}.perms", f"{m['perms']!r} is not like \"rw-p\"")
    if m["file"] is not None and not m["file"].startswith("/"):
        raise InputError(f"{where}.file", f"{m['file']!r} is not an absolute path")


# ------------------------------------------------------------------ the capture

class CaptureError(InputError):
    """valgrind is missing, or the command could not be started."""


@dataclass
class CaptureResult:
    """What a capture wrote and saw."""

    trace: str
    maps: str
    requests: int
    mappings: int
    polls: int
    exit_status: int
    pages: int


def valgrind_path() -> str:
    """The valgrind to run; CaptureError when there is none on PATH."""
    import shutil
    found = shutil.which("valgrind")
    if found is None:
        raise CaptureError("capture", "valgrind is not installed (no valgrind on PATH); "
                           "install it, e.g. apt-get install valgrind")
    return found


def _check_command(cmd: list[str]) -> None:
    import shutil
    if not cmd:
        raise CaptureError("capture", "no command to run (linmem capture -- CMD ARGS)")
    if shutil.which(cmd[0]) is None:
        raise CaptureError("capture", f"{cmd[0]}: command not found or not executable")


def run_capture(cmd: list[str], out: str, progress=None, stdout=None,
                stderr=None) -> CaptureResult:
    """Run ``cmd`` under valgrind lackey; write the native trace ``out`` and
    its maps file ``out.maps.json``. ``progress(requests, mappings)`` is
    called at each poll. CaptureError when valgrind is missing, the command
    cannot be started or valgrind gives no trace."""
    import subprocess
    from functools import partial

    from linmem.trace._lackey_scan import HEX, scan
    from linmem.trace.lackey import _LackeyReader
    from linmem.trace.native import write_native

    valgrind = valgrind_path()
    _check_command(cmd)
    rfd, wfd = os.pipe()
    argv = [valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-fd={wfd}", *cmd]
    try:
        proc = subprocess.Popen(argv, pass_fds=(wfd,), stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr)
    except OSError as err:
        os.close(rfd)
        os.close(wfd)
        raise CaptureError("capture", f"cannot start valgrind: {err.strerror}") from None
    os.close(wfd)
    recorder, pages = MapsRecorder(), PageSet()
    maps_file = f"/proc/{proc.pid}/maps"

    def chunks():
        with os.fdopen(rfd, "rb", buffering=0) as pipe:
            reader = _LackeyReader(f"valgrind lackey of {cmd[0]}", pipe, POLL_REQUESTS,
                                   partial(scan, hexv=HEX))
            _poll(recorder, maps_file, 0)
            for chunk in reader.chunks():
                pages.add(chunk.addr)
                yield chunk
                _poll(recorder, maps_file, reader.time)
                if progress is not None:
                    progress(reader.time, len(recorder.records))

    try:
        total = write_native(out, chunks())
    except InputError as err:
        proc.kill()
        status = proc.wait()
        if "no lackey records" in str(err) or "is empty" in str(err):
            raise CaptureError("capture", f"{cmd[0]} could not be run under valgrind "
                               f"(valgrind exited with status {status})") from None
        raise
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    status = proc.wait()
    mappings, untouched = recorder.mappings(pages.pages())
    doc = {"version": MAPS_VERSION, "command": list(cmd), "requests": total,
           "polls": recorder.polls, "exit_status": status, "mappings": mappings,
           "excluded": {"valgrind": len(recorder.valgrind), "untouched": untouched}}
    write_maps(maps_path(out), doc)
    return CaptureResult(out, maps_path(out), total, len(mappings), recorder.polls, status,
                         len(pages.pages()))


def _poll(recorder: MapsRecorder, maps_file: str, now: int) -> None:
    try:
        with open(maps_file, "rb") as f:
            text = f.read()
    except OSError:                  # the process has ended
        return
    if text:
        recorder.poll(text, now)
