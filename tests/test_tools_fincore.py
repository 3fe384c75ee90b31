"""``linmem fincore`` against util-linux 2.38.1 ``fincore``, and over pagecache.json.

On the host both tools ask mincore(2) about the same files: one written
(resident), one written, synced and dropped with POSIX_FADV_DONTNEED
(evicted), one dropped and then read in part, a sparse 300 MiB file with a
page in each of three 128 MiB mmap windows, an empty file, sizes that print
with a decimal, odd names, a directory and a missing file. The outputs, the
warnings and the exit statuses must be byte-identical (``LC_ALL=C``) for every
option set. The page cache can change under the test (another process's
memory pressure), so each comparison puts the files back into their state and
is taken between two runs of the real tool that agree.

Over a simulated machine's ``pagecache.json`` the expected output is written
out from the rules (51200 pages of 4096 bytes -> ``200M 51200 200M``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linmem.cli import main
from linmem.tools import fincore as fc
from linmem.tools.utillinux import size_to_human_string, string_add_to_idarray

ROOT = Path(__file__).resolve().parents[1]
REAL = "/usr/bin/fincore"
_C_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

MiB = 1 << 20
ODD_NAMES = ["sp ace", "t\tab", 'q"b\\s', "\\x41", "é", "nl\nx", "c\x01x"]


@pytest.fixture(scope="module")
def real_fincore():
    if not os.path.exists(REAL):
        pytest.skip(f"{REAL} (util-linux) is not installed: nothing to compare with")
    version = subprocess.run([REAL, "-V"], capture_output=True, text=True, env=_C_ENV).stdout
    if "2.38.1" not in version:
        pytest.skip(f"the reference is util-linux 2.38.1, found {version.strip()!r}")


@pytest.fixture(autouse=True)
def c_locale(monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")


def run_real(args: list[str], cwd, env=None) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(["fincore", *args], executable=REAL, cwd=cwd, capture_output=True,
                          env={**_C_ENV, **(env or {})}, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def run_ours(capsysbinary, args: list[str]) -> tuple[int, bytes, bytes]:
    capsysbinary.readouterr()
    rc = main(["fincore", *args])
    out, err = capsysbinary.readouterr()
    return rc, out, err


def run_ours_subprocess(args: list[str], cwd=None, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C", **(env or {}),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "linmem.cli", "fincore", *args], cwd=cwd,
                          capture_output=True, env=env, stdin=subprocess.DEVNULL)


# --- files on the host, in a known residency ----------------------------------------------------

def _write(path: Path, size: int, sync: bool = True) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(size))
        if sync:
            f.flush()
            os.fsync(f.fileno())


def _drop(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _read(path: Path, offset: int, size: int, random: bool = False) -> None:
    """pread; with random, POSIX_FADV_RANDOM first, so that readahead reads no more
    than asked (page_cache_sync_ra's forced read of req_count pages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if random:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        os.pread(fd, size, offset)
    finally:
        os.close(fd)


class HostFiles:
    """Files made resident, evicted or partly resident, and put back so before each use."""

    SPARSE_PAGES = (0, 130 * MiB, 299 * MiB)      # one page in each 128 MiB window

    def __init__(self, root: Path):
        self.root = root
        _write(root / "resident", 3 * MiB)
        _write(root / "evicted", 1 * MiB)
        _write(root / "partial", 2 * MiB)
        _write(root / "decimal", 1536000)                     # 1.5M
        (root / "empty").touch()
        with open(root / "sparse", "wb") as f:
            f.truncate(300 * MiB)
            for offset in self.SPARSE_PAGES:
                f.seek(offset)
                f.write(b"x" * 4096)
            os.fsync(f.fileno())
        with open(root / "hole", "wb") as f:
            f.truncate(2031616)                               # 1.9M, nothing cached
        for name in ODD_NAMES:
            _write(root / name, 8192)
        (root / "dir").mkdir()

    def settle(self) -> None:
        """Put every file back into its intended residency."""
        _read(self.root / "resident", 0, 3 * MiB)
        _drop(self.root / "evicted")
        _drop(self.root / "partial")
        _read(self.root / "partial", 0, 64 << 10)
        _read(self.root / "partial", 1 * MiB, 64 << 10)
        # If the host evicted a page of the sparse file, a plain read would read ahead
        # into its holes; drop it whole and read the three pages back without readahead.
        _drop(self.root / "sparse")
        for offset in self.SPARSE_PAGES:
            _read(self.root / "sparse", offset, 4096, random=True)

    def names(self) -> list[str]:
        return ["resident", "evicted", "partial", "decimal", "empty", "sparse", "hole",
                *ODD_NAMES, "dir", "missing", "resident"]


@pytest.fixture(scope="module")
def host_files(tmp_path_factory):
    return HostFiles(tmp_path_factory.mktemp("fincore"))


def compare_with_real(capsysbinary, monkeypatch, files: HostFiles, args: list[str]):
    """Run real, ours, real until the two real runs agree; then ours must equal them."""
    monkeypatch.chdir(files.root)
    for _ in range(6):
        files.settle()
        before = run_real(args, files.root)
        ours = run_ours(capsysbinary, args)
        after = run_real(args, files.root)
        if before == after:
            assert ours[1].decode(errors="replace") == before[1].decode(errors="replace")
            assert ours == before
            return before
    pytest.fail(f"the page cache kept changing under fincore {args}")


OPTION_SETS = [
    "", "-b", "-n", "-r", "-J", "-bn", "-br", "-bJ", "-rn", "-Jn", "-Jr", "-bnr",
    "--bytes --noheadings", "--raw --bytes", "--json --bytes", "--by --noh",
    "-o PAGES", "-o SIZE", "-o FILE", "-o RES", "-o file,res", "-o RES,PAGES,SIZE,FILE",
    "-o FILE,PAGES,RES,SIZE", "-o +PAGES", "-o +file,res", "-o FILE,FILE,RES",
    "-b -o +SIZE,RES", "-o pages,res,size,file,pages,res,size,file", "-J -o +PAGES",
    "-Jb -o FILE,SIZE,RES", "-r -o FILE,SIZE", "--output=size,file", "-oRES,FILE",
    "-o +res,res,res,res", "-n -o FILE,PAGES",
]
FILE_SETS = {
    "all": None,                        # HostFiles.names()
    "missing": ["missing"],
    "empty": ["empty"],
    "dir": ["dir"],
    "decimals": ["decimal", "hole", "sparse"],
}


@pytest.mark.parametrize("files", list(FILE_SETS))
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: o or "default")
def test_matches_real_fincore(real_fincore, host_files, capsysbinary, monkeypatch, options,
                              files):
    names = FILE_SETS[files] or host_files.names()
    compare_with_real(capsysbinary, monkeypatch, host_files, options.split() + names)


def test_the_files_are_in_the_states_meant(real_fincore, host_files, capsysbinary, monkeypatch):
    """The fixture does what it says (where the page cache can be dropped at all)."""
    rc, out, _ = compare_with_real(capsysbinary, monkeypatch, host_files,
                                   ["-b", "-o", "PAGES,SIZE,FILE", "resident", "sparse", "hole",
                                    "decimal", "empty", "missing"])
    rows = {line.split()[-1]: line.split()[:2] for line in out.decode().splitlines()[1:]}
    assert rc == 1
    assert rows["resident"] == ["768", str(3 * MiB)]
    assert rows["sparse"] == ["3", str(300 * MiB)]
    assert rows["hole"] == ["0", "2031616"]
    assert rows["empty"] == ["0", "0"]
    assert "missing" not in rows


def test_options_after_the_files_and_double_dash(real_fincore, host_files, capsysbinary,
                                                 monkeypatch):
    compare_with_real(capsysbinary, monkeypatch, host_files, ["resident", "-b", "evicted", "-n"])
    compare_with_real(capsysbinary, monkeypatch, host_files, ["-r", "--", "partial", "missing"])


def test_version_and_help(real_fincore, capsysbinary):
    assert run_ours(capsysbinary, ["-V"])[:2] == run_real(["-V"], "/")[:2] \
        == (0, b"fincore from util-linux 2.38.1\n")
    rc, ours, _ = run_ours(capsysbinary, ["-h"])
    real = run_real(["--help"], "/")[1]
    assert rc == 0
    ours_lines = ours.decode().splitlines()
    # Every line of 2.38.1's help is there, in its order; linmem adds --run and 2.40's columns.
    remaining = iter(ours_lines)
    assert all(line in remaining for line in real.decode().splitlines())
    assert any("--run" in line for line in ours_lines)
    assert any(line.split()[:1] == ["RECENTLY_EVICTED"] for line in ours_lines)


def test_utf8_locale_matches_real_fincore(real_fincore, host_files):
    locales = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    name = next((n for n in locales if n.lower() in ("c.utf8", "c.utf-8")), None)
    if name is None:
        pytest.skip("no C.UTF-8 locale to compare in")
    (host_files.root / "中文").write_bytes(b"x")
    names = ["中文", "é", "c\x01x", "nl\nx", "\\x41", os.fsdecode(b"\xff\xfe"), "missing"]
    for options in ([], ["-r"], ["-J"], ["-o", "FILE,PAGES"]):
        real = run_real(options + names, host_files.root, env={"LC_ALL": name})
        ours = run_ours_subprocess(options + names, cwd=host_files.root, env={"LC_ALL": name})
        assert (ours.returncode, ours.stdout, ours.stderr) == real


@pytest.mark.parametrize("args, real_message", [
    ([], b"fincore: no file specified\n"),
    (["-o", "bogus,RES", "f"], b"fincore: unknown column: bogus,RES\n"),
    (["-o", "RES,", "f"], b"fincore: unknown column: RES,\n"),
    (["-o", "RES,,FILE", "f"], b""),
    (["-o", "", "f"], b""),
    (["-o", "+", "f"], b""),
    (["-o", "+res,res,res,res,res", "f"], b""),
    (["-x", "f"], b"fincore: invalid option -- 'x'\n"),
    (["--bogus", "f"], b"fincore: unrecognized option '--bogus'\n"),
])
def test_option_errors_are_one_line_and_exit_2(real_fincore, capsysbinary, args, real_message):
    """util-linux exits 1 (sometimes silently); linmem says what is wrong on one line, exit 2."""
    rc, out, err = run_ours(capsysbinary, args)
    assert (rc, out) == (2, b"")
    assert err.startswith(b"linmem: fincore") and err.count(b"\n") == 1, err
    real_rc, real_out, real_err = run_real(args, "/")
    assert (real_rc, real_out) == (1, b"")
    assert real_err.startswith(real_message)
    if real_message.startswith(b"fincore: unknown column") or b"no file" in real_message:
        assert err.endswith(real_message.split(b"fincore: ", 1)[1])


# --- the util-linux rules, on their own ---------------------------------------------------------

@pytest.mark.parametrize("nbytes, text", [
    # Printed by util-linux 2.38.1 fincore for files of these sizes.
    (0, "0B"), (1, "1B"), (1023, "1023B"), (1024, "1K"), (1025, "1K"), (1100, "1.1K"),
    (1126, "1.1K"), (1127, "1.1K"), (1048575, "1024K"), (1536000, "1.5M"),
    (2031616, "1.9M"), (2044723, "1.9M"), (209715200, "200M"), (1073741824, "1G"),
    (1610612736, "1.5G"), (5000000000000, "4.5T"),
    # The same rules further up.
    (1 << 60, "1E"), ((1 << 64) - 1, "16E"), (3 << 50, "3P"),
])
def test_size_to_human_string(nbytes, text):
    assert size_to_human_string(nbytes) == text


def test_string_add_to_idarray():
    names = ["PAGES", "SIZE", "FILE", "RES"]
    assert string_add_to_idarray("res,File", [3, 0, 1, 2], 8, names) == [3, 2]
    assert string_add_to_idarray("+pages", [3, 0, 1, 2], 8, names) == [3, 0, 1, 2, 0]
    full = string_add_to_idarray("+res,res,res,res", [3, 0, 1, 2], 8, names)
    assert full == [3, 0, 1, 2, 3, 3, 3, 3]
    for bad in ["", "+", "res,,file", ",res", "res,", "+res,res,res,res,res", "nope"]:
        with pytest.raises(fc.InputError):
            string_add_to_idarray(bad, [3, 0, 1, 2], 8, names)


# --- a simulated machine's pagecache.json -------------------------------------------------------

PAGECACHE = {
    "page_size": 4096,
    "files": [
        {"path": "/data/f200", "size": 209715200, "fs": "ext4", "cached": 51200,
         "dirty": 0, "writeback": 0, "evicted": 0, "recently_evicted": 0},
        {"path": "/data/log", "size": 2031616, "fs": "ext4", "cached": 375,
         "dirty": 3, "writeback": 1, "evicted": 7, "recently_evicted": 2},
        {"path": "/var/empty", "size": 0, "fs": "tmpfs", "cached": 0,
         "dirty": 0, "writeback": 0, "evicted": 0, "recently_evicted": 0},
    ],
}


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "pagecache.json").write_text(json.dumps(PAGECACHE, indent=1))
    return tmp_path


def test_simulated_default(run_dir, capsysbinary):
    assert run_ours(capsysbinary, ["--run", str(run_dir), "/data/f200"]) == (0, (
        b"  RES PAGES  SIZE FILE\n"
        b" 200M 51200  200M /data/f200\n"), b"")


def test_simulated_several_files_decimals_and_empty(run_dir, capsysbinary):
    rc, out, err = run_ours(capsysbinary, ["--run", str(run_dir), "/data/f200", "/data/log",
                                           "/var/empty"])
    assert (rc, err) == (0, b"")
    assert out == (b"  RES PAGES  SIZE FILE\n"
                   b" 200M 51200  200M /data/f200\n"
                   b" 1.5M   375  1.9M /data/log\n"          # 375 * 4096 = 1536000 B
                   b"   0B     0    0B /var/empty\n")


def test_simulated_bytes_raw_json(run_dir, capsysbinary):
    args = ["--run", str(run_dir), "/data/f200", "/data/log"]
    assert run_ours(capsysbinary, ["-b", *args])[1] == (
        b"      RES PAGES      SIZE FILE\n"
        b"209715200 51200 209715200 /data/f200\n"
        b"  1536000   375   2031616 /data/log\n")
    assert run_ours(capsysbinary, ["-rn", *args])[1] == (
        b"200M 51200 200M /data/f200\n"
        b"1.5M 375 1.9M /data/log\n")
    assert run_ours(capsysbinary, ["-J", *args])[1] == (
        b'{\n   "fincore": [\n'
        b'      {\n'
        b'         "res": "200M",\n         "pages": 51200,\n'
        b'         "size": "200M",\n         "file": "/data/f200"\n'
        b'      },{\n'
        b'         "res": "1.5M",\n         "pages": 375,\n'
        b'         "size": "1.9M",\n         "file": "/data/log"\n'
        b'      }\n   ]\n}\n')
    assert json.loads(run_ours(capsysbinary, ["-Jb", *args])[1])["fincore"][1] == {
        "res": 1536000, "pages": 375, "size": 2031616, "file": "/data/log"}


def test_simulated_cachestat_columns(run_dir, capsysbinary):
    args = ["--run", str(run_dir), "-o", "FILE,DIRTY,DIRTY_PAGES,WRITEBACK,EVICTED_PAGES,"
            "RECENTLY_EVICTED", "/data/log"]
    assert run_ours(capsysbinary, ["-b", *args])[1] == (
        b"FILE      DIRTY DIRTY_PAGES WRITEBACK EVICTED_PAGES RECENTLY_EVICTED\n"
        b"/data/log 12288           3      4096             7             8192\n")
    assert run_ours(capsysbinary, args)[1] == (
        b"FILE      DIRTY DIRTY_PAGES WRITEBACK EVICTED_PAGES RECENTLY_EVICTED\n"
        b"/data/log   12K           3        4K             7               8K\n")
    rc, out, _ = run_ours(capsysbinary, ["--run", str(run_dir), "--output-all", "-J", "/data/log"])
    row = json.loads(out)["fincore"][0]
    assert row["writeback_pages"] == 1 and row["writeback"] == "4K"
    assert list(row) == [c.name.lower() for c in fc.INFOS]


def test_simulated_missing_path_and_directories(run_dir, capsysbinary):
    rc, out, err = run_ours(capsysbinary, ["--run", str(run_dir), "/data/nope", "/data",
                                           "//data//log", "/"])
    assert rc == 1
    assert err == b"fincore: failed to open: /data/nope: No such file or directory\n"
    assert out == b"  RES PAGES  SIZE FILE\n 1.5M   375  1.9M //data//log\n"
    assert run_ours(capsysbinary, ["--run", str(run_dir), "/data"]) == (0, b"", b"")


def test_simulated_snapshot_directory(run_dir, capsysbinary):
    snap = run_dir / "snapshots" / "after"
    snap.mkdir(parents=True)
    doc = {"page_size": 4096, "files": [{"path": "/data/f200", "size": 209715200, "cached": 0}]}
    (snap / "pagecache.json").write_text(json.dumps(doc))
    assert run_ours(capsysbinary, ["--run", str(snap), "/data/f200"])[1] == (
        b"RES PAGES  SIZE FILE\n 0B     0  200M /data/f200\n")
    rc, out, err = run_ours(capsysbinary, ["--run", str(snap), "-o", "+DIRTY", "/data/f200"])
    assert (rc, out) == (2, b"")
    assert err == f"linmem: {snap}/pagecache.json: files[0].dirty: missing\n".encode()


@pytest.mark.parametrize("text, where", [
    ('{"page_size": 4096,\n "files": [\n  {"path": "/a", \n', ":4: column 1: "),
    ("[]", ": expected a JSON object"),
    ('{"files": []}', ": page_size: missing"),
    ('{"page_size": 0, "files": []}', ": page_size: expected a positive integer, got 0"),
    ('{"page_size": 4096}', ": files: expected a list"),
    ('{"page_size": 4096, "files": [{"path": "/a", "size": 1}]}', ": files[0].cached: missing"),
    ('{"page_size": 4096, "files": [{"path": "/a", "size": -1, "cached": 0}]}',
     ": files[0].size: expected a non-negative integer, got -1"),
    ('{"page_size": 4096, "files": [{"path": "/a", "size": 1, "cached": "3"}]}',
     ": files[0].cached: expected a non-negative integer, got '3'"),
    ('{"page_size": 4096, "files": [{"path": "/a", "size": 1, "cached": true}]}',
     ": files[0].cached: expected a non-negative integer, got True"),
    ('{"page_size": 4096, "files": [{"path": "a", "size": 1, "cached": 0}]}',
     ": files[0].path: expected an absolute path, got 'a'"),
    ('{"page_size": 4096, "files": [{"path": "/a", "size": 1, "cached": 0}, '
     '{"path": "//a", "size": 1, "cached": 0}]}', ": files[1].path: //a is listed twice"),
])
def test_malformed_pagecache_json_is_one_line_exit_2(tmp_path, capsysbinary, text, where):
    (tmp_path / "pagecache.json").write_text(text)
    rc, out, err = run_ours(capsysbinary, ["--run", str(tmp_path), "/a"])
    assert (rc, out) == (2, b"")
    assert err.startswith(f"linmem: {tmp_path}/pagecache.json{where}".encode()), err
    assert err.count(b"\n") == 1


def test_no_pagecache_json_and_no_traceback(tmp_path):
    proc = run_ours_subprocess(["--run", str(tmp_path), "/a"])
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.startswith(f"linmem: {tmp_path}/pagecache.json: no such file".encode())
    assert proc.stderr.count(b"\n") == 1 and b"Traceback" not in proc.stderr


# --- cachestat on the host ----------------------------------------------------------------------

def test_host_cachestat_columns(tmp_path, capsysbinary, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "synced", 64 << 10)
    if not fc.HostPageCache().has_cachestat():
        pytest.skip("this kernel has no cachestat(2) (Linux 6.5+)")
    rc, out, err = run_ours(capsysbinary, ["-n", "-o", "DIRTY_PAGES,WRITEBACK_PAGES,FILE",
                                           "synced"])
    assert (rc, out, err) == (0, b"          0               0 synced\n", b"")


def test_host_without_cachestat_refuses_its_columns(tmp_path, capsysbinary, monkeypatch):
    monkeypatch.setattr(fc.HostPageCache, "has_cachestat", lambda self: False)
    rc, out, err = run_ours(capsysbinary, ["-o", "+EVICTED", "/etc/hostname"])
    assert (rc, out) == (2, b"")
    assert b"cachestat(2)" in err and err.count(b"\n") == 1
    assert run_ours(capsysbinary, ["-o", "PAGES", "/dev/null"]) == (0, b"PAGES\n    0\n", b"")


# --- start-up -----------------------------------------------------------------------------------

def test_import_is_light():
    code = ("import sys, linmem.tools.fincore; "
            "print([m for m in sys.modules if m.split('.')[0] in ('numpy', 'numba')"
            " or m.startswith(('linmem.mm', 'linmem.engine', 'linmem.kernel'))])")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


def test_fincore_starts_fast(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = run_ours_subprocess([str(tmp_path / "f")])
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
    assert best < 0.3, f"linmem fincore took {best:.3f} s at best"


def test_no_numpy_needed_even_for_a_big_sparse_file(tmp_path):
    """mincore's vector is counted with bytes.translate, window by window."""
    with open(tmp_path / "big", "wb") as f:
        f.truncate(1 << 30)
    proc = run_ours_subprocess(["-b", str(tmp_path / "big")])
    assert proc.stdout.split(b"\n")[1].split()[:3] == [b"0", b"0", str(1 << 30).encode()]

