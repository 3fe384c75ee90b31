"""read(2) through the page cache, against the real kernel
(tests/data/realkernel/read-twice-6.18.json): a file read once sits on the
inactive file list; read again, it is active, and the second read does no I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from linmem.kernel.machine import Machine
from linmem.mm import vma as V
from linmem.mm.frames import PG_active
from linmem.mm.vmstat import node_item, vm_event

REAL = json.loads((Path(__file__).parent / "data/realkernel/read-twice-6.18.json").read_text())


def test_a_file_read_twice_is_activated_and_the_second_read_does_no_io():
    m = Machine(ram=1 << 30)
    k = m.kernel
    f = k.open_file(V.MappedFile("/data/f200", 200 << 20))
    fid = k.file_id(f)
    whole = np.arange(0, f.size, 128 << 10)               # dd bs=128k
    node = lambda name: int(m.node_stat[node_item(name)])  # noqa: E731
    pgpgin = lambda: int(m.page_alloc.S.events[vm_event("pgpgin")])  # noqa: E731
    pages = REAL["file_pages"]
    k.mem.read(fid, f.size, whole, 128 << 10)
    assert pgpgin() == pages * 4                                   # KiB read from disk
    # the real group's counts include a few pages of other files (dd itself)
    for once, twice, _third in REAL["reads"].values():
        assert once["inactive_file"] > 0.99 * pages and twice["active_file"] > 0.99 * pages
    assert node("nr_inactive_file") == pages and node("nr_active_file") == 0
    k.mem.read(fid, f.size, whole, 128 << 10)
    assert pgpgin() == pages * 4                                   # no I/O
    assert node("nr_active_file") == pages and node("nr_inactive_file") == 0
    assert int(m.page_alloc.S.events[vm_event("pgactivate")]) == pages
    m.check_invariants()


def test_read_step_in_a_scenario(tmp_path):
    from linmem.workload.runner import run_scenario
    from linmem.workload.scenario import parse_scenario
    scen = parse_scenario("machine: {ram: 1GiB}\nfiles: {/data/f: 16MiB}\nprocesses:\n"
                          "  - {name: r, program: cat, steps: [{read: {file: /data/f, passes: 2}}]}\n",
                          "s.yaml")
    result = run_scenario(scen)
    meminfo = result.final["meminfo"]
    assert "Cached:            16384 kB" in meminfo
    fs = result.machine.kernel.fs
    K = result.machine.page_alloc.S
    fid = fs.inodes["/data/f"].fid
    pages = K.pc[K.f_base[fid]:K.f_base[fid] + 4096]
    assert ((K.flags[pages] & PG_active) != 0).all()            # the data, read twice: active
    reads = [e for e in result.events if e["event"] == "read"]
    assert reads[0]["pages_read_from_disk"] == 4096
