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

A fourth run has swap in use (a zram device and a swapfile, anonymous memory
larger than RAM, swap entries shared after fork): besides free and vmstat
(the Swap line, swpd, si and so), the real ps, pmap (whose -X and -XX show
each mapping's Swap and SwapPss) and smem (its Swap column) read its trees
with processes and must print what linmem's tools print; top's VIRT and RES
must be what linmem ps shows.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.procfs.parse import parse_meminfo

sys.path.insert(0, str(Path(__file__).parent))
import proctools  # noqa: E402
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

# Swap in use: a zram device (of higher priority, so it fills first) and a
# swapfile; hog's memory is larger than RAM, peek shares a quarter of it after
# reading it back, and the "shared" snapshot is taken while both live.
SWAP_SCENARIO = """\
name: swap-in-use
seed: 5
machine: {ram: 192MiB, cpus: 2}
swap:
  - {path: /dev/zram0, size: 64MiB, priority: 100, type: zram}
  - {path: /swapfile, size: 256MiB}
processes:
  - name: hog
    program: cat
    steps:
      - mmap: {as: buf, size: 224MiB}
      - touch: {region: buf, write: true}
      - fork:
          name: peek
          steps:
            - touch: {region: buf, fraction: 0.25}
            - snapshot: shared
            - sleep: 1s
            - exit: 0
      - touch: {region: buf, pattern: random, count: 20000, write: true}
      - wait: peek
      - snapshot: done
      - sleep: 1s
at:
  - {time: 0s, snapshot: boot}
sample: 100ms
"""

# scenario -> (scenario text or None for the built-in one, snapshot names)
SCENARIOS = {
    "default": (None, ("boot", "wider-watermarks")),
    "i386-1GiB": (I386_SCENARIO, ("boot", "ratio-80")),
    "x86_64-64GiB": (BIG_SCENARIO, ("boot", "wider")),
    "swap": (SWAP_SCENARIO, ("boot", "shared", "done")),
}
# the swap run's trees that hold processes
SWAP_TREES = ("snapshots/shared/proc", "snapshots/done/proc")
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


# ---------------------------------------------------------------- swap in use

def _pids(proc: Path) -> list[str]:
    return sorted((p.name for p in proc.iterdir() if p.name.isdigit()), key=int)


def test_the_swap_run_has_swap_in_use_and_shared(runs):
    """The trees the tools read below do show swap: used in both areas, the
    zram device (priority 100) full first, and entries shared after fork."""
    proc = runs["swap"] / "snapshots/shared/proc"
    mem = parse_meminfo((proc / "meminfo").read_text())
    swaps = [line.split() for line in (proc / "swaps").read_text().splitlines()[1:]]
    assert [(r[0], r[1], r[4]) for r in swaps] == [("/dev/zram0", "partition", "100"),
                                                   ("/swapfile", "file", "-2")]
    used = [int(r[3]) for r in swaps]
    assert all(used) and mem["SwapTotal"] - mem["SwapFree"] == sum(used)
    for pid in _pids(proc):
        rollup = dict(line.split()[:2] for line in
                      (proc / pid / "smaps_rollup").read_text().splitlines()[1:])
        assert int(rollup["SwapPss:"]) < int(rollup["Swap:"])


@pytest.fixture(scope="module")
def real_pmap():
    _skip_unless_real("pmap")


@pytest.fixture(scope="module")
def real_ps():
    _skip_unless_real("ps")


@pytest.mark.parametrize("options", ["", "-x", "-X", "-XX", "-d"], ids=lambda o: o or "default")
@pytest.mark.parametrize("tree", SWAP_TREES)
def test_real_pmap_shows_the_swap_linmem_pmap_shows(real_pmap, runs, capsysbinary, tree,
                                                    options):
    proc = runs["swap"] / tree
    args = options.split() + _pids(proc)
    real = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           'mount --bind "$1" /proc || exit 125; shift; exec "$@"', "sh",
                           str(proc), "/usr/bin/pmap", *args],
                          capture_output=True, env=realtools._ENV, stdin=subprocess.DEVNULL)
    capsysbinary.readouterr()
    try:
        rc = main(["pmap", "--proc", str(proc), *args])
    except SystemExit as exit_:
        rc = exit_.code
    out, _err = capsysbinary.readouterr()
    assert (rc, out) == (real.returncode, real.stdout)
    if options in ("-X", "-XX"):
        assert b"SwapPss" in out


@pytest.mark.parametrize("options", ["", "-t -k", "-s swap -r", "-m", "-u -t",
                                     "-c 'pid name swap uss pss rss'"], ids=lambda o: o or "default")
@pytest.mark.parametrize("tree", SWAP_TREES)
def test_real_smem_shows_the_swap_linmem_smem_shows(runs, tree, options):
    smem = shutil.which("smem", path="/usr/bin:/usr/local/bin:/bin")
    if smem is None or "smem - a tool for meaningful memory reporting" not in \
            Path(smem).read_text(errors="replace")[:2000]:
        pytest.skip("smem is not installed (apt-get install smem)")
    proc = runs["swap"] / tree
    env = {"PATH": realtools._ENV["PATH"], "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    run = functools.partial(subprocess.run, shell=True, capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL)
    real = run(f"{smem} -S {proc.parent} {options}")
    ours = run(f"{sys.executable} -m linmem.cli smem --proc {proc} {options}",
               env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    assert real.returncode == 0, real.stderr
    assert ours.stdout == real.stdout


@pytest.mark.parametrize("options", ["aux", "-ely", "-e -o pid,comm,vsz,rss,sz,maj_flt,min_flt"])
@pytest.mark.parametrize("tree", SWAP_TREES)
def test_real_ps_reads_the_swap_trees_as_linmem_ps(real_ps, runs, capsys, tree, options):
    proc = runs["swap"] / tree
    try:
        real = proctools.run_real_ps_tool("ps", options.split(), proc)
        if real.returncode in (124, 125):
            pytest.skip(f"cannot prepare the namespace: {real.stderr.strip()}")
        out = linmem(capsys, "ps", "--proc", str(proc), *options.split())
    finally:
        proctools.forget_pid(proc)
    assert real.stderr == ""
    assert out == real.stdout


@pytest.mark.parametrize("tree", SWAP_TREES)
def test_real_top_shows_the_swap_trees_rss_and_vsz(real_ps, runs, capsys, tree):
    """top -b -n1: VIRT and RES of each process are linmem ps's VSZ and RSS."""
    if shutil.which("top") is None:
        pytest.skip("no top on this machine")
    proc = runs["swap"] / tree
    try:
        real = proctools.run_real_ps_tool("top", ["-b", "-n1", "-w", "200"], proc)
    finally:
        proctools.forget_pid(proc)
    if real.returncode != 0:
        pytest.skip(f"real top cannot run over a crafted tree here: {real.stderr.strip()}")
    rows = {int(f[0]): (int(f[4]), int(f[5])) for f in
            (line.split() for line in real.stdout.splitlines()) if f and f[0].isdigit()}
    out = linmem(capsys, "ps", "--proc", str(proc), "-e", "-o", "pid=,vsz=,rss=")
    ours = {int(p): (int(v), int(r)) for p, v, r in (ln.split() for ln in out.splitlines())}
    assert ours and all(rows[pid] == ours[pid] for pid in ours)
