"""linmem's native trace format: round trips, the documented layout byte for
byte (version 2, and version 1 still read), the objects flag kept through a
conversion, zstd, nothing left by a failed write, and every cut or damaged
file giving an InputError with its byte offset, from the reader and the CLI."""

from __future__ import annotations

import json
import os
import struct
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
from linmem.trace import open_trace
from linmem.trace import native
from linmem.trace.native import write_native
from linmem.trace.oracle_general import write_oracle_general
from tracetools import FIELDS, assert_cli_rejects, assert_same, chunk_of, columns

RECORDED = Path(__file__).parent / "data" / "traces" / "true.lackey.zst"


def example(n: int, seed: int = 0, start: int = 0):
    rng = np.random.default_rng(seed)
    return chunk_of(time=np.arange(start, start + n) * 3, pid=rng.integers(0, 5, n),
                    addr=rng.integers(-(1 << 63), (1 << 63) - 1, n, dtype=np.int64),
                    op=rng.integers(0, 3, n), size=rng.integers(1, 1 << 31, n))


def small_file(tmp_path, name="t.lmt") -> str:
    path = str(tmp_path / name)
    write_native(path, [example(3), example(2, 1, 3)])
    return path


def layout(version: int, objects: int) -> bytes:
    """The bytes the module's docstring documents for two requests."""
    return (b"LINMEMTR" + struct.pack("<HHB3x", version, 16, objects)
            + b"REQS" + struct.pack("<I", 2)
            + struct.pack("<2q", 5, 6) + struct.pack("<2q", 0x1000, -1)
            + struct.pack("<2i", 7, 8) + struct.pack("<2i", 4, 64) + bytes([0, 2])
            + bytes(6)                                  # 8 + 50 bytes, padded to 64
            + b"DONE" + struct.pack("<IQ", 0, 2))


@pytest.mark.parametrize("objects", [False, True])
def test_the_layout_byte_for_byte(tmp_path, objects):
    path = str(tmp_path / "t.lmt")
    c = chunk_of(time=[5, 6], pid=[7, 8], addr=[0x1000, -1], op=[0, 2], size=[4, 64])
    c.objects = objects
    assert write_native(path, [c]) == 2
    assert Path(path).read_bytes() == layout(2, objects)
    got = list(open_trace(path, "native"))
    assert_same(columns(got), columns([c])) and got[0].objects is objects


@pytest.mark.parametrize("reserved", [0, 1])
def test_version_1_reads_as_byte_addresses(tmp_path, reserved):
    """A version 1 file (byte 12 reserved, whatever it holds) is read, its
    addresses byte addresses."""
    path = tmp_path / "v1.lmt"
    path.write_bytes(layout(1, reserved))
    got = list(open_trace(str(path), "native"))
    assert [c.objects for c in got] == [False]
    assert got[0].addr.tolist() == [0x1000, -1] and got[0].op.tolist() == [0, 2]


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=6), chunk=st.integers(1, 50),
       block=st.integers(1, 17), objects=st.booleans())
def test_round_trips(tmp_path_factory, sizes, chunk, block, objects):
    """Any chunks, split into blocks of any size, read back in chunks of any
    size, are the same requests of the same kind; every chunk holds at most
    ``chunk``."""
    path = str(tmp_path_factory.mktemp("rt") / "t.lmt")
    chunks = [example(n, seed) for seed, n in enumerate(sizes)]
    for c in chunks:
        c.objects = objects
    old, native.MAX_BLOCK = native.MAX_BLOCK, block
    try:
        assert write_native(path, chunks) == sum(sizes)
        got = list(open_trace(path, "native", chunk))
    finally:
        native.MAX_BLOCK = old
    assert all(1 <= len(c) <= chunk and c.objects == (objects and any(sizes)) for c in got)
    if sum(sizes):
        assert_same(columns(got), columns(chunks))
    assert not got or all(c.addr.flags.writeable for c in got)


def test_a_lackey_trace_converts_and_reads_back(tmp_path):
    lackey = columns(open_trace(str(RECORDED), "lackey"))
    for name in ("true.lmt", "true.lmt.zst"):
        path = str(tmp_path / name)
        write_native(path, open_trace(str(RECORDED), "lackey", 50000))
        got = list(open_trace(path, "native"))
        assert_same(columns(got), lackey)
        assert not any(c.objects for c in got)
    plain, packed = (os.path.getsize(tmp_path / n) for n in ("true.lmt", "true.lmt.zst"))
    assert plain == 16 + 3 * native.block_bytes(50000) + native.block_bytes(18726) + 16
    assert packed < plain / 10


def oracle_file(tmp_path) -> str:
    """An oracleGeneral trace of 30 000 Zipf-like requests: ids below 4000
    (in one page, were they byte addresses) and a few near 2**64."""
    rng = np.random.default_rng(5)
    ids = (rng.zipf(1.2, 30000) % 4000).astype(np.uint64)
    ids[::1000] = np.uint64(2**64 - 1) - ids[::1000]
    path = str(tmp_path / "z.oracleGeneral")
    write_oracle_general(path, ids)
    return path


def test_an_object_trace_converts_and_replays_the_same(tmp_path, capsys):
    """oracleGeneral -> native keeps the ids and the objects flag, so a cache
    replays the native file with the same misses as the source."""
    from linmem.cachesim import trace_keys
    src, out = oracle_file(tmp_path), str(tmp_path / "z.lmt.zst")
    assert main(["trace", "convert", src, "-f", "oracleGeneral", "-o", out]) == 0
    got = list(open_trace(out, "native"))
    assert all(c.objects for c in got)
    assert_same(columns(got), columns(open_trace(src, "oracleGeneral")))
    keys = [np.concatenate(list(trace_keys(p, f))) for p, f in ((src, "oracleGeneral"),
                                                               (out, "native"))]
    np.testing.assert_array_equal(*keys)
    capsys.readouterr()
    results = []
    for path, fmt in ((src, "oracleGeneral"), (out, "native")):
        assert main(["replay", path, "-f", fmt, "--policy", "lru", "--frames", "500",
                     "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["misses"] == results[1]["misses"] > 500     # not one page's 1 miss
    assert main(["trace", "info", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["objects"] is True
    assert main(["trace", "info", out]) == 0
    assert "addresses:          object ids" in capsys.readouterr().out


def test_chunks_of_both_kinds_are_refused(tmp_path):
    """A trace is of object ids or of byte addresses: a chunk of the other
    kind is an InputError at the offset its block would have had."""
    ids = example(3)
    ids.objects = True
    path = tmp_path / "t.lmt"
    with pytest.raises(InputError) as err:
        write_native(str(path), [example(0), ids, example(2)])
    assert err.value.where == f"{path}: byte {16 + N3}"
    assert "the requests from number 3 on hold byte addresses, those before them " \
           "object ids" in err.value.what
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_nothing(tmp_path):
    def chunks():
        yield example(10)
        raise InputError("src:3", "bad line")
    path = tmp_path / "t.lmt"
    with pytest.raises(InputError, match="bad line"):
        write_native(str(path), chunks())
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"old")                            # an earlier file stays as it was
    with pytest.raises(InputError):
        write_native(str(path), chunks())
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["t.lmt"]


def test_every_cut_of_a_file_names_the_offset(tmp_path):
    """A file cut at any byte is an error, and the offset it names is at or
    before the cut."""
    data = Path(small_file(tmp_path)).read_bytes()
    cut = tmp_path / "cut.lmt"
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        with pytest.raises(InputError) as err:
            list(open_trace(str(cut), "native"))
        where = err.value.where
        assert where.startswith(f"{cut}: byte ") and int(where.split()[-1]) <= size, where
        assert ("truncated" if size else "empty") in err.value.what


def damaged(tmp_path, offset: int, patch: bytes, tail: bytes = b"") -> str:
    data = bytearray(Path(small_file(tmp_path, "good.lmt")).read_bytes())
    data[offset:offset + len(patch)] = patch
    path = tmp_path / "bad.lmt"
    path.write_bytes(bytes(data) + tail)
    return str(path)


N3 = native.block_bytes(3)
# (name, damage: (offset, bytes[, appended]), offset named, words of the message)
DAMAGED = [
    ("wrong-magic", (0, b"LINMEMXX"), 0, "not a linmem native trace"),
    ("text-file", (0, b"I  0040,4\n"), 0, "not a linmem native trace"),
    ("version-3", (8, struct.pack("<H", 3)), 8,
     "version 3 is not supported (this linmem reads versions 1 and 2)"),
    ("header-size", (10, struct.pack("<H", 24)), 10, "header size 24"),
    ("objects-flag", (12, bytes([2])), 12, "the objects flag is 2, not 0"),
    ("unknown-tag", (16, b"RQST"), 16, "unknown block tag b'RQST'"),
    ("empty-block", (20, struct.pack("<I", 0)), 20, "a block of 0 requests"),
    ("huge-block", (20, struct.pack("<I", 1 << 30)), 20, "a block of 1073741824 requests"),
    ("bad-op", (16 + 8 + 24 * 3 + 1, bytes([7])), 16 + 8 + 24 * 3 + 1, "has op 7"),
    ("done-count", (16 + N3 + native.block_bytes(2) + 8, struct.pack("<Q", 4)),
     16 + N3 + native.block_bytes(2) + 8, "the DONE block counts 4 requests, the blocks hold 5"),
    ("trailing-data", (0, b"", b"\0"), 16 + N3 + native.block_bytes(2) + 16,
     "data after the DONE block"),
]


@pytest.mark.parametrize("name,damage,offset,what", DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damaged_files_name_the_offset(tmp_path, name, damage, offset, what):
    path = damaged(tmp_path, *damage)
    with pytest.raises(InputError) as err:
        list(open_trace(path, "native"))
    assert err.value.where == f"{path}: byte {offset}"
    assert what in err.value.what


def test_zstd_files_cut_or_not_zstd(tmp_path):
    data = zstandard.ZstdCompressor().compress(Path(small_file(tmp_path)).read_bytes())
    path = tmp_path / "t.lmt.zst"
    path.write_bytes(data[:-4])
    with pytest.raises(InputError, match="the file ends inside a zstd frame"):
        list(open_trace(str(path), "native"))
    path.write_bytes(b"\x28\xb5\x2f\xfd garbage")
    with pytest.raises(InputError, match="not zstd data"):
        list(open_trace(str(path), "native"))


def test_cli_convert_then_info(tmp_path, capsys):
    out = str(tmp_path / "true.lmt.zst")
    assert main(["trace", "convert", str(RECORDED), "--format", "lackey", "-o", out]) == 0
    assert capsys.readouterr().out == f"{out}: 168726 requests\n"
    assert main(["trace", "info", out, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "native" and info["requests"] == 168726
    assert (info["reads"], info["writes"], info["ifetches"]) == (29371, 11768, 127587)
    assert info["pids"] == {"18834": 168726}
    assert info["time"] == {"first": 0, "last": 168725, "span": 168725}
    assert info["distinct_pages"] == 139 and info["objects"] is False
    assert main(["trace", "info", out]) == 0
    text = capsys.readouterr().out
    assert "requests:           168726: 29371 reads, 11768 writes, 127587 instruction" in text
    assert "pids:               1: 18834 (168726)" in text
    assert "addresses:          byte addresses" in text


@pytest.mark.parametrize("name,damage,offset,what", DAMAGED, ids=[d[0] for d in DAMAGED])
def test_cli_rejects_damaged_files(tmp_path, capsys, name, damage, offset, what):
    path, out = damaged(tmp_path, *damage), str(tmp_path / "out.lmt")
    assert_cli_rejects(capsys, ["trace", "convert", path, "-f", "native", "-o", out],
                       f"{path}: byte {offset}: ", what, out)
    assert_cli_rejects(capsys, ["trace", "info", path], f"{path}: byte {offset}: ", what)


def test_cli_rejects_cut_and_empty_files(tmp_path, capsys):
    data = Path(small_file(tmp_path)).read_bytes()
    path, out = tmp_path / "cut.lmt", str(tmp_path / "out.lmt")
    for size, offset, what in ((0, 0, "the file is empty"), (5, 5, "truncated: the header"),
                               (40, 16, "truncated: a block of 3 requests"),
                               (16 + N3, 16 + N3, "ends without its DONE block (after 3")):
        path.write_bytes(data[:size])
        assert_cli_rejects(capsys, ["trace", "convert", str(path), "-f", "native", "-o", out],
                           f"{path}: byte {offset}: ", what, out)


def test_fields_are_the_chunk_fields():
    assert {name for name, _ in native.COLUMNS} == set(FIELDS)
    assert native.RECORD_BYTES == 25


def test_cli_bad_input_is_one_line_and_status_2_from_a_real_process(tmp_path):
    path = tmp_path / "cut.lmt"
    path.write_bytes(Path(small_file(tmp_path)).read_bytes()[:100])
    out = tmp_path / "o.lmt"
    proc = subprocess.run([sys.executable, "-m", "linmem.cli", "trace", "convert", str(path),
                           "-f", "native", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"linmem: {path}: byte 16: truncated: a block of 3 requests "
                           f"needs 80 bytes after its header, the file ends after 76\n")
    assert sorted(os.listdir(tmp_path)) == ["cut.lmt", "t.lmt"]


def test_info_of_an_object_trace_counts_a_page_per_object(tmp_path, capsys):
    from linmem.trace.oracle_general import write_oracle_general
    path = str(tmp_path / "ids.oracleGeneral")
    write_oracle_general(path, np.array([1, 2, 3, 1, 4097, 2], np.int64))   # 1 and 2 share no page
    assert main(["trace", "info", path, "-f", "oracleGeneral", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["objects"] is True and info["distinct_pages"] == info["distinct_addresses"] == 4
    assert main(["trace", "info", path, "-f", "oracleGeneral"]) == 0
    assert "distinct pages:     4 (one per object)" in capsys.readouterr().out
