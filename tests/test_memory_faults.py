"""Demand paging, copy-on-write and THP at the level of page tables.

The numbers are those the real kernel gives (shared/reference/real-kernel.md,
measured here with getrusage): 64 MiB of anonymous memory written once takes
16384 minor faults; after fork a child writing half of it takes 8192; once the
child has exited, the parent rewriting everything takes 16384 again (its PTEs
stayed write-protected; each fault reuses the page). With MADV_HUGEPAGE under
THP "madvise": 32, 8192 and 32.
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.engine import memory as E
from linmem.kernel.machine import Machine
from linmem.mm.memory import MemoryModel

BASE = 0x7F0000000000
TOP = 1 << 47
RW_PRIVATE = E.VM_READ | E.VM_WRITE | 0x70          # + VM_MAYREAD/MAYWRITE/MAYEXEC


def vma(start, size, flags=RW_PRIVATE, anon=1):
    return np.array([[start, start + size, flags, start >> 12, -1, anon]], dtype=np.int64)


def pages(start, size):
    return np.arange(start, start + size, 4096, dtype=np.int64)


@pytest.fixture
def mem():
    m = Machine(ram=2 << 30, thp="madvise")
    model = MemoryModel(m)
    model.ensure_task_rows(16)
    return model


def exit_mm(mem, mm, start, size):
    mem.zap(mm, start, start + size)
    mem.free_pgtables(mm, start, start + size, 0, TOP)
    mem.free_mm(mm)


@pytest.mark.parametrize("mib", [4, 16, 64])
@pytest.mark.parametrize("huge", [False, True])
def test_first_touch_fork_cow_and_reuse(mem, mib, huge):
    size = mib << 20
    v = vma(BASE, size, RW_PRIVATE | (E.VM_HUGEPAGE if huge else 0))
    parent, child_pid = 1, 2
    mm = mem.new_mm()
    assert mem.access(mm, parent, pages(BASE, size), True, v) == (0, size >> 12)
    assert mem.faults(parent) == ((size >> 21) if huge else size >> 12, 0)
    assert mem.rss(mm) == (0, size >> 12, 0, 0)
    child = mem.new_mm()
    mem.copy_range(mm, child, BASE, BASE + size)
    assert mem.rss(child) == mem.rss(mm)
    mem.access(child, child_pid, pages(BASE, size // 2), True, v)
    assert mem.faults(child_pid) == (size >> 13, 0)             # one per 4 KiB, huge or not
    exit_mm(mem, child, BASE, size)
    before = mem.faults(parent)[0]
    mem.access(mm, parent, pages(BASE, size), True, v)
    assert mem.faults(parent)[0] - before == ((size >> 21) if huge else size >> 12)
    exit_mm(mem, mm, BASE, size)
    m = mem.machine
    assert m.page_alloc.nr_free_pages() + m.page_alloc.pcp_pages() == m.totalram_pages
    assert not m.node_stat.any()                                 # no page left behind
    m.check_invariants()


def test_read_maps_the_zero_page_and_write_then_copies(mem):
    size = 8 << 20
    v = vma(BASE, size)
    mm = mem.new_mm()
    mem.access(mm, 1, pages(BASE, size), False, v)
    assert mem.faults(1) == (2048, 0) and mem.rss(mm) == (0, 0, 0, 0)
    mem.access(mm, 1, pages(BASE, size), False, v)
    assert mem.faults(1) == (2048, 0)                             # present: no fault
    mem.access(mm, 1, pages(BASE, size), True, v)
    assert mem.faults(1) == (4096, 0) and mem.rss(mm)[1] == 2048  # write-protect faults


def test_huge_read_maps_the_huge_zero_page(mem):
    size = 8 << 20
    v = vma(BASE, size, RW_PRIVATE | E.VM_HUGEPAGE)
    mm = mem.new_mm()
    mem.access(mm, 1, pages(BASE, size), False, v)
    assert mem.faults(1) == (4, 0) and mem.rss(mm) == (0, 0, 0, 0)


def test_page_tables_are_counted(mem):
    """PageTables: the PGD, then a PUD, a PMD and one PTE table per 2 MiB."""
    m = mem.machine
    nr_pt = lambda: int(m.node_stat[E.node_item("nr_page_table_pages")])  # noqa: E731
    mm = mem.new_mm()
    assert nr_pt() == 1
    mem.access(mm, 1, pages(BASE, 8 << 20), True, vma(BASE, 8 << 20))
    assert nr_pt() == 1 + 1 + 1 + 4
    assert mem.pgtables_bytes(mm) == (1 + 1 + 4) * 4096            # VmPTE leaves out the PGD


def test_write_outside_a_vma_or_to_a_read_only_one_is_a_segv(mem):
    mm = mem.new_mm()
    v = vma(BASE, 1 << 20, E.VM_READ | 0x10)
    status, where = mem.access(mm, 1, pages(BASE, 1 << 20), True, v)
    assert status == -3 and where == 0
    status, where = mem.access(mm, 1, np.array([BASE + (2 << 20)]), False, v)
    assert status == -3


def test_max_faults_stops_before_the_fault_one_too_many(mem):
    """Hits go on past the limit; the next fault is not taken."""
    mm = mem.new_mm()
    v = vma(BASE, 1 << 20)
    vas = np.concatenate([pages(BASE, 3 << 12), pages(BASE, 3 << 12), pages(BASE, 1 << 20)])
    assert mem.access(mm, 1, vas, True, v, max_faults=3) == (0, 9)
    assert mem.faults(1) == (3, 0)
    assert mem.access(mm, 1, vas, True, v, max_faults=0) == (0, 9)
    assert mem.access(mm, 1, vas, True, v) == (0, len(vas))
    assert mem.faults(1) == (256, 0)


def test_max_faults_counts_across_a_resume(mem):
    """A page table per 2 MiB fills the table pool three times over 1500
    faults (NEED_TABLES, then the call resumes): still 1500 in all."""
    grown = []
    grow = mem._grow_tables
    mem._grow_tables = lambda: (grown.append(1), grow())
    mm = mem.new_mm()
    v = vma(BASE, 4 << 30)
    vas = np.arange(BASE, BASE + (4 << 30), 2 << 20, dtype=np.int64)
    assert mem.access(mm, 1, vas, True, v, max_faults=1500) == (0, 1500)
    assert mem.faults(1) == (1500, 0) and len(grown) >= 2


def test_anonymous_pages_enter_the_inactive_anon_list(mem):
    m = mem.machine
    mm = mem.new_mm()
    mem.access(mm, 1, pages(BASE, 4 << 20), True, vma(BASE, 4 << 20))
    node = {k: int(m.node_stat[E.node_item(k)]) for k in
            ("nr_inactive_anon", "nr_active_anon", "nr_anon_pages")}
    assert node == {"nr_inactive_anon": 1024, "nr_active_anon": 0, "nr_anon_pages": 1024}
