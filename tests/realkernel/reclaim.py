"""Measure what the real kernel does when memory runs short: reclaim of page
cache and anonymous memory, swap-out and swap-in (swapfile, zram), refaults,
the anon/file balance by ``memory.swappiness``, and the memcg OOM killer.

Every run happens in a fresh cgroup v1 memory group below this process's own
(``harness.memory_cgroup``) with the experiment's ``memory.limit_in_bytes``,
and where it matters ``memory.memsw.limit_in_bytes`` and the group's own
``memory.swappiness`` (per group in v1; no global sysctl is written). The
programs are those of ``reclaim.c`` (built once per process with
``gcc -O1 -Wl,-z,now`` into a temporary directory); each joins the group
before exec.

* Files live on a fresh ext4 image on a direct-I/O loop device mounted
  ``data=journal`` (4 KiB folios) in a private mount namespace
  (``io.loop_fs``); they are cold when the run starts.
* Swap is added only for the runs that need it and removed right after
  (``swapoff``, then the file or zram device goes), also when the run fails
  or is interrupted (SIGINT, SIGTERM, SIGHUP raise in the driver, so the
  ``finally`` blocks run): a 512 MiB swapfile on the root file system
  (``fallocate``, ``mkswap``, ``swapon -p 10``), or a zram device made with
  ``/sys/class/zram-control/hot_add`` (512 MiB, ``mkswap``, ``swapon -p 10``;
  ``reset`` and ``hot_remove`` after). A run killed without its ``finally``
  leaves a note (``/tmp/linmem-swap-<pid>-*``) from which the next run
  removes what it left.

The program stops before each phase and at checkpoints inside a phase; the
driver then snapshots the group's ``memory.stat`` (pages; events as counts),
``memory.usage_in_bytes``, ``memory.failcnt``, ``memory.memsw.*``,
``memory.max_usage_in_bytes``, ``memory.oom_control``, the global
``/proc/vmstat`` counters of reclaim, swap, workingset and OOM, and the
used pages of the swap area it added. A phase result::

    {"pages": 32768, "minflt": .., "majflt": .., "us": ..,    # the program's getrusage
     "status": {"VmRSS": kB, "RssAnon": .., "RssFile": .., "VmSwap": .., "VmPTE": ..},
     "resident": {"data": pages}, "cachestat": {"data": [cached, dirty, writeback,
                                                         evicted, recently_evicted]},
     "memcg": {...delta...}, "memcg_after": {...}, "vmstat": {...delta...},
     "vmstat_after": {...gauges...}, "swap_used": pages (the added area, after),
     "scan": {...kpageflags summary, settle phases...},
     "checkpoints": [{"pages", "minflt", "majflt", "us", "status", "memcg", "vmstat"}],
     "killed": true,                       # the process died inside this phase
     "range": {...}}                       # [min, max] over the runs, where they differed

A run's result also has ``exit`` (status, signal, rusage of each process by
``wait4``), ``cgroup`` (the group's final counters), ``oom`` (the kernel's
memcg OOM reports for this group, read from ``/dev/kmsg``), ``swap`` (the area
used), ``fs``, ``derived`` (the facts read off it) and ``seconds``. See
tests/data/realkernel/README.md for the recorded data.

Command line (run from the project root, as root)::

    python -m tests.realkernel.reclaim --record      # rewrite tests/data/realkernel/reclaim-6.18.json
    python -m tests.realkernel.reclaim --print       # run the matrix, print the JSON
    python -m tests.realkernel.reclaim --record --only "file-refault 64M 128M 4K"
    python -m tests.realkernel.reclaim anon-oom 64M 32M 128M
    python -m tests.realkernel.reclaim anon-swap-passes zram 64M 128M 3 write
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import harness
from . import io as rkio
from .harness import ExperimentError, MiB, PAGE

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "reclaim.c"
DATA_FILE = harness.DATA_DIR / "reclaim-6.18.json"
_ENV = harness._ENV

SWAP_BYTES = 512 * MiB
SWAP_PRIORITY = 10
SWAP_PREFIX = "linmem-swap-"
SETTLE_SECONDS = 2.2
IMAGE_SLACK = 48 * MiB

MEMCG_PAGES = ("cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
               "swap", "swapcached", "inactive_anon", "active_anon", "inactive_file",
               "active_file", "unevictable")
MEMCG_EVENTS = ("pgpgin", "pgpgout", "pgfault", "pgmajfault", "workingset_refault_anon",
                "workingset_refault_file")
MEMCG_TOTALS = ("total_cache", "total_rss", "total_swap", "total_mapped_file",
                "total_inactive_anon", "total_active_anon", "total_inactive_file",
                "total_active_file", "total_pgpgin", "total_pgpgout", "total_pgfault",
                "total_pgmajfault")
#: memory.* files (bytes -> pages, or counts), as "name": file.
MEMCG_COUNTERS = {"usage": "memory.usage_in_bytes", "max_usage": "memory.max_usage_in_bytes",
                  "failcnt": "memory.failcnt", "memsw_usage": "memory.memsw.usage_in_bytes",
                  "memsw_max_usage": "memory.memsw.max_usage_in_bytes",
                  "memsw_failcnt": "memory.memsw.failcnt"}
VMSTAT_EVENTS = ("pswpin", "pswpout", "pgpgin", "pgpgout", "pgfault", "pgmajfault",
                 "workingset_refault_anon", "workingset_refault_file",
                 "workingset_activate_anon", "workingset_activate_file",
                 "workingset_restore_anon", "workingset_restore_file",
                 "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
                 "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
                 "pgrefill", "pgactivate", "pgdeactivate", "pgrotated", "allocstall_dma",
                 "allocstall_dma32", "allocstall_normal", "allocstall_movable",
                 "oom_kill", "swap_ra", "swap_ra_hit", "swpin_zero", "swpout_zero",
                 "zswpin", "zswpout", "nr_vmscan_write", "nr_vmscan_immediate_reclaim",
                 "thp_swpout", "pageoutrun", "drop_pagecache", "drop_slab")
VMSTAT_GAUGES = ("nr_swapcached", "workingset_nodes")
#: The per-checkpoint sample keeps only these.
SAMPLE_MEMCG = ("cache", "rss", "swap", "inactive_anon", "active_anon", "inactive_file",
                "active_file", "usage", "failcnt")
SAMPLE_VMSTAT = ("pswpin", "pswpout", "pgsteal_anon", "pgsteal_file", "pgscan_anon",
                 "pgscan_file", "workingset_refault_file", "workingset_refault_anon")


# --------------------------------------------------------------------- skips

def build_skip_reason() -> str | None:
    """Why reclaim.c cannot be compiled here, or None."""
    return harness.c_skip_reason(SOURCE)


def swapfile_skip_reason() -> str | None:
    """Why a swapfile cannot be added (and removed) here, or None."""
    for tool in ("fallocate", "mkswap", "swapon", "swapoff"):
        if shutil.which(tool, path=harness._PATH) is None:
            return f"{tool} is not installed (util-linux)"
    if os.geteuid() != 0:
        return "not root: swapon needs root"
    if not os.access("/proc/swaps", os.R_OK):
        return "/proc/swaps is not readable (no CONFIG_SWAP?)"
    return None


def zram_skip_reason() -> str | None:
    """Why a zram swap device cannot be made here, or None (never loads modules)."""
    reason = swapfile_skip_reason()
    if reason:
        return reason
    if not Path("/sys/class/zram-control/hot_add").exists():
        return "the zram module is not loaded (/sys/class/zram-control missing)"
    return None


def kmsg_skip_reason() -> str | None:
    if not os.access("/dev/kmsg", os.R_OK):
        return "/dev/kmsg is not readable: the kernel's OOM report cannot be read"
    return None


def skip_reason(loop: bool = False, swap: str | None = None) -> str | None:
    """The first reason the experiments (with ``loop``: those with files; with
    ``swap`` "swapfile" or "zram": those with that swap) cannot run."""
    return (build_skip_reason() or harness.cgroup_skip_reason()
            or rkio.kpageflags_skip_reason()
            or (rkio.loop_skip_reason() if loop else None)
            or (swapfile_skip_reason() if swap == "swapfile" else None)
            or (zram_skip_reason() if swap == "zram" else None))


def swap_in_use() -> list[str]:
    """The swap areas active on this machine (names from /proc/swaps)."""
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return []
    return [line.split()[0] for line in lines if line.strip()]


# --------------------------------------------------------------------- build

def build() -> Path:
    """Compile reclaim.c once per process; return the executable (removed at exit)."""
    return harness.compile_c(SOURCE)


# ---------------------------------------------------------- signals -> finally

class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: unwind, so that every ``finally`` runs."""


@contextlib.contextmanager
def _signals_unwind():
    """Make SIGTERM and SIGHUP raise :class:`Interrupted` (SIGINT already
    raises KeyboardInterrupt) for the duration; a no-op outside the main thread."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------- swap

def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=_ENV, timeout=timeout)


def _swapoff(name: str) -> None:
    """swapoff ``name`` if it is active; retried (it fails while memory is short)."""
    for attempt in range(20):
        if name not in swap_in_use():
            return
        proc = _run("swapoff", name, timeout=300)
        if proc.returncode == 0 or name not in swap_in_use():
            return
        time.sleep(0.5)
    raise ExperimentError(f"swapoff {name} failed: {proc.stderr.strip()}")


def _zram_remove(dev: int) -> None:
    _swapoff(f"/dev/zram{dev}")
    block = Path(f"/sys/block/zram{dev}")
    if block.exists():
        with contextlib.suppress(OSError):
            (block / "reset").write_text("1")
        for _ in range(50):
            try:
                Path("/sys/class/zram-control/hot_remove").write_text(str(dev))
                break
            except OSError:                   # EBUSY while the device is still open
                time.sleep(0.1)


def remove_stale_swap() -> None:
    """Remove the swap areas and zram devices left by killed runs (their notes
    are /tmp/linmem-swap-<pid>-*/ with a dead pid)."""
    for note in Path(tempfile.gettempdir()).glob(SWAP_PREFIX + "*"):
        m = re.match(re.escape(SWAP_PREFIX) + r"(\d+)-", note.name)
        if not m or harness._pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError, ExperimentError, ValueError):
            for f in note.glob("zram*"):
                _zram_remove(int(f.read_text()))
            swapfile = note / "swapfile"
            if swapfile.exists():
                _swapoff(str(swapfile))
        shutil.rmtree(note, ignore_errors=True)


class SwapArea:
    """An active swap area this process added: ``name`` as in /proc/swaps."""

    def __init__(self, kind: str, name: str, size: int):
        self.kind, self.name, self.size = kind, name, size

    def used_pages(self) -> int | None:
        """Pages of this area in use (/proc/swaps counts KiB)."""
        for line in Path("/proc/swaps").read_text().splitlines()[1:]:
            f = line.split()
            if f and f[0] == self.name:
                return int(f[3]) // 4
        return None

    def facts(self) -> dict:
        for line in Path("/proc/swaps").read_text().splitlines()[1:]:
            f = line.split()
            if f and f[0] == self.name:
                out = {"kind": self.kind, "type": f[1], "size_kb": int(f[2]),
                       "priority": int(f[4])}
                if self.kind == "zram":
                    block = Path("/sys/block") / Path(self.name).name
                    out["comp_algorithm"] = harness._selected(
                        harness._read(str(block / "comp_algorithm")))
                return out
        return {"kind": self.kind}


@contextlib.contextmanager
def swap_area(kind: str, size: int = SWAP_BYTES, priority: int = SWAP_PRIORITY):
    """Yield a :class:`SwapArea` of ``kind`` "swapfile" or "zram", active with
    ``priority``; it is switched off and removed when the body ends, fails or
    is interrupted."""
    reason = swapfile_skip_reason() if kind == "swapfile" else zram_skip_reason()
    if kind not in ("swapfile", "zram"):
        raise ValueError(f"swap kind must be swapfile or zram, not {kind!r}")
    if reason:
        raise ExperimentError(reason)
    remove_stale_swap()
    note = Path(tempfile.mkdtemp(prefix=f"{SWAP_PREFIX}{os.getpid()}-"))
    name, dev = None, None
    with _signals_unwind():
        try:
            if kind == "swapfile":
                name = str(note / "swapfile")
                for cmd in (("fallocate", "-l", str(size), name), ("chmod", "600", name),
                            ("mkswap", name)):
                    proc = _run(*cmd)
                    if proc.returncode != 0:
                        raise ExperimentError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
            else:
                dev = int(Path("/sys/class/zram-control/hot_add").read_text())
                (note / f"zram{dev}").write_text(str(dev))
                name = f"/dev/zram{dev}"
                for _ in range(50):                 # udev creates the node
                    if os.path.exists(name):
                        break
                    time.sleep(0.1)
                Path(f"/sys/block/zram{dev}/disksize").write_text(str(size))
                proc = _run("mkswap", name)
                if proc.returncode != 0:
                    raise ExperimentError(f"mkswap {name} failed: {proc.stderr.strip()}")
            proc = _run("swapon", "-p", str(priority), name)
            if proc.returncode != 0:
                raise ExperimentError(f"swapon {name} failed: {proc.stderr.strip()}")
            yield SwapArea(kind, name, size)
        finally:
            if name is not None and kind == "swapfile":
                _swapoff(name)
            if dev is not None:
                _zram_remove(dev)
            shutil.rmtree(note, ignore_errors=True)


# ------------------------------------------------------------------ the group

@contextlib.contextmanager
def reclaim_cgroup(limit: int, memsw: int | None = None, swappiness: int | None = None):
    """A fresh memory group with ``limit`` bytes, ``memsw`` bytes of memory +
    swap (None: unlimited) and its own ``swappiness`` (None: inherited)."""
    with harness.memory_cgroup(limit) as group:
        if memsw is not None:
            (group / "memory.memsw.limit_in_bytes").write_text(str(int(memsw)))
        if swappiness is not None:
            (group / "memory.swappiness").write_text(str(int(swappiness)))
        yield group


def group_settings(group: Path) -> dict:
    def num(name):
        return int((group / name).read_text().split()[0])
    out = {"limit_bytes": num("memory.limit_in_bytes"),
           "memsw_limit_bytes": num("memory.memsw.limit_in_bytes"),
           "swappiness": num("memory.swappiness"),
           "use_hierarchy": num("memory.use_hierarchy")}
    for key in ("limit_bytes", "memsw_limit_bytes"):
        if out[key] >= 1 << 62:
            out[key] = None                     # unlimited
    return out


# ------------------------------------------------------------------ snapshots

def _keyed(path: Path | str) -> dict[str, int]:
    out = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            with contextlib.suppress(ValueError):
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def memcg_state(group: Path) -> dict:
    """The group's memory.stat (pages; events as counts) and counters."""
    stat = _keyed(group / "memory.stat")
    out = {k: stat.get(k, 0) // PAGE for k in MEMCG_PAGES}
    out.update({k: stat.get(k, 0) for k in MEMCG_EVENTS})
    for k in MEMCG_TOTALS:
        v = stat.get(k, 0)
        out[k] = v if k.endswith(("pgpgin", "pgpgout", "pgfault", "pgmajfault")) else v // PAGE
    for k, name in MEMCG_COUNTERS.items():
        v = int((group / name).read_text().split()[0])
        out[k] = v if k.endswith("failcnt") else v // PAGE
    oom = _keyed(group / "memory.oom_control")
    out["oom_kill"] = oom.get("oom_kill", 0)
    out["under_oom"] = oom.get("under_oom", 0)
    return out


def snapshot(group: Path, swap: SwapArea | None = None) -> dict:
    vmstat = _keyed("/proc/vmstat")
    snap = {"t": time.monotonic(), "memcg": memcg_state(group),
            "vmstat": {k: vmstat.get(k, 0) for k in VMSTAT_EVENTS + VMSTAT_GAUGES}}
    if swap is not None:
        snap["swap_used"] = swap.used_pages()
    return snap


#: memcg keys whose "after" value is kept but whose delta means nothing.
_MEMCG_NO_DELTA = MEMCG_TOTALS + ("max_usage", "memsw_max_usage", "under_oom")


def phase_record(before: dict, after: dict, line: dict | None) -> dict:
    rec = {}
    if line is not None:
        rec = {k: line[k] for k in ("pages", "minflt", "majflt", "us", "status", "resident",
                                    "cachestat") if k in line}
    rec["memcg"] = {k: after["memcg"][k] - before["memcg"][k] for k in after["memcg"]
                    if k not in _MEMCG_NO_DELTA}
    rec["memcg_after"] = dict(after["memcg"])
    rec["vmstat"] = {k: after["vmstat"][k] - before["vmstat"][k] for k in VMSTAT_EVENTS}
    rec["vmstat_after"] = {k: after["vmstat"][k] for k in VMSTAT_GAUGES}
    if "swap_used" in after:
        rec["swap_used"] = after["swap_used"]
    return rec


def checkpoint_record(start: dict, snap: dict, line: dict) -> dict:
    out = {k: line[k] for k in ("pages", "minflt", "majflt", "us", "status")}
    out["memcg"] = {k: snap["memcg"][k] for k in SAMPLE_MEMCG}
    out["vmstat"] = {k: snap["vmstat"][k] - start["vmstat"][k] for k in SAMPLE_VMSTAT}
    if "swap_used" in snap:
        out["swap_used"] = snap["swap_used"]
    return out


# ------------------------------------------------------------------ kmsg

class Kmsg:
    """The kernel log from now on (/dev/kmsg, opened at its end)."""

    def __init__(self):
        self.fd = None
        with contextlib.suppress(OSError):
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)

    def read(self) -> list[str]:
        """The messages logged since the last read (text only)."""
        out = []
        while self.fd is not None:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:           # overwritten records: skip on
                continue
            if not rec:
                break
            text = rec.decode(errors="replace")
            _, _, msg = text.partition(";")
            out.append(msg.split("\n", 1)[0])   # drop the key=value continuation lines
        return out

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_TASK_ROW = re.compile(r"^\[\s*(\d+)\]\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)"
                       r"\s+(\d+)\s+(\d+)\s+(-?\d+)\s+(\S+)")
_TASK_COLS = ("pid", "uid", "tgid", "total_vm", "rss", "rss_anon", "rss_file", "rss_shmem",
              "pgtables_bytes", "swapents", "oom_score_adj")
_KILLED = re.compile(r"Memory cgroup out of memory: Killed process (\d+) \((.*?)\) "
                     r"total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, "
                     r"shmem-rss:(\d+)kB, UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+)")
_USAGE = re.compile(r"^(memory|memory\+swap|kmem): usage (\d+)kB, limit (\d+)kB, failcnt (\d+)")
_INVOKED = re.compile(r"^(\S+) invoked oom-killer: gfp_mask=(\S+?),? .*order=(-?\d+), "
                      r"oom_score_adj=(-?\d+)")
_NOISE = (" ", "Call Trace", "CPU:", "Hardware name", "Tainted", "RIP:", "RSP:", "RAX:",
          "RDX:", "RBP:", "R10:", "R13:", "<TASK>", "</TASK>", "Code:")
_REAPED = re.compile(r"oom_reaper: reaped process (\d+) \((.*?)\), now anon-rss:(\d+)kB, "
                     r"file-rss:(\d+)kB, shmem-rss:(\d+)kB")


def oom_reports(lines: list[str], group_name: str) -> list[dict]:
    """The memcg OOM reports in kernel messages ``lines`` whose OOM domain is
    the group ``group_name``: who invoked the killer, the group's usage and
    stats, the task list, the constraint line, the kill and the reaping."""
    reports, cur, in_stats = [], None, False
    for line in lines:
        m = _INVOKED.match(line)
        if m:
            cur = {"invoked_by": m.group(1), "gfp_mask": m.group(2), "order": int(m.group(3)),
                   "oom_score_adj": int(m.group(4)), "usage": {}, "stats": {}, "tasks": [],
                   "lines": [line]}
            in_stats = False
            continue
        if cur is None:
            if _REAPED.match(line) and reports:
                m = _REAPED.match(line)
                for rep in reports:
                    if rep.get("killed", {}).get("pid") == int(m.group(1)):
                        rep["reaped"] = {"pid": int(m.group(1)), "anon_rss_kb": int(m.group(3)),
                                         "file_rss_kb": int(m.group(4)),
                                         "shmem_rss_kb": int(m.group(5))}
                        rep["lines"].append(line)
            continue
        if line.startswith(_NOISE) or "+0x" in line:
            continue                          # the stack dump
        cur["lines"].append(line)
        m = _USAGE.match(line)
        if m:
            cur["usage"][m.group(1)] = {"usage_kb": int(m.group(2)), "limit_kb": int(m.group(3)),
                                        "failcnt": int(m.group(4))}
            continue
        if line.startswith("Memory cgroup stats for"):
            cur["stats_for"] = line[len("Memory cgroup stats for "):].rstrip(":")
            in_stats = True
            continue
        if line.startswith("Tasks state"):
            in_stats = False
            continue
        m = _TASK_ROW.match(line)
        if m:
            cur["tasks"].append({**{c: int(v) for c, v in zip(_TASK_COLS, m.groups()[:11])},
                                 "name": m.group(12)})
            continue
        if line.startswith("oom-kill:"):
            cur["constraint"] = dict(kv.split("=", 1) for kv in line[len("oom-kill:"):].split(",")
                                     if "=" in kv)
            continue
        m = _KILLED.match(line)
        if m:
            cur["killed"] = {"pid": int(m.group(1)), "comm": m.group(2),
                             "total_vm_kb": int(m.group(3)), "anon_rss_kb": int(m.group(4)),
                             "file_rss_kb": int(m.group(5)), "shmem_rss_kb": int(m.group(6)),
                             "uid": int(m.group(7)), "pgtables_kb": int(m.group(8)),
                             "oom_score_adj": int(m.group(9))}
            memcg = cur.get("constraint", {}).get("oom_memcg", "")
            if memcg.rstrip("/").endswith("/" + group_name):
                reports.append(cur)
            cur = None
            continue
        if in_stats:
            parts = line.split()
            if len(parts) == 2:
                with contextlib.suppress(ValueError):
                    cur["stats"][parts[0]] = int(parts[1])
    return reports


# ------------------------------------------------------------------- driving

class Program:
    """One reclaim.c process in memory group ``group``, driven phase by phase.

    ``run()`` answers the program's lines (snapshots around each phase and at
    each checkpoint) until it is done, died, or announces a phase named in
    ``pause``; the results collect in ``phases`` and ``info``."""

    def __init__(self, group: Path, argv: list[str], swap: SwapArea | None = None,
                 timeout: float = 300):
        self.group, self.argv, self.swap, self.timeout = group, argv, swap, timeout
        self.phases: dict = {}
        self.info: dict = {}
        self.checkpoints: list = []
        self.before = self.scan = self.current = None
        self.phase_no = 0
        self.done = False
        self.exit = None
        self.progress_fd = os.memfd_create("linmem-progress")
        os.pwrite(self.progress_fd, bytes(PAGE), 0)     # charged here, to the driver
        self.errfile = tempfile.TemporaryFile()
        env = dict(_ENV, PROGRESS_FD=str(self.progress_fd))
        self.proc = subprocess.Popen([str(build()), *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.errfile, env=env,
                                     pass_fds=(self.progress_fd,),
                                     preexec_fn=rkio._joiner(group))
        self.lines = rkio._Lines(self.proc.stdout.fileno())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _snap(self) -> dict:
        return snapshot(self.group, self.swap)

    def _send(self, word: str) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write(word.encode() + b"\n")
            self.proc.stdin.flush()

    def resume(self) -> None:
        """Let a paused program start its phase."""
        self.before = self._snap()
        self.checkpoints = []
        self._send("go")

    def run(self, pause: tuple[str, ...] = ()) -> str:
        """Drive until "done", "dead" or "paused" (returned)."""
        while True:
            line = self.lines.next(self.timeout)
            if line is rkio._Lines.TIMEOUT:
                raise ExperimentError(f"{' '.join(self.argv)}: no output for {self.timeout} s")
            if line is None:
                self._died()
                return "dead"
            if not line.strip():
                continue
            msg = json.loads(line)
            if "error" in msg:
                raise ExperimentError(f"{' '.join(self.argv)}: {msg['error']}")
            if "ready" in msg:
                self.current = msg["ready"]
                self.phase_no += 1
                if self.current in pause:
                    return "paused"
                self.resume()
            elif "checkpoint" in msg:
                self.checkpoints.append(checkpoint_record(self.before, self._snap(), msg))
                self._send("go")
            elif "scan" in msg:
                self.scan = msg["scan"]
            elif "phase" in msg:
                rec = phase_record(self.before, self._snap(), msg)
                if self.scan is not None:
                    rec["scan"], self.scan = self.scan, None
                if self.checkpoints:
                    rec["checkpoints"] = self.checkpoints
                self.phases[msg["phase"]] = rec
                self.current, self.checkpoints = None, []
                self._send("ok")
            elif "info" in msg:
                self.info.update(msg["info"])
            elif "done" in msg:
                self.done = True
                return "done"

    def progress(self) -> tuple[int, int]:
        """(pages touched in the current phase, the phase's number)."""
        return struct.unpack("qq", os.pread(self.progress_fd, 16, 0))

    def _died(self) -> None:
        """The program's output ended: reap it; a phase it was in is recorded
        as killed, with what the driver saw of it."""
        self._reap()
        if self.current is not None and self.before is not None and self.exit["signal"]:
            rec = phase_record(self.before, self._snap(), None)
            pages, number = self.progress()
            rec["pages"] = pages if number == self.phase_no else None
            rec["killed"] = True
            if self.checkpoints:
                rec["checkpoints"] = self.checkpoints
            self.phases[self.current] = rec
            self.current = None

    def _reap(self, timeout: float = 60) -> None:
        if self.exit is not None:
            return
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, ru = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.01)
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        self.exit = {"status": code if code >= 0 else 128 - code,
                     "signal": -code if code < 0 else 0,
                     "rusage": {"minflt": ru.ru_minflt, "majflt": ru.ru_majflt,
                                "maxrss_kb": ru.ru_maxrss,
                                "utime_s": round(ru.ru_utime, 3),
                                "stime_s": round(ru.ru_stime, 3)}}

    def alive(self) -> bool:
        if self.exit is not None:
            return False
        pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
        if not pid:
            return True
        # Put the status back where _reap finds it.
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        self.exit = {"status": code if code >= 0 else 128 - code,
                     "signal": -code if code < 0 else 0,
                     "rusage": {"minflt": ru.ru_minflt, "majflt": ru.ru_majflt,
                                "maxrss_kb": ru.ru_maxrss, "utime_s": round(ru.ru_utime, 3),
                                "stime_s": round(ru.ru_stime, 3)}}
        return False

    def finish(self) -> dict:
        """Let a done program exit (or collect a dead one); its exit facts."""
        if self.exit is None:
            if self.done:
                self._send("bye")
            self._reap()
        return self.exit

    def error_text(self) -> str:
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace").strip()[-500:]

    def close(self) -> None:
        if self.exit is None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(ChildProcessError):
                self._reap()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self.errfile.close()
        with contextlib.suppress(OSError):
            os.close(self.progress_fd)


def drive(group: Path, argv: list[str], swap: SwapArea | None = None) -> dict:
    """Run one program to its end; {"phases", "info", "exit"}."""
    prog = Program(group, argv, swap)
    try:
        prog.run()
        exit_ = prog.finish()
        if exit_["status"] not in (0,) and not exit_["signal"]:
            raise ExperimentError(f"{' '.join(argv)} exited {exit_['status']}: "
                                  f"{prog.error_text()}")
        return {"phases": prog.phases, "info": prog.info, "exit": exit_, "pid": prog.pid}
    finally:
        prog.close()


# --------------------------------------------------------------- experiments

#: experiment -> its arguments after the name
EXPERIMENTS = {
    "anon-oom": "LIMIT FILE ANON [STEP]",
    "anon-swap-passes": "swapfile|zram LIMIT ANON PASSES [write|read]",
    "file-refault": "LIMIT FILE BLOCK [PASSES [WARM]]",
    "anon-plus-streaming": "LIMIT ANON FILE SWAPPINESS [distinct|same [PRIME]]",
    "oom-victim": "SCENARIO",
}

#: oom-victim scenarios: the group's limit and the processes, started in
#: order, as (anon held, oom_score_adj, extra anon written at the end); the
#: last one's extra allocation runs the group out of memory.
VICTIM_SCENARIOS = {
    "size": ("128M", [("48M", 0, "0"), ("24M", 0, "0"), ("16M", 0, "0"), ("0", 0, "48M")]),
    "adj": ("128M", [("48M", 0, "0"), ("24M", 400, "0"), ("16M", 100, "0"), ("0", 0, "48M")]),
    "self": ("128M", [("16M", 0, "0"), ("16M", 0, "0"), ("0", 0, "128M")]),
}


SWAPPINESS = (0, 60, 100, 200)


def matrix() -> list[tuple[str, ...]]:
    """Every recorded experiment, as (experiment, args...) tuples."""
    specs: list[tuple[str, ...]] = [("anon-oom", "64M", "32M", "128M"),
                                    ("anon-oom", "64M", "0", "128M")]
    for kind in ("swapfile", "zram"):
        specs.append(("anon-swap-passes", kind, "64M", "128M", "3", "write"))
    specs.append(("anon-swap-passes", "swapfile", "64M", "128M", "3", "read"))
    specs += [("file-refault", "64M", "128M", "4K"), ("file-refault", "64M", "128M", "1M"),
              ("file-refault", "64M", "48M", "1M", "3", "32M"),
              ("file-refault", "64M", "200M", "4K", "1")]
    specs += [("anon-plus-streaming", "160M", "96M", "200M", str(s)) for s in SWAPPINESS]
    specs += [("anon-plus-streaming", "160M", "96M", "200M", str(s), "distinct", "40M")
              for s in (100, 200)]
    specs += [("anon-plus-streaming", "160M", "96M", "120M", str(s), "same")
              for s in SWAPPINESS]
    specs += [("oom-victim", name) for name in VICTIM_SCENARIOS]
    return specs


def spec_id(spec) -> str:
    return " ".join(spec)


def _size(text: str) -> int:
    n = harness.parse_size(text)
    if n is None:
        raise ExperimentError(f"not a size: {text!r}")
    return n


def _image_bytes(files: dict[str, int]) -> int:
    total = sum(files.values())
    return total + total // 8 + IMAGE_SLACK


def run_once(spec) -> dict:
    """Run ``spec`` once (fresh group, file system and swap area)."""
    experiment, *args = spec
    if experiment not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {experiment!r}")
    remove_stale_swap()
    start = time.monotonic()
    kmsg = Kmsg()
    try:
        with _signals_unwind():
            result = globals()["_run_" + experiment.replace("-", "_")](args, kmsg)
    finally:
        kmsg.close()
    result = {"id": spec_id(spec), "experiment": experiment, "args": list(args), **result}
    result["seconds"] = round(time.monotonic() - start, 2)
    result["derived"] = derive(result)
    return result


def _finish_group(group: Path, out: dict, kmsg: Kmsg) -> dict:
    out["group"] = group_settings(group)
    out["cgroup"] = memcg_state(group)
    out["oom"] = oom_reports(kmsg.read(), group.name)
    return out


def _run_anon_oom(args, kmsg) -> dict:
    limit, file, anon, *rest = args
    step = rest[0] if rest else "1M"
    files = {"data": _size(file)}
    with rkio.loop_fs("journal", _image_bytes(files), files=files) as fs, \
            reclaim_cgroup(_size(limit), memsw=_size(limit), swappiness=0) as group:
        swaps = swap_in_use()
        out = drive(group, ["anon-oom", fs.dir, "data", anon, step])
        out["fs"] = fs.facts()
        out["swap"] = {"areas_active": swaps}
        return _finish_group(group, out, kmsg)


def _run_anon_swap_passes(args, kmsg) -> dict:
    kind, limit, anon, passes, *rest = args
    mode = rest[0] if rest else "write"
    with swap_area(kind) as swap, reclaim_cgroup(_size(limit)) as group:
        out = drive(group, ["anon-passes", anon, passes, mode], swap)
        out["swap"] = swap.facts()
        out["swap"]["areas_active"] = swap_in_use()
        return _finish_group(group, out, kmsg)


def _run_file_refault(args, kmsg) -> dict:
    limit, file, block, *rest = args
    passes = rest[0] if rest else "3"
    files = {"data": _size(file)}
    warm = []
    if len(rest) > 1:
        files["warm"] = _size(rest[1])
        warm = ["warm"]
    with rkio.loop_fs("journal", _image_bytes(files), files=files) as fs, \
            reclaim_cgroup(_size(limit)) as group:
        swaps = swap_in_use()
        out = drive(group, ["file-passes", fs.dir, "data", passes, block, *warm])
        out["fs"] = fs.facts()
        out["swap"] = {"areas_active": swaps}
        return _finish_group(group, out, kmsg)


def _run_anon_plus_streaming(args, kmsg) -> dict:
    limit, anon, file, swappiness, *rest = args
    how = rest[0] if rest else "distinct"
    if how not in ("distinct", "same"):
        raise ExperimentError(f"anon-plus-streaming: distinct or same, not {how!r}")
    files = {f"stream{i}": _size(file) for i in range(1, 4 if how == "distinct" else 2)}
    reads = list(files) if how == "distinct" else ["stream1"] * 3
    if len(rest) > 1:                            # PRIME: read once and settle first
        files["prime"] = _size(rest[1])
        reads = ["+prime", *reads]
    with rkio.loop_fs("journal", _image_bytes(files), files=files) as fs, \
            swap_area("swapfile") as swap, \
            reclaim_cgroup(_size(limit), swappiness=int(swappiness)) as group:
        out = drive(group, ["anon-stream", fs.dir, anon, *reads], swap)
        out["fs"] = fs.facts()
        out["swap"] = swap.facts()
        out["swap"]["areas_active"] = swap_in_use()
        return _finish_group(group, out, kmsg)


def _proc_facts(pid: int) -> dict:
    out = {}
    for name in ("oom_score", "oom_score_adj"):
        out[name] = harness._int(f"/proc/{pid}/{name}")
    with contextlib.suppress(OSError):
        status = _keyed(f"/proc/{pid}/status")
        out["status"] = {k: status.get(k) for k in ("VmRSS", "RssAnon", "RssFile", "VmSwap",
                                                    "VmPTE")}
    return out


def _run_oom_victim(args, kmsg) -> dict:
    (scenario,) = args
    if scenario not in VICTIM_SCENARIOS:
        raise ExperimentError(f"unknown oom-victim scenario {scenario!r}: "
                              f"{sorted(VICTIM_SCENARIOS)}")
    limit, specs = VICTIM_SCENARIOS[scenario]
    progs: list[Program] = []
    with reclaim_cgroup(_size(limit), memsw=_size(limit), swappiness=0) as group:
        try:
            swaps = swap_in_use()
            for anon, adj, extra in specs:
                prog = Program(group, ["hold", anon, str(adj), extra])
                progs.append(prog)
                state = prog.run(pause=("extra",))
                if state == "dead":
                    raise ExperimentError(f"hold {anon} {adj} {extra} died: {prog.exit}")
            before = {p.pid: _proc_facts(p.pid) for p in progs}
            memcg_before = memcg_state(group)
            trigger = progs[-1]
            trigger.resume()
            trigger.run()
            time.sleep(0.5)                  # the victim's exit, if it was not the trigger
            memcg_after_oom = memcg_state(group)
            processes = []
            for prog, (anon, adj, extra) in zip(progs, specs):
                alive = prog.alive()
                processes.append({"pid": prog.pid, "anon": anon, "adj": adj, "extra": extra,
                                  "trigger": prog is trigger, "alive_after": alive,
                                  **before[prog.pid], "info": prog.info,
                                  "phases": prog.phases})
            for prog, rec in zip(progs, processes):
                rec["exit"] = prog.finish()
                if prog.exit["status"] not in (0,) and not prog.exit["signal"]:
                    raise ExperimentError(f"hold exited {prog.exit['status']}: "
                                          f"{prog.error_text()}")
        finally:
            for prog in progs:
                prog.close()
        out = {"scenario": {"limit": limit, "processes": [list(s) for s in specs]},
               "processes": processes, "memcg_before_trigger": memcg_before,
               "memcg_after_oom": memcg_after_oom, "swap": {"areas_active": swaps}}
        return _finish_group(group, out, kmsg)


# ------------------------------------------------------------ derived facts

def _phase(result, name):
    return result.get("phases", {}).get(name, {})


def badness(task: dict, totalpages: int) -> int:
    """oom_badness of a task row of the kernel's report (linux-mm.md §11.1)."""
    points = task["rss"] + task["swapents"] + task["pgtables_bytes"] // PAGE
    return points + task["oom_score_adj"] * (totalpages // 1000)


def derive(result: dict) -> dict:
    """The facts the tests check, read off one run."""
    exp = result["experiment"]
    out: dict = {}
    phases = result.get("phases", {})
    if exp == "anon-oom":
        touch = _phase(result, "touch-anon")
        cps = touch.get("checkpoints", [])
        report = result["oom"][0] if result["oom"] else {}
        out = {"exit_status": result["exit"]["status"], "signal": result["exit"]["signal"],
               "oom_kill": result["cgroup"]["oom_kill"], "killed": touch.get("killed", False),
               "pages_touched": touch.get("pages"),
               "cache_after_read": _phase(result, "settle-file").get("memcg_after", {})
               .get("cache"),
               "cache_at_last_checkpoint": cps[-1]["memcg"]["cache"] if cps else None,
               "rss_at_last_checkpoint": cps[-1]["memcg"]["rss"] if cps else None,
               # v1 groups: the report prints memory.stat (bytes)
               "cache_at_oom": report["stats"].get("cache", 0) // PAGE
               if report.get("stats") else None,
               "rss_at_oom": report["stats"].get("rss", 0) // PAGE
               if report.get("stats") else None,
               "killed_pid_is_program": report.get("killed", {}).get("pid") == result.get("pid"),
               "anon_rss_kb_at_kill": report.get("killed", {}).get("anon_rss_kb"),
               "failcnt": result["cgroup"]["failcnt"]}
        # The first checkpoint (one per 256 pages written) by which reclaim
        # had taken more than half a step of cache since the one before
        # (DAMON may take a few dozen pages at any time).
        prev = out["cache_after_read"] or 0
        out["first_reclaim_at_pages"] = None
        for c in cps:
            if c["memcg"]["cache"] < prev - 128:
                out["first_reclaim_at_pages"] = c["pages"]
                break
            prev = c["memcg"]["cache"]
    elif exp == "anon-swap-passes":
        for name, p in phases.items():
            if not name.startswith("pass-"):
                continue
            v = p["vmstat"]
            out[name] = {"pswpout": v["pswpout"], "pswpin": v["pswpin"],
                         "majflt": p["majflt"], "minflt": p["minflt"],
                         "pswpin_per_majflt": round(v["pswpin"] / p["majflt"], 3)
                         if p["majflt"] else None,
                         "swap_ra": v["swap_ra"], "swap_ra_hit": v["swap_ra_hit"],
                         "memcg_pgmajfault": p["memcg"]["pgmajfault"],
                         "swap_used": p.get("swap_used"),
                         "rss": p["memcg_after"]["rss"], "swap": p["memcg_after"]["swap"],
                         "ms": p["us"] // 1000}
    elif exp == "file-refault":
        for name, p in phases.items():
            if not name.startswith("pass-"):
                continue
            n = name.split("-")[1]
            settle = phases.get(f"settle-{n}", {})
            scan = settle.get("scan", {}).get("file", {})
            v = p["vmstat"]
            out[name] = {"memcg_pgpgin": p["memcg"]["pgpgin"],
                         "memcg_refault_file": p["memcg"]["workingset_refault_file"],
                         "refault_file": v["workingset_refault_file"],
                         "activate_file": v["workingset_activate_file"],
                         "restore_file": v["workingset_restore_file"],
                         "pgactivate": v["pgactivate"], "pgdeactivate": v["pgdeactivate"],
                         "pgsteal_file": v["pgsteal_file"], "pgscan_file": v["pgscan_file"],
                         "majflt": p["majflt"], "resident": p["resident"]["data"],
                         "cachestat": p["cachestat"]["data"],
                         "active_pages": scan.get("active"), "lru_pages": scan.get("lru"),
                         "referenced_pages": scan.get("referenced"),
                         "cache": settle.get("memcg_after", {}).get("cache"),
                         "ms": p["us"] // 1000}
    elif exp == "anon-plus-streaming":
        anon_settle = _phase(result, "settle-anon")
        streams = [p for k, p in phases.items() if k.startswith("stream-")]
        last = f"settle-{len(streams)}"
        end = phases.get(last, {}).get("memcg_after", {})
        out = {"swappiness": result["group"]["swappiness"],
               "rss_before": anon_settle.get("memcg_after", {}).get("rss"),
               "rss_after": end.get("rss"), "swap_after": end.get("swap"),
               "cache_after": end.get("cache"),
               "swap_used_after": phases.get(last, {}).get("swap_used"),
               "pswpout": sum(p["vmstat"]["pswpout"] for p in streams),
               "pswpin": sum(p["vmstat"]["pswpin"] for p in streams),
               "pgsteal_anon": sum(p["vmstat"]["pgsteal_anon"] for p in streams),
               "pgsteal_file": sum(p["vmstat"]["pgsteal_file"] for p in streams),
               "per_stream": [{"pswpout": p["vmstat"]["pswpout"], "rss": p["memcg_after"]["rss"],
                               "swap": p["memcg_after"]["swap"],
                               "cache": p["memcg_after"]["cache"]} for p in streams]}
    elif exp == "oom-victim":
        reports = result["oom"]
        killed = [p["pid"] for p in result["processes"] if p["exit"]["signal"] == 9]
        out = {"killed_pids": killed,
               "killed_index": [i for i, p in enumerate(result["processes"])
                                if p["pid"] in killed],
               "oom_kill": result["cgroup"]["oom_kill"], "reports": len(reports)}
        if reports:
            rep = reports[0]
            total = rep["usage"].get("memory", {}).get("limit_kb", 0) // 4
            mine = {p["pid"] for p in result["processes"]}
            scores = {t["pid"]: badness(t, total) for t in rep["tasks"] if t["pid"] in mine}
            out["totalpages"] = total
            out["badness"] = [scores.get(p["pid"]) for p in result["processes"]]
            out["highest_badness_index"] = max(range(len(result["processes"])),
                                               key=lambda i: out["badness"][i] or -10**9)
            out["report_victim_index"] = next(
                (i for i, p in enumerate(result["processes"])
                 if p["pid"] == rep.get("killed", {}).get("pid")), None)
    return out


# ----------------------------------------------------------- several runs

_SKIP_NUMBERS = ("checkpoints", "seconds", "range", "lines", "tasks", "memcg_before_trigger",
                 "memcg_after_oom", "per_stream", "constraint", "pid", "pids", "killed_pids",
                 "rusage", "stats", "info", "status")


def _numbers(obj, prefix=()):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in _SKIP_NUMBERS:
                yield from _numbers(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, prefix + (str(i),))


def ranges(runs: list[dict]) -> dict:
    """{"phases.pass-2.vmstat.pswpin": [min, max]} of every number that
    differed between ``runs`` (phases, cgroup, derived, processes)."""
    seen: dict[tuple, list] = {}
    for run in runs:
        for part in ("phases", "cgroup", "derived", "processes", "exit"):
            for path, v in _numbers(run.get(part, {}), (part,)):
                seen.setdefault(path, []).append(v)
    return {".".join(p): [min(v), max(v)] for p, v in seen.items()
            if min(v) != max(v) or len(v) != len(runs)}


#: Extra runs allowed per spec to replace runs another process disturbed.
RETRIES = 3


def disturbances(result: dict) -> list[str]:
    """What other processes of the machine did to this run: a drop_caches
    (drops the group's clean page cache, shadow entries and all), or swapping
    into the area this run added (the machine's other memory groups may use
    any active swap area)."""
    out = []
    for name, p in result.get("phases", {}).items():
        if p["vmstat"].get("drop_pagecache") or p["vmstat"].get("drop_slab"):
            out.append(f"{name}: drop_caches by another process")
        if name.startswith("settle") and p.get("swap_used") is not None:
            m = p["memcg_after"]
            if abs(p["swap_used"] - m["swap"] - m["swapcached"]) > 64:
                out.append(f"{name}: {p['swap_used']} slots used, the group has "
                           f"{m['swap']} + {m['swapcached']}: another group swapped")
    return out


def run_spec(spec, runs: int = 3) -> dict:
    """Run ``spec`` ``runs`` times without disturbance (up to RETRIES more
    runs replace disturbed ones); keep the run of median duration and the
    [min, max] of every number that varied (a phase's under its "range")."""
    done, disturbed = [], []
    while len(done) < runs and len(done) + len(disturbed) < runs + RETRIES:
        result = run_once(spec)
        why = disturbances(result)
        (disturbed if why else done).append((result, why))
    if len(done) < runs:                 # keep the least disturbed ones
        done += sorted(disturbed, key=lambda rw: len(rw[1]))[:runs - len(done)]
    kept = sorted((r for r, _ in done), key=lambda r: r["seconds"])[len(done) // 2]
    kept = dict(kept, phases={k: dict(v) for k, v in kept.get("phases", {}).items()})
    kept["runs"] = runs
    kept["derived_runs"] = [r["derived"] for r, _ in done]
    kept["disturbed"] = [why for _, why in done if why]
    kept["discarded"] = [why for r, why in disturbed if all(r is not d for d, _ in done)]
    return rkio.place_ranges(kept, ranges([r for r, _ in done]))


def run_matrix(specs=None, runs: int = 3, progress=None) -> dict:
    results = {}
    for spec in (matrix() if specs is None else specs):
        try:
            result = run_spec(spec, runs)
        except ExperimentError as err:
            result = {"id": spec_id(spec), "error": str(err)}
        results[spec_id(spec)] = result
        if progress:
            progress(result)
    return results


# --------------------------------------------------------------- the record

def kernel_facts() -> dict:
    vm = {name: harness._int(f"/proc/sys/vm/{name}")
          for name in ("swappiness", "page-cluster", "min_free_kbytes",
                       "watermark_scale_factor", "overcommit_memory", "oom_kill_allocating_task",
                       "panic_on_oom", "vfs_cache_pressure")}
    meminfo = _keyed("/proc/meminfo")
    thp = "/sys/kernel/mm/transparent_hugepage"
    return {"release": platform.release(), "machine": platform.machine(),
            "page_size": os.sysconf("SC_PAGE_SIZE"), "cpus": os.cpu_count(),
            "mem_total_kb": meminfo.get("MemTotal"), "swap_total_kb": meminfo.get("SwapTotal"),
            "vm": vm,
            "swap_vma_readahead": harness._read("/sys/kernel/mm/swap/vma_ra_enabled"),
            "thp_enabled": harness._selected(harness._read(f"{thp}/enabled")),
            "mthp_enabled": {d.name[10:]: harness._selected(harness._read(str(d / "enabled")))
                             for d in sorted(Path(thp).glob("hugepages-*kB"),
                                             key=lambda p: int(p.name[10:-2]))},
            "zswap_enabled": harness._read("/sys/module/zswap/parameters/enabled"),
            "lru_gen_enabled": harness._read("/sys/kernel/mm/lru_gen/enabled")}


def record(path: Path = DATA_FILE, runs: int = 3, progress=None,
           only: list[str] | None = None) -> dict:
    """Run the matrix (or the ids in ``only``, replaced in the existing file)
    and write the results with the kernel facts to ``path``."""
    reason = skip_reason(loop=True, swap="swapfile") or zram_skip_reason() or kmsg_skip_reason()
    if reason:
        raise ExperimentError(reason)
    start = time.monotonic()
    known = {spec_id(s): s for s in matrix()}
    if only:
        unknown = [i for i in only if i not in known]
        if unknown:
            raise ExperimentError(f"not in the matrix: {unknown}")
        data = load_recorded(path)
        data["results"].update(run_matrix([known[i] for i in only], runs, progress))
        data["results"] = {i: data["results"][i] for i in known if i in data["results"]}
    else:
        data = {"kernel": kernel_facts(),
                "setup": {"swap_bytes": SWAP_BYTES, "swap_priority": SWAP_PRIORITY,
                          "settle_seconds": SETTLE_SECONDS, "fs": "ext4 data=journal, loop "
                          "direct I/O", "units": "memcg: pages (pgpg*/pgfault/pgmajfault/"
                          "workingset_*/failcnt/oom_kill: counts); vmstat: pages or events "
                          "(pgpgin/pgpgout KiB); status: kB; swap_used: pages"},
                "results": run_matrix(runs=runs, progress=progress)}
        data["seconds"] = round(time.monotonic() - start, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data))
    return data


def dumps(data: dict) -> str:
    """The record as JSON, one line per phase (a diff shows what changed)."""
    def compact(obj):
        return json.dumps(obj, separators=(",", ":"))

    def result_text(r: dict) -> str:
        lines = []
        for key, value in r.items():
            if key == "phases":
                inner = [f"    {json.dumps(n)}:{compact(p)}" for n, p in value.items()]
                lines.append('   "phases":{\n' + ",\n".join(inner) + "}")
            elif key in ("processes", "oom", "derived_runs") and isinstance(value, list):
                inner = [f"    {compact(p)}" for p in value]
                lines.append(f"   {json.dumps(key)}:[\n" + ",\n".join(inner) + "]")
            else:
                lines.append(f"   {json.dumps(key)}:{compact(value)}")
        return "{\n" + ",\n".join(lines) + "}"

    parts = []
    for key, value in data.items():
        if key == "results":
            parts.append(' "results":{\n' + ",\n".join(
                f"  {json.dumps(k)}:{result_text(r)}" for k, r in value.items()) + "}")
        else:
            parts.append(f" {json.dumps(key)}:{json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def load_recorded(path: Path = DATA_FILE) -> dict:
    """The recorded data (see tests/data/realkernel/README.md)."""
    return json.loads(Path(path).read_text())


def recorded_results(experiment: str, path: Path = DATA_FILE) -> dict[str, dict]:
    """Recorded results of ``experiment`` (e.g. "anon-swap-passes"), by id
    ("anon-swap-passes zram 64M 128M 3 write"), for comparing a model with."""
    return {k: r for k, r in load_recorded(path)["results"].items()
            if k.split()[0] == experiment}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realkernel.reclaim",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", nargs="?", const=str(DATA_FILE), metavar="PATH",
                        help=f"run every experiment and write the data (default {DATA_FILE})")
    parser.add_argument("--print", action="store_true", help="run every experiment, print JSON")
    parser.add_argument("--only", action="append", metavar="ID",
                        help="with --record: re-run only this experiment id (repeatable)")
    parser.add_argument("--runs", type=int, default=None, help="runs of each experiment (3)")
    parser.add_argument("experiment", nargs="*",
                        help="EXPERIMENT ARGS, e.g. anon-swap-passes zram 64M 128M 3 write")
    opts = parser.parse_args(argv)

    def progress(result):
        if "error" in result:
            print(f"{result['id']}: {result['error']}", file=sys.stderr)
            return
        print(f"{result['id']}: {result['seconds']} s {json.dumps(result['derived'])[:300]}",
              file=sys.stderr)

    try:
        with _signals_unwind():
            if opts.record:
                record(Path(opts.record), runs=opts.runs or 3, progress=progress,
                       only=opts.only)
                print(f"wrote {opts.record}", file=sys.stderr)
            elif opts.print:
                print(json.dumps({"kernel": kernel_facts(),
                                  "results": run_matrix(runs=opts.runs or 3,
                                                        progress=progress)}, indent=1))
            elif opts.experiment:
                spec = tuple(opts.experiment)
                out = run_once(spec) if (opts.runs or 1) == 1 else run_spec(spec, opts.runs)
                print(json.dumps(out, indent=1))
            else:
                parser.print_help()
    except ExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"interrupted: {err}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
