"""The write path against the real kernel (tests/data/realkernel/writeback-6.18.json).

Each experiment recorded on Linux 6.18 (ext4 data=ordered on a 768 MiB loop
device, 4 KiB writes, so 4 KiB folios like linmem's; see the data's README)
is run on the model with the same steps, and the counts compared: pages
dirtied and written, pages read by partial writes, LRU placement after
writes and reads, the page cache after drop_caches and unlink, tmpfs, the
metadata in Buffers, and when the flusher writes data left dirty.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.frames import PG_active, PG_referenced
from linmem.mm.mmap import builtin_image
from linmem.mm.vmstat import node_item, vm_event

DATA = Path(__file__).parent / "data" / "realkernel" / "writeback-6.18.json"
MiB = 1 << 20
PAGE = 4096
PAGES = 16 * MiB // PAGE


@pytest.fixture(scope="module")
def real():
    return json.loads(DATA.read_text())["results"]


def phase(real, experiment, name):
    return real[experiment]["phases"][name]


@pytest.fixture
def model():
    m = Machine(ram=1 << 30, disk={"size": 768 << 20})
    task = m.kernel.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    return m, task


def node(m, name):
    return int(m.node_stat[node_item(name)])


def event(m, name):
    return int(m.page_alloc.S.events[vm_event(name)])


def write(m, task, path, offset, size):
    pos, end = offset, offset + size
    while pos < end:
        n, seconds = m.kernel.write_file(task, path, pos, end - pos)
        pos += n
        m.advance(seconds)


def fsync(m, task, path):
    m.advance(m.kernel.fsync(task, path))


def flags(m, path, flag):
    K = m.page_alloc.S
    inode = m.kernel.fs.inodes[path]
    slots = K.pc[K.f_base[inode.fid]:K.f_base[inode.fid] + inode.npages]
    return int(((K.flags[slots[slots >= 0]] & flag) != 0).sum())


def test_new_file_dirtied_once_written_once_and_its_metadata(real, model):
    """write-new: 4096 pages dirtied, none left dirty after fsync, 4096
    written; the block device cache holds 4 pages after mount, 6 after the
    create, 14 after fsync (block bitmap and the journal commit)."""
    m, task = model
    fs = m.kernel.fs
    r_write = phase(real, "write-new ordered 16M 4K", "write")
    r_fsync = phase(real, "write-new ordered 16M 4K", "fsync")
    assert fs.residency_of(fs.bdev_fid)[0] == 4
    fs.create("/data")
    assert fs.residency_of(fs.bdev_fid)[0] == r_write["bdev_before"][0] == 6
    write(m, task, "/data", 0, 16 * MiB)
    assert node(m, "nr_dirtied") == PAGES == r_write["cachestat"]["data"][1]
    assert fs.residency(fs.inodes["/data"]) == tuple(r_write["cachestat"]["data"])
    fsync(m, task, "/data")
    assert fs.residency(fs.inodes["/data"]) == tuple(r_fsync["cachestat"]["data"])
    assert node(m, "nr_written") == r_fsync["vmstat"]["nr_written"] == PAGES
    cached, dirty, _ = fs.residency_of(fs.bdev_fid)
    assert cached == r_fsync["bdev_after"][0] == 14
    # XXX: the kernel leaves one more metadata block dirty after the commit
    assert r_fsync["bdev_after"][1] - dirty == 1
    m.check_invariants()


def test_written_twice_stays_inactive_and_unreferenced(real, model):
    """write-twice: a write marks nothing accessed (FGP_WRITEBEGIN), so the
    file written twice is still inactive; the real scan shows at most a page
    or two referenced or active (metadata and DAMON's doing)."""
    m, task = model
    write(m, task, "/data", 0, 16 * MiB)
    write(m, task, "/data", 0, 16 * MiB)
    scan = phase(real, "write-twice ordered 16M 4K", "settle-overwrite")["scan"]["file"]
    assert scan["referenced"] <= 2 and scan["lru"] == scan["pages"]
    assert flags(m, "/data", PG_referenced) == 0 and flags(m, "/data", PG_active) == 0


def test_read_after_write_references_every_page_and_reads_nothing(real, model):
    """write-then-read: the read does no I/O, references every page, activates none."""
    m, task = model
    write(m, task, "/data", 0, 16 * MiB)
    fsync(m, task, "/data")
    pgpgin = event(m, "pgpgin")
    m.kernel.read_file(task, "/data")
    r = phase(real, "write-then-read ordered 16M", "read")
    scan = phase(real, "write-then-read ordered 16M", "settle-read")["scan"]["file"]
    assert event(m, "pgpgin") == pgpgin and r["majflt"] == 0
    assert flags(m, "/data", PG_referenced) == PAGES and scan["referenced"] >= PAGES
    assert flags(m, "/data", PG_active) == 0 and scan["active"] < 16


def test_partial_writes_of_a_cold_file_read_each_page_first(real, model):
    """partial-overwrite: one byte in every 4th page of a cold file: one 4 KiB
    read per page (the real global pgpgin counts the loop device's I/O twice)."""
    m, task = model
    m.kernel.fs.create("/data", 16 * MiB, boot=True)
    for k in range(0, PAGES, 4):
        m.kernel.write_file(task, "/data", k * PAGE + 1000, 1)
    r = phase(real, "partial-overwrite ordered 16M", "overwrite")
    assert r["pages"] == PAGES // 4 and r["minflt"] == r["majflt"] == 0
    assert r["vmstat"]["pgpgin"] == 2 * 4 * (PAGES // 4)
    data_read = event(m, "pgpgin") // 4 - m.kernel.fs.metadata_reads
    assert data_read == PAGES // 4
    assert m.kernel.fs.residency(m.kernel.fs.inodes["/data"]) == \
        tuple(r["cachestat"]["data"]) == (1024, 1024, 0)


def test_shared_mapping_write_faults_every_page(real, model):
    """mmap-shared-write (data=journal: 4 KiB folios): a write fault per
    page, the first one major; every page dirty."""
    m, task = model
    k = m.kernel
    k.fs.create("/data", 16 * MiB, boot=True)
    addr = mmaplib.vm_mmap(task.mm.vmas, k.fs.open("/data"), 0, 16 * MiB,
                           V.PROT_READ | V.PROT_WRITE, V.MAP_SHARED)
    k.access(task, np.arange(addr, addr + 16 * MiB, PAGE, dtype=np.int64), True)
    r = phase(real, "mmap-shared-write journal 16M", "touch-write")
    assert k.mem.faults(task.pid) == (r["minflt"], r["majflt"]) == (4095, 1)
    assert k.fs.residency(k.fs.inodes["/data"]) == tuple(r["cachestat"]["data"])


def test_drop_caches_keeps_dirty_and_mapped_pages(real, model):
    """drop-caches-dirty: dirty pages stay; once written, the unmapped file
    goes, and a mapped clean file stays."""
    m, task = model
    k = m.kernel
    write(m, task, "/dirty", 0, 16 * MiB)
    m.write_sysctl("vm.drop_caches", 1)
    r = "drop-caches-dirty ordered 16M"
    assert k.fs.residency(k.fs.inodes["/dirty"]) == \
        tuple(phase(real, r, "drop-dirty")["cachestat"]["dirty"])
    fsync(m, task, "/dirty")
    m.write_sysctl("vm.drop_caches", 1)
    assert k.fs.residency(k.fs.inodes["/dirty"]) == \
        tuple(phase(real, r, "drop-clean")["cachestat"]["dirty"]) == (0, 0, 0)
    for path in ("/mapped", "/unmapped"):
        write(m, task, path, 0, 16 * MiB)
        fsync(m, task, path)
    addr = mmaplib.vm_mmap(task.mm.vmas, k.fs.open("/mapped"), 0, 16 * MiB, V.PROT_READ,
                           V.MAP_SHARED)
    k.access(task, np.arange(addr, addr + 16 * MiB, PAGE, dtype=np.int64), False)
    m.write_sysctl("vm.drop_caches", 1)
    real_after = phase(real, r, "drop-mapped")["cachestat"]
    assert k.fs.residency(k.fs.inodes["/mapped"]) == tuple(real_after["mapped"])
    assert k.fs.residency(k.fs.inodes["/unmapped"]) == tuple(real_after["unmapped"])
    m.check_invariants()


def test_unlink_frees_exactly_the_files_pages(real, model):
    """unlink-cached: unlinked with nothing holding it, the file's 4096 pages go."""
    m, task = model
    write(m, task, "/a", 0, 16 * MiB)
    fsync(m, task, "/a")
    before = node(m, "nr_file_pages") - m.nr_blockdev_pages
    m.kernel.unlink(task, "/a")
    freed = before - (node(m, "nr_file_pages") - m.nr_blockdev_pages)
    settled = phase(real, "unlink-cached ordered 16M", "settle-unlink-closed")["scan"]["file"]
    assert freed == PAGES
    assert settled["pages"] < 32                     # only metadata is left in the group
    m.check_invariants()


def test_tmpfs_write_is_shmem_never_dirty(real, model):
    """tmpfs-write: 4096 pages cached, none dirty by cachestat, nr_dirtied unmoved."""
    m, task = model
    write(m, task, "/dev/shm/data", 0, 16 * MiB)
    r = phase(real, "tmpfs-write tmpfs 16M", "write")
    assert m.kernel.fs.residency(m.kernel.fs.inodes["/dev/shm/data"]) == \
        tuple(r["cachestat"]["data"]) == (PAGES, 0, 0)
    assert node(m, "nr_dirtied") == 0 and node(m, "nr_shmem") == PAGES


def test_data_left_dirty_is_written_after_thirty_seconds(real, model):
    """background-writeback: 16 MiB left dirty (far below the background
    threshold) is written by the periodic flush once 30 s old. The flush's
    5 s timer is rounded up to the timer wheel's 64-jiffy granularity at each
    of its six wake-ups, so it lands 30 to 31.5 s after the write; the real
    kernel wrote it between two samples around 31 s."""
    m, task = model
    t0 = m.clock
    write(m, task, "/data", 0, 16 * MiB)
    inode = m.kernel.fs.inodes["/data"]
    step = 0.01
    while m.kernel.fs.residency(inode)[1] and m.clock - t0 < 40:
        m.advance(step)
    written_at = m.clock - t0
    derived = real["background-writeback ordered 16M"]["derived"]["writeback"]
    for when in (written_at, derived["clean_s"]):
        assert 30.0 < when <= 30.0 + 6 * 64 / 250 + 0.5      # + the real run's 0.5 s sampling
    assert derived["last_dirty_sample_s"] >= 30.0
