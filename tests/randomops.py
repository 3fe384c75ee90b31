"""Shared driver of the random-workload invariant tests: processes doing
random operations, the OOM killer's victims dropped, the invariants checked
after every operation."""

from __future__ import annotations

from linmem.mm import vma as V
from linmem.mm.memory import OutOfMemory
from linmem.mm.oom_kill import KernelPanic


def choose(items, n):
    return items[n % len(items)] if items else None


def exit_task(k, live, task):
    """The task exits and its parent reaps it."""
    k.exit(task, 0)
    parent = k.tasks.get(task.ppid)
    if parent is not None:
        k.reap(parent, task)
    live.remove(task)


def forget_dead(k, live):
    """Drop the processes the OOM killer ended."""
    for task in list(live):
        if task.mm is None:
            live.remove(task)
            parent = k.tasks.get(task.ppid)
            if parent is not None and task.pid in parent.children:
                k.reap(parent, task)


def run_ops(m, live, regions, ops, apply) -> bool:
    """Apply each (op, size, pick) with ``apply(m, live, regions, ...)``,
    checking the invariants after each; then every process exits. False
    when the kernel panicked (nothing left to kill: the run is over)."""
    k = m.kernel
    m.check_invariants()
    for op, size, choice in ops:
        if not live:
            break
        try:
            apply(m, live, regions, op, size, choice)
        except V.SyscallError:
            pass
        except OutOfMemory:                         # the OOM killer chose the faulting task
            victim = k.current
            if victim in live and victim.mm is not None:
                exit_task(k, live, victim)
        except KernelPanic:
            return False
        forget_dead(k, live)
        m.check_invariants()
    for task in reversed(list(live)):
        if task.mm is not None:
            exit_task(k, live, task)
    m.check_invariants()
    return True
