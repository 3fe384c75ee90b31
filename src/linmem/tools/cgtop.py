"""``linmem cgtop``: systemd-cgtop's memory view of a cgroup tree.

One row per memory cgroup, read from the files of a cgroup tree: the
host's ``/sys/fs/cgroup`` or one that ``linmem run`` wrote (``OUT/sys``),
cgroup v2 or the v1 memory controller (``machine.cgroup: v1``)::

    sys/fs/cgroup/                      v2: cgroup.procs in every directory
        batch/memory.current ...
    sys/fs/cgroup/memory/               v1: memory.usage_in_bytes in every directory
        batch/memory.usage_in_bytes ...

Follows systemd-cgtop (src/cgtop/cgtop.c) ordered by memory (``-m``, here
the default): ``refresh_one`` walks the tree to ``--depth`` levels below
CGROUP (default 3); ``Memory`` is memory.current (v1:
memory.usage_in_bytes), and for the root cgroup, which has no such file,
MemTotal - MemAvailable of the proc tree's meminfo
(``procfs_memory_get_used``); ``Procs`` counts the PIDs of cgroup.procs,
summed over the subgroups walked (``-P --recursive=yes``); rows are sorted
by ``group_compare``: a parent before its children, then by memory
(largest first; rows without a number last), then by path
(``path_compare``); sizes print as ``format_bytes`` does (``1.5G``, and
``64M`` rather than ``64.0M``), or in bytes with ``-r``.

Besides systemd-cgtop's columns, the memory controller's own: memory.high,
memory.max, memory.low, memory.peak, memory.swap.current and the counts of
memory.events (low, high, max, oom, oom_kill; hierarchical). The v1
controller has no memory.high, memory.low nor memory.events: its limit is
memory.limit_in_bytes, its peak memory.max_usage_in_bytes, its swap the
``total_swap`` of memory.stat, its max events memory.failcnt (what the
kernel's OOM report calls the v2 max count too) and its oom_kill that of
memory.oom_control; the others show as ``-``.

Differences from systemd-cgtop: no CPU or I/O columns; no interactive
mode (every run is ``--batch``; ``-n`` iterations, default 1, ``-d``
apart); every cgroup walked is listed, also those systemd-cgtop hides for
having neither tasks nor memory; ``-`` means a file is absent, 0 is shown
as 0; ``--json`` prints each iteration as one line of JSON. A file whose
text is not what the kernel writes is one ``linmem: FILE:LINE: WHAT`` line
and exit status 2, as is a directory that holds no cgroup tree. Only files
are read: the tool changes nothing.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from linmem.errors import InputError

EVENTS = ("low", "high", "max", "oom", "oom_kill")
UNLIMITED_V1 = (1 << 63) - 4096           # PAGE_COUNTER_MAX pages, in bytes (x86-64)
ORDERS = ("memory", "path", "tasks")
IEC = (("E", 1 << 60), ("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20),
       ("K", 1 << 10))


@dataclass
class Group:
    """One cgroup's row: sizes in bytes, limits in bytes or ``"max"``, None
    where the file is absent."""

    path: str
    procs: int | None = None
    memory: int | None = None
    high: int | str | None = None
    max: int | str | None = None
    low: int | str | None = None
    peak: int | None = None
    swap: int | None = None
    events: dict = field(default_factory=lambda: dict.fromkeys(EVENTS))


# --- reading the files -------------------------------------------------------------

def _read(path: Path) -> str | None:
    """A file's text; None when it is absent (or hidden from us)."""
    try:
        return path.read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    except UnicodeDecodeError:
        raise InputError(str(path), "not ASCII text") from None
    except OSError as err:
        raise InputError(str(path), f"cannot read: {err.strerror or err}") from None


def _number(text: str, where: str, what: str = "a number of bytes") -> int:
    """A non-negative decimal number, as the kernel prints one."""
    if not text.isdigit():
        raise InputError(where, f"expected {what}, got {text[:40]!r}")
    return int(text)


def read_value(path: Path, limit: bool = False) -> int | str | None:
    """A one-line file: bytes, or (``limit``) bytes or ``max``."""
    text = _read(path)
    if text is None:
        return None
    line = text.strip()
    if limit and line == "max":
        return line
    return _number(line, f"{path}:1", "max or a number of bytes" if limit else
                   "a number of bytes")


def read_keyed(path: Path) -> dict[str, int] | None:
    """A ``key value`` file (memory.events, memory.stat, memory.oom_control)."""
    text = _read(path)
    if text is None:
        return None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if len(words) != 2:
            raise InputError(f"{path}:{number}", f"expected 'key value', got {line[:40]!r}")
        values[words[0]] = _number(words[1], f"{path}:{number}", f"a number after {words[0]}")
    return values


def count_procs(path: Path) -> int | None:
    """The PIDs listed in cgroup.procs."""
    text = _read(path)
    if text is None:
        return None
    lines = text.split()
    for number, pid in enumerate(lines, 1):
        _number(pid, f"{path}:{number}", "a PID")
    return len(lines)


def memory_used(proc: Path) -> int | None:
    """procfs_memory_get_used(): MemTotal - MemAvailable of PROC/meminfo, in
    bytes; None without the file."""
    if not (proc / "meminfo").is_file():
        return None
    from linmem.procfs.parse import read_meminfo
    fields = read_meminfo(proc)
    for key in ("MemTotal", "MemAvailable"):
        if key not in fields:
            raise InputError(str(proc / "meminfo"), f"no {key} line")
    return (fields["MemTotal"] - fields["MemAvailable"]) * 1024


# --- one group of each version -----------------------------------------------------

def v2_group(directory: Path, path: str) -> Group:
    """A cgroup v2 directory's row (the root's files are left to the caller)."""
    g = Group(path, procs=count_procs(directory / "cgroup.procs"),
              memory=read_value(directory / "memory.current"),
              high=read_value(directory / "memory.high", limit=True),
              max=read_value(directory / "memory.max", limit=True),
              low=read_value(directory / "memory.low", limit=True),
              peak=read_value(directory / "memory.peak"),
              swap=read_value(directory / "memory.swap.current"))
    events = read_keyed(directory / "memory.events")
    if events is not None:
        g.events = {k: events.get(k) for k in EVENTS}
    return g


def v1_group(directory: Path, path: str) -> Group:
    """A v1 memory controller directory's row."""
    limit = read_value(directory / "memory.limit_in_bytes")
    g = Group(path, procs=count_procs(directory / "cgroup.procs"),
              memory=read_value(directory / "memory.usage_in_bytes"),
              max="max" if limit is not None and limit >= UNLIMITED_V1 else limit,
              peak=read_value(directory / "memory.max_usage_in_bytes"))
    stat = read_keyed(directory / "memory.stat")
    g.swap = stat.get("total_swap") if stat is not None else None
    oom = read_keyed(directory / "memory.oom_control")
    g.events["max"] = read_value(directory / "memory.failcnt")
    g.events["oom_kill"] = oom.get("oom_kill") if oom is not None else None
    return g


# --- the tree ----------------------------------------------------------------------

def find_tree(sys_dir: Path) -> tuple[Path, int]:
    """The cgroup mount below a /sys directory, and its version (1 or 2)."""
    if not sys_dir.is_dir():
        raise InputError(str(sys_dir), "no such directory")
    mount = sys_dir / "fs" / "cgroup"
    if (mount / "memory" / "memory.usage_in_bytes").is_file():
        return mount / "memory", 1
    if (mount / "cgroup.procs").is_file():
        return mount, 2
    raise InputError(str(mount), "no cgroup tree here: expected cgroup.procs (cgroup v2) or "
                                 "memory/memory.usage_in_bytes (the v1 memory controller)")


def walk(mount: Path, version: int, start: str, depth: int, proc: Path) -> list[Group]:
    """Models refresh_one(): the groups from ``start`` down to ``depth``
    levels below it, each with the procs of its walked subtree added."""
    top = mount / start.strip("/") if start != "/" else mount
    if not top.is_dir():
        raise InputError(str(top), f"no cgroup {start} in this tree")
    groups: list[Group] = []
    _walk_one(top, start, version, 0, depth, proc, groups)
    return groups


def _walk_one(directory: Path, path: str, version: int, level: int, depth: int,
              proc: Path, out: list) -> Group:
    group = (v1_group if version == 1 else v2_group)(directory, path)
    if path == "/":                        # is_root_cgroup(): the machine's numbers
        group.memory = memory_used(proc)
    out.append(group)
    if level == depth:
        return group
    for child in sorted(os.scandir(directory), key=lambda e: e.name):
        if child.is_dir(follow_symlinks=False):
            sub = _walk_one(Path(child.path), f"{path.rstrip('/')}/{child.name}", version,
                            level + 1, depth, proc, out)
            if sub.procs is not None:
                group.procs = (group.procs or 0) + sub.procs
    return group


# --- order and output --------------------------------------------------------------

def _path_key(path: str) -> list[str]:
    """path_compare(): component by component."""
    return [c for c in path.split("/") if c]


def group_compare(x: Group, y: Group, order: str) -> int:
    """Models group_compare(): parents first, then the order's value
    (largest first, rows without one last), then the path."""
    if path_below(y.path, x.path):
        return -1
    if path_below(x.path, y.path):
        return 1
    if order != "path":
        a, b = (x.memory, y.memory) if order == "memory" else (x.procs, y.procs)
        if a is not None and b is not None and a != b:
            return -1 if a > b else 1
        if (a is None) != (b is None):
            return 1 if a is None else -1
    kx, ky = _path_key(x.path), _path_key(y.path)
    return (kx > ky) - (kx < ky)


def path_below(path: str, prefix: str) -> bool:
    """path_startswith(): ``path`` is ``prefix`` or below it."""
    p, q = _path_key(path), _path_key(prefix)
    return p[:len(q)] == q


def ordered(groups: list[Group], order: str = "memory") -> list[Group]:
    return sorted(groups, key=functools.cmp_to_key(lambda a, b: group_compare(a, b, order)))


def format_bytes(n: int) -> str:
    """Models systemd's format_bytes(): IEC units, one truncated decimal
    shown only when it is not 0 (``1.5G``, ``64M``, ``512B``)."""
    for i, (suffix, factor) in enumerate(IEC):
        if n >= factor:
            last = i == len(IEC) - 1
            tenth = (n * 10 // factor) % 10 if last else \
                (n // IEC[i + 1][1] * 10 // IEC[-1][1]) % 10
            return f"{n // factor}.{tenth}{suffix}" if tenth else f"{n // factor}{suffix}"
    return f"{n}B"


def _cell(value, raw: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) or raw:
        return str(value)
    return format_bytes(value)


def table(groups: list[Group], raw: bool, order: str):
    """The rows as a rich Table; the column the rows are ordered by is bold."""
    from rich.table import Table
    sizes = ("Memory", "High", "Max", "Low", "Peak", "Swap")
    t = Table(box=None, pad_edge=False)
    t.add_column("Control Group", style="bold" if order == "path" else None, no_wrap=True)
    t.add_column("Procs", justify="right", style="bold" if order == "tasks" else None)
    for name in sizes:
        t.add_column(name, justify="right", style="bold" if name == "Memory" and
                     order == "memory" else None)
    for name in EVENTS:
        t.add_column(f"events\n{name}", justify="right")
    for g in groups:
        values = (g.memory, g.high, g.max, g.low, g.peak, g.swap)
        t.add_row(g.path, "-" if g.procs is None else str(g.procs),
                  *(_cell(v, raw) for v in values),
                  *("-" if g.events[k] is None else str(g.events[k]) for k in EVENTS))
    return t


def read_tree(sys_dir: Path, proc: Path, start: str, depth: int, order: str) -> list[Group]:
    """One look at the tree: its groups, ordered."""
    mount, version = find_tree(sys_dir)
    return ordered(walk(mount, version, start, depth, proc), order)


def _dirs(run_dir, proc, sys_dir) -> tuple[Path, Path]:
    """(proc, sys): ``--run DIR`` is DIR/proc and DIR/sys; ``--proc``
    defaults to the proc directory beside ``--sys`` (/proc for /sys)."""
    if run_dir is not None:
        if proc is not None or sys_dir is not None:
            raise InputError("cgtop --run", "give --run DIR, or --proc and --sys, not both")
        return Path(run_dir) / "proc", Path(run_dir) / "sys"
    sys_path = Path(sys_dir or "/sys")
    return Path(proc) if proc is not None else sys_path.parent / "proc", sys_path


@click.command("cgtop", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cgroup", required=False, default="/")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="An output directory of `linmem run` (or one of its snapshots/NAME): "
                   "reads DIR/sys and DIR/proc.")
@click.option("--sys", "sys_dir", type=click.Path(), help="The /sys directory to read "
              "(default /sys); the tree is SYS/fs/cgroup.")
@click.option("--proc", type=click.Path(), help="The proc directory whose meminfo gives the "
              "root's memory (default: the proc directory beside SYS).")
@click.option("-m", "order", flag_value="memory", default=True,
              help="Order by memory (default).")
@click.option("-p", "order", flag_value="path", help="Order by path.")
@click.option("-t", "order", flag_value="tasks", help="Order by number of processes.")
@click.option("--order", "order", type=click.Choice(ORDERS), help="Order by this.")
@click.option("-r", "--raw", is_flag=True, help="Sizes in bytes, not human-readable.")
@click.option("--depth", type=click.IntRange(0), default=3, show_default=True,
              help="Maximum traversal depth.")
@click.option("-n", "--iterations", type=click.IntRange(1), default=1, show_default=True,
              help="Run for N iterations before exiting.")
@click.option("-d", "--delay", type=click.FloatRange(0, min_open=True), default=1.0,
              show_default=True, help="Seconds between iterations.")
@click.option("-b", "--batch", is_flag=True, help="Batch mode (always on; for systemd-cgtop's "
              "command lines).")
@click.option("--json", "as_json", is_flag=True, help="Print each iteration as one line of JSON.")
def cgtop(cgroup, run_dir, sys_dir, proc, order, raw, depth, iterations, delay, batch, as_json):
    """Show the memory cgroups of a tree ordered by memory, as systemd-cgtop -m.

    CGROUP is where to start (default: the root).

    \b
    Examples:
      linmem cgtop --run out/cg
      linmem cgtop --sys out/cg/snapshots/t5/sys --proc out/cg/snapshots/t5/proc -p
      linmem cgtop --json --run out/cg /batch
    """
    from rich.console import Console
    proc_dir, sys_path = _dirs(run_dir, proc, sys_dir)
    parts = cgroup.split("/")[1:]
    if not cgroup.startswith("/") or (cgroup != "/" and {"", ".", ".."} & set(parts)):
        raise InputError("cgtop", f"expected a cgroup path such as / or /batch, got {cgroup!r}")
    console = Console(highlight=False)
    if not console.is_terminal:                      # a file or a pipe: never wrap the rows
        console = Console(highlight=False, width=1000)
    for i in range(iterations):
        if i:
            time.sleep(delay)
        groups = read_tree(sys_path, proc_dir, cgroup, depth, order)
        if as_json:
            click.echo(json.dumps([asdict(g) for g in groups]))
        else:
            console.print(table(groups, raw, order))
    return 0
