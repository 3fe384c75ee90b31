"""The VMA tree of linmem.mm.vma: merging, splitting, unmapping, flags, accounting.

The merge cases are those listed above vma_merge() in mm/mmap.c of Linux
6.0, the checklist mm/vma.c still implements::

     ****             ****             ****           new range (mmap/brk)
    PPPPPPNNNNNN    PPPPPPNNNNNN    PPPPPPCCCCCC      or changed range (mprotect...)
    cannot merge    might become    might become
                    PPNNNNNNNNNN    PPPPPPPPPPCC
    mmap, brk or    case 4 below    case 5 below
    mremap move:
                        ****            ****
                    PPPP    NNNN    PPPPCCCCNNNN
                    might become    might become
                    PPPPPPPPPPPP 1 or PPPPPPPPPPPP 6 or
                    PPPPPPPPNNNN 2 or PPPPPPPPXXXX 7 or
                    PPPPNNNNNNNN 3    PPPPXXXXXXXX 8
"""

from __future__ import annotations

import random

import pytest

from linmem.mm import mmap as M
from linmem.mm import vma as V

P = 0x1000
BASE = 0x10000000
RW, RO = V.PROT_READ | V.PROT_WRITE, V.PROT_READ
ANON = V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_FIXED


def tree(**kw) -> V.VmaTree:
    mm = V.VmaTree(**kw)
    mm.mmap_base, mm.mmap_legacy_base = 0x7F0000000000, M.TASK_UNMAPPED_BASE
    return mm


def mmap(mm, page, pages, prot=RW, flags=ANON, file=None, pgoff=0):
    """Map pages at BASE + page*4K, MAP_FIXED."""
    if file is not None:
        flags = (flags & ~V.MAP_ANONYMOUS) | V.MAP_FIXED
    return M.do_mmap(mm, BASE + page * P, pages * P, prot, flags, file, pgoff)[0]


def layout(mm) -> list[tuple]:
    """(first page, pages, perms) of every VMA, pages relative to BASE."""
    return [((v.start - BASE) // P, v.pages, v.perms()) for v in mm]


def check(mm) -> None:
    mm.check_invariants()


# --- lookups ---------------------------------------------------------------------
def test_find_vma_and_friends():
    mm = tree()
    mmap(mm, 0, 2)
    mmap(mm, 4, 2, RO)
    a, b = mm.vmas()
    assert mm.find_vma(BASE - 1) is a and mm.find_vma(BASE + 2 * P) is b
    assert mm.find_vma(BASE + 6 * P) is None
    assert mm.vma_lookup(BASE + 3 * P) is None and mm.vma_lookup(BASE + 5 * P) is b
    assert mm.find_vma_intersection(BASE + 2 * P, BASE + 4 * P) is None
    assert mm.find_vma_intersection(BASE + 2 * P, BASE + 4 * P + 1) is b
    assert mm.find_vma_prev(BASE + 3 * P) == (b, a)
    assert mm.map_count == len(mm) == 2 and list(mm) == [a, b]


# --- merging: new ranges (cases 1-3) -----------------------------------------------
def test_case_1_new_range_between_two_mergeable_vmas_joins_them():
    mm = tree()
    mmap(mm, 0, 4)
    mmap(mm, 8, 4)
    mmap(mm, 4, 4)
    assert layout(mm) == [(0, 12, "rw-p")]
    check(mm)


def test_case_2_and_3_new_range_joins_prev_or_next():
    mm = tree()
    mmap(mm, 0, 4)
    mmap(mm, 8, 4, RO)
    mmap(mm, 4, 4)                          # like prev only: case 2
    assert layout(mm) == [(0, 8, "rw-p"), (8, 4, "r--p")]
    mm2 = tree()
    mmap(mm2, 0, 4, RO)
    mmap(mm2, 8, 4)
    mmap(mm2, 4, 4)                         # like next only: case 3
    assert layout(mm2) == [(0, 4, "r--p"), (4, 8, "rw-p")]
    assert mm2.vmas()[1].pgoff == (BASE >> 12) + 4
    check(mm)
    check(mm2)


def test_no_merge_across_a_hole_or_with_different_flags():
    mm = tree()
    mmap(mm, 0, 4)
    mmap(mm, 5, 4)
    mmap(mm, 9, 4, RO)
    assert layout(mm) == [(0, 4, "rw-p"), (5, 4, "rw-p"), (9, 4, "r--p")]


def test_file_mappings_merge_only_with_contiguous_offsets_of_the_same_file():
    mm = tree()
    f, g = V.MappedFile("/f", 1 << 20), V.MappedFile("/g", 1 << 20)
    mmap(mm, 0, 4, RO, file=f, pgoff=0)
    mmap(mm, 4, 4, RO, file=f, pgoff=4)     # contiguous: merges
    mmap(mm, 8, 4, RO, file=f, pgoff=20)    # offset jump: no
    mmap(mm, 12, 4, RO, file=g, pgoff=24)   # other file: no
    mmap(mm, 16, 4, RO)                     # anonymous: no
    assert layout(mm) == [(0, 8, "r--p"), (8, 4, "r--p"), (12, 4, "r--p"), (16, 4, "r--p")]
    assert [v.pgoff for v in mm][:3] == [0, 20, 24]


def test_special_mappings_never_merge():
    mm = tree()
    pfn = V.VM_READ | V.VM_MAYREAD | V.VM_PFNMAP | V.VM_IO
    mm.install_special_mapping(BASE, 2 * P, pfn, "[vvar]")
    mmap(mm, 2, 2, RO)
    mmap(mm, 4, 2, RO)
    assert layout(mm) == [(0, 2, "r--p"), (2, 4, "r--p")]
    assert mm.vmas()[0].flags & V.VM_DONTEXPAND


def test_soft_dirty_does_not_prevent_merging():
    mm = tree(soft_dirty=True)
    mmap(mm, 0, 4)
    mmap(mm, 4, 4)
    assert layout(mm) == [(0, 8, "rw-p")] and mm.vmas()[0].flags & V.VM_SOFTDIRTY
    assert "sd" in V.vma_flags_mnemonics(mm.vmas()[0].flags, soft_dirty=True)
    assert "sd" not in V.vma_flags_mnemonics(mm.vmas()[0].flags)


# --- merging: changed ranges (cases 4-8) --------------------------------------------
def test_case_4_start_of_next_changed_to_match_prev():
    mm = tree()
    mmap(mm, 0, 4, RO)
    mmap(mm, 4, 8)
    mm.mprotect(BASE + 4 * P, 2 * P, RO)
    assert layout(mm) == [(0, 6, "r--p"), (6, 6, "rw-p")]
    assert mm.vmas()[1].pgoff == (BASE >> 12) + 6
    check(mm)


def test_case_5_end_of_prev_changed_to_match_next():
    mm = tree()
    mmap(mm, 0, 8)
    mmap(mm, 8, 4, RO)
    mm.mprotect(BASE + 6 * P, 2 * P, RO)
    assert layout(mm) == [(0, 6, "rw-p"), (6, 6, "r--p")]
    assert mm.vmas()[1].pgoff == (BASE >> 12) + 6
    check(mm)


def test_case_6_middle_changed_to_match_both():
    mm = tree()
    mmap(mm, 0, 4, RO)
    mmap(mm, 4, 4)
    mmap(mm, 8, 4, RO)
    mm.mprotect(BASE + 4 * P, 4 * P, RO)
    assert layout(mm) == [(0, 12, "r--p")]
    check(mm)


def test_case_7_and_8_middle_changed_to_match_one_side():
    mm = tree()
    mmap(mm, 0, 4, RO)
    mmap(mm, 4, 4)
    mmap(mm, 8, 4, V.PROT_NONE)
    mm.mprotect(BASE + 4 * P, 4 * P, RO)            # case 7: joins prev
    assert layout(mm) == [(0, 8, "r--p"), (8, 4, "---p")]
    mm.mprotect(BASE + 4 * P, 4 * P, V.PROT_NONE)   # case 5 then the rest of case 8
    assert layout(mm) == [(0, 4, "r--p"), (4, 8, "---p")]
    assert mm.vmas()[1].pgoff == (BASE >> 12) + 4
    check(mm)


def test_changed_range_in_the_middle_splits_in_three_and_merges_back():
    mm = tree()
    mmap(mm, 0, 12)
    mm.mprotect(BASE + 4 * P, 4 * P, RO)
    assert layout(mm) == [(0, 4, "rw-p"), (4, 4, "r--p"), (8, 4, "rw-p")]
    assert [v.pgoff - (BASE >> 12) for v in mm] == [0, 4, 8]
    mm.mprotect(BASE + 4 * P, 4 * P, RW)
    assert layout(mm) == [(0, 12, "rw-p")]
    check(mm)


def test_anon_vma_of_a_fork_child_blocks_merging():
    parent = tree()
    mmap(parent, 0, 4)
    parent.anon_vma_prepare(parent.vmas()[0])
    child = tree()
    parent.dup_mmap(child)
    assert V.vma_is_fork_child(child.vmas()[0])
    mmap(child, 4, 4)
    assert layout(child) == [(0, 4, "rw-p"), (4, 4, "rw-p")]       # no merge into a fork child
    mmap(parent, 4, 4)
    assert layout(parent) == [(0, 8, "rw-p")]                      # the parent merges
    check(parent)
    check(child)


def test_different_anon_vmas_do_not_merge_and_prepare_reuses_a_neighbours():
    mm = tree()
    mmap(mm, 0, 4, flags=ANON | V.MAP_NORESERVE)
    mmap(mm, 4, 4, RO, flags=ANON | V.MAP_NORESERVE)
    a, b = mm.vmas()
    assert mm.anon_vma_prepare(a) == mm.anon_vma_prepare(b)      # differ in rwx only: shared
    mmap(mm, 8, 4)
    assert mm.anon_vma_prepare(mm.vmas()[2]) != a.anon_vma       # VM_ACCOUNT differs: its own
    mm2 = tree()
    mmap(mm2, 0, 4)
    mmap(mm2, 4, 4, RO)
    mmap(mm2, 8, 4)
    x, y, z = mm2.vmas()
    x.anon_vma, x.anon_vma_chain = 101, (101,)
    z.anon_vma, z.anon_vma_chain = 102, (102,)
    mm2.mprotect(BASE + 4 * P, 4 * P, RW)           # x and z both could take y, not each other
    assert layout(mm2) == [(0, 8, "rw-p"), (8, 4, "rw-p")]
    check(mm2)


# --- unmapping ----------------------------------------------------------------------
def test_munmap_in_the_middle_splits_in_two():
    mm = tree()
    f = V.MappedFile("/f", 1 << 20)
    mmap(mm, 0, 12, RO, file=f, pgoff=100)
    gone = mm.do_vmi_munmap(BASE + 4 * P, 4 * P)
    assert layout(mm) == [(0, 4, "r--p"), (8, 4, "r--p")]
    assert [v.pgoff for v in mm] == [100, 108]
    assert [(v.start, v.end, v.pgoff) for v in gone.vmas] == [(BASE + 4 * P, BASE + 8 * P, 104)]
    assert (gone.floor, gone.ceiling) == (BASE + 4 * P, BASE + 8 * P)
    assert mm.total_vm == 8
    check(mm)


def test_munmap_across_several_vmas_and_holes():
    mm = tree()
    mmap(mm, 0, 4)
    mmap(mm, 5, 4, RO)
    mmap(mm, 10, 4)
    gone = mm.do_vmi_munmap(BASE + 2 * P, 10 * P)
    assert layout(mm) == [(0, 2, "rw-p"), (12, 2, "rw-p")]
    assert [((v.start - BASE) // P, v.pages) for v in gone.vmas] == [(2, 2), (5, 4), (10, 2)]
    assert gone.pages == 8
    assert mm.do_vmi_munmap(BASE + 4 * P, P).vmas == []          # nothing there: success
    check(mm)


@pytest.mark.parametrize("start, length", [(BASE + 1, P), (BASE, 0), (M.TASK_SIZE + P, P)])
def test_munmap_rejects_bad_ranges(start, length):
    with pytest.raises(V.SyscallError) as e:
        tree().do_vmi_munmap(start, length)
    assert e.value.errno_name == "EINVAL"


def test_unmap_hook_sees_what_leaves():
    seen = []
    mm = tree(unmap_hook=seen.append)
    mmap(mm, 0, 8)
    mm.do_vmi_munmap(BASE, 2 * P)
    mmap(mm, 4, 2, RO)                       # MAP_FIXED over part of it
    assert [[(v.start - BASE) // P for v in u.vmas] for u in seen] == [[0], [4]]


def test_map_fixed_replaces_what_was_there():
    mm = tree()
    mmap(mm, 0, 4, RO)
    mmap(mm, 4, 8)
    mmap(mm, 2, 4, V.PROT_NONE)
    assert layout(mm) == [(0, 2, "r--p"), (2, 4, "---p"), (6, 6, "rw-p")]
    mmap(mm, 0, 12, RO)
    assert layout(mm) == [(0, 12, "r--p")]
    check(mm)


# --- max_map_count -------------------------------------------------------------------
def holes(mm, n, first=0):
    """n one-page VMAs with a hole after each."""
    for i in range(n):
        mmap(mm, first + 2 * i, 1)


def test_mmap_fails_once_map_count_exceeds_the_limit():
    mm = tree(max_map_count=5)
    holes(mm, 6)                       # do_mmap checks map_count > max: the 6th still works
    assert mm.map_count == 6
    with pytest.raises(V.SyscallError) as e:
        mmap(mm, 100, 1)
    assert e.value.errno_name == "ENOMEM" and mm.map_count == 6


def test_splitting_fails_at_the_limit_but_trimming_an_edge_does_not():
    mm = tree(max_map_count=3)
    mmap(mm, 0, 10)
    holes(mm, 2, first=20)
    assert mm.map_count == 3
    for op in (lambda: mm.do_vmi_munmap(BASE + 4 * P, P),          # middle: needs a split
               lambda: mm.mprotect(BASE + 4 * P, P, RO),
               lambda: mm.mlock(BASE + 4 * P, P)):
        with pytest.raises(V.SyscallError) as e:
            op()
        assert e.value.errno_name == "ENOMEM"
    with pytest.raises(V.SyscallError) as e:
        mm.madvise(BASE + 4 * P, P, V.MADV_DONTFORK)
    assert e.value.errno_name == "EAGAIN"                          # madvise turns it into EAGAIN
    assert layout(mm)[0] == (0, 10, "rw-p")
    mm.do_vmi_munmap(BASE + 8 * P, 2 * P)                         # the tail: no new VMA
    assert layout(mm)[0] == (0, 8, "rw-p")
    check(mm)


def test_brk_fails_when_map_count_is_above_the_limit():
    mm = tree(max_map_count=2)
    mm.start_brk = mm.brk = BASE + 100 * P
    holes(mm, 3)
    assert M.sys_brk(mm, mm.brk + P) == mm.start_brk               # unchanged: ENOMEM inside
    mm.max_map_count = 3
    assert M.sys_brk(mm, mm.brk + P) == mm.start_brk + P


# --- accounting ------------------------------------------------------------------------
class Ledger:
    """A commit-charge hook that refuses beyond a limit (like overcommit mode 2)."""

    def __init__(self, limit=1 << 30):
        self.committed, self.limit = 0, limit

    def account(self, pages):
        if self.committed + pages > self.limit:
            return False
        self.committed += pages
        return True

    def unaccount(self, pages):
        self.committed -= pages


def accounted_tree(limit=1 << 30, **kw):
    led = Ledger(limit)
    return tree(account=led.account, unaccount=led.unaccount, **kw), led


def test_private_writable_mappings_are_charged_and_uncharged():
    mm, led = accounted_tree()
    mmap(mm, 0, 8)
    mmap(mm, 10, 4, RO)
    mmap(mm, 20, 4, flags=ANON | V.MAP_NORESERVE)
    assert led.committed == 8 and mm.charged == 8
    mm.do_vmi_munmap(BASE + 2 * P, 2 * P)
    assert led.committed == 6
    mmap(mm, 0, 8)                                   # MAP_FIXED over charged memory: net +2
    assert led.committed == 8
    check(mm)


def test_a_refused_charge_changes_nothing():
    mm, led = accounted_tree(limit=10)
    mmap(mm, 0, 8)
    with pytest.raises(V.SyscallError) as e:
        mmap(mm, 20, 4)
    assert e.value.errno_name == "ENOMEM" and layout(mm) == [(0, 8, "rw-p")]
    assert led.committed == 8 and mm.total_vm == 8
    mmap(mm, 20, 4, RO)
    with pytest.raises(V.SyscallError):
        mm.mprotect(BASE + 20 * P, 4 * P, RW)       # would charge 4 more
    assert layout(mm)[1] == (20, 4, "r--p")
    check(mm)


def test_norserve_is_charged_in_strict_overcommit():
    mm, led = accounted_tree(overcommit_memory=V.OVERCOMMIT_NEVER)
    mmap(mm, 0, 4, flags=ANON | V.MAP_NORESERVE)
    assert led.committed == 4


def test_mprotect_charges_a_private_file_mapping_made_writable():
    mm, led = accounted_tree()
    f = V.MappedFile("/lib.so", 1 << 20)
    mmap(mm, 0, 8, RO, file=f)
    mm.mprotect(BASE, 2 * P, RW)
    assert led.committed == 2 and mm.vmas()[0].flags & V.VM_ACCOUNT
    mm.mprotect(BASE, 2 * P, RO)                   # file mapping: the charge stays (RELRO)
    assert led.committed == 2 and layout(mm) == [(0, 2, "r--p"), (2, 6, "r--p")]
    check(mm)


def test_mprotect_readonly_uncharges_untouched_anonymous_memory():
    mm, led = accounted_tree()
    mmap(mm, 0, 8)
    mm.mprotect(BASE, 8 * P, RO)
    assert led.committed == 0
    mmap(mm, 10, 8)
    mm.anon_vma_prepare(mm.vmas()[1])
    mm.mprotect(BASE + 10 * P, 8 * P, RO)          # has anon pages: keeps its charge
    assert led.committed == 8
    check(mm)


def test_shared_anonymous_memory_is_charged_until_its_last_vma_goes():
    mm, led = accounted_tree()
    mmap(mm, 0, 8, flags=V.MAP_SHARED | V.MAP_ANONYMOUS | V.MAP_FIXED)
    v = mm.vmas()[0]
    assert led.committed == 8 and mm.charged == 0 and v.flags & V.VM_SHARED
    assert mm.get_vma_name(v) == "/dev/zero (deleted)" and v.perms() == "rw-s"
    mm.do_vmi_munmap(BASE + 2 * P, 2 * P)          # two VMAs still map it
    assert led.committed == 8
    mm.do_vmi_munmap(BASE, 8 * P)
    assert led.committed == 0


def test_counters_follow_vm_stat_account():
    mm = tree()
    mmap(mm, 0, 4, V.PROT_READ | V.PROT_EXEC)
    mmap(mm, 10, 4)
    mmap(mm, 20, 4, RW, flags=V.MAP_SHARED | V.MAP_ANONYMOUS | V.MAP_FIXED)
    M.do_mmap(mm, BASE + 30 * P, 4 * P, RW, ANON | V.MAP_GROWSDOWN)
    assert (mm.total_vm, mm.exec_vm, mm.data_vm, mm.stack_vm) == (16, 4, 4, 4)
    mm.mprotect(BASE, 2 * P, RW)
    assert (mm.exec_vm, mm.data_vm) == (2, 6)
    check(mm)


def test_rlimit_as_and_data():
    mm = tree(rlimit_as=10 * P)
    mmap(mm, 0, 8)
    with pytest.raises(V.SyscallError):
        mmap(mm, 10, 4, RO)
    mm = tree(rlimit_data=4 * P)
    mmap(mm, 0, 4)
    mmap(mm, 10, 4, RO)                             # not data
    with pytest.raises(V.SyscallError):
        mmap(mm, 20, 1)


# --- mlock ---------------------------------------------------------------------------------
def test_mlock_splits_counts_and_merges_back():
    mm = tree(cap_ipc_lock=True)
    mmap(mm, 0, 8)
    populate = mm.mlock(BASE + 2 * P, 2 * P)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 2, "rw-p"), (4, 4, "rw-p")]
    assert mm.locked_vm == 2 and [(s - BASE) // P for _, s, _ in populate] == [2]
    mm.mlock(BASE + 2 * P, 2 * P)                  # already locked: counted once
    assert mm.locked_vm == 2
    mm.munlock(BASE, 8 * P)
    assert layout(mm) == [(0, 8, "rw-p")] and mm.locked_vm == 0
    check(mm)


def test_mlock_respects_rlimit_memlock_and_holes():
    mm = tree(rlimit_memlock=4 * P)
    mmap(mm, 0, 8)
    with pytest.raises(V.SyscallError) as e:
        mm.mlock(BASE, 8 * P)
    assert e.value.errno_name == "ENOMEM" and mm.locked_vm == 0
    mm.mlock(BASE, 4 * P)
    with pytest.raises(V.SyscallError):
        mm.mlock(BASE + 6 * P, 4 * P)              # runs into the hole after the VMA


def test_mlockall_future_locks_new_mappings():
    mm = tree(cap_ipc_lock=True)
    mmap(mm, 0, 4)
    mm.mlockall(V.MCL_CURRENT | V.MCL_FUTURE)
    mmap(mm, 10, 2)
    assert mm.locked_vm == 6 and all(v.flags & V.VM_LOCKED for v in mm)
    mm.munlockall()
    assert mm.locked_vm == 0 and mm.def_flags == 0
    check(mm)


# --- madvise -------------------------------------------------------------------------------
def test_madvise_hugepage_on_part_of_a_vma_splits_and_nohugepage_merges_neighbours():
    mm = tree()
    mmap(mm, 0, 1536)
    mm.madvise(BASE + 512 * P, 512 * P, V.MADV_HUGEPAGE)
    assert [(s, n) for s, n, _ in layout(mm)] == [(0, 512), (512, 512), (1024, 512)]
    assert mm.vmas()[1].flags & V.VM_HUGEPAGE
    mm.madvise(BASE, 1536 * P, V.MADV_NOHUGEPAGE)
    assert len(mm) == 1 and mm.vmas()[0].flags & V.VM_NOHUGEPAGE
    assert not mm.vmas()[0].flags & V.VM_HUGEPAGE
    check(mm)


def test_madvise_page_work_comes_back_as_ranges():
    mm = tree()
    mmap(mm, 0, 4)
    mmap(mm, 4, 4, RO)
    work = mm.madvise(BASE + 2 * P, 4 * P, V.MADV_DONTNEED)
    assert [((s - BASE) // P, (e - s) // P) for _, s, e in work] == [(2, 2), (4, 2)]
    assert len(mm) == 2                              # no split for page work
    with pytest.raises(V.SyscallError) as e:
        mm.madvise(BASE + 6 * P, 4 * P, V.MADV_WILLNEED)
    assert e.value.errno_name == "ENOMEM" and len(e.value.ranges) == 1


def test_madvise_errors():
    mm = tree(cap_ipc_lock=True)
    mmap(mm, 0, 4)
    for bad in (lambda: mm.madvise(BASE + 1, P, V.MADV_DONTNEED),
                lambda: mm.madvise(BASE, P, 12345)):
        with pytest.raises(V.SyscallError) as e:
            bad()
        assert e.value.errno_name == "EINVAL"
    mm.mlock(BASE, P)
    with pytest.raises(V.SyscallError) as e:
        mm.madvise(BASE, P, V.MADV_DONTNEED)
    assert e.value.errno_name == "EINVAL"
    f = V.MappedFile("/f", 1 << 20)
    mmap(mm, 10, 2, RO, file=f)
    with pytest.raises(V.SyscallError):
        mm.madvise(BASE + 10 * P, P, V.MADV_WIPEONFORK)


def test_madvise_dontfork_and_wipeonfork_act_at_fork():
    parent = tree()
    mmap(parent, 0, 4)
    mmap(parent, 10, 4)
    parent.madvise(BASE, 4 * P, V.MADV_DONTFORK)
    parent.madvise(BASE + 10 * P, 4 * P, V.MADV_WIPEONFORK)
    parent.anon_vma_prepare(parent.vmas()[1])
    child = tree()
    pairs = parent.dup_mmap(child)
    assert [((c.start - BASE) // P) for _, c in pairs] == [10]
    assert child.vmas()[0].anon_vma is None and child.total_vm == 4
    check(child)


def test_anon_names_split_merge_and_show():
    mm = tree()
    mmap(mm, 0, 8)
    mm.set_anon_vma_name(BASE + 2 * P, 2 * P, "arena")
    names = [mm.get_vma_name(v) for v in mm]
    assert names == [None, "[anon:arena]", None]
    mm.set_anon_vma_name(BASE + 2 * P, 2 * P, None)
    assert len(mm) == 1


# --- stack -------------------------------------------------------------------------------------
def stack_tree(**kw):
    mm = tree(**kw)
    top = BASE + 1000 * P
    mm.insert_vm_struct(V.VMA(top - 4 * P, top, V.VM_STACK_FLAGS))
    mm.vm_stat_account(V.VM_STACK_FLAGS, 4)
    return mm, top


def test_stack_grows_down_on_a_fault_below_it():
    mm, top = stack_tree()
    vma = mm.expand_stack(top - 10 * P + 5)
    assert (vma.start, vma.end) == (top - 10 * P, top) and mm.stack_vm == 10
    assert vma.pgoff == (top - 10 * P) >> 12 and vma.anon_vma is not None
    check(mm)


def test_stack_growth_stops_at_the_guard_gap_and_the_rlimit():
    mm, top = stack_tree()
    mmap(mm, 1000 - 4 - 256 - 10, 1)              # ends 263 pages below the stack
    assert mm.expand_stack(top - 6 * P) is not None  # 257 pages of gap left: fine
    assert mm.expand_stack(top - 20 * P) is None     # would leave 243 < stack_guard_gap
    mm2, top2 = stack_tree(rlimit_stack=8 * P)
    assert mm2.expand_stack(top2 - 8 * P) is not None
    assert mm2.expand_stack(top2 - 9 * P) is None


# --- fork and exit ---------------------------------------------------------------------------
def test_dup_mmap_copies_counters_clears_locks_and_charges_the_child():
    parent = tree(cap_ipc_lock=True)
    mmap(parent, 0, 4)
    mmap(parent, 10, 4, RO)
    parent.mlock(BASE, 4 * P)
    led = Ledger()
    child = tree(account=led.account, unaccount=led.unaccount)
    pairs = parent.dup_mmap(child)
    assert len(pairs) == 2 and child.total_vm == 8 and child.locked_vm == 0
    assert not any(v.flags & V.VM_LOCKED for v in child) and led.committed == 4
    gone = child.exit_mmap()
    assert len(gone.vmas) == 2 and led.committed == 0 and child.map_count == 0


def test_exit_mmap_releases_shared_memory_and_files():
    mm, led = accounted_tree()
    mmap(mm, 0, 4, flags=V.MAP_SHARED | V.MAP_ANONYMOUS | V.MAP_FIXED)
    mmap(mm, 10, 4)
    assert led.committed == 8
    mm.exit_mmap()
    assert led.committed == 0


# --- a page-level reference model --------------------------------------------------------------
def test_random_operations_agree_with_a_page_by_page_model():
    """Random mmap/munmap/mprotect/madvise on 64 pages; compare every page's attributes."""
    rnd = random.Random(1234)
    mm = tree(max_map_count=1 << 20)
    f = V.MappedFile("/data", 1 << 30)
    pages: dict[int, tuple] = {}                 # page -> (prot, file offset or None, hugepage)
    prots = [V.PROT_NONE, RO, RW, V.PROT_READ | V.PROT_EXEC]
    for _ in range(3000):
        a = rnd.randrange(64)
        n = rnd.randrange(1, 64 - a + 1)
        op = rnd.random()
        if op < 0.3:
            prot, use_file = rnd.choice(prots), rnd.random() < 0.3
            off = rnd.randrange(0, 1000)
            mmap(mm, a, n, prot, file=f if use_file else None, pgoff=off)
            for i in range(n):
                pages[a + i] = (prot, off + i if use_file else None, False)
        elif op < 0.55:
            mm.do_vmi_munmap(BASE + a * P, n * P)
            for i in range(n):
                pages.pop(a + i, None)
        elif op < 0.85:
            prot = rnd.choice(prots)
            mapped = all(a + i in pages for i in range(n))
            try:
                mm.mprotect(BASE + a * P, n * P, prot)
            except V.SyscallError as e:
                assert e.errno_name == "ENOMEM" and not mapped
            run = 0
            while run < n and a + run in pages:     # applied up to the first hole
                pages[a + run] = (prot,) + pages[a + run][1:]
                run += 1
        else:
            try:
                mm.madvise(BASE + a * P, n * P, V.MADV_HUGEPAGE)
            except V.SyscallError as e:
                assert e.errno_name == "ENOMEM"
            for i in range(n):
                if a + i in pages:
                    pages[a + i] = pages[a + i][:2] + (True,)
        mm.check_invariants()
        assert _pages_of(mm) == pages


def _pages_of(mm) -> dict[int, tuple]:
    out = {}
    for v in mm:
        prot = v.flags & (V.VM_READ | V.VM_WRITE | V.VM_EXEC)       # same bits as PROT_*
        for i in range(v.pages):
            off = v.pgoff + i if v.file is not None else None
            out[(v.start - BASE) // P + i] = (prot, off, bool(v.flags & V.VM_HUGEPAGE))
    return out


def test_vmflags_table_is_in_bit_order_and_complete():
    bits = [flag.bit_length() - 1 for flag, _ in V.VMA_FLAG_MNEMONICS]
    assert bits == sorted(bits) and len(set(bits)) == len(bits)
    assert V.vma_flags_mnemonics(V.VM_STACK_FLAGS) == "rd wr mr mw me gd ac "
    assert V.vma_flags_mnemonics(1 << 36) == "?? "
