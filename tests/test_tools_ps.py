"""``linmem ps`` against procps-ng 4.0.2 ``ps``.

A frozen tree holds copies of the /proc files of a few processes this module
starts (tests/proctools.py) plus kthreadd, pid 1 and the test process; the
real ps runs over it in a private mount namespace (with its own pid
directory added, which linmem then reads too) and the outputs must be
byte-identical. On the live host the rows of a sleeping process must agree.
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
from linmem.tools import readproc
from linmem.tools.ps import c_strtoul0, ps_escape, strverscmp

sys.path.insert(0, str(Path(__file__).parent))
import proctools  # noqa: E402
import realtools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

FROZEN_OPTIONS = [
    "aux", "-ef", "-eF", "-ely", "-elf", "axjf", "-ejH", "ax", "axu", "aux --forest",
    "-e -o pid,ppid,comm,vsz,rss,sz,%mem,maj_flt,min_flt,stat,user,args",
    "-e -o pid,pss,uss,rss,vsz,size,drs,trs,tsiz,dsiz,m_size,nlwp,thcount",
    "-e -o pid,tid,tgid,pgid,sid,tpgid,tty,tty4,tname,s,state,f,ni,pri,opri,priority,rtprio,"
    "cls,sched,psr",
    "-e -o pid,uid,ruid,suid,fsuid,gid,rgid,sgid,user,ruser,group,egroup,supgid,supgrp",
    "-e -o pid,etime,etimes,time,times,cputime,bsdtime,%cpu,c,cp,cuu,cuc",
    "-e -o pid,start,start_time,stime,bsdstart,lstart",
    "-e -o pid,pending,blocked,ignored,caught,sig,tsig,stackp,esp,eip,lim,wchan",
    "-e -o pid,user:3,comm:4,args:5,vsz=VIRTUAL,rss=R",
    "-e -o pid=,comm=", "-e -o pid= -o comm=Name", "-e --no-headers -o pid,comm",
    "aux --sort=-rss", "aux --sort=rss,-pid", "-e -o pid,comm,vsz --sort=-vsz",
    "-e -o pid,comm,vsz --sort=vsize", "-e -o pid,comm,tty --sort=tty,-pid",
    "-e -o pid,comm,maj_flt,min_flt --sort=-min_flt", "-e -o pid,user,comm --sort=user,comm",
    "-e -o pid,args --sort=args", "-e -o pid,stat,comm --sort=stat",
    "-e -o pid,%cpu,%mem,comm --sort=-%cpu,-%mem", "-e -o pid,etime,comm --sort=start_time",
    "aux k -pid", "axo pid,comm,rss O r", "-eO rss,vsz", "-e -N", "-A c", "axc",
    "-e -o pid,cmd -H",
    "l", "j", "s", "v", "u", "-l", "-f", "-F", "-j", "-e -o pid,args c", "--cols 60 aux",
    "ww aux", "aux --headers --rows 4", "axn u", "-e -o pid,fname,ucmd,cmd,command", "axe",
    "-e -o pid,fname:20,comm:3,pid", "axS u",
    "-e --cumulative -o pid,time,bsdtime,maj_flt,min_flt,%cpu",
    "-d -o pid,comm", "-a -o pid", "-e -o pid,comm:1,args:1,user:1", "", "T", "t", "x", "-x",
    "--format pid,comm --sort pid", "-e -ww -o args",
]


@pytest.fixture(scope="module")
def real_ps():
    reason = realtools.skip_reason("ps")
    if reason:
        pytest.skip(reason)
    if "4.0.2" not in realtools.real_version("ps"):
        pytest.skip(f"the reference is procps-ng 4.0.2 ps, found {realtools.real_version('ps')!r}")


@pytest.fixture(scope="module")
def samples():
    procs = proctools.SampleProcesses(str(PYTHON))
    yield procs
    procs.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory, samples):
    pids = samples.pids() + [1, 2, os.getpid()]
    return proctools.freeze_processes(tmp_path_factory.mktemp("ps") / "proc", pids,
                                      self_pid=samples.pid("sleeper"))


@pytest.fixture(autouse=True)
def c_locale(monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    monkeypatch.delenv("PS_FORMAT", raising=False)
    monkeypatch.delenv("PS_PERSONALITY", raising=False)
    time.tzset()
    yield
    time.tzset()


def linmem(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def compare(capsys, tree, args: list[str], env=None):
    """Run the real ps then linmem ps over ``tree``; return both results."""
    try:
        real = proctools.run_real_ps_tool("ps", args, tree)
        if real.returncode in (124, 125):
            pytest.skip(f"cannot prepare the namespace: {real.stderr.strip()}")
        rc, out, err = linmem(capsys, "ps", "--proc", str(tree), *args)
    finally:
        proctools.forget_pid(tree)
    return real, (rc, out, err)


# --- frozen trees, byte for byte ------------------------------------------------------

@pytest.mark.parametrize("options", FROZEN_OPTIONS)
def test_frozen_tree_matches_real_ps(real_ps, tree, capsys, options):
    real, (rc, out, err) = compare(capsys, tree, options.split())
    assert real.stderr == ""
    assert (rc, err) == (real.returncode, "")
    assert out == real.stdout


def test_frozen_tree_has_the_interesting_rows(real_ps, tree, samples, capsys):
    """The sample processes appear as procps shows them (zombie, odd argv, threads)."""
    _, (rc, out, _) = compare(capsys, tree, ["-e", "-o", "pid,stat,args"])
    rows = {int(line.split()[0]): line for line in out.splitlines()[1:]}
    assert "[true] <defunct>" in rows[samples.pid("zombie")]
    assert rows[samples.pid("zombie")].split()[1] == "Z"
    # the newline in argv[0] became a space, the tab a dot, each non-ASCII byte a '?'
    assert rows[samples.pid("odd")].endswith("odd.name with ??n?? 100000")
    assert rows[2].endswith("[kthreadd]")


@pytest.mark.parametrize("options", ["aux", "-e -o pid,comm,args", "-e -o pid,user:4,comm:4"])
def test_frozen_tree_utf8_locale_matches_real_ps(real_ps, tree, capsys, monkeypatch, options):
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    env = dict(realtools._ENV, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    try:
        real = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", proctools._WRAPPER, "sh",
             str(tree), "/usr/bin/ps", *options.split()],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        rc, out, _ = linmem(capsys, "ps", "--proc", str(tree), *options.split())
    finally:
        proctools.forget_pid(tree)
    assert out == real.stdout
    if "args" in options or options == "aux":
        assert "odd?name with \u00fcn\u00ef 100000" in out


def test_pid_selection_matches_real_ps(real_ps, tree, samples, capsys):
    pid = samples.pid("hog")
    for args in (["-p", str(pid)], ["u", "-p", str(pid)], ["-p", f"{pid},1", "-o", "pid,comm"],
                 ["--pid", str(pid), "-o", "pid,vsz,rss"], [str(pid)], ["p", str(pid), "u"],
                 ["--ppid", str(os.getpid()), "-o", "pid,ppid,comm"],
                 ["-q", str(pid), "-o", "pid,comm"], ["-q", f"2,{pid},1", "-o", "pid,comm"],
                 ["-p", f"2,{pid},1", "-o", "pid,comm"]):
        real, (rc, out, _) = compare(capsys, tree, args)
        assert (rc, out) == (real.returncode, real.stdout), args


def test_missing_pid_prints_the_header_and_exits_1(real_ps, tree, capsys):
    real, (rc, out, err) = compare(capsys, tree, ["-p", "999999"])
    assert real.returncode == 1 and rc == 1
    assert out == real.stdout
    assert out.split() == ["PID", "TTY", "TIME", "CMD"]


def test_format_list_matches_real_ps(real_ps, tree, capsys):
    real, (rc, out, _) = compare(capsys, tree, ["L"])
    assert out == real.stdout and rc == 0


def test_values_come_from_the_files(tree, samples, capsys):
    """VSZ/RSS from status, %MEM from meminfo, TIME from stat, as ps computes them."""
    pid = samples.pid("hog")
    status = (tree / str(pid) / "status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].split()[0] for line in status.splitlines()
              if line.startswith(("VmSize", "VmRSS"))}
    memtotal = int((tree / "meminfo").read_text().split()[1])
    rc, out, _ = linmem(capsys, "ps", "--proc", str(tree), "-p", str(pid), "-o", "vsz=,rss=,%mem=")
    vsz, rss, pmem = out.split()
    assert (vsz, rss) == (fields["VmSize"], fields["VmRSS"])
    permille = min(int(rss) * 1000 // memtotal, 999)
    assert pmem == f"{permille // 10}.{permille % 10}"


# --- the live host ---------------------------------------------------------------------

@pytest.mark.realkernel
def test_live_rows_of_a_sleeping_process_match(samples):
    if not Path("/usr/bin/ps").exists():
        pytest.skip("no /usr/bin/ps")
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    env.pop("COLUMNS", None)
    pid = str(samples.pid("sleeper"))
    real = subprocess.run(["/usr/bin/ps", "aux"], capture_output=True, text=True, env=env).stdout
    ours = subprocess.run([str(ROOT / ".venv" / "bin" / "linmem"), "ps", "--proc", "/proc", "aux"],
                          capture_output=True, text=True, env=env).stdout
    assert ours.splitlines()[0] == real.splitlines()[0]

    def row(text):
        return next(line for line in text.splitlines() if line.split()[1] == pid)
    mine, theirs = row(ours).split(), row(real).split()
    # USER PID VSZ RSS TTY STAT START and COMMAND; %CPU %MEM TIME may move
    for i in (0, 1, 4, 5, 6, 7, 8):
        assert mine[i] == theirs[i], (mine, theirs)
    assert mine[10:] == theirs[10:]
    args = ["-p", pid, "-o", "pid,ppid,comm,vsz,rss,sz,stat,user,tty,maj_flt,args"]
    real = subprocess.run(["/usr/bin/ps", *args], capture_output=True, text=True, env=env).stdout
    ours = subprocess.run([str(ROOT / ".venv" / "bin" / "linmem"), "ps", *args],
                          capture_output=True, text=True, env=env).stdout
    assert ours == real


@pytest.mark.realkernel
def test_live_whole_table_mostly_matches():
    """All of ``ps -e -o pid,comm,stat`` but the processes that come and go."""
    if not Path("/usr/bin/ps").exists():
        pytest.skip("no /usr/bin/ps")
    env = {**os.environ, "LC_ALL": "C"}
    env.pop("COLUMNS", None)
    args = ["-e", "-o", "pid,ppid,uid,comm"]
    real = subprocess.run(["/usr/bin/ps", *args], capture_output=True, text=True, env=env).stdout
    ours = subprocess.run([str(ROOT / ".venv" / "bin" / "linmem"), "ps", *args],
                          capture_output=True, text=True, env=env).stdout
    real_rows = {line.split()[0]: line for line in real.splitlines()}
    our_rows = {line.split()[0]: line for line in ours.splitlines()}
    common = set(real_rows) & set(our_rows)
    assert len(common) >= 0.8 * len(real_rows)
    for key in common:
        if "kworker" in real_rows[key]:
            continue          # a kworker's name follows its current work item
        assert our_rows[key] == real_rows[key]


# --- unit checks -------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, sign", [
    ("pts/1", "pts/10", -1), ("pts/9", "pts/10", -1), ("pts/10", "pts/9", 1), ("?", "pts/0", -1),
    ("tty1", "tty1", 0), ("ttyS0", "tty1", 1), ("a01", "a1", -1), ("a0", "a00", 1),
    ("1.10", "1.9", 1), ("item#99", "item#100", -1),
])
def test_strverscmp(a, b, sign):
    result = strverscmp(a, b)
    assert (result > 0) - (result < 0) == sign


def test_strtoul_base_zero():
    assert c_strtoul0("0x10") == (16, "")
    assert c_strtoul0("010") == (8, "")
    assert c_strtoul0("12abc") == (12, "abc")


def test_escaping():
    assert ps_escape(b"a\tb\x7f\xc3\xbc", 100) == ("a.b.??", 6)
    assert ps_escape(b"abcdef", 3) == ("abc", 3)
    assert ps_escape("\u00fcber".encode(), 3, utf8=True) == ("\u00fcbe", 3)
    assert readproc.lib_escape(b"x\ny", utf8=False) == b"x.y"
    assert readproc.lib_escape(b"x\ny\xff", utf8=True) == b"x?y?"


# --- bad input -----------------------------------------------------------------------------

def test_missing_directory_is_one_line_exit_2(capsys):
    rc, out, err = linmem(capsys, "ps", "--proc", "/nonexistent", "aux")
    assert (rc, out) == (2, "")
    assert err == "linmem: /nonexistent: no such directory\n"


def test_malformed_stat_is_one_line_exit_2(tmp_path, capsys):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    (tree / str(os.getpid()) / "stat").write_text("garbage without parentheses\n")
    rc, out, err = linmem(capsys, "ps", "--proc", str(tree), "aux")
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and f"{os.getpid()}/stat:1" in err


def test_malformed_status_is_one_line_exit_2(tmp_path, capsys):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    (tree / str(os.getpid()) / "status").write_text("Name:\tx\nVmRSS:\tlots kB\n")
    rc, out, err = linmem(capsys, "ps", "--proc", str(tree), "aux")
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and f"{os.getpid()}/status:2" in err and "VmRSS" in err


def test_vanished_process_directories_are_skipped(tmp_path, capsys):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid(), 2])
    (tree / "2" / "stat").unlink()           # as when a process exits while ps reads
    rc, out, _ = linmem(capsys, "ps", "--proc", str(tree), "-e", "-o", "pid=")
    assert rc == 0 and out.split() == [str(os.getpid())]


@pytest.mark.parametrize("args, message", [
    (["-o", "pid,nosuchfield"], 'unknown user-defined format specifier "nosuchfield"'),
    (["--sort=nosuch"], "unknown sort specifier"),
    (["-p", "x"], "process ID list syntax error"),
    (["-L"], "not supported"),
    (["-o", "pid,context"], "not supported"),
    (["--nonsense"], "unknown gnu long option"),
])
def test_bad_options_exit_2(capsys, tmp_path, args, message):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid()])
    rc, out, err = linmem(capsys, "ps", "--proc", str(tree), *args)
    assert (rc, out) == (2, "")
    assert message in err and err.count("\n") == 1


def test_help_and_version(capsys):
    rc, out, _ = linmem(capsys, "ps", "--help")
    assert rc == 0 and "--proc PATH" in out
    rc, out, _ = linmem(capsys, "ps", "-V")
    assert (rc, out) == (0, "ps from procps-ng 4.0.2\n")


# --- startup time ----------------------------------------------------------------------------

_STARTUP = """
import sys
from linmem.cli import main
rc = main(sys.argv[1:])
heavy = [m for m in sys.modules if m.split(".")[0] in ("numpy", "numba")
         or m.startswith(("linmem.mm", "linmem.engine", "linmem.kernel"))]
print("HEAVY", heavy, file=sys.stderr)
sys.exit(rc)
"""


def test_ps_starts_fast_and_light(tmp_path):
    tree = proctools.freeze_processes(tmp_path / "proc", [os.getpid(), 2])
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([str(PYTHON), "-c", _STARTUP, "ps", "--proc", str(tree), "aux"],
                              capture_output=True, text=True, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr
    assert best < 0.3, f"linmem ps took {best:.3f} s at best"


# --- synthetic variations of one process -------------------------------------------------

def clone_process(tree: Path, source_pid: int, pid: int, stat_fields: dict | None = None,
                  status_lines: dict | None = None) -> None:
    """Copy PROC/source_pid to PROC/pid with stat fields (1-based, as in proc(5))
    and status lines replaced."""
    src, dst = tree / str(source_pid), tree / str(pid)
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    stat = (src / "stat").read_text()
    head, tail = stat.rsplit(") ", 1)
    fields = [str(pid)] + [head.split(" (", 1)[1] + ")"] + tail.split()
    fields[0] = str(pid)
    for index, value in (stat_fields or {}).items():
        fields[index - 1] = str(value)
    (dst / "stat").write_text(f"{fields[0]} ({fields[1][:-1]}) " + " ".join(fields[2:]) + "\n")
    lines = []
    for line in (src / "status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("Pid", "Tgid"):
            line = f"{key}:\t{pid}"
        if status_lines and key in status_lines:
            line = f"{key}:\t{status_lines[key]}"
        lines.append(line)
    (dst / "status").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def variants(tmp_path_factory, samples):
    """Clones of the sleeper with terminals, nice values, locks, threads, states."""
    sleeper = samples.pid("sleeper")
    tree = proctools.freeze_processes(tmp_path_factory.mktemp("psvar") / "proc", [sleeper, 2])
    cases = {
        40001: ({7: 4 << 8 | 1, 8: 40001, 5: 40001}, {}),           # tty1, foreground
        40002: ({7: 5 << 8 | 1, 19: -5}, {"State": "R (running)"}),  # console, nice -5
        40003: ({7: 4 << 8 | 12, 19: 10}, {"VmLck": "     64 kB"}),  # tty12, nice 10, locked
        40004: ({7: 136 << 8 | 3, 20: 4}, {"Threads": "4"}),          # pts/3 (absent): '?'
        40005: ({7: 4 << 8 | 64, 6: 40005}, {"State": "D (disk sleep)"}),  # ttyS0, leader
        40006: ({7: 4 << 8 | 2, 3: "T"}, {"State": "T (stopped)"}),
        40007: ({41: 1, 40: 50}, {}),                                 # SCHED_FIFO rtprio 50
        40008: ({14: 123456, 15: 654321, 22: 1}, {}),                 # cpu time, early start
        40009: ({10: 77, 12: 5}, {"Uid": "1000\t4242\t4242\t4242"}),  # unknown uid 4242
        40010: ({19: 19, 41: 5}, {"VmRSS": " 9999999 kB"}),           # SCHED_IDLE, huge RSS
    }
    for pid, (stat_fields, status_lines) in cases.items():
        clone_process(tree, sleeper, pid, stat_fields, status_lines)
    return tree


VARIANT_OPTIONS = [
    "aux", "-e -o pid,tty,tty4,tname,stat,ni,pri,cls,rtprio,sched,uid,user,%mem,time,bsdtime",
    "-e -o pid,tty,stat --sort=tty", "-e -o pid,tty4 --sort=-tty4,pid", "axr",
    "-e -o pid,time,start_time --sort=-time",
    "-e -o pid,user:3,ruser,euid --sort=user", "-e -l", "-e -o pid,s,state,stat --sort=-stat",
    "-t tty1 -o pid,tty", "--tty tty12,console -o pid,tty", "-U 4242 -o pid,user",
    "-u 1000 -o pid", "--User 1000 -o pid", "--sid 40005 -o pid,sid", "-g 40005 -o pid",
    "-e -o pid,cputimes,etimes,lstart", "-e -o pid,nlwp,stat,%cpu,c",
]


@pytest.mark.parametrize("options", VARIANT_OPTIONS)
def test_variants_match_real_ps(real_ps, variants, capsys, options):
    real, (rc, out, err) = compare(capsys, variants, options.split())
    assert real.stderr == ""
    assert (rc, err) == (real.returncode, "")
    assert out == real.stdout


# --- the trees linmem run writes -------------------------------------------------------------

@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    trees = proctools.simulated_trees(tmp_path_factory.mktemp("sim") / "out", str(PYTHON))
    if not trees:
        pytest.skip("linmem run wrote no tree with processes")
    return trees


@pytest.mark.parametrize("options", ["aux", "-ef", "-ely", "-e -o pid,ppid,comm,vsz,rss,sz,%mem,"
                                     "maj_flt,min_flt,stat,user,args", "axjf", "aux --sort=-rss"])
def test_simulated_trees_match_real_ps(real_ps, simulated, capsys, options):
    """Real ps reads the trees linmem run writes, and prints what linmem ps prints."""
    for tree in simulated:
        real, (rc, out, err) = compare(capsys, tree, options.split())
        assert real.stderr == "", tree
        assert (rc, out) == (real.returncode, real.stdout), tree


def test_real_top_shows_the_rss_and_vsz_of_linmem_ps(real_ps, simulated, capsys):
    """top -b -n1 over a simulated tree: VIRT and RES of each process are the
    VSZ and RSS that linmem ps prints (both in KiB)."""
    if shutil.which("top") is None:
        pytest.skip("no top on this machine")
    for tree in simulated:
        try:
            real = proctools.run_real_ps_tool("top", ["-b", "-n1", "-w", "200"], tree)
        finally:
            proctools.forget_pid(tree)
        if real.returncode != 0:
            pytest.skip(f"real top cannot run over a crafted tree here: {real.stderr.strip()}")
        rows = {}
        for line in real.stdout.splitlines():
            fields = line.split()
            if fields and fields[0].isdigit():
                rows[int(fields[0])] = (int(fields[4]), int(fields[5]))
        rc, out, _err = linmem(capsys, "ps", "--proc", str(tree), "-e", "-o", "pid=,vsz=,rss=")
        ours = {int(p): (int(v), int(r)) for p, v, r in (ln.split() for ln in out.splitlines())}
        assert ours and all(rows[pid] == ours[pid] for pid in ours), tree
