"""Virtual memory areas and the VMA tree of an address space.

A process's address space is a set of disjoint, page-aligned ranges, the VMAs
(``struct vm_area_struct``). Each has one set of permissions and properties
(``vm_flags``), a backing object (a file at a page offset ``vm_pgoff``, or
anonymous memory whose ``vm_pgoff`` is its start address in pages) and, once
it has been written, an ``anon_vma`` through which rmap finds its anonymous
pages. Linux keeps them in a maple tree indexed by address; here a
``VmaTree`` keeps them in two parallel lists sorted by start address, so
lookups are a bisect and an insertion is a list insert (a process has tens
to thousands of VMAs)::

       prev                 vma                 next
    |--------|     |--------------------|     |------|
    s0      e0     s1                  e1     s2    e2      e0 <= s1 < e1 <= s2

Invariants (``check_invariants``): VMAs are page aligned, non-empty, sorted
and disjoint; ``map_count`` is their number; ``total_vm``, ``locked_vm`` and
the ``data_vm``/``exec_vm``/``stack_vm`` split equal the sums over the VMAs;
this mm's commit charge equals the pages of its ``VM_ACCOUNT`` VMAs.

Every change of the layout goes through three primitives, as in mm/vma.c:

* **merge** (``vma_merge_new_range`` for a range being added,
  ``vma_merge_existing_range`` for part of a VMA whose flags or name change):
  the range joins a neighbour that touches it, has the same flags (ignoring
  ``VM_SOFTDIRTY``), the same file, the same anon name, a contiguous page
  offset and a compatible ``anon_vma``, and is not ``VM_SPECIAL``::

      new range:            |xxxx|
      before:      |pppppp|        |nnnnn|     prev and next both mergeable:
      after:       |ppppppppppppppppppppp|     prev grows, next is removed

  Two ``anon_vma`` s are compatible when equal, or when one side has none and
  the other was not inherited through fork (its chain is a single link);
* **split** (``split_vma``): one VMA becomes two at a page boundary, each
  keeping the flags, file, ``anon_vma`` and a matching page offset. Splitting
  fails with ENOMEM when the mm already has ``vm.max_map_count`` VMAs;
* **unmap** (``do_vmi_munmap``): split at both edges, detach what is inside.

``mmap_region`` unmaps what a MAP_FIXED mapping replaces, charges a private
writable mapping to the overcommit accounting, then merges or inserts.
``mprotect``, ``mlock`` and ``madvise`` change flags on a range through
``vma_modify``: try to merge the changed part with a neighbour; if that is
impossible, split off the parts outside the range (at most two splits). brk
extends the heap VMA in place (``do_brk_flags``) or creates it.

Accounting. Every operation keeps the counters that /proc/PID/status prints
(``vm_stat_account``) and charges or uncharges the commit accounting exactly
where the kernel calls ``security_vm_enough_memory_mm`` and
``vm_unacct_memory``: through the ``account(pages) -> bool`` hook, called
*before* the change (returning False makes the operation fail with ENOMEM and
change nothing) and ``unaccount(pages)``. The default hooks always succeed;
``mm/util.py``'s ``__vm_enough_memory`` is meant to be plugged in.

Whenever VMAs leave the tree (munmap, MAP_FIXED, brk shrinking, exit), the
optional ``unmap_hook(Unmapped)`` is called with the detached VMAs and the
page-table floor and ceiling, so that page tables can be zapped
(``unmap_vmas``/``free_pgtables``). ``anon_vma_prepare`` is for the page
fault code to call on the first anonymous fault.

Kernel: Linux 6.18, mm/vma.c (merge, split, munmap, mmap_region, brk VMA),
mm/mmap.c (brk, stack growth, vm_stat_account, dup_mmap VMA side),
mm/mprotect.c, mm/mlock.c, mm/madvise.c, mm/rmap.c (anon_vma_prepare),
fs/proc/task_mmu.c (VMA names, VmFlags mnemonics), include/linux/mm.h (flags).

Deviations from Linux (``XXX``):

* no mempolicy, userfaultfd context, uprobes, vm_ops hooks (``close``,
  ``may_split``, ``mprotect``) or mseal: those never block a merge or split
  here; no VM_STICKY flags (6.19);
* an ``anon_vma`` is an integer id and its chain a tuple of ids: enough for
  the merge rules (``vma_is_fork_child``); the reuse of an exhausted anon_vma
  at fork (``anon_vma_clone``'s num_children rule) is not modelled;
* shared anonymous memory gets a ``ShmemFile`` standing for the /dev/zero
  shmem object, charged as ``shmem_acct_size`` charges it and uncharged when
  its last VMA goes; its pages live with the page-cache model;
* madvise flag behaviours and DONTNEED/FREE/WILLNEED/COLD/PAGEOUT/REMOVE and
  the populate advices are modelled as far as the VMA layer goes: the page
  work is returned as ranges for the caller; KSM merging is a flag only;
* mremap and PROT_GROWSDOWN/PROT_GROWSUP are not modelled.
"""

from __future__ import annotations

import bisect
import errno as _errno
import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from linmem.errors import LinmemError
from linmem.units import PAGE_SHIFT, PAGE_SIZE

PAGE_MASK = ~(PAGE_SIZE - 1)

# ---------------------------------------------------------------------------
# vm_flags (include/linux/mm.h, Linux 6.18, x86-64)
# ---------------------------------------------------------------------------
VM_NONE = 0x00000000
VM_READ = 0x00000001
VM_WRITE = 0x00000002
VM_EXEC = 0x00000004
VM_SHARED = 0x00000008
VM_MAYREAD = 0x00000010          # limits for mprotect(): VM_MAY* >> 4 == VM_*
VM_MAYWRITE = 0x00000020
VM_MAYEXEC = 0x00000040
VM_MAYSHARE = 0x00000080
VM_GROWSDOWN = 0x00000100
VM_UFFD_MISSING = 0x00000200
VM_PFNMAP = 0x00000400
VM_UFFD_WP = 0x00001000
VM_LOCKED = 0x00002000
VM_IO = 0x00004000
VM_SEQ_READ = 0x00008000
VM_RAND_READ = 0x00010000
VM_DONTCOPY = 0x00020000
VM_DONTEXPAND = 0x00040000
VM_LOCKONFAULT = 0x00080000
VM_ACCOUNT = 0x00100000
VM_NORESERVE = 0x00200000
VM_HUGETLB = 0x00400000
VM_SYNC = 0x00800000
VM_ARCH_1 = 0x01000000           # x86: VM_PAT
VM_PAT = VM_ARCH_1
VM_WIPEONFORK = 0x02000000
VM_DONTDUMP = 0x04000000
VM_SOFTDIRTY = 0x08000000        # 0 in kernels without CONFIG_MEM_SOFT_DIRTY
VM_MIXEDMAP = 0x10000000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_MERGEABLE = 0x80000000
VM_HIGH_ARCH_BIT_0 = 32
VM_PKEY_BIT0 = 1 << 32           # x86 protection keys: 4 bits
VM_PKEY_BIT1 = 1 << 33
VM_PKEY_BIT2 = 1 << 34
VM_PKEY_BIT3 = 1 << 35
VM_SHADOW_STACK = 1 << 37        # VM_HIGH_ARCH_5
VM_ALLOW_ANY_UNCACHED = 1 << 39
VM_DROPPABLE = 1 << 40
VM_UFFD_MINOR = 1 << 41
VM_SEALED = 1 << 42

VM_STACK = VM_GROWSDOWN
VM_STACK_EARLY = VM_NONE
VM_STACK_INCOMPLETE_SETUP = VM_RAND_READ | VM_SEQ_READ | VM_STACK_EARLY
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP
VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT
VM_STARTGAP_FLAGS = VM_GROWSDOWN | VM_SHADOW_STACK
VM_IGNORE_MERGE = VM_SOFTDIRTY
# x86: VM_DATA_DEFAULT_FLAGS = VM_DATA_FLAGS_TSK_EXEC without READ_IMPLIES_EXEC
VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
VM_STACK_DEFAULT_FLAGS = VM_DATA_DEFAULT_FLAGS
VM_STACK_FLAGS = VM_STACK | VM_STACK_DEFAULT_FLAGS | VM_ACCOUNT

# show_smap_vma_flags (fs/proc/task_mmu.c): the VmFlags mnemonics, in the
# kernel's order (bit order). "" marks bits that are never printed (pkeys).
VMA_FLAG_MNEMONICS: tuple[tuple[int, str], ...] = (
    (VM_READ, "rd"), (VM_WRITE, "wr"), (VM_EXEC, "ex"), (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"), (VM_MAYWRITE, "mw"), (VM_MAYEXEC, "me"), (VM_MAYSHARE, "ms"),
    (VM_GROWSDOWN, "gd"), (VM_UFFD_MISSING, "um"), (VM_PFNMAP, "pf"), (VM_UFFD_WP, "uw"),
    (VM_LOCKED, "lo"), (VM_IO, "io"), (VM_SEQ_READ, "sr"), (VM_RAND_READ, "rr"),
    (VM_DONTCOPY, "dc"), (VM_DONTEXPAND, "de"), (VM_LOCKONFAULT, "lf"), (VM_ACCOUNT, "ac"),
    (VM_NORESERVE, "nr"), (VM_HUGETLB, "ht"), (VM_SYNC, "sf"), (VM_ARCH_1, "ar"),
    (VM_WIPEONFORK, "wf"), (VM_DONTDUMP, "dd"), (VM_SOFTDIRTY, "sd"), (VM_MIXEDMAP, "mm"),
    (VM_HUGEPAGE, "hg"), (VM_NOHUGEPAGE, "nh"), (VM_MERGEABLE, "mg"),
    (VM_PKEY_BIT0, ""), (VM_PKEY_BIT1, ""), (VM_PKEY_BIT2, ""), (VM_PKEY_BIT3, ""),
    (VM_SHADOW_STACK, "ss"), (VM_DROPPABLE, "dp"), (VM_UFFD_MINOR, "ui"), (VM_SEALED, "sl"),
)


def vma_flags_mnemonics(flags: int, soft_dirty: bool = False) -> str:
    """The text after "VmFlags: " in smaps, trailing space included.

    Models fs/proc/task_mmu.c:show_smap_vma_flags: every set bit in bit order,
    "??" for a bit the table does not know; "sd" only with soft-dirty support.
    """
    known = dict(VMA_FLAG_MNEMONICS)
    if not soft_dirty:
        known[VM_SOFTDIRTY] = ""
    out = []
    for bit in range(64):
        if flags & (1 << bit):
            name = known.get(1 << bit, "??")
            if name:
                out.append(name + " ")
    return "".join(out)


# ---------------------------------------------------------------------------
# User-visible constants (include/uapi/asm-generic/mman*.h)
# ---------------------------------------------------------------------------
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0x0, 0x1, 0x2, 0x4
PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP = 0x8, 0x01000000, 0x02000000
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_DROPPABLE = 0x01, 0x02, 0x03, 0x08
MAP_TYPE = 0x0F
MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT, MAP_ABOVE4G = 0x10, 0x20, 0x40, 0x80
MAP_GROWSDOWN, MAP_DENYWRITE, MAP_EXECUTABLE = 0x0100, 0x0800, 0x1000
MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK = 0x2000, 0x4000, 0x8000, 0x10000
MAP_STACK, MAP_HUGETLB, MAP_SYNC, MAP_FIXED_NOREPLACE = 0x20000, 0x40000, 0x80000, 0x100000

MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 12, 13, 14, 15
MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK = 16, 17, 18, 19
MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE = 20, 21, 22, 23
MADV_DONTNEED_LOCKED, MADV_COLLAPSE = 24, 25
MADV_GUARD_INSTALL, MADV_GUARD_REMOVE = 102, 103

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
MLOCK_ONFAULT = 0x01

OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2

# Address-space limits the VMA layer checks (arch/x86; more in linmem.mm.mmap)
TASK_SIZE = 0x7FFFFFFFF000                   # 47-bit user space, 4-level paging
DEFAULT_MAX_MAP_COUNT = 65530                # USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN
DEFAULT_MMAP_MIN_ADDR = 65536                # max(vm.mmap_min_addr, CONFIG_LSM_MMAP_MIN_ADDR)
DEFAULT_DAC_MMAP_MIN_ADDR = 4096             # vm.mmap_min_addr itself
DEFAULT_STACK_GUARD_GAP = 256 << PAGE_SHIFT  # stack_guard_gap, 1 MiB
RLIM_INFINITY = None
_8M = 8 << 20


class SyscallError(LinmemError):
    """A system call of the model failed the way the kernel's would.

    ``errno_name`` is the symbolic errno ("ENOMEM"), ``errno`` its number;
    ``ranges`` the work done before a partial failure (madvise over holes).
    """

    def __init__(self, errno_name: str, message: str = ""):
        self.errno_name = errno_name
        self.errno = getattr(_errno, errno_name)
        self.message = message
        self.ranges: list | None = None
        super().__init__(f"{errno_name}: {message}" if message else errno_name)


def _fail(name: str, message: str) -> SyscallError:
    return SyscallError(name, message)


# ---------------------------------------------------------------------------
# Backing objects
# ---------------------------------------------------------------------------
@dataclass(eq=False)
class MappedFile:
    """An open file that can be mapped (a ``struct file``, compared by identity).

    ``dev`` is (major, minor) of its superblock and ``ino`` its inode, as
    /proc/PID/maps prints them. ``writable``: opened for writing (FMODE_WRITE),
    needed for a writable MAP_SHARED mapping. ``thp_aligned``: the filesystem's
    ``get_unmapped_area`` is ``thp_get_unmapped_area`` (ext4, xfs, btrfs).
    """

    path: str
    size: int = 0
    dev: tuple[int, int] = (0, 0)
    ino: int = 0
    writable: bool = False
    readable: bool = True
    noexec: bool = False
    thp_aligned: bool = True
    deleted: bool = False


_shmem_ino = itertools.count(1)


@dataclass(eq=False)
class ShmemFile(MappedFile):
    """The shmem object behind a MAP_SHARED|MAP_ANONYMOUS mapping.

    Models mm/shmem.c:shmem_zero_setup: a /dev/zero file on the internal shm
    mount (00:01), unlinked. Its commit charge (``shmem_acct_size``) is
    released when the last VMA mapping it goes (``shmem_evict_inode``).
    """

    charged: int = 0
    refs: int = 0
    unaccount: Callable[[int], None] | None = None
    release: Callable[["ShmemFile"], None] | None = None   # frees its pages (evict)

    def vm_get(self) -> None:
        self.refs += 1

    def vm_put(self) -> None:
        self.refs -= 1
        if self.refs == 0 and self.charged and self.unaccount:
            self.unaccount(self.charged)
            self.charged = 0
        if self.refs == 0 and self.release is not None:
            self.release(self)


def _fget(file: Any) -> None:
    if file is not None and hasattr(file, "vm_get"):
        file.vm_get()


def _fput(file: Any) -> None:
    if file is not None and hasattr(file, "vm_put"):
        file.vm_put()


# ---------------------------------------------------------------------------
# The VMA
# ---------------------------------------------------------------------------
_anon_vma_ids = itertools.count(1)


def anon_vma_alloc() -> int:
    """A new anon_vma identity (mm/rmap.c:anon_vma_alloc)."""
    return next(_anon_vma_ids)


@dataclass(eq=False)
class VMA:
    """One ``struct vm_area_struct``: [start, end) in bytes, page aligned.

    ``pgoff`` is in pages: the file offset for a file mapping, ``start >> 12``
    for private anonymous memory. ``anon_vma`` is set on the first anonymous
    fault (``VmaTree.anon_vma_prepare``); ``anon_vma_chain`` lists the
    anon_vmas the VMA is linked to (more than one after fork). ``name`` is a
    special mapping's name ("[vdso]", "[vvar]", "[vvar_vclock]");
    ``anon_name`` the name given by prctl(PR_SET_VMA_ANON_NAME). The names
    "[heap]" and "[stack]" are not stored: ``VmaTree.get_vma_name`` derives
    them from the mm's brk and stack, as the kernel does.
    """

    start: int
    end: int
    flags: int
    pgoff: int = 0
    file: Any = None
    anon_vma: int | None = None
    name: str | None = None
    anon_name: str | None = None
    anon_vma_chain: tuple[int, ...] = ()

    @property
    def pages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT

    @property
    def size(self) -> int:
        return self.end - self.start

    def copy(self) -> "VMA":
        return replace(self)

    def is_anonymous(self) -> bool:
        """vma_is_anonymous: no file and no special-mapping operations."""
        return self.file is None and self.name is None

    def perms(self) -> str:
        """The "rwxp" column of /proc/PID/maps."""
        f = self.flags
        return ("r" if f & VM_READ else "-") + ("w" if f & VM_WRITE else "-") + \
            ("x" if f & VM_EXEC else "-") + ("s" if f & VM_MAYSHARE else "p")

    def __repr__(self) -> str:
        what = getattr(self.file, "path", None) or self.name or "anon"
        return (f"VMA({self.start:#x}-{self.end:#x} {self.perms()} {self.flags:#x} "
                f"pgoff={self.pgoff:#x} {what})")


def is_exec_mapping(flags: int) -> bool:
    """Executable code area: executable, not writable, not stack (mm/internal.h)."""
    return (flags & (VM_WRITE | VM_EXEC | VM_STACK)) == VM_EXEC


def is_stack_mapping(flags: int) -> bool:
    return (flags & VM_STACK) == VM_STACK


def is_data_mapping(flags: int) -> bool:
    """Data area: private, writable, not stack."""
    return (flags & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE


def calc_vm_prot_bits(prot: int) -> int:
    """include/linux/mman.h:calc_vm_prot_bits (no pkeys)."""
    return (VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0) | \
        (VM_EXEC if prot & PROT_EXEC else 0)


def calc_vm_flag_bits(flags: int, thp: bool = True) -> int:
    """include/linux/mman.h:calc_vm_flag_bits: MAP_STACK means VM_NOHUGEPAGE."""
    bits = (VM_GROWSDOWN if flags & MAP_GROWSDOWN else 0) | (VM_LOCKED if flags & MAP_LOCKED else 0)
    bits |= VM_SYNC if flags & MAP_SYNC else 0
    if thp and flags & MAP_STACK:
        bits |= VM_NOHUGEPAGE
    return bits


def accountable_mapping(file: Any, flags: int) -> bool:
    """mm/vma.c:accountable_mapping: a private writable mapping without VM_NORESERVE."""
    if file is not None and getattr(file, "hugetlb", False):
        return False
    return (flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE


def vma_is_fork_child(vma: VMA | None) -> bool:
    """mm/vma.c:vma_is_fork_child: has an anon_vma inherited through fork."""
    return vma is not None and vma.anon_vma is not None and len(vma.anon_vma_chain) != 1


@dataclass
class Unmapped:
    """VMAs just detached from the tree, for the caller to zap.

    ``floor``/``ceiling`` bound the page tables that may be freed
    (free_pgtables): the end of the previous VMA and the start of the next
    (``None``: no VMA above).
    """

    vmas: list[VMA]
    start: int
    end: int
    floor: int = 0
    ceiling: int | None = None

    @property
    def pages(self) -> int:
        return sum(v.pages for v in self.vmas)


@dataclass
class _Vmg:
    """struct vma_merge_struct: a range and the properties it must merge with."""

    start: int
    end: int
    pgoff: int
    flags: int
    file: Any = None
    anon_vma: int | None = None
    anon_name: str | None = None
    prev: VMA | None = None
    middle: VMA | None = None
    next: VMA | None = None
    target: VMA | None = None
    just_expand: bool = False


@dataclass
class _Gathered:
    """struct vma_munmap_struct: what an unmap will detach, and its sums."""

    vmas: list[VMA] = field(default_factory=list)
    start: int = 0
    end: int = 0
    prev: VMA | None = None
    next: VMA | None = None
    nr_pages: int = 0
    locked_vm: int = 0
    nr_accounted: int = 0
    exec_vm: int = 0
    stack_vm: int = 0
    data_vm: int = 0


def _always(_pages: int) -> bool:
    return True


def _nothing(_pages: int) -> None:
    return None


class VmaTree:
    """The VMAs of one mm_struct, with the counters and limits they drive.

    Parameters: ``max_map_count`` (vm.max_map_count), ``account``/
    ``unaccount`` (the commit-charge hooks, see the module docstring),
    ``overcommit_memory`` (vm.overcommit_memory: MAP_NORESERVE is ignored in
    mode 2), ``soft_dirty`` (CONFIG_MEM_SOFT_DIRTY: new VMAs get
    VM_SOFTDIRTY), ``thp`` (CONFIG_TRANSPARENT_HUGEPAGE), the rlimits in
    bytes (``None`` = unlimited), ``cap_ipc_lock``. Two minimum addresses:
    ``mmap_min_addr`` (65536: the larger of vm.mmap_min_addr and the LSM
    minimum) bounds searches and raises hints; ``dac_mmap_min_addr``
    (vm.mmap_min_addr, 4096) is the floor of MAP_FIXED without CAP_SYS_RAWIO.

    The mm fields of the layout live here too: ``mmap_base``,
    ``mmap_legacy_base``, ``topdown``, ``start_code``/``end_code``,
    ``start_data``/``end_data``, ``start_brk``/``brk``, ``start_stack``,
    ``arg_start``/``arg_end``/``env_start``/``env_end``, ``def_flags``.
    """

    def __init__(self, max_map_count: int = DEFAULT_MAX_MAP_COUNT,
                 account: Callable[[int], bool] | None = None,
                 unaccount: Callable[[int], None] | None = None, *,
                 overcommit_memory: int = OVERCOMMIT_GUESS, soft_dirty: bool = False,
                 thp: bool = True, mmap_min_addr: int = DEFAULT_MMAP_MIN_ADDR,
                 stack_guard_gap: int = DEFAULT_STACK_GUARD_GAP,
                 rlimit_stack: int | None = _8M, rlimit_data: int | None = None,
                 rlimit_as: int | None = None, rlimit_memlock: int | None = _8M,
                 cap_ipc_lock: bool = False, dac_mmap_min_addr: int = DEFAULT_DAC_MMAP_MIN_ADDR,
                 cap_sys_rawio: bool = False,
                 unmap_hook: Callable[[Unmapped], None] | None = None):
        self._starts: list[int] = []
        self._vmas: list[VMA] = []
        self.max_map_count = max_map_count
        self.account = account or _always
        self.unaccount = unaccount or _nothing
        self.unmap_hook = unmap_hook
        self.overcommit_memory = overcommit_memory
        self.soft_dirty = soft_dirty
        self.thp = thp
        self.mmap_min_addr = mmap_min_addr
        self.dac_mmap_min_addr, self.cap_sys_rawio = dac_mmap_min_addr, cap_sys_rawio
        self.stack_guard_gap = stack_guard_gap
        self.rlimit_stack, self.rlimit_data = rlimit_stack, rlimit_data
        self.rlimit_as, self.rlimit_memlock = rlimit_as, rlimit_memlock
        self.cap_ipc_lock = cap_ipc_lock
        self.total_vm = self.locked_vm = self.pinned_vm = 0
        self.data_vm = self.exec_vm = self.stack_vm = 0
        self.hiwater_vm = 0
        self.charged = 0          # pages of VM_ACCOUNT VMAs charged by this mm
        self.def_flags = 0
        self.mmap_base = self.mmap_legacy_base = 0
        self.topdown = True
        self.start_code = self.end_code = self.start_data = self.end_data = 0
        self.start_brk = self.brk = self.start_stack = 0
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        # (low, high) -> [(bound, addr)]: every gap starting at or above addr in
        # [low, high) is smaller than bound (see linmem.mm.mmap._area_highest).
        self.gap_cache: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.generation = 0       # bumped by every change of a VMA (for array caches)

    # -- lookups -----------------------------------------------------------
    def __iter__(self) -> Iterator[VMA]:
        return iter(list(self._vmas))

    def __len__(self) -> int:
        return len(self._vmas)

    @property
    def map_count(self) -> int:
        return len(self._vmas)

    def vmas(self) -> list[VMA]:
        """The VMAs in address order (a copy of the list, not of the VMAs)."""
        return list(self._vmas)

    def _first_ending_after(self, addr: int) -> int:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].end > addr:
            return i
        return i + 1

    def find_vma(self, addr: int) -> VMA | None:
        """The first VMA with end > addr (mm/mmap.c:find_vma)."""
        i = self._first_ending_after(addr)
        return self._vmas[i] if i < len(self._vmas) else None

    def vma_lookup(self, addr: int) -> VMA | None:
        """The VMA containing addr, or None (include/linux/mm.h:vma_lookup)."""
        vma = self.find_vma(addr)
        return vma if vma is not None and vma.start <= addr else None

    def find_vma_prev(self, addr: int) -> tuple[VMA | None, VMA | None]:
        """(find_vma(addr), the VMA before it) (mm/mmap.c:find_vma_prev)."""
        i = self._first_ending_after(addr)
        vma = self._vmas[i] if i < len(self._vmas) else None
        return vma, (self._vmas[i - 1] if i > 0 else None)

    def find_vma_intersection(self, start: int, end: int) -> VMA | None:
        """The first VMA intersecting [start, end) (mm/mmap.c:find_vma_intersection)."""
        vma = self.find_vma(start)
        return vma if vma is not None and vma.start < end else None

    def vma_prev(self, vma: VMA) -> VMA | None:
        i = self._index(vma)
        return self._vmas[i - 1] if i > 0 else None

    def vma_next(self, vma: VMA) -> VMA | None:
        i = self._index(vma) + 1
        return self._vmas[i] if i < len(self._vmas) else None

    def rows(self, file_id: Callable[[Any], int] = id) -> list[tuple[int, int, int, int, int, int]]:
        """(start, end, flags, pgoff, file id or -1, anon_vma or 0) per VMA, in order.

        A flat form for compiled code; rebuild it when ``generation`` changed.
        """
        return [(v.start, v.end, v.flags, v.pgoff, -1 if v.file is None else file_id(v.file),
                 v.anon_vma or 0) for v in self._vmas]

    def vmas_in(self, start: int, end: int) -> list[VMA]:
        """VMAs intersecting [start, end), in order."""
        i = self._first_ending_after(start)
        j = bisect.bisect_left(self._starts, end)
        return self._vmas[i:j]

    # -- the sorted lists ----------------------------------------------------
    def _index(self, vma: VMA) -> int:
        i = bisect.bisect_left(self._starts, vma.start)
        if i < len(self._vmas) and self._vmas[i] is vma:
            return i
        raise KeyError(f"{vma!r} is not in this tree")

    def _insert(self, vma: VMA) -> None:
        i = bisect.bisect_left(self._starts, vma.start)
        self._starts.insert(i, vma.start)
        self._vmas.insert(i, vma)
        self.generation += 1

    def _erase(self, vma: VMA) -> None:
        i = self._index(vma)
        del self._starts[i]
        del self._vmas[i]
        self.generation += 1

    def _gaps_grew(self, end: int) -> None:
        """Forget what the gap cache knew about gaps that may start below end."""
        for key, entries in list(self.gap_cache.items()):
            kept = [(b, a) for b, a in entries if a > end]
            if kept:
                self.gap_cache[key] = kept
            else:
                del self.gap_cache[key]

    def _set_range(self, vma: VMA, start: int, end: int, pgoff: int) -> None:
        """vma_set_range: the list position of a VMA never changes with its range."""
        i = self._index(vma)
        vma.start, vma.end, vma.pgoff = start, end, pgoff
        self._starts[i] = start
        self.generation += 1

    # -- accounting ----------------------------------------------------------
    def vm_stat_account(self, flags: int, npages: int) -> None:
        """mm/mmap.c:vm_stat_account: total_vm and the exec/stack/data split."""
        self.total_vm += npages
        if is_exec_mapping(flags):
            self.exec_vm += npages
        elif is_stack_mapping(flags):
            self.stack_vm += npages
        elif is_data_mapping(flags):
            self.data_vm += npages

    def update_hiwater_vm(self) -> None:
        self.hiwater_vm = max(self.hiwater_vm, self.total_vm)

    def may_expand_vm(self, flags: int, npages: int) -> bool:
        """mm/mmap.c:may_expand_vm: RLIMIT_AS, and RLIMIT_DATA for data mappings."""
        if self.rlimit_as is not None and self.total_vm + npages > self.rlimit_as >> PAGE_SHIFT:
            return False
        if (is_data_mapping(flags) and self.rlimit_data is not None
                and self.data_vm + npages > self.rlimit_data >> PAGE_SHIFT):
            return False
        return True

    def mlock_future_ok(self, locked: bool, nbytes: int) -> bool:
        """mm/mmap.c:mlock_future_ok: RLIMIT_MEMLOCK for future VM_LOCKED pages."""
        if not locked or self.cap_ipc_lock or self.rlimit_memlock is None:
            return True
        return (nbytes >> PAGE_SHIFT) + self.locked_vm <= self.rlimit_memlock >> PAGE_SHIFT

    def _charge(self, pages: int, why: str) -> None:
        """security_vm_enough_memory_mm: charge or raise ENOMEM, before any change."""
        if pages and not self.account(pages):
            raise _fail("ENOMEM", f"{why}: cannot commit {pages} pages")
        self.charged += pages

    def _uncharge(self, pages: int) -> None:
        """vm_unacct_memory."""
        if pages:
            self.charged -= pages
            self.unaccount(pages)

    # -- anon_vma ------------------------------------------------------------
    def anon_vma_prepare(self, vma: VMA) -> int:
        """Give the VMA an anon_vma before its first anonymous page.

        Models mm/rmap.c:__anon_vma_prepare: reuse a neighbour's when they
        could later merge (find_mergeable_anon_vma), else allocate one.
        """
        if vma.anon_vma is None:
            anon_vma = self.find_mergeable_anon_vma(vma)
            vma.anon_vma = anon_vma if anon_vma is not None else anon_vma_alloc()
            vma.anon_vma_chain = (vma.anon_vma,)
            self.generation += 1
        return vma.anon_vma

    def find_mergeable_anon_vma(self, vma: VMA) -> int | None:
        """mm/vma.c:find_mergeable_anon_vma: next first, then prev."""
        i = self._index(vma)
        nxt = self._vmas[i + 1] if i + 1 < len(self._vmas) else None
        if nxt is not None and nxt.start == vma.end:
            found = _reusable_anon_vma(nxt, vma, nxt)
            if found is not None:
                return found
        prev = self._vmas[i - 1] if i > 0 else None
        return _reusable_anon_vma(prev, prev, vma) if prev is not None else None

    # -- merging (mm/vma.c) --------------------------------------------------
    def _is_mergeable_vma(self, vmg: _Vmg, vma: VMA) -> bool:
        """is_mergeable_vma: same flags but VM_SOFTDIRTY, same file and anon name."""
        return not ((vma.flags ^ vmg.flags) & ~VM_IGNORE_MERGE) and vma.file is vmg.file \
            and vma.anon_name == vmg.anon_name

    @staticmethod
    def _is_mergeable_anon_vma(vmg: _Vmg, tgt: VMA) -> bool:
        """is_mergeable_anon_vma: never pull a fork child's anon_vma into a merge."""
        tgt_anon, src_anon = tgt.anon_vma, vmg.anon_vma
        if tgt_anon is None and src_anon is not None:
            return not vma_is_fork_child(vmg.middle)
        if tgt_anon is not None and src_anon is None:
            return not vma_is_fork_child(tgt)
        return src_anon == tgt_anon

    def _can_vma_merge_before(self, vmg: _Vmg) -> bool:
        nxt = vmg.next
        pglen = (vmg.end - vmg.start) >> PAGE_SHIFT
        return self._is_mergeable_vma(vmg, nxt) and self._is_mergeable_anon_vma(vmg, nxt) \
            and nxt.pgoff == vmg.pgoff + pglen

    def _can_vma_merge_after(self, vmg: _Vmg) -> bool:
        prev = vmg.prev
        return self._is_mergeable_vma(vmg, prev) and self._is_mergeable_anon_vma(vmg, prev) \
            and prev.pgoff + prev.pages == vmg.pgoff

    def _can_vma_merge_left(self, vmg: _Vmg) -> bool:
        return vmg.prev is not None and vmg.prev.end == vmg.start and self._can_vma_merge_after(vmg)

    def _can_vma_merge_right(self, vmg: _Vmg, can_merge_left: bool) -> bool:
        nxt = vmg.next
        if nxt is None or vmg.end != nxt.start or not self._can_vma_merge_before(vmg):
            return False
        if not can_merge_left:
            return True
        prev = vmg.prev
        return prev.anon_vma is None or nxt.anon_vma is None or prev.anon_vma == nxt.anon_vma

    @staticmethod
    def _dup_anon_vma(dst: VMA, src: VMA) -> None:
        """dup_anon_vma: the surviving VMA must cover the anon pages it absorbs."""
        if src.anon_vma is not None and dst.anon_vma is None:
            dst.anon_vma = src.anon_vma
            dst.anon_vma_chain = src.anon_vma_chain

    def _remove_merged(self, vma: VMA) -> None:
        """vma_complete's removal of a VMA swallowed by a merge."""
        self._erase(vma)
        _fput(vma.file)

    def vma_merge_new_range(self, vmg: _Vmg) -> VMA | None:
        """Expand prev and/or next over a new range; the merged VMA or None.

        Models mm/vma.c:vma_merge_new_range (and vma_expand). The caller has
        cleared [start, end) and set vmg.prev/vmg.next.
        """
        prev, nxt = vmg.prev, vmg.next
        if vmg.flags & VM_SPECIAL or (prev is None and nxt is None):
            return None
        left = self._can_vma_merge_left(vmg)
        right = not vmg.just_expand and self._can_vma_merge_right(vmg, left)
        if right:
            vmg.end, vmg.target = nxt.end, nxt
        if left:
            vmg.start, vmg.target, vmg.pgoff = prev.start, prev, prev.pgoff
        if vmg.target is None:
            return None
        self._vma_expand(vmg)
        return vmg.target

    def _vma_expand(self, vmg: _Vmg) -> None:
        """mm/vma.c:vma_expand: grow target to [start, end), absorbing next."""
        target, nxt = vmg.target, vmg.next
        remove_next = nxt is not None and target is not nxt and vmg.end == nxt.end
        if remove_next:
            self._dup_anon_vma(target, nxt)
            self._remove_merged(nxt)
        self._set_range(target, vmg.start, vmg.end, vmg.pgoff)

    def vma_merge_existing_range(self, vmg: _Vmg) -> VMA | None:
        """Merge the changed part [start, end) of vmg.middle with a neighbour.

        Models mm/vma.c:vma_merge_existing_range. Returns the merged VMA or
        None (no merge possible; nothing changed).
        """
        middle = vmg.middle
        left_side, right_side = vmg.start == middle.start, vmg.end == middle.end
        if vmg.flags & VM_SPECIAL or not (left_side or right_side):
            return None
        vmg.prev = self.vma_prev(middle) if left_side else None
        merge_left = left_side and self._can_vma_merge_left(vmg)
        merge_right = False
        if right_side:
            vmg.next = self.vma_next(middle)
            merge_right = self._can_vma_merge_right(vmg, merge_left)
        if not (merge_left or merge_right):
            return None
        remove_middle = left_side and right_side
        if merge_left and merge_right:
            return self._merge_both(vmg)
        if merge_left:
            return self._merge_left(vmg, remove_middle)
        return self._merge_right(vmg, remove_middle)

    def _merge_both(self, vmg: _Vmg) -> VMA:
        """|prev|middle|next| -> |prev.........|: prev extends, both others go."""
        prev, middle, nxt = vmg.prev, vmg.middle, vmg.next
        self._dup_anon_vma(prev, nxt if nxt.anon_vma is not None else middle)
        self._remove_merged(middle)
        self._remove_merged(nxt)
        self._set_range(prev, prev.start, nxt.end, prev.pgoff)
        return prev

    def _merge_left(self, vmg: _Vmg, remove_middle: bool) -> VMA:
        """|prev|mid...| -> |prev...|mid|: prev extends, middle shrinks or goes."""
        prev, middle = vmg.prev, vmg.middle
        self._dup_anon_vma(prev, middle)
        if remove_middle:
            self._remove_merged(middle)
        else:
            pgoff = middle.pgoff + ((vmg.end - middle.start) >> PAGE_SHIFT)
            self._set_range(middle, vmg.end, middle.end, pgoff)
        self._set_range(prev, prev.start, vmg.end, prev.pgoff)
        return prev

    def _merge_right(self, vmg: _Vmg, remove_middle: bool) -> VMA:
        """|...mid|next| -> |mid|...next|: next extends down, middle shrinks or goes."""
        middle, nxt = vmg.middle, vmg.next
        self._dup_anon_vma(nxt, middle)
        pgoff = nxt.pgoff - ((nxt.start - vmg.start) >> PAGE_SHIFT)
        if remove_middle:
            self._remove_merged(middle)
        else:
            self._set_range(middle, middle.start, vmg.start, middle.pgoff)
        self._set_range(nxt, vmg.start, nxt.end, pgoff)
        return nxt

    # -- splitting -------------------------------------------------------------
    def _split_vma(self, vma: VMA, addr: int, new_below: bool) -> VMA:
        """mm/vma.c:__split_vma: no map_count check. Returns the new VMA.

        With new_below the new VMA is the part below addr and ``vma`` keeps
        [addr, end); otherwise the new VMA is [addr, end).
        """
        if not vma.start < addr < vma.end or addr & ~PAGE_MASK:
            raise ValueError(f"cannot split {vma!r} at {addr:#x}")
        if vma.name is not None:            # special_mapping_split: vm_ops->may_split
            raise _fail("EINVAL", f"{vma.name} cannot be split")
        new = vma.copy()
        if new_below:
            new.end = addr
            self._set_range(vma, addr, vma.end, vma.pgoff + ((addr - vma.start) >> PAGE_SHIFT))
        else:
            new.start = addr
            new.pgoff = vma.pgoff + ((addr - vma.start) >> PAGE_SHIFT)
            self._set_range(vma, vma.start, addr, vma.pgoff)
        self._insert(new)
        _fget(new.file)
        return new

    def split_vma(self, vma: VMA, addr: int, new_below: bool = False) -> VMA:
        """mm/vma.c:split_vma: ENOMEM when map_count >= vm.max_map_count."""
        if self.map_count >= self.max_map_count:
            raise _fail("ENOMEM", f"split at {addr:#x}: map_count {self.map_count} "
                                  f">= max_map_count {self.max_map_count}")
        return self._split_vma(vma, addr, new_below)

    def vma_modify(self, vma: VMA, start: int, end: int, flags: int | None = None,
                   anon_name: Any = ...) -> VMA:
        """Prepare [start, end) of vma for new flags or name: merge, else split.

        Models mm/vma.c:vma_modify. Returns the VMA that now spans the range
        (possibly merged with a neighbour and larger); the caller sets the
        new flags on it. ENOMEM from a split at the map count limit.
        """
        vmg = _Vmg(start, end, vma.pgoff + ((start - vma.start) >> PAGE_SHIFT),
                   vma.flags if flags is None else flags, vma.file, vma.anon_vma,
                   vma.anon_name if anon_name is ... else anon_name, middle=vma)
        merged = self.vma_merge_existing_range(vmg)
        if merged is not None:
            return merged
        if vma.start < start:
            self.split_vma(vma, start, new_below=True)
        if vma.end > end:
            self.split_vma(vma, end, new_below=False)
        return vma

    def vma_modify_flags(self, vma: VMA, start: int, end: int, flags: int) -> VMA:
        """mm/vma.c:vma_modify_flags."""
        return self.vma_modify(vma, start, end, flags=flags)

    def vma_modify_name(self, vma: VMA, start: int, end: int, anon_name: str | None) -> VMA:
        """mm/vma.c:vma_modify_name."""
        return self.vma_modify(vma, start, end, anon_name=anon_name)

    # -- unmapping -------------------------------------------------------------
    def _gather_munmap_vmas(self, vma: VMA, start: int, end: int) -> _Gathered:
        """mm/vma.c:vms_gather_munmap_vmas: split the edges, list what is inside.

        The VMAs stay in the tree until the unmap is committed.
        """
        if start > vma.start:
            if end < vma.end and self.map_count >= self.max_map_count:
                raise _fail("ENOMEM", f"munmap [{start:#x}, {end:#x}) would split "
                                      f"{vma!r} at the map count limit")
            self._split_vma(vma, start, new_below=True)
        g = _Gathered(start=start, end=end, prev=self.vma_prev(vma))
        for v in self.vmas_in(start, end):
            if v.end > end:
                self._split_vma(v, end, new_below=False)
            g.vmas.append(v)
            self._gather_one(g, v)
        g.next = self.find_vma(end)
        return g

    @staticmethod
    def _gather_one(g: _Gathered, v: VMA) -> None:
        n = v.pages
        g.nr_pages += n
        g.locked_vm += n if v.flags & VM_LOCKED else 0
        g.nr_accounted += n if v.flags & VM_ACCOUNT else 0
        if is_exec_mapping(v.flags):
            g.exec_vm += n
        elif is_stack_mapping(v.flags):
            g.stack_vm += n
        elif is_data_mapping(v.flags):
            g.data_vm += n

    def _detach(self, g: _Gathered) -> Unmapped:
        """Take the gathered VMAs out of the tree and tell the page tables."""
        for v in g.vmas:
            self._erase(v)
        if g.vmas:
            self._gaps_grew(g.vmas[-1].end)
        ceiling = g.next.start if g.next is not None else None
        floor = g.prev.end if g.prev is not None else 0
        unmapped = Unmapped(list(g.vmas), g.start, g.end, floor, ceiling)
        if g.vmas and self.unmap_hook is not None:
            self.unmap_hook(unmapped)
        return unmapped

    def _complete_munmap(self, g: _Gathered) -> None:
        """mm/vma.c:vms_complete_munmap_vmas: counters, file refs, uncharge."""
        self.locked_vm -= g.locked_vm
        if not g.nr_pages:
            return
        self.update_hiwater_vm()
        self.total_vm -= g.nr_pages
        self.exec_vm -= g.exec_vm
        self.stack_vm -= g.stack_vm
        self.data_vm -= g.data_vm
        for v in g.vmas:
            _fput(v.file)
        self._uncharge(g.nr_accounted)

    def do_vmi_munmap(self, start: int, length: int) -> Unmapped:
        """munmap(start, length): remove every page of [start, start+length).

        Models mm/vma.c:do_vmi_munmap and do_vmi_align_munmap. Returns the
        removed VMAs (trimmed to the range) for the caller to zap. EINVAL for
        a misaligned or out-of-range request; ENOMEM when a VMA would have to
        be split in two at the map count limit.
        """
        if start & ~PAGE_MASK or start > TASK_SIZE or length > TASK_SIZE - start:
            raise _fail("EINVAL", f"munmap({start:#x}, {length:#x})")
        end = start + _page_align(length)
        if end == start:
            raise _fail("EINVAL", f"munmap({start:#x}, 0)")
        vma = self.find_vma_intersection(start, end)
        if vma is None:
            return Unmapped([], start, end)
        g = self._gather_munmap_vmas(vma, start, end)
        unmapped = self._detach(g)
        self._complete_munmap(g)
        return unmapped

    # -- mapping ---------------------------------------------------------------
    def mmap_region(self, addr: int, length: int, flags: int, pgoff: int,
                    file: Any = None) -> int:
        """Map [addr, addr+length) with vm_flags ``flags``, replacing what is there.

        Models mm/vma.c:__mmap_region: unmap the old VMAs in the range
        (MAP_FIXED), check RLIMIT_AS/DATA, charge a private writable mapping
        (VM_ACCOUNT), merge with prev/next (vma_merge_new_range) or insert a
        new VMA, then account (__mmap_complete). addr and length are page
        aligned and checked by the caller (do_mmap). Returns addr.
        """
        end, pglen = addr + length, length >> PAGE_SHIFT
        old = self.find_vma_intersection(addr, end)
        g = self._gather_munmap_vmas(old, addr, end) if old is not None else \
            _Gathered(start=addr, end=end)
        if old is None:
            g.next, g.prev = self.find_vma_prev(addr)
        if not self.may_expand_vm(flags, pglen - g.nr_pages):
            raise _fail("ENOMEM", f"mmap of {length:#x} bytes exceeds RLIMIT_AS/RLIMIT_DATA")
        if accountable_mapping(file, flags):
            self._charge(pglen - g.nr_accounted, "mmap")
            g.nr_accounted = 0                  # the old VMAs' charge carries over
            flags |= VM_ACCOUNT
        if file is None and flags & VM_SHARED:
            file = self._shmem_zero_setup(length, flags)
        self._detach(g)
        vma = self._mmap_new_or_merged(addr, end, flags, pgoff, file, g)
        self._complete_munmap(g)
        self._mmap_complete(vma, flags, pglen)
        return addr

    def _shmem_zero_setup(self, length: int, flags: int) -> ShmemFile:
        """mm/shmem.c:shmem_zero_setup: a new /dev/zero object, charged unless NORESERVE."""
        pages = _page_align(length) >> PAGE_SHIFT
        charged = 0 if flags & VM_NORESERVE else pages
        if charged and not self.account(charged):
            raise _fail("ENOMEM", f"shared anonymous mapping: cannot commit {charged} pages")
        return ShmemFile("/dev/zero", size=length, dev=(0, 1), ino=next(_shmem_ino),
                         writable=True, thp_aligned=False, deleted=True, charged=charged,
                         unaccount=self.unaccount)

    def _mmap_new_or_merged(self, addr: int, end: int, flags: int, pgoff: int, file: Any,
                            g: _Gathered) -> VMA:
        vma = None
        if g.prev is not None or g.next is not None:
            vmg = _Vmg(addr, end, pgoff, flags, file, prev=g.prev, next=g.next)
            vma = self.vma_merge_new_range(vmg)
        if vma is None:
            if isinstance(file, ShmemFile):
                pgoff = 0
            vma = VMA(addr, end, flags, pgoff, file)
            self._insert(vma)
            _fget(file)
        return vma

    def _mmap_complete(self, vma: VMA, flags: int, pglen: int) -> None:
        """mm/vma.c:__mmap_complete: stats, mlock accounting, soft-dirty."""
        self.vm_stat_account(vma.flags, pglen)
        if flags & VM_LOCKED:
            if flags & VM_SPECIAL:
                vma.flags &= ~VM_LOCKED_MASK
            else:
                self.locked_vm += pglen
        if self.soft_dirty:
            vma.flags |= VM_SOFTDIRTY

    def insert_vm_struct(self, vma: VMA) -> VMA:
        """Insert a VMA built by the kernel itself (the exec stack, special mappings).

        Models mm/vma.c:insert_vm_struct: ENOMEM if it overlaps, charge if
        VM_ACCOUNT, an anonymous VMA's pgoff is its start in pages. No map
        count check, no merging, no vm_stat_account (callers do it).
        """
        if self.find_vma_intersection(vma.start, vma.end) is not None:
            raise _fail("ENOMEM", f"{vma!r} overlaps an existing mapping")
        if vma.flags & VM_ACCOUNT:
            self._charge(vma.pages, "insert_vm_struct")
        if vma.is_anonymous():
            vma.pgoff = vma.start >> PAGE_SHIFT
        self._insert(vma)
        _fget(vma.file)
        return vma

    def install_special_mapping(self, addr: int, length: int, flags: int, name: str) -> VMA:
        """mm/vma.c:__install_special_mapping: [vdso], [vvar], ... (VM_DONTEXPAND)."""
        flags = (flags | self.def_flags | VM_DONTEXPAND) & ~VM_LOCKED_MASK
        if self.soft_dirty:
            flags |= VM_SOFTDIRTY
        vma = self.insert_vm_struct(VMA(addr, addr + length, flags, 0, name=name))
        self.vm_stat_account(vma.flags, vma.pages)
        return vma

    # -- brk -------------------------------------------------------------------
    def do_brk_flags(self, addr: int, length: int, flags: int = 0,
                     brkvma: VMA | None = None) -> VMA:
        """Extend brkvma by [addr, addr+length) or create an anonymous VMA there.

        Models mm/vma.c:do_brk_flags: RLIMIT checks, ENOMEM when map_count >
        max_map_count (note: '>', unlike split), charge, then expand only the
        given VMA (never merge with the next).
        """
        flags |= VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | self.def_flags
        pages = length >> PAGE_SHIFT
        if not self.may_expand_vm(flags, pages):
            raise _fail("ENOMEM", f"brk of {length:#x} bytes exceeds RLIMIT_AS/RLIMIT_DATA")
        if self.map_count > self.max_map_count:
            raise _fail("ENOMEM", f"brk: map_count {self.map_count} > {self.max_map_count}")
        self._charge(pages, "brk")
        vma = None
        if brkvma is not None and brkvma.end == addr:
            vmg = _Vmg(addr, addr + length, addr >> PAGE_SHIFT, flags, prev=brkvma,
                       just_expand=True)
            vma = self.vma_merge_new_range(vmg)
        if vma is None:
            vma = VMA(addr, addr + length, flags, addr >> PAGE_SHIFT)
            self._insert(vma)
        self.total_vm += pages
        self.data_vm += pages               # a brk VMA is always writable: data
        if flags & VM_LOCKED:
            self.locked_vm += pages
        if self.soft_dirty:
            vma.flags |= VM_SOFTDIRTY
        return vma

    # -- mprotect (mm/mprotect.c) ----------------------------------------------
    def mprotect_fixup(self, vma: VMA, start: int, end: int, newflags: int) -> VMA:
        """Give [start, end) of vma the flags newflags: account, split/merge, set.

        Models mm/mprotect.c:mprotect_fixup. Making a private mapping
        writable charges it (VM_ACCOUNT); making an anonymous mapping without
        anon_vma read-only uncharges it. Returns the VMA now holding the range.
        """
        oldflags = vma.flags
        if newflags == oldflags:
            return vma
        nrpages = (end - start) >> PAGE_SHIFT
        charged = 0
        if newflags & VM_WRITE:
            if not self.may_expand_vm(newflags, nrpages) and self.may_expand_vm(oldflags, nrpages):
                raise _fail("ENOMEM", "mprotect: data would exceed RLIMIT_DATA")
            if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE):
                charged = nrpages
                self._charge(charged, "mprotect")
                newflags |= VM_ACCOUNT
        elif oldflags & VM_ACCOUNT and vma.is_anonymous() and vma.anon_vma is None:
            newflags &= ~VM_ACCOUNT
        try:
            vma = self.vma_modify_flags(vma, start, end, newflags)
        except SyscallError:
            self._uncharge(charged)
            raise
        vma.flags = newflags
        self.generation += 1
        if oldflags & VM_ACCOUNT and not newflags & VM_ACCOUNT:
            self._uncharge(nrpages)
        self.vm_stat_account(oldflags, -nrpages)
        self.vm_stat_account(newflags, nrpages)
        return vma

    def mprotect(self, start: int, length: int, prot: int) -> list[tuple[VMA, int, int]]:
        """mprotect(start, length, prot); the (vma, start, end) pieces changed.

        Models mm/mprotect.c:do_mprotect_pkey (without pkeys). EINVAL for a
        misaligned start or unknown prot bits, ENOMEM for an unmapped page in
        the range, EACCES for a permission the VMA may not have (VM_MAY*).
        The caller updates the page table entries of the returned ranges.
        """
        if start & ~PAGE_MASK:
            raise _fail("EINVAL", f"mprotect({start:#x}): start not page aligned")
        if not length:
            return []
        end = start + _page_align(length)
        if end <= start:
            raise _fail("ENOMEM", f"mprotect({start:#x}, {length:#x}): wraps")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
            raise _fail("EINVAL", f"mprotect: bad prot {prot:#x}")
        vma = self.find_vma_intersection(start, end)
        if vma is None or vma.start > start:
            raise _fail("ENOMEM", f"mprotect: {start:#x} is not mapped")
        return self._walk_fixup(vma, start, end, "mprotect",
                                lambda v: self._mprotect_flags(v, prot), self.mprotect_fixup)

    @staticmethod
    def _mprotect_flags(vma: VMA, prot: int) -> int:
        newflags = calc_vm_prot_bits(prot) | (vma.flags & ~(VM_ACCESS_FLAGS | _VM_PKEY_MASK))
        if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:
            raise _fail("EACCES", f"mprotect: {vma!r} may not get prot {prot:#x}")
        return newflags

    def _walk_fixup(self, vma: VMA, start: int, end: int, what: str,
                    newflags_of: Callable[[VMA], int],
                    fixup: Callable[[VMA, int, int, int], VMA]) -> list[tuple[VMA, int, int]]:
        """The loop of do_mprotect_pkey and apply_vma_lock_flags over [start, end).

        Stops with ENOMEM at the first hole (changes before it stay).
        """
        done, nstart, tmp = [], start, vma.start
        while vma is not None and vma.start < end:
            if vma.start != tmp:
                raise _fail("ENOMEM", f"{what}: {tmp:#x} is not mapped")
            newflags = newflags_of(vma)
            tmp = min(vma.end, end)
            vma = fixup(vma, nstart, tmp, newflags)
            done.append((vma, nstart, tmp))
            tmp = vma.end
            nstart = tmp
            vma = self.find_vma(tmp)
        if tmp < end:
            raise _fail("ENOMEM", f"{what}: {tmp:#x} is not mapped")
        return done

    # -- mlock (mm/mlock.c) ----------------------------------------------------
    def mlock_fixup(self, vma: VMA, start: int, end: int, newflags: int) -> VMA:
        """mm/mlock.c:mlock_fixup: set VM_LOCKED[/VM_LOCKONFAULT] on the range."""
        oldflags = vma.flags
        if newflags == oldflags or oldflags & (VM_SPECIAL | VM_HUGETLB):
            return vma
        vma = self.vma_modify_flags(vma, start, end, newflags)
        nr_pages = (end - start) >> PAGE_SHIFT
        if not newflags & VM_LOCKED:
            nr_pages = -nr_pages
        elif oldflags & VM_LOCKED:
            nr_pages = 0
        self.locked_vm += nr_pages
        vma.flags = newflags
        self.generation += 1
        return vma

    def apply_vma_lock_flags(self, start: int, length: int,
                             flags: int) -> list[tuple[VMA, int, int]]:
        """mm/mlock.c:apply_vma_lock_flags: replace VM_LOCKED_MASK bits by flags."""
        end = start + length
        if end == start:
            return []
        vma = self.vma_lookup(start)
        if vma is None:
            raise _fail("ENOMEM", f"mlock: {start:#x} is not mapped")
        return self._walk_fixup(vma, start, end, "mlock",
                                lambda v: (v.flags & ~VM_LOCKED_MASK) | flags, self.mlock_fixup)

    def mlock(self, start: int, length: int, onfault: bool = False) -> list[tuple[VMA, int, int]]:
        """mlock/mlock2: lock the range; the ranges to populate (none with onfault).

        Models mm/mlock.c:do_mlock: RLIMIT_MEMLOCK (ENOMEM) unless
        CAP_IPC_LOCK, counting pages already locked in the range once.
        """
        length = _page_align(length + (start & ~PAGE_MASK))
        start &= PAGE_MASK
        locked = (length >> PAGE_SHIFT) + self.locked_vm
        limit = None if self.rlimit_memlock is None else self.rlimit_memlock >> PAGE_SHIFT
        if limit is not None and locked > limit and not self.cap_ipc_lock:
            locked -= self._count_mlocked(start, start + length)
            if locked > limit:
                raise _fail("ENOMEM", f"mlock: {locked} pages exceed RLIMIT_MEMLOCK")
        flags = VM_LOCKED | (VM_LOCKONFAULT if onfault else 0)
        done = self.apply_vma_lock_flags(start, length, flags)
        return [] if onfault else [(v, s, e) for v, s, e in done if v.flags & VM_LOCKED]

    def _count_mlocked(self, start: int, end: int) -> int:
        return sum((min(end, v.end) - max(start, v.start)) >> PAGE_SHIFT
                   for v in self.vmas_in(start, end) if v.flags & VM_LOCKED)

    def munlock(self, start: int, length: int) -> list[tuple[VMA, int, int]]:
        """munlock: clear VM_LOCKED/VM_LOCKONFAULT on the range (mm/mlock.c)."""
        length = _page_align(length + (start & ~PAGE_MASK))
        return self.apply_vma_lock_flags(start & PAGE_MASK, length, 0)

    def mlockall(self, flags: int) -> list[tuple[VMA, int, int]]:
        """mlockall(MCL_*): models mm/mlock.c:apply_mlockall_flags; ranges to populate."""
        if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
            raise _fail("EINVAL", f"mlockall({flags:#x})")
        if (self.rlimit_memlock is not None and not self.cap_ipc_lock and flags & MCL_CURRENT
                and self.total_vm > self.rlimit_memlock >> PAGE_SHIFT):
            raise _fail("ENOMEM", "mlockall: total_vm exceeds RLIMIT_MEMLOCK")
        self.def_flags &= ~VM_LOCKED_MASK
        to_add = VM_LOCKED | (VM_LOCKONFAULT if flags & MCL_ONFAULT else 0)
        if flags & MCL_FUTURE:
            self.def_flags |= to_add
            if not flags & MCL_CURRENT:
                return []
        done = self._mlock_all_vmas(to_add if flags & MCL_CURRENT else 0)
        return [] if flags & MCL_ONFAULT else [d for d in done if d[0].flags & VM_LOCKED]

    def _mlock_all_vmas(self, to_add: int) -> list[tuple[VMA, int, int]]:
        """The for_each_vma loop of apply_mlockall_flags (errors are ignored)."""
        done, addr = [], 0
        while (vma := self.find_vma(addr)) is not None:
            newflags = (vma.flags & ~VM_LOCKED_MASK) | to_add
            try:
                vma = self.mlock_fixup(vma, vma.start, vma.end, newflags)
            except SyscallError:
                pass
            done.append((vma, vma.start, vma.end))
            addr = vma.end
        return done

    def munlockall(self) -> None:
        """munlockall: models apply_mlockall_flags(0)."""
        self.def_flags &= ~VM_LOCKED_MASK
        self._mlock_all_vmas(0)

    # -- madvise (mm/madvise.c) ------------------------------------------------
    def madvise(self, start: int, length: int, advice: int,
                anon_name: str | None = None) -> list[tuple[VMA, int, int]]:
        """madvise(start, length, advice); the (vma, start, end) pieces it applied to.

        Models mm/madvise.c:do_madvise and madvise_walk_vmas. Flag advices
        (NORMAL, RANDOM, SEQUENTIAL, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK,
        DONTDUMP, DODUMP, MERGEABLE, UNMERGEABLE, HUGEPAGE, NOHUGEPAGE) split
        and merge like the kernel; for the others (DONTNEED, FREE, WILLNEED,
        COLD, PAGEOUT, REMOVE, POPULATE_*) the returned ranges are the page
        work left to the caller. Holes in the range are skipped and reported
        at the end with ENOMEM (the exception's ``ranges`` holds the work done).
        A split failing at the map count limit is EAGAIN, as in the kernel.
        """
        if advice not in _MADV_VALID:
            raise _fail("EINVAL", f"madvise: unknown advice {advice}")
        if start & ~PAGE_MASK:
            raise _fail("EINVAL", f"madvise({start:#x}): start not page aligned")
        end = start + _page_align(length)
        if (length and end == start) or end < start:
            raise _fail("EINVAL", f"madvise({start:#x}, {length:#x})")
        if end == start:
            return []
        return self._madvise_walk(start, end, advice, anon_name)

    def set_anon_vma_name(self, start: int, length: int, name: str | None) -> None:
        """prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME): models madvise_set_anon_name."""
        self.madvise(start, length, _MADV_SET_ANON_VMA_NAME, anon_name=name)

    def _madvise_walk(self, start: int, end: int, advice: int,
                      anon_name: str | None) -> list[tuple[VMA, int, int]]:
        """mm/madvise.c:madvise_walk_vmas: apply to each VMA piece, note holes."""
        done: list[tuple[VMA, int, int]] = []
        hole = False
        vma = self.find_vma(start)
        while True:
            if vma is None:
                hole = True
                break
            if start < vma.start:
                hole, start = True, vma.start
                if start >= end:
                    break
            stop = min(vma.end, end)
            prev = self._madvise_vma(vma, start, stop, advice, anon_name, done)
            start = max(stop, prev.end)
            if start >= end:
                break
            vma = self.find_vma(prev.end)
        if hole:
            err = _fail("ENOMEM", "madvise: range not fully mapped")
            err.ranges = done
            raise err
        return done

    def _madvise_vma(self, vma: VMA, start: int, end: int, advice: int,
                     anon_name: str | None, done: list) -> VMA:
        """mm/madvise.c:madvise_vma_behavior for one VMA piece."""
        if advice in _MADV_PAGE_WORK:
            _madvise_check_page_work(vma, advice)
            done.append((vma, start, end))
            return vma
        newflags = _madvise_new_flags(vma, advice)
        if advice == _MADV_SET_ANON_VMA_NAME:
            if vma.file is not None and not isinstance(vma.file, ShmemFile):
                raise _fail("EBADF", "only anonymous mappings can be named")
        elif newflags == vma.flags:
            done.append((vma, start, end))
            return vma
        try:
            if advice == _MADV_SET_ANON_VMA_NAME:
                if vma.anon_name == anon_name:
                    return vma
                vma = self.vma_modify_name(vma, start, end, anon_name)
                vma.anon_name = anon_name
            else:
                vma = self.vma_modify_flags(vma, start, end, newflags)
                vma.flags = newflags
                self.generation += 1
        except SyscallError as err:
            if err.errno_name == "ENOMEM":
                raise _fail("EAGAIN", err.message) from err
            raise
        done.append((vma, start, end))
        return vma

    # -- stack -----------------------------------------------------------------
    def expand_downwards(self, vma: VMA, address: int) -> None:
        """Grow a VM_GROWSDOWN VMA down to address (a fault below the stack).

        Models mm/mmap.c:expand_downwards and acct_stack_growth: EPERM below
        mmap_min_addr, ENOMEM within stack_guard_gap of the previous VMA,
        beyond RLIMIT_STACK/RLIMIT_AS, or when the commit charge fails.
        """
        if not vma.flags & VM_GROWSDOWN:
            raise _fail("EFAULT", f"{vma!r} does not grow down")
        address &= PAGE_MASK
        if address < self.mmap_min_addr:
            raise _fail("EPERM", f"stack growth to {address:#x} below mmap_min_addr")
        prev = self.vma_prev(vma)
        if (prev is not None and not prev.flags & VM_GROWSDOWN and prev.flags & VM_ACCESS_FLAGS
                and address - prev.end < self.stack_guard_gap):
            raise _fail("ENOMEM", f"stack growth to {address:#x} hits the guard gap")
        self.anon_vma_prepare(vma)
        if address >= vma.start:
            return
        size, grow = vma.end - address, (vma.start - address) >> PAGE_SHIFT
        if grow > vma.pgoff:
            raise _fail("ENOMEM", "stack growth below page offset 0")
        self._acct_stack_growth(vma, size, grow)
        if vma.flags & VM_LOCKED:
            self.locked_vm += grow
        self.vm_stat_account(vma.flags, grow)
        self._set_range(vma, address, vma.end, vma.pgoff - grow)

    def _acct_stack_growth(self, vma: VMA, size: int, grow: int) -> None:
        """mm/mmap.c:acct_stack_growth: the limits, then the commit charge last."""
        if not self.may_expand_vm(vma.flags, grow):
            raise _fail("ENOMEM", "stack growth exceeds RLIMIT_AS")
        if self.rlimit_stack is not None and size > self.rlimit_stack:
            raise _fail("ENOMEM", f"stack of {size} bytes exceeds RLIMIT_STACK")
        if not self.mlock_future_ok(bool(vma.flags & VM_LOCKED), grow << PAGE_SHIFT):
            raise _fail("ENOMEM", "stack growth exceeds RLIMIT_MEMLOCK")
        self._charge(grow, "stack growth")

    def expand_stack(self, address: int) -> VMA | None:
        """The VMA for a fault at address, growing a stack to it; None if none.

        Models mm/mmap.c:expand_stack (x86: stacks grow down).
        """
        vma = self.find_vma(address)
        if vma is None:
            return None
        if vma.start <= address:
            return vma
        if not vma.flags & VM_GROWSDOWN:
            return None
        try:
            self.expand_downwards(vma, address)
        except SyscallError:
            return None
        return vma

    # -- fork and exit -----------------------------------------------------------
    def dup_mmap(self, child: "VmaTree") -> list[tuple[VMA, VMA]]:
        """Copy the VMAs into an empty child tree; (parent_vma, child_vma) pairs.

        Models the VMA side of mm/mmap.c:dup_mmap: VM_DONTCOPY VMAs are left
        out, VM_ACCOUNT VMAs are charged to the child (ENOMEM), the child's
        VMAs lose VM_LOCKED, get a new anon_vma chained to the parent's
        (VM_WIPEONFORK: none). The caller copies page tables for the pairs
        (copy_page_range) except for VM_WIPEONFORK VMAs.
        """
        child.total_vm, child.data_vm = self.total_vm, self.data_vm
        child.exec_vm, child.stack_vm = self.exec_vm, self.stack_vm
        child.def_flags = self.def_flags & VM_NOHUGEPAGE      # VM_INIT_DEF_MASK
        _copy_layout(self, child)
        pairs = []
        for vma in self._vmas:
            if vma.flags & VM_DONTCOPY:
                child.vm_stat_account(vma.flags, -vma.pages)
                continue
            if vma.flags & VM_ACCOUNT:
                child._charge(vma.pages, "fork")
            new = vma.copy()
            new.flags &= ~VM_LOCKED_MASK
            _anon_vma_fork(new, vma)
            child._insert(new)
            _fget(new.file)
            pairs.append((vma, new))
        child.hiwater_vm = child.total_vm
        return pairs

    def exit_mmap(self) -> Unmapped:
        """Tear down every VMA (mm/mmap.c:exit_mmap): uncharge, drop files."""
        last = self._vmas[-1] if self._vmas else None
        g = _Gathered(vmas=list(self._vmas), start=0, end=last.end if last else 0)
        unmapped = self._detach(g)
        accounted = sum(v.pages for v in g.vmas if v.flags & VM_ACCOUNT)
        for v in g.vmas:
            _fput(v.file)
        self._uncharge(accounted)
        self.update_hiwater_vm()
        self.total_vm = self.locked_vm = self.data_vm = self.exec_vm = self.stack_vm = 0
        return unmapped

    # -- names -------------------------------------------------------------------
    def vma_is_initial_heap(self, vma: VMA) -> bool:
        return vma.start < self.brk and vma.end > self.start_brk

    def vma_is_initial_stack(self, vma: VMA) -> bool:
        return vma.start <= self.start_stack <= vma.end

    def get_vma_name(self, vma: VMA) -> str | None:
        """The name column of /proc/PID/maps, or None.

        Models fs/proc/task_mmu.c:get_vma_name and show_map_vma: the file path
        (" (deleted)" if unlinked) or "[anon_shmem:name]", a special mapping's
        name, "[heap]", "[stack]", "[anon:name]".
        """
        if vma.file is not None:
            if vma.anon_name is not None:
                return f"[anon_shmem:{vma.anon_name}]"
            path = getattr(vma.file, "path", str(vma.file))
            return path + " (deleted)" if getattr(vma.file, "deleted", False) else path
        if vma.name is not None:
            return vma.name
        if self.vma_is_initial_heap(vma):
            return "[heap]"
        if self.vma_is_initial_stack(vma):
            return "[stack]"
        if vma.anon_name is not None:
            return f"[anon:{vma.anon_name}]"
        return None

    # -- invariants ----------------------------------------------------------------
    def check_invariants(self) -> None:
        """Raise AssertionError when the tree or its counters are inconsistent."""
        assert self._starts == [v.start for v in self._vmas], "start index out of date"
        prev_end = 0
        for v in self._vmas:
            assert v.start < v.end and not (v.start | v.end) & ~PAGE_MASK, f"bad range {v!r}"
            assert v.start >= prev_end, f"{v!r} overlaps the VMA before it"
            prev_end = v.end
        assert self.total_vm == sum(v.pages for v in self._vmas), "total_vm"
        locked = sum(v.pages for v in self._vmas if v.flags & VM_LOCKED)
        assert self.locked_vm == locked, "locked_vm"
        assert self.stack_vm == sum(v.pages for v in self._vmas if is_stack_mapping(v.flags)
                                    and not is_exec_mapping(v.flags)), "stack_vm"
        exec_vm = sum(v.pages for v in self._vmas if is_exec_mapping(v.flags))
        data_vm = sum(v.pages for v in self._vmas if is_data_mapping(v.flags)
                      and not is_exec_mapping(v.flags))
        assert self.exec_vm == exec_vm, "exec_vm"
        assert self.data_vm == data_vm, "data_vm"
        assert self.charged == sum(v.pages for v in self._vmas if v.flags & VM_ACCOUNT), "charge"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & PAGE_MASK


def _anon_vma_compatible(a: VMA, b: VMA) -> bool:
    """mm/vma.c:anon_vma_compatible: adjacent, same file, flags differ only in rwx."""
    return a.end == b.start and a.file is b.file \
        and not ((a.flags ^ b.flags) & ~(VM_ACCESS_FLAGS | VM_IGNORE_MERGE)) \
        and b.pgoff == a.pgoff + ((b.start - a.start) >> PAGE_SHIFT)


def _reusable_anon_vma(old: VMA, a: VMA, b: VMA) -> int | None:
    """mm/vma.c:reusable_anon_vma: old's anon_vma, if not inherited through fork."""
    if _anon_vma_compatible(a, b) and old.anon_vma is not None and len(old.anon_vma_chain) == 1:
        return old.anon_vma
    return None


def _anon_vma_fork(new: VMA, parent: VMA) -> None:
    """mm/rmap.c:anon_vma_fork: chain to the parent's anon_vmas, plus a new one."""
    if new.flags & VM_WIPEONFORK or parent.anon_vma is None:
        new.anon_vma, new.anon_vma_chain = None, ()
        return
    new.anon_vma = anon_vma_alloc()
    new.anon_vma_chain = parent.anon_vma_chain + (new.anon_vma,)


def _copy_layout(src: VmaTree, dst: VmaTree) -> None:
    for name in ("mmap_base", "mmap_legacy_base", "topdown", "start_code", "end_code",
                 "start_data", "end_data", "start_brk", "brk", "start_stack", "arg_start",
                 "arg_end", "env_start", "env_end"):
        setattr(dst, name, getattr(src, name))


_VM_PKEY_MASK = VM_PKEY_BIT0 | VM_PKEY_BIT1 | VM_PKEY_BIT2 | VM_PKEY_BIT3   # VM_FLAGS_CLEAR
_MADV_SET_ANON_VMA_NAME = -1        # __MADV_SET_ANON_VMA_NAME, kernel-internal
_MADV_PAGE_WORK = {MADV_WILLNEED, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE, MADV_REMOVE,
                   MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
                   MADV_COLLAPSE}
_MADV_FLAG_ADVICE = {MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTFORK, MADV_DOFORK,
                     MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTDUMP, MADV_DODUMP,
                     MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE}
_MADV_VALID = _MADV_PAGE_WORK | _MADV_FLAG_ADVICE | {_MADV_SET_ANON_VMA_NAME}
_KSM_INCOMPATIBLE = (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB
                     | VM_MIXEDMAP | VM_DROPPABLE | VM_SHADOW_STACK)


def _madvise_check_page_work(vma: VMA, advice: int) -> None:
    """The VMA checks of madvise_dontneed_free, madvise_free, madvise_remove..."""
    if advice in (MADV_DONTNEED, MADV_FREE, MADV_DONTNEED_LOCKED):
        forbidden = VM_PFNMAP | (0 if advice == MADV_DONTNEED_LOCKED else VM_LOCKED)
        if vma.flags & forbidden:
            raise _fail("EINVAL", f"madvise: {vma!r} is locked or PFN-mapped")
    if advice == MADV_FREE and not vma.is_anonymous():
        raise _fail("EINVAL", "MADV_FREE on a non-anonymous mapping")
    if advice == MADV_REMOVE and (vma.flags & VM_LOCKED or not vma.flags & VM_SHARED
                                  or vma.file is None):
        raise _fail("EINVAL", "MADV_REMOVE needs a shared file mapping")
    if advice in (MADV_COLD, MADV_PAGEOUT) and vma.flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB):
        raise _fail("EINVAL", "madvise cold/pageout on a locked or special mapping")


def _madvise_new_flags(vma: VMA, advice: int) -> int:
    """The flag part of mm/madvise.c:madvise_vma_behavior."""
    f = vma.flags
    if advice == MADV_NORMAL:
        return f & ~(VM_RAND_READ | VM_SEQ_READ)
    if advice == MADV_SEQUENTIAL:
        return (f & ~VM_RAND_READ) | VM_SEQ_READ
    if advice == MADV_RANDOM:
        return (f & ~VM_SEQ_READ) | VM_RAND_READ
    if advice == MADV_DONTFORK:
        return f | VM_DONTCOPY
    if advice == MADV_DOFORK:
        if f & VM_IO:
            raise _fail("EINVAL", "MADV_DOFORK on a VM_IO mapping")
        return f & ~VM_DONTCOPY
    if advice == MADV_WIPEONFORK:
        if vma.file is not None or f & VM_SHARED:
            raise _fail("EINVAL", "MADV_WIPEONFORK is for private anonymous memory")
        return f | VM_WIPEONFORK
    if advice == MADV_KEEPONFORK:
        if f & VM_DROPPABLE:
            raise _fail("EINVAL", "MADV_KEEPONFORK on a droppable mapping")
        return f & ~VM_WIPEONFORK
    return _madvise_new_flags_2(vma, advice)


def _madvise_new_flags_2(vma: VMA, advice: int) -> int:
    f = vma.flags
    if advice == MADV_DONTDUMP:
        return f | VM_DONTDUMP
    if advice == MADV_DODUMP:
        if (not f & VM_HUGETLB and f & VM_SPECIAL) or f & VM_DROPPABLE:
            raise _fail("EINVAL", "MADV_DODUMP on a special mapping")
        return f & ~VM_DONTDUMP
    if advice == MADV_MERGEABLE:        # mm/ksm.c:ksm_madvise
        return f if f & _KSM_INCOMPATIBLE else f | VM_MERGEABLE
    if advice == MADV_UNMERGEABLE:
        return f & ~VM_MERGEABLE
    if advice == MADV_HUGEPAGE:         # mm/khugepaged.c:hugepage_madvise
        return (f & ~VM_NOHUGEPAGE) | VM_HUGEPAGE
    if advice == MADV_NOHUGEPAGE:
        return (f & ~VM_HUGEPAGE) | VM_NOHUGEPAGE
    return f
