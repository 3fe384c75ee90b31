"""Buffered writes, dirty pages, writeback, fsync, unlink, tmpfs, Buffers.

Exact numbers from the kernel's rules: a write dirties each page it touches
once (nr_dirtied), fsync leaves no dirty page and writes each once
(nr_written, pgpgout), balance_dirty_pages keeps dirty + writeback under the
dirty threshold and starts the flusher only past the background threshold,
the flusher writes data once it is dirty_expire_centisecs old, drop_caches 1
frees exactly the clean, unmapped page cache.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.frames import PG_active, PG_lru, PG_referenced
from linmem.mm.mmap import builtin_image
from linmem.mm.page_writeback import dirty_freerun_ceiling, global_dirty_limits
from linmem.mm.vmstat import node_item, vm_event
from linmem.procfs.meminfo import meminfo_fields

MiB = 1 << 20
PAGE = 4096


def node(m, name):
    return int(m.node_stat[node_item(name)])


def event(m, name):
    return int(m.page_alloc.S.events[vm_event(name)])


def meminfo(m):
    return {k.rstrip(":"): v for k, v in meminfo_fields(m)}


@pytest.fixture
def machine():
    m = Machine(ram=1 << 30)
    task = m.kernel.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    return m, task


def data_flags(m, inode, flag):
    """How many cached pages of the file have ``flag``."""
    K = m.page_alloc.S
    slots = K.pc[K.f_base[inode.fid]:K.f_base[inode.fid] + inode.npages]
    return int(((K.flags[slots[slots >= 0]] & flag) != 0).sum())


def write_all(m, task, path, offset, size, trace=None):
    """write(2) the range, letting the writer's pauses pass; returns seconds."""
    k = m.kernel
    start = m.clock
    pos, end = offset, offset + size
    while pos < end:
        n, seconds = k.write_file(task, path, pos, end - pos)
        pos += n
        if trace is not None:
            trace.append((node(m, "nr_dirty"), node(m, "nr_writeback"), node(m, "nr_written")))
        m.advance(seconds)
    return m.clock - start


def test_write_dirties_each_page_once(machine):
    m, task = machine
    write_all(m, task, "/data/a", 0, 16 * MiB)
    pages = 16 * MiB // PAGE
    inode = m.kernel.fs.inodes["/data/a"]
    assert m.kernel.fs.residency(inode) == (pages, pages, 0)
    assert node(m, "nr_dirtied") == pages          # data; metadata waits for the journal
    assert event(m, "pgpgin") == m.kernel.fs.metadata_reads * 4     # only metadata is read
    info = meminfo(m)
    assert info["Dirty"] == pages * 4
    assert data_flags(m, inode, PG_active) == 0                       # a write does not activate
    assert data_flags(m, inode, PG_lru) == pages
    m.check_invariants()


def test_overwrite_does_not_redirty_or_read(machine):
    m, task = machine
    write_all(m, task, "/data/a", 0, 4 * MiB)
    before = node(m, "nr_dirtied"), event(m, "pgpgin")
    write_all(m, task, "/data/a", 0, 4 * MiB)
    assert (node(m, "nr_dirtied"), event(m, "pgpgin")) == before
    m.check_invariants()


def test_partial_write_of_cold_data_reads_the_page_first(machine):
    m, task = machine
    fs = m.kernel.fs
    fs.create("/data/cold", 64 * PAGE, boot=True)
    fs.lookup("/data/cold")
    before = event(m, "pgpgin")
    for k in range(0, 64, 4):                      # one byte in every 4th page
        m.kernel.write_file(task, "/data/cold", k * PAGE + 100, 1)
    assert event(m, "pgpgin") - before == 16 * 4   # block_write_begin: 16 reads
    assert fs.residency(fs.inodes["/data/cold"]) == (16, 16, 0)
    before = event(m, "pgpgin")
    m.kernel.write_file(task, "/data/cold", 64 * PAGE, PAGE)        # past the end: no read
    m.kernel.write_file(task, "/data/cold", 1 * PAGE, PAGE)         # a whole page: no read
    assert event(m, "pgpgin") == before
    m.check_invariants()


def test_fsync_writes_everything_once(machine):
    m, task = machine
    write_all(m, task, "/data/a", 0, 32 * MiB)
    pages = 32 * MiB // PAGE
    inode = m.kernel.fs.inodes["/data/a"]
    assert node(m, "nr_written") == 0 and event(m, "pgpgout") == 0
    seconds = m.kernel.fsync(task, "/data/a")
    assert m.kernel.fs.residency(inode)[1] == 0                    # no dirty page left
    assert seconds >= pages * PAGE / m.kernel.fs.device.write_bandwidth
    m.advance(seconds)
    assert m.kernel.fs.residency(inode) == (pages, 0, 0)
    assert node(m, "nr_written") == pages                          # each page written once
    assert node(m, "nr_writeback") == 0
    journal = m.kernel.fs.journal
    assert journal.commits == 1
    assert event(m, "pgpgout") == 4 * (pages + journal.head)       # data, then the commit
    m.check_invariants()


def test_writer_is_throttled_at_the_dirty_threshold(machine):
    m, task = machine
    bg, thresh = global_dirty_limits(m)
    trace = []
    seconds = write_all(m, task, "/data/big", 0, 600 * MiB, trace)
    # dirty + writeback never passes the threshold by more than one batch
    assert max(d + w for d, w, _ in trace) <= thresh + 1024
    # the flusher starts only once more than the background threshold is dirty
    first = next(i for i, (_, w, done) in enumerate(trace) if w or done)
    assert all(d <= bg and w == 0 and done == 0 for d, w, done in trace[:first])
    assert trace[first][0] + trace[first][1] > bg
    # past the free-run ceiling the writer goes at the disk's speed
    bw = m.kernel.fs.device.write_bandwidth
    floor = (600 * MiB - dirty_freerun_ceiling(thresh, bg) * PAGE) / bw
    assert floor * 0.9 <= seconds <= floor * 1.3
    m.check_invariants()


def test_background_writeback_below_threshold_waits_for_expiry(machine):
    m, task = machine
    write_all(m, task, "/data/small", 0, 8 * MiB)
    inode = m.kernel.fs.inodes["/data/small"]
    t0 = m.clock
    m.advance(29.9 - (m.clock - t0))
    assert m.kernel.fs.residency(inode)[1] == 2048          # not yet 30 s old
    m.advance(5.2)                                          # a flusher wake-up within 5 s
    assert m.kernel.fs.residency(inode) == (2048, 0, 0)
    assert node(m, "nr_written") >= 2048
    m.check_invariants()


def test_drop_caches_frees_exactly_the_clean_unmapped_cache(machine):
    m, task = machine
    k = m.kernel
    fs = k.fs
    fs.create("/data/clean", 8 * MiB, boot=True)
    k.read_file(task, "/data/clean")
    write_all(m, task, "/data/dirty", 0, 4 * MiB)
    fs.create("/dev/shm/seg", 2 * MiB, boot=True)
    addr = map_and_touch(m, task, "/data/mapped", V.PROT_READ, False)
    m.advance(6.0)                          # the journal commits: some metadata is dirty
    cached = {p: fs.residency(i) for p, i in fs.inodes.items()}
    files_before = node(m, "nr_file_pages")
    buffers = fs.residency_of(fs.bdev_fid)
    m.write_sysctl("vm.drop_caches", 1)
    after = {p: fs.residency(i) for p, i in fs.inodes.items()}
    assert after["/data/clean"] == (0, 0, 0)
    for path in ("/data/dirty", "/dev/shm/seg", "/data/mapped"):
        assert after[path] == cached[path]
    assert buffers[1] > 0 and fs.residency_of(fs.bdev_fid) == (buffers[1], buffers[1], 0)
    clean_buffers = buffers[0] - buffers[1]
    assert files_before - node(m, "nr_file_pages") == 2048 + clean_buffers
    assert event(m, "drop_pagecache") == 1
    k.munmap(task, addr, 4 * MiB)
    m.check_invariants()


def test_unlink_frees_the_cache_when_the_last_user_goes(machine):
    m, task = machine
    k = m.kernel
    write_all(m, task, "/data/gone", 0, 4 * MiB)
    files_before = node(m, "nr_file_pages")
    buffers_before = m.nr_blockdev_pages
    dirtied = node(m, "nr_dirtied")
    assert k.unlink(task, "/data/gone")
    new_metadata = m.nr_blockdev_pages - buffers_before
    assert node(m, "nr_file_pages") == files_before - 1024 + new_metadata
    assert node(m, "nr_dirty") < 1024 and node(m, "nr_dirtied") == dirtied
    assert "/data/gone" not in k.fs.inodes
    m.check_invariants()


def map_and_touch(m, task, path, prot, write):
    """mmap(MAP_SHARED) a new 4 MiB file on disk and touch each page; its address."""
    k = m.kernel
    k.fs.create(path, 4 * MiB, boot=True)
    addr = mmaplib.vm_mmap(task.mm.vmas, k.fs.open(path), 0, 4 * MiB, prot, V.MAP_SHARED)
    k.access(task, np.arange(addr, addr + 4 * MiB, PAGE, dtype=np.int64), write)
    return addr


def test_unlinked_mapped_file_keeps_its_pages_until_unmapped(machine):
    m, task = machine
    k = m.kernel
    addr = map_and_touch(m, task, "/data/m", V.PROT_READ, False)
    inode = k.fs.inodes["/data/m"]
    k.unlink(task, "/data/m")
    assert k.fs.residency(inode)[0] == 1024
    k.munmap(task, addr, 4 * MiB)
    assert k.fs.residency(inode)[0] == 0
    m.check_invariants()


def test_shared_mapping_write_dirties_the_file(machine):
    m, task = machine
    k = m.kernel
    map_and_touch(m, task, "/data/m", V.PROT_READ | V.PROT_WRITE, True)
    inode = k.fs.inodes["/data/m"]
    assert k.fs.residency(inode) == (1024, 1024, 0)
    assert node(m, "nr_dirtied") == 1024
    m.advance(k.fsync(task, "/data/m"))
    assert k.fs.residency(inode) == (1024, 0, 0)
    m.check_invariants()


def test_tmpfs_write_is_shmem_and_never_dirty_accounted(machine):
    m, task = machine
    shmem = meminfo(m)["Shmem"]
    write_all(m, task, "/dev/shm/x", 0, 8 * MiB)
    info = meminfo(m)
    assert info["Shmem"] - shmem == 8 * 1024
    assert node(m, "nr_dirtied") == 0 and info["Dirty"] == 0
    assert info["Inactive(anon)"] >= 8 * 1024
    assert m.kernel.fsync(task, "/dev/shm/x") == 0.0
    inode = m.kernel.fs.inodes["/dev/shm/x"]
    assert data_flags(m, inode, PG_referenced) == 2048 and data_flags(m, inode, PG_active) == 0
    write_all(m, task, "/dev/shm/x", 0, 8 * MiB)            # written twice: active
    assert data_flags(m, inode, PG_active) == 2048
    m.check_invariants()


def test_buffers_hold_metadata_and_count_apart_from_cached(machine):
    m, task = machine
    fs = m.kernel.fs
    assert m.nr_blockdev_pages == len(fs.bdev_slots)   # mount: sb, descriptors, journal sb
    fs.create("/data/d/f", 1 * MiB, boot=True)
    fs.lookup("/data/d/f")
    info = meminfo(m)
    assert info["Buffers"] == m.nr_blockdev_pages * 4
    assert info["Cached"] + info["Buffers"] + info["SwapCached"] == node(m, "nr_file_pages") * 4
    m.check_invariants()


def test_scenario_run_writes_pagecache_json(tmp_path):
    from linmem.workload.runner import run_scenario, write_outputs
    from linmem.workload.scenario import parse_scenario
    text = """
machine: {ram: 1GiB, disk: {write_bandwidth: 512MiB/s}}
files: {/data/f: 8MiB}
processes:
  - name: w
    program: cat
    steps:
      - read: {file: /data/f}
      - write: {file: /data/out, size: 4MiB}
      - snapshot: written
      - fsync: /data/out
      - unlink: /data/f
"""
    sc = parse_scenario(text, "s.yaml")
    result = run_scenario(sc)
    write_outputs(result, tmp_path / "out")
    snap = json.loads((tmp_path / "out/snapshots/written/pagecache.json").read_text())
    files = {f["path"]: f for f in snap["files"]}
    assert files["/data/f"]["cached"] == 2048 and files["/data/f"]["dirty"] == 0
    assert files["/data/out"]["cached"] == 1024 and files["/data/out"]["dirty"] == 1024
    final = json.loads((tmp_path / "out/pagecache.json").read_text())
    assert [f["path"] for f in final["files"]] == ["/data/out"]
    assert final["files"][0]["dirty"] == 0
    events = [json.loads(x) for x in (tmp_path / "out/events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert "write" in kinds and "fsync" in kinds and "unlink" in kinds
    result.machine.check_invariants()


BASE = """machine: {ram: 1GiB%s}
files: {/data/f: 8MiB}
processes:
  - name: w
    program: cat
    steps:
      - %s
"""


@pytest.mark.parametrize("disk, step, where, what", [
    (", disk: {read_bandwidth: 0}", "exit: 0", "s.yaml:1: machine.disk.read_bandwidth",
     "a bandwidth must be positive"),
    (", disk: {latency: fast}", "exit: 0", "s.yaml:1: machine.disk.latency", "fast"),
    (", disk: {speed: 1GiB}", "exit: 0", "s.yaml:1: machine.disk.speed", "speed"),
    ("", "write: {file: /data/o, size: -1}", "s.yaml:7: processes[0].steps[0].write.size",
     "-1"),
    ("", "write: {file: data/o, size: 1MiB}", "s.yaml:7: processes[0].steps[0].write.file",
     "data/o"),
    ("", "fsync: /data/nothere", "s.yaml:7: processes[0].steps[0].fsync", "/data/nothere"),
    ("", "unlink: /data/nothere", "s.yaml:7: processes[0].steps[0].unlink", "/data/nothere"),
])
def test_bad_file_steps_and_disks_are_one_clear_error(disk, step, where, what):
    from linmem.errors import InputError
    from linmem.workload.scenario import parse_scenario
    with pytest.raises(InputError) as info:
        parse_scenario(BASE % (disk, step), "s.yaml")
    assert info.value.where == where
    assert what in info.value.what


def test_timeline_shows_writeback_over_time():
    from linmem.workload.runner import run_scenario
    from linmem.workload.scenario import parse_scenario
    sc = parse_scenario(BASE % ("", "write: {file: /data/o, size: 16MiB}\n      - sleep: 40s")
                        + "sample: 5s\n", "s.yaml")
    result = run_scenario(sc)
    rows = result.timeline
    dirty = [(r["time"], r["Dirty"], r["nr_written"]) for r in rows]
    assert dirty[1][1] >= 16384 and dirty[1][2] == 0          # at 5 s: dirty, none written
    assert dirty[6][1] >= 16384                                # at 30 s: not yet expired
    assert dirty[-1][2] >= 4096 and dirty[-1][1] < 16384       # at 40 s: written back
    result.machine.check_invariants()


def test_dirty_ratio_and_bytes_exclude_each_other():
    m = Machine(ram=256 << 20)
    m.write_sysctl("vm.dirty_bytes", 100 << 20)
    assert (m.sysctl["dirty_ratio"], m.sysctl["dirty_bytes"]) == (0, 100 << 20)
    m.write_sysctl("vm.dirty_ratio", 30)
    assert (m.sysctl["dirty_ratio"], m.sysctl["dirty_bytes"]) == (30, 0)
    m.write_sysctl("vm.dirty_background_bytes", 8 << 20)
    assert m.sysctl["dirty_background_ratio"] == 0
    bg, thresh = global_dirty_limits(m)
    assert bg == 2048
    m.write_sysctl("vm.dirty_ratio", 30)                    # the same value: no change
    assert m.sysctl["dirty_background_bytes"] == 8 << 20


def test_new_writeback_interval_flushes_everything(machine):
    m, task = machine
    write_all(m, task, "/data/young", 0, 4 * MiB)
    m.write_sysctl("vm.dirty_writeback_centisecs", 1000)
    m.advance(0.1)
    assert m.kernel.fs.residency(m.kernel.fs.inodes["/data/young"]) == (1024, 0, 0)
    m.check_invariants()
