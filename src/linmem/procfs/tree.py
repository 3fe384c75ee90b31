"""A machine's /proc as files: the tree ``linmem run`` writes and tools read.

``proc_files`` maps relative paths to text (pure: the model is only read);
``write_tree`` puts them on disk.
"""

from __future__ import annotations

from pathlib import Path

from linmem.procfs.buddyinfo import render_buddyinfo, render_pagetypeinfo
from linmem.procfs.meminfo import render_meminfo
from linmem.procfs.pid import pid_files
from linmem.procfs.misc import (render_cpuinfo, render_loadavg, render_stat, render_swaps,
                                render_uptime, sysctl_files)
from linmem.procfs.vmstat import render_vmstat
from linmem.procfs.zoneinfo import render_zoneinfo

RENDERERS = {
    "meminfo": render_meminfo,
    "vmstat": render_vmstat,
    "zoneinfo": render_zoneinfo,
    "buddyinfo": render_buddyinfo,
    "pagetypeinfo": render_pagetypeinfo,
    "stat": render_stat,
    "uptime": render_uptime,
    "loadavg": render_loadavg,
    "swaps": render_swaps,
    "cpuinfo": render_cpuinfo,
}


class Symlink(str):
    """A proc entry that is a symbolic link (``self``) to the path it holds."""


def proc_files(machine) -> dict[str, str]:
    """Relative path -> text of every file of the machine's /proc.

    Processes that have exited (zombies) have no directory, as in SCENARIO.md;
    ``self`` links to the first live process.
    """
    files = {name: render(machine) for name, render in RENDERERS.items()}
    files.update({f"sys/vm/{name}": text for name, text in sysctl_files(machine).items()})
    kernel = machine._kernel
    if kernel is not None:
        live = [t for t in kernel.tasks.values() if t.state != "Z"]
        for task in sorted(live, key=lambda t: t.pid):
            files.update(pid_files(kernel, task))
        if live:
            files["self"] = Symlink(str(min(t.pid for t in live)))
    return files


def sys_files(machine) -> dict[str, str]:
    """Relative path -> text of the machine's /sys that linmem models: the
    memory cgroup tree (``fs/cgroup/...``, v2, or the v1 memory controller
    with ``machine.cgroup: v1``)."""
    from linmem.procfs.cgroup import cgroup_files
    kernel = machine._kernel
    if kernel is None:
        return {}
    return cgroup_files(kernel, getattr(machine, "cgroup_version", 2))


def write_tree(files: dict[str, str], root: Path) -> None:
    """Write ``files`` under ``root`` (which must not exist yet)."""
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, Symlink):
            path.symlink_to(str(text))
        else:
            path.write_text(text)
