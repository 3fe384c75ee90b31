"""Swap in the run's outputs and views: kswapd events, the timeline and
summary, /proc (meminfo, status, smaps, vmstat, swaps) and the tools.

One run of a 128 MiB machine with two swap areas (a zram device of higher
priority, then a swapfile): ``hog`` writes 160 MiB of anonymous memory, forks
``peek``, which reads the first quarter back, then forks ``idle``; while the
three live, a snapshot is taken and, at that moment, the model's own arrays
(page tables, swap_map) are walked by a slow reference here. In the first
quarter a slot is then shared by hog and idle (count 2); elsewhere by all
three (count 3), which is where the fixed point of SwapPss shows.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from linmem.cli import main
from linmem.engine import pgtable as P
from linmem.engine import swapfile as SW
from linmem.mm.vmstat import vm_event
from linmem.procfs.parse import parse_meminfo
from linmem.workload.runner import RATE_COUNTERS, Run, write_outputs
from linmem.workload.scenario import parse_scenario

SCENARIO = """\
name: swap-views
machine: {ram: 128MiB}
swap:
  - {path: /dev/zram0, size: 32MiB, priority: 10, type: zram}
  - {path: /swapfile, size: 256MiB}
processes:
  - name: hog
    program: cat
    steps:
      - mmap: {as: buf, size: 160MiB}
      - touch: {region: buf, write: true}
      - fork:
          name: peek
          steps:
            - touch: {region: buf, fraction: 0.25}
            - sleep: 2s
            - exit: 0
      - fork:
          name: idle
          steps:
            - snapshot: three
            - sleep: 1s
            - exit: 0
      - wait: peek
      - wait: idle
sample: 20ms
"""

PSS_SHIFT = 12
SWAP_EVENTS = ("pswpin", "pswpout", "swap_ra", "swap_ra_hit", "pgmajfault", "pageoutrun")
PAGE = 4096


def reference_swap(K, mm: int, vmas) -> tuple[int, int]:
    """(Swap kB, SwapPss kB) of an address space, as smaps_pte_entry sums
    them: every swap PTE counts a page in Swap and PAGE_SIZE << PSS_SHIFT
    divided by the slot's count (when 2 or more) in SwapPss, truncated to
    kB only at the end."""
    swap = pss = 0
    for start, end in vmas:
        for pmd_va in range(start & ~((1 << 21) - 1), end, 1 << 21):
            pmd_t, _st = P.walk_pmd(K.ref, mm, pmd_va, False)
            if pmd_t < 0:
                continue
            pe = int(K.pt[pmd_t, (pmd_va >> 21) & 511])
            if not pe & P._PAGE_TABLE or pe & P._PAGE_PSE:
                continue
            table = K.pt[pe >> P.PAGE_SHIFT]
            lo, hi = max(start, pmd_va), min(end, pmd_va + (1 << 21))
            for va in range(lo, hi, PAGE):
                e = int(table[(va >> 12) & 511])
                if (e & (P._PAGE_PRESENT | SW._PAGE_SWP)) != SW._PAGE_SWP:
                    continue
                count = int(K.swap_map[e >> P.PAGE_SHIFT]) & SW.COUNT_MASK
                swap += PAGE
                pss += (PAGE << PSS_SHIFT) // count if count >= 2 else PAGE << PSS_SHIFT
    return swap >> 10, (pss >> PSS_SHIFT) >> 10


class RecordingRun(Run):
    """A run that, at each snapshot, also walks the model's arrays."""

    def __init__(self, scenario):
        super().__init__(scenario)
        self.reference: dict[str, dict] = {}

    def snapshot(self, name: str) -> None:
        super().snapshot(name)
        K = self.machine.kernel.mem.K
        ref = {}
        for pid, proc in self.procs.items():
            mm = proc.task.mm
            if mm is not None:
                ref[pid] = reference_swap(K, mm.id, [(v.start, v.end) for v in mm.vmas.vmas()])
        ref["events"] = {e: int(K.events[vm_event(e)]) for e in SWAP_EVENTS}
        self.reference[name] = ref


@pytest.fixture(scope="module")
def run():
    r = RecordingRun(parse_scenario(SCENARIO))
    r.run()
    return r


@pytest.fixture(scope="module")
def result(run):
    return run.result


@pytest.fixture(scope="module")
def written(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("swap-views") / "out"
    write_outputs(run.result, out)
    return out


def kv(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


def smaps_field(text: str, label: str) -> int:
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(label + ":"))


# ------------------------------------------------------------------- events

def test_kswapd_wakes_and_sleeps_in_pairs_that_account_for_every_run(result):
    events = result.events
    vm = kv(result.final["vmstat"])
    pairs = [(a, b) for a, b in zip(events, events[1:]) if a["event"] == "kswapd_wake"]
    assert pairs, "kswapd never woke"
    assert all(b["event"] == "kswapd_sleep" and a["time"] == b["time"] for a, b in pairs)
    assert sum(e["event"] == "kswapd_sleep" for e in events) == len(pairs)
    assert sum(a["wakes"] for a, _ in pairs) == sum(b["runs"] for _, b in pairs) \
        == result.kswapd_wakes == vm["pageoutrun"]
    assert sum(b["scanned"] for _, b in pairs) == vm["pgscan_kswapd"]
    assert sum(b["reclaimed"] for _, b in pairs) == vm["pgsteal_kswapd"]
    for a, b in pairs:
        assert a["zone"] in ("DMA", "DMA32", "Normal") and a["order"] == 0
        assert 0 <= b["priority"] <= 12 and isinstance(b["balanced"], bool)


def test_kswapd_runs_of_one_step_are_coalesced(result):
    """Thousands of runs inside the big touch steps give a few events: no
    two pairs in a row share a time, and there are far fewer than runs."""
    events = result.events
    pairs = [i for i, e in enumerate(events) if e["event"] == "kswapd_wake"]
    for i, j in zip(pairs, pairs[1:]):
        assert j > i + 2 or events[j]["time"] != events[i]["time"]
    assert result.kswapd_wakes > 10 * len(pairs)


def test_coalescing_rule():
    """The rule on its own: consecutive runs at one time merge (highest zone
    and order, sums, lowest priority, last balanced); another event or a
    later time starts a new pair."""
    r = Run(parse_scenario("machine: {ram: 64MiB}\n"))
    r._kswapd("wake", {"zone": "DMA", "order": 0})
    r._kswapd("sleep", {"zone": "DMA", "scanned": 10, "reclaimed": 4, "priority": 9,
                        "balanced": False})
    r._kswapd("wake", {"zone": "DMA32", "order": 2})
    r._kswapd("sleep", {"zone": "DMA32", "scanned": 5, "reclaimed": 5, "priority": 11,
                        "balanced": True})
    ev = r.result.events[-2:]
    assert ev[0] | {"time": 0} == {"time": 0, "event": "kswapd_wake", "zone": "DMA32",
                                   "order": 2, "wakes": 2}
    assert ev[1] | {"time": 0} == {"time": 0, "event": "kswapd_sleep", "zone": "DMA32",
                                   "runs": 2, "scanned": 15, "reclaimed": 9, "priority": 9,
                                   "balanced": True}
    r.event("snapshot", name="x")
    r._kswapd("wake", {"zone": "DMA32", "order": 0})
    r._kswapd("sleep", {"zone": "DMA32", "scanned": 1, "reclaimed": 1, "priority": 12,
                        "balanced": True})
    r.machine.clock += 1.0
    r._kswapd("wake", {"zone": "DMA32", "order": 0})
    r._kswapd("sleep", {"zone": "DMA32", "scanned": 1, "reclaimed": 1, "priority": 12,
                        "balanced": True})
    kinds = [e["event"] for e in r.result.events if e["event"] != "swapon"]
    assert kinds == ["kswapd_wake", "kswapd_sleep", "snapshot"] + ["kswapd_wake",
                                                                   "kswapd_sleep"] * 2
    assert r.result.kswapd_wakes == 4


def test_swapon_events_at_boot(result):
    on = [e for e in result.events if e["event"] == "swapon"]
    assert [(e["path"], e["type"], e["pages"], e["priority"]) for e in on] == [
        ("/dev/zram0", "zram", 8191, 10), ("/swapfile", "file", 65535, -2)]


# ---------------------------------------------------------- timeline, summary

def test_timeline_has_swap_fields_counters_and_rates(written):
    rows = list(csv.DictReader(io.StringIO((written / "timeline.csv").read_text())))
    columns = set(rows[0])
    for name in ("SwapTotal", "SwapFree", "SwapCached", "pswpin", "pswpout", "pgscan_kswapd",
                 "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "allocstall_dma32",
                 "allocstall_normal", "oom_kill", "workingset_refault_anon",
                 "workingset_refault_file", "swap_ra", "swap_ra_hit", "pageoutrun",
                 "kswapd_wakes"):
        assert name in columns, name
    assert all(f"{n}_rate" in columns for n in RATE_COUNTERS)
    assert int(rows[0]["SwapTotal"]) == (8191 + 65535) * 4
    assert min(int(r["SwapFree"]) for r in rows) < int(rows[0]["SwapFree"])
    for prev, row in zip(rows, rows[1:]):
        dt = float(row["time"]) - float(prev["time"])
        for name in RATE_COUNTERS:
            expect = (int(row[name]) - int(prev[name])) / dt
            assert float(row[f"{name}_rate"]) == pytest.approx(expect, rel=1e-6, abs=1e-3)
    assert float(rows[0]["pswpout_rate"]) == 0.0


def test_summary_keeps_its_keys_and_adds_swap_totals(written, result, run):
    s = json.loads((written / "summary.json").read_text())
    for key in ("name", "seed", "seconds", "machine", "faults", "pswpin", "pswpout",
                "oom_kill", "reclaim", "allocation_failures", "panic", "processes"):
        assert key in s
    vm = kv(result.final["vmstat"])
    assert s["faults"] == {"minor": vm["pgfault"] - vm["pgmajfault"], "major": vm["pgmajfault"]}
    assert s["reclaim"]["kswapd_wakes"] == s["reclaim"]["kswapd_runs"] == vm["pageoutrun"]
    for k in ("pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct"):
        assert s["reclaim"][k] == vm[k]
    sw = s["swap"]
    assert sw["total_kb"] == (8191 + 65535) * 4 and sw["pswpout"] == vm["pswpout"] > 0
    assert (sw["swap_ra"], sw["swap_ra_hit"]) == (vm["swap_ra"], vm["swap_ra_hit"])
    assert sw["used_kb"] == 0                       # everyone exited
    timeline_peak = max(r["SwapTotal"] - r["SwapFree"] for r in result.timeline)
    three = parse_meminfo(result.snapshots["three"]["meminfo"])
    assert sw["peak_used_kb"] >= max(timeline_peak, three["SwapTotal"] - three["SwapFree"])
    assert sw["peak_used_kb"] <= sw["total_kb"]
    assert set(s["rates"]) == set(RATE_COUNTERS)
    assert s["rates"]["pswpout"]["mean"] == pytest.approx(vm["pswpout"] / s["seconds"], rel=1e-3)
    procs = {p["name"]: p for p in s["processes"]}
    for name, p in procs.items():
        status = result.snapshots["three"][f"{p['pid']}/status"]
        vmswap = int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("VmSwap:")))
        assert p["peak_swap_kb"] >= vmswap > 0, name
        assert p["major_faults"] >= 0
    assert procs["peek"]["major_faults"] > 0


# --------------------------------------------------------------------- /proc

def test_meminfo_and_proc_swaps_agree(result):
    files = result.snapshots["three"]
    mi = parse_meminfo(files["meminfo"])
    lines = files["swaps"].splitlines()
    assert lines[0] == "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"
    assert lines[1] == f"/dev/zram0{' ' * 30}partition\t32764\t\t{lines[1].split()[3]}\t\t10"
    assert lines[2].startswith(f"/swapfile{' ' * 31}file\t\t262140\t\t")
    assert lines[2].endswith("\t\t-2")
    rows = [line.split() for line in lines[1:]]
    assert mi["SwapTotal"] == sum(int(r[2]) for r in rows)
    assert mi["SwapTotal"] - mi["SwapFree"] == sum(int(r[3]) for r in rows)
    assert 0 < mi["SwapCached"] <= mi["SwapTotal"] - mi["SwapFree"]
    # the zram device, of higher priority, fills first
    assert int(rows[0][3]) >= int(rows[0][2]) - 64


def test_status_smaps_and_rollup_show_swap_as_the_page_tables_hold_it(run):
    files, ref = run.result.snapshots["three"], run.reference["three"]
    pids = [p for p in ref if p != "events"]
    assert len(pids) == 3
    shared3 = False
    for pid in pids:
        swap_kb, swap_pss_kb = ref[pid]
        status, smaps, rollup = (files[f"{pid}/{n}"] for n in ("status", "smaps", "smaps_rollup"))
        assert smaps_field(status, "VmSwap") == swap_kb
        assert smaps_field(smaps, "Swap") == smaps_field(rollup, "Swap") == swap_kb
        assert smaps_field(rollup, "SwapPss") == swap_pss_kb
        # per VMA, each line truncates on its own
        assert smaps_field(smaps, "SwapPss") <= swap_pss_kb
        shared3 |= swap_pss_kb * 3 < swap_kb * 2      # some slots have three users
    assert shared3
    total_pss = sum(ref[p][1] for p in pids)
    mi = parse_meminfo(files["meminfo"])
    # every swap PTE's slot is in use; slots held only by the swap cache add the rest
    assert total_pss <= mi["SwapTotal"] - mi["SwapFree"]


def test_vmstat_swap_counters_are_the_model_counters(run):
    vm = kv(run.result.snapshots["three"]["vmstat"])
    events = run.reference["three"]["events"]
    for name in SWAP_EVENTS:
        assert vm[name] == events[name], name
    assert vm["pswpin"] > 0 and vm["swap_ra"] > 0 and vm["swap_ra_hit"] > 0
    # a hit is a page read ahead and then faulted on: never more than were read ahead
    assert vm["swap_ra_hit"] <= vm["swap_ra"]


# --------------------------------------------------------------------- tools

def linmem(capsys, *args):
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_free_shows_the_swap_line(written, capsys):
    proc = written / "snapshots" / "three" / "proc"
    mi = parse_meminfo((proc / "meminfo").read_text())
    swap = linmem(capsys, "free", "--proc", str(proc)).splitlines()[2].split()
    assert swap == ["Swap:", str(mi["SwapTotal"]), str(mi["SwapTotal"] - mi["SwapFree"]),
                    str(mi["SwapFree"])]


def test_vmstat_si_so_are_pswpin_pswpout_per_cpu_second(written, capsys):
    """procps vmstat's first line: si = (pswpin x 4 kB x HZ + Div/2) / Div,
    Div the ticks of all CPUs since boot (an idle machine: all idle)."""
    proc = written / "snapshots" / "three" / "proc"
    vm = kv((proc / "vmstat").read_text())
    cpu = (proc / "stat").read_text().splitlines()[0].split()[1:]
    div = sum(int(x) for x in cpu[:8])
    row = linmem(capsys, "vmstat", "--proc", str(proc)).splitlines()
    header, values = row[1].split(), row[2].split()
    got = dict(zip(header, values))
    assert int(got["swpd"]) == sum(int(r.split()[3]) for r in
                                   (proc / "swaps").read_text().splitlines()[1:])
    for col, name in (("si", "pswpin"), ("so", "pswpout")):
        assert int(got[col]) == (vm[name] * 4 * 100 + div // 2) // div
    assert int(got["so"]) > 0
