"""Kernel log lines: the OOM killer's report (mm/oom_kill.c dump_header,
dump_tasks, dump_oom_victim / __oom_kill_process), from an ``oom_kill`` event.

The task table has the kernel's columns and widths (memory in pages); the
last line is the one `dmesg` shows for every OOM kill. A global OOM's
report says ``global_oom`` and "Out of memory:"; a memory cgroup's
(mem_cgroup_out_of_memory) first prints the memcg's counters and memory.stat
(mem_cgroup_print_oom_meminfo), lists only the memcg's tasks, and says
``CONSTRAINT_MEMCG``, ``oom_memcg=`` and "Memory cgroup out of memory:". The
kernel's call trace and show_mem() lines are left out.
"""

from __future__ import annotations

from linmem.mm import gfp as G

PAGE_COUNTER_MAX = (2**63 - 1) // 4096   # pages: LONG_MAX / PAGE_SIZE

TASKS_HEADER = ("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem "
                "pgtables_bytes swapents oom_score_adj name")

# include/trace/events/mmflags.h __def_gfpflag_names (Linux 6.18): the
# composite masks, most bits first, then __GFP_RECLAIM and the single bits
# in bit order (TRACE_GFP_FLAGS_GENERAL).
GFP_FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (G.GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (G.GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (G.GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (G.GFP_HIGHUSER, "GFP_HIGHUSER"),
    (G.GFP_USER, "GFP_USER"),
    (G.GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (G.GFP_KERNEL, "GFP_KERNEL"),
    (G.GFP_NOFS, "GFP_NOFS"),
    (G.GFP_ATOMIC, "GFP_ATOMIC"),
    (G.GFP_NOIO, "GFP_NOIO"),
    (G.GFP_NOWAIT, "GFP_NOWAIT"),
    (G.GFP_DMA, "GFP_DMA"),
    (G.GFP_DMA32, "GFP_DMA32"),
    (G._GFP_RECLAIM, "__GFP_RECLAIM"),
    (G._GFP_DMA, "__GFP_DMA"),
    (G._GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (G._GFP_DMA32, "__GFP_DMA32"),
    (G._GFP_MOVABLE, "__GFP_MOVABLE"),
    (G._GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (G._GFP_HIGH, "__GFP_HIGH"),
    (G._GFP_IO, "__GFP_IO"),
    (G._GFP_FS, "__GFP_FS"),
    (G._GFP_ZERO, "__GFP_ZERO"),
    (G._GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (G._GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (G._GFP_WRITE, "__GFP_WRITE"),
    (G._GFP_NOWARN, "__GFP_NOWARN"),
    (G._GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (G._GFP_NOFAIL, "__GFP_NOFAIL"),
    (G._GFP_NORETRY, "__GFP_NORETRY"),
    (G._GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (G._GFP_COMP, "__GFP_COMP"),
    (G._GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (G._GFP_HARDWALL, "__GFP_HARDWALL"),
    (G._GFP_THISNODE, "__GFP_THISNODE"),
    (G._GFP_ACCOUNT, "__GFP_ACCOUNT"),
)


def gfp_flags_string(gfp: int) -> str:
    """``%pGg`` of lib/vsprintf.c (format_flags): every name whose mask is
    wholly set, in table order, each taking its bits away; the bits left
    over in hex; joined by ``|``."""
    parts = []
    for mask, name in GFP_FLAG_NAMES:
        if mask and gfp & mask == mask:
            parts.append(name)
            gfp &= ~mask
    if gfp:
        parts.append(f"{gfp:#x}")
    return "|".join(parts)


def oom_report_lines(event: dict) -> list[str]:
    """The report of one OOM kill, as the kernel logs it."""
    lines = [f"{event['invoker']} invoked oom-killer: gfp_mask={event['gfp']:#x}"
             f"({gfp_flags_string(event['gfp'])}), "
             f"order={event['order']}, oom_score_adj={event['invoker_oom_score_adj']}"]
    memcg = event.get("oom_memcg")
    if memcg is not None:
        lines += memcg_meminfo_lines(event)
    lines += ["Tasks state (memory values in pages):", TASKS_HEADER]
    victim = None
    for c in event["candidates"]:
        lines.append(f"[{c['pid']:7d}] {0:5d} {c['pid']:5d} {c['total_vm']:8d} {c['rss_pages']:8d} "
                     f"{c['rss_anon']:8d} {c['rss_file']:8d} {c['rss_shmem']:9d} "
                     f"{c['pgtables_bytes']:8d} {c['swapents']:8d}         "
                     f"{c['oom_score_adj']:5d} {c['name']}")
        if c["pid"] == event["victim"]:
            victim = c
    constraint = "CONSTRAINT_MEMCG" if memcg is not None else "CONSTRAINT_NONE"
    context = f"oom_memcg={memcg}" if memcg is not None else "global_oom"
    lines.append(f"oom-kill:constraint={constraint},nodemask=(null),cpuset=/,mems_allowed=0,"
                 f"{context},task_memcg={event.get('victim_memcg', '/')},"
                 f"task={event['victim_name']},pid={event['victim']},uid=0")
    if victim is not None:
        what = "Memory cgroup out of memory" if memcg is not None else "Out of memory"
        lines.append(f"{what}: Killed process {victim['pid']} ({victim['name']}) "
                     f"total-vm:{victim['total_vm'] * 4}kB, anon-rss:{victim['rss_anon'] * 4}kB, "
                     f"file-rss:{victim['rss_file'] * 4}kB, shmem-rss:{victim['rss_shmem'] * 4}kB, "
                     f"UID:0 pgtables:{victim['pgtables_bytes'] // 1024}kB "
                     f"oom_score_adj:{victim['oom_score_adj']}")
    return lines


def memcg_meminfo_lines(event: dict) -> list[str]:
    """mem_cgroup_print_oom_meminfo(): the memcg's counters (v2: memory and
    swap; v1: memory, memory+swap and kmem) and its memory.stat."""
    def kb(pages: int) -> int:
        return pages * 4

    lines = [f"memory: usage {kb(event['memory_usage_pages'])}kB, "
             f"limit {kb(event['memory_limit_pages'])}kB, failcnt {event['memory_failcnt']}"]
    if event.get("cgroup_version", 2) == 2:
        lines.append(f"swap: usage {kb(event['swap_usage_pages'])}kB, "
                     f"limit {kb(event['swap_limit_pages'])}kB, failcnt {event['swap_failcnt']}")
    else:
        memsw = event["memory_usage_pages"] + event["swap_usage_pages"]
        lines.append(f"memory+swap: usage {kb(memsw)}kB, limit {kb(PAGE_COUNTER_MAX)}kB, "
                     f"failcnt 0")
        lines.append(f"kmem: usage {kb(event['kmem_usage_pages'])}kB, "
                     f"limit {kb(PAGE_COUNTER_MAX)}kB, failcnt 0")
    lines.append(f"Memory cgroup stats for {event['oom_memcg']}:")
    lines += [f"{k} {v}" for k, v in event["memcg_stat"].items()]
    return lines
