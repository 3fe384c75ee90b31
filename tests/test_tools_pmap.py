"""``linmem pmap`` against procps-ng 4.0.2 ``pmap``.

A frozen tree (tests/proctools.py) holds the maps/smaps of processes this
module starts: a sleeper, a python process with anonymous, shared and file
mappings, a zombie, kthreadd and pid 1 (whose maps the kernel does not let
us read). The real pmap runs over it in a private mount namespace and the
outputs, and exit statuses, must be byte-identical. On the live host
``pmap -x`` of a sleeping process must be identical too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.tools.pmap import fgets_lines, parse_range

sys.path.insert(0, str(Path(__file__).parent))
import proctools  # noqa: E402
import realtools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

OPTIONS = ["", "-x", "-X", "-XX", "-d", "-q", "-xq", "-Xq", "-XXq", "-dq", "-p", "-xp", "-Xp",
           "--extended", "--device --quiet", "-x -A 7f0000000000", "-A ,7f0000000000",
           "-A 400000,7fffffffffff", "-d -A 0,ffffffffffffffff"]


@pytest.fixture(scope="module")
def real_pmap():
    reason = realtools.skip_reason("pmap")
    if reason:
        pytest.skip(reason)
    if "4.0.2" not in realtools.real_version("pmap"):
        pytest.skip(f"the reference is procps-ng 4.0.2, found {realtools.real_version('pmap')!r}")


@pytest.fixture(scope="module")
def samples():
    procs = proctools.SampleProcesses(str(PYTHON))
    yield procs
    procs.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory, samples):
    pids = samples.pids() + [1, 2, os.getpid()]
    return proctools.freeze_processes(tmp_path_factory.mktemp("pmap") / "proc", pids,
                                      self_pid=samples.pid("sleeper"))


@pytest.fixture(autouse=True)
def c_locale(monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")


def linmem(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    capsysbinary.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsysbinary.readouterr()
    return rc, out, err


def run_ours(args: list[str], env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C", **(env or {})}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "linmem"), "pmap", *args],
                          capture_output=True, env=env)


def run_real(args: list[str], tree, env=None) -> subprocess.CompletedProcess:
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount --bind "$1" /proc || exit 125; shift; exec "$@"', "sh", str(tree),
               "/usr/bin/pmap", *args]
    return subprocess.run(command, capture_output=True, env={**realtools._ENV, **(env or {})},
                          stdin=subprocess.DEVNULL)


# --- frozen trees, byte for byte ------------------------------------------------------

@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o or "default")
@pytest.mark.parametrize("who", ["sleeper", "hog", "odd", "shm", "zombie", "pytest", "kthreadd",
                                 "init"])
def test_frozen_tree_matches_real_pmap(real_pmap, tree, samples, options, who):
    pid = {"pytest": os.getpid(), "kthreadd": 2, "init": 1}.get(who) or samples.pid(who)
    args = options.split() + [str(pid)]
    real = run_real(args, tree)
    ours = run_ours(["--proc", str(tree), *args])
    assert ours.stderr == real.stderr == b""
    assert ours.stdout == real.stdout
    assert ours.returncode == real.returncode


@pytest.mark.parametrize("options", ["", "-x", "-X", "-XX", "-d"])
def test_several_pids_missing_ones_and_proc_paths(real_pmap, tree, samples, options):
    """Order kept, a missing PID skipped (status 42), an unreadable maps file (status |1)."""
    args = options.split() + [str(samples.pid("hog")), "999999", f"/proc/{samples.pid('sleeper')}",
                              "1", str(samples.pid("hog"))]
    real = run_real(args, tree)
    ours = run_ours(["--proc", str(tree), *args])
    assert ours.stdout == real.stdout
    assert ours.returncode == real.returncode == 43


def test_missing_pid_alone_exits_42(real_pmap, tree):
    real = run_real(["999999"], tree)
    ours = run_ours(["--proc", str(tree), "999999"])
    assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout) == (42, b"")


def test_utf8_locale_matches_real_pmap(real_pmap, tree, samples):
    env = {"LC_ALL": "C.UTF-8"}
    for options in ([], ["-x"]):
        args = options + [str(samples.pid("odd"))]
        real = run_real(args, tree, env)
        ours = run_ours(["--proc", str(tree), *args], env)
        assert ours.stdout == real.stdout
    assert "odd?name with \u00fcn\u00ef 100000".encode() in ours.stdout


def test_rows_follow_the_mappings(tree, samples, capsysbinary):
    """-x rows: Kbytes from the range, RSS and Dirty from smaps; names as pmap makes them."""
    pid = samples.pid("hog")
    rc, out, _ = linmem(capsysbinary, "pmap", "--proc", str(tree), "-x", str(pid))
    lines = out.decode().splitlines()
    assert lines[1].split() == ["Address", "Kbytes", "RSS", "Dirty", "Mode", "Mapping"]
    rows = [line.split() for line in lines[2:-2]]
    smaps = (tree / str(pid) / "smaps").read_text()
    first = smaps.splitlines()[0].split()
    start, end = (int(x, 16) for x in first[0].split("-"))
    assert rows[0][0] == "%016x" % start and int(rows[0][1]) == (end - start) >> 10
    assert any(row[-2:] == ["[", "stack", "]"] or row[-3:] == ["[", "stack", "]"] for row in rows)
    assert any(row[4] == "rw-s-" for row in rows)          # the MAP_SHARED mapping
    total = lines[-1].split()
    assert total[:2] == ["total", "kB"]
    assert int(total[3]) == sum(int(r[2]) for r in rows)


# --- the live host -----------------------------------------------------------------------

@pytest.mark.realkernel
@pytest.mark.parametrize("options", ["-x", "", "-d", "-xp", "-q"])
def test_live_sleeping_process_matches_real_pmap(samples, options):
    if not Path("/usr/bin/pmap").exists():
        pytest.skip("no /usr/bin/pmap")
    env = {**os.environ, "LC_ALL": "C"}
    args = options.split() + [str(samples.pid("sleeper"))]
    for _ in range(5):
        real = subprocess.run(["/usr/bin/pmap", *args], capture_output=True, env=env)
        ours = run_ours(["--proc", "/proc", *args])
        if ours.stdout == real.stdout:
            break
    assert ours.stdout == real.stdout
    assert ours.returncode == real.returncode == 0


@pytest.mark.realkernel
def test_live_sysv_shared_memory_is_named_by_shmid(samples):
    """pmap finds the SysV shm device with its own shmat(); linmem does the same on /proc."""
    if not Path("/usr/bin/pmap").exists():
        pytest.skip("no /usr/bin/pmap")
    env = {**os.environ, "LC_ALL": "C"}
    args = [str(samples.pid("shm"))]
    real = subprocess.run(["/usr/bin/pmap", *args], capture_output=True, env=env)
    ours = run_ours(["--proc", "/proc", *args])
    assert ours.stdout == real.stdout
    assert b"[ shmid=0x" in ours.stdout


# --- unit checks ---------------------------------------------------------------------------

def test_fgets_pieces():
    assert fgets_lines(b"ab\ncd") == [b"ab\n", b"cd"]
    long_line = b"x" * 2000 + b"\n"
    assert [len(p) for p in fgets_lines(long_line)] == [1023, 978]


def test_range_argument():
    assert parse_range("7f00,7fff") == (0x7F00, 0x7FFF)
    assert parse_range(",10") == (0, 0x10)
    assert parse_range("10") == (0x10, 0x10)


# --- bad input --------------------------------------------------------------------------------

def test_missing_directory_is_one_line_exit_2(capsysbinary):
    rc, out, err = linmem(capsysbinary, "pmap", "--proc", "/nonexistent", "1")
    assert (rc, out) == (2, b"")
    assert err == b"linmem: /nonexistent: no such directory\n"


@pytest.mark.parametrize("options", [["-x"], ["-X"], []])
def test_malformed_smaps_is_one_line_exit_2(tmp_path, capsysbinary, options):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    for name in ("smaps", "maps"):
        path = tree / str(os.getpid()) / name
        lines = path.read_text().splitlines(True)
        lines.insert(3, "this is not a mapping line\n")
        path.write_text("".join(lines))
    rc, out, err = linmem(capsysbinary, "pmap", "--proc", str(tree), *options, str(os.getpid()))
    assert rc == 2
    assert err.count(b"\n") == 1 and err.startswith(b"linmem: ")
    assert f"{os.getpid()}/{'smaps' if options else 'maps'}:".encode() in err


@pytest.mark.parametrize("args, message", [
    ([], "argument missing"), (["-x", "-d", "1"], "mutually exclusive"),
    (["abc"], "process ID"), (["-A", "zz", "1"], "failed to parse argument"),
    (["-c", "1"], "not supported"),
])
def test_bad_arguments_exit_2(capsysbinary, args, message):
    rc, out, err = linmem(capsysbinary, "pmap", *args)
    assert rc == 2 and out == b""
    assert message.encode() in err and err.count(b"\n") == 1


def test_help_and_version(capsysbinary):
    rc, out, _ = linmem(capsysbinary, "pmap", "--help")
    assert rc == 0 and b"--proc PATH" in out
    rc, out, _ = linmem(capsysbinary, "pmap", "-V")
    assert (rc, out) == (0, b"pmap from procps-ng 4.0.2\n")


# --- startup time -----------------------------------------------------------------------------

_STARTUP = """
import sys
from linmem.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
heavy = [m for m in sys.modules if m.split(".")[0] in ("numpy", "numba")
         or m.startswith(("linmem.mm", "linmem.engine", "linmem.kernel"))]
print("HEAVY", heavy, file=sys.stderr)
sys.exit(rc)
"""


def test_pmap_starts_fast_and_light(tmp_path):
    # a small process of its own: the test process's maps grow with the suite
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        tree = proctools.freeze_processes(tmp_path / "proc", [sleeper.pid])
    finally:
        sleeper.kill()
        sleeper.wait()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([str(PYTHON), "-c", _STARTUP, "pmap", "--proc", str(tree), "-x",
                               str(sleeper.pid)], capture_output=True, text=True, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr
    assert best < 0.3, f"linmem pmap took {best:.3f} s at best"


# --- the trees linmem run writes -------------------------------------------------------------

@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    trees = proctools.simulated_trees(tmp_path_factory.mktemp("sim") / "out", str(PYTHON))
    if not trees:
        pytest.skip("linmem run wrote no tree with processes")
    return trees


@pytest.mark.parametrize("options", ["", "-x", "-X", "-XX", "-d"], ids=lambda o: o or "default")
def test_simulated_trees_match_real_pmap(real_pmap, simulated, options):
    """Real pmap reads the trees linmem run writes, and prints what linmem pmap prints."""
    for tree in simulated:
        pids = sorted(p.name for p in tree.iterdir() if p.name.isdigit())
        args = options.split() + pids
        real = run_real(args, tree)
        ours = run_ours(["--proc", str(tree), *args])
        assert ours.stdout == real.stdout, tree
        assert ours.returncode == real.returncode, tree
