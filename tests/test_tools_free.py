"""``linmem free`` against procps-ng 4.0.2 ``free``.

The real ``free`` is run in a private mount namespace over the same proc tree
(see tests/realtools.py); the outputs must be byte-identical.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.errors import InputError
from linmem.procfs.parse import derive_meminfo, parse_meminfo
from linmem.tools.free import FREE_USAGE, scale_size

sys.path.insert(0, str(Path(__file__).parent))
import realtools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

# Every option of procps free that changes the report, alone and combined.
OPTION_SETS = [
    [], ["-b"], ["-k"], ["-m"], ["-g"], ["-h"], ["-w"], ["-t"], ["-l"], ["-v"],
    ["--si"], ["--kilo"], ["--mega"], ["--giga"], ["--tera"], ["--peta"], ["--tebi"],
    ["--pebi"], ["--bytes"], ["--kibi"], ["--mebi"], ["--gibi"], ["--human"],
    ["--wide"], ["--total"], ["--lohi"], ["--committed"],
    ["-h", "-w", "-t"], ["-h", "--si"], ["-m", "-l", "-t", "-v"], ["-hwltv"],
    ["-h", "--si", "-w", "-l", "-t", "-v"], ["-g", "--si"], ["--giga", "-t", "-v"],
    ["-b", "-w", "-l"], ["--tot", "--comm"],
]
SYNTHETIC_OPTION_SETS = [[], ["-h"], ["-h", "--si"], ["-b"], ["-m"], ["-g"], ["--tera"],
                         ["--tebi"], ["--si"], ["-w", "-l", "-t", "-v"], ["-h", "-w", "-l", "-t", "-v"]]

KIB = 1
GIB = 1 << 20       # in kB
TIB = 1 << 30


def meminfo_text(fields: dict[str, int]) -> str:
    """Render ``fields`` the way the kernel writes /proc/meminfo."""
    return "".join(f"{key + ':':<16}{value:>8} kB\n" for key, value in fields.items())


def base_fields(total: int) -> dict[str, int]:
    """A plausible meminfo for a machine of ``total`` kB, no swap."""
    return {
        "MemTotal": total, "MemFree": total * 6 // 10, "MemAvailable": total * 8 // 10,
        "Buffers": total // 50, "Cached": total // 7, "SwapCached": 0,
        "Active": total // 9, "Inactive": total // 8, "SwapTotal": 0, "SwapFree": 0,
        "Shmem": total // 100, "SReclaimable": total // 60, "SUnreclaim": total // 200,
        "CommitLimit": total // 2, "Committed_AS": total // 5,
    }


def _synthetic_cases() -> dict[str, dict[str, int]]:
    """Named meminfo contents that exercise procps' corner cases."""
    cases = {
        "1TiB": base_fields(TIB),
        "1TiB-swap-used": {**base_fields(TIB), "SwapTotal": 64 * GIB, "SwapFree": 3 * GIB + 17},
        "4PiB": {**base_fields(4 << 40), "SwapTotal": 5 << 40, "SwapFree": 1 << 40},
        "small-256MiB": base_fields(256 * 1024),
        "zero-swap": {**base_fields(16 * GIB), "SwapTotal": 0, "SwapFree": 0},
        "all-zero": {"MemTotal": 0, "MemFree": 0, "MemAvailable": 0},
        "odd-values": {**base_fields(24683657), "MemFree": 16777217, "Buffers": 1023,
                       "Shmem": 1025, "SwapTotal": 2097151, "SwapFree": 1048575},
        "rounding-edges": {**base_fields(16 * GIB), "MemFree": 1048524, "Buffers": 10188,
                           "Shmem": 102348, "Cached": 1022976, "SReclaimable": 52},
        "commit-overrun": {**base_fields(8 * GIB), "CommitLimit": 4 * GIB, "Committed_AS": 9 * GIB},
        "swapfree-above-total": {**base_fields(8 * GIB), "SwapTotal": 1000, "SwapFree": 2000},
        "highmem-32bit": {**base_fields(3 * GIB), "HighTotal": 2 * GIB, "HighFree": GIB // 3,
                          "LowTotal": GIB, "LowFree": GIB // 5},
        "huge-wrapping": {**base_fields(1 << 60), "SwapTotal": (1 << 62) + 5, "SwapFree": 1},
    }
    no_avail = base_fields(32 * GIB)
    del no_avail["MemAvailable"]
    cases["MemAvailable-missing"] = no_avail
    cases["MemAvailable-zero"] = {**base_fields(32 * GIB), "MemAvailable": 0}
    cases["MemAvailable-above-MemTotal"] = {**base_fields(32 * GIB), "MemAvailable": 40 * GIB}
    cases["MemFree-above-MemTotal"] = {**base_fields(32 * GIB), "MemFree": 33 * GIB,
                                       "MemAvailable": 34 * GIB}
    cases["only-MemTotal"] = {"MemTotal": 123456789}
    return cases


SYNTHETIC = _synthetic_cases()


@pytest.fixture(scope="module")
def real_free():
    """Skip unless the real free can be run over a crafted /proc."""
    reason = realtools.skip_reason("free")
    if reason:
        pytest.skip(reason)
    if "4.0.2" not in realtools.real_version("free"):
        pytest.skip(f"the reference is procps-ng 4.0.2 free, found {realtools.real_version('free')!r}")


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """A copy of the host's /proc files, frozen for the module."""
    return realtools.freeze_proc(tmp_path_factory.mktemp("frozen-proc"))


def linmem(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``linmem ARGS`` in-process; return (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def write_meminfo(directory: Path, text: str) -> Path:
    """Create ``directory/meminfo`` with ``text``; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meminfo").write_text(text)
    return directory


# --- the frozen host copy, every option --------------------------------------

@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: " ".join(o) or "default")
def test_frozen_host_copy_matches_real_free(real_free, frozen, capsys, options):
    expected = realtools.run_real("free", options, frozen)
    rc, out, err = linmem(capsys, "free", "--proc", str(frozen), *options)
    assert (rc, err) == (0, "")
    assert out == expected


# --- synthetic meminfo files -------------------------------------------------

@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_synthetic_meminfo_matches_real_free(real_free, tmp_path, capsys, case):
    procdir = write_meminfo(tmp_path / case, meminfo_text(SYNTHETIC[case]))
    for options in SYNTHETIC_OPTION_SETS:
        expected = realtools.run_real("free", options, procdir)
        rc, out, _ = linmem(capsys, "free", "--proc", str(procdir), *options)
        assert rc == 0
        assert out == expected, f"options {options}"


def test_random_meminfo_matches_real_free(real_free, tmp_path, capsys):
    """Seeded random values over 17 orders of magnitude, fields sometimes absent."""
    rng = random.Random(20240402)
    keys = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree",
            "Shmem", "SReclaimable", "CommitLimit", "Committed_AS", "LowTotal", "LowFree",
            "HighTotal", "HighFree"]
    for trial in range(25):
        fields = {k: rng.randint(0, 10 ** rng.choice([0, 1, 3, 6, 8, 10, 12, 14, 16]))
                  for k in keys if rng.random() > 0.15}
        procdir = write_meminfo(tmp_path / f"t{trial}", meminfo_text(fields))
        for options in ([], ["-h"], ["-h", "--si"], ["-m", "-w", "-l", "-t", "-v"], ["--tera"]):
            expected = realtools.run_real("free", options, procdir)
            rc, out, _ = linmem(capsys, "free", "--proc", str(procdir), *options)
            assert out == expected, f"fields {fields} options {options}"


def test_kernel_layout_details_match_real_free(real_free, tmp_path, capsys):
    """Unknown lines, keys with spaces before them and duplicates, as procps reads them."""
    text = (" MemTotal:  999 kB\nMemTotal:       8000000 kB\nMemFree:  100 kB\n"
            "Foo(bar):  5 kB\nMemFree:        4000000 kB\nHugePages_Total:       0\n"
            "Cached:           123457 kB\n")
    procdir = write_meminfo(tmp_path / "layout", text)
    for options in ([], ["-h", "-w"]):
        rc, out, _ = linmem(capsys, "free", "--proc", str(procdir), *options)
        assert out == realtools.run_real("free", options, procdir)


def test_repeat_with_count_matches_real_free(real_free, frozen, capsys):
    options = ["-c", "3", "-s", "0.05", "-t"]
    expected = realtools.run_real("free", options, frozen)
    rc, out, _ = linmem(capsys, "free", "--proc", str(frozen), *options)
    assert rc == 0
    assert out == expected
    assert out.count("\n\n") == 2


def test_help_and_version_match_real_free(real_free, capsys):
    # linmem's help is procps's, plus the --proc option
    proc_lines = ("     --proc PATH     read PATH (a proc tree, e.g. one linmem run wrote)\n"
                  "                       instead of /proc\n")
    assert proc_lines in FREE_USAGE
    assert realtools.run_real_full("free", ["--help"], "/proc").stdout == \
        FREE_USAGE.replace(proc_lines, "")
    rc, out, _ = linmem(capsys, "free", "--help")
    assert (rc, out) == (0, FREE_USAGE)
    rc, out, _ = linmem(capsys, "free", "-V")
    assert out == realtools.run_real_full("free", ["-V"], "/proc").stdout


# --- the live host -----------------------------------------------------------

@pytest.mark.realkernel
def test_live_proc_matches_real_free(capsys):
    """Live values move: retry until a run agrees, else compare the stable totals."""
    if not Path("/usr/bin/free").exists() or not Path("/proc/meminfo").exists():
        pytest.skip("no /usr/bin/free or no /proc/meminfo on this machine")
    env = {**os.environ, "LC_ALL": "C"}
    for _ in range(10):
        rc, out, _ = linmem(capsys, "free", "--proc", "/proc", "-w")
        real = subprocess.run(["/usr/bin/free", "-w"], capture_output=True, text=True, env=env).stdout
        if out == real:
            return
    ours, theirs = out.splitlines(), real.splitlines()
    assert ours[0] == theirs[0]
    for mine, real_line in zip(ours[1:], theirs[1:]):
        assert mine.split()[:2] == real_line.split()[:2]  # label and total


# --- values and formatting without the real tool ------------------------------

@pytest.mark.parametrize("kb, flags, text", [
    (0, dict(human=True), "0B"),
    (24683656, dict(human=True), "23Gi"),
    (8952, dict(human=True), "8.7Mi"),
    (TIB, dict(human=True), "1.0Ti"),
    (TIB, dict(human=True, si=True), "1.1T"),
    (1, dict(human=True), "1.0Ki"),
    (1, dict(human=True, si=True), "1.0K"),
    (24683656, dict(exponent=0), "24683656"),
    (24683656, dict(exponent=0, si=True), "25276063"),
    (24683656, dict(exponent=1), "25276063744"),
    (24683656, dict(exponent=3), "24105"),
    (24683656, dict(exponent=4, si=True), "25"),
])
def test_scale_size(kb, flags, text):
    args = dict(human=False, si=False, exponent=0)
    args.update(flags)
    assert scale_size(kb, **args) == text


def test_derived_values_follow_procps():
    mem = derive_meminfo(parse_meminfo(meminfo_text({
        "MemTotal": 1000, "MemFree": 300, "Buffers": 10, "Cached": 100, "SReclaimable": 5,
        "SwapTotal": 50, "SwapFree": 60})))
    assert mem["available"] == 300          # MemAvailable absent -> MemFree
    assert mem["used"] == 700
    assert mem["cached_all"] == 105
    assert mem["swap_used"] == 0            # SwapFree > SwapTotal -> 0
    assert (mem["low_total"], mem["low_free"], mem["low_used"]) == (1000, 300, 700)
    over = derive_meminfo({"MemTotal": 1000, "MemFree": 400, "MemAvailable": 5000})
    assert (over["available"], over["used"]) == (400, 600)


def test_meminfo_parse_errors_name_file_and_line():
    with pytest.raises(InputError) as err:
        parse_meminfo("MemTotal: 5 kB\nMemFree 7 kB\n", "/x/meminfo")
    assert err.value.where == "/x/meminfo:2"
    with pytest.raises(InputError) as err:
        parse_meminfo("MemTotal: 5 kB\n\nMemFree: lots kB\n", "/x/meminfo")
    assert err.value.where == "/x/meminfo:3" and "MemFree" in err.value.what
    with pytest.raises(InputError):
        parse_meminfo("MemTotal: -5 kB\n")


# --- bad input ------------------------------------------------------------------

def test_missing_directory_is_one_line_exit_2(capsys):
    rc, out, err = linmem(capsys, "free", "--proc", "/nonexistent")
    assert rc == 2
    assert out == ""
    assert err == "linmem: /nonexistent: no such directory\n"


@pytest.mark.parametrize("content, where", [
    (None, "meminfo: no such file"),
    ("", "meminfo: empty file"),
    ("MemTotal: 100 kB\nMemFree: 5 kB\ngarbage\n", "meminfo:3:"),
    ("MemTotal: 100 kB\nMemFree: x kB\n", "meminfo:2:"),
    ("MemTotal: 99999999999999999999999 kB\n", "meminfo:1:"),
    (b"MemTotal: 1\xff kB\n", "meminfo:1: not ASCII"),
])
def test_bad_meminfo_is_one_line_exit_2(capsys, tmp_path, content, where):
    if isinstance(content, bytes):
        (tmp_path / "meminfo").write_bytes(content)
    elif content is not None:
        (tmp_path / "meminfo").write_text(content)
    rc, out, err = linmem(capsys, "free", "--proc", str(tmp_path))
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("linmem: ")
    assert where in err


@pytest.mark.parametrize("options, message", [
    (["-m", "-k"], "Multiple unit options"),
    (["-g", "-g"], "Multiple unit options"),
    (["--kilo", "-b"], "Multiple unit options"),
    (["-s", "0"], "not positive number"),
    (["-s", "x"], "seconds argument failed"),
    (["-c", "0"], "count argument"),
    (["-c", "x"], "failed to parse count argument"),
])
def test_bad_options_exit_2(capsys, frozen, options, message):
    rc, out, err = linmem(capsys, "free", "--proc", str(frozen), *options)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_missing_directory_in_a_subprocess():
    proc = subprocess.run([str(PYTHON), "-m", "linmem.cli", "free", "--proc", "/nonexistent"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "linmem: /nonexistent: no such directory\n"
    assert "Traceback" not in proc.stderr


# --- startup time -----------------------------------------------------------

_STARTUP = """
import sys, time
t = time.perf_counter()
from linmem.cli import main
rc = main(["free", "--proc", sys.argv[1]])
heavy = [m for m in sys.modules if m.split(".")[0] in ("numpy", "numba")
         or m.startswith(("linmem.mm", "linmem.engine", "linmem.kernel"))]
print("HEAVY", heavy, file=sys.stderr)
sys.exit(rc)
"""


def test_free_starts_fast_and_light(frozen):
    """``linmem free`` imports no numpy/numba/simulator and runs in < 0.3 s."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([str(PYTHON), "-c", _STARTUP, str(frozen)],
                              capture_output=True, text=True, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr
    assert best < 0.3, f"linmem free took {best:.3f} s at best"


def test_console_script_starts_fast(frozen):
    script = ROOT / ".venv" / "bin" / "linmem"
    if not script.exists():
        pytest.skip("no installed console script")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([str(script), "free", "--proc", str(frozen)], capture_output=True)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0
    assert best < 0.3, f"linmem free took {best:.3f} s at best"
