"""The memory controller's files: the cgroup v2 tree, and the v1 view.

``cgroup_files`` renders ``sys/fs/cgroup/...`` for every memcg of the
machine, as cgroup v2 shows them (mm/memcontrol.c): memory.current,
memory.{min,low,high,max} (bytes or ``max``), memory.peak, memory.events
and memory.events.local, memory.stat (memory_stat_format: the
memory_stats[] table in bytes, then pgscan, pgsteal and the
memcg_vm_event_stat[] events), memory.numa_stat, memory.swap.{current,max,
high,peak,events}, memory.oom.group and cgroup.procs. The root has only
cgroup.procs, memory.stat and memory.numa_stat.

With ``machine.cgroup: v1`` the same memcgs show as the v1 memory
controller mounted at ``sys/fs/cgroup/memory`` (mm/memcontrol-v1.c):
memory.usage_in_bytes, memory.limit_in_bytes, memory.max_usage_in_bytes,
memory.failcnt, memory.memsw.*, memory.oom_control, memory.swappiness,
memory.use_hierarchy and memcg1_stat_format's memory.stat (own counters,
hierarchical limits, then the ``total_`` lines of the subtree).

Every number is read from the model (``linmem.mm.memcontrol`` and the
per-memcg counters of ``linmem.engine.memcontrol``); nothing here changes it.
The kernel configuration assumed for the keys printed: SWAP, ZSWAP,
TRANSPARENT_HUGEPAGE, HUGETLB_PAGE (hugetlb not accounted: no key) and
MEMCG_V1 on, NUMA_BALANCING off.
"""

from __future__ import annotations

from linmem.engine import memcontrol as MC
from linmem.mm.memcontrol_stat import memory_stat, memory_stat_v1

PAGE = 4096
PAGE_COUNTER_MAX_BYTES = int(MC.PAGE_COUNTER_MAX) * PAGE
EVENT_KEYS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill", "sock_throttled")
NUMA_KEYS = ("anon", "file", "kernel_stack", "pagetables", "sec_pagetables", "shmem",
             "file_mapped", "file_dirty", "file_writeback", "swapcached", "anon_thp",
             "file_thp", "shmem_thp", "inactive_anon", "active_anon", "inactive_file",
             "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable")


def _limit(pages: int) -> str:
    """A v2 limit file: bytes, or ``max``."""
    return "max" if pages >= MC.PAGE_COUNTER_MAX else str(pages * PAGE)


def render_stat(values: dict[str, int]) -> str:
    """``key value`` lines, as memory.stat prints them."""
    return "".join(f"{k} {v}\n" for k, v in values.items())


def memory_numa_stat(values: dict[str, int]) -> str:
    """memory.numa_stat: the node-counted memory_stats[] lines, one node."""
    return "".join(f"{k} N0={values[k]}\n" for k in NUMA_KEYS)


def memory_events(counts: dict) -> str:
    return "".join(f"{k} {counts.get(k, 0)}\n" for k in EVENT_KEYS)


def v2_files(kernel, memcg) -> dict[str, str]:
    """The v2 files of one memcg directory (relative names)."""
    ctl = kernel.memcg
    stat = memory_stat(kernel, memcg)
    procs = "".join(f"{t.pid}\n" for t in ctl.tasks_in(memcg, recursive=False))
    files = {"cgroup.procs": procs, "memory.stat": render_stat(stat),
             "memory.numa_stat": memory_numa_stat(stat)}
    if memcg is ctl.root:
        return files
    mc = kernel.mem.K.mc[memcg.id]
    files.update({
        "memory.current": f"{int(mc[MC.MC_USAGE]) * PAGE}\n",
        "memory.min": f"{_limit(int(mc[MC.MC_MIN]))}\n",
        "memory.low": f"{_limit(int(mc[MC.MC_LOW]))}\n",
        "memory.high": f"{_limit(int(mc[MC.MC_HIGH]))}\n",
        "memory.max": f"{_limit(int(mc[MC.MC_MAX]))}\n",
        "memory.peak": f"{int(mc[MC.MC_PEAK]) * PAGE}\n",
        "memory.events": memory_events(ctl.events(memcg)),
        "memory.events.local": memory_events(ctl.events(memcg, local=True)),
        "memory.oom.group": f"{int(memcg.oom_group)}\n",
        "memory.swap.current": f"{int(mc[MC.MC_SWAP]) * PAGE}\n",
        "memory.swap.max": f"{_limit(int(mc[MC.MC_SWAP_MAX]))}\n",
        "memory.swap.high": "max\n",
        "memory.swap.peak": f"{int(mc[MC.MC_SWAP_PEAK]) * PAGE}\n",
        "memory.swap.events": (f"high 0\nmax {int(mc[MC.MC_SWAP_EVENTS_MAX])}\n"
                               f"fail {int(mc[MC.MC_SWAP_EVENTS_FAIL])}\n"),
    })
    return files


def v1_files(kernel, memcg) -> dict[str, str]:
    """The v1 memory controller's files of one memcg directory."""
    ctl = kernel.memcg
    stat = memory_stat_v1(kernel, memcg)
    mc = kernel.mem.K.mc[memcg.id]
    usage, swap = int(mc[MC.MC_USAGE]), int(mc[MC.MC_SWAP])
    swapcached = stat["total_swapcached"] // PAGE
    memsw = usage + swap - swapcached            # a swap-cache page counts once
    events = ctl.events(memcg, local=True)
    limit = int(mc[MC.MC_MAX]) if memcg is not ctl.root else int(MC.PAGE_COUNTER_MAX)
    return {
        "cgroup.procs": "".join(f"{t.pid}\n" for t in ctl.tasks_in(memcg, recursive=False)),
        "tasks": "".join(f"{t.pid}\n" for t in ctl.tasks_in(memcg, recursive=False)),
        "memory.usage_in_bytes": f"{usage * PAGE}\n",
        "memory.limit_in_bytes": f"{limit * PAGE}\n",
        "memory.max_usage_in_bytes": f"{int(mc[MC.MC_PEAK]) * PAGE}\n",
        "memory.failcnt": f"{int(mc[MC.MC_FAILCNT])}\n",
        "memory.soft_limit_in_bytes": f"{PAGE_COUNTER_MAX_BYTES}\n",
        "memory.memsw.usage_in_bytes": f"{memsw * PAGE}\n",
        "memory.memsw.limit_in_bytes": f"{PAGE_COUNTER_MAX_BYTES}\n",
        "memory.memsw.max_usage_in_bytes":
            f"{(int(mc[MC.MC_PEAK]) + int(mc[MC.MC_SWAP_PEAK])) * PAGE}\n",   # XXX: a bound
        "memory.memsw.failcnt": "0\n",
        "memory.oom_control": (f"oom_kill_disable 0\nunder_oom 0\n"
                               f"oom_kill {events['oom_kill']}\n"),
        "memory.swappiness": f"{int(kernel.machine.sysctl['swappiness'])}\n",
        "memory.use_hierarchy": "1\n",
        "memory.stat": render_stat(stat),
    }


def cgroup_files(kernel, version: int = 2) -> dict[str, str]:
    """Relative path (under ``sys/``) -> text of every memory cgroup file."""
    files = {}
    for memcg in kernel.memcg.memcgs():
        if version == 1:
            base = "fs/cgroup/memory" + ("" if memcg.path == "/" else memcg.path)
            render = v1_files(kernel, memcg)
        else:
            base = "fs/cgroup" + ("" if memcg.path == "/" else memcg.path)
            render = v2_files(kernel, memcg)
        for name, text in render.items():
            files[f"{base}/{name}"] = text
    return files


def proc_pid_cgroup(task, version: int = 2) -> str:
    """/proc/PID/cgroup: the v2 line, or the v1 memory hierarchy's and the
    (empty) v2 line."""
    if version == 1:
        return f"1:memory:{task.cgroup}\n0::/\n"
    return f"0::{task.cgroup}\n"
