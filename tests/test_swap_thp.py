"""Huge pages under swap pressure: reclaim splits a THP (its PMDs into PTE
tables, the folio into 512 small folios) and swaps its pages; a THP shared
with a forked child is split as well, and nothing leaks."""

from __future__ import annotations

from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario


def test_thp_is_split_and_swapped_instead_of_kept():
    sc = parse_scenario("""
machine: {ram: 128MiB, thp: always}
swap:
  - {path: /swapfile, size: 256MiB}
processes:
  - name: app
    program: cat
    steps:
      - mmap: {as: a, size: 96MiB}
      - touch: {region: a, write: true}
      - fork:
          name: child
          steps:
            - touch: {region: a}
            - exit: 0
      - wait: child
      - mmap: {as: b, size: 64MiB}
      - touch: {region: b, write: true}
      - touch: {region: a, write: true}
      - snapshot: end
""", "thp.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    assert [p["exit"] for p in result.processes] == ["code 0", "code 0"]
    vm = {k: int(v) for k, v in (line.split() for line in result.snapshots["end"]["vmstat"].splitlines())}
    assert vm["thp_fault_alloc"] > 0 and vm["thp_split_page"] > 0
    assert vm["thp_split_page_failed"] == 0
    assert vm["thp_swpout_fallback"] == vm["thp_split_page"]
    assert vm["pswpout"] > 16384 and vm["oom_kill"] == 0
    mem = {line.split(":")[0]: int(line.split()[1]) for line in result.final["meminfo"].splitlines()}
    assert mem["SwapFree"] == mem["SwapTotal"] and mem["SwapCached"] == 0   # all exited
