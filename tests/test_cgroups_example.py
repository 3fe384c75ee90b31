"""docs/examples/cgroups.yaml: what its comments claim, through ``linmem run``
and ``linmem cgtop``.

/batch's read stays inside its memory.max, its memory.high write reclaims
at once, the move leaves its charges behind, kswapd spares /service's
memory.low (and takes its cache once the protection is gone), and the
``at`` event's memory.max reclaims /service in spite of it. Counts from
reclaim are checked within the bounds the comments give ("about"); the
rest is exact (the model is deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "cgroups.yaml"
MiB = 1 << 20
PAGE = 4096


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cgroups-example") / "out"
    assert main(["run", str(EXAMPLE), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def events(out) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def groups(out: Path, snapshot: str, capsys) -> dict[str, dict]:
    """``linmem cgtop --json`` of a snapshot, by path."""
    capsys.readouterr()
    assert main(["cgtop", "--json", "--run", str(out / "snapshots" / snapshot)]) == 0
    return {g["path"]: g for g in json.loads(capsys.readouterr().out)}


def of(events: list[dict], kind: str, **match) -> list[dict]:
    return [e for e in events if e["event"] == kind and match.items() <= e.items()]


def test_the_batch_read_stays_inside_memory_max(out, capsys):
    g = groups(out, "batch-read", capsys)
    assert 60 * MiB < g["/batch"]["memory"] <= 64 * MiB and g["/batch"]["peak"] == 64 * MiB
    assert g["/batch"]["events"]["max"] == pytest.approx(1460, abs=20)
    assert g["/service"]["memory"] == pytest.approx(160 * MiB, abs=MiB)
    assert g["/service"]["low"] == 192 * MiB


def test_memory_high_reclaims_at_once_and_more_than_asked(out, events, capsys):
    write, = of(events, "cgroup_write", path="/batch")
    assert (write["file"], write["value"], write["pid"]) == ("memory.high", str(32 * MiB), 2)
    assert 32 * MiB < write["pages_reclaimed"] * PAGE < 48 * MiB       # about 45 MiB
    g = groups(out, "batch-high", capsys)
    assert g["/batch"]["high"] == 32 * MiB
    assert g["/batch"]["memory"] == pytest.approx(18.5 * MiB, abs=MiB)


def test_the_move_leaves_the_charges_and_kswapd_spares_the_protected(out, events, capsys):
    move, = of(events, "cgroup_move")
    assert (move["pid"], move["from"], move["to"]) == (2, "/batch", "/adhoc")
    g = groups(out, "adhoc-work", capsys)
    assert g["/batch"]["procs"] == 0 and g["/adhoc"]["procs"] == 1
    assert g["/batch"]["memory"] == 40 * 1024                # reclaimed by kswapd, still /batch's
    assert g["/adhoc"]["memory"] >= 224 * MiB
    assert g["/service"]["memory"] == pytest.approx(160 * MiB, abs=MiB)
    assert of(events, "read", pid=1)[1]["pages_read_from_disk"] == 0


def test_without_memory_low_the_service_loses_its_cache():
    text = EXAMPLE.read_text().replace("/service: {memory.low: 192MiB}", "/service: {}")
    result = run_scenario(parse_scenario(text, "nolow.yaml"))
    service = int(result.snapshots_sys["adhoc-work"]["fs/cgroup/service/memory.current"])
    assert 160 * MiB - service == pytest.approx(40 * MiB, abs=5 * MiB)
    reread = [e for e in result.events if e["event"] == "read" and e["pid"] == 1][1]
    assert reread["pages_read_from_disk"] == pytest.approx(17500, abs=500)


def test_the_at_event_limits_the_protected_group(out, events, capsys):
    max_write, peak = of(events, "cgroup_write", path="/service")
    assert max_write["time"] == peak["time"] == 5.0 and "pid" not in max_write
    assert max_write["pages_reclaimed"] == pytest.approx(6500, abs=100)
    assert peak == {**peak, "file": "memory.peak", "value": "reset"}
    g = groups(out, "service-max", capsys)["/service"]
    assert g["max"] == 144 * MiB and g["memory"] <= 144 * MiB
    assert g["peak"] == g["memory"] == pytest.approx(135 * MiB, abs=MiB)


def test_kswapd_does_the_global_reclaim(out):
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reclaim"]["pgsteal_kswapd"] == pytest.approx(19200, abs=100)
    assert summary["reclaim"]["pgsteal_direct"] == 0 and summary["oom_kill"] == 0
    assert [p["exit"] for p in summary["processes"]] == ["code 0", "code 0"]
