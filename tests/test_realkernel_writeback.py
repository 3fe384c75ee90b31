"""Buffered writes, dirty data, writeback, fsync, drop_caches and Buffers: what
Linux 6.18 does, recorded and live.

tests/realkernel/io.c runs each experiment phase by phase; tests/realkernel/io.py
snapshots the memory cgroup's memory.stat, /proc/vmstat, /proc/meminfo and the
loop device's page cache (cachestat) around every phase, on a fresh ext4
(data=journal or data=ordered) or tmpfs. The numbers measured on the build
machine are in tests/data/realkernel/writeback-6.18.json (see the README there).

Every check runs against the recorded data (always) and against a live run of
a small subset (root, cgroup v1 memory controller, gcc, loop devices,
/proc/kpageflags; skipped with the reason otherwise, and marked ``slow``:
each live experiment takes 5 to 12 s).

Exact numbers come from the program itself (getrusage, mincore, cachestat(2)
of each file) and from the kpageflags scan of the group's pages; memory.stat
is exact after a settle phase (2.2 s, past the 2 s periodic flush of the
per-cpu memcg counters). Global /proc/vmstat and /proc/meminfo numbers include
the rest of the machine: they are checked within NOISE.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from realkernel import harness
from realkernel import io as rkio

PAGE = 4096
RECORDED = rkio.load_recorded()

#: Pages by which a global counter read from /proc/vmstat may lag the truth:
#: each CPU keeps up to "vm stats threshold" (28 here) pages of per-node
#: deltas unfolded, and a phase is read twice.
LAG = 128
#: Pages the rest of a shared machine may add to a global counter in one short
#: phase (seen: a few dozen; up to ~1000 in a 2 s settle phase).
NOISE = 512
#: File pages of the group that are not the experiment's files: ext4 metadata
#: read or dirtied through the block device (inode table, bitmaps, directory
#: blocks) by this process, charged to its group.
METADATA = 32

#: The machine runs a DAMON "pageout" scheme on physical memory (see
#: shared/reference/real-kernel.md). Now and then it isolates a few folios of
#: the experiment's files seconds after they were written: clean ones are
#: reclaimed (seen: up to 1024 of 51200 pages gone from the cache, 61 of
#: 4096), dirty ones are activated by shrink_folio_list (seen: one 256-page
#: folio of 51200, 33 pages of 4096, one 256-page folio of 4096). Counts of a
#: file's cached or inactive pages are exact but for this: at most 1/40 of
#: the file, or one folio of the largest size seen (1 MiB, from 1 MiB writes
#: on data=ordered) and the metadata.
LARGEST_FOLIO = 256


def damon(n: int) -> int:
    return max(METADATA + LARGEST_FOLIO, n // 40)


#: The experiments re-run live (quick ones, 16 MiB).
LIVE = ("write-new ordered 16M 1M", "write-new journal 16M 4K", "write-twice ordered 16M",
        "write-then-read journal 16M", "drop-caches-dirty ordered 16M",
        "tmpfs-write tmpfs 16M")


def pages(size: str) -> int:
    return harness.parse_size(size) // PAGE


# ------------------------------------------------------------------ sources

@pytest.fixture(scope="module")
def live_runner():
    """Run a spec once on this machine (cached per module)."""
    reason = rkio.skip_reason()
    if reason:
        pytest.skip(reason)
    facts = rkio.kernel_facts()
    if facts["release"].split(".")[:2] != RECORDED["kernel"]["release"].split(".")[:2]:
        pytest.skip(f"kernel {facts['release']} is not the recorded "
                    f"{RECORDED['kernel']['release']}")
    cache: dict[str, dict] = {}

    def run(spec_id: str) -> dict:
        if spec_id not in cache:
            cache[spec_id] = rkio.run_once(tuple(spec_id.split()))
        return cache[spec_id]
    return run


class Source:
    def __init__(self, get, live: bool):
        self._get, self.live = get, live

    def __call__(self, spec_id: str) -> dict:
        if self.live and spec_id not in LIVE:
            pytest.skip(f"{spec_id} is only checked in the recorded data")
        result = self._get(spec_id)
        assert "error" not in result, result["error"]
        return result


@pytest.fixture(params=["recorded", pytest.param(
    "live", marks=[pytest.mark.realkernel, pytest.mark.slow])])
def results(request):
    """Results by id: the recorded data, or live runs of the LIVE subset."""
    if request.param == "recorded":
        return Source(lambda spec_id: RECORDED["results"][spec_id], live=False)
    return Source(request.getfixturevalue("live_runner"), live=True)


def no_faults(p) -> bool:
    """A system call phase takes no fault: write(2), read(2) and the reads
    inside write(2) copy from/to a pre-faulted buffer. Now and then (in 4 of
    the ~110 recorded runs) one minor fault happens anyway, a kernel-side
    event (the buffer's page moved under the program, e.g. by compaction)."""
    return p["majflt"] == 0 and p["minflt"] <= 1


def phase(result, name):
    return result["phases"][name]


def scan_file(result, name):
    """The kpageflags summary of the group's file pages after settle phase ``name``."""
    return phase(result, name)["scan"]["file"]


def inactive(scan: dict) -> int:
    """File pages not active: on the inactive list, or (a few) still in a
    per-CPU LRU batch, which puts them on the inactive list when drained."""
    return scan["pages"] - scan["active"]


def settled(result, name, n, file="data"):
    """[dirty, writeback] of ``file`` after phase ``name``, checking that at
    least n - damon(n) of its n pages are still cached."""
    c = cached(result, name, file)
    assert n - damon(n) <= c[0] <= n, (name, c)
    return c[1:]


def cached(result, name, file="data"):
    """[cached, dirty, writeback] pages of ``file`` after phase ``name`` (cachestat)."""
    return phase(result, name)["cachestat"][file]


def bdev_growth(result, *names):
    """Pages the loop device's page cache (the fs's Buffers) grew by over ``names``."""
    return (phase(result, names[-1])["bdev_after"][0]
            - phase(result, names[0])["bdev_before"][0])


def assert_dirtied(result, name, n):
    """nr_dirtied of phase ``name`` is ``n`` pages within the global noise."""
    got = phase(result, name)["vmstat"]["nr_dirtied"]
    assert n - LAG <= got <= n + max(NOISE, n // 50), (name, got, n)


# ------------------------------------------------------------- write(2), fsync

@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
@pytest.mark.parametrize("block", ("4K", "1M"))
def test_write_dirties_every_page_and_fsync_cleans_them(results, mode, size, block):
    r = results(f"write-new {mode} {size} {block}")
    n = pages(size)
    w = phase(r, "write")
    assert no_faults(w)            # write(2) takes no faults
    assert cached(r, "write") == [n, n, 0]
    assert w["resident"]["data"] == n
    assert n <= w["memcg"]["cache"] <= n + METADATA
    assert_dirtied(r, "write", n)
    # memory.stat after the settle phase is exact: every page dirty, charged.
    assert n <= phase(r, "settle-write")["memcg_after"]["dirty"] <= n + METADATA
    assert scan_file(r, "settle-write")["dirty"] >= n
    # fsync: the file has no dirty or writeback page left; what the group
    # still has dirty is ext4 metadata in the block device's cache.
    assert cached(r, "fsync") == [n, 0, 0]
    assert settled(r, "settle-fsync", n) == [0, 0]
    assert phase(r, "settle-fsync")["memcg_after"]["dirty"] <= METADATA
    assert phase(r, "settle-fsync")["memcg_after"]["writeback"] == 0
    assert scan_file(r, "settle-fsync")["dirty"] <= METADATA
    assert phase(r, "fsync")["memcg"]["dirty"] <= -n + METADATA


@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
@pytest.mark.parametrize("block", ("4K", "1M"))
def test_written_pages_stay_inactive_and_unreferenced(results, mode, size, block):
    """write(2) does not mark a folio accessed on 6.18 (FGP_WRITEBEGIN has no
    FGP_ACCESSED): a newly written file sits on the inactive list, unreferenced."""
    r = results(f"write-new {mode} {size} {block}")
    n = pages(size)
    for name in ("settle-write", "settle-fsync"):
        f = scan_file(r, name)
        assert inactive(f) >= n - damon(n) and f["active"] <= damon(n), (name, f)
        assert f["referenced"] <= METADATA, (name, f)
    assert phase(r, "settle-write")["memcg_after"]["inactive_file"] >= n - damon(n)


@pytest.mark.parametrize("size", rkio.SIZES)
@pytest.mark.parametrize("block", ("4K", "1M"))
def test_folio_sizes_journal_4k_ordered_follow_the_write_size(results, size, block):
    n = pages(size)
    journal = results(f"write-new journal {size} {block}")
    assert set(scan_file(journal, "settle-write")["folios"]) == {"1"}
    ordered = scan_file(results(f"write-new ordered {size} {block}"), "settle-write")["folios"]
    if block == "4K":
        assert set(ordered) == {"1"}                       # a 4 KiB write: order 0
    else:
        assert ordered["256"] == n // 256                  # a 1 MiB write: 1 MiB folios


@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_overwrite_reads_nothing_and_activates_nothing(results, mode, size):
    r = results(f"write-twice {mode} {size}")
    n = pages(size)
    o = phase(r, "overwrite")
    assert no_faults(o)
    # No page of the file is added (nor read): at most a metadata block is.
    assert o["memcg"]["pgpgin"] <= METADATA and abs(o["memcg"]["cache"]) <= METADATA
    assert cached(r, "overwrite") == [n, n, 0]
    for name in ("settle-write", "settle-overwrite"):
        f = scan_file(r, name)
        assert f["active"] <= damon(n) and f["referenced"] <= METADATA, (name, f)
        assert inactive(f) >= n - damon(n)
    assert cached(r, "fsync") == [n, 0, 0]


def test_overwrite_with_4k_writes_does_not_activate_either(results):
    for mode in rkio.MODES:
        f = scan_file(results(f"write-twice {mode} 16M 4K"), "settle-overwrite")
        assert f["active"] <= damon(4096) and f["referenced"] <= METADATA, (mode, f)


@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_read_after_write_does_no_io_and_references_without_activating(results, mode, size):
    r = results(f"write-then-read {mode} {size}")
    n = pages(size)
    rd = phase(r, "read")
    assert no_faults(rd)
    # Nothing is read but the pages DAMON may have reclaimed since the fsync:
    # every page charged is one that was not cached.
    missing = n - cached(r, "settle-fsync")[0]
    assert missing <= damon(n)
    # (memory.stat between two settle phases: a few dozen charges can lag the
    # read phase's own snapshot.)
    charged = (phase(r, "settle-read")["memcg_after"]["pgpgin"]
               - phase(r, "settle-fsync")["memcg_after"]["pgpgin"])
    assert missing <= charged <= missing + METADATA          # (+ a metadata block)
    assert rd["vmstat"]["pgpgin"] <= NOISE + 2 * 4 * missing      # KiB, whole machine
    assert cached(r, "read") == [n, 0, 0]
    f = scan_file(r, "settle-read")
    # One access: referenced, not active (of the pages DAMON left cached).
    assert f["referenced"] >= cached(r, "settle-read")[0] and f["active"] <= damon(n), f


# -------------------------------------------------------- partial overwrite

@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_partial_overwrite_of_a_cold_file_reads_each_page_first(results, mode, size):
    r = results(f"partial-overwrite {mode} {size}")
    n = pages(size) // 4
    assert r["info"]["resident_after_make_cold"] == 0
    assert cached(r, "settle-cold") == [0, 0, 0]
    o = phase(r, "overwrite")
    assert o["pages"] == n
    assert no_faults(o)            # reads inside write(2) are no faults
    assert o["resident"]["data"] == n and cached(r, "overwrite") == [n, n, 0]
    assert n <= o["memcg"]["pgpgin"] <= n + METADATA       # one 4 KiB folio charged per page
    # Each written page was read first: 4 KiB per page, counted twice in the
    # global pgpgin (on the loop device and again on the disk under it).
    assert 4 * n <= o["vmstat"]["pgpgin"] <= 2 * 4 * n + 4 * NOISE
    assert settled(r, "fsync", n) == [0, 0]


# -------------------------------------------------------------- drop_caches

@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_drop_caches_keeps_dirty_and_mapped_pages(results, mode, size):
    r = results(f"drop-caches-dirty {mode} {size}")
    n = pages(size)
    assert cached(r, "drop-dirty", "dirty") == [n, n, 0]   # dirty: stays
    assert phase(r, "drop-dirty")["resident"]["dirty"] == n
    assert cached(r, "fsync", "dirty") == [n, 0, 0]
    assert cached(r, "drop-clean", "dirty") == [0, 0, 0]   # clean, unmapped: dropped
    assert phase(r, "drop-clean")["memcg"]["cache"] <= -n
    touch = phase(r, "map-touch")
    assert touch["majflt"] <= damon(n) and touch["memcg"]["mapped_file"] == n
    drop = phase(r, "drop-mapped")
    assert drop["resident"] == {"dirty": 0, "mapped": n, "unmapped": 0}
    assert phase(r, "settle-drop-mapped")["memcg_after"]["mapped_file"] == n
    assert drop["vmstat"]["drop_pagecache"] >= 1           # global: others may drop too


# ------------------------------------------------------------------- unlink

@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_unlink_frees_the_cache_at_the_last_close(results, mode, size):
    r = results(f"unlink-cached {mode} {size}")
    n = pages(size)
    files = {name: scan_file(r, name)["pages"] for name in (
        "settle-a", "settle-unlink-closed", "settle-b", "settle-unlink-open", "settle-close")}
    a, b = cached(r, "settle-a", "closed")[0], cached(r, "settle-b", "open")[0]
    assert a >= n - damon(n) and b >= n - damon(n)
    assert files["settle-a"] - files["settle-unlink-closed"] == a      # nothing open: freed
    assert abs(files["settle-b"] - files["settle-unlink-open"]) <= damon(n)   # open: stays
    assert abs(files["settle-unlink-open"] - files["settle-close"] - b) <= damon(n)
    assert r["info"]["resident_unlinked_open"] >= n - damon(n)
    assert abs(phase(r, "unlink-closed")["memcg"]["cache"] + n) <= METADATA
    assert abs(phase(r, "unlink-open")["memcg"]["cache"]) <= METADATA
    assert abs(phase(r, "close")["memcg"]["cache"] + n) <= METADATA


# ---------------------------------------------------------- MAP_SHARED write

@pytest.mark.parametrize("mode", rkio.MODES)
@pytest.mark.parametrize("size", rkio.SIZES)
def test_shared_mapping_write_faults_dirty_then_msync_cleans(results, mode, size):
    r = results(f"mmap-shared-write {mode} {size}")
    n = pages(size)
    assert r["info"]["resident_after_make_cold"] == 0
    t = phase(r, "touch-write")
    assert t["majflt"] >= 1                                 # the cold file is read in
    folios = scan_file(r, "settle-touch")["folios"]
    if mode == "journal":
        # 4 KiB folios: one write fault (read + page_mkwrite) per page.
        assert t["minflt"] + t["majflt"] == n
        assert set(folios) == {"1"}
    else:
        # Readahead made large folios; a write fault maps a whole folio.
        nfolios = sum(folios.values())
        assert t["minflt"] + t["majflt"] <= nfolios < n
    assert cached(r, "touch-write") == [n, n, 0]
    assert phase(r, "settle-touch")["memcg_after"]["mapped_file"] == n
    if mode == "ordered":
        assert cached(r, "msync") == [n, 0, 0]
        assert scan_file(r, "settle-msync")["dirty"] <= METADATA
    else:
        # data=journal: msync(MS_SYNC) forces the data into the journal, but
        # folios still in the committing transaction stay dirty (seen 0 and
        # 1332 of 4096); later writeback cleans them.
        assert cached(r, "msync")[0] == n and cached(r, "msync")[2] == 0


# -------------------------------------------------------------------- tmpfs

@pytest.mark.parametrize("size", rkio.SIZES)
def test_tmpfs_pages_are_shmem_on_the_anon_lru_and_never_counted_dirty(results, size):
    r = results(f"tmpfs-write tmpfs {size}")
    n = pages(size)
    w = phase(r, "write")
    assert no_faults(w)
    settled = phase(r, "settle-write")["memcg_after"]
    assert settled["shmem"] == n and n <= settled["cache"] <= n + METADATA
    assert settled["dirty"] == 0                            # tmpfs does not account dirty
    assert settled["inactive_anon"] >= n and settled["inactive_file"] <= METADATA
    assert w["vmstat"]["nr_dirtied"] <= NOISE
    assert abs(w["vmstat"]["nr_shmem"] - n) <= LAG
    shmem = phase(r, "settle-write")["scan"]["shmem"]
    # none active, but for the pages DAMON's pageout scheme isolated: it
    # activates the dirty ones (tmpfs pages are), as it does files' (damon())
    assert shmem["pages"] == n and shmem["active"] <= damon(n)
    assert shmem["dirty"] == n                              # PG_dirty, but never accounted
    assert cached(r, "write") == [n, 0, 0]                  # cachestat: not dirty either
    assert phase(r, "settle-unlink")["memcg_after"]["shmem"] == 0


# --------------------------------------------------- background writeback

@pytest.mark.parametrize("mode", rkio.MODES)
def test_background_writeback_after_dirty_expire(mode):
    """16 MiB, far below the background threshold, is written when the
    flusher (every 5 s) finds the inode older than dirty_expire (30 s)."""
    r = RECORDED["results"][f"background-writeback {mode} 16M"]
    assert "error" not in r, r.get("error")
    wb = r["derived"]["writeback"]
    vm = RECORDED["kernel"]["vm"]
    expire = vm["dirty_expire_centisecs"] / 100
    assert expire <= wb["first_change_s_after_write_start"] <= \
        expire + vm["dirty_writeback_centisecs"] / 100 + 1
    assert wb["clean_s"] is not None and wb["clean_s"] - wb["first_change_s"] <= 1
    samples = r["phases"]["wait"]["samples"]
    n = pages("16M")
    assert wb["dirty_pages"] == n
    dirty = [s["data"][1] for s in samples]
    assert dirty == sorted(dirty, reverse=True)            # only ever cleaned
    for s in samples:
        if s["t"] < wb["first_change_s"]:
            assert s["data"] == [n, n, 0], s
        if s["t"] >= wb["clean_s"]:
            assert s["data"][1:] == [0, 0] and s["data"][0] >= n - damon(n), s
    assert settled(r, "wait", n) == [0, 0]


# ------------------------------------------------- Buffers (ext4 metadata)

@pytest.mark.parametrize("mode", rkio.MODES)
def test_metadata_in_the_block_device_cache(mode):
    r = RECORDED["results"][f"metadata-buffers {mode} 200M"]
    assert "error" not in r, r.get("error")
    n = pages("200M")
    assert phase(r, "mount")["bdev_before"][0] == 0
    assert 1 <= bdev_growth(r, "mount") <= 16             # superblock, descriptors, journal sb
    assert bdev_growth(r, "read-cold") <= 4                 # an inode table block
    assert cached(r, "read-cold", "cold") == [n, 0, 0]
    assert cached(r, "fsync-new", "new") == [n, 0, 0]
    small = bdev_growth(r, "create-small", "syncfs")
    assert 40 <= small <= 200                               # 1000 inodes: 63 blocks + dirs
    write = bdev_growth(r, "write-new", "fsync-new")
    if mode == "ordered":
        assert write <= 32                                  # bitmaps, descriptors, inode
    else:
        assert write >= 100                                 # plus journal descriptor blocks


# ---------------------------------------------------------- the data itself

def test_recorded_data_covers_the_matrix():
    kernel = RECORDED["kernel"]
    assert kernel["release"].startswith("6.18")
    assert kernel["page_size"] == PAGE
    assert (kernel["vm"]["dirty_expire_centisecs"], kernel["vm"]["dirty_writeback_centisecs"]) \
        == (3000, 500)
    ids = [rkio.spec_id(s) for s in rkio.matrix()]
    assert sorted(ids) == sorted(RECORDED["results"])
    for spec in rkio.matrix():
        r = RECORDED["results"][rkio.spec_id(spec)]
        assert "error" not in r, (spec, r["error"])
        assert r["runs"] == rkio.default_runs(spec)
        assert r["cgroup"]["failcnt"] == 0 and r["cgroup"]["oom_kill"] == 0
        for name, p in r["phases"].items():
            for key in ("minflt", "majflt", "us", "resident", "cachestat", "memcg",
                        "memcg_after", "vmstat", "vmstat_after", "meminfo",
                        "meminfo_before", "meminfo_after"):
                assert key in p, (spec, name, key)
            assert set(rkio.VMSTAT_GAUGES) <= set(p["vmstat_after"])
            if spec[1] != "tmpfs":
                assert "bdev_before" in p and "bdev_after" in p
            if name.startswith("settle"):
                assert "scan" in p and p["us"] >= rkio.SETTLE_SECONDS * 1e6
        fs = r["fs"]
        if spec[1] == "journal":
            assert "data=journal" in fs["mount_options"]
        elif spec[1] == "ordered":
            assert "data=" not in fs["mount_options"] or "data=ordered" in fs["mount_options"]
        if spec[1] != "tmpfs":
            assert fs["loop_direct_io"] is True
            assert fs["ext4"]["Total journal size"] == "16M"


def test_recorded_results_by_experiment():
    twice = rkio.recorded_results("write-twice")
    assert set(twice) == {i for i in RECORDED["results"] if i.startswith("write-twice ")}
    assert set(rkio.recorded_results("write-new", "ordered")) == {
        f"write-new ordered {s} {b}" for s in rkio.SIZES for b in ("4K", "1M")}


def test_ranges_keep_what_varied():
    runs = [{"phases": {"w": {"us": 5, "pages": 4, "bdev_before": [1, 0, 0]}}},
            {"phases": {"w": {"us": 7, "pages": 4, "bdev_before": [2, 0, 0]}}}]
    assert rkio.ranges(runs) == {"phases.w.us": [5, 7], "phases.w.bdev_before.0": [1, 2]}


# ----------------------------------------------------------------- cleanup

def _leftovers() -> list[str]:
    out = []
    parent = harness.cgroup_parent()
    if parent is not None:
        out += [str(p) for p in parent.glob(f"{harness.CGROUP_PREFIX}{os.getpid()}-*")]
    for d in Path(tempfile.gettempdir()).glob(f"{harness.TMP_PREFIX}{os.getpid()}-io-*"):
        out += [str(d), *harness._loops_of(d)]
    return out


@pytest.mark.realkernel
def test_loop_fs_and_group_are_removed_when_the_body_fails():
    reason = rkio.skip_reason()
    if reason:
        pytest.skip(reason)
    with pytest.raises(ZeroDivisionError):
        with harness.memory_cgroup(64 << 20), rkio.loop_fs("ordered", 64 << 20) as fs:
            assert os.path.isdir(fs.path("lost+found"))
            holder, directory = fs.ns.holder, fs.directory
            1 / 0
    assert holder.poll() is not None
    assert not directory.exists()
    assert _leftovers() == []


@pytest.mark.realkernel
@pytest.mark.slow
def test_live_runs_left_nothing_behind(live_runner):
    live_runner("tmpfs-write tmpfs 16M")
    assert _leftovers() == []
