"""The OOM killer's measure of a process (mm/oom_kill.c, fs/proc/base.c).

``oom_badness`` is what the OOM killer compares: the pages a process would
give back if killed (resident pages, swap entries, page tables), shifted by
oom_score_adj in thousandths of all memory (RAM + swap). /proc/PID/oom_score
maps it onto 0..2000. When reclaim cannot free a page, out_of_memory picks
the process of highest badness (select_bad_process) and kills it; its memory
comes back as it exits (the OOM reaper's work, done at once here).
"""

from __future__ import annotations

OOM_SCORE_ADJ_MIN = -1000


class KernelPanic(Exception):
    """The kernel panicked (panic_on_oom, or nothing left to kill): the machine stops."""
LONG_MIN = -(1 << 63)


def oom_badness(kernel, task, totalpages: int) -> int:
    """Models mm/oom_kill.c:oom_badness (LONG_MIN: never to be chosen)."""
    if task.mm is None or task.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return LONG_MIN
    file, anon, swap, shmem = kernel.mem.rss(task.mm.id)
    points = file + anon + shmem + swap + kernel.mem.pgtables_bytes(task.mm.id) // 4096
    return points + task.oom_score_adj * (totalpages // 1000)


def oom_score(kernel, task) -> int:
    """Models fs/proc/base.c:proc_oom_score: the badness against all of RAM
    + swap (totalram_pages() + total_swap_pages, as a global OOM uses it,
    also on a machine whose OOM kills happen in a memory cgroup)."""
    m = kernel.machine
    totalpages = m.totalram_pages + m.total_swap_pages
    return proc_oom_score(oom_badness(kernel, task, totalpages), totalpages)


def proc_oom_score(badness: int, totalpages: int) -> int:
    """The number /proc/PID/oom_score shows for a badness (fs/proc/base.c
    proc_oom_score): ``(1000 + badness * 1000 / totalpages) * 2 / 3`` in C's
    signed long arithmetic (division towards zero), 0 for LONG_MIN
    (oom_score_adj -1000, or no memory to free)."""
    if badness == LONG_MIN:
        return 0
    return _trunc_div((1000 + _trunc_div(badness * 1000, totalpages)) * 2, 3)


def _trunc_div(a: int, b: int) -> int:
    """C division of signed longs: towards zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def select_bad_process(kernel, memcg=None) -> tuple[object | None, list[dict]]:
    """Models select_bad_process() -> oom_evaluate_task() over every process
    with an address space (or, for a memcg OOM, mem_cgroup_scan_tasks over
    the memcg's subtree, with totalpages its limit plus the swap it may use):
    the highest badness wins; a later process wins a tie (``points <
    chosen_points`` is skipped, equal is taken). Returns the victim (or None)
    and every candidate with its badness, for the report."""
    m = kernel.machine
    if memcg is None:
        totalpages = m.totalram_pages + m.total_swap_pages
        tasks = [kernel.tasks[pid] for pid in sorted(kernel.tasks)]
    else:
        totalpages = kernel.memcg.totalpages(memcg)
        tasks = kernel.memcg.tasks_in(memcg)
    chosen, chosen_points, candidates = None, LONG_MIN, []
    for task in tasks:
        pid = task.pid
        if task.mm is None or task.state == "Z":
            continue
        points = oom_badness(kernel, task, totalpages)
        file, anon, swap, shmem = kernel.mem.rss(task.mm.id)
        candidates.append({"pid": pid, "name": task.comm, "badness": points,
                           "total_vm": task.mm.vmas.total_vm, "rss_pages": file + anon + shmem,
                           "rss_anon": anon, "rss_file": file, "rss_shmem": shmem,
                           "swapents": swap,
                           "pgtables_bytes": kernel.mem.pgtables_bytes(task.mm.id),
                           "oom_score_adj": task.oom_score_adj})
        if points == LONG_MIN or points < chosen_points:
            continue
        chosen, chosen_points = task, points
    return chosen, candidates
