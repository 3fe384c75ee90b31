"""The whole kernel model's speed on a trace (linmem.workload.trace_replay):
requests per second of a zipf trace (alpha 0.9 over 1 M pages, 10 M
requests, every request a store) replayed as one process's memory, with
RAM for 10% and 25% of the pages and a swapfile for the rest; and of the
same trace when everything fits (all hits after the first touch). Trace
generation is not timed; reading the chunks from memory is.

    .venv/bin/python benchmarks/replay_kernel.py [--requests N] [--pages N]
"""

from __future__ import annotations

import argparse

import numpy as np

from linmem.trace import OP_WRITE, Chunk
from linmem.workload.trace_replay import replay_kernel

MiB = 1 << 20


def zipf_pages(n_pages: int, n: int, alpha: float, seed: int = 0) -> np.ndarray:
    """``n`` page numbers drawn from a zipf(alpha) popularity over ``n_pages``
    pages (ranks shuffled to pages)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_pages + 1) ** alpha
    cdf = np.cumsum(weights / weights.sum())
    ranks = np.searchsorted(cdf, rng.random(n))
    return rng.permutation(n_pages)[np.minimum(ranks, n_pages - 1)].astype(np.int64)


def chunks(pages: np.ndarray, size: int = 1 << 20):
    for i in range(0, len(pages), size):
        p = pages[i:i + size]
        yield Chunk(np.arange(len(p), dtype=np.int64), np.zeros(len(p), np.int32), p << 12,
                    np.full(len(p), OP_WRITE, np.uint8), np.ones(len(p), np.int32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    opts = ap.parse_args()
    pages = zipf_pages(opts.pages, opts.requests, 0.9)
    working = len(np.unique(pages)) * 4096
    replay_kernel(chunks(pages[:10000]), ram=64 * MiB)            # compile first
    print(f"{opts.requests} requests over {working // MiB} MiB of pages")
    for label, ram, swap in (("fits", working * 2 + 256 * MiB, 0),
                             ("25% + swap", working // 4 + 64 * MiB, working * 2),
                             ("10% + swap", working // 10 + 64 * MiB, working * 2)):
        r = replay_kernel(chunks(pages), ram=ram, swap=swap).as_dict()
        print(f"{label:>11}: RAM {ram // MiB:5d} MiB  {r['requests_per_second'] / 1e6:6.2f} M req/s"
              f"  faults {r['minor_faults'] + r['major_faults']:9d} (major {r['major_faults']})"
              f"  pswpout {r['pswpout']}  {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
