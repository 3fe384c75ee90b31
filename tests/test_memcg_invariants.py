"""Random workloads in a tree of memory cgroups keep the memcg invariants.

A 256 MiB machine with a 128 MiB swapfile and the tree /a (with a limit),
/a/x, /a/y and /b (with their own settings) runs random anonymous mappings,
writes, forks, exits, munmap, MADV_DONTNEED, file reads, moves between the
leaves, writes of memory.max/high/low/min/swap.max and memory.reclaim.
After every operation Machine.check_invariants() holds, with
linmem.mm.debug.check_memcg: each memcg's usage is what is charged to its
subtree (children never more than their parent), its LRU sizes are its
lists', the per-memcg share of every node counter adds up to the node's,
and swap usage is the slots charged. Once every process has exited, only
page cache is left charged, and no swap.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from randomops import choose, exit_task, run_ops

from linmem.engine import memcontrol as MC
from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.memcontrol import CgroupError
from linmem.mm.memcontrol_stat import memory_stat

PAGE = 4096
MiB = 1 << 20
LEAVES = ("/a/x", "/a/y", "/b", "/")
KNOBS = ("memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max")

OPS = st.lists(st.tuples(
    st.sampled_from(["anon", "anon", "write", "touch", "fork", "exit", "munmap", "dontneed",
                     "read", "move", "limit", "reclaim"]),
    st.integers(1, 40), st.integers(0, 10**6)), min_size=1, max_size=14)



def _touch(k, task, region, pick, write):
    addr, length = region
    first = pick % (length // PAGE)
    vas = np.arange(addr + first * PAGE, addr + length, PAGE, dtype=np.int64)[::1 + pick % 3]
    k.access(task, vas, write)


def apply(m, live, regions, op, size, pick) -> None:
    k = m.kernel
    task = choose(live, pick)
    mine = regions[task.pid]
    region = choose(mine, pick // 7)
    if op == "anon":
        length = size * MiB
        addr = mmaplib.vm_mmap(task.mm.vmas, None, 0, length, 3, 0x22)
        mine.append((addr, length))
        k.access(task, np.arange(addr, addr + length, PAGE, dtype=np.int64), True)
    elif op in ("touch", "write") and region:
        _touch(k, task, region, pick, op == "write")
    elif op == "fork" and len(live) < 5:
        child = k.fork(task)
        live.append(child)
        regions[child.pid] = list(mine)
        if region:
            _touch(k, child, region, pick, True)
    elif op == "exit" and len(live) > 1:
        exit_task(k, live, task)
    elif op == "munmap" and region:
        mmaplib.vm_munmap(task.mm.vmas, *region)
        mine.remove(region)
    elif op == "dontneed" and region:
        k.madvise(task, *region, V.MADV_DONTNEED)
    elif op == "read":
        k.read_file(task, choose(["/data/f1", "/data/f2"], pick))
    elif op == "move":
        k.memcg.move(task, choose(LEAVES, pick))
    elif op == "limit":
        path = choose(["/a", "/a/x", "/a/y", "/b"], pick)
        knob = choose(KNOBS, pick // 5)
        k.memcg.write(path, knob, "max" if size > 36 else size * 2 * MiB)
    elif op == "reclaim":
        try:
            k.memcg.write(choose(["/a", "/a/x", "/b", "/"], pick), "memory.reclaim", size * MiB)
        except CgroupError as err:
            assert "EAGAIN" in str(err)




@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(OPS, st.integers(16, 96), st.integers(0, 40))
def test_random_workloads_in_cgroups_keep_the_invariants(ops, a_max, b_low):
    m = Machine(ram=256 * MiB)
    k = m.kernel
    k.swap.swapon("/swapfile", 128 * MiB, None, "file")
    for path in ("/a", "/a/x", "/a/y", "/b"):
        k.memcg.mkdir(path)
    k.memcg.write("/a", "memory.max", a_max * MiB)
    k.memcg.write("/b", "memory.low", b_low * MiB)
    k.fs.create("/data/f1", 2 * MiB, boot=True)
    k.fs.create("/data/f2", 2 * MiB, boot=True)
    live, regions = [], {}
    for path in LEAVES:
        task = k.spawn("/usr/bin/sleep", ["sleep"], cgroup=path)
        live.append(task)
        regions[task.pid] = []
    if not run_ops(m, live, regions, ops, apply):
        return                                      # nothing left to kill: the run is over
    K = k.mem.K
    for memcg in k.memcg.memcgs():
        stat = memory_stat(k, memcg)
        assert int(K.mc[memcg.id, MC.MC_SWAP]) == 0
        assert stat["anon"] == 0 and stat["kernel"] == 0
        if memcg is not k.memcg.root:
            assert k.memcg.usage(memcg) * PAGE == stat["file"]
