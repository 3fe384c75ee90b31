"""Boot time and memory of linmem machines (x86-64), one fresh process per boot.

For each size, ``--repeat`` child processes each import linmem's machine
module and numba (the interpreter baseline), then time ``Machine(ram=SIZE)``
and report the wall time, the peak RSS of the child (``ru_maxrss``) and the
peak above the baseline; then time a second boot in the same process, which
no longer pays for loading the compiled kernels. The boot times shown are the
medians of the repeats.
The compiled kernels come from numba's on-disk cache, warmed first; the cost
of compiling them the very first time is measured apart, by one boot of the
smallest size with ``NUMBA_CACHE_DIR`` pointing at an empty directory.

Usage::

    .venv/bin/python benchmarks/boot.py [--sizes 1,16,64] [--repeat 3]

Always exits 0: the targets (a 64 GiB machine boots in at most 2 s and within
1 GiB of RSS) are printed next to the numbers, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

GiB = 1 << 30
TARGET_SIZE_GIB = 64
TARGET_BOOT_S = 2.0
TARGET_RSS_MIB = 1024

# What each child runs: imports first (the baseline), then one timed boot.
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numba  # noqa: F401
from linmem.kernel.machine import Machine
t1 = time.perf_counter()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t2 = time.perf_counter()
m = Machine(ram=int(sys.argv[1]), arch="x86_64")
t3 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
memtotal = m.totalram_pages << 2
del m
t4 = time.perf_counter()
Machine(ram=int(sys.argv[1]), arch="x86_64")
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "boot_s": t3 - t2, "again_s": t5 - t4, "base_kib": base,
                  "peak_kib": peak, "memtotal_kib": memtotal}))
"""


def boot_once(size_gib: int, env: dict | None = None) -> dict:
    """Boot one machine in a fresh interpreter; return its measurements."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(size_gib * GiB)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"boot.py: booting {size_gib} GiB failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def cold_compile(size_gib: int) -> dict:
    """One boot with an empty numba cache: every kernel boot uses is compiled."""
    with tempfile.TemporaryDirectory(prefix="linmem-numba-cold-") as cache:
        return boot_once(size_gib, env={**os.environ, "NUMBA_CACHE_DIR": cache})


def measure(size_gib: int, repeat: int) -> dict:
    runs = [boot_once(size_gib) for _ in range(repeat)]
    return {
        "size_gib": size_gib,
        "boot_s": statistics.median(r["boot_s"] for r in runs),
        "boot_min_s": min(r["boot_s"] for r in runs),
        "boot_max_s": max(r["boot_s"] for r in runs),
        "again_s": statistics.median(r["again_s"] for r in runs),
        "import_s": statistics.median(r["import_s"] for r in runs),
        "peak_mib": max(r["peak_kib"] for r in runs) / 1024,
        "above_base_mib": max(r["peak_kib"] - r["base_kib"] for r in runs) / 1024,
        "base_mib": statistics.median(r["base_kib"] for r in runs) / 1024,
        "memtotal_gib": runs[0]["memtotal_kib"] / (1 << 20),
    }


def target_note(row: dict) -> str:
    if row["size_gib"] != TARGET_SIZE_GIB:
        return ""
    boot_ok = "ok" if row["boot_s"] <= TARGET_BOOT_S else "MISSED"
    rss_ok = "ok" if row["peak_mib"] <= TARGET_RSS_MIB else "MISSED"
    return (f"boot <= {TARGET_BOOT_S:g} s: {boot_ok}; "
            f"RSS <= {TARGET_RSS_MIB // 1024} GiB: {rss_ok}")


def print_table(rows: list[dict], repeat: int, cold: dict, warm_smallest: dict) -> None:
    print(f"linmem boot benchmark (x86_64, 2 CPUs, THP madvise; median of {repeat} "
          f"fresh processes; python {sys.version.split()[0]})")
    print(f"interpreter baseline (python + numpy + numba + linmem.kernel.machine): "
          f"{rows[0]['base_mib']:.0f} MiB RSS, import {rows[0]['import_s']:.2f} s")
    print()
    header = (f"{'RAM':>6} {'MemTotal':>9} {'boot s':>7} {'(min-max)':>13} {'2nd boot s':>10} "
              f"{'peak RSS':>9} {'above base':>11}  target")
    print(header)
    print("-" * len(header))
    for r in rows:
        spread = f"({r['boot_min_s']:.2f}-{r['boot_max_s']:.2f})"
        print(f"{r['size_gib']:>4}Gi {r['memtotal_gib']:>7.2f}Gi {r['boot_s']:>7.3f} {spread:>13} "
              f"{r['again_s']:>10.3f} {r['peak_mib']:>6.0f}MiB {r['above_base_mib']:>8.0f}MiB  {target_note(r)}")
    print("boot s: the first Machine() of a fresh process, which also loads the compiled "
          "kernels from numba's cache;")
    print("2nd boot s: a second Machine() in the same process (the model's own cost); "
          "peak RSS is measured before it.")
    print()
    compile_s = cold["boot_s"] - warm_smallest["boot_s"]
    print(f"first-ever compile (empty NUMBA_CACHE_DIR, {warm_smallest['size_gib']} GiB boot): "
          f"{cold['boot_s']:.2f} s cold vs {warm_smallest['boot_s']:.3f} s cached "
          f"-> about {compile_s:.2f} s of numba compilation")


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GiB sizes like 1,16,64, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive GiB sizes, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[1, 16, 64],
                        help="machine sizes in GiB, comma-separated (default: 1,16,64)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh processes per size; the median is shown (default: 3)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    boot_once(min(args.sizes))                   # warm numba's on-disk cache
    rows = [measure(size, args.repeat) for size in args.sizes]
    smallest = min(rows, key=lambda r: r["size_gib"])
    cold = cold_compile(smallest["size_gib"])
    print_table(rows, args.repeat, cold, smallest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
