"""The built-in example scenarios, ``linmem examples``, ``linmem run NAME``,
``linmem schema``, byte-identical reruns and Ctrl-C.

Every example runs in-process (the compiled kernels load once) and keeps
the invariants; what its header claims is checked where it is cheap.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from linmem.cli import main
from linmem.workload import examples as E
from linmem.workload.runner import run_scenario, write_outputs

LINMEM = [sys.executable, "-m", "linmem.cli"]
TOPICS = {"virtual-memory", "paging", "swap", "page-cache", "zones", "process-layout",
          "malloc", "lifecycle", "cgroups", "oom-killer"}


@pytest.fixture(scope="module")
def runs():
    """Every example, run once: name -> RunResult."""
    results = {}
    for ex in E.examples():
        start = time.monotonic()
        results[ex.name] = run_scenario(ex.scenario())
        results[ex.name].wall = time.monotonic() - start
    return results


def _status(result, snap: str, pid: int, field: str) -> int:
    """A kB (or count) field of /proc/PID/status in a snapshot."""
    text = result.snapshots[snap][f"{pid}/status"]
    return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))


def _meminfo(result, snap: str, field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+)", result.snapshots[snap]["meminfo"], re.M).group(1))


def _procs(result) -> dict:
    return {p["name"]: p for p in result.processes}


def _events(result, kind: str) -> list[dict]:
    return [e for e in result.events if e["event"] == kind]


# ------------------------------------------------------------ the examples

def test_the_examples_cover_the_topics_and_say_what_they_show():
    found = {e.name: e for e in E.examples()}
    assert TOPICS <= set(found)
    for ex in found.values():
        assert ex.text.startswith("# ") and ex.description.endswith("."), ex.name
        assert len(ex.text.split("\n\n")[0].splitlines()) >= 2, ex.name   # a header, not a title


@pytest.mark.parametrize("name", sorted(TOPICS | {"default"}))
def test_each_example_runs_quickly_and_keeps_the_invariants(runs, name):
    result = runs[name]
    result.machine.check_invariants()
    assert result.wall < 10, f"{name} took {result.wall:.1f} s"
    assert not result.panicked


def test_virtual_memory_claims(runs):
    r = runs["virtual-memory"]
    assert _status(r, "mapped", 1, "VmSize") - _status(r, "started", 1, "VmSize") == 262144
    assert _status(r, "mapped", 1, "VmRSS") == 0
    assert _meminfo(r, "mapped", "MemFree") == _meminfo(r, "started", "MemFree")
    assert _status(r, "read", 1, "VmRSS") == 0                   # the zero page
    assert _meminfo(r, "started", "MemFree") - _meminfo(r, "read", "MemFree") < 1024
    assert _status(r, "written", 1, "VmRSS") == 65536
    assert _status(r, "unmapped", 1, "VmSize") == _status(r, "started", 1, "VmSize")
    assert _meminfo(r, "unmapped", "Committed_AS") == _meminfo(r, "started", "Committed_AS")
    assert _events(r, "ENOMEM") and _procs(r)["lazy"]["exit"] == "code 1"
    assert _procs(r)["lazy"]["minor_faults"] == 2 * 16384


def test_paging_claims(runs):
    p = _procs(runs["paging"])
    assert (p["anon"]["minor_faults"], p["anon"]["major_faults"]) == (8192, 0)
    assert (p["mapper"]["minor_faults"], p["mapper"]["major_faults"]) == (1024, 1)
    assert (p["again"]["minor_faults"], p["again"]["major_faults"]) == (1024, 0)
    assert (p["random"]["minor_faults"], p["random"]["major_faults"]) == (0, 4096)


def test_zones_claims(runs):
    r = runs["zones"]
    wakes = _events(r, "kswapd_wake")
    assert wakes and {w["zone"] for w in wakes} == {"DMA32"}
    zoneinfo = r.snapshots["boot"]["zoneinfo"]
    assert re.search(r"zone\s+Normal\n\s+pages free\s+0\n", zoneinfo)

    def marks(snap):
        text = r.snapshots[snap]["zoneinfo"].split("zone    DMA32")[1]
        return [int(re.search(rf"^\s+{w}\s+(\d+)", text, re.M).group(1))
                for w in ("min", "low", "high")]
    before, after = marks("reclaimed"), marks("wider")
    assert after[0] == before[0] and after[1] > before[1] and after[2] > before[2]


def test_process_layout_claims(runs):
    r = runs["process-layout"]
    maps = r.snapshots["layout"]["1/maps"]
    assert "[heap]" in maps and "[stack]" in maps and "/dev/zero (deleted)" in maps
    assert re.search(r"r-xp .* /usr/bin/server$", maps, re.M)
    assert _status(r, "layout", 1, "RssFile") == 3072
    assert _status(r, "layout", 1, "RssShmem") == 8192


def test_malloc_claims(runs):
    r = runs["malloc"]

    def heap_kb(snap):
        m = re.search(r"^([0-9a-f]+)-([0-9a-f]+) .*\[heap\]$", r.snapshots[snap]["1/maps"], re.M)
        return 0 if m is None else (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
    assert heap_kb("start") == 0 and heap_kb("small") == 360
    assert heap_kb("big") == 360
    data = {s: _status(r, s, 1, "VmData") for s in ("small", "big", "big-freed", "hole")}
    assert data["big"] - data["small"] == 1028 and data["big-freed"] == data["small"]
    assert heap_kb("hole") == 360 and heap_kb("trimmed") == 132


def test_lifecycle_claims(runs):
    r = runs["lifecycle"]
    p = _procs(r)
    assert p["parent"]["minor_faults"] == 16384 and p["child"]["minor_faults"] == 4096
    assert p["child"]["exit"] == "code 3"
    for pid in (1, 2):
        assert "Pss:               32768 kB" in r.snapshots["shared"][f"{pid}/smaps_rollup"]
    assert _meminfo(r, "shared", "MemFree") == _meminfo(r, "before-fork", "MemFree")
    assert _status(r, "exec", 2, "VmRSS") == 0
    kinds = [e["event"] for e in r.events if e["event"] in ("fork", "exec", "exit", "reap")]
    assert kinds == ["exec", "fork", "exec", "exit", "reap", "exit"]
    assert r.final.get("1/stat") is None                       # everyone exited


def test_oom_killer_claims(runs):
    r = runs["oom-killer"]
    kills = _events(r, "oom_kill")
    assert [k["victim_name"] for k in kills] == ["cache", "leaker"]
    p = _procs(r)
    assert p["cache"]["exit"] == p["leaker"]["exit"] == "signal 9"
    assert p["sshd"]["exit"] == p["database"]["exit"] == "code 0"


def test_moved_examples_are_still_in_docs():
    docs = Path(__file__).resolve().parents[1] / "docs" / "examples"
    for name in ("page-cache", "swap", "cgroups"):
        assert (docs / f"{name}.yaml").read_text() == E.example(name).text


# ------------------------------------------------------ the commands

def test_examples_lists_names_and_descriptions(capsys):
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == E.names()
    assert any(line.startswith("oom-killer ") and "OOM killer" in line for line in lines)


def test_examples_show_prints_the_yaml(capsys):
    assert main(["examples", "swap", "--show"]) == 0
    assert capsys.readouterr().out == E.example("swap").text
    assert main(["examples", "swap"]) == 0
    assert "linmem run swap" in capsys.readouterr().out


def test_unknown_example_is_one_line_and_exit_2(capsys):
    assert main(["run", "no-such-example"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-example" in err and "oom-killer" in err
    assert main(["examples", "nope", "--show"]) == 2


def test_run_by_name_and_by_path_agree(tmp_path, capsys):
    by_name, by_path = tmp_path / "name", tmp_path / "path"
    assert main(["run", "malloc", "--out", str(by_name)]) == 0
    path = tmp_path / "malloc.yaml"
    path.write_text(E.example("malloc").text)
    assert main(["run", str(path), "--out", str(by_path)]) == 0
    assert _tree(by_name) == _tree(by_path)


# ------------------------------------------------------ schema

def _validate(value, schema: dict, root: dict, where: str = "") -> None:
    """A small JSON Schema check (the keywords pydantic emits), used where
    the jsonschema package is not installed."""
    if "$ref" in schema:
        schema = {**root["$defs"][schema["$ref"].split("/")[-1]],
                  **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _validate(value, option, root, where)
                return
            except AssertionError as err:
                errors.append(str(err))
        raise AssertionError(f"{where}: {value!r} matches no option ({errors})")
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
             "integer": int, "number": (int, float)}
    if kind:
        assert isinstance(value, types[kind]) and (kind in ("boolean",) or
                                                   not isinstance(value, bool)), \
            f"{where}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "const" in schema:
        assert value == schema["const"], where
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, item in value.items():
            if key in props:
                _validate(item, props[key], root, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _validate(item, schema["additionalProperties"], root, f"{where}.{key}")
            else:
                assert schema.get("additionalProperties", True) is not False, \
                    f"{where}: unknown key {key!r}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _validate(item, schema["items"], root, f"{where}[{i}]")


def test_schema_is_json_and_validates_the_examples(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Scenario" and "machine" in schema["required"]
    step = schema["$defs"]["Step"]["properties"]
    assert {"mmap", "touch", "fork", "cgroup_move", "exit"} <= set(step)
    assert "as" in schema["$defs"]["Mmap"]["properties"]
    assert "memory.max" in schema["$defs"]["CgroupLimits"]["properties"]
    assert "vm.swappiness" in schema["$defs"]["SysctlSettings"]["properties"]
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    for ex in E.examples():
        data = yaml.safe_load(ex.text)
        if jsonschema is not None:
            jsonschema.validate(data, schema)
        else:
            _validate(data, schema, schema, ex.name)
    bad = yaml.safe_load(E.example("swap").text)
    bad["machine"]["ram"] = "lots"
    with pytest.raises(AssertionError):
        _validate(bad, schema, schema)


# ------------------------------------------------------ determinism

DETERMINISM = """
machine: {ram: 128MiB}
seed: 7
swap: [{path: /swapfile, size: 128MiB}]
files: {/data/f: 64MiB}
processes:
  - name: mixer
    program: cat
    steps:
      - mmap: {as: buf, size: 160MiB}
      - touch: {region: buf, write: true}
      - touch: {region: buf, pattern: random, count: 20000, write: true}
      - fork:
          name: child
          steps:
            - touch: {region: buf, pattern: zipf, alpha: 0.9, count: 20000}
            - snapshot: child
      - read: {file: /data/f, pattern: random, block: 16KiB, count: 2000}
      - wait: child
at:
  - {time: 0.05s, snapshot: early}
sample: 10ms
"""


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (symlinks as their targets), by relative path."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            files[rel] = os.readlink(path).encode()
        elif path.is_file():
            files[rel] = path.read_bytes()
    return files


def test_same_scenario_and_seed_give_byte_identical_trees(tmp_path):
    """One run in this process, one in another with a different hash seed:
    every file of the two trees is the same, byte for byte."""
    scen = tmp_path / "mix.yaml"
    scen.write_text(DETERMINISM)
    assert main(["run", str(scen), "--out", str(tmp_path / "a")]) == 0
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([*LINMEM, "run", str(scen), "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(a) > 50 and list(a) == list(b)
    assert [name for name in a if a[name] != b[name]] == []
    assert main(["run", str(scen), "--out", str(tmp_path / "c"), "--seed", "8"]) == 0
    assert _tree(tmp_path / "c")["summary.json"] != a["summary.json"]


# ------------------------------------------------------ Ctrl-C

def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if name in p.name]


def test_ctrl_c_while_running_writes_nothing(tmp_path, monkeypatch, capsys):
    from linmem.workload import runner
    def interrupted(self, proc):
        raise KeyboardInterrupt
    monkeypatch.setattr(runner.Run, "_step", interrupted)
    assert main(["run", "malloc", "--out", str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err
    assert err == "linmem: interrupted; no outputs written\n"
    assert _leftovers(tmp_path, "out") == []


def test_ctrl_c_while_writing_leaves_no_partial_output(tmp_path, monkeypatch, capsys):
    from linmem.workload import runner
    calls = []
    real = runner.write_tree
    def write_tree(files, root):
        calls.append(root)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(files, root)
    monkeypatch.setattr(runner, "write_tree", write_tree)
    assert main(["run", "malloc", "--out", str(tmp_path / "out")]) == 130
    assert _leftovers(tmp_path, "out") == []
    # an earlier run in the same place stays as it was
    monkeypatch.setattr(runner, "write_tree", real)
    assert main(["run", "malloc", "--out", str(tmp_path / "out")]) == 0
    before = _tree(tmp_path / "out")
    calls.clear()
    monkeypatch.setattr(runner, "write_tree", write_tree)
    assert main(["run", "malloc", "--out", str(tmp_path / "out")]) == 130
    assert _leftovers(tmp_path, "out") == ["out"] and _tree(tmp_path / "out") == before
    capsys.readouterr()


def test_sigint_in_a_real_process_exits_130_without_a_traceback(tmp_path):
    """SIGINT to ``linmem run`` once its temporary output directory exists:
    exit status 130, one line, and no output (or a complete one)."""
    scen = tmp_path / "many.yaml"
    steps = "\n".join(f"      - snapshot: s{i}" for i in range(150))
    scen.write_text(f"machine: {{ram: 256MiB}}\nprocesses:\n  - name: p\n    program: cat\n"
                    f"    steps:\n{steps}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([*LINMEM, "run", str(scen), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(name.startswith(".out.") for name in os.listdir(tmp_path)):
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "linmem: interrupted; no outputs written"]
    assert _leftovers(tmp_path, "out") == []
