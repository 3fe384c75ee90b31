"""The multi-gen LRU (machine: {lru: mglru}; linmem.mm.lru_gen).

* random workloads (anonymous memory with swap, file reads and writes, fork
  and exit) keep every invariant after every step, the generation lists
  included (check_lru_gen);
* a file twice the memory read three times refaults every page on passes 2
  and 3, while an anonymous working set used between the reads stays
  resident: read(2) pages enter the oldest generation, faulted pages a
  young one, and a young PTE found by eviction promotes;
* tiers: a file read five times through read(2) survives a stream; read
  twice it does not, until its refaults make the PID controller protect
  its tier;
* anon + streaming reads by swappiness: read(2) pages are evicted from the
  oldest generation without aging, so the anon stays young and nothing is
  swapped at any swappiness; with the file mapped (young when faulted) 0
  evicts file only, 200 anon first, 60 turns to anon as the file refaults
  (the PID controller);
* the swap passes (128 MiB of anon on 109 MiB with a swapfile) take the
  same faults as the classic LRU (readahead and the swap cache are shared)
  and evict in generation order: the first pages written go first.
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.engine import pgtable as P
from linmem.engine import swapfile as SW
from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.lru_gen import debugfs_lru_gen, generations
from linmem.mm.vmstat import vm_event
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

PAGE = 4096


def _vm(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


def _swapped(machine, task, start: int, npages: int) -> np.ndarray:
    """Which pages of [start, start + npages pages) are swap entries."""
    K = machine.kernel.mem.K
    out = np.zeros(npages, dtype=bool)
    for k in range(npages):
        va = start + k * PAGE
        t, st = P.walk_pte(K.ref, task.mm.id, va, False)
        if t >= 0:
            out[k] = SW.is_swap_pte(K.pt[t, P.table_index(va, P.PAGE_SHIFT)])
    return out


# ------------------------------------------------------------ invariants

@pytest.mark.parametrize("seed", (1, 2, 3))
def test_random_workloads_keep_the_invariants(seed):
    rng = np.random.default_rng(seed)
    m = Machine(ram=64 << 20, lru="mglru")
    k = m.kernel
    k.swap.swapon("/swapfile", 128 << 20)
    first = k.spawn("/usr/bin/sleep", ["sleep"])
    live = [first]
    regions = {first.pid: []}
    for i in range(4):
        k.fs.create(f"/data/f{i}", int(rng.integers(12, 40)) << 20, boot=True)
    for _ in range(40):
        task = live[int(rng.integers(len(live)))]
        mine = regions[task.pid]
        op = rng.choice(["mmap", "touch", "touch", "write", "read", "read", "fork", "exit",
                         "munmap"])
        try:
            if op == "mmap":
                length = int(rng.integers(1024, 8192)) * PAGE
                mine.append((mmaplib.vm_mmap(task.mm.vmas, None, 0, length, 3, 0x22), length))
            elif op in ("touch", "write") and mine:
                a, n = mine[int(rng.integers(len(mine)))]
                k.access(task, np.arange(a, a + n, PAGE), op == "write")
            elif op == "read":
                k.read_file(task, f"/data/f{int(rng.integers(4))}")
            elif op == "fork" and len(live) < 5:
                child = k.fork(task)
                live.append(child)
                regions[child.pid] = list(mine)
            elif op == "exit" and task is not first:
                k.exit(task)
                parent = k.tasks.get(task.ppid)
                if parent is not None:
                    k.reap(parent, task)
                live.remove(task)
            elif op == "munmap" and mine:
                region = mine.pop(int(rng.integers(len(mine))))
                mmaplib.vm_munmap(task.mm.vmas, *region)
        except V.SyscallError:
            pass
        m.check_invariants()
    events = m.page_alloc.S.events
    assert events[vm_event("pgscan_kswapd")] + events[vm_event("pgscan_direct")] > 0
    gens = generations(m)
    assert 2 <= len(gens) <= 4
    for task in reversed(live):
        k.exit(task)
    m.check_invariants()
    assert debugfs_lru_gen(m).startswith("memcg     0 /\n node     0\n")


# ------------------------------------------------ a file twice the memory

def test_file_twice_memory_refaults_and_spares_the_anon_working_set():
    """Every page of a 256 MiB file refaults on the 2nd and 3rd reads on a
    128 MiB machine (read(2) pages enter min_seq and leave first; none is
    activated by its refault: workingset_activate counts only refaults in
    a fault). The 16 MiB anonymous working set, written before and used
    between the reads, enters max_seq - 1; its young PTEs, found when
    eviction reaches it, promote it: it is hardly swapped."""
    sc = parse_scenario("""
machine: {ram: 128MiB, lru: mglru}
swap:
  - {path: /swapfile, size: 256MiB, priority: 10}
files: {/data/f: 256MiB}
processes:
  - name: reader
    program: cat
    steps:
      - mmap: {as: ws, size: 16MiB}
      - touch: {region: ws, write: true}
      - read: {file: /data/f}
      - touch: {region: ws}
      - snapshot: pass-1
      - read: {file: /data/f}
      - touch: {region: ws}
      - snapshot: pass-2
      - read: {file: /data/f}
      - touch: {region: ws}
      - snapshot: pass-3
""", "s.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    file_pages = 256 * 256
    vm = [_vm(result.snapshots[f"pass-{i}"]["vmstat"]) for i in (1, 2, 3)]
    refaults = [v["workingset_refault_file"] for v in vm]
    assert refaults == [0, file_pages, 2 * file_pages]
    assert [v["workingset_activate_file"] for v in vm] == [0, 0, 0]
    reads = [e["pages_read_from_disk"] for e in result.events if e["event"] == "read"]
    assert reads == [file_pages] * 3
    # the working set (4096 pages) is not thrashed: few swap-ins per pass
    assert vm[2]["pswpin"] < 0.1 * 4096, vm[2]["pswpin"]


# ------------------------------------------------------ tiers

def _hot_and_streams(steps: str) -> tuple[list[int], dict[str, int]]:
    sc = parse_scenario(f"""
machine: {{ram: 128MiB, lru: mglru}}
files: {{/data/hot: 16MiB, /data/s1: 256MiB, /data/s2: 256MiB}}
processes:
  - name: r
    program: cat
    steps:
{steps}""", "tiers.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    reads = [e["pages_read_from_disk"] for e in result.events if e["event"] == "read"]
    return reads, _vm(result.final["vmstat"])


def _reads(*paths: str) -> str:
    return "".join(f"      - read: {{file: /data/{p}}}\n" for p in paths)


@pytest.mark.parametrize("times", (2, 4, 5))
def test_a_file_read_five_times_is_the_workingset(times):
    """read(2) pages stay in the oldest generation; their accesses only
    raise their tier (PG_referenced, 2 refs bits, then PG_workingset). With
    no refaults yet the controller protects no tier, so a 16 MiB file read
    2 or 4 times is evicted by a 256 MiB stream; read 5 times (every bit
    set) it is the workingset, lazily promoted by sort_folio: it survives.
    (The classic LRU activates it on the second read.)"""
    reads, _ = _hot_and_streams(_reads(*["hot"] * times, "s1", "hot"))
    assert reads[:times + 1] == [4096] + [0] * (times - 1) + [65536]
    assert reads[-1] == (0 if times >= 5 else 4096)


def test_the_pid_controller_protects_a_tier_that_refaulted():
    """The hot file read twice is evicted by the first stream (tier 1, no
    feedback yet); its refaults are recent and count in tier 1's
    refaulted[], more than tier 0's (the stream's pages never come back),
    so get_tier_idx protects tier 1 and up: read twice again, it survives
    the second stream (sorted one generation up: pgrefill)."""
    reads, vm = _hot_and_streams(_reads("hot", "hot", "s1", "hot", "hot", "s2", "hot"))
    assert reads == [4096, 0, 65536, 4096, 0, 65536, 0]
    assert vm["workingset_refault_file"] >= 4096
    assert vm["pgrefill"] >= 4096


# ------------------------------------------------------ swappiness

def _streaming(swappiness: int, mapped: bool) -> list[dict]:
    """96 MiB of anon written once, then a 120 MiB file read three times on
    214 MiB with swap, by read(2) or through a mapping; per pass: swap in
    use (pages) and vmstat."""
    if mapped:
        setup = "      - mmap: {as: f, file: /data/f, prot: r}\n"
        step = "      - touch: {region: f}\n"
    else:
        setup, step = "", "      - read: {file: /data/f}\n"
    passes = "".join(f"{step}      - snapshot: pass-{i}\n" for i in range(3))
    sc = parse_scenario(f"""
machine: {{ram: 214MiB, lru: mglru}}
sysctl: {{vm.swappiness: {swappiness}}}
swap:
  - {{path: /swapfile, size: 512MiB, priority: 10}}
files: {{/data/f: 120MiB}}
processes:
  - name: streams
    program: cat
    steps:
      - mmap: {{as: a, size: 96MiB}}
      - touch: {{region: a, write: true}}
{setup}{passes}""", "streaming.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    out = []
    for i in range(3):
        snap = result.snapshots[f"pass-{i}"]
        mem = {line.split(":")[0]: int(line.split()[1]) for line in snap["meminfo"].splitlines()}
        out.append({"swap": (mem["SwapTotal"] - mem["SwapFree"]) // 4,
                    "vm": _vm(snap["vmstat"])})
    return out


@pytest.mark.parametrize("swappiness", (0, 60, 200))
def test_reads_never_swap_at_any_swappiness(swappiness):
    """Pages read by read(2) enter the oldest file generation and are
    evicted from it; the file's min_seq never advances, so no aging is
    needed (should_run_aging) and the anon written once stays in
    max_seq - 1, out of reach: no swap at any swappiness, every page of
    passes 2 and 3 refaults. (The classic LRU also never swaps on the
    first pass, by cache_trim_mode, but does on re-reads that refault.)"""
    run = _streaming(swappiness, mapped=False)
    assert [r["swap"] for r in run] == [0, 0, 0]
    assert [r["vm"]["workingset_refault_file"] for r in run] == [0, 30720, 61440]


def test_swappiness_decides_which_type_is_evicted():
    """The same file mapped and touched: its pages enter young (a fault),
    so both types age and get_type_to_scan chooses. swappiness 0: file
    only, never a swap, (nearly) every page of passes 2 and 3 refaults
    (the page-table walk promotes the few pages touched twice between two
    agings); 200: anon
    first, the anonymous memory (never used again) is swapped and the file
    then stays cached (no refaults); 60: the PID controller starts with
    file (no refaults yet) and turns to anon once the file refaults, which
    then refaults less than at 0."""
    runs = {s: _streaming(s, mapped=True) for s in (0, 60, 200)}
    swap = {s: runs[s][-1]["swap"] for s in runs}
    refaults = {s: runs[s][-1]["vm"]["workingset_refault_file"] for s in runs}
    assert [r["swap"] for r in runs[0]] == [0, 0, 0] and refaults[0] >= 0.99 * 2 * 30720
    assert runs[200][0]["swap"] > 10000 and refaults[200] == 0
    assert runs[60][0]["swap"] < runs[200][0]["swap"]           # file first at 60
    assert runs[60][0]["swap"] < runs[60][1]["swap"] and swap[60] > 10000
    assert 0 < refaults[60] < refaults[0]


# ------------------------------------------------------ the swap passes

def _passes(lru: str) -> list[dict]:
    sc = parse_scenario(f"""
machine: {{ram: 109MiB, lru: {lru}}}
swap:
  - {{path: /swapfile, size: 512MiB, priority: 10, type: file}}
processes:
  - name: passes
    program: cat
    steps:
      - mmap: {{as: a, size: 128MiB}}
      - touch: {{region: a, write: true}}
      - snapshot: pass-1
      - touch: {{region: a, write: true}}
      - snapshot: pass-2
""", "passes.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    out, before = [], {}
    for name in ("pass-1", "pass-2"):
        vm = _vm(result.snapshots[name]["vmstat"])
        out.append({k: v - before.get(k, 0) for k, v in vm.items()})
        before = vm
    return out


def test_swap_passes_fault_as_the_classic_lru():
    """Faults, swap-ins and swap readahead are the same mechanism under both
    LRUs: pass 1 takes a minor fault per page, pass 2 one major fault per 8
    swap-ins (VMA readahead, page-cluster 3), the rest swap-cache hits."""
    mg, classic = _passes("mglru"), _passes("classic")
    for m, c in zip(mg, classic):
        assert m["pgfault"] == c["pgfault"] == 32768
    assert mg[0]["pgmajfault"] == 0
    assert abs(mg[1]["pgmajfault"] - classic[1]["pgmajfault"]) <= 0.01 * classic[1]["pgmajfault"]
    assert 7.95 <= mg[1]["pswpin"] / mg[1]["pgmajfault"] <= 8.0
    assert abs(mg[0]["pswpout"] - classic[0]["pswpout"]) <= 0.05 * classic[0]["pswpout"]
    assert mg[1]["workingset_refault_anon"] == mg[1]["pswpin"]


def test_eviction_follows_generation_order():
    """128 MiB written in order on 109 MiB: the pages written first are in
    the oldest generations and are the ones swapped out; the last written
    are resident, in the youngest."""
    m = Machine(ram=109 << 20, lru="mglru")
    k = m.kernel
    k.swap.swapon("/swapfile", 512 << 20)
    task = k.spawn("/usr/bin/cat", ["cat"])
    n = 32768
    a = mmaplib.vm_mmap(task.mm.vmas, None, 0, n * PAGE, 3, 0x22)
    k.access(task, np.arange(a, a + n * PAGE, PAGE), True)
    m.check_invariants()
    swapped = _swapped(m, task, a, n)
    assert swapped.sum() > 10000
    first_quarter, last_quarter = swapped[:n // 4].mean(), swapped[-n // 4:].mean()
    assert first_quarter > 0.95 and last_quarter < 0.05
    gens = generations(m)
    assert gens[-1][2] + gens[-2][2] > 0                 # the young hold anon
