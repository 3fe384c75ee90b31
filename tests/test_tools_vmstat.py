"""``linmem vmstat`` against procps-ng 4.0.2 ``vmstat``.

The real ``vmstat`` is run in a private mount namespace over the same proc
tree (see tests/realtools.py); the outputs must be byte-identical. The real
vmstat opens /proc/vmstat, /proc/stat, /proc/meminfo and /proc/cpuinfo (for
the cpu topology) and, through libnuma, /proc/self/status, which may be
absent; the frozen copies hold all of the first four.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.errors import InputError
from linmem.procfs.parse import parse_stat, parse_uptime, parse_vmstat
from linmem.tools.vmstat import VMSTAT_USAGE, unit_convert

sys.path.insert(0, str(Path(__file__).parent))
import realtools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

OPTION_SETS = [
    [], ["-a"], ["-w"], ["-w", "-a"], ["-S", "M"], ["-S", "m"], ["-S", "k"], ["-S", "K"],
    ["-S", "b"], ["-s"], ["-s", "-S", "M"], ["-s", "-S", "k"], ["-f"], ["-n"],
    ["-a", "-n", "-w", "-S", "m"], ["--active", "--wide"], ["--stats"], ["--unit=M"], ["-SM"],
    ["--act"],
]


@pytest.fixture(scope="module")
def real_vmstat():
    """Skip unless the real vmstat can be run over a crafted /proc."""
    reason = realtools.skip_reason("vmstat")
    if reason:
        pytest.skip(reason)
    if "4.0.2" not in realtools.real_version("vmstat"):
        pytest.skip(f"the reference is procps-ng 4.0.2 vmstat, found {realtools.real_version('vmstat')!r}")


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


def make_tree(directory: Path, meminfo: dict, vmstat: dict, cpu: list[int], **sys_counters) -> Path:
    """Write a synthetic proc tree (meminfo, vmstat, stat, and the host's cpuinfo)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meminfo").write_text("".join(f"{k + ':':<16}{v:>8} kB\n" for k, v in meminfo.items()))
    (directory / "vmstat").write_text("".join(f"{k} {v}\n" for k, v in vmstat.items()))
    counters = {"intr": 0, "ctxt": 0, "btime": 1700000000, "processes": 1, "procs_running": 1,
                "procs_blocked": 0, **sys_counters}
    stat = "cpu  " + " ".join(map(str, cpu)) + "\n" + "cpu0 " + " ".join(map(str, cpu)) + "\n"
    stat += f"intr {counters['intr']} 0 0\nctxt {counters['ctxt']}\nbtime {counters['btime']}\n"
    stat += f"processes {counters['processes']}\nprocs_running {counters['procs_running']}\n"
    stat += f"procs_blocked {counters['procs_blocked']}\nsoftirq 0 0\n"
    (directory / "stat").write_text(stat)
    if Path("/proc/cpuinfo").exists():
        (directory / "cpuinfo").write_bytes(Path("/proc/cpuinfo").read_bytes())
    return directory


MEM = {"MemTotal": 24683656, "MemFree": 24193828, "MemAvailable": 24392136, "Buffers": 7832,
       "Cached": 387504, "Active": 111816, "Inactive": 279736, "SwapTotal": 2097148,
       "SwapFree": 2000000, "Shmem": 8952, "SReclaimable": 33908}
VM = {"nr_free_pages": 6048457, "pgpgin": 497597, "pgpgout": 491188, "pswpin": 120, "pswpout": 3000}

SYNTHETIC = {
    "typical": (MEM, VM, [4976, 0, 1286, 42330, 168, 0, 46, 24, 0, 0], {}),
    "no-ticks-at-all": (MEM, VM, [0] * 10, {"intr": 500, "ctxt": 900}),
    "eight-cpu-fields": (MEM, VM, [4976, 10, 1286, 42330, 168, 3, 46, 24], {}),
    "guest-above-user": (MEM, VM, [100, 0, 50, 1000, 0, 0, 0, 0, 500, 20], {}),
    "odd-memory-above-2^24": ({**MEM, "MemFree": 16777217, "Buffers": 33554435,
                               "Cached": 123456789, "SReclaimable": 1,
                               "SwapTotal": 98765433, "SwapFree": 3}, VM,
                              [10, 0, 10, 100, 0, 0, 0, 0, 0, 0], {}),
    "32-bit-wrapping-rates": (MEM, {"pgpgin": 10 ** 15, "pgpgout": 2 ** 40, "pswpin": 10 ** 12,
                                    "pswpout": 7}, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                              {"intr": 10 ** 13, "ctxt": 2 ** 35}),
    "petabyte-memory": ({**MEM, "MemTotal": 10 ** 17, "MemFree": 10 ** 17 - 1,
                         "SwapTotal": 10 ** 18, "SwapFree": 1}, VM,
                        [4976, 0, 1286, 42330, 168, 0, 46, 24, 0, 0], {}),
    "no-vmstat-counters": (MEM, {"nr_free_pages": 1}, [4976, 0, 1286, 42330, 168, 0, 46, 24, 0, 0],
                           {"procs_running": 37, "procs_blocked": 12}),
    "no-swap-no-available": ({k: v for k, v in MEM.items() if k not in ("MemAvailable",)}
                             | {"SwapTotal": 0, "SwapFree": 0}, VM,
                             [4976, 0, 1286, 42330, 168, 0, 46, 24, 0, 0], {}),
}
SYNTHETIC_OPTION_SETS = [[], ["-w"], ["-a"], ["-S", "M"], ["-S", "k"], ["-S", "m"], ["-S", "B"],
                         ["-s"], ["-s", "-S", "m"], ["-f"]]


# --- frozen host copy ------------------------------------------------------------

@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: " ".join(o) or "default")
def test_frozen_host_copy_matches_real_vmstat(real_vmstat, frozen, capsys, options):
    expected = realtools.run_real("vmstat", options, frozen)
    rc, out, err = linmem(capsys, "vmstat", "--proc", str(frozen), *options)
    assert (rc, err) == (0, "")
    assert out == expected


@pytest.mark.parametrize("options", [["1", "3"], ["-y", "1", "2"], ["-w", "-a", "-n", "1", "2"],
                                     ["1", "0"], ["-y", "1", "0"]],
                         ids=lambda o: " ".join(o))
def test_delay_on_a_static_tree_matches_real_vmstat(real_vmstat, frozen, capsys, options):
    """A tree that does not change gives lines of zero deltas (id 100)."""
    expected = realtools.run_real("vmstat", options, frozen)
    rc, out, _ = linmem(capsys, "vmstat", "--proc", str(frozen), *options)
    assert rc == 0
    assert out == expected


def test_timestamp_matches_real_vmstat(real_vmstat, frozen):
    """-t: the same columns; the times themselves are masked."""
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    ours = subprocess.run([sys.executable, "-m", "linmem.cli", "vmstat", "--proc", str(frozen),
                           "-t", "-w"], capture_output=True, text=True, env=env, cwd=ROOT).stdout
    real = realtools.run_real("vmstat", ["-t", "-w"], frozen)
    assert STAMP.sub("TIME", ours) == STAMP.sub("TIME", real)
    assert STAMP.search(ours) and "UTC" in ours.splitlines()[1]


# --- synthetic trees ---------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_synthetic_tree_matches_real_vmstat(real_vmstat, tmp_path, capsys, case):
    meminfo, vm, cpu, counters = SYNTHETIC[case]
    procdir = make_tree(tmp_path / "proc", meminfo, vm, cpu, **counters)
    for options in SYNTHETIC_OPTION_SETS:
        expected = realtools.run_real("vmstat", options, procdir)
        rc, out, _ = linmem(capsys, "vmstat", "--proc", str(procdir), *options)
        assert rc == 0
        assert out == expected, f"options {options}"


def test_random_trees_match_real_vmstat(real_vmstat, tmp_path, capsys):
    """Seeded random counters over many orders of magnitude."""
    rng = random.Random(402)

    def val(mags=(0, 1, 3, 6, 7, 8, 9, 10, 12, 14, 17)):
        return rng.randint(0, 10 ** rng.choice(mags))

    for trial in range(15):
        meminfo = {k: val() for k in MEM}
        vm = {k: val() for k in VM}
        cpu = [val((0, 1, 3, 6, 9, 12)) for _ in range(rng.randint(8, 10))]
        counters = {k: val() for k in ("intr", "ctxt", "btime", "processes")}
        procdir = make_tree(tmp_path / f"t{trial}", meminfo, vm, cpu, **counters)
        for options in ([], ["-w", "-a"], ["-S", "m"], ["-s"]):
            expected = realtools.run_real("vmstat", options, procdir)
            rc, out, _ = linmem(capsys, "vmstat", "--proc", str(procdir), *options)
            assert out == expected, f"{procdir} options {options}"


def _rewrite_in_place(path: Path, text: str) -> None:
    """Replace a file's content keeping its inode (procps keeps its files open)."""
    with open(path, "r+") as fh:
        fh.truncate(0)
        fh.write(text)


def test_deltas_of_a_changing_tree_match_real_vmstat(real_vmstat, tmp_path):
    """Counters that move between samples: si/so/bi/bo/in/cs and cpu shares."""
    procdir = make_tree(tmp_path / "proc", MEM, VM, [4976, 7, 1286, 42330, 168, 3, 46, 24, 9, 1],
                        intr=97303, ctxt=167095)
    args = ["-w", "1", "3"]
    real = subprocess.Popen(realtools._unshare_command(procdir, ["vmstat", *args]),
                            stdout=subprocess.PIPE, text=True, env={"PATH": os.environ["PATH"], "LC_ALL": "C"})
    ours = subprocess.Popen([sys.executable, "-m", "linmem.cli", "vmstat", "--proc", str(procdir), *args],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def bump(step: int) -> None:
        vm = {k: v + step * 1000 * (i + 1) for i, (k, v) in enumerate(VM.items())}
        _rewrite_in_place(procdir / "vmstat", "".join(f"{k} {v}\n" for k, v in vm.items()))
        cpu = [v + step * 37 * (i + 1) for i, v in enumerate([4976, 7, 1286, 42330, 168, 3, 46, 24, 9, 1])]
        stat = (procdir / "stat").read_text().splitlines()
        stat[0] = "cpu  " + " ".join(map(str, cpu))
        stat = [re.sub(r"^(intr|ctxt) (\d+)", lambda m: f"{m[1]} {int(m[2]) + step * 4321}", line)
                for line in stat]
        _rewrite_in_place(procdir / "stat", "\n".join(stat) + "\n")

    time.sleep(0.5)
    bump(1)
    time.sleep(1.0)
    bump(3)
    real_out, our_out = real.communicate(timeout=30)[0], ours.communicate(timeout=30)[0]
    assert our_out == real_out
    lines = our_out.splitlines()
    assert len(lines) == 5
    assert lines[3].split()[6:12] == ["16000", "20000", "2000", "3000", "4321", "4321"]


def test_memory_columns_follow_the_tree(tmp_path):
    """Deliberate difference: procps-ng 4.0.2 never re-reads meminfo after the
    first line (fixed in 4.0.3); linmem shows the current memory in every line."""
    procdir = make_tree(tmp_path / "proc", MEM, VM, [4976, 0, 1286, 42330, 168, 0, 46, 24, 0, 0])
    ours = subprocess.Popen([sys.executable, "-m", "linmem.cli", "vmstat", "--proc", str(procdir), "1", "2"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(0.5)
    _rewrite_in_place(procdir / "meminfo", (procdir / "meminfo").read_text().replace("24193828", "12345678"))
    lines = ours.communicate(timeout=30)[0].splitlines()
    assert lines[2].split()[3] == "24193828"
    assert lines[3].split()[3] == "12345678"


def test_help_and_version_match_real_vmstat(real_vmstat, capsys):
    proc_lines = ("     --proc <path>      read <path> (a proc tree, e.g. one linmem run\n"
                  "                          wrote) instead of /proc\n")
    assert proc_lines in VMSTAT_USAGE
    assert realtools.run_real_full("vmstat", ["--help"], "/proc").stdout == \
        VMSTAT_USAGE.replace(proc_lines, "")
    for flag in ("-h", "--help"):
        rc, out, _ = linmem(capsys, "vmstat", flag)
        assert (rc, out) == (0, VMSTAT_USAGE)
    rc, out, _ = linmem(capsys, "vmstat", "-V")
    assert out == realtools.run_real_full("vmstat", ["-V"], "/proc").stdout


# --- the live host ---------------------------------------------------------------

@pytest.mark.realkernel
def test_live_stats_match_real_vmstat(capsys):
    """vmstat -s on the live /proc: the lines that do not move must agree."""
    if not Path("/usr/bin/vmstat").exists() or not Path("/proc/stat").exists():
        pytest.skip("no /usr/bin/vmstat or no /proc/stat on this machine")
    rc, out, _ = linmem(capsys, "vmstat", "--proc", "/proc", "-s")
    real = subprocess.run(["/usr/bin/vmstat", "-s"], capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C"}).stdout
    stable = ("total memory", "total swap", "boot time")
    pick = lambda text: [l for l in text.splitlines() if l.endswith(stable)]  # noqa: E731
    assert rc == 0 and len(pick(out)) == 3
    assert pick(out) == pick(real)
    assert [l[14:] for l in out.splitlines()] == [l[14:] for l in real.splitlines()]


# --- units and parsers -------------------------------------------------------------

def test_unit_convert_rounds_through_a_float():
    assert unit_convert(24325976, 1024) == 24325976
    assert unit_convert(16777217, 1024) == 16777216      # float has 24 bits
    assert unit_convert(1048576, 1048576) == 1024
    assert unit_convert(1000, 1000) == 1024
    assert unit_convert(10 ** 18, 1) == 0                # past 2**64 -> 0 as gcc converts


def test_stat_parser_follows_procps():
    stat = parse_stat("cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu1 0 0 0 0 0 0 0 0\n"
                      "intr 99 1 2\nctxt 5\nbtime 17\nprocesses 3\nprocs_running 2\n")
    assert stat["cpu"]["steal"] == 8 and stat["cpu"]["guest"] == 0
    assert (stat["ncpus"], stat["intr"], stat["ctxt"], stat["procs_blocked"]) == (2, 99, 5, 0)
    with pytest.raises(InputError) as err:
        parse_stat("cpu  1 2 3 4 5 6 7\n", "/p/stat")
    assert err.value.where == "/p/stat:1"
    with pytest.raises(InputError) as err:
        parse_stat("cpu  1 2 3 4 5 6 7 8\nintr 1\nctxt many\n", "/p/stat")
    assert err.value.where == "/p/stat:3"


def test_vmstat_and_uptime_parsers():
    assert parse_vmstat("pgpgin 5\npgpgout 7\n") == {"pgpgin": 5, "pgpgout": 7}
    with pytest.raises(InputError) as err:
        parse_vmstat("pgpgin 5\npgpgout\n", "/p/vmstat")
    assert err.value.where == "/p/vmstat:2"
    assert parse_uptime("350735.47 234388.90\n") == (350735.47, 234388.90)
    with pytest.raises(InputError):
        parse_uptime("soon\n")


# --- bad input ---------------------------------------------------------------------

def test_missing_directory_is_one_line_exit_2(capsys):
    rc, out, err = linmem(capsys, "vmstat", "--proc", "/nonexistent")
    assert (rc, out) == (2, "")
    assert err == "linmem: /nonexistent: no such directory\n"


@pytest.mark.parametrize("missing", ["stat", "vmstat", "meminfo"])
def test_missing_file_is_one_line_exit_2(capsys, tmp_path, missing):
    procdir = make_tree(tmp_path / "proc", MEM, VM, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    (procdir / missing).unlink()
    for options in ([], ["-s"]):
        rc, out, err = linmem(capsys, "vmstat", "--proc", str(procdir), *options)
        assert rc == 2 and out == ""
        assert err == f"linmem: {procdir / missing}: no such file\n"


def test_malformed_stat_names_the_line(capsys, tmp_path):
    procdir = make_tree(tmp_path / "proc", MEM, VM, [1, 2, 3, 4, 5, 6, 7])
    rc, out, err = linmem(capsys, "vmstat", "--proc", str(procdir))
    assert rc == 2 and out == ""
    assert err.startswith(f"linmem: {procdir / 'stat'}:1: ") and err.count("\n") == 1


@pytest.mark.parametrize("options, message", [
    (["-S", "x"], "-S requires k, K, m or M"),
    (["0"], "delay must be positive integer"),
    (["soon"], "failed to parse argument"),
    (["1", "2", "3"], "unexpected argument"),
    (["-d"], "not supported"),
    (["-m"], "not supported"),
])
def test_bad_options_exit_2(capsys, frozen, options, message):
    rc, out, err = linmem(capsys, "vmstat", "--proc", str(frozen), *options)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_missing_directory_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "linmem.cli", "vmstat", "--proc", "/nonexistent"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr == "linmem: /nonexistent: no such directory\n"
    assert "Traceback" not in proc.stderr


def test_vmstat_starts_light(frozen):
    code = ("import sys; from linmem.cli import main; rc = main(['vmstat', '--proc', sys.argv[1]]);"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'numba')"
            " or m.startswith(('linmem.mm', 'linmem.engine', 'linmem.kernel'))];"
            "print('HEAVY', bad, file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(frozen)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "HEAVY []" in proc.stderr
