"""Reclaim of the page cache by kswapd and direct reclaim, and the OOM killer.

The kernel's rules, with exact numbers where they give them: inactive_is_low's
ratio, kswapd reclaiming until the node is balanced at the high watermark,
clean unmapped page cache reclaimed before anything is killed, dirty pages
activated with PG_reclaim and rotated to the tail when written, mapped pages
kept, the OOM victim of highest badness (a later process wins a tie).
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm.frames import PG_active, PG_reclaim
from linmem.mm.mmap import builtin_image
from linmem.mm.mmzone import WMARK_LOW
from linmem.mm.vmscan import inactive_is_low
from linmem.mm.vmstat import node_item, vm_event
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

MiB = 1 << 20
PAGE = 4096


def event(m, name):
    return int(m.page_alloc.S.events[vm_event(name)])


def node(m, name):
    return int(m.node_stat[node_item(name)])


@pytest.mark.parametrize("inactive, active, low", [
    (100, 100, False), (100, 101, True),                       # < 1 GiB: ratio 1
    (131072, 131072 * 4 - 1, False), (131072, 131072 * 4 + 1, True),   # 2.5 GiB: sqrt(20) = 4
    (262144, 2621440, False), (262144, 2621441, True),         # 11 GiB: int_sqrt(110) = 10
])
def test_inactive_is_low_ratio(inactive, active, low):
    """inactive x int_sqrt(10 x GiB) < active."""
    assert inactive_is_low(inactive, active) == low


def anon_touch(m, task, size):
    addr = mmaplib.vm_mmap(task.mm.vmas, None, 0, size, 3, 0x22)
    return m.kernel.access(task, np.arange(addr, addr + size, PAGE, dtype=np.int64), True)


@pytest.fixture
def machine():
    m = Machine(ram=512 << 20)
    task = m.kernel.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    return m, task


def test_kswapd_reclaims_the_cache_to_the_high_watermark(machine):
    m, task = machine
    k = m.kernel
    k.fs.create("/data/f", 300 * MiB, boot=True)
    k.read_file(task, "/data/f")
    anon_touch(m, task, 300 * MiB)
    pa = m.page_alloc
    assert event(m, "pgsteal_kswapd") > 0 and event(m, "pgscan_kswapd") >= event(m, "pgsteal_kswapd")
    normal = pa.zone_names.index("DMA32")
    assert pa.nr_free_pages(normal) > pa.wmark(normal, WMARK_LOW)  # kswapd keeps it above low
    assert node(m, "nr_anon_pages") == 300 * MiB // PAGE
    m.check_invariants()


def test_page_cache_goes_before_anyone_is_killed():
    sc = parse_scenario("""
machine: {ram: 512MiB}
files: {/data/f: 300MiB}
processes:
  - name: reader
    program: cat
    steps: [{read: {file: /data/f}}, {sleep: 10s}]
  - name: hog
    program: cat
    start: 1s
    steps:
      - mmap: {as: a, size: 350MiB}
      - touch: {region: a, write: true}
      - mmap: {as: b, size: 350MiB}
      - touch: {region: b, write: true}
""", "s.yaml")
    result = run_scenario(sc)
    kill = next(e for e in result.events if e["event"] == "oom_kill")
    assert kill["victim_name"] == "hog"
    assert [c["name"] for c in kill["candidates"]] == ["reader", "hog"]
    hog = next(c for c in kill["candidates"] if c["name"] == "hog")
    assert hog["badness"] == hog["rss_pages"] + hog["pgtables_bytes"] // PAGE
    procs = {p["name"]: p for p in result.processes}
    assert procs["hog"]["exit"] == "signal 9" and procs["reader"]["exit"] == "code 0"
    m = result.machine
    fs = m.kernel.fs
    # when the killer ran, the file's clean cache had been reclaimed
    assert fs.residency(fs.inodes["/data/f"])[0] < 300 * MiB // PAGE // 100
    assert event(m, "oom_kill") == 1
    m.check_invariants()


def test_dirty_pages_are_activated_then_rotated_when_written(machine):
    m, task = machine
    k = m.kernel
    pos = 0
    while pos < 64 * MiB:
        n, _ = k.write_file(task, "/data/d", pos, 64 * MiB - pos)
        pos += n
    inode = k.fs.inodes["/data/d"]
    k.fs.create("/data/f", 200 * MiB, boot=True)
    k.read_file(task, "/data/f")
    anon_touch(m, task, 200 * MiB)
    K = m.page_alloc.S
    slots = K.pc[K.f_base[inode.fid]:K.f_base[inode.fid] + inode.npages]
    assert k.fs.residency(inode)[0] == 64 * MiB // PAGE          # none of the dirty data went
    marked = int(((K.flags[slots] & PG_reclaim) != 0).sum())
    assert marked > 0 and node(m, "nr_vmscan_immediate_reclaim") == marked
    assert int(((K.flags[slots] & PG_active) != 0).sum()) >= marked
    m.advance(k.fsync(task, "/data/d"))
    assert event(m, "pgrotated") == marked                        # back to the tail, clean
    assert int(((K.flags[slots] & (PG_reclaim | PG_active)) != 0).sum()) == 0
    m.check_invariants()


def test_mapped_file_pages_are_kept(machine):
    m, task = machine
    k = m.kernel
    k.fs.create("/data/m", 64 * MiB, boot=True)
    addr = mmaplib.vm_mmap(task.mm.vmas, k.fs.open("/data/m"), 0, 64 * MiB, 1, 0x01)
    k.access(task, np.arange(addr, addr + 64 * MiB, PAGE, dtype=np.int64), False)
    k.fs.create("/data/f", 300 * MiB, boot=True)
    k.read_file(task, "/data/f")
    anon_touch(m, task, 250 * MiB)
    assert k.fs.residency(k.fs.inodes["/data/m"])[0] == 64 * MiB // PAGE
    assert event(m, "pgsteal_kswapd") + event(m, "pgsteal_direct") > 0
    m.check_invariants()


def test_oom_victim_is_the_highest_badness_and_a_later_one_wins_ties():
    m = Machine(ram=256 << 20)
    k = m.kernel
    small = k.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    big = k.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    adj = k.spawn(builtin_image("/usr/bin/cat"), ["cat"], oom_score_adj=500)
    anon_touch(m, small, 16 * MiB)
    anon_touch(m, big, 64 * MiB)
    anon_touch(m, adj, 8 * MiB)
    from linmem.mm.oom_kill import oom_badness, select_bad_process
    victim, candidates = select_bad_process(k)
    total = m.totalram_pages
    assert [c["badness"] for c in candidates] == [oom_badness(k, t, total)
                                                  for t in (small, big, adj)]
    assert victim is adj                     # 8 MiB, but oom_score_adj 500 x totalpages/1000
    k.current = None                          # no task is faulting: the victim is killed here
    assert k.out_of_memory(0, 0) and adj.state == "Z" and event(m, "oom_kill") == 1
    twin = k.spawn(builtin_image("/usr/bin/cat"), ["cat"])
    anon_touch(m, twin, 64 * MiB)
    victim, _ = select_bad_process(k)
    if oom_badness(k, twin, total) == oom_badness(k, big, total):
        assert victim is twin
    else:
        assert victim is max((big, twin), key=lambda t: oom_badness(k, t, total))
    m.check_invariants()


HOGS = """
machine: {ram: 256MiB}
sysctl: {%s}
processes:
  - name: big
    program: cat
    steps:
      - mmap: {as: a, size: 120MiB}
      - touch: {region: a, write: true}
      - sleep: 5s
  - name: small
    program: cat
    start: 1s
    steps:
      - mmap: {as: a, size: 100MiB}
      - touch: {region: a, write: true}
      - mmap: {as: b, size: 100MiB}
      - touch: {region: b, write: true}
"""


def test_the_biggest_is_killed_and_the_report_reads_like_the_kernels():
    from linmem.procfs.kmsg import TASKS_HEADER, oom_report_lines
    result = run_scenario(parse_scenario(HOGS % "vm.oom_dump_tasks: 1", "s.yaml"))
    kill = next(e for e in result.events if e["event"] == "oom_kill")
    # small asks while big holds more: big goes (30782 > 20790 pages of badness)
    assert (kill["invoker"], kill["victim_name"]) == ("small", "big")
    assert [(c["name"], c["badness"]) for c in kill["candidates"]] == [("big", 30782),
                                                                      ("small", 20790)]
    lines = oom_report_lines(kill)
    assert lines[0].startswith(f"{kill['invoker']} invoked oom-killer: gfp_mask=0x")
    assert lines[2] == TASKS_HEADER
    victim = next(c for c in kill["candidates"] if c["pid"] == kill["victim"])
    assert lines[-1] == (f"Out of memory: Killed process {victim['pid']} ({victim['name']}) "
                         f"total-vm:{victim['total_vm'] * 4}kB, anon-rss:{victim['rss_anon'] * 4}kB, "
                         f"file-rss:{victim['rss_file'] * 4}kB, shmem-rss:{victim['rss_shmem'] * 4}kB, "
                         f"UID:0 pgtables:{victim['pgtables_bytes'] // 1024}kB oom_score_adj:0")
    row = next(line for line in lines if line.endswith(f" {victim['name']}") and line.startswith("["))
    assert row.startswith(f"[{victim['pid']:7d}]     0 {victim['pid']:5d} {victim['total_vm']:8d}")
    result.machine.check_invariants()


def test_oom_kill_allocating_task_kills_the_one_that_asked():
    result = run_scenario(parse_scenario(HOGS % "vm.oom_kill_allocating_task: 1", "s.yaml"))
    kill = next(e for e in result.events if e["event"] == "oom_kill")
    assert kill["victim_name"] == kill["invoker"] == "small"
    assert kill["reason"].startswith("oom_kill_allocating_task")
    procs = {p["name"]: p["exit"] for p in result.processes}
    assert procs == {"big": "code 0", "small": "signal 9"}


def test_panic_on_oom_stops_the_machine(tmp_path):
    from linmem.workload.runner import write_outputs
    result = run_scenario(parse_scenario(HOGS % "vm.panic_on_oom: 1", "s.yaml"))
    panic = [e for e in result.events if e["event"] == "panic"]
    assert panic and "panic_on_oom" in panic[0]["message"]
    assert not [e for e in result.events if e["event"] == "oom_kill"]
    write_outputs(result, tmp_path / "out")
    import json
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["panic"].startswith("Out of memory: system-wide panic_on_oom")


def test_summary_counts_reclaim(tmp_path):
    from linmem.workload.runner import write_outputs
    import json
    result = run_scenario(parse_scenario(HOGS % "vm.oom_dump_tasks: 1", "s.yaml"))
    write_outputs(result, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    vmstat = dict(line.split() for line in (tmp_path / "out/proc/vmstat").read_text().splitlines())
    for key in ("pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct"):
        assert summary["reclaim"][key] == int(vmstat[key])
    assert summary["reclaim"]["kswapd_runs"] == int(vmstat["pageoutrun"])
    assert summary["oom_kill"] == 1 == int(vmstat["oom_kill"])
