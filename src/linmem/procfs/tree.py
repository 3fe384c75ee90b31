"""A machine's /proc as files: the tree ``linmem run`` writes and tools read.

``proc_files`` maps relative paths to text (pure: the model is only read);
``write_tree`` puts them on disk.
"""

from __future__ import annotations

from pathlib import Path

from linmem.procfs.buddyinfo import render_buddyinfo, render_pagetypeinfo
from linmem.procfs.meminfo import render_meminfo
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


def proc_files(machine) -> dict[str, str]:
    """Relative path -> text of every file of the machine's /proc."""
    files = {name: render(machine) for name, render in RENDERERS.items()}
    files.update({f"sys/vm/{name}": text for name, text in sysctl_files(machine).items()})
    return files


def write_tree(files: dict[str, str], root: Path) -> None:
    """Write ``files`` under ``root`` (which must not exist yet)."""
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
