"""``linmem fincore``: util-linux 2.38.1 ``fincore``, on the host or a simulated machine.

fincore tells how much of each file is in the page cache. On the host it maps
the file a window at a time, without touching it, and asks the kernel which
pages of the mapping are resident::

    file:  |<----- window 0: 32768 pages ----->|<-- window 1 -->|
    mmap(PROT_NONE, MAP_PRIVATE, fd, offset)    (no page is faulted in)
    mincore(window, len, vec)  -> vec[i] & 1: page i is in the page cache
    PAGES = sum over windows;  RES = PAGES * page size;  SIZE = st_size

A port of misc-utils/fincore.c of util-linux 2.38.1 (``main``,
``fincore_name``, ``fincore_fd``, ``do_mincore``, ``add_output_data``) over
:mod:`linmem.tools.utillinux` (lib/strutils.c and libsmartcols). The output,
warnings and exit status are byte-identical to ``/usr/bin/fincore`` 2.38.1
for the same residency: columns RES PAGES SIZE FILE by default, ``-o LIST``
and ``-o +LIST``, ``-b``, ``-n``, ``-r``, ``-J``. A file that cannot be
opened, mapped or mincore'd is a warning (``fincore: failed to open: NAME:
No such file or directory``) and exit status 1; directories are skipped; the
table is printed at the end.

The page cache read can be a simulated machine's instead: ``--run DIR``,
where DIR is an output directory of ``linmem run`` (or one of its
``snapshots/NAME``), reads ``DIR/pagecache.json``::

    {"page_size": 4096,
     "files": [{"path": "/data/f200", "size": 209715200, "fs": "ext4",
                "cached": 51200, "dirty": 0, "writeback": 0,
                "evicted": 0, "recently_evicted": 0}]}

``cached`` is the resident pages. PATH arguments are the simulated paths; a
path that is not there fails as a missing file does, and a path that is a
parent directory of some file is skipped as a directory.

Beyond 2.38.1, the columns util-linux 2.40 added from cachestat(2) (Linux
6.5): DIRTY, WRITEBACK, EVICTED, RECENTLY_EVICTED in bytes and their
``_PAGES`` twins, and ``--output-all``. With ``--run`` they come from the
JSON file; on the host from the ``cachestat`` system call (PAGES and RES
still come from mincore, as in 2.38.1).

Differences from util-linux:

* option errors (no file, unknown column, bad option) print one
  ``linmem: fincore ...: WHAT`` line and exit 2; util-linux exits 1, with
  its usage hint or, for an empty or too long column list, without a word;
* ``-h`` also lists ``--run``, ``--output-all`` and the 2.40 columns;
* 2.40's JSON prints the human-readable byte columns (DIRTY...) unquoted, and
  its WRITEBACK cells show a stale value (the test in ``get_cstat_value``
  that guards them is inverted); here they are strings (numbers with
  ``-b``) and WRITEBACK is cachestat's ``nr_writeback``;
* on a host without cachestat(2) the 2.40 columns are refused (2.40 leaves
  them empty); a file cachestat fails on gets a warning and empty cells;
* a column list holds at most 8 columns, as 2.38.1's (``--output-all``
  gives all 12).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import posixpath
import stat
import sys
from dataclasses import dataclass

import click

from linmem.errors import InputError
from linmem.tools.free import ProcpsCommand
from linmem.tools.utillinux import (Column, locale_is_utf8, print_table, size_to_human_string,
                                    string_add_to_idarray)

UTIL_LINUX_VERSION = "util-linux 2.38.1"

# mmap and mincore N_PAGES_IN_WINDOW pages at a time: 128 MiB with 4 KiB pages.
N_PAGES_IN_WINDOW = 32 * 1024

CSTAT_FIELDS = ("dirty", "writeback", "evicted", "recently_evicted")


@dataclass(frozen=True)
class ColInfo:
    """fincore.c ``struct colinfo``, and which value the column shows."""

    name: str
    whint: float
    right: bool
    help: str
    field: str              # "file", "size", "cached" or a CSTAT_FIELDS name
    pages: bool = False     # shown in pages (else in bytes)


# In fincore.c's enum order (the order -h lists them); 2.40's after 2.38.1's four.
INFOS = (
    ColInfo("PAGES", 1, True, "file data resident in memory in pages", "cached", pages=True),
    ColInfo("SIZE", 5, True, "size of the file", "size"),
    ColInfo("FILE", 4, False, "file name", "file"),
    ColInfo("RES", 5, True, "file data resident in memory in bytes", "cached"),
    ColInfo("DIRTY_PAGES", 1, True, "number of dirty pages", "dirty", pages=True),
    ColInfo("DIRTY", 5, True, "number of dirty bytes", "dirty"),
    ColInfo("WRITEBACK_PAGES", 1, True, "number of pages marked for writeback", "writeback",
            pages=True),
    ColInfo("WRITEBACK", 5, True, "number of bytes marked for writeback", "writeback"),
    ColInfo("EVICTED_PAGES", 1, True, "number of evicted pages", "evicted", pages=True),
    ColInfo("EVICTED", 5, True, "number of evicted bytes", "evicted"),
    ColInfo("RECENTLY_EVICTED_PAGES", 1, True, "number of recently evicted pages",
            "recently_evicted", pages=True),
    ColInfo("RECENTLY_EVICTED", 5, True, "number of recently evicted bytes", "recently_evicted"),
)
COL_PAGES, COL_SIZE, COL_FILE, COL_RES = range(4)
N_COLUMNS_2_38 = 4
MAX_COLUMNS = 2 * N_COLUMNS_2_38            # int columns[ARRAY_SIZE(infos) * 2]
DEFAULT_COLUMNS = [COL_RES, COL_PAGES, COL_SIZE, COL_FILE]

FINCORE_USAGE = """
Usage:
 fincore [options] file...

Options:
 -J, --json            use JSON output format
 -b, --bytes           print sizes in bytes rather than in human readable format
 -n, --noheadings      don't print headings
 -o, --output <list>   output columns
     --output-all      output all columns
 -r, --raw             use raw output format
     --run <dir>       read the page cache of a simulated machine:
                         <dir>/pagecache.json, which linmem run writes

 -h, --help            display this help
 -V, --version         display version

Available output columns:
{columns_2_38}

Columns of util-linux 2.40 (cachestat(2): --run, or Linux 6.5+):
{columns_2_40}

For more details see fincore(1).
"""


def _usage() -> str:
    lines = [" %11s  %s" % (c.name, c.help) for c in INFOS[:N_COLUMNS_2_38]]
    extra = [" %22s  %s" % (c.name, c.help) for c in INFOS[N_COLUMNS_2_38:]]
    return FINCORE_USAGE.format(columns_2_38="\n".join(lines), columns_2_40="\n".join(extra))


# --- residency --------------------------------------------------------------------------------

@dataclass
class Residency:
    """What fincore prints of one file: its size in bytes and its pages in the cache.

    ``cstat`` holds the cachestat counts (pages) by CSTAT_FIELDS name, or is
    None where they are not known.
    """

    size: int
    cached: int
    cstat: dict[str, int] | None = None


class FincoreFailure(Exception):
    """A file fincore warns about and leaves out (exit status 1): ``warn(3)``'s line."""

    def __init__(self, what: str, name: bytes, err: int):
        super().__init__(what)
        self.line = b"fincore: %s: %s: %s\n" % (what.encode(), name, os.strerror(err).encode())


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [("nr_cache", ctypes.c_uint64), ("nr_dirty", ctypes.c_uint64),
                ("nr_writeback", ctypes.c_uint64), ("nr_evicted", ctypes.c_uint64),
                ("nr_recently_evicted", ctypes.c_uint64)]


# One number on every architecture since Linux 5.1, but alpha's (offset by 110).
SYS_cachestat = 561 if os.uname().machine == "alpha" else 451
PROT_NONE, MAP_PRIVATE = 0, 0x02
MAP_FAILED = ctypes.c_void_p(-1).value


class HostPageCache:
    """The host's page cache, through open, fstat, mmap and mincore (fincore_name)."""

    def __init__(self, want_cstat: bool = False):
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        libc = ctypes.CDLL(None, use_errno=True)
        self._mmap = libc.mmap
        self._mmap.restype = ctypes.c_void_p
        self._mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_int64]
        self._munmap = libc.munmap
        self._munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self._mincore = libc.mincore
        self._mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        self._syscall = libc.syscall
        self._vec = (ctypes.c_ubyte * N_PAGES_IN_WINDOW)()
        self.want_cstat = want_cstat
        if want_cstat and not self.has_cachestat():
            raise InputError("fincore", "the DIRTY, WRITEBACK and EVICTED columns need "
                             "cachestat(2) (Linux 6.5+), which this kernel does not have")

    def lookup(self, name: bytes) -> Residency | None:
        """fincore_name: the file's residency, None for a directory (ignored).

        Raises FincoreFailure when the file cannot be opened, fstat'ed,
        mapped or mincore'd.
        """
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError as err:
            raise FincoreFailure("failed to open", name, err.errno) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return None
            cached = self.fincore_fd(fd, name, st.st_size) if st.st_size else 0
            cstat = self.cachestat(fd, name) if self.want_cstat else None
            return Residency(st.st_size, cached, cstat)
        finally:
            os.close(fd)

    def fincore_fd(self, fd: int, name: bytes, file_size: int) -> int:
        """Count the resident pages, mapping N_PAGES_IN_WINDOW pages at a time."""
        window_size = N_PAGES_IN_WINDOW * self.page_size
        count = 0
        for offset in range(0, file_size, window_size):
            length = min(window_size, file_size - offset)
            window = self._mmap(None, length, PROT_NONE, MAP_PRIVATE, fd, offset)
            if window in (None, MAP_FAILED):
                raise FincoreFailure("failed to do mmap", name, ctypes.get_errno())
            try:
                count += self.do_mincore(window, length, name)
            finally:
                self._munmap(window, length)
        return count

    def do_mincore(self, window: int, length: int, name: bytes) -> int:
        """mincore(2) over one window: the pages whose vector byte has bit 0 set."""
        if self._mincore(window, length, self._vec) < 0:
            raise FincoreFailure("failed to do mincore", name, ctypes.get_errno())
        npages = -(-length // self.page_size)
        return bytes(self._vec[:npages]).translate(_LOW_BIT).count(1)

    def has_cachestat(self) -> bool:
        """Whether the kernel has cachestat(2): asked with a bad fd, it says EBADF, not ENOSYS."""
        crange, cstat = _CachestatRange(0, 0), _Cachestat()
        rc = self._syscall(SYS_cachestat, -1, ctypes.byref(crange), ctypes.byref(cstat), 0)
        return rc == 0 or ctypes.get_errno() != errno.ENOSYS

    def cachestat(self, fd: int, name: bytes) -> dict[str, int] | None:
        """cachestat(2) over the whole file; a warning and None when it fails (as 2.40)."""
        crange, cstat = _CachestatRange(0, 0), _Cachestat()
        if self._syscall(SYS_cachestat, fd, ctypes.byref(crange), ctypes.byref(cstat), 0) != 0:
            failure = FincoreFailure("failed to do cachestat", name, ctypes.get_errno())
            sys.stderr.buffer.write(failure.line)
            sys.stderr.flush()
            return None
        return {field: getattr(cstat, "nr_" + field) for field in CSTAT_FIELDS}


_LOW_BIT = bytes(b & 1 for b in range(256))


class SimulatedPageCache:
    """A simulated machine's page cache, from the ``pagecache.json`` linmem run writes."""

    def __init__(self, run_dir: str, need_cstat: tuple[str, ...] = ()):
        self.path = os.path.join(run_dir, "pagecache.json")
        doc = self._load()
        self.page_size = self._int(doc, "page_size", "page_size", positive=True)
        files = doc.get("files")
        if not isinstance(files, list):
            raise InputError(self.path, f"files: expected a list, got {files!r:.60}")
        self.files: dict[bytes, Residency] = {}
        self.dirs: set[bytes] = {b"/"}
        for i, entry in enumerate(files):
            self._add(f"files[{i}]", entry, need_cstat)

    def _load(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            raise InputError(self.path, "no such file (is the directory an output of "
                             "linmem run or one of its snapshots?)") from None
        except OSError as err:
            raise InputError(self.path, err.strerror) from None
        except json.JSONDecodeError as err:
            where = f"{self.path}:{err.lineno}"
            raise InputError(where, f"column {err.colno}: {err.msg}") from None
        except UnicodeDecodeError as err:
            raise InputError(self.path, f"byte {err.start}: not UTF-8") from None
        if not isinstance(doc, dict):
            raise InputError(self.path, "expected a JSON object with page_size and files")
        return doc

    def _int(self, obj: dict, key: str, where: str, positive: bool = False) -> int:
        value = obj.get(key)
        if key not in obj:
            raise InputError(self.path, f"{where}: missing")
        if not isinstance(value, int) or isinstance(value, bool) or value < int(positive):
            kind = "a positive" if positive else "a non-negative"
            raise InputError(self.path, f"{where}: expected {kind} integer, got {value!r:.60}")
        return value

    def _add(self, where: str, entry, need_cstat: tuple[str, ...]) -> None:
        if not isinstance(entry, dict):
            raise InputError(self.path, f"{where}: expected an object, got {entry!r:.60}")
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InputError(self.path,
                             f"{where}.path: expected an absolute path, got {path!r:.60}")
        size = self._int(entry, "size", f"{where}.size")
        cached = self._int(entry, "cached", f"{where}.cached")
        cstat = {field: self._int(entry, field, f"{where}.{field}")
                 for field in CSTAT_FIELDS if field in entry or field in need_cstat}
        key = _normpath(os.fsencode(path))
        if key in self.files:
            raise InputError(self.path, f"{where}.path: {path} is listed twice")
        known = len(cstat) == len(CSTAT_FIELDS)
        self.files[key] = Residency(size, cached, cstat if known else None)
        parent = posixpath.dirname(key)
        while parent not in self.dirs:
            self.dirs.add(parent)
            parent = posixpath.dirname(parent)

    def lookup(self, name: bytes) -> Residency | None:
        """The file's residency, None for a directory; FincoreFailure (ENOENT) if absent."""
        key = _normpath(name) if name.startswith(b"/") else name
        if key in self.files:
            return self.files[key]
        if key in self.dirs:
            return None
        raise FincoreFailure("failed to open", name, errno.ENOENT)


def _normpath(path: bytes) -> bytes:
    """An absolute path without ``//``, ``.`` or ``..`` (POSIX's leading ``//`` too)."""
    return b"/" + posixpath.normpath(path).lstrip(b"/")


# --- the table --------------------------------------------------------------------------------

def choose_columns(outarg: str | None, output_all: bool) -> list[int]:
    """The defaults (or, with --output-all, every column), then ``-o`` applied to them."""
    columns = list(range(len(INFOS))) if output_all else list(DEFAULT_COLUMNS)
    if outarg is not None:
        columns = string_add_to_idarray(outarg, columns, MAX_COLUMNS, [c.name for c in INFOS])
    return columns


def add_output_data(columns: list[int], name: bytes, res: Residency, page_size: int,
                    in_bytes: bool) -> list[bytes]:
    """The cells of one file's line, as fincore.c ``add_output_data`` formats them."""
    cells = []
    for col in columns:
        info = INFOS[col]
        if info.field == "file":
            cells.append(name)
            continue
        if info.field == "size":
            value = res.size
        elif info.field == "cached":
            value = res.cached
        elif res.cstat is None:
            cells.append(b"")
            continue
        else:
            value = res.cstat[info.field]
        if not info.pages and info.field != "size":
            value *= page_size
        human = not info.pages and not in_bytes
        cells.append((size_to_human_string(value) if human else str(value)).encode())
    return cells


def scols_columns(columns: list[int], in_bytes: bool) -> list[Column]:
    """The libsmartcols columns: FILE a JSON string, sizes numbers only with -b."""
    out = []
    for col in columns:
        info = INFOS[col]
        number = info.field != "file" and (info.pages or in_bytes)
        out.append(Column(info.name, info.whint, info.right, number))
    return out


def run(files: list[bytes], source, columns: list[int], *, in_bytes=False, noheadings=False,
        raw=False, json_=False) -> int:
    """Print the table for ``files``; warn of the ones that fail; return the exit status."""
    status = 0
    rows = []
    for name in files:
        try:
            res = source.lookup(name)
        except FincoreFailure as failure:
            sys.stderr.buffer.write(failure.line)
            sys.stderr.flush()
            status = 1
            continue
        if res is not None:
            rows.append(add_output_data(columns, name, res, source.page_size, in_bytes))
    sys.stdout.flush()
    sys.stdout.buffer.write(print_table(scols_columns(columns, in_bytes), rows, name="fincore",
                                        raw=raw, json=json_, noheadings=noheadings,
                                        utf8=locale_is_utf8()))
    sys.stdout.flush()
    return status


# --- options ----------------------------------------------------------------------------------

class FincoreCommand(ProcpsCommand):
    """getopt_long-like parsing (long option prefixes); option errors are one-line InputErrors."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise InputError("fincore", err.format_message()) from None


def _print_version(ctx, _param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"fincore from {UTIL_LINUX_VERSION}")
        ctx.exit(0)


@click.command("fincore", cls=FincoreCommand, usage_text=_usage(),
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-J", "--json", "json_", is_flag=True)
@click.option("-b", "--bytes", "in_bytes", is_flag=True)
@click.option("-n", "--noheadings", is_flag=True)
@click.option("-o", "--output", "outarg", metavar="LIST")
@click.option("--output-all", is_flag=True)
@click.option("-r", "--raw", is_flag=True)
@click.option("--run", "run_dir", metavar="DIR")
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version)
@click.argument("files", nargs=-1)
def fincore(json_, in_bytes, noheadings, outarg, output_all, raw, run_dir, files):
    """Count pages of file contents in core, as util-linux 2.38.1 fincore."""
    if not files:
        raise InputError("fincore", "no file specified")
    columns = choose_columns(outarg, output_all)
    cstat = tuple(sorted({INFOS[c].field for c in columns} & set(CSTAT_FIELDS)))
    source = SimulatedPageCache(run_dir, cstat) if run_dir else HostPageCache(bool(cstat))
    return run([os.fsencode(f) for f in files], source, columns, in_bytes=in_bytes,
               noheadings=noheadings, raw=raw, json_=json_)
