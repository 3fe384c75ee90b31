"""The real kernel's own speed on the trace of benchmarks/replay_kernel.py:
the same zipf requests (alpha 0.9 over 1 M pages, every request a store)
replayed by a real process as stores to one anonymous mapping of 4 KiB
pages (``PR_SET_THP_DISABLE``, as the model's replay maps no huge pages), in a cgroup
v1 memory group whose limit is 10% or 25% of the pages the trace touches
(plus 64 MiB for the process itself, as the model's run has 64 MiB more
RAM), with a zram or swapfile swap area for the rest; and with twice the
pages (the trace fits). This is the ceiling for ``linmem replay --kernel``: each
request that misses costs the real kernel a major fault (swap-in), and the
reclaim and swap-out of another page.

The replay is a loop of numpy stores into an array the kernel maps lazily
(``np.zeros``: calloc, untouched anonymous pages), timed in the child; the
group, swap area and child are those of tests/realkernel (removed when the
run ends, fails or is interrupted). Needs root, cgroup v1 memory, and for
zram the zram module. Prints requests per second, the child's minor and
major faults, and pswpin and pswpout.

    .venv/bin/python benchmarks/replay_real_kernel.py [--requests N] [--swap zram|swapfile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from replay_kernel import zipf_pages  # noqa: E402
from tests.realkernel import harness  # noqa: E402
from tests.realkernel.reclaim import reclaim_cgroup, snapshot, swap_area  # noqa: E402

MiB = 1 << 20
CHILD = """
import ctypes, json, resource, sys, time
import numpy as np
ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0)   # PR_SET_THP_DISABLE: 4 KiB pages
pages = np.fromfile(sys.argv[1], np.uint32)
words = np.zeros(int(sys.argv[2]) * 512, np.uint64)     # one anonymous mapping, untouched
step = 1 << 16
offset = np.arange(step, dtype=np.int64) & 511           # a word of each page, varied
values = np.arange(step, dtype=np.uint64)
r0 = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
for i in range(0, len(pages), step):                     # stores in request order
    p = pages[i:i + step].astype(np.int64)
    words[p * 512 + offset[:len(p)]] = values[:len(p)]
seconds = time.perf_counter() - start
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "minflt": r1.ru_minflt - r0.ru_minflt,
                  "majflt": r1.ru_majflt - r0.ru_majflt}))
"""


def run_child(trace: Path, n_pages: int, group: Path | None) -> dict:
    def join():
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(trace), str(n_pages)],
                          capture_output=True, text=True, preexec_fn=join, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"the replay failed (status {proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--swap", choices=("zram", "swapfile"), default="zram")
    opts = ap.parse_args()
    reason = harness.cgroup_skip_reason()
    if reason:
        raise SystemExit(f"replay_real_kernel: {reason}")
    pages = zipf_pages(opts.pages, opts.requests, 0.9)
    working = len(np.unique(pages)) * 4096
    print(f"{opts.requests} requests over {working // MiB} MiB of pages, swap on {opts.swap}")
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "pages.u32"
        pages.astype(np.uint32).tofile(trace)
        with swap_area(opts.swap, size=working * 2) as swap:
            for label, share in (("fits", 0.5), ("25% + swap", 4), ("10% + swap", 10)):
                limit = int(working / share) + 64 * MiB          # + the process's own
                with reclaim_cgroup(limit) as group:
                    before = snapshot(group, swap)
                    r = run_child(trace, opts.pages, group)
                    after = snapshot(group, swap)
                d = {k: after["vmstat"][k] - before["vmstat"][k] for k in ("pswpin", "pswpout")}
                print(f"{label:>11}: limit {limit // MiB:5d} MiB  "
                      f"{opts.requests / r['seconds'] / 1e6:6.2f} M req/s"
                      f"  faults {r['minflt'] + r['majflt']:9d} (major {r['majflt']})"
                      f"  pswpin {d['pswpin']}  pswpout {d['pswpout']}  {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
