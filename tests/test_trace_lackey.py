"""valgrind lackey traces: a recorded trace against a plain parser, chunking,
block boundaries inside lines, zstd, pids, modify records, and every kind of
malformed input, from the reader and through ``linmem trace``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from linmem.cli import main
from linmem.errors import InputError
from linmem.trace import OP_IFETCH, OP_READ, OP_WRITE, open_trace
from linmem.trace import lackey
from tracetools import assert_cli_rejects, assert_same, columns

RECORDED = Path(__file__).parent / "data" / "traces" / "true.lackey.zst"
PREFIX = re.compile(r"^(I  | L | S | M )")
RECORD = re.compile(r"^(I  | L | S | M )([0-9a-fA-F]{1,16}),(\d{1,10})[ \t\r]*$")
PID = re.compile(r"^==(\d{1,11})==")
INT32_MAX = (1 << 31) - 1
OPS = {"I  ": [OP_IFETCH], " L ": [OP_READ], " S ": [OP_WRITE], " M ": [OP_READ, OP_WRITE]}

SAMPLE = ("==7== Lackey, an example Valgrind tool\n"
          "I  0401ab70,3\n"
          " S 1fff000778,8\n"
          " M 0422a000,4\n"
          "a line of the program's own output\n"
          "\n"
          "==8== Parent PID: 7\n"
          " L ffffffffff600000,8\n"
          "I  0401AB73,15\n"
          " L 00000000,1\r\n"
          "==8== \n")


class Rejected(Exception):
    """The reference parser's verdict on a malformed line (its number)."""


def reference(text: str) -> dict[str, np.ndarray]:
    """The requests of a lackey trace, by regular expressions: slow and plain.
    Raises Rejected(line) at the first malformed record or pid."""
    rows, pid = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        if m := PID.match(line):
            pid = int(m.group(1))
            if pid > INT32_MAX:
                raise Rejected(number)
        elif m := RECORD.match(line):
            addr, size = int(m.group(2), 16), int(m.group(3))
            if not 1 <= size <= INT32_MAX:
                raise Rejected(number)
            addr -= (addr >> 63) << 64                     # the int64 of the same bits
            rows += [(pid, addr, op, size) for op in OPS[m.group(1)]]
        elif PREFIX.match(line):
            raise Rejected(number)
    if not rows:
        raise Rejected(None)
    pid, addr, op, size = zip(*rows)
    return {"time": np.arange(len(rows), dtype=np.int64), "pid": np.array(pid, np.int32),
            "addr": np.array(addr, np.int64), "op": np.array(op, np.uint8),
            "size": np.array(size, np.int32)}


def write(tmp_path, text: str | bytes, name="t.lackey") -> str:
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    if name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def recorded_text() -> str:
    return zstandard.ZstdDecompressor().decompressobj().decompress(RECORDED.read_bytes()).decode()


def test_a_recorded_trace_reads_as_the_plain_parser_reads_it(recorded_text):
    got = columns(open_trace(str(RECORDED), "lackey"))
    assert_same(got, reference(recorded_text))
    assert len(got["addr"]) == 168726 and set(got["pid"]) == {18834}
    assert np.bincount(got["op"]).tolist() == [27867 + 1504, 10264 + 1504, 127587]


def test_records_pids_and_modify(tmp_path):
    """The sample: the pid of the last ==PID== line; M is a read then a
    write; other lines are skipped; a 16-digit address keeps its 64 bits;
    hex digits of either case; CRLF."""
    got = columns(open_trace(write(tmp_path, SAMPLE), "lackey"))
    assert got["pid"].tolist() == [7, 7, 7, 7, 8, 8, 8]
    assert got["op"].tolist() == [OP_IFETCH, OP_WRITE, OP_READ, OP_WRITE, OP_READ, OP_IFETCH,
                                  OP_READ]
    assert got["addr"].tolist() == [0x401ab70, 0x1fff000778, 0x422a000, 0x422a000,
                                    0xffffffffff600000 - (1 << 64), 0x401ab73, 0]
    assert got["size"].tolist() == [3, 8, 4, 4, 8, 15, 1]
    assert got["time"].tolist() == list(range(7))
    assert_same(got, reference(SAMPLE))


def test_records_before_any_pid_line_have_pid_0(tmp_path):
    got = columns(open_trace(write(tmp_path, "I  0040,4\n==12== x\nI  0040,4"), "lackey"))
    assert got["pid"].tolist() == [0, 12]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000])
def test_chunks_hold_exactly_chunk_requests(recorded_text, tmp_path, chunk):
    text = recorded_text[:20000 if chunk < 10 else 200000]
    text = text[:text.rindex("\n") + 1]
    chunks = list(open_trace(write(tmp_path, text), "lackey", chunk))
    assert all(len(c) == chunk for c in chunks[:-1]) and 1 <= len(chunks[-1]) <= chunk
    assert_same(columns(chunks), reference(text))


@pytest.mark.parametrize("block", [1, 2, 7, 13, 64, 4096])
def test_block_boundaries_inside_lines(recorded_text, tmp_path, monkeypatch, block):
    """Reads of a few bytes cut every line somewhere; a 200-byte line of
    the program's output outgrows the smallest buffers."""
    text = SAMPLE + "x" * 200 + "\n" + recorded_text[:6000].rsplit("\n", 1)[0] + "\n"
    monkeypatch.setattr(lackey, "BLOCK", block)
    assert_same(columns(open_trace(write(tmp_path, text), "lackey", 4)), reference(text))


def mutated(line: str, draw) -> str:
    """line with one character replaced, inserted or deleted."""
    i = draw(st.integers(0, len(line)))
    c = draw(st.sampled_from("0f9aFG, -x\r\t=I"))
    return draw(st.sampled_from([line[:i] + c + line[i + 1:], line[:i] + c + line[i:],
                                      line[:i] + line[i + 1:]]))


@st.composite
def lackey_text(draw):
    """Lines of lackey, valid or one character away from it, and others."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        digits = draw(st.text("0123456789abcdefABCDEF", min_size=1, max_size=17))
        size = draw(st.sampled_from(["1", "8", "15", "0", "2147483647", "2147483648",
                                     "0000000004", "12345678901"]))
        line = draw(st.sampled_from(list(OPS))) + digits + "," + size
        line = draw(st.sampled_from([line, line + " ", line + "\r", f"=={size}== x",
                                     "", "output", "I think", "==1==", "=="]))
        lines.append(mutated(line, draw) if draw(st.booleans()) else line)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=100, deadline=None)
@given(text=lackey_text(), chunk=st.integers(1, 4), block=st.sampled_from([3, 16, 1 << 16]))
def test_the_scanner_agrees_with_the_plain_parser(tmp_path_factory, text, chunk, block):
    """On any text, the reader gives the plain parser's requests, or an error
    at the line where the plain parser gives one."""
    path = write(tmp_path_factory.mktemp("fuzz"), text)
    try:
        want = reference(text)
    except Rejected as bad:
        want = bad
    old, lackey.BLOCK = lackey.BLOCK, block
    try:
        got = columns(open_trace(path, "lackey", chunk))
    except InputError as err:
        assert isinstance(want, Rejected), (text, err)
        assert err.where == path if want.args[0] is None else f"{path}:{want.args[0]}"
        return
    finally:
        lackey.BLOCK = old
    assert not isinstance(want, Rejected), (text, want)
    assert_same(got, want)


def test_a_last_line_without_newline(tmp_path):
    got = columns(open_trace(write(tmp_path, "I  0040,4\n L 0080,8"), "lackey"))
    assert got["addr"].tolist() == [0x40, 0x80]


def test_zstd_input_reads_as_plain(recorded_text, tmp_path):
    text = recorded_text[:50000].rsplit("\n", 1)[0] + "\n"
    plain = columns(open_trace(write(tmp_path, text), "lackey"))
    assert_same(columns(open_trace(write(tmp_path, text, "t.lackey.zst"), "lackey", 77)), plain)
    # two frames, as `cat a.zst b.zst` makes them
    z = zstandard.ZstdCompressor()
    both = tmp_path / "two.lackey.zst"
    both.write_bytes(z.compress(text.encode()) + z.compress(text.encode()))
    assert len(columns(open_trace(str(both), "lackey"))["addr"]) == 2 * len(plain["addr"])


def test_uncompiled_scanner_gives_the_same_requests_and_errors(tmp_path):
    """NUMBA_DISABLE_JIT=1 runs the same scanner as plain Python."""
    path = write(tmp_path, SAMPLE * 3)
    bad = write(tmp_path, SAMPLE + " L 00000000000000040,4\n", "bad.lackey")
    code = ("import json, sys; from linmem.trace import open_trace\n"
            "print(json.dumps([[getattr(c, f).tolist() for f in ('time', 'pid', 'addr', 'op', "
            "'size')] for c in open_trace(sys.argv[1], 'lackey', 4)]))\n"
            "list(open_trace(sys.argv[2], 'lackey'))")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code, path, bad],
                          capture_output=True, text=True, env=env)
    compiled = [[getattr(c, f).tolist() for f in ("time", "pid", "addr", "op", "size")]
                for c in open_trace(path, "lackey", 4)]
    assert json.loads(proc.stdout) == compiled
    assert proc.stderr.splitlines()[-1] == (f"linmem.errors.InputError: {bad}:12: the address "
                                            "has more than 16 hex digits: ' L 00000000000000040,4'")


# (name, file content, line of the error, words of the message)
MALFORMED = [
    ("address-not-hex", "I  0040,4\nI  zz40,4\n", 2, "the address is not hexadecimal"),
    ("g-in-address", "==5== x\n L 0040g0,4\n", 2, "the address is not hexadecimal"),
    ("0x-prefix", "I  0x40,4\n", 1, "the address is not hexadecimal"),
    ("negative-address", " S -40,4\n", 1, "the address is not hexadecimal"),
    ("space-in-record", "I  0040 ,4\n", 1, "the address is not hexadecimal"),
    ("no-address", "I  0040,4\n\n L ,4\n", 3, "the record has no address"),
    ("prefix-only", "I  \n", 1, "the record has no address"),
    ("address-too-long", "I  00000000000000040,4\n", 1, "more than 16 hex digits"),
    ("missing-size", " S 0040\n", 1, "the record has no size"),
    ("empty-size", " M 0040,\n", 1, "the record has no size"),
    ("cut-last-line", "I  0040,4\nI  0401a", 2, "the record has no size"),
    ("size-not-decimal", "I  0040,x\n", 1, "the size is not a decimal number"),
    ("size-suffix", "I  0040,4x\n", 1, "the size is not a decimal number"),
    ("hex-size", "I  0040,0x4\n", 1, "the size is not a decimal number"),
    ("two-sizes", "I  0040,4,4\n", 1, "the size is not a decimal number"),
    ("zero-size", " L 0040,0\n", 1, "the size is out of range"),
    ("huge-size", " L 0040,99999999999\n", 1, "the size is out of range"),
    ("huge-pid", "==99999999999== x\nI  0040,4\n", 1, "the pid is out of range"),
]
NO_RECORDS = [
    ("empty", "", "the file is empty"),
    ("blank-lines", "\n\n\n", "no lackey records"),
    ("valgrind-failed", "==9== Lackey\n==9== error: cannot run\n", "no lackey records"),
    ("binary", bytes(range(256)) * 4, "no lackey records"),
]


@pytest.mark.parametrize("name,text,line,what", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_records_name_file_and_line(tmp_path, name, text, line, what):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        list(open_trace(path, "lackey"))
    assert err.value.where == f"{path}:{line}"
    assert what in err.value.what


@pytest.mark.parametrize("name,text,what", NO_RECORDS, ids=[m[0] for m in NO_RECORDS])
def test_a_file_without_records_is_an_error(tmp_path, name, text, what):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=what):
        list(open_trace(path, "lackey"))


def test_the_error_quotes_the_line(tmp_path):
    path = write(tmp_path, "I  0040,4\n L 00zz," + "9" * 100 + "\n")
    with pytest.raises(InputError) as err:
        list(open_trace(path, "lackey", 1))
    assert err.value.what.startswith("the address is not hexadecimal: ' L 00zz,999")
    assert err.value.what.endswith("...'") and len(err.value.what) < 110


def test_line_numbers_count_across_blocks_and_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(lackey, "BLOCK", 10)
    path = write(tmp_path, " M 0040,4\n" * 1000 + "==1== x\n" + "I  0040,4\n" * 500 + "I  zz,1\n")
    with pytest.raises(InputError) as err:
        list(open_trace(path, "lackey", 7))
    assert err.value.where == f"{path}:1502"


@pytest.mark.parametrize("name,text,line,what", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_cli_convert_rejects_malformed_records(tmp_path, capsys, name, text, line, what):
    path, out = write(tmp_path, text), str(tmp_path / "out.lmt")
    assert_cli_rejects(capsys, ["trace", "convert", path, "--format", "lackey", "-o", out],
                       f"{path}:{line}: ", what, out)


@pytest.mark.parametrize("name,text,what", NO_RECORDS, ids=[m[0] for m in NO_RECORDS])
def test_cli_info_rejects_files_without_records(tmp_path, capsys, name, text, what):
    path = write(tmp_path, text)
    assert_cli_rejects(capsys, ["trace", "info", path, "-f", "lackey"], f"{path}: ", what)


def test_cli_rejects_damaged_zstd_missing_files_and_bad_outputs(tmp_path, capsys):
    out = str(tmp_path / "out.lmt")
    data = zstandard.ZstdCompressor().compress(SAMPLE.encode() * 50)
    cut = tmp_path / "cut.lackey.zst"
    cut.write_bytes(data[:len(data) // 2])
    bad = tmp_path / "bad.lackey.zst"
    bad.write_bytes(b"this is not zstd data")
    for path, what in ((cut, "the file ends inside a zstd frame"), (bad, "not zstd data"),
                       (tmp_path / "missing.lackey", "cannot read the trace")):
        assert_cli_rejects(capsys, ["trace", "convert", str(path), "-f", "lackey", "-o", out],
                           f"{path}: ", what, out)
    assert_cli_rejects(capsys, ["trace", "info", str(tmp_path), "-f", "lackey"],
                       f"{tmp_path}: ", "cannot read the trace: Is a directory")
    assert_cli_rejects(capsys, ["trace", "info", str(bad), "-f", "nosuch"],
                       f"{bad}: ", "unknown trace format 'nosuch' (formats: ")
    good = write(tmp_path, SAMPLE)
    assert_cli_rejects(capsys, ["trace", "convert", good, "-f", "lackey", "-o", str(tmp_path)],
                       f"{tmp_path}: ", "cannot write the trace: Is a directory")
    assert_cli_rejects(capsys, ["trace", "convert", good, "-f", "lackey", "-o",
                                str(tmp_path / "no" / "out.lmt")],
                       f"{tmp_path / 'no' / 'out.lmt'}: ", "cannot write the trace: No such file")


def test_cli_info_of_a_lackey_trace(tmp_path, capsys):
    path = write(tmp_path, SAMPLE)
    assert main(["trace", "info", path, "--format", "lackey", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["requests"] == 7 and (info["reads"], info["writes"], info["ifetches"]) == (3, 2, 2)
    assert info["pids"] == {"7": 4, "8": 3}
    assert info["distinct_addresses"] == 6          # 0x422a000 twice
    assert info["distinct_pages"] == 5              # and 0x401ab70, 0x401ab73 share one
    assert info["bytes"] == 3 + 8 + 4 + 4 + 8 + 15 + 1
    assert info["time"] == {"first": 0, "last": 6, "span": 6}
