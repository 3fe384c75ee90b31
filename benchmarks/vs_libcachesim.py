"""linmem's trace mode against libCacheSim: the same traces, the same cache
sizes, the same process, miss counts and throughput.

Two traces of 10 M requests, written as libCacheSim oracleGeneral files
(object = 4 KiB page, size 1): ``zipf``, Zipf(0.9) popularity over 1 M
pages (page numbers shuffled); ``scan``, the same Zipf requests with a
quarter of the trace replaced by sequential scans in bursts of 10 000
pages, cycling over another 1 M pages. For each trace, at 10% and 25% of
its working set (distinct pages), each policy runs on libCacheSim (its
Python package, ``libcachesim``) and on linmem alternately, ``--repeat``
times; the table shows the medians. Both sides read the trace file inside
the timed region: libCacheSim's ``TraceReader`` and ``process_trace``,
linmem's ``replay_trace`` (the reader, the keys, the kernel). Compiling
linmem's kernels is not in those times; it is measured apart, in fresh
processes, cold (an empty numba cache: compiling) and warm (loading).

libCacheSim is given a hash table of 2**ceil(log2(2 x frames)) buckets
(``hashpower``): its default, 2**24, makes it about twice as slow on these
traces. Its miss counts come from its miss ratio times the requests.

Also: the exact one-pass LRU miss-ratio curve (every cache size) against one
libCacheSim LRU run at one size, and the bytes of linmem's state (the id
map and the policy's arrays) per distinct page of the trace. linmem replays
as a pipeline of two threads when the machine has two CPUs (one numbers
the keys, the other reads the trace and runs the policy); ``--threads 1``
times it on one.

Usage::

    .venv/bin/python benchmarks/vs_libcachesim.py [--requests 10000000]
        [--repeat 3] [--policies lru,fifo,...] [--dir DIR] [--threads 1|2]

Traces are written to ``--dir`` (kept there for the next run) or to a
temporary directory. Always exits 0: the targets (lru, fifo, clock at least
10x libCacheSim, aim 20x; arc, 2q, lirs at least 5x; the LRU curve no
slower than one LRU run) are printed next to the numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from linmem.cachesim import POLICIES, Cache, replay_trace
from linmem.cachesim.mrc import lru_curve
from linmem.trace.oracle_general import write_oracle_general

LIBCACHESIM = {"lru": "LRU", "fifo": "FIFO", "clock": "Clock", "arc": "ARC", "2q": "TwoQ",
               "lirs": "LIRS", "opt": "Belady"}
SAME_POLICY = {"lru", "fifo", "clock", "arc", "2q", "opt"}    # libCacheSim's LIRS is not the paper's
TARGET = {"lru": 10, "fifo": 10, "clock": 10, "arc": 5, "2q": 5, "lirs": 5}
PAGES = 1 << 20


def zipf_keys(n: int, pages: int, alpha: float, rng) -> np.ndarray:
    """``n`` page numbers of popularity 1 / rank**alpha over ``pages``, shuffled."""
    cdf = np.cumsum(1.0 / np.arange(1, pages + 1) ** alpha)
    ranks = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n)), pages - 1)
    return rng.permutation(pages).astype(np.int64)[ranks]


def scan_mix_keys(n: int, pages: int, rng) -> np.ndarray:
    """Zipf requests; of every 40 000, the last 10 000 are a sequential scan."""
    keys = zipf_keys(n, pages, 0.9, rng)
    i = np.arange(n)
    in_scan = i % 40_000 >= 30_000
    scanned = np.cumsum(in_scan) - 1                      # the scan's own position
    keys[in_scan] = pages + scanned[in_scan] % pages
    return keys


def make_traces(folder: str, n: int) -> dict[str, tuple[str, int]]:
    """name -> (oracleGeneral path, distinct pages); reuses files already there."""
    out = {}
    for name, make in (("zipf", lambda rng: zipf_keys(n, PAGES, 0.9, rng)),
                       ("scan", lambda rng: scan_mix_keys(n, PAGES, rng))):
        path = os.path.join(folder, f"{name}-{n}.oracleGeneral")
        meta = path + ".distinct"
        if not (os.path.exists(path) and os.path.exists(meta)):
            keys = make(np.random.default_rng(42))
            write_oracle_general(path, keys)
            with open(meta, "w") as f:
                f.write(str(len(np.unique(keys))))
        with open(meta) as f:
            out[name] = (path, int(f.read()))
    return out


def run_libcachesim(path: str, policy: str, frames: int, requests: int) -> tuple[float, int]:
    import libcachesim as lcs
    start = time.perf_counter()
    reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
    cache = getattr(lcs, LIBCACHESIM[policy])(frames, hashpower=math.ceil(math.log2(2 * frames)))
    ratio, _ = cache.process_trace(reader)
    return time.perf_counter() - start, round(ratio * requests)


def run_linmem(path: str, policy: str, frames: int, threads: int | None) -> tuple[float, int, float]:
    """(seconds, misses, state bytes per distinct page) of one linmem replay."""
    start = time.perf_counter()
    result = replay_trace(path, "oracleGeneral", policy, frames, threads=threads)
    return time.perf_counter() - start, result.misses, result.state_bytes / result.distinct


def compile_costs() -> dict[str, tuple[float, float]]:
    """policy -> (seconds in a cold process, in a warm one) to get its kernels."""
    child = ("import json, time\nfrom linmem.cachesim import POLICIES, compile_policy\n"
             "from linmem.cachesim.mrc import _compile_stack_distances\nout = {}\n"
             "for name in [*POLICIES, 'mrc']:\n    t = time.perf_counter()\n"
             "    _compile_stack_distances() if name == 'mrc' else compile_policy(name)\n"
             "    out[name] = time.perf_counter() - t\nprint(json.dumps(out))\n")
    import json
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [json.loads(subprocess.run([sys.executable, "-c", child], env=env, check=True,
                                          capture_output=True, text=True).stdout)
                for _ in range(2)]
    return {name: (runs[0][name], runs[1][name]) for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--dir", default=None, help="where to write (and keep) the traces")
    parser.add_argument("--threads", type=int, default=None,
                        help="linmem's replay threads: 2 (number the keys on one, read the "
                             "trace and run the policy on the other; the default with 2 CPUs or "
                             "more) or 1")
    args = parser.parse_args()
    policies = args.policies.split(",")
    try:
        import libcachesim
    except ImportError:
        sys.exit("benchmarks/vs_libcachesim.py needs libCacheSim: pip install libcachesim")
    print(f"libcachesim {libcachesim.__version__ if hasattr(libcachesim, '__version__') else ''}"
          f"; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    print("\ncompiling linmem's kernels (seconds per policy: cold process = compile, "
          "warm = load from numba's cache)")
    for name, (cold, warm) in compile_costs().items():
        print(f"  {name:6s} cold {cold:6.2f} s   warm {warm:5.2f} s")

    folder = args.dir or tempfile.mkdtemp(prefix="vs-libcachesim-")
    os.makedirs(folder, exist_ok=True)
    t = time.perf_counter()
    traces = make_traces(folder, args.requests)
    print(f"\ntraces in {folder} ({time.perf_counter() - t:.1f} s to make or find)")
    for p in policies:
        Cache(p, 2).replay(np.arange(4, dtype=np.int64))     # load the kernels
    summary: dict[str, list[float]] = {p: [] for p in policies}
    memory: dict[str, list[float]] = {p: [] for p in policies}
    threads = args.threads or (2 if (os.cpu_count() or 1) > 1 else 1)
    print(f"linmem replays with {threads} thread{'s' if threads > 1 else ''}")
    for name, (path, distinct) in traces.items():
        for share in (0.10, 0.25):
            frames = round(distinct * share)
            print(f"\n{name}: {args.requests / 1e6:g} M requests, {distinct} distinct pages; "
                  f"{share:.0%} = {frames} frames")
            print(f"  {'policy':6s} {'misses linmem':>14s} {'libCacheSim':>12s} {'same':>5s} "
                  f"{'linmem s':>9s} {'lcs s':>7s} {'linmem M/s':>10s} {'lcs M/s':>8s} "
                  f"{'ratio':>6s}")
            for p in policies:
                ours, theirs = [], []
                for _ in range(args.repeat):
                    theirs.append(run_libcachesim(path, p, frames, args.requests))
                    ours.append(run_linmem(path, p, frames, args.threads))
                s_ours = statistics.median(r[0] for r in ours)
                s_theirs = statistics.median(r[0] for r in theirs)
                m_ours, m_theirs = ours[0][1], theirs[0][1]
                same = ("yes" if m_ours == m_theirs else "NO") if p in SAME_POLICY else "(n/a)"
                ratio = s_theirs / s_ours
                summary[p].append(ratio)
                memory[p].append(ours[0][2])
                print(f"  {p:6s} {m_ours:14d} {m_theirs:12d} {same:>5s} {s_ours:9.3f} "
                      f"{s_theirs:7.2f} {args.requests / s_ours / 1e6:10.1f} "
                      f"{args.requests / s_theirs / 1e6:8.2f} {ratio:5.1f}x")
        if "lru" in policies:
            curve_s = statistics.median(lru_curve(path, "oracleGeneral", points=0).seconds
                                        for _ in range(args.repeat))
            lru_s = statistics.median(run_libcachesim(path, "lru", round(distinct * 0.1),
                                                      args.requests)[0]
                                      for _ in range(args.repeat))
            print(f"  exact LRU curve, every size: {curve_s:.2f} s; one libCacheSim LRU run "
                  f"at 10%: {lru_s:.2f} s ({lru_s / curve_s:.1f}x; target >= 1x)")

    print("\nlinmem's state in bytes per distinct page of the trace (the id map and the "
          "policy's arrays; OPT: its whole-trace arrays), min .. max over the runs")
    for p in policies:
        print(f"  {p:6s} {min(memory[p]):5.1f} .. {max(memory[p]):5.1f}")

    print("\nspeed-up over libCacheSim (median run of each trace and size: min .. max)")
    for p, ratios in summary.items():
        target = f"target {TARGET[p]}x" + (" (aim 20x)" if TARGET[p] == 10 else "") \
            if p in TARGET else "no target"
        print(f"  {p:6s} {min(ratios):5.1f}x .. {max(ratios):5.1f}x   {target}")


if __name__ == "__main__":
    main()
