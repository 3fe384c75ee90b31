"""Frozen per-process proc trees, and real procps tools run over them.

:func:`freeze_processes` copies the text of some processes' /proc/PID files
(and the machine-wide files ps, pmap and smem read) into a directory, each
file read once, so that a real tool and linmem see identical input.

The real ``ps`` (and ``top``) refuse to start unless /proc/<their own pid>
exists in the tree. :func:`run_real_ps_tool` therefore runs the tool through
a small shell wrapper inside a private mount namespace: while the live /proc
is still mounted, the wrapper copies its own /proc/$$ files into the tree
under its own pid, then bind-mounts the tree over /proc and execs the tool,
which keeps that pid. The copied directory stays in the tree, so linmem,
run afterwards over the same tree, sees exactly what the real tool saw;
:func:`forget_pid` removes it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import realtools

PID_FILES = ("status", "stat", "statm", "cmdline", "maps", "smaps", "smaps_rollup")
GLOBAL_FILES = ("meminfo", "stat", "uptime", "loadavg", "cpuinfo", "tty/drivers",
                "sys/kernel/pid_max")

_WRAPPER = r'''
tree=$1; shift
mkdir "$tree/$$" || exit 124
for f in stat status statm cmdline; do cat /proc/$$/$f > "$tree/$$/$f" || exit 124; done
echo $$ > "$tree/.last-wrapper-pid"
mount --bind "$tree" /proc || exit 125
exec "$@"
'''


def freeze_processes(dest: str | os.PathLike, pids, self_pid: int | None = None,
                     source: str = "/proc") -> Path:
    """Copy the files of ``pids`` and the global files into ``dest``.

    ``self`` becomes a symbolic link to ``self_pid`` (default: the first pid).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in GLOBAL_FILES:
        src = Path(source) / name
        if src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
    for pid in pids:
        piddir = dest / str(pid)
        piddir.mkdir(exist_ok=True)
        for name in PID_FILES:
            try:
                data = (Path(source) / str(pid) / name).read_bytes()
            except OSError:
                continue
            (piddir / name).write_bytes(data)
    target = str(self_pid if self_pid is not None else list(pids)[0])
    link = dest / "self"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return dest


def run_real_ps_tool(tool: str, args: list[str], tree: str | os.PathLike,
                     timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real ``tool`` over ``tree`` with its own pid directory added."""
    path = shutil.which(tool, path=realtools._ENV["PATH"]) or tool
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", _WRAPPER, "sh",
               os.fspath(tree), path, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=realtools._ENV, stdin=subprocess.DEVNULL)


def forget_pid(tree: str | os.PathLike) -> None:
    """Remove the pid directory the last wrapper added to ``tree``."""
    tree = Path(tree)
    marker = tree / ".last-wrapper-pid"
    if marker.exists():
        pid = marker.read_text().strip()
        shutil.rmtree(tree / pid, ignore_errors=True)
        marker.unlink()


def wrapper_pid(tree: str | os.PathLike) -> int | None:
    """The pid the last wrapper run added to ``tree``."""
    marker = Path(tree) / ".last-wrapper-pid"
    return int(marker.read_text()) if marker.exists() else None


_HOG = r'''
import mmap, sys, time
anon = bytearray(8 << 20)
for i in range(0, len(anon), 4096):
    anon[i] = 1
shared = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_SHARED)
shared.write(b"x" * (1 << 20))
with open(sys.executable, "rb") as fh:
    exe = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
    exe[0:4096 * 4]
print("ready", flush=True)
time.sleep(100000)
'''

_SHM = r'''
import ctypes, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(0, 1 << 20, 0o1000 | 0o600)
addr = libc.shmat(shmid, None, 0)
libc.shmctl(shmid, 0, None)          # removed once we detach; mapping stays
ctypes.memset(addr, 1, 1 << 16)
print("ready", flush=True)
time.sleep(100000)
'''


class SampleProcesses:
    """Long-lived processes of known shape, started for a test module.

    ``sleeper`` (sleep), ``hog`` (python with touched anonymous memory, a
    shared mapping and a file mapping), ``odd`` (sleep whose argv[0] holds a
    tab, a newline and non-ASCII letters), ``zombie`` (an exited, unreaped
    child), ``shm`` (python attached to a SysV shared-memory segment).
    """

    def __init__(self, python: str):
        self.procs = {}
        self.procs["sleeper"] = subprocess.Popen(["sleep", "100000"], stdin=subprocess.DEVNULL)
        self.procs["hog"] = subprocess.Popen([python, "-c", _HOG], stdout=subprocess.PIPE,
                                             stdin=subprocess.DEVNULL)
        self.procs["odd"] = subprocess.Popen(["odd\tname\nwith \u00fcn\u00ef", "100000"],
                                             executable="/bin/sleep", stdin=subprocess.DEVNULL)
        self.procs["zombie"] = subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL)
        self.procs["shm"] = subprocess.Popen([python, "-c", _SHM], stdout=subprocess.PIPE,
                                             stdin=subprocess.DEVNULL)
        for name in ("hog", "shm"):
            line = self.procs[name].stdout.readline()
            assert line.strip() == b"ready", f"{name} did not start: {line!r}"
        import time
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                state = Path(f"/proc/{self.pid('zombie')}/stat").read_text().rsplit(")", 1)[1]
            except OSError:
                break
            if state.split()[0] == "Z":
                break
            time.sleep(0.01)
        time.sleep(0.2)      # let sleep(1) reach its nanosleep

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stdout:
                p.stdout.close()


def simulated_trees(out: Path, python: str) -> list[Path]:
    """Run ``linmem run`` (the built-in scenario) into ``out``; return the proc
    trees it wrote that hold processes (snapshots taken while tasks live)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([python, "-m", "linmem.cli", "run", "--out", str(out)],
                          capture_output=True, text=True, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f"linmem run failed: {proc.stderr.strip()}")
    trees = [out / "proc"] + sorted((out / "snapshots").glob("*/proc"))
    return [t for t in trees if any(p.name.isdigit() for p in t.iterdir())]
