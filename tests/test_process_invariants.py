"""Random process workloads keep every invariant, and give all memory back."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linmem.engine import pgtable as P
from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.vmstat import node_item
from randomops import choose, exit_task, run_ops

OPS = st.lists(st.tuples(
    st.sampled_from(["mmap", "touch", "touch", "write", "fork", "exit", "munmap",
                     "dontneed", "hugepage", "brk", "exec"]),
    st.integers(1, 1024), st.integers(0, 10**6)), min_size=1, max_size=25)


def _apply(m, live, regions, op, size_pages, pick):
    """One random operation by one of the ``live`` tasks."""
    k = m.kernel
    task = choose(live, pick)
    mine = regions.setdefault(task.pid, [])
    region = choose(mine, pick // 7)
    if op == "mmap":
        length = size_pages * 4096 * (512 if pick % 5 == 0 else 1)
        mine.append((mmaplib.vm_mmap(task.mm.vmas, None, 0, length, 3, 0x22), length))
    elif op in ("touch", "write") and region:
        a, n = region
        k.access(task, np.arange(a, a + n, 4096)[pick % 3::1 + pick % 4], op == "write")
    elif op == "fork" and len(live) < 6:
        child = k.fork(task)
        live.append(child)
        regions[child.pid] = list(mine)
    elif op == "exit" and task is not live[0]:
        exit_task(k, live, task)
    elif op == "munmap" and region:
        mmaplib.vm_munmap(task.mm.vmas, *region)
        mine.remove(region)
    elif op == "dontneed" and region:
        for _v, s, e in task.mm.vmas.madvise(region[0], region[1], V.MADV_DONTNEED):
            k.mem.zap(task.mm.id, s, e)
    elif op == "hugepage" and region:
        task.mm.vmas.madvise(region[0], region[1], V.MADV_HUGEPAGE)
    elif op == "brk":
        mmaplib.sys_brk(task.mm.vmas, task.mm.vmas.brk + size_pages * 4096 *
                        (1 if pick % 2 else -1))
    elif op == "exec":
        k.exec(task, "/usr/bin/cat", ["cat"])
        regions[task.pid] = []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_process_workloads(ops):
    """Maps of up to 2 GiB on 512 MiB without swap: the OOM killer's victims
    are dropped (tests/randomops.py) and the run goes on."""
    m = Machine(ram=512 << 20, thp="always")
    k = m.kernel
    live = [k.spawn("/usr/bin/sleep", ["sleep"])]
    run_ops(m, live, {}, ops, _apply)
    pa = m.page_alloc
    cached = int(m.node_stat[node_item("nr_file_pages")])
    # the huge zero folio stays once made (until a shrinker frees it under pressure)
    huge_zero = 512 if k.mem.K.ctl[P.C_HUGE_ZERO_PFN] >= 0 else 0
    assert pa.nr_free_pages() + pa.pcp_pages() + cached + huge_zero == m.totalram_pages
    assert m.committed_as == 0
    assert int(m.node_stat[node_item("nr_page_table_pages")]) == 0
