"""The cgroup v2 memory controller (mm/memcontrol.c): charging, limits,
protection, throttling, the OOM killer in a group, and the control files.

Each test runs a scenario (or drives the kernel directly) and checks what
the kernel's rules say must happen, with the model's invariants after
(check_invariants: every memcg's usage is the pages charged to its subtree,
its LRU sizes its lists', the root's totals the node's counters).
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.engine import memcontrol as MC
from linmem.kernel.machine import Machine
from linmem.mm import vma as V
from linmem.mm.memcontrol import CgroupError, calculate_overage, effective_protection
from linmem.mm.mmap import builtin_image
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

MiB = 1 << 20
PAGE = 4096


def run(text: str):
    result = run_scenario(parse_scenario(text, "s.yaml"))
    result.machine.check_invariants()
    return result


def cg_file(result, path: str, name: str, snapshot: str | None = None) -> str:
    files = result.final_sys if snapshot is None else result.snapshots_sys[snapshot]
    return files[f"fs/cgroup{path}/{name}"]


def stat(result, path: str, snapshot: str | None = None) -> dict:
    text = cg_file(result, "" if path == "/" else path, "memory.stat", snapshot)
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


def events(result, path: str, local: bool = False) -> dict:
    text = cg_file(result, path, "memory.events.local" if local else "memory.events")
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


def kills(result) -> list[dict]:
    return [e for e in result.events if e["event"] == "oom_kill"]


# ---------------------------------------------------------------- charging

def test_every_page_is_charged_and_the_root_adds_up_to_the_node():
    result = run("""
machine: {ram: 512MiB}
files: {/data/f: 16MiB}
cgroups:
  /a: {}
  /a/x: {}
  /a/y: {}
processes:
  - name: x
    program: cat
    cgroup: /a/x
    steps:
      - mmap: {as: buf, size: 8MiB}
      - touch: {region: buf, write: true}
      - read: {file: /data/f}
      - fork:
          name: child
          steps:
            - touch: {region: buf, write: true, fraction: 0.5}
            - sleep: 1s
      - snapshot: busy
      - wait: child
  - name: y
    program: cat
    cgroup: /a/y
    steps:
      - mmap: {as: buf, size: 4MiB}
      - touch: {region: buf, write: true}
      - sleep: 2s
""")
    x, y, a = (stat(result, p, "busy") for p in ("/a/x", "/a/y", "/a"))
    current = {p: int(cg_file(result, p, "memory.current", "busy")) for p in ("/a/x", "/a/y", "/a")}
    assert current["/a"] == current["/a/x"] + current["/a/y"]       # /a has no pages of its own
    # the file was read from /a/x (and /a/x ran cat first: its text is charged there too)
    assert 16 * MiB <= x["file"] <= 16 * MiB + 64 * PAGE
    assert x["anon"] >= 3072 * PAGE and y["anon"] >= 1024 * PAGE
    for key in ("anon", "file", "kernel_stack", "pagetables", "pgfault"):
        assert a[key] == x[key] + y[key], key
    assert x["kernel_stack"] == 2 * 16384 and y["kernel_stack"] == 16384
    # the root's memory.stat is the machine's
    root = stat(result, "/", "busy")
    meminfo = {k.rstrip(":"): int(v.split()[0]) for k, v in
               (line.split(None, 1) for line in result.snapshots["busy"]["meminfo"].splitlines())}
    assert root["anon"] == meminfo["AnonPages"] * 1024
    assert root["file"] == (meminfo["Cached"] + meminfo["Buffers"] + meminfo["SwapCached"]) * 1024
    assert root["pagetables"] == meminfo["PageTables"] * 1024
    assert root["kernel_stack"] == meminfo["KernelStack"] * 1024
    # at the end the processes are gone; the file's cache stays charged to /a/x
    assert int(cg_file(result, "/a/x", "memory.current")) == x["file"]
    assert int(cg_file(result, "/a/y", "memory.current")) == 0
    assert cg_file(result, "/a/x", "cgroup.procs") == ""
    assert int(cg_file(result, "/a/x", "memory.peak")) >= current["/a/x"]


def test_files_of_a_group_and_of_the_root():
    result = run("""
machine: {ram: 256MiB}
cgroups:
  /batch: {memory.max: 64MiB, memory.high: 48MiB, memory.low: 4MiB, memory.min: 1MiB,
           memory.swap.max: 0}
processes:
  - name: app
    program: cat
    cgroup: /batch
    steps:
      - snapshot: alive
""")
    names = {k.split("/")[-1] for k in result.snapshots_sys["alive"] if "/batch/" in k}
    assert names == {"cgroup.procs", "memory.current", "memory.min", "memory.low",
                     "memory.high", "memory.max", "memory.peak", "memory.events",
                     "memory.events.local", "memory.stat", "memory.numa_stat",
                     "memory.oom.group", "memory.swap.current", "memory.swap.max",
                     "memory.swap.high", "memory.swap.peak", "memory.swap.events"}
    assert cg_file(result, "/batch", "memory.max") == f"{64 * MiB}\n"
    assert cg_file(result, "/batch", "memory.high") == f"{48 * MiB}\n"
    assert cg_file(result, "/batch", "memory.low") == f"{4 * MiB}\n"
    assert cg_file(result, "/batch", "memory.min") == f"{MiB}\n"
    assert cg_file(result, "/batch", "memory.swap.max") == "0\n"
    assert cg_file(result, "/batch", "memory.swap.high") == "max\n"
    assert cg_file(result, "/batch", "memory.events") == \
        "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\nsock_throttled 0\n"
    pid = cg_file(result, "/batch", "cgroup.procs", "alive").strip()
    assert result.snapshots["alive"][f"{pid}/cgroup"] == "0::/batch\n"
    root = {k.split("/")[-1] for k in result.snapshots_sys["alive"] if k.count("/") == 2}
    assert root == {"cgroup.procs", "memory.stat", "memory.numa_stat"}
    keys = [line.split()[0] for line in cg_file(result, "/batch", "memory.stat").splitlines()]
    assert keys[:4] == ["anon", "file", "kernel", "kernel_stack"]
    assert keys[keys.index("slab_unreclaimable") + 1] == "slab"
    assert keys[keys.index("pgdemote_proactive") + 1:keys.index("pgdemote_proactive") + 3] == \
        ["pgscan", "pgsteal"]
    assert keys[-1] == "thp_swpout_fallback" and "pgpgin" not in keys


def test_the_v1_view():
    result = run("""
machine: {ram: 256MiB, cgroup: v1}
files: {/data/f: 8MiB}
cgroups: {/batch: {memory.max: 64MiB}}
processes:
  - name: app
    program: cat
    cgroup: /batch
    steps:
      - read: {file: /data/f}
      - snapshot: alive
""")
    files = result.snapshots_sys["alive"]
    base = "fs/cgroup/memory/batch/"
    text = 3 * PAGE                                 # cat's text pages, read from the group
    assert files[base + "memory.limit_in_bytes"] == f"{64 * MiB}\n"
    assert files["fs/cgroup/memory/memory.limit_in_bytes"] == "9223372036854771712\n"
    usage = int(files[base + "memory.usage_in_bytes"])
    assert usage >= 8 * MiB and int(files[base + "memory.max_usage_in_bytes"]) >= usage
    keys = [line.split()[0] for line in files[base + "memory.stat"].splitlines()]
    assert keys == ["cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
                    "workingset_refault_anon", "workingset_refault_file", "swap", "swapcached",
                    "pgpgin", "pgpgout", "pgfault", "pgmajfault", "inactive_anon",
                    "active_anon", "inactive_file", "active_file", "unevictable",
                    "hierarchical_memory_limit", "hierarchical_memsw_limit",
                    *[f"total_{k}" for k in ("cache", "rss", "rss_huge", "shmem",
                                             "mapped_file", "dirty", "writeback",
                                             "workingset_refault_anon",
                                             "workingset_refault_file", "swap", "swapcached",
                                             "pgpgin", "pgpgout", "pgfault", "pgmajfault",
                                             "inactive_anon", "active_anon", "inactive_file",
                                             "active_file", "unevictable")]]
    values = dict(line.split() for line in files[base + "memory.stat"].splitlines())
    assert 8 * MiB <= int(values["cache"]) <= 8 * MiB + text
    assert int(values["hierarchical_memory_limit"]) == 64 * MiB
    assert files[base + "memory.oom_control"] == "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
    pid = files[base + "cgroup.procs"].strip()
    assert result.snapshots["alive"][f"{pid}/cgroup"] == "1:memory:/batch\n0::/\n"


# ------------------------------------------------------------- memory.max

def test_a_nested_limit_holds_the_child_and_ooms_in_the_parent():
    result = run("""
machine: {ram: 512MiB}
cgroups:
  /a: {memory.max: 32MiB}
  /a/b: {}
processes:
  - name: hog
    program: cat
    cgroup: /a/b
    steps:
      - mmap: {as: buf, size: 64MiB}
      - touch: {region: buf, write: true}
""")
    (kill,) = kills(result)
    assert kill["oom_memcg"] == "/a" and kill["victim_memcg"] == "/a/b"
    assert events(result, "/a") == {"low": 0, "high": 0, "max": events(result, "/a")["max"],
                                   "oom": 1, "oom_kill": 1, "oom_group_kill": 0,
                                   "sock_throttled": 0}
    assert events(result, "/a", local=True)["oom_kill"] == 0        # the victim was in /a/b
    assert events(result, "/a/b", local=True)["oom_kill"] == 1
    assert events(result, "/a", local=True)["max"] > 0              # /a's limit refused
    assert int(cg_file(result, "/a", "memory.peak")) == 32 * MiB


def test_the_limit_reclaims_the_groups_cache_not_another_groups():
    result = run("""
machine: {ram: 512MiB}
files: {/data/a: 48MiB, /data/b: 200MiB}
cgroups:
  /keep: {}
  /box: {memory.max: 32MiB}
processes:
  - name: keeper
    program: cat
    cgroup: /keep
    steps:
      - read: {file: /data/a}
      - sleep: 5s
  - name: streamer
    program: cat
    cgroup: /box
    start: 1s
    steps:
      - read: {file: /data/b}
""")
    assert 48 * MiB <= stat(result, "/keep")["file"] <= 48 * MiB + 64 * PAGE   # untouched
    assert int(cg_file(result, "/box", "memory.current")) <= 32 * MiB
    assert stat(result, "/box")["pgsteal_direct"] > 0
    assert not kills(result)


# ------------------------------------------------------------ memory.high

def test_above_high_the_group_is_reclaimed_back_not_killed():
    """With swap, memory above high is reclaimed on the way back to user
    space; the process finishes."""
    result = run("""
machine: {ram: 512MiB}
swap: [{path: /swapfile, size: 256MiB}]
cgroups: {/h: {memory.high: 32MiB}}
processes:
  - name: app
    program: cat
    cgroup: /h
    steps:
      - mmap: {as: buf, size: 64MiB}
      - touch: {region: buf, write: true}
      - snapshot: done
""")
    assert not kills(result)
    assert events(result, "/h")["high"] > 0
    current = int(cg_file(result, "/h", "memory.current", "done"))
    assert current <= 32 * MiB + 65 * PAGE          # back under high, but for one batch
    assert int(cg_file(result, "/h", "memory.swap.current", "done")) >= 30 * MiB
    assert stat(result, "/h", "done")["pswpout"] >= 30 * 256
    (app,) = result.processes
    assert app["exit"] == "code 0"


def test_above_high_without_reclaimable_memory_the_group_is_slowed_not_killed():
    """Nothing to reclaim (no swap): the overage stays and every return to
    user space sleeps, up to 2 s a time (calculate_high_delay)."""
    slow = run("""
machine: {ram: 512MiB}
cgroups: {/h: {memory.high: 16MiB}}
processes:
  - name: app
    program: cat
    cgroup: /h
    steps:
      - mmap: {as: buf, size: 32MiB}
      - touch: {region: buf, write: true, fraction: 0.5}
      - touch: {region: buf, write: true}
""")
    fast = run("""
machine: {ram: 512MiB}
processes:
  - name: app
    program: cat
    steps:
      - mmap: {as: buf, size: 32MiB}
      - touch: {region: buf, write: true, fraction: 0.5}
      - touch: {region: buf, write: true}
""")
    assert not kills(slow)
    assert events(slow, "/h")["high"] > 0
    assert slow.machine.clock > fast.machine.clock + 1.0       # slept for the overage
    assert int(cg_file(slow, "/h", "memory.peak")) >= 32 * MiB


def test_calculate_high_delay():
    """10% over high: (0.1 x 2^20)^2 x HZ >> 34 = 0.64 HZ per 64 pages."""
    over = calculate_overage(1100, 1000)
    assert over == (100 << 20) // 1000
    m = Machine(ram=256 * MiB)
    ctl = m.kernel.memcg
    memcg = ctl.mkdir("/h")
    K = m.kernel.mem.K
    K.mc[memcg.id, MC.MC_HIGH] = 1000
    K.mc[memcg.id, MC.MC_USAGE] = 1100
    assert ctl.calculate_high_delay(memcg, 64) == (over * over * 1000) >> 34
    assert ctl.calculate_high_delay(memcg, 6400) > 2000       # capped at 2 s by the caller
    K.mc[memcg.id, MC.MC_USAGE] = 0


# ------------------------------------------------------ memory.low / .min

PROTECTION = """
machine: {{ram: 512MiB}}
files: {{/data/mine: 40MiB, /data/stream: 256MiB}}
cgroups:
  /top: {{memory.max: 96MiB}}
  /top/p: {{{knob}: 48MiB}}
  /top/q: {{}}
processes:
  - name: protected
    program: cat
    cgroup: /top/p
    steps:
      - read: {{file: /data/mine}}
      - sleep: 10s
  - name: other
    program: cat
    cgroup: /top/q
    start: 1s
    steps:
      - read: {{file: /data/stream}}
      - snapshot: streamed
      - mmap: {{as: buf, size: 80MiB}}
      - touch: {{region: buf, write: true}}
"""


@pytest.mark.parametrize("knob", ["memory.low", "memory.min"])
def test_a_protected_sibling_keeps_its_memory(knob):
    result = run(PROTECTION.format(knob=knob))
    # while the other group has cache of its own to give, the protected one keeps all
    mine = stat(result, "/top/p", "streamed")["file"]
    assert 40 * MiB <= mine <= 40 * MiB + 64 * PAGE   # the file, and cat's text read first
    assert stat(result, "/top/q", "streamed")["pgsteal_direct"] > 0
    low_events = events(result, "/top/p")["low"]
    if knob == "memory.low":
        # then the other's anonymous memory (no swap) leaves only the protected
        # cache to reclaim: the low protection gives way, counted in low
        assert stat(result, "/top/p")["file"] < mine
        assert low_events > 0
        assert not kills(result)
    else:
        # memory.min never gives way: the other process is killed instead
        assert stat(result, "/top/p")["file"] == mine
        assert low_events == 0
        (kill,) = kills(result)
        assert kill["victim_name"] == "other"


def test_effective_protection_is_shared_when_siblings_overcommit():
    """effective_protection(): claims beyond the parent's protection are
    scaled down in proportion."""
    # parent protects 100 pages; two children claim 80 each
    assert effective_protection(120, 300, 80, 100, 160) == 80 * 100 // 160
    # within the parent's protection each keeps its claim, up to its usage
    assert effective_protection(50, 300, 80, 200, 130) == 50
    assert effective_protection(120, 300, 80, 200, 130) == 80


def test_the_tree_of_effective_low():
    m = Machine(ram=256 * MiB)
    ctl = m.kernel.memcg
    K = m.kernel.mem.K
    top, a, b = ctl.mkdir("/top"), ctl.mkdir("/top/a"), ctl.mkdir("/top/b")
    for memcg, usage, low in ((top, 300, 100), (a, 150, 80), (b, 150, 80)):
        K.mc[memcg.id, MC.MC_USAGE] = usage
        K.mc[memcg.id, MC.MC_LOW] = low
    ctl.calculate_protection(ctl.root)
    assert ctl.elow[top.id] == 100                  # a child of the reclaim root: its own
    assert ctl.elow[a.id] == ctl.elow[b.id] == 50   # 80 + 80 > 100: shared
    ctl.calculate_protection(top)                   # reclaim of /top: its children's own
    assert ctl.elow[a.id] == ctl.elow[b.id] == 80
    assert ctl.below_low(top, a) is False           # 150 > 80
    K.mc[[top.id, a.id, b.id], MC.MC_USAGE] = 0


# ------------------------------------------------------- swap.max, oom.group

def test_swap_max_limits_what_the_group_swaps():
    result = run("""
machine: {ram: 512MiB}
swap: [{path: /swapfile, size: 256MiB}]
cgroups: {/s: {memory.max: 32MiB, memory.swap.max: 16MiB}}
processes:
  - name: app
    program: cat
    cgroup: /s
    steps:
      - mmap: {as: buf, size: 64MiB}
      - touch: {region: buf, write: true}
""")
    assert int(cg_file(result, "/s", "memory.swap.peak")) == 16 * MiB
    swap_events = dict(line.split() for line in
                       cg_file(result, "/s", "memory.swap.events").splitlines())
    assert int(swap_events["max"]) > 0 and int(swap_events["fail"]) > 0
    (kill,) = kills(result)                        # 32 + 16 MiB < 64 MiB: killed
    assert kill["oom_memcg"] == "/s"
    assert kill["totalpages"] == (32 + 16) * 256
    assert int(cg_file(result, "/s", "memory.swap.current")) == 0    # freed with the process


def test_oom_group_kills_the_whole_group():
    result = run("""
machine: {ram: 512MiB}
cgroups: {/g: {memory.max: 48MiB, memory.oom.group: true}}
processes:
  - name: idle
    program: cat
    cgroup: /g
    steps:
      - mmap: {as: buf, size: 8MiB}
      - touch: {region: buf, write: true}
      - sleep: 10s
  - name: hog
    program: cat
    cgroup: /g
    start: 1s
    steps:
      - mmap: {as: buf, size: 64MiB}
      - touch: {region: buf, write: true}
""")
    assert {e["victim_name"] for e in kills(result)} == {"idle", "hog"}
    ev = events(result, "/g")
    assert ev["oom_kill"] == 2 and ev["oom_group_kill"] >= 1 and ev["oom"] == 1
    assert cg_file(result, "/g", "memory.oom.group") == "1\n"
    assert {p["exit"] for p in result.processes} == {"signal 9"}


# ------------------------------------------------ writes while running (API)

def _machine_with_cache(limit: str = "max"):
    m = Machine(ram=512 * MiB)
    k = m.kernel
    k.memcg.mkdir("/r")
    k.memcg.write("/r", "memory.max", limit)
    k.fs.create("/data/f", 64 * MiB, boot=True)
    task = k.spawn(builtin_image("/usr/bin/cat"), ["cat"], cgroup="/r")
    k.read_file(task, "/data/f")
    return m, k, task


def test_memory_reclaim_reclaims_what_was_asked():
    m, k, task = _machine_with_cache()
    memcg = k.memcg.get("/r")
    before = k.memcg.usage(memcg)
    got = k.memcg.write("/r", "memory.reclaim", "16M")
    assert got >= 16 * 256
    assert k.memcg.usage(memcg) <= before - 16 * 256
    assert memcg.vm_events["pgsteal_proactive"] == got
    # anonymous memory without swap cannot be reclaimed: EAGAIN
    addr = k.mmap(task, 8 * MiB, V.PROT_READ | V.PROT_WRITE, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    k.access(task, np.arange(addr, addr + 8 * MiB, PAGE, dtype=np.int64), True)
    from linmem.mm.memcontrol_stat import memory_stat
    rest = memory_stat(k, memcg)["file"]                # the rest of the cache
    k.memcg.write("/r", "memory.reclaim", str(rest))
    with pytest.raises(CgroupError, match="EAGAIN"):
        k.memcg.write("/r", "memory.reclaim", "64M")
    with pytest.raises(CgroupError, match="EINVAL"):
        k.memcg.write("/r", "memory.reclaim", "1M swappiness=300")
    m.check_invariants()


def test_lowering_max_reclaims_and_peak_resets():
    m, k, task = _machine_with_cache()
    memcg = k.memcg.get("/r")
    assert k.memcg.usage(memcg) >= 64 * 256
    k.memcg.write("/r", "memory.max", str(16 * MiB))
    assert k.memcg.usage(memcg) <= 16 * 256
    assert K_peak(k, memcg) >= 64 * 256
    k.memcg.write("/r", "memory.peak", "reset")
    assert K_peak(k, memcg) == k.memcg.usage(memcg)
    m.check_invariants()


def K_peak(k, memcg) -> int:
    return int(k.mem.K.mc[memcg.id, MC.MC_PEAK])


def test_a_moved_task_leaves_its_charges_behind():
    m, k, task = _machine_with_cache()
    old = k.memcg.get("/r")
    new = k.memcg.mkdir("/s")
    charged = k.memcg.usage(old)
    k.memcg.move(task, "/s")
    addr = k.mmap(task, 4 * MiB, V.PROT_READ | V.PROT_WRITE, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    k.access(task, np.arange(addr, addr + 4 * MiB, PAGE, dtype=np.int64), True)
    assert k.memcg.usage(old) == charged              # v2 does not move charges
    assert k.memcg.usage(new) >= 1024
    with pytest.raises(CgroupError, match="leaves"):
        k.memcg.mkdir("/s/child")
        k.memcg.move(task, "/s")
    m.check_invariants()


def test_shared_anonymous_memory_is_charged_as_shmem():
    """Shared anonymous pages are shmem (page cache, swap-backed): charged
    to the writer's memcg as file and shmem, on the anon LRU lists."""
    result = run("""
machine: {ram: 512MiB}
cgroups: {/s: {}}
processes:
  - name: app
    program: cat
    cgroup: /s
    steps:
      - mmap: {as: shm, size: 8MiB, shared: true}
      - touch: {region: shm, write: true}
      - snapshot: written
""")
    s = stat(result, "/s", "written")
    assert s["shmem"] == 8 * MiB
    assert s["file"] >= 8 * MiB
    assert s["inactive_anon"] + s["active_anon"] >= 8 * MiB
    assert s["anon"] < MiB                      # shmem is not "anon" (type-based)
