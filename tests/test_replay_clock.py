"""The simulated clock of ``linmem replay --kernel`` (linmem.workload.replay_clock):
its timeline equals that of an access-at-a-time reference, rows follow
the seconds, their deltas add up to the replay's totals, and the command
prints them (merged when many) and puts every one in its JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linmem.engine.memory import ACCESS_WRITE_IN_ADDR
from linmem.kernel.machine import Machine
from linmem.mm import vma as V
from linmem.mm.vmstat import vm_event
from linmem.trace import OP_WRITE, Chunk
from linmem.workload.replay_clock import ACCESS_NS, EVENTS, MAJOR_NS, MINOR_NS, ReplayClock
from linmem.workload.trace_replay import replay_kernel

MiB = 1 << 20
SUMS = ("requests", "minor_faults", "major_faults", "pswpin", "pswpout", "reclaimed")


def thrashing(ws: int, n: int, seed: int = 0) -> np.ndarray:
    """Page numbers: ``ws`` pages written in order, then ``n`` at random."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.arange(ws), rng.integers(0, ws, n)])


def machine_task(ram: int, pages: int):
    """A machine with 64 MiB of swap, a task and a store to each of ``pages``
    pages of an anonymous mapping: (kernel, task, addresses)."""
    k = Machine(ram=ram).kernel
    k.swap.swapon("/swapfile", 64 * MiB, None, "file")
    task = k.spawn("/usr/bin/cat", ["replay"])
    base = k.mmap(task, pages << 12, V.PROT_READ | V.PROT_WRITE,
                  V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_NORESERVE)
    return k, task, base


def reference_timeline(pages: np.ndarray, row_ns: int) -> list[dict]:
    """The timeline made an access at a time: each access costs its time and
    its fault's, and a row closes once an access ends at or past its end."""
    k, task, base = machine_task(16 * MiB, int(pages.max()) + 1)
    ev, index = k.mem.K.events, [vm_event(name) for name in EVENTS]
    start, now, rows = ev[index].copy(), 0, []
    for i, va in enumerate(base + (pages << 12) | 1):
        before = ev[index].copy()
        k.access(task, np.array([va]), ACCESS_WRITE_IN_ADDR)
        d = ev[index] - before
        now += ACCESS_NS + (d[0] - d[1]) * MINOR_NS + d[1] * MAJOR_NS
        if now >= (len(rows) + 1) * row_ns or i == len(pages) - 1:
            d = ev[index] - start
            rows.append({"second": len(rows), "requests": i + 1 - sum(r["requests"] for r in rows),
                         "minor_faults": int(d[0] - d[1]), "major_faults": int(d[1]),
                         "pswpin": int(d[2]), "pswpout": int(d[3]), "reclaimed": int(d[4] + d[5]),
                         "free_kb": k.machine.page_alloc.nr_free_pages() * 4})
            start = ev[index].copy()
    return rows


def test_rows_equal_an_access_at_a_time(tmp_path):
    """Rows of 1 ms over a run that swaps: the same rows, free memory
    included, as making the accesses one by one."""
    pages = thrashing(4500, 2000)
    k, task, base = machine_task(16 * MiB, 4500)
    clock = ReplayClock(k, task, row_ns=1_000_000)
    vas = base + (pages << 12) | 1
    for lo in range(0, len(vas), 5000):
        clock.access(vas[lo:lo + 5000])
    clock.finish()
    want = reference_timeline(pages, 1_000_000)
    assert len(want) > 20 and sum(r["major_faults"] for r in want) > 1000, want
    assert clock.timeline == want


@pytest.fixture(scope="module")
def swapping():
    """About 3.7 simulated seconds of a process twice the size of its memory."""
    pages = thrashing(24000, 60000)
    chunks = (Chunk(np.arange(len(p), dtype=np.int64), np.zeros(len(p), np.int32),
                    p.astype(np.int64) << 12, np.full(len(p), OP_WRITE, np.uint8),
                    np.ones(len(p), np.int32)) for p in np.array_split(pages, 9))
    return replay_kernel(chunks, ram=64 * MiB, swap=256 * MiB).as_dict()


def test_a_row_per_second_adding_up_to_the_totals(swapping):
    rows = swapping["timeline"]
    assert [r["second"] for r in rows] == list(range(len(rows)))
    assert len(rows) - 1 < swapping["simulated_seconds"] <= len(rows) and len(rows) >= 3
    for key in SUMS:
        assert sum(r[key] for r in rows) == swapping[key], key
    assert all(r["major_faults"] > 5000 and 0 < r["free_kb"] < 64 * 1024 for r in rows[1:])


def test_the_command_prints_the_timeline_and_its_json_has_every_row(tmp_path, capsys):
    from linmem.cli import main
    from linmem.trace.native import write_native
    path = str(tmp_path / "t.lmt")
    pages = thrashing(12000, 40000)
    write_native(path, [Chunk(np.arange(len(pages)), np.zeros(len(pages), np.int32),
                              pages << 12, np.full(len(pages), OP_WRITE, np.uint8),
                              np.ones(len(pages), np.int32))])
    args = ["replay", path, "-f", "native", "--kernel", "--ram", "32MiB", "--swap", "64MiB"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["timeline"]
    assert len(rows) >= 2 and all(sum(r[k] for r in rows) == out[k] for k in SUMS)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "a row per simulated second (the last: to the end of the replay)" in text
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["second", "requests"])
    table = [line.split() for line in lines[head + 1:]]
    assert [int(cells[0]) for cells in table] == [r["second"] for r in rows]
    assert [int(cells[1]) for cells in table] == [r["requests"] for r in rows]


def test_many_seconds_are_merged_evenly(capsys):
    from linmem.commands.replay import _print_timeline
    rows = [{"second": s, "requests": 1, "minor_faults": 2, "major_faults": 3, "pswpin": 4,
             "pswpout": 5, "reclaimed": 6, "free_kb": 1000 + s} for s in range(100)]
    _print_timeline(rows)
    lines = capsys.readouterr().out.splitlines()
    assert "a row per 3 simulated seconds, of 100" in lines[0]
    table = [line.split() for line in lines[2:]]
    assert len(table) == 34
    assert table[0] == ["0-2", "3", "6", "9", "12", "15", "18", "1002"]
    assert table[-1] == ["99", "1", "2", "3", "4", "5", "6", "1099"]
