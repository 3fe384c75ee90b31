"""Compiled kernels: four-level x86-64 page tables and the state of mappings.

Every page-table page of every process is one row of 512 entries in a shared
pool, ``M.pt[table_id]``, backed by a real frame of the buddy allocator (so it
shows in PageTables). A virtual address splits into four 9-bit indices::

    47      39 38     30 29     21 20     12 11        0
    | PGD idx | PUD idx | PMD idx | PTE idx |  offset   |

Entries are int64 values laid out like x86's, except that a directory entry
holds the *table id* of the next level (flag ``_PAGE_TABLE``) instead of a
physical address::

    leaf (PTE, or PMD with _PAGE_PSE):  pfn << 12 | flags
    directory:                          table_id << 12 | _PAGE_TABLE | P | RW | U
    empty:                              0

Flags: present, rw, user, accessed (the "young" bit reclaim harvests), dirty,
PSE (a 2 MiB leaf at the PMD level), special (the zero page, not refcounted).

The compiled code never allocates Python objects; when it needs memory the
fast path cannot give, it stops with a status (``NEED_*``) and the Python side
(``linmem.mm.memory``) runs the allocator's slow path, puts the page it got in
a *preallocation slot*, and resumes: every operation here is restartable.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine import memcontrol as MC
from linmem.engine.jit import njit
from linmem.mm.frames import PG_table
from linmem.mm.vmstat import node_item

PTRS_PER_TABLE = 512
PAGE_SHIFT = 12
PMD_SHIFT = 21
PUD_SHIFT = 30
PGD_SHIFT = 39
HPAGE_PMD_ORDER = 9
HPAGE_PMD_NR = 512

_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_SPECIAL = 1 << 9
_PAGE_TABLE = 1 << 10
_PAGE_FLAGS_MASK = (1 << PAGE_SHIFT) - 1

# Levels of a table (4 = PGD ... 1 = PTE table)
LEVEL_PTE, LEVEL_PMD, LEVEL_PUD, LEVEL_PGD = 1, 2, 3, 4

# Statuses of compiled operations
OK = 0
NEED_PAGE = -1         # the fast path could not give a page: slow path, then resume
NEED_TABLES = -2       # the table pool is full: grow it, then resume
SEGV = -3              # access outside a VMA or against its protection
NEED_FILE = -4         # reserved for the page cache

# ctl[] slots
C_ZERO_PFN = 0
C_PREALLOC_USER = 1     # an order-0 GFP_HIGHUSER_MOVABLE page, or -1
C_PREALLOC_KERNEL = 2   # an order-0 GFP_PGTABLE_USER page, or -1
C_PREALLOC_THP = 3      # an order-9 THP folio, or -1 (or -2: THP not possible, fall back)
C_NEED_KIND = 4         # what NEED_PAGE asks for: 0 user, 1 kernel, 2 THP
C_CPU = 5
C_PT_NFREE = 6          # free table ids on the stack
C_PT_NEXT = 7           # first never-used table id
C_USE_ZERO_PAGE = 8     # transparent_hugepage/use_zero_page
C_HUGE_ZERO_PFN = 9     # the huge zero folio (order 9), -1 until first use
C_THP_MODE = 10         # 0 never, 1 madvise, 2 always
C_NOW_US = 11           # the machine's clock, in microseconds (inode dirtied_when)
C_SWAP_PEND_MM = 12     # a swap-in fault stopped in its readahead for memory: its mm,
C_SWAP_PEND_VA = 13     #   address (-1: none),
C_SWAP_PEND_NEXT = 14   #   the next address of its window to read
C_SWAP_PEND_END = 15    #   and the window's end; the faulting page, held meanwhile
C_SWAP_PEND_PAGE = 16
C_MEMCG = MC.C_MEMCG   # the memcg new pages are charged to (the current task's)
C_NEED_CHARGE = 18     # why NEED_PAGE: 0 no free page, 1 a memcg refused the charge,
                       #   2 the task must first pay for charges over memory.high
C_OVER_HIGH = 19       # pages charged over memory.high (current->memcg_nr_pages_over_high)
C_NR = 20

KIND_USER, KIND_KERNEL, KIND_THP = 0, 1, 2

# mm counters: mm_stat[mm, ...] (include/linux/mm_types_task.h, then ours)
MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES = 0, 1, 2, 3
MM_NR_PTES, MM_NR_PMDS, MM_NR_PUDS = 4, 5, 6
MM_PGD = 7              # table id of the PGD
MM_HIWATER_RSS = 8
MM_SWAP_RA = 9          # swap readahead state (vma->swap_readahead_info, one per mm)
NR_MM_STAT = 10

# per-task counters: task_stat[pid, ...]
T_MIN_FLT, T_MAJ_FLT = 0, 1
NR_TASK_STAT = 2

NR_PAGETABLE = node_item("nr_page_table_pages")


# --------------------------------------------------------------------------
# entries: a leaf holds the pfn in bits 12-39; a huge PMD also holds, in bits
# 40-62, the id of the PTE table deposited for it (pgtable_trans_huge_deposit).

PFN_BITS = 28
DEP_SHIFT = 40


@njit
def pte_pfn(entry):
    return (entry >> PAGE_SHIFT) & ((1 << PFN_BITS) - 1)


@njit
def pmd_deposit(entry):
    return entry >> DEP_SHIFT


@njit
def mk_entry(pfn, flags):
    return (np.int64(pfn) << PAGE_SHIFT) | flags


@njit
def table_index(va, shift):
    return (va >> shift) & (PTRS_PER_TABLE - 1)


# --------------------------------------------------------------------------
# frames for the compiled side

@njit
def alloc_frame(M, kind):
    """One page (or THP folio) for a fault or a table, from the preallocation
    slot or the allocator's fast path, charged to the memcg in ctl[C_MEMCG]
    (mem_cgroup_charge; a page table's kmem charge). -1 when the slow path
    is needed: the kind is left in ctl[C_NEED_KIND], and ctl[C_NEED_CHARGE]
    says whether the page was there but its memcg refused the charge (the
    page then waits in its slot for the retry)."""
    if M.ctl[C_OVER_HIGH] > MC.MEMCG_CHARGE_BATCH:        # try_charge_memcg's early
        M.ctl[C_NEED_KIND] = kind                         # mem_cgroup_handle_over_high
        M.ctl[C_NEED_CHARGE] = 2
        return np.int64(-1)
    pfn = alloc_frame_unaccounted(M, kind)
    if pfn < 0:
        return pfn
    nr = HPAGE_PMD_NR if kind == KIND_THP else 1
    memcg = M.ctl[C_MEMCG]
    if not MC.charge_folio(M, pfn, memcg, nr, kind == KIND_KERNEL):
        M.ctl[_prealloc_slot(kind)] = pfn
        M.ctl[C_NEED_KIND] = kind
        M.ctl[C_NEED_CHARGE] = 1
        return np.int64(-1)
    if MC.above_high(M, memcg):
        M.ctl[C_OVER_HIGH] += nr
    return pfn


@njit
def alloc_frame_unaccounted(M, kind):
    """:func:`alloc_frame` without the memcg charge, for what the kernel
    allocates without __GFP_ACCOUNT (the huge zero folio)."""
    slot = _prealloc_slot(kind)
    pfn = M.ctl[slot]
    if pfn >= 0:
        M.ctl[slot] = -1
    elif kind == KIND_KERNEL:
        pfn, _z = B.get_page_from_freelist(M, M.zl_kernel, 0, B.MIGRATE_UNMOVABLE,
                                           M.alloc[1], M.alloc[3], M.ctl[C_CPU])
    else:
        order = HPAGE_PMD_ORDER if kind == KIND_THP else 0
        pfn, _z = B.get_page_from_freelist(M, M.zl_user, order, B.MIGRATE_MOVABLE,
                                           M.alloc[0], M.alloc[2], M.ctl[C_CPU])
    if pfn < 0:
        M.ctl[C_NEED_KIND] = kind
        M.ctl[C_NEED_CHARGE] = 0
    return pfn


@njit
def _prealloc_slot(kind):
    """The ctl slot where the slow path leaves a frame of this kind."""
    return C_PREALLOC_USER if kind == KIND_USER else (
        C_PREALLOC_KERNEL if kind == KIND_KERNEL else C_PREALLOC_THP)


@njit
def free_frame(M, pfn, order):
    """Give a page back to the allocator (free_unref_page / __free_pages),
    uncharged from its memcg."""
    MC.uncharge_folio(M, pfn, np.int64(1) << order)
    M.refcount[pfn] = 1
    B.free_pages(M, pfn, order, M.ctl[C_CPU])


# --------------------------------------------------------------------------
# tables

@njit
def alloc_table(M):
    """A zeroed page-table page: (table id, status). Models pte_alloc_one()/
    pmd_alloc_one()/pud_alloc_one(): GFP_PGTABLE_USER, counted in NR_PAGETABLE."""
    if M.ctl[C_PT_NFREE] > 0:
        tid = M.pt_free[M.ctl[C_PT_NFREE] - 1]
    elif M.ctl[C_PT_NEXT] < M.pt.shape[0]:
        tid = M.ctl[C_PT_NEXT]
    else:
        return np.int64(-1), NEED_TABLES
    pfn = alloc_frame(M, KIND_KERNEL)
    if pfn < 0:
        return np.int64(-1), NEED_PAGE
    if M.ctl[C_PT_NFREE] > 0:
        M.ctl[C_PT_NFREE] -= 1
    else:
        M.ctl[C_PT_NEXT] += 1
    M.pt[tid, :] = 0
    M.pt_pfn[tid] = pfn
    M.flags[pfn] |= PG_table
    M.node_stat[NR_PAGETABLE] += 1
    return np.int64(tid), OK


@njit
def free_table(M, tid):
    """Models pagetable_free(): the table's frame goes back to the allocator."""
    pfn = M.pt_pfn[tid]
    if M.flags[pfn] & MC.PG_memcg:
        M.mstat[M.memcg[pfn], MC.MS_PAGETABLES] -= 1
    M.flags[pfn] &= ~np.uint32(PG_table)
    M.node_stat[NR_PAGETABLE] -= 1
    free_frame(M, pfn, 0)
    M.pt_pfn[tid] = -1
    M.pt_free[M.ctl[C_PT_NFREE]] = tid
    M.ctl[C_PT_NFREE] += 1


@njit
def lookup_table(M, tid, va, shift):
    """The lower table an entry of ``tid`` points to, or -1."""
    e = M.pt[tid, table_index(va, shift)]
    if not (e & _PAGE_TABLE):
        return np.int64(-1)
    return e >> PAGE_SHIFT


@njit
def _link(M, tid, va, shift, child):
    M.pt[tid, table_index(va, shift)] = (child << PAGE_SHIFT) | _PAGE_TABLE | \
        _PAGE_PRESENT | _PAGE_RW | _PAGE_USER


@njit
def _lower_or_alloc(M, mm, tid, va, shift, counter, alloc):
    """The table an entry of ``tid`` points to, allocated and linked when absent
    and ``alloc`` (models __pud_alloc/__pmd_alloc/__pte_alloc); ``counter`` is
    the mm counter it adds to (nr_puds, nr_pmds, nr_ptes)."""
    child = lookup_table(M, tid, va, shift)
    if child >= 0 or not alloc:
        return child, OK
    child, st = alloc_table(M)
    if st != OK:
        return child, st
    _link(M, tid, va, shift, child)
    M.mm_stat[mm, counter] += 1
    return child, OK


@njit
def walk_pmd(M, mm, va, alloc):
    """The PMD table for ``va``: (table id, status); -1 with OK when absent and
    not allocating."""
    pud, st = _lower_or_alloc(M, mm, M.mm_stat[mm, MM_PGD], va, PGD_SHIFT, MM_NR_PUDS, alloc)
    if pud < 0:
        return pud, st
    return _lower_or_alloc(M, mm, pud, va, PUD_SHIFT, MM_NR_PMDS, alloc)


@njit
def walk_pte(M, mm, va, alloc):
    """The PTE table for ``va``: (table id, status). -1 with OK when absent (and
    not allocating) or when the PMD maps a huge page."""
    pmd, st = walk_pmd(M, mm, va, alloc)
    if pmd < 0:
        return pmd, st
    if M.pt[pmd, table_index(va, PMD_SHIFT)] & _PAGE_PSE:
        return np.int64(-1), OK
    return _lower_or_alloc(M, mm, pmd, va, PMD_SHIFT, MM_NR_PTES, alloc)
