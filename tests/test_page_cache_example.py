"""docs/examples/page-cache.yaml: the issue's claims, end to end through `linmem run`.

A 200 MiB file read once is inactive, read twice active with no I/O on the
second read; a cold 200 MiB mapping read in order takes 3200 faults (one
major), with MADV_RANDOM 51200 major ones; a 1 GiB writer keeps dirty +
writeback under the dirty threshold and is throttled; fsync leaves no dirty
data page; drop_caches 1 empties the clean, unmapped page cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linmem.procfs.parse import parse_meminfo
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import load_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "page-cache.yaml"


@pytest.fixture(scope="module")
def result():
    return run_scenario(load_scenario(EXAMPLE))


def meminfo(result, snapshot):
    return parse_meminfo(result.snapshots[snapshot]["meminfo"])


def test_read_once_inactive_read_twice_active_without_io(result):
    once, twice = meminfo(result, "read-once"), meminfo(result, "read-twice")
    assert once["Cached"] == twice["Cached"] == 204800
    assert once["Inactive(file)"] - once["Buffers"] >= 204800 - 4
    assert twice["Active(file)"] >= 204800 and twice["Inactive(file)"] <= twice["Buffers"]
    reads = [e for e in result.events if e["event"] == "read"]
    assert [e["pages_read_from_disk"] for e in reads] == [51200, 0]


def test_cold_mapping_faults(result):
    procs = {p["name"]: p for p in result.processes}
    assert (procs["mapper"]["minor_faults"], procs["mapper"]["major_faults"]) == (3200, 1)
    assert (procs["random"]["minor_faults"], procs["random"]["major_faults"]) == (0, 51200)


def test_writer_throttled_below_the_dirty_threshold_and_fsync_cleans(result):
    written = meminfo(result, "written")
    vmstat = dict(line.split() for line in result.snapshots["written"]["vmstat"].splitlines())
    thresh = int(vmstat["nr_dirty_threshold"])
    assert (written["Dirty"] + written["Writeback"]) // 4 <= thresh
    write = next(e for e in result.events if e["event"] == "write")
    assert write["throttled_seconds"] > 0.5                    # ~ (1 GiB - free run) / 1 GiB/s
    synced = meminfo(result, "synced")
    assert synced["Dirty"] <= synced["Buffers"]                # only metadata is left dirty
    dropped = meminfo(result, "dropped")
    assert dropped["Cached"] == 0


def test_the_end_has_no_file_cached_and_every_invariant_holds(result):
    result.machine.check_invariants()
    files = json.loads(result.pagecache[""])["files"]
    assert {f["path"] for f in files} == {"/data/twice", "/data/mapped", "/data/random",
                                          "/data/out"}
    assert all(f["cached"] == 0 and f["dirty"] == 0 for f in files)
