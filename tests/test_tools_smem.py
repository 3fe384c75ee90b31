"""``linmem smem`` against smem 1.5 (the Debian package's script).

smem reads SOURCE/proc when given ``-S SOURCE``, so the real script runs
directly over a frozen tree (tests/proctools.py) kept at SOURCE/proc; the
outputs must be byte-identical. Tests that need the real smem skip when it
is not installed (``apt-get install smem``); nothing installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.tools.smem import units

sys.path.insert(0, str(Path(__file__).parent))
import proctools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
SMEM = shutil.which("smem", path="/usr/bin:/usr/local/bin:/bin")

OPTIONS = [
    "", "-t", "-k", "-t -k", "-p", "-p -t", "-r", "-s rss", "-s uss -r", "-s pid", "-s user",
    "-s command -r", "-s swap", "-n", "-H", "-H -t", "-c pid", "-c 'pid name maps vss'",
    "-c 'command pss user'", "-c 'pid user name command maps swap uss pss rss vss' -t -k",
    "-P sleep", "-P '^/work' -t", "-U root", "-U nobody", "-R 64G -p", "-a", "-a -k",
    "-m", "-m -t", "-m -k -t", "-m -c 'map count pids swap uss rss pss vss avgpss avgrss'",
    "-m -s count -r", "-M python", "-M '\\[' -m", "-u", "-u -t -k", "-u -n", "-u -p -t",
    "-u -c 'user count vss'", "-w", "-w -t", "-w -k -t", "-w -p", "-w -R 30G", "-w -s used -r",
    "-w -c 'order area used cache noncache'",
]


@pytest.fixture(scope="module")
def real_smem():
    if SMEM is None:
        pytest.skip("smem is not installed (apt-get install smem)")
    head = Path(SMEM).read_text(errors="replace")[:2000]
    if "smem - a tool for meaningful memory reporting" not in head:
        pytest.skip(f"{SMEM} is not the smem script")


@pytest.fixture(scope="module")
def samples():
    procs = proctools.SampleProcesses(str(PYTHON))
    yield procs
    procs.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory, samples):
    """SOURCE with SOURCE/proc the frozen tree."""
    root = tmp_path_factory.mktemp("smem")
    pids = samples.pids() + [1, 2, os.getpid()]
    proctools.freeze_processes(root / "proc", pids, self_pid=samples.pid("sleeper"))
    return root


def smem_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
    return env


def run_real(options: str, source: Path) -> subprocess.CompletedProcess:
    return subprocess.run(f"{SMEM} -S {source} {options}", shell=True, capture_output=True,
                          text=True, env=smem_env(), stdin=subprocess.DEVNULL)


def run_ours(options: str, proc: Path) -> subprocess.CompletedProcess:
    return subprocess.run(f"{ROOT}/.venv/bin/linmem smem --proc {proc} {options}", shell=True,
                          capture_output=True, text=True, env=smem_env(),
                          stdin=subprocess.DEVNULL)


def linmem(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


# --- frozen trees, byte for byte --------------------------------------------------------

@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o or "default")
def test_frozen_tree_matches_real_smem(real_smem, source, options):
    real = run_real(options, source)
    ours = run_ours(options, source / "proc")
    assert real.returncode == 0, real.stderr
    assert ours.stdout == real.stdout
    assert (ours.returncode, ours.stderr) == (0, "")


def test_source_option_reads_source_proc(real_smem, source):
    real = run_real("-t", source)
    ours = subprocess.run([f"{ROOT}/.venv/bin/linmem", "smem", "-S", str(source), "-t"],
                          capture_output=True, text=True, env=smem_env())
    assert ours.stdout == real.stdout


@pytest.mark.parametrize("options", ["-c nosuch", "-s nosuch", "-m -c 'map bogus'"])
def test_unknown_fields_are_listed_as_smem_lists_them(real_smem, source, options):
    real = run_real(options, source)
    ours = run_ours(options, source / "proc")
    assert real.returncode == 255 and ours.returncode == 2
    assert ours.stdout == real.stdout
    assert ours.stderr.count("\n") == 1 and "unknown field" in ours.stderr


def test_avguss_works_where_smem_stops(real_smem, source):
    """smem 1.5 has a KeyError on -m's avguss column; linmem computes USS / PIDs."""
    real = run_real("-m -c 'map pids uss avguss'", source)
    assert real.returncode == 1 and "KeyError" in real.stderr
    ours = run_ours("-m -c 'map pids uss avguss'", source / "proc")
    assert ours.returncode == 0
    for line in ours.stdout.splitlines()[1:]:
        *_, pids, uss, avguss = line.split()
        assert int(avguss) == int(uss) // int(pids)


def test_values_follow_smaps(source, samples, capsys):
    """USS = Private_Clean + Private_Dirty, PSS/RSS/Swap sums, as smem computes them."""
    pid = samples.pid("hog")
    sums = dict.fromkeys(("Private_Clean", "Private_Dirty", "Pss", "Rss", "Swap"), 0)
    for line in (source / "proc" / str(pid) / "smaps").read_text().splitlines():
        key = line.split(":")[0]
        if key in sums and line.endswith("kB"):
            sums[key] += int(line.split()[1])
    rc, out, _ = linmem(capsys, "smem", "--proc", str(source / "proc"), "-H", "-c",
                        "pid swap uss pss rss", "-P", "mmap")
    row = next(line.split() for line in out.splitlines() if line.split()[0] == str(pid))
    uss = sums["Private_Clean"] + sums["Private_Dirty"]
    assert [int(x) for x in row[1:]] == [sums["Swap"], uss, sums["Pss"], sums["Rss"]]


def test_kernel_threads_and_zombies_are_left_out(source, samples, capsys):
    rc, out, _ = linmem(capsys, "smem", "--proc", str(source / "proc"), "-H", "-c", "pid")
    pids = {int(x) for x in out.split()}
    assert samples.pid("hog") in pids and samples.pid("sleeper") in pids
    assert 2 not in pids and samples.pid("zombie") not in pids
    assert 1 not in pids          # its smaps cannot be read


# --- the live host ------------------------------------------------------------------------

@pytest.mark.realkernel
def test_live_sleeping_process_matches_real_smem(real_smem, samples):
    """Live PSS of shared libraries moves as processes come and go, and so does USS: a
    library page becomes private when the last other process mapping it exits. Retry
    until one pair of reads is taken while nothing else starts or stops, then compare
    the sleeper's row but its PSS."""
    options = "-P '^sleep 100000$' -c 'pid user command swap uss pss rss'"
    env = smem_env()
    pid = str(samples.pid("sleeper"))

    def sleeper_row(text):
        row = next(line.split() for line in text.splitlines() if line.split()[0] == pid)
        return row[:-2] + row[-1:]                                      # all but PSS

    for _ in range(10):
        real = subprocess.run(f"{SMEM} {options}", shell=True, capture_output=True, text=True,
                              env=env)
        ours = subprocess.run(f"{ROOT}/.venv/bin/linmem smem --proc /proc {options}", shell=True,
                              capture_output=True, text=True, env=env)
        assert ours.stdout.splitlines()[0] == real.stdout.splitlines()[0]
        if ours.stdout == real.stdout or sleeper_row(ours.stdout) == sleeper_row(real.stdout):
            return
        time.sleep(0.2)
    assert sleeper_row(ours.stdout) == sleeper_row(real.stdout)


# --- unit checks and bad input ------------------------------------------------------------

def test_units():
    assert units(0) == "0"
    assert units(512) == "512.0"
    assert units(4096 * 1024) == "4.0M"
    assert units(1536) == "1.5K"


def test_missing_directory_is_one_line_exit_2(capsys):
    rc, out, err = linmem(capsys, "smem", "--proc", "/nonexistent")
    assert (rc, out) == (2, "")
    assert err == "linmem: /nonexistent: no such directory\n"


def test_malformed_smaps_is_one_line_exit_2(tmp_path, capsys):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    path = tree / str(os.getpid()) / "smaps"
    lines = path.read_text().splitlines(True)
    lines.insert(2, "Rss:       lots kB\n")
    path.write_text("".join(lines))
    rc, out, err = linmem(capsys, "smem", "--proc", str(tree))
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and f"{os.getpid()}/smaps:3" in err


def test_missing_meminfo_is_one_line_exit_2(tmp_path, capsys):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    (tree / "meminfo").unlink()
    rc, out, err = linmem(capsys, "smem", "--proc", str(tree))
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and "meminfo" in err


def test_help(capsys):
    rc, out, _ = linmem(capsys, "smem", "--help")
    assert rc == 0 and "--proc=PATH" in out and "-k, --abbreviate" in out


_STARTUP = """
import sys
from linmem.cli import main
rc = main(sys.argv[1:])
heavy = [m for m in sys.modules if m.split(".")[0] in ("numpy", "numba")
         or m.startswith(("linmem.mm", "linmem.engine", "linmem.kernel"))]
print("HEAVY", heavy, file=sys.stderr)
sys.exit(rc)
"""


def test_smem_starts_fast_and_light(tmp_path):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([str(PYTHON), "-c", _STARTUP, "smem", "--proc", str(tree), "-t"],
                              capture_output=True, text=True, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr
    assert best < 0.3, f"linmem smem took {best:.3f} s at best"


# --- the trees linmem run writes -------------------------------------------------------------

@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    trees = proctools.simulated_trees(tmp_path_factory.mktemp("sim") / "out", str(PYTHON))
    if not trees:
        pytest.skip("linmem run wrote no tree with processes")
    return trees


@pytest.mark.parametrize("options", ["", "-t -k", "-m -t", "-u", "-w -t", "-c 'pid name maps vss'"])
def test_simulated_trees_match_real_smem(real_smem, simulated, options):
    """smem reads the trees linmem run writes, and prints what linmem smem prints."""
    for tree in simulated:
        real = run_real(options, tree.parent)
        ours = run_ours(options, tree)
        assert real.returncode == 0, real.stderr
        assert ours.stdout == real.stdout, tree
