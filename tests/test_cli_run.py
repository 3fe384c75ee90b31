"""``linmem run``: the default scenario, the output tree, bad input, determinism."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linmem.cli import main

LINMEM = [sys.executable, "-m", "linmem.cli"]


def run_cli(*args, cwd=None):
    return subprocess.run([*LINMEM, *args], capture_output=True, text=True, cwd=cwd)


def test_help_is_quick_and_does_not_load_the_model():
    code = ("import sys, time; t = time.time(); from linmem.cli import main; "
            "main(['--help']); print(time.time() - t, 'numba' in sys.modules, "
            "'linmem.mm.page_alloc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    seconds, numba_loaded, model_loaded = out.strip().splitlines()[-1].split()
    assert numba_loaded == "False" and model_loaded == "False"
    assert float(seconds) < 0.5


def test_default_run_prints_a_summary(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "default: x86_64, 4096 MiB RAM, 2 CPUs" in out
    assert "MemTotal 4082824 kB" in out and "min_free_kbytes 67584" in out
    # the fork demo: the child's copy-on-write takes 8192 faults; THP maps 64 MiB in 32
    rows = {line.split()[1]: line.split() for line in out.splitlines()
            if line.split()[:1] and line.split()[0].isdigit()}
    assert rows["child"][2] == "8192" and rows["huge"][2] == "32"
    assert int(rows["app"][2]) > 2 * 16384


def test_run_writes_the_tree(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--out", str(out)]) == 0
    for rel in ("proc/meminfo", "proc/vmstat", "proc/zoneinfo", "proc/buddyinfo",
                "proc/pagetypeinfo", "proc/stat", "proc/sys/vm/min_free_kbytes",
                "snapshots/boot/proc/zoneinfo", "snapshots/wider-watermarks/proc/zoneinfo",
                "snapshots/child-wrote-half/proc/2/smaps",
                "timeline.csv", "events.jsonl", "summary.json"):
        assert (out / rel).is_file(), rel
    assert (out / "snapshots/child-wrote-half/proc/self").resolve().name == "1"
    assert not (out / "proc/1").exists()             # exited processes leave no directory
    assert (out / "proc/sys/vm/min_free_kbytes").read_text() == "67584\n"
    assert (out / "proc/sys/vm/watermark_scale_factor").read_text() == "100\n"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "snapshot" and kinds.count("exit") == 3 and "fork" in kinds
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["machine"]["mem_total_kb"] == 4082824
    timeline = (out / "timeline.csv").read_text().splitlines()
    assert timeline[0].startswith("time,MemTotal,MemFree,MemAvailable") and len(timeline) == 4
    # the sysctl event widened the gaps between the watermarks
    def low_minus_min(tree):
        text = (tree / "zoneinfo").read_text().split("zone   Normal")[1]
        marks = {k: int(v) for k, v in (ln.split() for ln in text.splitlines()[2:5])}
        return marks["low"] - marks["min"]
    assert low_minus_min(out / "snapshots/wider-watermarks/proc") > \
        low_minus_min(out / "snapshots/boot/proc")


def test_same_scenario_same_bytes(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", "--out", str(a)]) == 0 and main(["run", "--out", str(b)]) == 0
    cmp = filecmp.dircmp(a, b)
    def same(c):
        return not (c.left_only or c.right_only or c.diff_files) and \
            all(same(sub) for sub in c.subdirs.values())
    assert same(cmp)


def test_an_earlier_output_is_replaced_and_foreign_directories_are_kept(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--out", str(out)]) == 0
    assert main(["run", "--out", str(out)]) == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["run", "--out", str(foreign)]) == 2
    assert "is not an earlier linmem output" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


BAD = {
    "unknown key": ("machine:\n  ram: 1GiB\n  colour: blue\n", ":3: machine.colour"),
    "bad size": ("machine:\n  ram: 12XB\n", ":2: machine.ram"),
    "RAM too small": ("machine:\n  ram: 32MiB\n", ":2: machine.ram"),
    "sysctl out of range": ("machine: {ram: 1GiB}\nsysctl:\n  vm.swappiness: 300\n",
                            ":3: sysctl.vm.swappiness"),
    "wrong type": ("machine:\n  ram: 1GiB\n  cpus: two\n", ":3: machine.cpus"),
    "unknown sysctl": ("machine: {ram: 1GiB}\nsysctl:\n  vm.swapiness: 10\n", ":3: sysctl"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_give_one_line_and_exit_2(tmp_path, case):
    text, where = BAD[case]
    path = tmp_path / "scen.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"linmem: {path}{where}"), lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


def test_missing_scenario_file(tmp_path):
    proc = run_cli("run", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_bad_option_exits_2():
    proc = run_cli("run", "--no-such-option")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
