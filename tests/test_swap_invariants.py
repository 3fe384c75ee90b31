"""Random workloads on a small machine with swap keep every swap invariant.

A 96 MiB machine with a 256 MiB swapfile and a 32 MiB zram area runs random
anonymous mappings written past its memory (so reclaim swaps), forks whose
children write (copy-on-write over swap entries) and exit, munmap, MADV_DONTNEED,
mlock and munlock, swapoff and swapon of either area, file reads and time
passing. After every operation Machine.check_invariants() holds (swap_map
counts equal the swap PTEs, the swap cache agrees with SWAP_HAS_CACHE and
the frames, SwapFree and SwapTotal add up; see linmem.mm.debug.check_swap).
Once every process has exited, all swap is free and the swap cache empty.

The file read is small on purpose: with swap full, kswapd (which linmem runs
right after each allocation that woke it) cannot balance the node, and every
page read runs a whole balance_pgdat pass; an 8 MiB read then takes minutes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from randomops import choose, exit_task, run_ops

from linmem.engine import swapfile as SW
from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.swapfile import SwapError
from linmem.mm.vmstat import node_item

PAGE = 4096
AREAS = {"/swapfile": (256 << 20, "file"), "/dev/zram0": (32 << 20, "zram")}

OPS = st.lists(st.tuples(
    st.sampled_from(["anon", "anon", "touch", "write", "fork", "exit", "munmap", "dontneed",
                     "mlock", "munlock", "swapoff", "read", "advance"]),
    st.integers(1, 48), st.integers(0, 10**6)), min_size=1, max_size=16)



def _range(region, pick):
    """A part of a region: the whole, or a page-aligned slice of it."""
    addr, length = region
    npages = length // PAGE
    first = pick % npages
    return addr + first * PAGE, (npages - first) * PAGE


def _touch(k, task, region, pick, write):
    addr, length = _range(region, pick)
    vas = np.arange(addr, addr + length, PAGE, dtype=np.int64)[::1 + pick % 3]
    k.access(task, vas, write)


def _swapoff_swapon(k, size_mib, pick):
    """swapoff an area that is on (it may fail: ENOMEM), or swapon one that is off."""
    path = choose(sorted(AREAS), pick)
    if path in k.swap.areas:
        try:
            k.swap.swapoff(path)
        except SwapError as err:
            assert err.errno == "ENOMEM"
            assert path in k.swap.areas
    else:
        size, kind = AREAS[path]
        k.swap.swapon(path, size, 5 if size_mib % 2 else None, kind)


def apply(m, live, regions, op, size, pick) -> None:
    k = m.kernel
    task = choose(live, pick)
    mine = regions[task.pid]
    region = choose(mine, pick // 7)
    if op == "anon":
        length = size << 20
        addr = mmaplib.vm_mmap(task.mm.vmas, None, 0, length, 3, 0x22)
        mine.append((addr, length))
        k.access(task, np.arange(addr, addr + length, PAGE, dtype=np.int64), True)
    elif op in ("touch", "write") and region:
        _touch(k, task, region, pick, op == "write")
    elif op == "fork" and len(live) < 4:
        child = k.fork(task)
        live.append(child)
        regions[child.pid] = list(mine)
        if region:
            _touch(k, child, region, pick, True)
    elif op == "exit" and task is not live[0]:
        exit_task(k, live, task)
    elif op == "munmap" and region:
        mmaplib.vm_munmap(task.mm.vmas, *region)
        mine.remove(region)
    elif op == "dontneed" and region:
        k.madvise(task, *_range(region, pick), V.MADV_DONTNEED)
    elif op == "mlock" and region and region[1] <= 8 << 20:
        k.mlock(task, *region)
    elif op == "munlock" and region:
        k.munlock(task, *region)
    elif op == "swapoff":
        _swapoff_swapon(k, size, pick)
    elif op == "read":
        k.read_file(task, "/data/f")
    elif op == "advance":
        m.advance(size / 4)




@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(OPS)
def test_random_swap_workloads_keep_the_invariants(ops):
    m = Machine(ram=96 << 20)
    k = m.kernel
    for path, (size, kind) in AREAS.items():
        k.swap.swapon(path, size, None, kind)
    k.fs.create("/data/f", 1 << 20, boot=True)       # small: see the kswapd note
    first = k.spawn("/usr/bin/sleep", ["sleep"])
    live = [first]
    regions: dict[int, list] = {first.pid: []}
    if not run_ops(m, live, regions, ops, apply):
        return                                      # nothing left to kill: the run is over
    K = k.mem.K
    assert k.swap.free_pages == k.swap.total_pages
    assert int(m.node_stat[node_item("nr_swapcached")]) == 0
    assert not K.swap_cache.any() and not K.swp.any()
    headers = [int(K.si[a.row, SW.SI_BASE]) for a in k.swap.areas.values()]
    assert np.flatnonzero(K.swap_map).tolist() == sorted(headers)
    assert (K.swap_map[headers] == SW.SWAP_MAP_BAD).all()
