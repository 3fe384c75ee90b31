"""Random sequences of file operations keep every page-cache invariant.

After each write, read, fsync, unlink, shared-mapping write, munmap,
drop_caches and passage of time: the invariants of Machine.check_invariants
(every cached page on exactly one LRU list, Cached + Buffers + SwapCached =
file pages, dirty and writeback pages equal to their counters, per file
too), and, once all is written and unmapped, no page left dirty or under
writeback and every page of an unlinked file freed.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linmem.engine import pgtable as P
from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.mmap import builtin_image
from linmem.mm.vmstat import node_item

PAGE = 4096
PATHS = ["/data/a", "/data/b", "/data/sub/c", "/dev/shm/t"]

op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(PATHS), st.integers(0, 600),
              st.integers(1, 700 * PAGE)),
    st.tuples(st.just("read"), st.sampled_from(PATHS)),
    st.tuples(st.just("fsync"), st.sampled_from(PATHS)),
    st.tuples(st.just("unlink"), st.sampled_from(PATHS)),
    st.tuples(st.just("map"), st.sampled_from(PATHS), st.booleans()),
    st.tuples(st.just("munmap")),
    st.tuples(st.just("advance"), st.sampled_from([0.001, 0.5, 5.0, 31.0])),
    st.tuples(st.just("drop"), st.sampled_from([1, 2, 3])),
)


def apply(m, task, maps, step) -> None:
    k = m.kernel
    fs = k.fs
    kind = step[0]
    if kind == "write":
        _, path, page, nbytes = step
        pos, end = page * PAGE + 17, page * PAGE + 17 + nbytes
        while pos < end:
            n, seconds = k.write_file(task, path, pos, end - pos)
            pos += n
            m.advance(seconds)
    elif kind in ("read", "fsync", "unlink", "map") and step[1] not in fs.inodes:
        return
    elif kind == "read":
        k.read_file(task, step[1])
    elif kind == "fsync":
        m.advance(k.fsync(task, step[1]))
    elif kind == "unlink":
        k.unlink(task, step[1])
    elif kind == "map":
        inode = fs.inodes[step[1]]
        if inode.size == 0:
            return
        size = inode.npages * PAGE
        addr = mmaplib.vm_mmap(task.mm.vmas, fs.open(step[1]), 0, size,
                               V.PROT_READ | V.PROT_WRITE, V.MAP_SHARED)
        k.access(task, np.arange(addr, addr + size, PAGE, dtype=np.int64), step[2])
        maps.append((addr, size))
    elif kind == "munmap" and maps:
        addr, size = maps.pop()
        k.munmap(task, addr, size)
    elif kind == "advance":
        m.advance(step[1])
    elif kind == "drop":
        m.write_sysctl("vm.drop_caches", step[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=14))
def test_random_file_operations_keep_the_invariants(steps):
    m = Machine(ram=256 << 20)
    task = m.kernel.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    maps: list = []
    for step in steps:
        apply(m, task, maps, step)
        m.check_invariants()
    while maps:
        apply(m, task, maps, ("munmap",))
    for path in list(m.kernel.fs.inodes):
        m.advance(m.kernel.fsync(task, path))
    m.advance(50.0)                 # the journal commits; the flusher writes the metadata
    m.check_invariants()
    node = m.node_stat
    assert node[node_item("nr_dirty")] == 0 and node[node_item("nr_writeback")] == 0
    for path in list(m.kernel.fs.inodes):
        m.kernel.unlink(task, path)
    m.advance(40.0)
    m.check_invariants()
    cached = sum(m.kernel.fs.residency_of(fid)[0] for fid in m.kernel.fs.by_fid)
    assert cached == 0                                      # every page of every file freed


pressure_op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(PATHS), st.integers(0, 4000),
              st.integers(1, 12000 * PAGE)),
    st.tuples(st.just("read"), st.sampled_from(PATHS)),
    st.tuples(st.just("fsync"), st.sampled_from(PATHS)),
    st.tuples(st.just("unlink"), st.sampled_from(PATHS)),
    st.tuples(st.just("map"), st.sampled_from(PATHS), st.booleans()),
    st.tuples(st.just("munmap")),
    st.tuples(st.just("anon"), st.integers(1, 40)),
    st.tuples(st.just("advance"), st.sampled_from([0.001, 5.0, 31.0])),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pressure_op, min_size=1, max_size=12))
def test_reclaim_under_pressure_keeps_the_invariants(steps):
    """On a 96 MiB machine the same operations, with anonymous memory, run
    into reclaim (and the OOM killer, which may end the task): no page is
    lost or freed twice, the counters keep matching the lists."""
    from linmem.mm.memory import OutOfMemory
    m = Machine(ram=96 << 20)
    k = m.kernel
    task = k.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    maps: list = []
    for step in steps:
        if task.mm is None:
            break
        try:
            if step[0] == "anon":
                size = step[1] << 20
                addr = mmaplib.vm_mmap(task.mm.vmas, None, 0, size, 3, 0x22)
                k.access(task, np.arange(addr, addr + size, PAGE, dtype=np.int64), True)
            else:
                apply(m, task, maps, step)
        except (OutOfMemory, V.SyscallError):
            if task.mm is not None:
                k.exit(task, 0, signal=9)
            break
        m.check_invariants()
    pa = m.page_alloc
    if task.mm is not None:
        k.exit(task)
    m.check_invariants()
    # every page is free, or in the page cache (or the huge zero folio): none lost
    accounted = pa.nr_free_pages() + pa.pcp_pages() + int(m.node_stat[node_item("nr_file_pages")])
    huge_zero = 512 if k.mem.K.ctl[P.C_HUGE_ZERO_PFN] >= 0 else 0
    assert accounted + huge_zero == m.totalram_pages
