"""Run the real procps tools over a chosen proc directory.

A real ``free`` or ``vmstat`` always reads ``/proc``. To show it another tree,
run it in a private mount namespace (``unshare -m --propagation private``)
where that tree is bind-mounted over ``/proc``; the host's mounts are not
touched and the mount disappears with the process.

Tests call :func:`skip_reason` (``None`` when the real tool can be run) and
skip with the reason otherwise; :func:`run_real` returns the tool's stdout.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Files of /proc the real free and vmstat open (strace of procps-ng 4.0.2:
# vmstat also reads /proc/cpuinfo for the cpu topology, and /proc/self/status
# through libnuma, which tolerates its absence).
PROC_FILES = ("meminfo", "vmstat", "stat", "uptime", "loadavg", "cpuinfo")

_SCRIPT = 'mount --bind "$1" /proc || exit 125; shift; exec "$@"'
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}


def freeze_proc(dest: str | os.PathLike, source: str = "/proc", names=PROC_FILES) -> Path:
    """Copy the text of ``source``'s files ``names`` into ``dest``; return it.

    Each file is read once, so the copy is a consistent-enough snapshot that
    the real tool and linmem can then be given identical input.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = Path(source) / name
        if src.exists():
            (dest / name).write_bytes(src.read_bytes())
    return dest


def _unshare_command(procdir: str | os.PathLike, argv: list[str]) -> list[str]:
    """The command line running ``argv`` with ``procdir`` mounted over /proc."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", _SCRIPT, "sh",
            os.fspath(procdir), *argv]


def run_real_full(tool: str, args: list[str], procdir: str | os.PathLike,
                  timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``/usr/bin/TOOL ARGS`` over ``procdir``; return the completed process."""
    path = shutil.which(tool, path=_ENV["PATH"]) or tool
    return subprocess.run(_unshare_command(procdir, [path, *args]), capture_output=True,
                          text=True, timeout=timeout, env=_ENV, stdin=subprocess.DEVNULL)


def run_real(tool: str, args: list[str], procdir: str | os.PathLike, timeout: float = 60) -> str:
    """Run the real ``tool`` over ``procdir`` and return its stdout.

    Raises RuntimeError (with the tool's stderr) when it fails.
    """
    proc = run_real_full(tool, args, procdir, timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


@functools.lru_cache(maxsize=None)
def _namespace_problem() -> str | None:
    """Probe once whether a directory can be bind-mounted over /proc privately."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "linmem-probe").write_text("ok\n")
        try:
            proc = subprocess.run(_unshare_command(tmp, ["cat", "/proc/linmem-probe"]),
                                  capture_output=True, text=True, timeout=30, env=_ENV)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"cannot run unshare: {err}"
    if proc.returncode != 0 or proc.stdout != "ok\n":
        return f"cannot bind-mount over /proc in a private mount namespace: {proc.stderr.strip()}"
    return None


def skip_reason(tool: str) -> str | None:
    """Why the real ``tool`` cannot be run over a crafted /proc, or None."""
    if shutil.which(tool, path=_ENV["PATH"]) is None:
        return f"the real {tool} is not installed"
    return _namespace_problem()


def real_version(tool: str) -> str:
    """The first line of ``tool -V`` (e.g. 'free from procps-ng 4.0.2')."""
    proc = subprocess.run([tool, "-V"], capture_output=True, text=True, env=_ENV)
    return proc.stdout.strip()
