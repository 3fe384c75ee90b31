"""Reclaim and swap speed: page faults per second of the full model while it
reclaims and swaps.

A process writes anonymous memory twice the machine's RAM, three times over,
with a swapfile (every page of passes 2 and 3 is swapped in and out); and
reads a file three times the RAM twice (page-cache reclaim, refaults). For
each, the compute time of the run (after a first run that loads the compiled
kernels) and the rates: faults (or pages read) per second, swap-ins and
swap-outs per second.

Usage::

    .venv/bin/python benchmarks/reclaim.py [--ram 1GiB] [--repeat 3]

Prints medians; always exits 0 (the target is in the text: the kernel-mode
replay of trace mode wants millions of references per second, most of them
hits; these runs are all faults).
"""

from __future__ import annotations

import argparse
import statistics
import time

from linmem.units import format_size, parse_size
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario


def _swap_scenario(ram: int) -> str:
    return f"""
machine: {{ram: {ram}}}
swap:
  - {{path: /swapfile, size: {4 * ram}}}
processes:
  - name: writer
    program: cat
    steps:
      - mmap: {{as: a, size: {2 * ram}}}
      - touch: {{region: a, write: true, passes: 3}}
"""


def _file_scenario(ram: int) -> str:
    return f"""
machine: {{ram: {ram}}}
files: {{/data/big: {3 * ram}}}
processes:
  - name: reader
    program: cat
    steps:
      - read: {{file: /data/big}}
      - read: {{file: /data/big}}
"""


def _run(text: str) -> tuple[float, dict]:
    sc = parse_scenario(text, "bench.yaml")
    start = time.perf_counter()
    result = run_scenario(sc)
    seconds = time.perf_counter() - start
    vm = {k: int(v) for k, v in (line.split() for line in result.final["vmstat"].splitlines())}
    return seconds, vm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ram", default="1GiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ram = parse_size(args.ram)
    for name, text, work in (("anon + swap", _swap_scenario(ram), "pgfault"),
                             ("page cache", _file_scenario(ram), "pgpgin")):
        _run(text)                                           # load the compiled kernels
        runs = [_run(text) for _ in range(args.repeat)]
        seconds = statistics.median(s for s, _ in runs)
        vm = runs[0][1]
        done = vm[work] if work == "pgfault" else vm["pgpgin"] // 4
        print(f"{name:12s} RAM {format_size(ram)}: {seconds:6.2f} s, "
              f"{done / seconds / 1e6:5.2f} M {'faults' if work == 'pgfault' else 'pages read'}/s, "
              f"pswpin {vm['pswpin'] / seconds / 1e6:5.2f} M/s, "
              f"pswpout {vm['pswpout'] / seconds / 1e6:5.2f} M/s, "
              f"reclaimed {(vm['pgsteal_kswapd'] + vm['pgsteal_direct']) / seconds / 1e6:5.2f} M/s")


if __name__ == "__main__":
    main()
