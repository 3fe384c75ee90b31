"""Trace mode: the policies, the miss-ratio curves, the trace readers, the CLI.

Miss counts are pinned three ways: against libCacheSim (LRU, FIFO, Clock,
ARC, Belady, and 2Q from 4 frames up) on generated traces at several sizes;
against small reference implementations written from the definitions; and,
for 2Q and LIRS, against hand-made sequences worked through by the rules of
their papers, request by request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from linmem.cachesim import POLICIES, Cache, replay_trace
from linmem.cachesim.mrc import StackDistances, log_sizes, lru_curve, multi_size
from linmem.cli import main
from linmem.errors import InputError
from linmem.trace import open_trace
from linmem.trace.oracle_general import RECORD, write_oracle_general

SIZES = (1, 2, 7, 50, 300, 1500)


def zipf_keys(n: int, distinct: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.zipf(1.2, n) % distinct).astype(np.int64)


def zipf09_keys(n: int, distinct: int, seed: int) -> np.ndarray:
    """Keys of popularity 1 / rank**0.9, the ranks shuffled."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, distinct + 1) ** 0.9)
    ranks = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n)), distinct - 1)
    return rng.permutation(distinct).astype(np.int64)[ranks]


def step_at(curve, frames: int) -> int:
    """The misses of an every-step curve at ``frames``."""
    return int(curve.misses[np.searchsorted(curve.frames, frames, side="right") - 1])


def scan_mix_keys(n: int, seed: int) -> np.ndarray:
    """Zipf requests interleaved with a sequential scan of new keys."""
    keys = zipf_keys(n, 2000, seed)
    scan = np.arange(n, dtype=np.int64) + 10**6
    return np.where(np.arange(n) % 3 == 0, scan, keys)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Two small oracleGeneral traces: name -> (path, keys)."""
    folder = tmp_path_factory.mktemp("traces")
    out = {}
    for name, keys in (("zipf", zipf_keys(20000, 3000, 5)), ("scan", scan_mix_keys(20000, 6))):
        path = str(folder / f"{name}.oracleGeneral")
        write_oracle_general(path, keys)
        out[name] = (path, keys)
    return out


def misses(policy: str, frames: int, keys: np.ndarray) -> int:
    return len(keys) - Cache(policy, frames).replay(keys.copy())


def outcomes(policy: str, frames: int, sequence: str) -> str:
    """'h' or 'm' for each request of ``sequence`` (one letter a key)."""
    cache = Cache(policy, frames)
    return "".join("h" if cache.replay(np.array([ord(c)], np.int64)) else "m"
                   for c in sequence)


# --- against libCacheSim -----------------------------------------------------

LIBCACHESIM = {"lru": "LRU", "fifo": "FIFO", "clock": "Clock", "arc": "ARC", "opt": "Belady",
               "2q": "TwoQ"}


@pytest.mark.parametrize("policy", sorted(LIBCACHESIM))
@pytest.mark.parametrize("trace", ["zipf", "scan"])
def test_miss_counts_equal_libcachesim(traces, policy, trace):
    lcs = pytest.importorskip("libcachesim", reason="libCacheSim's Python package is not "
                              "installed (pip install 'linmem[dev]')")
    path, keys = traces[trace]
    # libCacheSim's 2Q caches nothing below 4 frames (its A1in would be 0 frames)
    for frames in [s for s in SIZES if policy != "2q" or s >= 4]:
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
        ratio, _ = getattr(lcs, LIBCACHESIM[policy])(frames, hashpower=12).process_trace(reader)
        assert misses(policy, frames, keys) == round(ratio * len(keys)), (policy, frames)


# --- against references written from the definitions ------------------------

def ref_lru(keys, frames):
    cache, hits = OrderedDict(), 0
    for k in keys:
        if k in cache:
            hits += 1
            cache.move_to_end(k)
            continue
        if len(cache) == frames:
            cache.popitem(last=False)
        cache[k] = True
    return len(keys) - hits


def ref_fifo(keys, frames):
    cache, order, hits = set(), [], 0
    for k in keys:
        if k in cache:
            hits += 1
            continue
        if len(cache) == frames:
            cache.discard(order.pop(0))
        cache.add(k)
        order.append(k)
    return len(keys) - hits


def ref_clock(keys, frames):
    """Second chance: the queue's tail, if referenced, loses its bit and goes
    to the head; otherwise it is evicted."""
    queue, bit, hits = [], {}, 0
    for k in keys:
        if k in bit:
            hits += 1
            bit[k] = 1
            continue
        if len(queue) == frames:
            while bit[queue[0]]:
                bit[queue[0]] = 0
                queue.append(queue.pop(0))
            del bit[queue.pop(0)]
        queue.append(k)
        bit[k] = 0
    return len(keys) - hits


def ref_opt(keys, frames):
    nxt, last = [0] * len(keys), {}
    for i in range(len(keys) - 1, -1, -1):
        nxt[i], last[keys[i]] = last.get(keys[i], float("inf")), i
    cache, hits = {}, 0
    for i, k in enumerate(keys):
        if k in cache:
            hits += 1
        elif len(cache) == frames:
            del cache[max(cache, key=cache.get)]
        cache[k] = nxt[i]
    return len(keys) - hits


@pytest.mark.parametrize("policy,ref", [("lru", ref_lru), ("fifo", ref_fifo),
                                        ("clock", ref_clock), ("opt", ref_opt)])
def test_policies_equal_their_definitions(policy, ref):
    keys = zipf_keys(3000, 400, 11)
    for frames in (1, 3, 17, 90, 400):
        assert misses(policy, frames, keys) == ref(keys.tolist(), frames), frames


def test_chunks_do_not_change_the_counts(traces):
    """State stays in the arrays between chunks: chunked = whole."""
    _, keys = traces["scan"]
    for policy in POLICIES:
        if policy == "opt":
            continue
        cache = Cache(policy, 300)
        hits = sum(cache.replay(keys[i:i + 777].copy()) for i in range(0, len(keys), 777))
        assert len(keys) - hits == misses(policy, 300, keys), policy


def test_every_key_value_can_be_cached():
    keys = np.array([-1, 0, -(1 << 63), (1 << 63) - 1, -1, 0, -(1 << 63), (1 << 63) - 1],
                    np.int64)
    for policy in POLICIES:
        assert misses(policy, 4, keys) == 4, policy


def test_opt_is_a_lower_bound(traces):
    _, keys = traces["scan"]
    for frames in (7, 300):
        best = misses("opt", frames, keys)
        assert all(misses(p, frames, keys) >= best for p in POLICIES), frames


# --- 2Q and LIRS by their papers' rules ----------------------------------------

def test_2q_follows_the_paper():
    """4 frames: Kin = 1, Kout = 2 (the paper's 25% and 50%).

    A B C D fill A1in; E: A1in holds 4 > Kin, its tail A goes, A's key to A1out.
    A (in A1out): a miss that reclaims A1in's tail B (to A1out) and enters Am.
    B, C likewise (their keys were in A1out): Am = C B A, A1in = E.
    F (new): A1in holds 1 = Kin, so Am's tail A goes, no ghost; F to A1in.
    E: a hit in A1in, which changes nothing. A: forgotten, a miss into A1in.
    D: its key is in A1out (E D at the time): into Am, F's key to A1out.
    C: a hit in Am. G, H: new; H's turn pushes A's key in, E's drops.
    E: a miss (its key was dropped from A1out), and so into A1in, not Am.
    """
    assert outcomes("2q", 4, "ABCDEABCFEADCGHE") == "mmmmmmmmmhmmhmmm"
    # a hit in A1in does not promote (correlated references): A, used twice
    # in a row, leaves A1in with the scan as if used once; back as a ghost,
    # it enters Am, where a second scan cannot push it out
    assert outcomes("2q", 4, "AAXYZWA" + "PQRSTUV" + "A") == "mhmmmmm" + "mmmmmmm" + "h"


def test_lirs_follows_the_paper():
    """3 frames: Llirs = 2, Lhirs = 1.

    A B become LIR (warming up), C resident HIR. D: C evicted (kept in S,
    non-resident), D resident HIR. C again: D evicted; C was in S, so it
    becomes LIR and the bottom LIR A goes to Q as HIR (pruned out of S).
    A: a hit on a resident HIR page not in S: stays HIR. B: LIR hit at the
    bottom of S; the pruning forgets non-resident D. A: resident HIR now in
    S: becomes LIR, C goes to Q. D: a miss (forgotten), C evicted. E: a
    miss, D evicted (non-resident in S). B: a LIR hit. D: non-resident in
    S: a miss that makes it LIR; A goes to Q. A: hit (resident HIR).
    """
    assert outcomes("lirs", 3, "ABCDCABADEBDA") == "mmmmmhhhmmhmh"
    # the loop LRU cannot hold: A B C D, three frames. LRU misses every time;
    # LIRS keeps two LIR pages and misses only the others
    assert outcomes("lru", 3, "ABCD" * 4) == "m" * 16
    assert outcomes("lirs", 3, "ABCD" * 4) == "mmmm" + "hhmm" * 3


def test_lirs_keeps_its_stack_bounded():
    cache = Cache("lirs", 10)
    cache.replay(np.arange(5000, dtype=np.int64))         # a scan: all non-resident
    links_s, ends_s, links_q, ends_q, flags, meta = cache.state
    assert ends_s[2] <= 2 * 10                           # entries in S
    assert (flags != 0).sum() <= 2 * 10 + 1              # pages tracked: S and Q


# --- miss-ratio curves -----------------------------------------------------------

def brute_stack_distances(keys):
    stack, out = [], []
    for k in keys:
        if k in stack:
            out.append(len(stack) - stack.index(k))
            stack.remove(k)
        else:
            out.append(0)
        stack.append(k)
    return out


def test_lru_curve_equals_replays_at_every_size(traces):
    path, keys = traces["zipf"]
    curve = lru_curve(path, "oracleGeneral", points=0)
    for frames in (1, 2, 3, 7, 50, 299, 300, 301, 1500, 2999, 10**6):
        assert step_at(curve, frames) == misses("lru", min(frames, 3000), keys), frames


def test_stack_distances_through_compactions():
    """A tiny time range forces the renumbering every 64 requests."""
    keys = zipf_keys(4000, 150, 2)
    sd = StackDistances(times=64)
    for i in range(0, len(keys), 50):
        sd.add(keys[i:i + 50])
    d = np.array(brute_stack_distances(keys.tolist()))
    hist = np.bincount(d[d > 0], minlength=len(sd.hist))
    assert sd.clock[2] == (d == 0).sum()
    assert (sd.hist[:len(hist)] == hist).all()
    sizes = np.arange(1, 160)
    assert (sd.misses(sizes) == [ref_lru(keys.tolist(), int(c)) for c in sizes]).all()


def test_shards_is_close_for_large_caches(tmp_path):
    keys = zipf09_keys(200_000, 20_000, 9)
    path = str(tmp_path / "z.oracleGeneral")
    write_oracle_general(path, keys)
    exact = lru_curve(path, "oracleGeneral", points=0)
    sampled = lru_curve(path, "oracleGeneral", points=12, rate=0.1)
    assert sampled.frames[0] == 10                     # nothing below 1 / rate
    assert (sampled.miss_ratio <= 1).all()
    # from about 100 sampled frames up, as the paper measures it
    errors = [abs(ratio - step_at(exact, frames) / len(keys))
              for frames, ratio in zip(sampled.frames, sampled.miss_ratio) if frames >= 1000]
    assert len(errors) >= 5 and max(errors) < 0.03, errors


@pytest.mark.parametrize("jobs", [1, 2])
def test_multi_size_curve(traces, jobs):
    path, keys = traces["scan"]
    curve = multi_size(path, "oracleGeneral", "arc", points=5, jobs=jobs)
    assert list(curve.frames) == list(log_sizes(curve.distinct, 5))
    assert list(curve.misses) == [misses("arc", int(f), keys) for f in curve.frames]


# --- trace readers -----------------------------------------------------------------

def read_all(path, fmt, chunk=1 << 16):
    chunks = list(open_trace(str(path), fmt, chunk))
    return chunks, np.concatenate([c.addr for c in chunks])


def test_oracle_general_round_trip_in_chunks(tmp_path):
    keys = np.array([5, 7, 5, -3, 2**40, 7, 5], np.int64)
    path = tmp_path / "t.oracleGeneral"
    write_oracle_general(str(path), keys)
    rec = np.fromfile(path, RECORD)
    assert list(rec["next_access_vtime"]) == [2, 5, 6, -1, -1, -1, -1]
    chunks, addr = read_all(path, "oracleGeneral", chunk=3)
    assert [len(c) for c in chunks] == [3, 3, 1] and all(c.objects for c in chunks)
    assert list(addr) == list(keys)


def test_oracle_general_skips_size_zero_and_reads_zstd(tmp_path):
    import zstandard
    rec = np.zeros(3, RECORD)
    rec["obj_id"], rec["obj_size"] = [1, 2, 3], [10, 0, 30]
    path = tmp_path / "t.oracleGeneral.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(rec.tobytes()))
    chunks, addr = read_all(path, "oracleGeneral")
    assert list(addr) == [1, 3] and list(chunks[0].size) == [10, 30]


@pytest.mark.parametrize("data,where,what", [
    (b"", "", "holds no request"),
    (bytes(24 * 2 + 5), ": byte 48", "truncated: the last request has 5 of its 24 bytes"),
])
def test_oracle_general_bad_input(tmp_path, data, where, what):
    path = tmp_path / "bad.oracleGeneral"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_all(path, "oracleGeneral", chunk=1)
    assert str(err.value).startswith(f"{path}{where}: ") and what in str(err.value)
    # the key reader (a mapped file) gives the same error, after the whole records
    from linmem.trace.oracle_general import read_oracle_general_keys
    keys = []
    with pytest.raises(InputError) as err:
        keys.extend(read_oracle_general_keys(str(path), chunk=1))
    assert str(err.value).startswith(f"{path}{where}: ") and what in str(err.value)
    assert len(keys) == len(data) // 24


def test_oracle_general_key_reader_equals_the_reader(tmp_path):
    rng = np.random.default_rng(8)
    rec = np.zeros(5000, RECORD)
    rec["obj_id"] = rng.integers(0, 2**64, 5000, dtype=np.uint64)
    rec["obj_size"] = rng.integers(0, 3, 5000)
    from linmem.trace.oracle_general import read_oracle_general_keys
    for name, data in (("t.oracleGeneral", rec.tobytes()),
                       ("t.oracleGeneral.zst", __import__("zstandard").ZstdCompressor()
                        .compress(rec.tobytes()))):
        path = tmp_path / name
        path.write_bytes(data)
        _, addr = read_all(path, "oracleGeneral", chunk=999)
        keys = np.concatenate(list(read_oracle_general_keys(str(path), chunk=999)))
        assert keys.tolist() == addr.tolist() and len(keys) == (rec["obj_size"] != 0).sum()


PER_PAGE = {"lru": 8, "fifo": 1, "clock": 1, "arc": 9, "2q": 9, "lirs": 17}


@pytest.mark.parametrize("policy", PER_PAGE)
def test_state_bytes_per_distinct_page(tmp_path, policy):
    """The memory docs/trace-mode.md gives: the id map (8-byte buckets at
    least half full: 16 bytes a page at most), the policy's bytes per page
    (arrays grown by an eighth), 4 bytes per frame for the rings."""
    keys = (np.random.default_rng(4).zipf(1.2, 60_000) % 20_000).astype(np.int64)
    path = str(tmp_path / "z.oracleGeneral")
    write_oracle_general(path, keys)
    distinct = len(np.unique(keys))
    frames = distinct // 4
    r = replay_trace(path, "oracleGeneral", policy, frames)
    assert r.distinct == distinct
    assert r.state_bytes <= (16 + PER_PAGE[policy] * 9 / 8) * distinct + 4 * frames + 1024


def test_id_map_numbers_in_first_use_order_through_growth_and_widening():
    """Ids are the order of first use, whatever the chunks, the growths and the
    switch to 12-byte buckets when a key stops fitting in 32 bits."""
    from linmem.cachesim.idmap import NARROW, WIDE, IdMap
    rng = np.random.default_rng(9)
    narrow = rng.integers(0, 2**32, 30_000).astype(np.int64)
    wide = np.array([-1, 2**32, -(2**63), 2**63 - 1], np.int64)
    keys = np.concatenate([narrow[:20_000], wide, narrow[10_000:], wide, narrow[:5000]])
    expected, seen = [], {}
    for k in keys.tolist():
        expected.append(seen.setdefault(k, len(seen)))
    idmap = IdMap(capacity=16)
    got = [idmap.ids(keys[:7000])]
    assert idmap.words == NARROW
    got += [idmap.ids(keys[i:i + 3001]) for i in range(7000, len(keys), 3001)]
    assert idmap.words == WIDE and len(idmap) == len(seen)
    assert np.concatenate(got).tolist() == expected
    assert idmap.nbytes <= 12 * len(seen) / 0.5 + 12 * 64


def test_txt_ids_and_addresses(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# object ids\n17\n\n18446744073709551615\n17\n")
    chunks, addr = read_all(ids, "txt", chunk=2)
    assert list(addr) == [17, -1, 17] and chunks[0].objects
    assert list(np.concatenate([c.time for c in chunks])) == [0, 1, 2]
    hexa = tmp_path / "addr.txt"
    hexa.write_text("0x7ffd1234a008\n0X1000\n")
    chunks, addr = read_all(hexa, "txt")
    assert list(addr) == [0x7ffd1234a008, 0x1000] and not chunks[0].objects


def test_txt_binary_garbage(tmp_path):
    path = tmp_path / "garbage.txt"
    path.write_bytes(b"12\n\xff\xfe\x00\x01\n")
    with pytest.raises(InputError, match="garbage.txt:2: not a line of text"):
        read_all(path, "txt")


def test_csv_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Time,PID,addr,op,size,comment\n5,100,0x2000,w,8,x\n6,101,4096,I,4,y\n")
    chunks, addr = read_all(path, "csv")
    c = chunks[0]
    assert list(addr) == [0x2000, 4096] and not c.objects
    assert list(c.time) == [5, 6] and list(c.pid) == [100, 101]
    assert list(c.op) == [1, 2] and list(c.size) == [8, 4]
    objs = tmp_path / "o.csv"
    objs.write_text("obj_id,op\n42,get\n43,set\n")
    chunks, addr = read_all(objs, "csv")
    assert list(addr) == [42, 43] and chunks[0].objects and list(chunks[0].op) == [0, 1]
    assert list(chunks[0].time) == [0, 1] and list(chunks[0].size) == [1, 1]
    pages = tmp_path / "p.csv"
    pages.write_text("page\n3\n0x10\n")
    assert list(read_all(pages, "csv")[1]) == [3 << 12, 16 << 12]


@pytest.mark.parametrize("fmt,text,line,what", [
    ("txt", "12\n0x10\n", 2, "'0x10' in a trace of object ids"),
    ("txt", "0x10\n12\n", 2, "'12' in a trace of hex addresses"),
    ("txt", "12\nabc\n", 2, "not a decimal object id of at most 64 bits: 'abc'"),
    ("txt", "0xfff\n0x1g\n", 2, "not a hex address"),
    ("txt", "1\n18446744073709551616\n", 2, "at most 64 bits"),
    ("txt", "# nothing\n\n", None, "holds no request"),
    ("csv", "time,size\n1,2\n", 1, "exactly one of the columns obj_id, addr and page"),
    ("csv", "obj_id,addr\n1,2\n", 1, "exactly one of the columns"),
    ("csv", "obj_id,id\n1,2\n", 1, "two columns give the obj_id"),
    ("csv", "time,obj_id\n1,2\n3\n", 3, "1 fields, the header names 2"),
    ("csv", "obj_id,op\n1,r\n2,x\n", 3, "op must be r, w or i"),
    ("csv", "obj_id,size\n1,-4\n", 2, "size must be a number from 0 to 2147483647, got '-4'"),
    ("csv", "addr\n0xzz\n", 2, "addr is not a 64-bit number: '0xzz'"),
    ("csv", "page\n4503599627370496\n", 2, "page number out of range"),
    ("csv", "", None, "the trace is empty"),
    ("csv", "obj_id\n", None, "holds no request"),
])
def test_text_bad_input(tmp_path, fmt, text, line, what):
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_all(path, fmt)
    where = f"{path}:{line}" if line else str(path)
    assert str(err.value).startswith(where + ": ") and what in str(err.value)


def test_byte_addresses_replay_as_pages(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0x1000\n0x1ff8\n0x2000\n0x1004\n")      # pages 1 1 2 1
    assert replay_trace(str(path), "txt", "lru", 1).hits == 1
    assert replay_trace(str(path), "txt", "lru", 2).hits == 2


# --- the commands -------------------------------------------------------------------

def linmem(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_replay_json(traces, capsys):
    path, keys = traces["zipf"]
    rc, out, err = linmem(capsys, "replay", path, "--format", "oracleGeneral", "--policy",
                          "clock", "--frames", "300", "--json")
    assert rc == 0 and err == ""
    result = json.loads(out)
    assert list(result) == ["requests", "hits", "misses", "miss_ratio", "seconds",
                            "requests_per_second", "distinct_pages", "state_bytes"]
    assert result["requests"] == len(keys) and result["misses"] == misses("clock", 300, keys)
    assert result["distinct_pages"] == len(np.unique(keys))
    # the id map (8-byte buckets, at most 2 per key) and a byte per key, 4 per frame
    assert result["state_bytes"] <= 16 * len(np.unique(keys)) + 1.25 * len(np.unique(keys)) \
        + 4 * 300 + 8 * 64 + 64
    assert result["miss_ratio"] == result["misses"] / len(keys)
    rc, out, _ = linmem(capsys, "replay", path, "-f", "oracleGeneral", "-p", "lru",
                        "--memory", "1200KiB")
    assert rc == 0 and out.startswith(f"lru, 300 frames (1.2 MiB): {len(keys)} requests")


@pytest.mark.parametrize("args,message", [
    (["-p", "lru"], "linmem: --frames/--memory: give the cache size"),
    (["-p", "lru", "-n", "3", "-m", "1MiB"], "give the cache size, one of"),
    (["-p", "lru", "-n", "0"], "linmem: --frames: must be at least 1, got 0"),
    (["-p", "lru", "-m", "1000"], "linmem: --memory: '1000' is less than one 4 KiB frame"),
    (["-p", "lru", "-m", "lots"], "linmem: --memory: not a size: 'lots'"),
    (["-p", "lirs", "-n", "1"], "linmem: --frames: lirs needs at least 2 frames, got 1"),
    (["-p", "linux", "-n", "0"], "linmem: --frames: must be at least 1, got 0"),
    (["-p", "lru", "-n", "9", "-f", "nope"], "unknown trace format 'nope'"),
])
def test_replay_bad_options(traces, capsys, args, message):
    path, _ = traces["zipf"]
    if "-f" not in args:
        args = [*args, "-f", "oracleGeneral"]
    rc, out, err = linmem(capsys, "replay", path, *args)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_replay_bad_trace_in_a_subprocess(tmp_path):
    path = tmp_path / "cut.oracleGeneral"
    path.write_bytes(bytes(24 * 3 + 7))
    proc = subprocess.run([sys.executable, "-m", "linmem.cli", "replay", str(path), "-f",
                           "oracleGeneral", "-p", "arc", "-n", "4"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"linmem: {path}: byte 72: truncated: the last request has 7 "
                           "of its 24 bytes\n")


def test_mrc_json_and_plot(traces, capsys, tmp_path):
    path, keys = traces["zipf"]
    rc, out, err = linmem(capsys, "mrc", path, "-f", "oracleGeneral", "--points", "6", "--json")
    assert rc == 0
    curve = json.loads(out)
    assert list(curve) == ["policy", "requests", "distinct", "sampling_rate", "seconds",
                           "frames", "miss_ratio"]
    assert curve["frames"] == list(log_sizes(curve["distinct"], 6))
    assert curve["miss_ratio"] == [misses("lru", f, keys) / len(keys) for f in curve["frames"]]
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (linmem[plot])")
    png = tmp_path / "curve.png"
    rc, out, _ = linmem(capsys, "mrc", path, "-f", "oracleGeneral", "--plot", str(png))
    assert rc == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


@pytest.mark.parametrize("args,message", [
    (["--shards", "0"], "linmem: --shards: the rate must be in (0, 1], got 0.0"),
    (["--shards", "0.5", "-p", "arc"], "linmem: --shards: samples LRU's one-pass curve"),
    (["--points", "-1"], "linmem: --points: must be at least 0"),
    (["-p", "fifo", "--points", "0"], "linmem: --points: must be at least 1"),
    (["--plot", "curve.gif"], "linmem: --plot: 'curve.gif': name a .png, .svg or .pdf"),
])
def test_mrc_bad_options(traces, capsys, args, message):
    path, _ = traces["zipf"]
    rc, out, err = linmem(capsys, "mrc", path, "-f", "oracleGeneral", *args)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_replay_help_does_not_load_numba():
    code = ("import sys; from linmem.cli import main; main(['replay', '--help']); "
            "main(['mrc', '--help']); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_one_implementation_runs_as_python():
    """NUMBA_DISABLE_JIT=1 runs the same kernels as Python: same counts."""
    code = ("import numpy as np; from linmem.cachesim import Cache, POLICIES; "
            "from linmem.cachesim.mrc import StackDistances; "
            "k = (np.random.default_rng(3).zipf(1.3, 1500) % 200).astype(np.int64); "
            "sd = StackDistances(times=64); sd.add(k); "
            "print([Cache(p, 20).replay(k.copy()) for p in POLICIES], "
            "int(sd.misses(np.array([20]))[0]))")
    env = {**__import__("os").environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    keys = (np.random.default_rng(3).zipf(1.3, 1500) % 200).astype(np.int64)
    expected = [Cache(p, 20).replay(keys.copy()) for p in POLICIES]
    assert out.stdout.strip() == f"{expected} {misses('lru', 20, keys)}", out.stderr


def test_the_documented_policy_example_works(tmp_path, monkeypatch):
    """docs/trace-mode.md adds MRU in one file: that file, as written there."""
    import importlib.util
    from pathlib import Path

    import linmem.cachesim as cachesim
    doc = (Path(__file__).parent.parent / "docs" / "trace-mode.md").read_text()
    code = doc.split('```python\n"""MRU')[1].split("```")[0]
    path = tmp_path / "mru.py"
    path.write_text('"""MRU' + code)
    spec = importlib.util.spec_from_file_location("linmem.cachesim.mru", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "linmem.cachesim.mru", module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(cachesim.POLICIES, "mru", "mru")
    # 3 frames, a loop of 4: MRU keeps 1 2 and cycles the third frame
    assert outcomes("mru", 3, "ABCD" * 3) == "mmmmhhmhhmhh"


@pytest.mark.parametrize("name", ["lru", "fifo", "clock", "arc", "2q", "lirs"])
def test_policy_kernels_compile_without_reference_counting(name):
    """The replay loops are ``hot`` (engine/jit.py): compiled with reference
    counting, every array handed to a helper costs two atomic updates per
    request, and FIFO's kernel ran three times as long."""
    from linmem.cachesim import policy_module
    from linmem.cachesim.idmap import number_narrow
    replay = policy_module(name).replay
    if not hasattr(replay, "targetoptions"):
        pytest.skip("NUMBA_DISABLE_JIT: the kernels run as Python")
    assert replay.targetoptions.get("_nrt") is False
    assert number_narrow.targetoptions.get("_nrt") is False
