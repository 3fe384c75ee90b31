"""The ``cgroup`` and ``cgroup_move`` steps and the ``cgroup`` at-event:
control files written while a scenario runs, and processes moved.

Each write is a ``cgroup_write`` event (with the pages it reclaimed, or the
errno the kernel refused it with) and shows in the sys tree; a move is a
``cgroup_move`` event and leaves the charges where they were made; a step
takes T_SYSCALL. Malformed steps are one line with the place, exit 2.
"""

from __future__ import annotations

import pytest

from linmem.cli import main
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import Scenario, parse_scenario
from linmem.workload.steps import T_SYSCALL

MiB = 1 << 20
PAGE = 4096

HEAD = """\
machine: {ram: 256MiB}
files: {/data/f: 32MiB}
cgroups:
  /a: {memory.max: 64MiB}
  /b: {}
  /p/q: {}
processes:
  - name: app
    program: cat
    cgroup: /a
    steps:
      - read: {file: /data/f}
"""


def scenario(*steps: str, at: str = "", head: str = HEAD) -> str:
    """HEAD (a process in /a that has read a 32 MiB file) and more steps."""
    text = head + "".join(f"      - {s}\n" for s in steps)
    return text + (f"at:\n{at}" if at else "")


def run(text: str):
    result = run_scenario(parse_scenario(text, "s.yaml"))
    result.machine.check_invariants()
    return result


def events(result, kind: str) -> list[dict]:
    return [e for e in result.events if e["event"] == kind]


def cg(result, path: str, name: str, snapshot: str | None = None) -> str:
    files = result.final_sys if snapshot is None else result.snapshots_sys[snapshot]
    return files[f"fs/cgroup{path}/{name}"]


def current(result, path: str, snapshot: str | None = None) -> int:
    return int(cg(result, path, "memory.current", snapshot))


# ------------------------------------------------------------------- writes

def test_a_step_writes_its_files_in_order_each_an_event():
    result = run(scenario(
        "cgroup: {path: /a, memory.high: 48MiB, memory.low: 4MiB, memory.min: 1MiB, "
        "memory.swap.max: 0, memory.oom.group: true, memory.max: max}",
        "snapshot: written"))
    writes = events(result, "cgroup_write")
    assert [(e["file"], e["value"]) for e in writes] == [
        ("memory.high", str(48 * MiB)), ("memory.low", str(4 * MiB)),
        ("memory.min", str(MiB)), ("memory.swap.max", "0"), ("memory.oom.group", "1"),
        ("memory.max", "max")]
    assert {e["pid"] for e in writes} == {1} and {e["path"] for e in writes} == {"/a"}
    assert "pages_reclaimed" in writes[0] and "pages_reclaimed" not in writes[1]
    for name, text in (("memory.high", f"{48 * MiB}\n"), ("memory.low", f"{4 * MiB}\n"),
                       ("memory.min", f"{MiB}\n"), ("memory.swap.max", "0\n"),
                       ("memory.oom.group", "1\n"), ("memory.max", "max\n")):
        assert cg(result, "/a", name, "written") == text, name
    # one system call's time for the whole step, whatever it wrote
    snap = events(result, "snapshot")[0]
    assert snap["time"] == pytest.approx(writes[0]["time"] + T_SYSCALL)


def test_lowering_memory_max_reclaims_the_groups_cache():
    result = run(scenario("snapshot: before", "cgroup: {path: /a, memory.max: 8MiB}",
                          "snapshot: after"))
    write, = events(result, "cgroup_write")
    assert current(result, "/a", "before") >= 32 * MiB
    assert current(result, "/a", "after") <= 8 * MiB
    assert write["pages_reclaimed"] * PAGE >= 24 * MiB


def test_memory_reclaim_and_peak_reset():
    result = run(scenario(
        "cgroup: {path: /a, memory.reclaim: 8MiB}",
        "cgroup: {path: /a, memory.reclaim: {size: 4MiB, swappiness: max}}",
        "cgroup: {path: /, memory.reclaim: {size: 4MiB, swappiness: 0}}",
        "cgroup: {path: /a, memory.peak: reset}", "snapshot: reset"))
    first, anon_first, root, peak = events(result, "cgroup_write")
    assert first["value"] == str(8 * MiB) and first["pages_reclaimed"] * PAGE >= 8 * MiB
    # without swap, get_scan_count reclaims file pages whatever the swappiness
    assert anon_first["value"] == f"{4 * MiB} swappiness=max"
    assert anon_first["pages_reclaimed"] * PAGE >= 4 * MiB
    assert root["path"] == "/" and root["pages_reclaimed"] * PAGE >= 4 * MiB
    assert peak["value"] == "reset" and "pages_reclaimed" not in peak
    assert cg(result, "/a", "memory.peak", "reset") == cg(result, "/a", "memory.current",
                                                           "reset")


def test_a_refused_memory_reclaim_is_an_event_and_the_process_goes_on():
    result = run(scenario("mmap: {as: buf, size: 8MiB}", "touch: {region: buf, write: true}",
                          "cgroup: {path: /a, memory.reclaim: 64MiB}", "snapshot: after"))
    write, = events(result, "cgroup_write")
    assert write["errno"] == "EAGAIN" and "pages_reclaimed" not in write
    assert "of 67108864 bytes reclaimed" in write["message"]
    assert events(result, "snapshot") and result.processes[0]["exit"] == "code 0"
    assert current(result, "/a", "after") >= 8 * MiB     # the anonymous pages stay


def test_an_at_event_writes_with_no_process_and_takes_no_time():
    result = run(scenario("sleep: 2s",
                          at="  - {time: 1s, cgroup: {path: /a, memory.max: 16MiB}}\n"
                             "  - {time: 1s, snapshot: limited}\n"))
    write, = events(result, "cgroup_write")
    assert write["time"] == 1.0 and "pid" not in write
    assert write["file"] == "memory.max" and write["pages_reclaimed"] * PAGE >= 16 * MiB
    assert cg(result, "/a", "memory.max", "limited") == f"{16 * MiB}\n"
    assert current(result, "/a", "limited") <= 16 * MiB
    assert events(result, "snapshot")[0]["time"] == 1.0


def test_an_at_event_that_leaves_no_room_kills_in_the_group():
    result = run(scenario("mmap: {as: buf, size: 16MiB}", "touch: {region: buf, write: true}",
                          "sleep: 2s", at="  - {time: 1s, cgroup: {path: /a, memory.max: 4MiB}}\n"))
    kill, = events(result, "oom_kill")
    assert kill["oom_memcg"] == "/a" and kill["invoker_pid"] == 0
    assert result.processes[0]["exit"] == "signal 9"
    assert events(result, "cgroup_write")[0]["time"] == 1.0


def test_a_step_whose_limit_kills_the_writer_ends_it_after_the_write():
    result = run(scenario("mmap: {as: buf, size: 16MiB}", "touch: {region: buf, write: true}",
                          "cgroup: {path: /a, memory.max: 4MiB, memory.high: 2MiB}",
                          "snapshot: never"))
    kill, = events(result, "oom_kill")
    assert kill["victim"] == kill["invoker_pid"] == 1
    write, = events(result, "cgroup_write")             # memory.high is never written
    assert write["file"] == "memory.max" and "pages_reclaimed" not in write
    assert result.processes[0]["exit"] == "signal 9" and not events(result, "snapshot")


def test_the_v1_view_shows_the_writes():
    head = HEAD.replace("machine: {ram: 256MiB}", "machine: {ram: 256MiB, cgroup: v1}")
    result = run(scenario("cgroup: {path: /a, memory.max: 16MiB}", head=head))
    assert result.final_sys["fs/cgroup/memory/a/memory.limit_in_bytes"] == f"{16 * MiB}\n"


# -------------------------------------------------------------------- moves

def test_a_moved_process_leaves_its_charges_behind():
    result = run(scenario("snapshot: read", "cgroup_move: /b", "mmap: {as: buf, size: 8MiB}",
                          "touch: {region: buf, write: true}", "snapshot: moved"))
    move, = events(result, "cgroup_move")
    assert (move["from"], move["to"], move["pid"]) == ("/a", "/b", 1)
    assert current(result, "/a", "moved") == current(result, "/a", "read")   # the cache stays
    assert current(result, "/b", "moved") >= 8 * MiB                         # new pages here
    assert cg(result, "/b", "cgroup.procs", "moved") == "1\n"
    assert cg(result, "/a", "cgroup.procs", "moved") == ""
    assert result.snapshots["moved"]["1/cgroup"] == "0::/b\n"


def test_a_process_may_move_to_the_root():
    result = run(scenario("cgroup_move: /", "snapshot: moved"))
    assert "errno" not in events(result, "cgroup_move")[0]
    assert result.snapshots["moved"]["1/cgroup"] == "0::/\n"


def test_a_move_refused_at_run_time_is_an_event():
    sc = parse_scenario(scenario("cgroup_move: /b", "snapshot: after"), "s.yaml")
    sc.cgroups["/b/c"] = sc.cgroups["/b"]           # /b has a child by the time it runs
    result = run_scenario(sc)
    move, = events(result, "cgroup_move")
    assert move["errno"] == "EBUSY" and "child cgroups" in move["message"]
    assert result.snapshots["after"]["1/cgroup"] == "0::/a\n"
    assert result.processes[0]["exit"] == "code 0"


def test_steps_and_events_dump_as_written():
    sc = parse_scenario(scenario(
        "cgroup: {path: /a, memory.peak: reset, memory.reclaim: {size: 1MiB, swappiness: 10}}",
        "cgroup_move: /b", at="  - {time: 1s, cgroup: {path: /p, memory.high: max}}\n"),
        "s.yaml")
    again = Scenario.model_validate(sc.model_dump(by_alias=True))
    assert again.model_dump() == sc.model_dump()
    assert again.processes[0].steps[1].args.writes() == [
        ("memory.peak", "reset"), ("memory.reclaim", f"{MiB} swappiness=10")]


# ---------------------------------------------------------- malformed input

STEP_LINE = HEAD.count("\n") + 1          # the line of the first added step
BAD = [
    ("unknown-file", "cgroup: {path: /a, memory.maxx: 1MiB}",
     "processes[0].steps[1].cgroup.memory.maxx", "did you mean 'memory.max'?"),
    ("bad-size", "cgroup: {path: /a, memory.max: lots}",
     "processes[0].steps[1].cgroup.memory.max", "expected max or a size"),
    ("unlisted", "cgroup: {path: /nope, memory.max: 1MiB}",
     "processes[0].steps[1].cgroup.path", "no cgroup '/nope': list it under `cgroups`"),
    ("no-file", "cgroup: {path: /a}", "processes[0].steps[1].cgroup", "at least one file"),
    ("no-path", "cgroup: {memory.max: 1MiB}", "processes[0].steps[1].cgroup.path",
     "missing required key 'path'"),
    ("swappiness", "cgroup: {path: /a, memory.reclaim: {size: 1MiB, swappiness: 300}}",
     "processes[0].steps[1].cgroup.memory.reclaim.swappiness", "0..200 or max, got 300"),
    ("reclaim-zero", "cgroup: {path: /a, memory.reclaim: 0}",
     "processes[0].steps[1].cgroup.memory.reclaim", "greater than 0"),
    ("peak", "cgroup: {path: /a, memory.peak: now}",
     "processes[0].steps[1].cgroup.memory.peak", "expected 'reset', got 'now'"),
    ("null", "cgroup: {path: /a, memory.high: null}",
     "processes[0].steps[1].cgroup.memory.high", "got None"),
    ("oom-group", "cgroup: {path: /a, memory.oom.group: 2}",
     "processes[0].steps[1].cgroup.memory.oom.group", "expected true or false"),
    ("root-max", "cgroup: {path: /, memory.max: 1MiB}",
     "processes[0].steps[1].cgroup.memory.max", "the root cgroup has no memory.max"),
    ("move-inner", "cgroup_move: /p", "processes[0].steps[1].cgroup_move",
     "cgroup '/p' has child cgroups (/p/q)"),
    ("move-unknown", "cgroup_move: /zz", "processes[0].steps[1].cgroup_move", "no cgroup '/zz'"),
    ("move-relative", "cgroup_move: b", "processes[0].steps[1].cgroup_move",
     "expected a cgroup path"),
    ("empty", "cgroup:", "processes[0].steps[1]", "step 'cgroup' needs a value"),
]


@pytest.mark.parametrize("step,path,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_step_is_one_line_with_its_place(tmp_path, capsys, step, path, fragment):
    where = f"{STEP_LINE}: {path}"
    _refused(tmp_path, capsys, scenario(step), where, fragment)


@pytest.mark.parametrize("event,path,fragment", [
    ("{time: 1s, cgroup: {path: /q, memory.max: 1MiB}}", "at[0].cgroup.path", "no cgroup '/q'"),
    ("{time: 1s, cgroup: {path: /a, memory.max: 1MiB}, snapshot: s}", "at[0]",
     "exactly one of snapshot, sysctl, swapon, swapoff, cgroup"),
    ("{time: 1s, cgroup: {path: /a, memory.lo: 0}}", "at[0].cgroup.memory.lo",
     "did you mean 'memory.low'?"),
])
def test_a_malformed_event_is_one_line_with_its_place(tmp_path, capsys, event, path, fragment):
    _refused(tmp_path, capsys, scenario(at=f"  - {event}\n"), f"{STEP_LINE + 1}: {path}",
             fragment)


def _refused(tmp_path, capsys, text: str, where: str, fragment: str) -> None:
    """``linmem run`` refuses the scenario: one line, status 2, no outputs."""
    scen = tmp_path / "s.yaml"
    scen.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(scen), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"linmem: {scen}:{where}: "), err
    assert fragment in err
    assert not out.exists()
