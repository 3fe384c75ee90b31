"""Measure what the real kernel does with buffered writes, dirty data, writeback,
fsync, drop_caches and ``Buffers``, each run confined to a memory cgroup.

The experiments are those of ``io.c`` (one C program, built once per process
with ``gcc -O1 -Wl,-z,now`` into a temporary directory). Every run gets

* a fresh cgroup v1 memory group (``harness.memory_cgroup``, limit 1 GiB:
  nothing here is ever reclaimed), which the program joins before exec;
* a fresh ext4 image (768 MiB, 16 MiB journal, made by ``mkfs.ext4``, synced
  and dropped from the host's page cache) on a loop device with direct I/O
  (the backing file's host page cache stays out of every count), mounted
  ``data=journal`` (4 KiB folios) or ``data=ordered`` (the default; large
  folios) inside a private mount namespace held by one ``unshare`` process,
  or for ``tmpfs-write`` a size-limited tmpfs in such a namespace. The files
  are reached through ``/proc/<holder>/root``: no mount is ever visible on
  the host, and the mounts (and, through autoclear, the loop device) go away
  with the holder even if this process is killed.

The program stops before each phase; this driver then snapshots the group's
``memory.stat``, ``/proc/vmstat``, ``/proc/meminfo`` and the page cache of
the loop device (the file system's share of ``Buffers``, by cachestat(2)),
lets the phase run, and snapshots again. A phase result::

    {"pages": 4096, "minflt": 0, "majflt": 0, "us": 8123,      # getrusage, wall time
     "resident": {"data": 4096},                                 # mincore of each file
     "cachestat": {"data": [4096, 4096, 0]},                     # [cached, dirty, writeback]
     "memcg": {"cache": 4096, "dirty": 4096, ...},               # delta (pages; pgpg*: events)
     "memcg_after": {...},                                       # the group's value after
     "vmstat": {"nr_dirtied": 4101, ...},                        # global delta (pgpg*: KiB)
     "vmstat_after": {"nr_dirty_threshold": ..., ...},
     "meminfo": {"Dirty": 16384, ...},                           # global delta (kB)
     "meminfo_before": {"Dirty": ..., "Buffers": ..., ...},      # kB
     "meminfo_after": {...},
     "bdev_before": [cached, dirty, writeback], "bdev_after": [...],   # the loop device
     "scan": {"file": {"pages", "lru", "active", "referenced", "dirty", "writeback",
                       "mapped", "folios": {"1": n, "16": m, ...}}, "shmem": ..., ...},
     "samples": [{"t", "dirty", "writeback", "nr_written", ..., "data": [c, d, w]}]}
                                                                 # "wait" phase only

``scan`` (settle phases only) is the exact per-page summary of the group's
pages from /proc/kpageflags and /proc/kpagecgroup; ``folios`` counts folios
by size in pages. See tests/data/realkernel/README.md for the recorded data.

Everything created (cgroups, images, temporary directories, mounts, loop
devices) is removed in ``finally`` blocks; leftovers of a killed run are
removed by ``harness.remove_stale`` on the next use. The only global setting
written is ``/proc/sys/vm/drop_caches`` (value 1).

Command line (run from the project root, as root)::

    python -m tests.realkernel.io --record      # rewrite tests/data/realkernel/writeback-6.18.json
    python -m tests.realkernel.io --print       # run the matrix, print the JSON
    python -m tests.realkernel.io --record --only "background-writeback ordered 16M"
    python -m tests.realkernel.io write-new ordered 16M 1M
    python -m tests.realkernel.io tmpfs-write tmpfs 16M
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import harness
from .harness import ExperimentError, MiB, PAGE

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "io.c"
DATA_FILE = harness.DATA_DIR / "writeback-6.18.json"

CGROUP_LIMIT = 1 << 30
IMAGE_BYTES = 768 * MiB
MODES = ("journal", "ordered")
SIZES = ("16M", "200M")
SETTLE_SECONDS = 2.2
_ENV = harness._ENV

MEMCG_PAGES = ("cache", "rss", "mapped_file", "dirty", "writeback", "inactive_file",
               "active_file", "shmem", "inactive_anon", "active_anon", "unevictable")
MEMCG_EVENTS = ("pgpgin", "pgpgout", "pgfault", "pgmajfault")
VMSTAT_KEYS = ("nr_dirtied", "nr_written", "pgpgin", "pgpgout", "pgactivate", "pgdeactivate",
               "nr_dirty", "nr_writeback", "nr_dirty_threshold",
               "nr_dirty_background_threshold", "nr_shmem", "nr_file_pages", "pgmajfault",
               "workingset_activate_file", "drop_pagecache")
VMSTAT_GAUGES = ("nr_dirty", "nr_writeback", "nr_dirty_threshold",
                 "nr_dirty_background_threshold")
MEMINFO_KEYS = ("Dirty", "Writeback", "Buffers", "Cached", "Shmem", "MemFree")


# --------------------------------------------------------------------- skips

def build_skip_reason() -> str | None:
    """Why io.c cannot be compiled here, or None."""
    return harness.c_skip_reason(SOURCE)


def kpageflags_skip_reason() -> str | None:
    for name in ("/proc/kpageflags", "/proc/kpagecgroup"):
        if not os.access(name, os.R_OK):
            return f"{name} is not readable (needs root and CONFIG_PROC_PAGE_MONITOR/MEMCG)"
    return None


@functools.lru_cache(maxsize=None)
def loop_skip_reason() -> str | None:
    """Why a loop device with an ext4 image cannot be mounted here, or None."""
    for tool in ("mkfs.ext4", "unshare", "nsenter", "mount", "umount", "losetup", "dumpe2fs"):
        if shutil.which(tool, path=harness._PATH) is None:
            return f"{tool} is not installed (e2fsprogs / util-linux)"
    if os.geteuid() != 0:
        return "not root: mounting a loop device needs root"
    if not Path("/dev/loop-control").exists():
        return "no /dev/loop-control: loop devices are unavailable"
    try:
        with loop_fs("journal", image_bytes=16 * MiB) as fs:
            if not os.path.isdir(fs.path("lost+found")):
                return "the loop-mounted ext4 does not show its files"
    except (OSError, ExperimentError) as err:
        return f"cannot loop-mount an ext4 image: {err}"
    return None


def skip_reason(loop: bool = True) -> str | None:
    """The first reason the experiments (with ``loop``: the ext4 ones) cannot run."""
    return (build_skip_reason() or harness.cgroup_skip_reason() or kpageflags_skip_reason()
            or (loop_skip_reason() if loop else None))


# --------------------------------------------------------------------- build

def build() -> Path:
    """Compile io.c once per process; return the executable (removed at exit)."""
    return harness.compile_c(SOURCE)


# --------------------------------------------------- namespaces and mounts

class Namespace:
    """A private mount namespace held by one ``unshare`` process (a shell that
    waits on its stdin); commands run in it with ``nsenter``."""

    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", "echo ready; read _ || true"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_ENV)
        if self.holder.stdout.readline().strip() != "ready":
            self.close()
            raise ExperimentError("cannot create a private mount namespace (unshare -m)")

    @property
    def pid(self) -> int:
        return self.holder.pid

    def path(self, inside: str | Path) -> str:
        """The host path of ``inside`` as the namespace sees it."""
        return f"/proc/{self.pid}/root{inside}"

    def run(self, *cmd: str, group: Path | None = None, timeout: float = 120) -> None:
        """Run ``cmd`` in the namespace (in memory cgroup ``group`` if given)."""
        proc = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "--", *cmd],
                              capture_output=True, text=True, env=_ENV, timeout=timeout,
                              preexec_fn=_joiner(group) if group else None)
        if proc.returncode != 0:
            raise ExperimentError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")

    def mount_options(self, mountpoint: Path) -> str:
        for line in Path(f"/proc/{self.pid}/mounts").read_text().splitlines():
            fields = line.split()
            if fields[1] == str(mountpoint):
                return fields[3]
        return ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.holder.stdin.close()         # the shell exits; the namespace goes
        try:
            self.holder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.wait()
        for stream in (self.holder.stdout, self.holder.stderr):
            with contextlib.suppress(OSError):
                stream.close()


class LoopFs:
    """An ext4 image on a loop device (direct I/O), mounted in a :class:`Namespace`."""

    def __init__(self, ns: Namespace, directory: Path, image: Path, device: str, mode: str):
        self.ns, self.directory, self.image, self.device, self.mode = \
            ns, directory, image, device, mode
        self.mountpoint = directory / "mnt"
        self.mounted = False

    @property
    def dir(self) -> str:
        """The mounted file system's root as a host path."""
        return self.ns.path(self.mountpoint)

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def mount(self, group: Path | None = None) -> None:
        """Mount (the mount process in ``group``), then mark the loop device
        autoclear: it detaches itself when the file system goes."""
        self.ns.run("mount", "-t", "ext4", "-o", f"data={self.mode}", self.device,
                    str(self.mountpoint), group=group)
        self.mounted = True
        subprocess.run(["losetup", "-d", self.device], capture_output=True, env=_ENV)

    def umount(self) -> None:
        if self.mounted:
            self.mounted = False
            self.ns.run("umount", str(self.mountpoint))

    def direct_io(self) -> bool | None:
        text = harness._read(f"/sys/block/{Path(self.device).name}/loop/dio")
        return None if text is None else text == "1"

    def facts(self) -> dict:
        """Mount options, loop device settings and the image's ext4 geometry."""
        proc = subprocess.run(["dumpe2fs", "-h", str(self.image)], capture_output=True,
                              text=True, env=_ENV)
        geometry = {}
        for key in ("Block size", "Block count", "Inode count", "Inode size",
                    "Inodes per group", "Blocks per group", "Flex block group size",
                    "Total journal size", "Filesystem features"):
            m = re.search(rf"^{key}:\s*(.+)$", proc.stdout, re.M)
            if m:
                geometry[key] = m.group(1).strip()
        return {"mode": self.mode, "mount_options": self.ns.mount_options(self.mountpoint),
                "image_bytes": self.image.stat().st_size, "loop_direct_io": self.direct_io(),
                "ext4": geometry}


def _sync_and_forget(path: Path) -> None:
    """Write a host file out and drop it from the host page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@contextlib.contextmanager
def loop_fs(mode: str, image_bytes: int = IMAGE_BYTES, files: dict[str, int] | None = None,
            mount: bool = True, group: Path | None = None):
    """Yield a :class:`LoopFs`: a fresh ext4 image (holding ``files``, name ->
    bytes, cold) on a direct-I/O loop device, mounted ``data=mode`` unless
    ``mount`` is false (then the caller mounts it)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    harness.remove_stale()
    directory = Path(tempfile.mkdtemp(prefix=f"{harness.TMP_PREFIX}{os.getpid()}-io-"))
    ns = fs = None
    try:
        staging = None
        if files:
            staging = directory / "staging"
            staging.mkdir()
            for name, size in files.items():
                harness._fill(staging / name, size)
        image = directory / "ext4.img"
        proc = subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0",
             *(["-d", str(staging)] if staging else []), str(image), f"{image_bytes // 1024}k"],
            capture_output=True, text=True, env=_ENV, timeout=300)
        if staging:
            shutil.rmtree(staging)
        if proc.returncode != 0:
            raise ExperimentError(f"mkfs.ext4 failed: {proc.stderr.strip()}")
        _sync_and_forget(image)
        (directory / "mnt").mkdir()
        ns = Namespace()
        proc = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", str(image)],
                              capture_output=True, text=True, env=_ENV)
        if proc.returncode != 0:
            proc = subprocess.run(["losetup", "--find", "--show", str(image)],
                                  capture_output=True, text=True, env=_ENV)
        if proc.returncode != 0:
            raise ExperimentError(f"losetup failed: {proc.stderr.strip()}")
        fs = LoopFs(ns, directory, image, proc.stdout.strip(), mode)
        if mount:
            fs.mount(group)
        yield fs
    finally:
        if fs is not None:
            with contextlib.suppress(ExperimentError, subprocess.TimeoutExpired):
                fs.umount()
        if ns is not None:
            ns.close()
        for _ in range(100):                  # the autoclear detach is asynchronous
            if not harness._loops_of(directory):
                break
            time.sleep(0.05)
        harness._detach_loops_of(directory)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(size_bytes: int):
    """Yield (namespace, host path) of a tmpfs of ``size_bytes`` mounted in a
    private mount namespace."""
    harness.remove_stale()
    directory = Path(tempfile.mkdtemp(prefix=f"{harness.TMP_PREFIX}{os.getpid()}-io-"))
    ns = None
    try:
        (directory / "mnt").mkdir()
        ns = Namespace()
        ns.run("mount", "-t", "tmpfs", "-o", f"size={size_bytes // 1024}k,mode=0755", "tmpfs",
               str(directory / "mnt"))
        yield ns, directory / "mnt"
    finally:
        if ns is not None:
            with contextlib.suppress(ExperimentError, subprocess.TimeoutExpired):
                ns.run("umount", str(directory / "mnt"))
            ns.close()
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------ snapshots

def _keyed(path: str) -> dict[str, int]:
    out = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            with contextlib.suppress(ValueError):
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


_libc = ctypes.CDLL(None, use_errno=True)
_NR_CACHESTAT = 451                            # x86-64 (and every arch since 6.5)


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("nr_cache", "nr_dirty", "nr_writeback",
                                                "nr_evicted", "nr_recently_evicted")]


def cachestat(path: str) -> list[int] | None:
    """[cached, dirty, writeback] pages of file or block device ``path``, by
    cachestat(2); None when it is absent.

    For the loop device this is the file system's share of ``Buffers``
    (metadata read through buffer heads, which mincore does not see: the
    folios are not marked uptodate)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        rng, cs = _CachestatRange(0, 0), _Cachestat()
        if _libc.syscall(_NR_CACHESTAT, fd, ctypes.byref(rng), ctypes.byref(cs), 0) != 0:
            raise OSError(ctypes.get_errno(), f"cachestat {path}")
        return [cs.nr_cache, cs.nr_dirty, cs.nr_writeback]
    finally:
        os.close(fd)


def snapshot(group: Path, bdev: str | None = None) -> dict:
    """The counters one phase is measured by (see the module docstring)."""
    stat = _keyed(str(group / "memory.stat"))
    vmstat = _keyed("/proc/vmstat")
    meminfo = _keyed("/proc/meminfo")
    snap = {"t": time.monotonic(),
            "memcg": {**{k: stat.get(k, 0) // PAGE for k in MEMCG_PAGES},
                      **{k: stat.get(k, 0) for k in MEMCG_EVENTS}},
            "vmstat": {k: vmstat.get(k, 0) for k in VMSTAT_KEYS},
            "meminfo": {k: meminfo.get(k, 0) for k in MEMINFO_KEYS}}
    if bdev:
        snap["bdev"] = cachestat(bdev)
    return snap


def phase_record(before: dict, after: dict, line: dict) -> dict:
    """A phase result from the program's line and the snapshots around it."""
    rec = {k: line[k] for k in ("pages", "minflt", "majflt", "us", "resident", "cachestat")}
    rec["memcg"] = {k: after["memcg"][k] - before["memcg"][k] for k in after["memcg"]}
    rec["memcg_after"] = dict(after["memcg"])
    rec["vmstat"] = {k: after["vmstat"][k] - before["vmstat"][k] for k in VMSTAT_KEYS
                     if k not in ("nr_dirty_threshold", "nr_dirty_background_threshold")}
    rec["vmstat_after"] = {k: after["vmstat"][k] for k in VMSTAT_GAUGES}
    rec["meminfo"] = {k: after["meminfo"][k] - before["meminfo"][k] for k in MEMINFO_KEYS}
    rec["meminfo_before"] = dict(before["meminfo"])
    rec["meminfo_after"] = dict(after["meminfo"])
    if "bdev" in after:
        rec["bdev_before"], rec["bdev_after"] = before["bdev"], after["bdev"]
    return rec


def sample_record(start: dict, snap: dict, files: dict[str, str] | None = None) -> dict:
    """One sample of a waiting phase: the group's dirty/writeback pages, the
    global counters since the phase began, and [cached, dirty, writeback] of
    each of ``files`` (name -> path)."""
    out = {"t": round(snap["t"] - start["t"], 2),
           "dirty": snap["memcg"]["dirty"], "writeback": snap["memcg"]["writeback"],
           "nr_written": snap["vmstat"]["nr_written"] - start["vmstat"]["nr_written"],
           "nr_dirtied": snap["vmstat"]["nr_dirtied"] - start["vmstat"]["nr_dirtied"],
           "pgpgout_kb": snap["vmstat"]["pgpgout"] - start["vmstat"]["pgpgout"],
           "nr_dirty": snap["vmstat"]["nr_dirty"], "nr_writeback": snap["vmstat"]["nr_writeback"]}
    if "bdev" in snap:
        out["bdev"] = snap["bdev"]
    for name, path in (files or {}).items():
        out[name] = cachestat(path)
    return out


# ------------------------------------------------------------------- driving

def _joiner(group: Path):
    procs = group / "cgroup.procs"

    def join():                               # in the child, before exec
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
        if harness._prctl is not None:        # die with this process, even on SIGKILL
            harness._prctl(harness.PR_SET_PDEATHSIG, signal.SIGKILL)
    return join


class _Lines:
    """Lines from a pipe, with a timeout (None at end of file)."""

    TIMEOUT = object()

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def next(self, timeout: float):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return self.TIMEOUT
            chunk = os.read(self.fd, 65536)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode()
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def drive(group: Path, argv: list[str], bdev: str | None = None, phases: dict | None = None,
          timeout: float = 300) -> dict:
    """Run io.c with ``argv`` in memory cgroup ``group``, phase by phase.

    Returns {"phases": {name: record}, "info": {...}}; ``phases`` (if given)
    is extended in order (a phase measured by the caller comes first).
    """
    exe = build()
    phases = {} if phases is None else phases
    info: dict = {}
    errfile = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(exe), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=errfile, env=_ENV, preexec_fn=_joiner(group))
    lines = _Lines(proc.stdout.fileno())
    before, sample, scan, files, samples = None, 0.0, None, {}, []
    try:
        while True:
            if sample:
                line = lines.next(sample)
                if line is _Lines.TIMEOUT:
                    samples.append(sample_record(before, snapshot(group, bdev), files))
                    continue
            else:
                line = lines.next(timeout)
                if line is _Lines.TIMEOUT:
                    raise ExperimentError(f"{' '.join(argv)}: no output for {timeout} s")
            if line is None:
                break
            if not line.strip():
                continue
            msg = json.loads(line)
            if "error" in msg:
                raise ExperimentError(f"{' '.join(argv)}: {msg['error']}")
            if "ready" in msg:
                before = snapshot(group, bdev)
                sample, samples = float(msg.get("sample") or 0), []
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
            elif "scan" in msg:
                scan = msg["scan"]
            elif "phase" in msg:
                after = snapshot(group, bdev)
                rec = phase_record(before, after, msg)
                if scan is not None:
                    rec["scan"], scan = scan, None
                if sample:
                    rec["samples"] = samples
                sample = 0.0
                phases[msg["phase"]] = rec
                files = {name: f"{argv[1]}/{name}" for name in msg.get("cachestat", {})}
                proc.stdin.write(b"ok\n")
                proc.stdin.flush()
            elif "info" in msg:
                info.update(msg["info"])
            elif "done" in msg:
                proc.stdin.write(b"bye\n")
                proc.stdin.flush()
        rc = proc.wait(timeout=60)
        if rc != 0:
            errfile.seek(0)
            raise ExperimentError(f"{' '.join(argv)} exited {rc}: "
                                  f"{errfile.read().decode(errors='replace').strip()[-500:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        errfile.close()
    return {"phases": phases, "info": info}


def drop_caches() -> None:
    """Drop clean, unmapped page cache everywhere (``vm.drop_caches`` = 1)."""
    Path("/proc/sys/vm/drop_caches").write_text("1")


# --------------------------------------------------------------- experiments

#: experiment -> (C argument names after DIR, default runs)
EXPERIMENTS = {
    "write-new": "SIZE BLOCK",
    "write-twice": "SIZE [BLOCK]",
    "write-then-read": "SIZE [BLOCK]",
    "partial-overwrite": "SIZE",
    "background-writeback": "SIZE [SECONDS]",
    "drop-caches-dirty": "SIZE",
    "unlink-cached": "SIZE",
    "metadata-buffers": "[SIZE]",
    "mmap-shared-write": "SIZE",
    "tmpfs-write": "SIZE",
}


def matrix() -> list[tuple[str, ...]]:
    """Every recorded experiment, as (experiment, mode, args...) tuples."""
    specs: list[tuple[str, ...]] = []
    for mode in MODES:
        for size in SIZES:
            specs += [("write-new", mode, size, "4K"), ("write-new", mode, size, "1M"),
                      ("write-twice", mode, size), ("write-then-read", mode, size),
                      ("partial-overwrite", mode, size), ("drop-caches-dirty", mode, size),
                      ("unlink-cached", mode, size), ("mmap-shared-write", mode, size)]
        specs += [("write-twice", mode, "16M", "4K"), ("background-writeback", mode, "16M"),
                  ("metadata-buffers", mode, "200M")]
    specs += [("tmpfs-write", "tmpfs", size) for size in SIZES]
    return specs


def spec_id(spec) -> str:
    return " ".join(spec)


def default_runs(spec) -> int:
    """Background writeback waits 40 s: run once; the rest three times."""
    return 1 if spec[0] == "background-writeback" else 3


def _size_arg(spec) -> int:
    sizes = [harness.parse_size(a) or 0 for a in spec[2:]]
    return max(sizes, default=0)


def run_once(spec) -> dict:
    """Run ``spec`` once in a fresh memory group and a fresh file system."""
    experiment, mode, *args = spec
    if experiment not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {experiment!r}")
    start = time.monotonic()
    with harness.memory_cgroup(CGROUP_LIMIT) as group:
        fs_facts = None
        if experiment == "tmpfs-write":
            if mode != "tmpfs":
                raise ExperimentError("tmpfs-write runs on mode 'tmpfs'")
            size = _size_arg(spec)
            with tmpfs(2 * size + 16 * MiB) as (ns, mnt):
                out = drive(group, [experiment, ns.path(mnt), *args])
                fs_facts = {"mode": "tmpfs", "mount_options": ns.mount_options(mnt)}
        elif experiment == "metadata-buffers":
            size = args[0] if args else "200M"
            with loop_fs(mode, files={"cold": harness.parse_size(size)}, mount=False) as fs:
                # Mounting, measured here: after drop_caches, the mount process
                # in the group.
                drop_caches()
                before = snapshot(group, fs.device)
                t0 = time.monotonic()
                fs.mount(group)
                us = int((time.monotonic() - t0) * 1e6)
                after = snapshot(group, fs.device)
                phases = {"mount": phase_record(before, after, {
                    "pages": 0, "minflt": 0, "majflt": 0, "us": us, "resident": {},
                    "cachestat": {}})}
                out = drive(group, [experiment, fs.dir, "cold", size, *args[1:]], fs.device,
                            phases)
                fs_facts = fs.facts()
        else:
            with loop_fs(mode) as fs:
                out = drive(group, [experiment, fs.dir, *args], fs.device)
                fs_facts = fs.facts()
        cgroup = harness._cgroup_report(group)
    if cgroup["oom_kill"] or cgroup["failcnt"]:
        raise ExperimentError(f"{spec_id(spec)} hit the memory limit: {cgroup}")
    result = {"id": spec_id(spec), "experiment": experiment, "mode": mode, "args": list(args)}
    result.update(out)
    result["fs"] = fs_facts
    result["cgroup"] = cgroup
    result["seconds"] = round(time.monotonic() - start, 2)
    result["derived"] = derive(result)
    return result


def derive(result: dict) -> dict:
    """Facts read off one run: folio sizes, LRU placement, writeback timing."""
    out: dict = {}
    for name, phase in result["phases"].items():
        if "scan" in phase:
            f = phase["scan"]["file"] if result["mode"] != "tmpfs" else phase["scan"]["shmem"]
            out[name] = {"inactive": f["lru"] - f["active"], "active": f["active"],
                         "not_on_lru": f["pages"] - f["lru"], "dirty": f["dirty"],
                         "folios": f["folios"]}
    wait = result["phases"].get("wait")
    if wait and wait.get("samples"):
        # The file's own [cached, dirty, writeback] pages (cachestat) in each
        # sample: exact, unlike the group's memory.stat.
        samples = wait["samples"]
        n = result["phases"]["write"]["cachestat"]["data"][1]
        started = next((s["t"] for s in samples if s["data"][1] < n or s["data"][2]), None)
        clean = next((s["t"] for s in samples if s["data"][1] == s["data"][2] == 0), None)
        write_s = result["phases"]["write"]["us"] / 1e6
        out["writeback"] = {
            "dirty_pages": n,
            "first_change_s": started, "clean_s": clean,
            "first_change_s_after_write_start": None if started is None
            else round(started + write_s, 2),
            "last_dirty_sample_s": max((s["t"] for s in samples if s["data"][1] == n),
                                       default=None),
            "bdev_first_growth_s": next(
                (s["t"] for s in samples if s.get("bdev", [0])[0] > wait["bdev_before"][0]),
                None)}
    return out


# ----------------------------------------------------------- several runs

def _numbers(obj, prefix=()):
    """(path, value) of every number in ``obj`` (lists of samples excluded)."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("samples", "seconds", "meminfo_before", "meminfo_after",
                         "vmstat_after", "range"):
                yield from _numbers(v, prefix + (k,))
    elif isinstance(obj, list):                 # [cached, dirty, writeback]
        for i, v in enumerate(obj):
            yield from _numbers(v, prefix + (str(i),))


def ranges(runs: list[dict]) -> dict:
    """{"phases.write.vmstat.nr_dirtied": [min, max]} of every number that
    differed between ``runs`` (phases, info, cgroup, derived)."""
    seen: dict[tuple, list] = {}
    for run in runs:
        for part in ("phases", "info", "cgroup", "derived"):
            for path, v in _numbers(run.get(part, {}), (part,)):
                seen.setdefault(path, []).append(v)
    return {".".join(p): [min(v), max(v)] for p, v in seen.items()
            if min(v) != max(v) or len(v) != len(runs)}


def place_ranges(result: dict, found: dict) -> dict:
    """Put the ranges of :func:`ranges` where they belong: a phase's under its
    "range" ({"vmstat.nr_dirtied": [min, max]}), the rest under the result's."""
    result["range"] = {}
    for key, value in found.items():
        part, _, rest = key.partition(".")
        name, _, inner = rest.partition(".")
        if part == "phases" and name in result["phases"]:
            result["phases"][name].setdefault("range", {})[inner] = value
        else:
            result["range"][key] = value
    return result


def run_spec(spec, runs: int | None = None) -> dict:
    """Run ``spec`` ``runs`` times; keep the run of median duration and the
    [min, max] of every number that varied (see :func:`place_ranges`)."""
    runs = default_runs(spec) if runs is None else runs
    done = [run_once(spec) for _ in range(runs)]
    kept = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]
    kept = dict(kept, phases={k: dict(v) for k, v in kept["phases"].items()})
    kept["runs"] = runs
    return place_ranges(kept, ranges(done))


def run_matrix(specs=None, runs: int | None = None, progress=None) -> dict:
    """{id: result or {"id", "error"}} for ``specs`` (default: the matrix)."""
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
    """The kernel settings writeback depends on."""
    sysctl = {}
    for name in ("dirty_ratio", "dirty_background_ratio", "dirty_bytes",
                 "dirty_background_bytes", "dirty_expire_centisecs",
                 "dirty_writeback_centisecs", "dirtytime_expire_seconds", "swappiness"):
        sysctl[name] = harness._int(f"/proc/sys/vm/{name}")
    zoneinfo = harness._read("/proc/zoneinfo") or ""
    thresholds = [int(x) for x in re.findall(r"vm stats threshold:\s*(\d+)", zoneinfo)]
    meminfo = _keyed("/proc/meminfo")
    return {"release": platform.release(), "machine": platform.machine(),
            "page_size": os.sysconf("SC_PAGE_SIZE"), "cpus": os.cpu_count(),
            "mem_total_kb": meminfo.get("MemTotal"), "vm": sysctl,
            "vm_stats_threshold_max": max(thresholds, default=None),
            "thp_shmem_enabled": harness._selected(
                harness._read("/sys/kernel/mm/transparent_hugepage/shmem_enabled"))}


def record(path: Path = DATA_FILE, runs: int | None = None, progress=None,
           only: list[str] | None = None) -> dict:
    """Run the matrix and write the results, with the kernel facts, to ``path``.

    With ``only`` (ids of the matrix), run just those and replace them in the
    existing file."""
    reason = skip_reason()
    if reason:
        raise ExperimentError(reason)
    start = time.monotonic()
    if only:
        known = {spec_id(s): s for s in matrix()}
        unknown = [i for i in only if i not in known]
        if unknown:
            raise ExperimentError(f"not in the matrix: {unknown}")
        data = load_recorded(path)
        data["results"].update(run_matrix([known[i] for i in only], runs=runs,
                                          progress=progress))
        data["results"] = {spec_id(s): data["results"][spec_id(s)] for s in matrix()
                           if spec_id(s) in data["results"]}
        path.write_text(dumps(data))
        return data
    results = run_matrix(runs=runs, progress=progress)
    data = {
        "kernel": kernel_facts(),
        "setup": {"cgroup_limit_bytes": CGROUP_LIMIT, "image_bytes": IMAGE_BYTES,
                  "settle_seconds": SETTLE_SECONDS,
                  "units": "memcg: pages (pgpgin/pgpgout/pgfault: events); vmstat: pages, "
                           "pgpgin/pgpgout KiB; meminfo: kB"},
        "seconds": round(time.monotonic() - start, 1),
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data))
    return data


def dumps(data: dict) -> str:
    """The record as JSON: one line per phase (and per sample), so that a
    re-recording diffs phase by phase without making the file huge."""
    def compact(obj):
        return json.dumps(obj, separators=(",", ":"))

    def result_text(r: dict) -> str:
        lines = []
        for key, value in r.items():
            if key == "phases":
                inner = []
                for name, ph in value.items():
                    ph = dict(ph)
                    samples = ph.pop("samples", None)
                    text = compact(ph)
                    if samples is not None:
                        text = text[:-1] + ',"samples":[\n      ' + ",\n      ".join(
                            compact(s) for s in samples) + "]}"
                    inner.append(f"    {json.dumps(name)}:{text}")
                lines.append('   "phases":{\n' + ",\n".join(inner) + "}")
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


def recorded_results(experiment: str, mode: str | None = None,
                     path: Path = DATA_FILE) -> dict[str, dict]:
    """Recorded results of ``experiment`` (e.g. "write-twice"), optionally of
    one mount ``mode`` ("journal", "ordered", "tmpfs"), by id
    ("write-twice journal 16M")."""
    return {k: r for k, r in load_recorded(path)["results"].items()
            if k.split()[0] == experiment and (mode is None or k.split()[1] == mode)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realkernel.io",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", nargs="?", const=str(DATA_FILE), metavar="PATH",
                        help=f"run every experiment and write the data (default {DATA_FILE})")
    parser.add_argument("--print", action="store_true", help="run every experiment, print JSON")
    parser.add_argument("--only", action="append", metavar="ID",
                        help="with --record: re-run only this experiment id (repeatable) "
                             "and replace it in the existing file")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs of each experiment (default 3; background-writeback 1)")
    parser.add_argument("experiment", nargs="*",
                        help="EXPERIMENT MODE ARGS, e.g. write-new ordered 16M 1M")
    opts = parser.parse_args(argv)

    def progress(result):
        if "error" in result:
            print(f"{result['id']}: {result['error']}", file=sys.stderr)
            return
        phases = ", ".join(f"{k} {v['us'] // 1000}ms" for k, v in result["phases"].items()
                           if not k.startswith("settle"))
        print(f"{result['id']}: {phases} ({result['seconds']} s)", file=sys.stderr)

    try:
        if opts.record:
            record(Path(opts.record), runs=opts.runs, progress=progress, only=opts.only)
            print(f"wrote {opts.record}", file=sys.stderr)
        elif opts.print:
            print(json.dumps({"kernel": kernel_facts(),
                              "results": run_matrix(runs=opts.runs, progress=progress)},
                             indent=1))
        elif opts.experiment:
            print(json.dumps(run_spec(tuple(opts.experiment), opts.runs or 1), indent=1))
        else:
            parser.print_help()
    except ExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
