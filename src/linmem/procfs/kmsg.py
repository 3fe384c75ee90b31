"""Kernel log lines: the OOM killer's report (mm/oom_kill.c dump_header,
dump_tasks, dump_oom_victim / __oom_kill_process), from an ``oom_kill`` event.

The task table has the kernel's columns and widths (memory in pages); the
last line is the one `dmesg` shows for every OOM kill.
"""

from __future__ import annotations

TASKS_HEADER = ("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem "
                "pgtables_bytes swapents oom_score_adj name")


def oom_report_lines(event: dict) -> list[str]:
    """The report of one OOM kill, as the kernel logs it."""
    lines = [f"{event['invoker']} invoked oom-killer: gfp_mask={event['gfp']:#x}, "
             f"order={event['order']}, oom_score_adj={event['invoker_oom_score_adj']}",
             "Tasks state (memory values in pages):", TASKS_HEADER]
    victim = None
    for c in event["candidates"]:
        lines.append(f"[{c['pid']:7d}] {0:5d} {c['pid']:5d} {c['total_vm']:8d} {c['rss_pages']:8d} "
                     f"{c['rss_anon']:8d} {c['rss_file']:8d} {c['rss_shmem']:9d} "
                     f"{c['pgtables_bytes']:8d} {c['swapents']:8d}         "
                     f"{c['oom_score_adj']:5d} {c['name']}")
        if c["pid"] == event["victim"]:
            victim = c
    lines.append(f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
                 f"global_oom,task_memcg=/,task={event['victim_name']},pid={event['victim']},uid=0")
    if victim is not None:
        lines.append(f"Out of memory: Killed process {victim['pid']} ({victim['name']}) "
                     f"total-vm:{victim['total_vm'] * 4}kB, anon-rss:{victim['rss_anon'] * 4}kB, "
                     f"file-rss:{victim['rss_file'] * 4}kB, shmem-rss:{victim['rss_shmem'] * 4}kB, "
                     f"UID:0 pgtables:{victim['pgtables_bytes'] // 1024}kB "
                     f"oom_score_adj:{victim['oom_score_adj']}")
    return lines
