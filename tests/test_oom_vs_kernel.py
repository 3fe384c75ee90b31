"""The OOM killer against the real kernel's recorded runs
(tests/data/realkernel/reclaim-6.18.json, experiments "oom-victim size",
"oom-victim adj", "oom-victim self"; Linux 6.18).

The real runs: processes of the harness program (tests/realkernel/reclaim.c)
in one cgroup v1 memory group of 128 MiB (memsw = limit, no swap), each
holding written anonymous memory (48M, 24M, 16M) with its oom_score_adj,
then one more writing until the group is full. The model has no memory
cgroup OOM, so the scenarios run the same processes on a machine whose RAM
makes the same pressure, and the kill is a global OOM.

Choice of RAM (180 MiB). Every process of the harness program holds its own
pages before it starts: ``mlockall`` locks 601 anonymous pages (2404 kB
RssAnon) and 519 pages of its file mappings (2076 kB RssFile); the model's
processes do the same (a 2404 KiB anonymous mapping and a 2076 KiB program
text, both mlocked), so their rss matches the real status lines to a few
pages. In the group, the writer of "size" and "adj" wrote 7656 pages beyond
its own before the OOM (8256 anon pages in the report's task list less its
600 locked; the limit less the holders, the locked pages and ~140 pages of
kernel memory). 180 MiB of RAM (MemTotal 140040 kB: the model keeps the
rest for the firmware, memmap and kernel, and the allocator stops at the min
watermark) leaves the model's writer 7606 pages: the same room, within 1%.
RAM is matched to the room, not to the group's total: the model's
totalpages (RAM, no swap) is 35010 pages where the group's was 32768, so one
point of oom_score_adj weighs 35 pages here and 32 there.

What the kernel does and the model must do alike (mm/oom_kill.c):
oom_badness = rss + swap entries + page tables / 4096 + oom_score_adj x
(totalpages / 1000); select_bad_process kills the highest; the allocating
task is not preferred; adj -1000 is never chosen. /proc/PID/oom_score
(fs/proc/base.c proc_oom_score) = (1000 + badness x 1000 / totalpages) x 2/3
with the *global* totalpages (RAM + swap) even when the OOM is a memcg's: on
the recording machine (24 GiB, 6170914 pages) 48M adj 0 shows 668, 24M adj
400 shows 934, 16M adj 100 733, the small writer 666; the same formula with
the group's 32768 pages would give 940 / 1075 / 838 / 689, and the model
(35010 pages) shows 922 / 1071 / 832 / 688.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from linmem.mm.oom_kill import LONG_MIN, proc_oom_score
from linmem.procfs.kmsg import TASKS_HEADER, oom_report_lines
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

DATA = Path(__file__).parent / "data" / "realkernel" / "reclaim-6.18.json"
KINDS = ("size", "adj", "self")
RAM = "180MiB"
MEMCG_LIMIT_PAGES = 32768          # the group's 128 MiB: totalpages of the real memcg OOM
LOCKED_PAGES = 600                 # the harness program's own locked anon pages

# The harness program's own memory, as its mlockall(MCL_CURRENT) holds it.
OWN = """      - touch: {region: text}
      - mlock: text
      - mmap: {as: own, size: 2404KiB}
      - mlock: own
"""


@functools.lru_cache(maxsize=None)
def _record() -> dict:
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def real():
    return _record()


def _size(recorded: str) -> str:
    """"48M" in the record is 48 MiB."""
    return recorded.replace("M", "MiB")


def _scenario(processes: list, adj_override: dict | None = None) -> str:
    """The recorded experiment as a scenario: every holder writes its memory
    at once and sleeps; the writer starts with its own pages, waits until the
    holders are done (a snapshot at 0.5 s reads oom_score before the OOM),
    then writes."""
    text = f"machine: {{ram: {RAM}}}\nprograms:\n  reclaim: {{text: 2076KiB}}\nprocesses:\n"
    for i, (anon, adj, extra) in enumerate(processes):
        adj = (adj_override or {}).get(i, adj)
        text += f"  - name: p{i}\n    program: reclaim\n    oom_score_adj: {adj}\n"
        if anon != "0":
            text += f"    steps:\n{OWN}      - mmap: {{as: a, size: {_size(anon)}}}\n" \
                    f"      - touch: {{region: a, write: true}}\n      - sleep: 10s\n"
        else:
            text += f"    start: 100ms\n    steps:\n{OWN}      - sleep: 1s\n" \
                    f"      - mmap: {{as: a, size: {_size(extra)}}}\n" \
                    f"      - touch: {{region: a, write: true}}\n"
    return text + "at:\n  - {time: 0.5s, snapshot: before}\n"


@functools.lru_cache(maxsize=None)
def _run(kind: str, adj_override: tuple = ()):
    processes = _record()["results"][f"oom-victim {kind}"]["scenario"]["processes"]
    return run_scenario(parse_scenario(_scenario(processes, dict(adj_override)), "s.yaml"))


def _kills(result) -> list[dict]:
    return [e for e in result.events if e["event"] == "oom_kill"]


def _exit(recorded: dict) -> str:
    """A recorded wait4 status as the model's process summary writes it."""
    e = recorded["exit"]
    return f"signal {e['signal']}" if e["signal"] else f"code {e['status']}"


def _badness_of_row(row: dict, totalpages: int) -> int:
    """oom_badness from a report's task row (rss, swapents, pgtables_bytes, adj)."""
    if row["oom_score_adj"] == -1000:
        return LONG_MIN
    return (row["rss"] + row["swapents"] + row["pgtables_bytes"] // 4096
            + row["oom_score_adj"] * (totalpages // 1000))


def _model_rows(kill: dict) -> list[dict]:
    return [dict(c, rss=c["rss_pages"]) for c in kill["candidates"]]


def _status_pages(status: dict) -> int:
    """rss + swap + page tables in pages from /proc/PID/status (kB)."""
    return (status["VmRSS"] + status["VmSwap"] + status["VmPTE"]) // 4


def _status(text: str) -> dict:
    fields = dict(line.split(":", 1) for line in text.splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmSwap", "VmPTE")}


def _totalpages(result) -> int:
    m = result.machine
    return m.totalram_pages + m.total_swap_pages


# ------------------------------------------------------------------ the choice

@pytest.mark.parametrize("kind", KINDS)
def test_the_victim_is_the_one_the_kernel_killed(real, kind):
    """size: the 48M one; adj: the 24M one at +400; self: the writer itself.
    One kill; the writer finishes its 48M when another was killed; every
    other process lives on, as recorded."""
    r = real["results"][f"oom-victim {kind}"]
    result = _run(kind)
    kills = _kills(result)
    assert len(kills) == r["derived"]["oom_kill"] == r["derived"]["reports"] == 1
    victim_index = kills[0]["victim"] - 1                # pids 1.. in the order of the record
    assert [victim_index] == r["derived"]["killed_index"]
    assert [p["exit"] for p in result.processes] == [_exit(p) for p in r["processes"]]
    writer = next(i for i, p in enumerate(r["processes"]) if p["trigger"])
    assert result.processes[writer]["exit"] == ("signal 9" if kind == "self" else "code 0")
    assert [p["name"] for p in result.processes][victim_index] == kills[0]["victim_name"]
    result.machine.check_invariants()


@pytest.mark.parametrize("kind", KINDS)
def test_badness_ranks_as_recorded(real, kind):
    """Both sides compute badness from the report's task rows with the
    kernel's formula (the record's derived badness is exactly that, with the
    group's 32768 pages); the model's candidates rank in the recorded order
    (every pair that kept its order in all three runs; the two identical 16M
    processes of "self" swapped places between runs, and tie in the model),
    and without the adj term each is within 100 pages (0.4 MiB) of the real
    runs' range. Model vs. real: size [13440, 7284, 5232, 8749] vs.
    [13401-13405, 7246-7253, 5183-5197, 8784-8827]; adj [13440, 21284, 8732,
    8749] vs. [13408, 20042, 8390, 8789] (adj x 35 vs. x 32 pages); self
    [5232, 5232, 23727] vs. [5183, 5198, 23786-23798]."""
    r = real["results"][f"oom-victim {kind}"]
    real_rows = r["oom"][0]["tasks"]
    real_badness = r["derived"]["badness"]
    assert [_badness_of_row(t, MEMCG_LIMIT_PAGES) for t in real_rows] == real_badness

    kill = _kills(_run(kind))[0]
    totalpages = _totalpages(_run(kind))
    model_badness = [c["badness"] for c in kill["candidates"]]
    assert [_badness_of_row(t, totalpages) for t in _model_rows(kill)] == model_badness

    runs = [d["badness"] for d in r["derived_runs"]]
    n = len(real_badness)
    for i in range(n):
        for j in range(n):
            if all(b[i] > b[j] for b in runs):            # ordered in every recorded run
                assert model_badness[i] > model_badness[j], (i, j, model_badness)
    assert max(range(n), key=lambda i: model_badness[i]) == r["derived"]["highest_badness_index"]

    lo_hi = [(min(v), max(v)) for v in zip(*runs)]
    adjs = [p["adj"] for p in r["processes"]]
    for i, (lo, hi) in enumerate(lo_hi):
        model_own = model_badness[i] - adjs[i] * (totalpages // 1000)
        real_lo, real_hi = lo - adjs[i] * 32, hi - adjs[i] * 32
        assert real_lo - 100 <= model_own <= real_hi + 100, (i, model_own, real_lo, real_hi)


def test_the_writer_has_the_room_it_had_in_the_group(real):
    """The RAM of the scenarios (see the module's docstring): in "size" and
    "adj" the writer wrote 7656 pages beyond its own locked ones before the
    OOM in the group; in the model 7606 on 180 MiB."""
    for kind in ("size", "adj"):
        r = real["results"][f"oom-victim {kind}"]
        writer = next(i for i, p in enumerate(r["processes"]) if p["trigger"])
        real_room = r["oom"][0]["tasks"][writer]["rss_anon"] - LOCKED_PAGES
        kill = _kills(_run(kind))[0]
        model_room = kill["candidates"][writer]["rss_anon"] - 2404 // 4
        assert abs(model_room - real_room) <= real_room // 100, (kind, model_room, real_room)


# ------------------------------------------------------------------ oom_score

def test_proc_oom_score_is_the_kernels_formula_on_the_recorded_machine(real):
    """The recorded oom_score of every process (read before the OOM, on the
    24 GiB recording machine: totalpages = MemTotal, no swap) is what
    proc_oom_score gives for its badness from /proc/PID/status and its adj."""
    totalpages = real["kernel"]["mem_total_kb"] // 4 + real["kernel"]["swap_total_kb"] // 4
    seen = []
    for kind in KINDS:
        for p in real["results"][f"oom-victim {kind}"]["processes"]:
            badness = _status_pages(p["status"]) + p["adj"] * (totalpages // 1000)
            assert proc_oom_score(badness, totalpages) == p["oom_score"], (kind, p["pid"])
            assert p["oom_score_adj"] == p["adj"]
            seen.append(p["oom_score"])
    assert {668, 934, 733, 666} <= set(seen)


def test_proc_oom_score_divides_as_c_does():
    """Signed long division truncates towards zero: a badness of -1 is 0
    thousandths, not -1; adj -1000 (LONG_MIN) shows 0."""
    assert proc_oom_score(-1, 3000) == 666
    assert proc_oom_score(-5, 1000) == 663
    assert proc_oom_score(LONG_MIN, 1000) == 0
    assert proc_oom_score(1000, 1000) == 1333
    assert proc_oom_score(2000, 1000) == 2000


@pytest.mark.parametrize("kind", KINDS)
def test_oom_score_before_the_oom(real, kind):
    """The model's /proc/PID/oom_score, read before the writer writes, is the
    kernel's formula on its own status with totalpages = RAM + swap; its
    oom_score_adj file shows the scenario's adj. The recorded values with the
    group's totalpages instead of the 24 GiB machine's are within 25 points
    of the model's (its totalpages is 7% larger: 35010 vs. 32768 pages)."""
    r = real["results"][f"oom-victim {kind}"]
    result = _run(kind)
    snap = result.snapshots["before"]
    totalpages = _totalpages(result)
    for i, p in enumerate(r["processes"]):
        pid = i + 1
        status = _status(snap[f"{pid}/status"])
        badness = _status_pages(status) + p["adj"] * (totalpages // 1000)
        score = int(snap[f"{pid}/oom_score"])
        assert score == proc_oom_score(badness, totalpages), (kind, pid)
        assert int(snap[f"{pid}/oom_score_adj"]) == p["adj"]
        translated = proc_oom_score(_status_pages(p["status"]) + p["adj"] * 32, MEMCG_LIMIT_PAGES)
        assert abs(score - translated) <= 25, (kind, pid, score, translated)


def test_oom_score_adj_min_is_never_chosen():
    """"size" with the 48M one at -1000 (OOM_SCORE_ADJ_MIN): its oom_score is
    0, the OOM killer passes over it though it is the largest, and the
    writer, largest of the rest, is killed (oom_badness returns LONG_MIN)."""
    result = _run("size", ((0, -1000),))
    assert result.snapshots["before"]["1/oom_score"] == "0\n"
    assert result.snapshots["before"]["1/oom_score_adj"] == "-1000\n"
    kills = _kills(result)
    assert len(kills) == 1
    rows = kills[0]["candidates"]
    assert rows[0]["badness"] == LONG_MIN
    assert rows[0]["rss_pages"] == max(r["rss_pages"] for r in rows)      # the largest
    assert kills[0]["victim_name"] == "p3"                # the writer
    assert [p["exit"] for p in result.processes] == ["code 0", "code 0", "code 0", "signal 9"]
    result.machine.check_invariants()


# ------------------------------------------------------------------ the report

def _columns_end(line: str) -> list[int]:
    """Where each column of a task row ends (the name aside)."""
    return [m.end() for m in re.finditer(r"\S+", line)][:-1]


@pytest.mark.parametrize("kind", KINDS)
def test_the_report_has_the_kernels_lines_and_columns(real, kind):
    """The model's report (what `linmem run` prints) against the kernel's
    recorded lines: the same invoked line (gfp_mask in hex with its flag
    names, %pGg), "Tasks state" title and task table header, task rows with
    the same column widths, the same oom-kill summary keys (global_oom for
    the model's global OOM where the group's report says oom_memcg=) and the
    same kill line ("Out of memory:" where a memcg's says "Memory cgroup out
    of memory:"). The memcg's usage and memory.stat lines have no global
    counterpart here (a global OOM prints show_mem)."""
    real_lines = real["results"][f"oom-victim {kind}"]["oom"][0]["lines"]
    kill = _kills(_run(kind))[0]
    lines = oom_report_lines(kill)

    invoked = re.compile(r"^(\S+) invoked oom-killer: gfp_mask=0x[0-9a-f]+\(([A-Z_|0-9a-fx]+)\), "
                         r"order=(\d+), oom_score_adj=(-?\d+)$")
    assert invoked.match(real_lines[0]).group(2) == "GFP_KERNEL"
    m = invoked.match(lines[0])
    assert m and m.group(1) == "p" + str(kill["invoker_pid"] - 1)
    assert lines[0].startswith(f"p{kill['invoker_pid'] - 1} invoked oom-killer: "
                               f"gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0")

    title = real_lines.index("Tasks state (memory values in pages):")
    assert real_lines[title + 1] == TASKS_HEADER == lines[2]
    assert lines[1] == "Tasks state (memory values in pages):"
    real_rows = [line for line in real_lines if re.match(r"^\[ *\d+\] ", line)]
    rows = [line for line in lines if re.match(r"^\[ *\d+\] ", line)]
    assert len(rows) == len(real_rows)
    for mine, theirs in zip(rows, real_rows):
        assert _columns_end(mine) == _columns_end(theirs), (mine, theirs)

    def keys(line):
        return [kv.split("=")[0] for kv in line.split(":", 1)[1].split(",")]
    real_summary = next(line for line in real_lines if line.startswith("oom-kill:"))
    summary = next(line for line in lines if line.startswith("oom-kill:"))
    assert [k if k != "oom_memcg" else "global_oom" for k in keys(real_summary)] == keys(summary)
    assert summary.endswith(f",task_memcg=/,task={kill['victim_name']},pid={kill['victim']},uid=0")

    killed = re.compile(r"Killed process (\d+) \((\S+)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, "
                        r"file-rss:(\d+)kB, shmem-rss:(\d+)kB, UID:(\d+) pgtables:(\d+)kB "
                        r"oom_score_adj:(-?\d+)$")
    assert real_lines[-1].startswith("Memory cgroup out of memory: Killed process")
    assert killed.search(real_lines[-1])
    assert lines[-1].startswith("Out of memory: Killed process") and killed.search(lines[-1])
    victim = next(c for c in kill["candidates"] if c["pid"] == kill["victim"])
    assert killed.search(lines[-1]).group(4) == str(victim["rss_anon"] * 4)


# ------------------------------------------------------------------ with swap

SWAPPED = """
machine: {ram: 128MiB}
swap:
  - {path: /swapfile, size: 64MiB}
programs:
  reclaim: {text: 16KiB}
processes:
  - name: old
    program: reclaim
    steps:
      - mmap: {as: a, size: 80MiB}
      - touch: {region: a, write: true}
      - sleep: 10s
  - name: writer
    program: reclaim
    start: 1s
    steps:
      - mmap: {as: a, size: 100MiB}
      - touch: {region: a, write: true}
at:
  - {time: 0.5s, snapshot: before}
"""


def test_swap_entries_count_in_badness_when_swap_is_full():
    """128 MiB of RAM and a 64 MiB swapfile: "old" writes 80 MiB and sleeps;
    the writer's 100 MiB push old's pages out to swap until the swapfile is
    full, then the OOM killer runs. Old's resident pages are fewer than the
    writer's, but oom_badness counts its swap entries (MM_SWAPENTS) too, so
    old (rss + swapents = all its 80 MiB) is killed and the writer finishes.
    oom_score's totalpages includes the swap area's pages."""
    result = run_scenario(parse_scenario(SWAPPED, "s.yaml"))
    m = result.machine
    total_swap = m.total_swap_pages
    assert total_swap == (64 << 20) // 4096 - 1               # the header page is not swap
    kills = _kills(result)
    assert len(kills) == 1
    old, writer = kills[0]["candidates"]
    assert old["swapents"] + writer["swapents"] == total_swap   # swap is full at the OOM
    assert old["rss_pages"] < writer["rss_pages"] < old["rss_pages"] + old["swapents"]
    assert old["rss_pages"] + old["swapents"] == (80 << 20) // 4096
    assert old["badness"] == old["rss_pages"] + old["swapents"] + old["pgtables_bytes"] // 4096
    assert kills[0]["victim_name"] == "old"
    assert [p["exit"] for p in result.processes] == ["signal 9", "code 0"]
    line = oom_report_lines(kills[0])[3]
    assert line.split()[-3] == str(old["swapents"])           # the swapents column

    totalpages = m.totalram_pages + total_swap
    status = _status(result.snapshots["before"]["1/status"])
    assert int(result.snapshots["before"]["1/oom_score"]) == \
        proc_oom_score(_status_pages(status), totalpages)
    m.check_invariants()
