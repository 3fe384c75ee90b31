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
    K.shadow[slot] = ((eviction << 1) | 1) + 1              # in the workingset when evicted
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
