"""Workingset refault detection of the page cache (mm/workingset.c).

A file larger than memory read three times refaults every page on passes 2
and 3 and activates none (its refault distance is always larger than the
active list); the activation test is exact at its boundary (distance ==
active file pages activates, one more does not); drop_caches leaves no
shadows (re-reading is no refault); a page of the workingset is restored.
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.engine import workingset as W
from linmem.kernel.machine import Machine
from linmem.mm.frames import PG_active, PG_workingset
from linmem.mm.mmap import builtin_image
from linmem.mm.vmstat import node_item, vm_event

MiB = 1 << 20


def node(m, name):
    return int(m.node_stat[node_item(name)])


@pytest.fixture
def machine():
    m = Machine(ram=512 << 20)
    return m, m.kernel.spawn(builtin_image("/usr/bin/cat"), ["cat"])


def test_a_file_larger_than_memory_refaults_every_page_and_activates_none(machine):
    m, task = machine
    k = m.kernel
    k.fs.create("/data/big", 600 * MiB, boot=True)
    pages = 600 * MiB // 4096
    counts = []
    for _ in range(3):
        before = node(m, "workingset_refault_file"), node(m, "workingset_activate_file")
        k.read_file(task, "/data/big")
        counts.append((node(m, "workingset_refault_file") - before[0],
                       node(m, "workingset_activate_file") - before[1]))
    assert counts == [(0, 0), (pages, 0), (pages, 0)]
    m.check_invariants()


@pytest.mark.parametrize("extra, active", [(0, True), (1, False)])
def test_refault_distance_boundary(machine, extra, active):
    """workingset_test_recent: distance <= active file pages activates."""
    m, _ = machine
    K = m.page_alloc.S
    k = m.kernel
    inode = k.fs.create("/data/f", 4096, boot=True)
    fid = k.fs.fid(inode)
    slot = int(K.f_base[fid])
    page = 12345
    nr_active = int(K.node_stat[node_item("nr_active_file")])
    eviction = 1000
    K.nonresident[0] = eviction + nr_active + extra
    packed = eviction << W.MEMCG_ID_SHIFT                   # evicted from the root memcg
    K.shadow[slot] = ((packed << 1) | 1) + 1                # in the workingset when evicted
    flags = K.flags[page]
    W.workingset_refault(K.ref, slot, page, 0)
    assert bool(K.flags[page] & PG_active) == active
    assert bool(K.flags[page] & PG_workingset) == active     # restored only when activated
    assert node(m, "workingset_refault_file") == 1
    assert node(m, "workingset_activate_file") == int(active)
    assert node(m, "workingset_restore_file") == int(active)
    assert K.shadow[slot] == 0
    K.flags[page] = flags


def test_drop_caches_leaves_no_shadow(machine):
    m, task = machine
    k = m.kernel
    k.fs.create("/data/f", 64 * MiB, boot=True)
    k.read_file(task, "/data/f")
    m.write_sysctl("vm.drop_caches", 1)
    k.read_file(task, "/data/f")
    assert node(m, "workingset_refault_file") == 0
    assert int(m.page_alloc.S.events[vm_event("pgpgin")]) // 4 >= 2 * 64 * MiB // 4096


def test_unlink_drops_the_shadows_with_the_file(machine):
    m, task = machine
    k = m.kernel
    k.fs.create("/data/big", 600 * MiB, boot=True)
    k.read_file(task, "/data/big")
    inode = k.fs.inodes["/data/big"]
    K = m.page_alloc.S
    base = int(K.f_base[inode.fid])
    assert int(np.count_nonzero(K.shadow[base:base + inode.npages])) > 0
    k.unlink(task, "/data/big")
    assert int(np.count_nonzero(K.shadow[base:base + inode.npages])) == 0
    m.check_invariants()


def test_shadow_nodes_are_bounded_by_the_shrinker():
    """Streaming ten times the memory through the cache: the xarray nodes
    holding only shadow entries stay near present pages / 8 (count_shadow_
    nodes' limit), the excess freed oldest first (workingset_nodereclaim), so
    the first files' evictions are forgotten and their re-reads are not
    refaults."""
    from linmem.workload.runner import run_scenario
    from linmem.workload.scenario import parse_scenario
    files = ", ".join(f"/data/f{i}: 256MiB" for i in range(5))
    reads = "\n".join(f"      - read: {{file: /data/f{i}}}" for i in range(5))
    sc = parse_scenario(f"""
machine: {{ram: 128MiB}}
files: {{{files}}}
processes:
  - name: reader
    program: cat
    steps:
{reads}
      - snapshot: once
{reads}
""", "stream.yaml")
    result = run_scenario(sc)
    result.machine.check_invariants()
    K = result.machine.page_alloc.S
    limit = int(K.zs[:, 3].sum()) >> 3
    for snap in (result.snapshots["once"], result.final):
        vm = {k: int(v) for k, v in (line.split() for line in snap["vmstat"].splitlines())}
        assert limit <= vm["workingset_nodes"] <= limit + 64
        assert vm["workingset_nodereclaim"] > 0
    assert int(np.count_nonzero(K.shadow)) <= (limit + 64) * 64
    assert vm["workingset_refault_file"] < 64            # all forgotten before the re-reads
