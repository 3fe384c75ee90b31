"""A trace through the whole kernel model (linmem.workload.trace_replay)."""

from __future__ import annotations

import numpy as np

from linmem.trace import OP_READ, OP_WRITE, Chunk
from linmem.workload.trace_replay import replay_kernel

MiB = 1 << 20


def _chunks(pages: np.ndarray, ops: np.ndarray, size: int = 1000):
    for i in range(0, len(pages), size):
        p, o = pages[i:i + size], ops[i:i + size]
        yield Chunk(np.arange(len(p), dtype=np.int64), np.zeros(len(p), np.int32),
                    p.astype(np.int64) << 12, o.astype(np.uint8), np.ones(len(p), np.int32))


def test_each_distinct_page_faults_once_when_all_fit():
    rng = np.random.default_rng(1)
    pages = rng.integers(0, 5000, 20000) * 7 + 0x400000      # sparse page numbers
    r = replay_kernel(_chunks(pages, np.full(len(pages), OP_WRITE)), ram=256 * MiB)
    d = r.as_dict()
    assert d["requests"] == 20000 and d["pages"] == len(np.unique(pages))
    assert d["minor_faults"] == d["pages"] and d["major_faults"] == 0
    assert d["oom_kill"] == 0 and not d["killed"]


def test_object_ids_are_a_page_each():
    """Ids below 4096 would be one page as byte addresses; as objects
    (oracleGeneral, or a native trace converted from one) each is a page."""
    ids = np.arange(3000, dtype=np.int64)
    chunk = Chunk(ids, np.zeros(3000, np.int32), ids, np.full(3000, OP_WRITE, np.uint8),
                  np.ones(3000, np.int32), objects=True)
    d = replay_kernel([chunk], ram=128 * MiB).as_dict()
    assert d["pages"] == d["minor_faults"] == 3000


def test_loads_of_pages_never_written_map_the_zero_page():
    pages = np.arange(3000)
    ops = np.full(len(pages), OP_READ)
    r = replay_kernel(_chunks(pages, ops), ram=128 * MiB)
    assert r.as_dict()["minor_faults"] == 3000          # each maps the zero page: no memory
    mixed = replay_kernel(_chunks(np.concatenate([pages, pages]),
                                  np.concatenate([ops, np.full(3000, OP_WRITE)])), ram=128 * MiB)
    assert mixed.as_dict()["minor_faults"] == 6000      # then each store copies it


def test_more_pages_than_memory_swap_or_are_killed():
    pages = np.tile(np.arange(60000), 2)               # 234 MiB written twice in order
    ops = np.full(len(pages), OP_WRITE)
    swapping = replay_kernel(_chunks(pages, ops, 10000), ram=128 * MiB, swap=512 * MiB).as_dict()
    assert swapping["pswpout"] > 0 and swapping["major_faults"] > 0
    assert swapping["pswpin"] >= swapping["major_faults"] and not swapping["killed"]
    killed = replay_kernel(_chunks(pages, ops, 10000), ram=128 * MiB).as_dict()
    assert killed["killed"] and killed["oom_kill"] == 1 and killed["pswpout"] == 0
    for d in (swapping, killed):                       # the OOM kill's faults included
        for key in ("requests", "minor_faults", "major_faults", "pswpin", "pswpout",
                    "reclaimed"):
            assert sum(row[key] for row in d["timeline"]) == d[key], key


def test_the_replay_command_runs_the_kernel_model(tmp_path, capsys):
    import json

    from linmem.cli import main
    from linmem.trace.native import write_native
    path = str(tmp_path / "t.lmt")
    pages = np.tile(np.arange(2000), 3)
    write_native(path, _chunks(pages, np.full(len(pages), OP_WRITE)))
    assert main(["replay", path, "--format", "native", "--kernel", "--ram", "128MiB",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == 6000 and out["minor_faults"] == 2000
    for args, what in ((["--policy", "linux"], "--ram"),
                       (["--policy", "lru", "--ram", "1GiB"], "the kernel's"),
                       (["--ram", "1GiB", "--frames", "10"], "the machine's")):
        assert main(["replay", path, "--format", "native", "--kernel", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0], err
    assert main(["replay", path, "--format", "native", "--policy", "linux", "--frames",
                 "10", "--json"]) == 0             # without --kernel: a cache of 10 pages
    assert json.loads(capsys.readouterr().out)["requests"] == 6000
