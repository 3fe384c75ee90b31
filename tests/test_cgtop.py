"""``linmem cgtop``: systemd-cgtop's memory view of the cgroup tree a run wrote.

The trees come from one run (v2) and the same run shown as v1; the numbers
the tool prints are checked against the files it read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.tools.cgtop import Group, format_bytes, ordered
from linmem.workload.runner import run_scenario, write_outputs
from linmem.workload.scenario import parse_scenario

MiB = 1 << 20

SCENARIO = """\
machine: {{ram: 256MiB, cgroup: {version}}}
files: {{/data/f: 32MiB}}
cgroups:
  /a: {{memory.max: 16MiB}}
  /p/q: {{memory.low: 8MiB, memory.high: 64MiB}}
processes:
  - name: reader
    program: cat
    cgroup: /a
    steps:
      - read: {{file: /data/f}}
      - sleep: 1s
  - name: worker
    program: cat
    cgroup: /p/q
    steps:
      - mmap: {{as: buf, size: 24MiB}}
      - touch: {{region: buf, write: true}}
      - snapshot: busy
      - sleep: 2s
"""


def _tree(tmp_path_factory, version: str) -> Path:
    out = tmp_path_factory.mktemp(f"cg{version}") / "out"
    write_outputs(run_scenario(parse_scenario(SCENARIO.format(version=version), "s.yaml")), out)
    return out


@pytest.fixture(scope="module")
def v2(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory, "v2")


@pytest.fixture(scope="module")
def v1(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory, "v1")


def cgtop(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["cgtop", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, list[str]]:
    """The table's rows by path (the two header lines skipped)."""
    return {line.split()[0]: line.split() for line in out.splitlines()[2:]}


def as_json(capsys, *args: str) -> list[dict]:
    code, out, _ = cgtop(capsys, "--json", *args)
    assert code == 0
    return json.loads(out)


def read(tree: Path, rel: str) -> str:
    return (tree / rel).read_text().strip()


# ------------------------------------------------------------------------- v2

def test_the_table_of_a_run(v2, capsys):
    code, out, err = cgtop(capsys, "--run", str(v2 / "snapshots/busy"))
    assert code == 0 and err == ""
    header = out.splitlines()[1].split()
    assert header[:9] == ["Control", "Group", "Procs", "Memory", "High", "Max", "Low", "Peak",
                          "Swap"]
    assert out.splitlines()[0].split() == ["events"] * 5
    assert header[9:] == ["low", "high", "max", "oom", "oom_kill"]
    table = rows(out)
    # by memory, a parent before its children: /, /p (24 MiB), /p/q, /a (at most 16 MiB)
    assert list(table) == ["/", "/p", "/p/q", "/a"]
    assert table["/"][1] == "2" and table["/p"][1] == "1" and table["/a"][1] == "1"
    assert table["/a"][3:6] == ["max", "16M", "0B"] and table["/p/q"][3:6] == ["64M", "max", "8M"]
    assert table["/"][3:8] == ["-"] * 5               # the root has no such files
    sys_a = v2 / "snapshots/busy/sys/fs/cgroup/a"
    assert table["/a"][2] == format_bytes(int(read(sys_a, "memory.current")))
    events = dict(line.split() for line in (sys_a / "memory.events").read_text().splitlines())
    assert table["/a"][8:] == [events[k] for k in ("low", "high", "max", "oom", "oom_kill")]
    assert int(events["max"]) > 0                       # the read was reclaimed inside /a


def test_the_root_uses_the_proc_trees_meminfo(v2, capsys):
    busy = v2 / "snapshots/busy"
    meminfo = dict(line.split(":") for line in (busy / "proc/meminfo").read_text().splitlines())
    kb = {k: int(v.split()[0]) for k, v in meminfo.items()}
    root, = [g for g in as_json(capsys, "--run", str(busy), "--depth", "0")]
    assert root["path"] == "/" and root["memory"] == (kb["MemTotal"] - kb["MemAvailable"]) * 1024
    # --proc defaults to the proc directory beside --sys
    again = as_json(capsys, "--sys", str(busy / "sys"), "--depth", "0")
    assert again == [root]


def test_json_has_every_column_in_bytes(v2, capsys):
    groups = {g["path"]: g for g in as_json(capsys, "--run", str(v2 / "snapshots/busy"))}
    a = groups["/a"]
    assert (a["max"], a["high"], a["low"]) == (16 * MiB, "max", 0)
    assert a["memory"] == int(read(v2, "snapshots/busy/sys/fs/cgroup/a/memory.current"))
    assert a["peak"] >= a["memory"] and a["swap"] == 0
    assert set(a["events"]) == {"low", "high", "max", "oom", "oom_kill"}
    assert groups["/p"]["max"] == "max" and groups["/p/q"]["low"] == 8 * MiB
    assert groups["/"]["max"] is None and groups["/"]["events"]["max"] is None


def test_orders_raw_depth_and_a_subtree(v2, capsys):
    busy = str(v2 / "snapshots/busy")
    assert list(rows(cgtop(capsys, "--run", busy, "-p")[1])) == ["/", "/a", "/p", "/p/q"]
    assert list(rows(cgtop(capsys, "--run", busy, "--order", "path")[1])) == \
        ["/", "/a", "/p", "/p/q"]
    assert list(rows(cgtop(capsys, "--run", busy, "--depth", "1")[1])) == ["/", "/p", "/a"]
    assert list(rows(cgtop(capsys, "--run", busy, "/p")[1])) == ["/p", "/p/q"]
    raw = rows(cgtop(capsys, "--run", busy, "-r")[1])
    assert raw["/a"][4] == str(16 * MiB)


def test_iterations(v2, capsys):
    code, out, _ = cgtop(capsys, "--run", str(v2), "--json", "-n", "2", "-d", "0.01")
    first, second = out.splitlines()
    assert code == 0 and json.loads(first) == json.loads(second)
    # after the run: everyone has exited, the file cache stays charged to /a
    groups = {g["path"]: g for g in json.loads(first)}
    assert groups["/a"]["procs"] == 0 and groups["/a"]["memory"] > 0


def test_the_tool_changes_nothing(v2, capsys):
    def contents():
        return {p: p.read_bytes() for p in sorted((v2 / "sys").rglob("*")) if p.is_file()}
    before = contents()
    cgtop(capsys, "--run", str(v2))
    assert contents() == before


# ------------------------------------------------------------------------- v1

def test_the_v1_layout(v1, capsys):
    groups = {g["path"]: g for g in as_json(capsys, "--run", str(v1 / "snapshots/busy"))}
    a = groups["/a"]
    base = v1 / "snapshots/busy/sys/fs/cgroup/memory/a"
    assert a["memory"] == int(read(base, "memory.usage_in_bytes"))
    assert a["max"] == 16 * MiB and groups["/p"]["max"] == "max"
    assert a["high"] is None and a["low"] is None        # v1 has neither
    assert a["peak"] == int(read(base, "memory.max_usage_in_bytes"))
    assert a["events"]["max"] == int(read(base, "memory.failcnt")) > 0
    assert a["events"]["oom_kill"] == 0 and a["events"]["low"] is None
    assert list(groups) == ["/", "/p", "/p/q", "/a"]


# ----------------------------------------------------------------- bad trees

@pytest.fixture
def broken(v2, tmp_path) -> Path:
    """A copy of the v2 run's tree to spoil."""
    shutil.copytree(v2, tmp_path / "out")
    return tmp_path / "out"


@pytest.mark.parametrize("spoil,where,what", [
    (lambda t: shutil.rmtree(t / "sys"), "sys", "no such directory"),
    (lambda t: shutil.rmtree(t / "sys/fs/cgroup"), "sys/fs/cgroup", "no cgroup tree here"),
    (lambda t: (t / "sys/fs/cgroup/a/memory.current").write_text("lots\n"),
     "sys/fs/cgroup/a/memory.current:1", "expected a number of bytes, got 'lots'"),
    (lambda t: (t / "sys/fs/cgroup/a/memory.max").write_text("-1\n"),
     "sys/fs/cgroup/a/memory.max:1", "expected max or a number of bytes"),
    (lambda t: (t / "sys/fs/cgroup/a/memory.events").write_text("low 0\nhigh\n"),
     "sys/fs/cgroup/a/memory.events:2", "expected 'key value', got 'high'"),
    (lambda t: (t / "sys/fs/cgroup/cgroup.procs").write_text("1\nx\n"),
     "sys/fs/cgroup/cgroup.procs:2", "expected a PID, got 'x'"),
    (lambda t: (t / "proc/meminfo").write_text("MemTotal: 1 kB\n"),
     "proc/meminfo", "no MemAvailable line"),
])
def test_a_bad_tree_is_one_line_and_status_2(broken, capsys, spoil, where, what):
    spoil(broken)
    code, out, err = cgtop(capsys, "--run", str(broken))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"linmem: {broken / where}: ") and what in err


@pytest.mark.parametrize("args,what", [
    (["--run", "X", "--sys", "Y"], "give --run DIR, or --proc and --sys, not both"),
    (["--run", "X", "batch"], "expected a cgroup path such as / or /batch, got 'batch'"),
    (["--run", "X", "/nope"], "no cgroup /nope in this tree"),
    (["--run", "X", "--depth", "-1"], "linmem cgtop: Invalid value for '--depth': -1"),
    (["--run", "X", "--order", "cpu"], "linmem cgtop: Invalid value for '--order': 'cpu'"),
])
def test_bad_arguments_end_in_one_line_and_status_2(v2, capsys, args, what):
    """Our own refusals are one line; click's add its usage lines before."""
    args = [str(v2) if a == "X" else a for a in args]
    code, out, err = cgtop(capsys, *args)
    assert code == 2 and out == "" and "Traceback" not in err
    assert what in err.strip().splitlines()[-1]


# ----------------------------------------------------------- systemd's rules

@pytest.mark.parametrize("n,text", [
    (0, "0B"), (1023, "1023B"), (1024, "1K"), (1536, "1.5K"), (64 * MiB, "64M"),
    (64 * MiB + 100 * 1024, "64M"), (3 * (1 << 30) // 2, "1.5G"), (5 * MiB + 1023 * 1024, "5.9M"),
    (1 << 60, "1E"),
])
def test_format_bytes_as_systemd(n, text):
    assert format_bytes(n) == text


def test_a_parent_comes_before_its_children_whatever_its_memory():
    groups = [Group("/a", memory=5), Group("/", memory=None), Group("/a/b", memory=9),
              Group("/c", memory=7), Group("/d", memory=None)]
    assert [g.path for g in ordered(groups)] == ["/", "/c", "/a", "/a/b", "/d"]
    assert [g.path for g in ordered(groups, "path")] == ["/", "/a", "/a/b", "/c", "/d"]
    for g, procs in zip(groups, (1, None, 1, 3, 2)):
        g.procs = procs
    assert [g.path for g in ordered(groups, "tasks")] == ["/", "/c", "/d", "/a", "/a/b"]
