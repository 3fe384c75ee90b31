"""Trace mode's ``linux`` and ``mglru`` policies (linmem.cachesim.kernel_lru):
the full model's page cache and memcg reclaim as a cache of N frames.

What is pinned: the counts add up and match a request-by-request check of
the page cache; the cache never holds more than N pages and holds N minus
at most one reclaim batch once full; the two-list rules (a page read twice
is active and survives a scan that evicts it under LRU; a refault within
the refault distance is activated, a far one is not); MGLRU differs; bad
input is one line and exit status 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from linmem.cachesim import Cache
from linmem.cachesim.kernel_lru import KernelCache, replay_trace_kernel
from linmem.cli import main
from linmem.engine import memcontrol as MC
from linmem.mm.vmstat import node_item, vm_event
from linmem.trace.oracle_general import write_oracle_general

RECLAIM_BATCH = 64          # one memcg reclaim frees 32 or more (here at most 48, 58)


def zipf_pages(n: int, distinct: int, seed: int) -> np.ndarray:
    """Page numbers 0.. in first-use order, Zipf(1.2) popularity."""
    keys = np.random.default_rng(seed).zipf(1.2, n) % distinct
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def scan_mix_pages(n: int, seed: int) -> np.ndarray:
    """Zipf requests, every third replaced by the next page of a scan."""
    pages = zipf_pages(n, 2000, seed)
    return np.where(np.arange(n) % 3 == 0, np.arange(n) + 2000, pages)


def cache_for(name: str, frames: int, pages: np.ndarray) -> KernelCache:
    return KernelCache(name, frames, int(pages.max()) + 1)


def is_cached(cache: KernelCache, page: int) -> bool:
    K = cache.kernel.mem.K
    return bool(K.pc[K.f_base[cache.fid] + page] >= 0)


def stat_delta(cache: KernelCache, page: int) -> dict[str, int]:
    """Read ``page`` once: how the workingset counters moved."""
    keys = ("workingset_refault_file", "workingset_activate_file")
    before = cache.memory_stat()
    cache.replay(np.array([page], dtype=np.int64))
    after = cache.memory_stat()
    return {k: after[k] - before[k] for k in keys}


# --- (a) the counts ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["linux", "mglru"])
def test_hits_are_the_reads_that_found_their_page_cached(name):
    pages = zipf_pages(3000, 400, 1)
    batch = cache_for(name, 100, pages)
    hits = batch.replay(pages)
    one_by_one = cache_for(name, 100, pages)
    found = 0
    for p in pages:
        cached = is_cached(one_by_one, int(p))
        found += cached
        assert one_by_one.replay(np.array([p])) == cached
    assert hits == found and 0 < hits < len(pages)
    misses = len(pages) - hits
    assert batch.kernel.mem.K.mstat[batch.memcg.id, MC.MS_PGPGIN] == misses   # nothing else charged
    assert batch.kernel.memcg.usage(batch.memcg) == batch.cached()


def test_replay_command_json(tmp_path, capsys):
    pages = zipf_pages(5000, 800, 2)
    path = str(tmp_path / "z.oracleGeneral")
    write_oracle_general(path, pages * 7 + 3)            # any ids: numbered in first use
    assert main(["replay", path, "-f", "oracleGeneral", "-p", "linux", "-n", "200",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["requests", "hits", "misses", "miss_ratio", "seconds",
                         "requests_per_second"]
    assert out["requests"] == 5000 and out["hits"] + out["misses"] == 5000
    assert out["hits"] == cache_for("linux", 200, pages).replay(pages)
    assert out["miss_ratio"] == out["misses"] / 5000
    assert main(["replay", path, "-f", "oracleGeneral", "-p", "mglru", "-m", "800KiB"]) == 0
    assert capsys.readouterr().out.startswith("mglru, 200 frames (0.8 MiB): 5000 requests")


# --- (b) the size of the cache ------------------------------------------------------

@pytest.mark.parametrize("name", ["linux", "mglru"])
def test_the_cache_holds_at_most_n_pages_and_about_n_once_full(name):
    frames = 300
    pages = zipf_pages(20000, 3000, 3)
    cache = cache_for(name, frames, pages)
    sizes = []
    for i in range(0, len(pages), 50):
        cache.replay(pages[i:i + 50])
        sizes.append(cache.cached())
        assert cache.kernel.memcg.usage(cache.memcg) == sizes[-1]
    sizes = np.array(sizes)
    full = int(np.argmax(sizes == frames))
    assert sizes.max() == frames and full > 0
    assert sizes[full:].min() >= frames - RECLAIM_BATCH
    events = cache.machine.page_alloc.S.events          # only the memcg's limit reclaimed
    assert events[vm_event("pgscan_kswapd")] == 0
    assert sum(events[vm_event(f"allocstall_{z}")] for z in ("dma", "dma32", "normal",
                                                              "movable")) == 0


# --- (c) the two-list rules ---------------------------------------------------------

def twice_read_then_scan(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Page A (0) read, page 1, A again: A is read twice; pages 2..N-2 and
    B (N-1) once: the cache is full. Then a scan of N/2 new pages."""
    a, b = 0, frames - 1
    fill = np.concatenate([[a, 1, a], np.arange(2, frames - 1), [b]]).astype(np.int64)
    return fill, np.arange(frames, frames + frames // 2, dtype=np.int64)


def test_a_page_read_twice_survives_a_scan_that_evicts_it_under_lru():
    frames = 1000
    fill, scan = twice_read_then_scan(frames)
    linux = cache_for("linux", frames, scan)
    linux.replay(fill)
    stat = linux.memory_stat()
    assert stat["active_file"] == 4096 and stat["inactive_file"] == 4096 * (frames - 1)
    assert linux.replay(scan) == 0
    lru = Cache("lru", frames)
    lru.replay(fill.copy())
    lru.replay(scan.copy())
    # LRU evicts the N/2 least recently used: page 1, A, then 2, 3...
    assert [lru.replay(np.array([p], np.int64)) for p in (0, frames - 1, 1)] == [0, 1, 0]
    # the two lists: A is active; the scan only cycles the inactive list,
    # whose tail (page 1, read once, long ago) goes first
    assert [linux.replay(np.array([p])) for p in (0, frames - 1, 1)] == [1, 1, 0]


def test_a_refault_within_the_refault_distance_is_activated():
    frames = 200
    hot, scan = np.arange(100), np.arange(100, 500)
    cache = KernelCache("linux", frames, 500)
    cache.replay(np.concatenate([hot, hot, scan]))     # 100 active pages, then a stream
    resident = np.array([is_cached(cache, int(p)) for p in scan])
    first = int(np.argmax(resident))                    # the inactive list is FIFO for
    assert resident[first:].all() and not resident[:first].any()     # pages read once
    # the last page evicted comes back within one reclaim batch of evictions:
    # less than the active list, so it is activated (workingset_activate)
    assert stat_delta(cache, int(scan[first - 1])) == {"workingset_refault_file": 1,
                                                       "workingset_activate_file": 1}
    # the first one evicted, about 300 evictions ago, more than the whole
    # cache: a refault, left inactive
    assert stat_delta(cache, int(scan[0])) == {"workingset_refault_file": 1,
                                               "workingset_activate_file": 0}


# --- (d) MGLRU ------------------------------------------------------------------------

def test_mglru_runs_and_differs_from_the_two_lists():
    pages = scan_mix_pages(20000, 6)
    caches = {name: cache_for(name, 300, pages) for name in ("linux", "mglru")}
    misses = {name: len(pages) - c.replay(pages) for name, c in caches.items()}
    lru = len(pages) - Cache("lru", 300).replay(pages.copy())
    assert misses["linux"] != misses["mglru"] and misses["linux"] < lru
    # refaults count on the folio's lruvec, the replay's cgroup (lru_gen_refault)
    mglru = caches["mglru"]
    node = mglru.machine.page_alloc.S.node_stat[node_item("workingset_refault_file")]
    assert mglru.memory_stat()["workingset_refault_file"] == node > 0
    # the page read twice: with no refaults yet, MGLRU's PID controller
    # protects no tier, so it is evicted with its generation, as under LRU
    fill, scan = twice_read_then_scan(1000)
    mglru = cache_for("mglru", 1000, scan)
    mglru.replay(fill)
    mglru.replay(scan)
    assert [mglru.replay(np.array([p])) for p in (0, 999)] == [0, 1]


# --- (e) bad input --------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["-p", "linux", "-n", "0"], "linmem: --frames: must be at least 1, got 0"),
    (["-p", "mglru", "-m", "1000"], "linmem: --memory: '1000' is less than one 4 KiB frame"),
    (["-p", "linux", "-n", "9", "-f", "nope"], "unknown trace format 'nope'"),
    (["-p", "mglru", "-n", "9", "--cut"], "byte 72: truncated"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, args, message):
    path = tmp_path / "t.oracleGeneral"
    write_oracle_general(str(path), np.arange(4, dtype=np.int64))
    if "--cut" in args:
        args = [a for a in args if a != "--cut"]
        path.write_bytes(path.read_bytes()[:24 * 3 + 7])
    if "-f" not in args:
        args = [*args, "-f", "oracleGeneral"]
    assert main(["replay", str(path), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1


def test_the_driver_refuses_what_the_cli_refuses():
    with pytest.raises(ValueError, match="at least 1 frame"):
        replay_trace_kernel("unused", "txt", "linux", 0)
    with pytest.raises(ValueError, match="unknown kernel policy 'lru'"):
        replay_trace_kernel("unused", "txt", "lru", 10)
