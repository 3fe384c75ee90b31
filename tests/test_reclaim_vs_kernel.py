"""Reclaim against the real kernel (tests/data/realkernel/reclaim-6.18.json),
on a machine whose RAM makes the pressure the real memory cgroup's limit
made (memory cgroups are a later mechanism).

* file-refault: a file twice the memory read three times. The real kernel
  (64 MiB limit, 128 MiB file) refaults every page on pass 2 and activates
  none beyond its machine's noise; the model refaults every page on passes
  2 and 3 and activates none.
* anon-oom: a cached file, then anonymous memory past the limit with no
  swap. The real kernel reclaimed the cache down to 26 of 8192 pages before
  killing the process with SIGKILL (oom_kill 1); the model reclaims all of
  the file's clean cache and kills the process that faults, once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

DATA = Path(__file__).parent / "data" / "realkernel" / "reclaim-6.18.json"


@pytest.fixture(scope="module")
def real():
    return json.loads(DATA.read_text())["results"]


def test_file_twice_memory_refaults_every_page_and_activates_none(real):
    r = real["file-refault 64M 128M 4K"]["phases"]
    pages = r["pass-2"]["pages"]
    assert pages == 32768 and r["pass-2"]["vmstat"]["workingset_refault_file"] == pages
    sc = parse_scenario("""
machine: {ram: 128MiB}
files: {/data/f: 256MiB}
processes:
  - name: reader
    program: cat
    steps:
      - read: {file: /data/f}
      - snapshot: pass-1
      - read: {file: /data/f}
      - snapshot: pass-2
      - read: {file: /data/f}
""", "s.yaml")
    result = run_scenario(sc)
    file_pages = 256 * 256
    vm = [dict(line.split() for line in result.snapshots[s]["vmstat"].splitlines())
          for s in ("pass-1", "pass-2")] + \
        [dict(line.split() for line in result.final["vmstat"].splitlines())]
    refaults = [int(v["workingset_refault_file"]) for v in vm]
    activations = [int(v["workingset_activate_file"]) for v in vm]
    assert refaults == [0, file_pages, 2 * file_pages]
    assert activations == [0, 0, 0]
    reads = [e["pages_read_from_disk"] for e in result.events if e["event"] == "read"]
    assert reads == [file_pages] * 3
    result.machine.check_invariants()


def test_cache_is_reclaimed_before_the_oom_kill(real):
    r = real["anon-oom 64M 32M 128M"]
    assert r["exit"]["signal"] == 9 and r["cgroup"]["oom_kill"] == 1
    last = r["phases"]["touch-anon"]["checkpoints"][-1]["memcg"]
    assert last["cache"] <= 32                      # of 8192 cached before
    sc = parse_scenario("""
machine: {ram: 128MiB}
files: {/data/f: 32MiB}
processes:
  - name: app
    program: cat
    steps:
      - read: {file: /data/f}
      - mmap: {as: a, size: 60MiB}
      - touch: {region: a, write: true}
      - mmap: {as: b, size: 60MiB}
      - touch: {region: b, write: true}
""", "s.yaml")
    result = run_scenario(sc)
    kills = [e for e in result.events if e["event"] == "oom_kill"]
    assert len(kills) == 1 and kills[0]["victim_name"] == "app"
    assert [p["exit"] for p in result.processes] == ["signal 9"]
    m = result.machine
    fs = m.kernel.fs
    assert fs.residency(fs.inodes["/data/f"])[0] == 0     # all of it reclaimed first
    m.check_invariants()
