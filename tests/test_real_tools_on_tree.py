"""The real procps-ng 4.0.2 ``free`` and ``vmstat`` read the trees ``linmem run`` writes.

``linmem run`` is run as a command (the built-in scenario, and two scenario
files: a 1 GiB i386 machine whose sysctls change in ``at`` events, and a
64 GiB x86-64 machine with THP off and 4 CPUs). Then, for the final tree
(DIR/proc) and every snapshot (DIR/snapshots/NAME/proc), the real tools run in
a private mount namespace with that tree bind-mounted over /proc
(tests/realtools.py), and must print exactly what ``linmem free`` and
``linmem vmstat`` print from the same tree.

procps-ng 4.0.2 vmstat refuses to start ("Unable to create system stat
structure") unless /proc/cpuinfo can be opened; its content does not change
the report. linmem's trees have no cpuinfo, so the real vmstat is given a copy
of the tree with an empty one, and a strict xfail records the missing file.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.procfs.parse import parse_meminfo

sys.path.insert(0, str(Path(__file__).parent))
import realtools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

I386_SCENARIO = """\
name: i386-sysctl-events
seed: 3
machine:
  arch: i386
  ram: 1GiB
  cpus: 2
at:
  - {time: 0s, snapshot: boot}
  - {time: 1s, sysctl: {vm.overcommit_ratio: 80}}
  - {time: 1s, snapshot: ratio-80}
  - {time: 2s, sysctl: {vm.min_free_kbytes: 65536, vm.watermark_scale_factor: 200}}
sample: 1s
"""

BIG_SCENARIO = """\
name: big-thp-never
machine:
  arch: x86_64
  ram: 64GiB
  cpus: 4
  thp: never
at:
  - {time: 0s, snapshot: boot}
  - {time: 3s, sysctl: {vm.watermark_scale_factor: 50}}
  - {time: 3s, snapshot: wider}
sample: 1s
"""

# scenario -> (scenario text or None for the built-in one, snapshot names)
SCENARIOS = {
    "default": (None, ("boot", "wider-watermarks")),
    "i386-1GiB": (I386_SCENARIO, ("boot", "ratio-80")),
    "x86_64-64GiB": (BIG_SCENARIO, ("boot", "wider")),
}
TREES = [(s, "proc") for s in SCENARIOS] + [
    (s, f"snapshots/{snap}/proc") for s, (_, snaps) in SCENARIOS.items() for snap in snaps]
TREE_IDS = [f"{s}:{t}" for s, t in TREES]

FREE_OPTIONS = ["", "-b", "-k", "-m", "-g", "-h", "-w", "-t", "-l", "-v", "--si -h",
                "-h -w -t", "--mega"]
VMSTAT_OPTIONS = ["", "-s", "-a", "-w"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Each scenario run once with ``linmem run ... --out DIR``: name -> DIR."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, (text, _) in SCENARIOS.items():
        argv = [sys.executable, "-m", "linmem.cli", "run"]
        if text is not None:
            scenario = base / f"{name}.yaml"
            scenario.write_text(text)
            argv.append(str(scenario))
        out[name] = base / name
        proc = subprocess.run([*argv, "--out", str(out[name])], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, f"linmem run ({name}) failed: {proc.stderr}"
    return out


def _skip_unless_real(tool: str) -> None:
    reason = realtools.skip_reason(tool)
    if reason:
        pytest.skip(reason)
    version = realtools.real_version(tool)
    if "4.0.2" not in version:
        pytest.skip(f"the reference is procps-ng 4.0.2 {tool}, found {version!r}")


@pytest.fixture(scope="module")
def real_free():
    _skip_unless_real("free")


@pytest.fixture(scope="module")
def real_vmstat():
    _skip_unless_real("vmstat")


@pytest.fixture(scope="module")
def with_cpuinfo(tmp_path_factory, runs):
    """tree -> a copy of it with an empty cpuinfo, which the real vmstat must open."""
    base = tmp_path_factory.mktemp("with-cpuinfo")

    @functools.lru_cache(maxsize=None)
    def copy(tree: Path) -> Path:
        dest = base / str(len(list(base.iterdir())))
        shutil.copytree(tree, dest)
        (dest / "cpuinfo").write_text("")
        return dest

    return copy


def linmem(capsys, *args: str) -> str:
    """Run ``linmem ARGS`` in-process; it must succeed silently on stderr."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert (rc, err) == (0, ""), f"linmem {' '.join(args)}: exit {rc}: {err}"
    return out


# ------------------------------------------------------------------ the trees

@pytest.mark.parametrize("scenario,tree", TREES, ids=TREE_IDS)
def test_run_writes_the_proc_files_the_tools_read(runs, scenario, tree):
    proc = runs[scenario] / tree
    for name in ("meminfo", "vmstat", "stat", "uptime", "loadavg", "zoneinfo", "buddyinfo",
                 "pagetypeinfo", "swaps", "sys/vm/swappiness"):
        assert (proc / name).is_file(), f"{tree}/{name} is missing"


def test_snapshots_show_the_machine_at_their_time(runs):
    """The i386 run raised overcommit_ratio to 80 at 1 s, then min_free_kbytes at 2 s."""
    def at(tree: str) -> dict:
        return parse_meminfo((runs["i386-1GiB"] / tree / "meminfo").read_text())

    boot, ratio, final = at("snapshots/boot/proc"), at("snapshots/ratio-80/proc"), at("proc")
    assert boot["CommitLimit"] == (boot["MemTotal"] // 4 * 50 // 100) * 4
    assert ratio["CommitLimit"] == (ratio["MemTotal"] // 4 * 80 // 100) * 4
    assert final["CommitLimit"] == ratio["CommitLimit"]
    assert final["MemAvailable"] < ratio["MemAvailable"]       # larger reserves
    sysvm = runs["i386-1GiB"] / "proc" / "sys" / "vm"
    assert (sysvm / "min_free_kbytes").read_text() == "65536\n"
    assert (runs["i386-1GiB"] / "snapshots/boot/proc/sys/vm/overcommit_ratio").read_text() == "50\n"


def test_the_big_machine_has_thp_off_and_four_cpus(runs):
    """With THP off, khugepaged does not raise min_free_kbytes: it stays
    int_sqrt(lowmem_kbytes * 16) (calculate_min_free_kbytes)."""
    proc = runs["x86_64-64GiB"] / "proc"
    stat = (proc / "stat").read_text().splitlines()
    assert [line.split()[0] for line in stat[:6]] == ["cpu", "cpu0", "cpu1", "cpu2", "cpu3", "intr"]
    memtotal = parse_meminfo((proc / "meminfo").read_text())["MemTotal"]
    assert 62 << 20 < memtotal < 64 << 20
    min_free = int((proc / "sys" / "vm" / "min_free_kbytes").read_text())
    assert min_free == math.isqrt(memtotal * 16)


# ---------------------------------------------------------------------- free

@pytest.mark.parametrize("options", FREE_OPTIONS, ids=lambda o: o or "default")
@pytest.mark.parametrize("scenario,tree", TREES, ids=TREE_IDS)
def test_real_free_prints_what_linmem_free_prints(real_free, runs, capsys, scenario, tree, options):
    proc = runs[scenario] / tree
    expected = realtools.run_real("free", options.split(), proc)
    assert linmem(capsys, "free", "--proc", str(proc), *options.split()) == expected


# -------------------------------------------------------------------- vmstat

@pytest.mark.parametrize("options", VMSTAT_OPTIONS, ids=lambda o: o or "default")
@pytest.mark.parametrize("scenario,tree", TREES, ids=TREE_IDS)
def test_real_vmstat_prints_what_linmem_vmstat_prints(real_vmstat, runs, with_cpuinfo, capsys,
                                                      scenario, tree, options):
    proc = runs[scenario] / tree
    expected = realtools.run_real("vmstat", options.split(), with_cpuinfo(proc))
    assert linmem(capsys, "vmstat", "--proc", str(proc), *options.split()) == expected


def test_real_vmstat_needs_only_an_openable_cpuinfo(real_vmstat, runs, tmp_path):
    """Without cpuinfo the real vmstat stops; an empty one is enough."""
    proc = tmp_path / "proc"
    shutil.copytree(runs["default"] / "proc", proc)
    (proc / "cpuinfo").unlink()
    failed = realtools.run_real_full("vmstat", [], proc)
    assert failed.returncode == 1
    assert "Unable to create system stat structure" in failed.stderr
    (proc / "cpuinfo").write_text("")
    assert realtools.run_real_full("vmstat", [], proc).returncode == 0


def test_real_vmstat_runs_on_the_tree_as_written(real_vmstat, runs):
    proc = realtools.run_real_full("vmstat", [], runs["default"] / "proc")
    assert proc.returncode == 0, proc.stderr
