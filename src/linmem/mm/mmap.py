"""The x86-64 user address space: its layout, mmap/brk, and exec's mappings.

A 64-bit process on x86-64 (4-level paging) owns the low 128 TiB. With
address randomisation off (``setarch -R``, or ``rng=None`` here) a dynamically
linked PIE program is laid out like this::

    0x7ffffffff000  TASK_SIZE = STACK_TOP
                    [stack]          33 pages at exec (argument pages + 128 KiB),
                                     grows down, at most RLIMIT_STACK
                    gap >= 128 MiB   RLIMIT_STACK + stack_guard_gap (+ stack
                                     randomisation), clamped to [128 MiB, 5/6 TASK_SIZE]
    0x7ffff7fff000  mmap_base        the mmap area grows down from here:
                    ld-linux.so      mapped by the kernel (load_elf_interp)
                    [vvar] [vvar_vclock] [vdso]
                    libc.so, ...     mapped by ld.so (_dl_map_segments)
                    anonymous mmaps, malloc arenas, thread stacks ...
                      ...
                    [heap]           grows up from start_brk (brk)
    0x555555554000  the program      ELF_ET_DYN_BASE = 2/3 TASK_SIZE (PIE);
                                     0x400000 for a non-PIE (ET_EXEC) program
    0x10000         mmap_min_addr    nothing may be mapped below

``get_unmapped_area`` finds room for a mapping without MAP_FIXED: a free
address hint is taken as is; otherwise ``vm_unmapped_area`` takes the highest
gap below ``mmap_base`` (top-down; bottom-up from TASK_SIZE/3 in the legacy
layout) that fits, keeping ``stack_guard_gap`` below a VM_GROWSDOWN VMA, and
falls back to a bottom-up search when the top-down one fails. With THP
compiled in, an anonymous private mapping without hint whose length is a
multiple of 2 MiB, and a file mapping on a filesystem whose
``get_unmapped_area`` is ``thp_get_unmapped_area`` (ext4, xfs, btrfs) with at
least 2 MiB past its first 2 MiB-aligned file offset, are placed 2 MiB
aligned: the search is made for length + 2 MiB and the result rounded
(``__thp_get_unmapped_area``); top-down, an already aligned result moves up
by 2 MiB, so the padding ends up below the mapping.

exec (``load_elf_binary``) builds a new address space in this order:
``arch_pick_mmap_layout`` (mmap_base), the stack with the argument and
environment strings, the program's PT_LOAD segments (the first one mapped
with the whole image's size, the rest unmapped then re-mapped MAP_FIXED;
.bss past the last file page as an anonymous brk-like VMA), the interpreter
the same way at an address chosen top-down, [vvar]/[vvar_vclock]/[vdso], then
start_brk = brk = the page after .bss. ld.so then maps each library
(``dl_map_object``: one mapping of the whole span with the first segment's
protection, the others re-mapped over it, an anonymous mapping for .bss),
makes RELRO read-only and drops /etc/ld.so.cache. The segment tables of a
few real programs and libraries of the development machine (Debian 12,
glibc 2.36) are built in (``builtin_image``), so ``exec_image("/usr/bin/cat")``
reproduces ``setarch -R cat /proc/self/maps``.

Randomisation (randomize_va_space, mmap_rnd_bits = 28): every random draw
comes from the ``numpy.random.Generator`` passed in; ``rng=None`` is
personality ADDR_NO_RANDOMIZE.

Kernel: Linux 6.18, arch/x86/mm/mmap.c, arch/x86/kernel/sys_x86_64.c,
arch/x86/kernel/process.c (arch_randomize_brk), arch/x86/entry/vdso/vma.c,
mm/mmap.c (do_mmap, brk, __get_unmapped_area, vm_unmapped_area),
mm/huge_memory.c (thp_get_unmapped_area), mm/util.c (vm_mmap, randomize_page,
randomize_stack_top), fs/exec.c (setup_arg_pages), fs/binfmt_elf.c; glibc
2.36 elf/dl-map-segments.h and elf/dl-reloc.c for ld.so.

Deviations from Linux (``XXX``):

* 4-level paging only: hints above 47 bits are refused like any invalid hint;
* the gap search gives the maple tree's answers but not its O(log n): it
  walks the gaps down from the top, skipping the part an earlier search
  found only smaller gaps in (``VmaTree.gap_cache``);
* no MAP_HUGETLB/hugetlbfs, MAP_SYNC, MAP_DROPPABLE, pkeys, personality
  READ_IMPLIES_EXEC, x32/ia32 compat bases, AMD F15h va_align;
* shared anonymous memory is never THP-aligned (shmem_enabled=never, the
  default); MAP_32BIT's randomised base is not drawn;
* ld.so's own anonymous mappings (its early allocator, the static TLS block)
  have the sizes measured with strace for the built-in programs (8 KiB and
  12 KiB by default): glibc's allocator is not modelled.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

from linmem.mm.vma import (
    DEFAULT_STACK_GUARD_GAP, MAP_ANONYMOUS, MAP_32BIT, MAP_ABOVE4G, MAP_FIXED,
    MAP_FIXED_NOREPLACE, MAP_NONBLOCK, MAP_NORESERVE, MAP_POPULATE, MAP_PRIVATE,
    MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE, OVERCOMMIT_NEVER, PAGE_MASK, PROT_EXEC, PROT_READ,
    PROT_WRITE, TASK_SIZE, VM_DONTDUMP, VM_EXEC, VM_GROWSDOWN, VM_IO, VM_LOCKED, VM_MAYEXEC,
    VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_NORESERVE, VM_PFNMAP, VM_READ, VM_SHARED,
    VM_SOFTDIRTY, VM_STACK_FLAGS, VM_STARTGAP_FLAGS, VMA, MappedFile, SyscallError,
    VmaTree, calc_vm_flag_bits, calc_vm_prot_bits,
)
from linmem.units import PAGE_SHIFT, PAGE_SIZE

# ---------------------------------------------------------------------------
# Constants (arch/x86/include/asm/page_64_types.h, processor.h, elf.h)
# ---------------------------------------------------------------------------
DEFAULT_MAP_WINDOW = TASK_SIZE               # (1 << 47) - PAGE_SIZE
TASK_SIZE_MAX = TASK_SIZE                    # 4-level paging
STACK_TOP = TASK_SIZE                        # TASK_SIZE_LOW
STACK_TOP_MAX = TASK_SIZE_MAX
STACK_RND_MASK = 0x3FFFFF                    # 22 bits of pages: 16 GiB
STACK_EXPAND = 128 << 10                     # setup_arg_pages: stack_expand
ELF_ET_DYN_BASE = DEFAULT_MAP_WINDOW // 3 * 2    # 0x555555554aaa
ELF_EXEC_BASE = 0x400000                     # where non-PIE x86-64 programs link
TASK_UNMAPPED_BASE = (TASK_SIZE // 3 + PAGE_SIZE - 1) & PAGE_MASK
PMD_SIZE = 2 << 20
SIZE_128M = 128 << 20
MMAP_RND_BITS = 28                           # vm.mmap_rnd_bits default
BRK_RND_RANGE = 1 << 30                      # arch_randomize_brk: 1 GiB (64-bit)
VSYSCALL_START, VSYSCALL_END = 0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000
VDSO_IMAGE_SIZE = 2 * PAGE_SIZE              # vdso_image_64.size
VVAR_PAGES, VVAR_VCLOCK_PAGES = 4, 2         # [vvar] data pages, [vvar_vclock]
ELF_PLATFORM = "x86_64"
ELF_NAUXV = 23                               # auxv entries with AT_NULL (create_elf_tables)
DEFAULT_STACK_RLIMIT = 8 << 20


def _page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & PAGE_MASK


def _enomem(message: str) -> SyscallError:
    return SyscallError("ENOMEM", message)


# ---------------------------------------------------------------------------
# Randomisation (mm/util.c, arch/x86/mm/mmap.c, arch/x86/kernel/process.c)
# ---------------------------------------------------------------------------
def get_random_long(rng) -> int:
    """An unsigned 64-bit random number from the generator."""
    return int(rng.integers(0, 1 << 64, dtype="uint64"))


def arch_mmap_rnd(rng) -> int:
    """arch/x86/mm/mmap.c:arch_rnd: up to 2^28 pages, 0 without randomisation."""
    if rng is None:
        return 0
    return (get_random_long(rng) & ((1 << MMAP_RND_BITS) - 1)) << PAGE_SHIFT


def randomize_page(start: int, range_: int, rng) -> int:
    """mm/util.c:randomize_page: a random page in [start, start + range)."""
    if start & ~PAGE_MASK:
        range_ -= _page_align(start) - start
        start = _page_align(start)
    pages = range_ >> PAGE_SHIFT
    if pages == 0 or rng is None:
        return start
    return start + ((get_random_long(rng) % pages) << PAGE_SHIFT)


def arch_randomize_brk(brk: int, rng) -> int:
    """arch/x86/kernel/process.c:arch_randomize_brk: within 1 GiB above brk."""
    return randomize_page(brk, BRK_RND_RANGE, rng)


def randomize_stack_top(stack_top: int, rng) -> int:
    """mm/util.c:randomize_stack_top: up to STACK_RND_MASK pages lower."""
    rnd = 0 if rng is None else (get_random_long(rng) & STACK_RND_MASK) << PAGE_SHIFT
    return _page_align(stack_top) - rnd


def arch_align_stack(sp: int, rng) -> int:
    """arch/x86/kernel/process.c:arch_align_stack: up to 8 KiB lower, 16-byte aligned."""
    if rng is not None:
        sp -= int(rng.integers(0, 8192))
    return sp & ~0xF


def stack_maxrandom_size(randomize: bool) -> int:
    """arch/x86/mm/mmap.c:stack_maxrandom_size."""
    return STACK_RND_MASK << PAGE_SHIFT if randomize else 0


# ---------------------------------------------------------------------------
# Layout (arch/x86/mm/mmap.c)
# ---------------------------------------------------------------------------
def mmap_base(rnd: int, stack_rlimit: int | None = DEFAULT_STACK_RLIMIT, *,
              randomize: bool = False, task_size: int = TASK_SIZE,
              stack_guard_gap: int = DEFAULT_STACK_GUARD_GAP) -> int:
    """The top of the top-down mmap area (arch/x86/mm/mmap.c:mmap_base).

    gap = RLIMIT_STACK + stack randomisation + stack_guard_gap, clamped to
    [128 MiB, 5/6 of the task size]; an unlimited stack (None) takes the
    upper clamp. With 8 MiB and no randomisation: 0x7ffff7fff000.
    """
    gap = (1 << 64) - 1 if stack_rlimit is None else stack_rlimit
    pad = stack_maxrandom_size(randomize) + stack_guard_gap
    if gap + pad < 1 << 64:
        gap += pad
    gap = min(max(gap, SIZE_128M), task_size // 6 * 5)
    return _page_align(task_size - gap - rnd)


def mmap_legacy_base(rnd: int, task_size: int = TASK_SIZE) -> int:
    """arch/x86/mm/mmap.c:mmap_legacy_base: TASK_UNMAPPED_BASE + rnd."""
    return _page_align(task_size // 3) + rnd


def arch_pick_mmap_layout(mm: VmaTree, rng=None, stack_rlimit: int | None = DEFAULT_STACK_RLIMIT,
                          legacy: bool = False) -> None:
    """Choose top-down (default) or legacy bottom-up and set mm.mmap_base.

    Models arch/x86/mm/mmap.c:arch_pick_mmap_layout; legacy is
    vm.legacy_va_layout or the ADDR_COMPAT_LAYOUT personality.
    """
    rnd = arch_mmap_rnd(rng)
    mm.topdown = not legacy
    mm.mmap_legacy_base = mmap_legacy_base(rnd)
    mm.mmap_base = mm.mmap_legacy_base if legacy else \
        mmap_base(rnd, stack_rlimit, randomize=rng is not None, stack_guard_gap=mm.stack_guard_gap)


# ---------------------------------------------------------------------------
# Finding room (mm/vma.c:unmapped_area*, mm/mmap.c, arch/x86/kernel/sys_x86_64.c)
# ---------------------------------------------------------------------------
@dataclass
class UnmappedAreaInfo:
    """struct vm_unmapped_area_info."""

    length: int
    low_limit: int
    high_limit: int
    topdown: bool = False
    align_mask: int = 0
    align_offset: int = 0
    start_gap: int = 0


def vm_start_gap(mm: VmaTree, vma: VMA) -> int:
    """include/linux/mm.h:vm_start_gap: a stack's start less its guard gap."""
    gap = mm.stack_guard_gap if vma.flags & VM_GROWSDOWN else 0
    if not gap and vma.flags & VM_STARTGAP_FLAGS:
        gap = PAGE_SIZE                         # shadow stack
    return max(vma.start - gap, 0)


def _area_highest(mm: VmaTree, low: int, high: int, size: int) -> tuple[int, int] | None:
    """mas_empty_area_rev: (end of the highest gap in [low, high) of >= size, index after).

    The maple tree finds it in O(log n) with its per-node largest-gap
    fields; here the walk down the gaps starts below the part of the window
    that an earlier search showed to hold only smaller gaps (mm.gap_cache,
    exact: entries are dropped when a gap can have grown, see _gaps_grew).
    """
    vmas = mm._vmas
    j = bisect.bisect_left(mm._starts, _gap_cache_start(mm, low, high, size))
    while True:
        gap_end = min(vmas[j].start if j < len(vmas) else 1 << 64, high)
        gap_start = max(vmas[j - 1].end if j > 0 else 0, low)
        if gap_end - gap_start >= size:
            _gap_cache_note(mm, low, high, size, gap_end)
            return gap_end, j
        if j == 0 or gap_end <= low:
            return None
        j -= 1


def _gap_cache_start(mm: VmaTree, low: int, high: int, size: int) -> int:
    """The lowest address above which no gap of size bytes is known to exist."""
    start = high
    for bound, addr in mm.gap_cache.get((low, high), ()):
        if bound <= size:
            start = min(start, addr)
    return start


def _gap_cache_note(mm: VmaTree, low: int, high: int, size: int, gap_end: int) -> None:
    """Every gap above gap_end was smaller than size: remember it."""
    entries = mm.gap_cache.setdefault((low, high), [])
    entries[:] = [(b, a) for b, a in entries if not (b >= size and a >= gap_end)]
    entries.append((size, gap_end))
    del entries[:-16]


def _area_lowest(mm: VmaTree, low: int, high: int, size: int) -> tuple[int, int] | None:
    """mas_empty_area: (start of the lowest gap in [low, high) of >= size, index after)."""
    vmas = mm._vmas
    j = mm._first_ending_after(low)
    while True:
        gap_start = max(vmas[j - 1].end if j > 0 else 0, low)
        gap_end = min(vmas[j].start if j < len(vmas) else 1 << 64, high)
        if gap_end - gap_start >= size:
            return gap_start, j
        if j >= len(vmas) or gap_start >= high:
            return None
        j += 1


def unmapped_area_topdown(mm: VmaTree, info: UnmappedAreaInfo) -> int:
    """mm/vma.c:unmapped_area_topdown: the highest fit; ENOMEM if none."""
    length = info.length + info.align_mask + info.start_gap
    low, high = max(info.low_limit, mm.mmap_min_addr), info.high_limit
    while True:
        found = _area_highest(mm, low, high, length)
        if found is None:
            raise _enomem(f"no gap of {info.length:#x} bytes below {info.high_limit:#x}")
        gap_end, j = found
        gap = gap_end - info.length
        gap -= (gap - info.align_offset) & info.align_mask
        nxt = mm._vmas[j] if j < len(mm._vmas) else None
        if nxt is not None and nxt.flags & VM_STARTGAP_FLAGS:
            if vm_start_gap(mm, nxt) < gap_end:
                high = vm_start_gap(mm, nxt)
                continue
        return gap


def unmapped_area(mm: VmaTree, info: UnmappedAreaInfo) -> int:
    """mm/vma.c:unmapped_area: the lowest fit; ENOMEM if none."""
    length = info.length + info.align_mask + info.start_gap
    low, high = max(info.low_limit, mm.mmap_min_addr), info.high_limit
    while True:
        found = _area_lowest(mm, low, high, length)
        if found is None:
            raise _enomem(f"no gap of {info.length:#x} bytes above {info.low_limit:#x}")
        gap_start, j = found
        gap = gap_start + info.start_gap
        gap += (info.align_offset - gap) & info.align_mask
        nxt = mm._vmas[j] if j < len(mm._vmas) else None
        if nxt is not None and nxt.flags & VM_STARTGAP_FLAGS:
            if vm_start_gap(mm, nxt) < gap + length - 1:
                low = nxt.end
                continue
        return gap


def vm_unmapped_area(mm: VmaTree, info: UnmappedAreaInfo) -> int:
    """mm/mmap.c:vm_unmapped_area."""
    return unmapped_area_topdown(mm, info) if info.topdown else unmapped_area(mm, info)


def mmap_address_hint_valid(addr: int, length: int) -> bool:
    """arch/x86/mm/mmap.c:mmap_address_hint_valid."""
    if TASK_SIZE - length < addr:
        return False
    return (addr > DEFAULT_MAP_WINDOW) == (addr + length > DEFAULT_MAP_WINDOW)


def _hint_is_free(mm: VmaTree, addr: int, length: int) -> bool:
    vma = mm.find_vma(addr)
    return vma is None or addr + length <= vm_start_gap(mm, vma)


def arch_get_unmapped_area(mm: VmaTree, addr: int, length: int, flags: int) -> int:
    """arch/x86/kernel/sys_x86_64.c:arch_get_unmapped_area (bottom-up)."""
    if flags & MAP_FIXED:
        return addr
    begin, end = mm.mmap_legacy_base, TASK_SIZE
    if flags & MAP_32BIT:
        begin, end = 0x40000000, 0x80000000
    if length > end:
        raise _enomem(f"mapping of {length:#x} bytes is larger than the address space")
    if addr:
        addr = _page_align(addr)
        if end - length >= addr and _hint_is_free(mm, addr, length):
            return addr
    return vm_unmapped_area(mm, UnmappedAreaInfo(length, begin, end))


def arch_get_unmapped_area_topdown(mm: VmaTree, addr: int, length: int, flags: int) -> int:
    """arch/x86/kernel/sys_x86_64.c:arch_get_unmapped_area_topdown.

    A free hint wins; else the highest gap below mmap_base; if there is
    none, the bottom-up search.
    """
    if length > TASK_SIZE:
        raise _enomem(f"mapping of {length:#x} bytes is larger than the address space")
    if flags & MAP_FIXED:
        return addr
    if not flags & MAP_32BIT:
        if addr:
            addr &= PAGE_MASK
            if mmap_address_hint_valid(addr, length) and _hint_is_free(mm, addr, length):
                return addr
        low = 1 << 32 if flags & MAP_ABOVE4G else PAGE_SIZE
        try:
            return vm_unmapped_area(mm, UnmappedAreaInfo(length, low, mm.mmap_base, topdown=True))
        except SyscallError:
            pass
    return arch_get_unmapped_area(mm, addr, length, flags)


def mm_get_unmapped_area(mm: VmaTree, addr: int, length: int, flags: int) -> int:
    """mm/mmap.c:mm_get_unmapped_area_vmflags: the layout's search."""
    if mm.topdown:
        return arch_get_unmapped_area_topdown(mm, addr, length, flags)
    return arch_get_unmapped_area(mm, addr, length, flags)


def thp_get_unmapped_area(mm: VmaTree, addr: int, length: int, pgoff: int, flags: int) -> int:
    """mm/huge_memory.c:thp_get_unmapped_area_vmflags: try PMD alignment first."""
    ret = _thp_get_unmapped_area(mm, addr, length, pgoff << PAGE_SHIFT, flags, PMD_SIZE)
    return ret if ret else mm_get_unmapped_area(mm, addr, length, flags)


def _thp_get_unmapped_area(mm: VmaTree, addr: int, length: int, off: int, flags: int,
                           size: int) -> int:
    """mm/huge_memory.c:__thp_get_unmapped_area; 0 means "retry unpadded"."""
    off_end, off_align = off + length, (off + size - 1) & ~(size - 1)
    if off_end <= off_align or off_end - off_align < size:
        return 0
    try:
        ret = mm_get_unmapped_area(mm, addr, length + size, flags)
    except SyscallError:
        return 0
    if ret == addr:
        return addr
    off_sub = (off - ret) & (size - 1)
    if mm.topdown and not off_sub:
        return ret + size
    return ret + off_sub


def get_unmapped_area(mm: VmaTree, file: Any, addr: int, length: int, pgoff: int,
                      flags: int) -> int:
    """Where a mapping of length bytes will go (mm/mmap.c:__get_unmapped_area).

    A file on a THP-capable filesystem goes through thp_get_unmapped_area;
    anonymous private memory without hint and a multiple of 2 MiB long too;
    everything else through the layout's search. ENOMEM when nothing fits,
    EINVAL for a misaligned MAP_FIXED address.
    """
    if length > TASK_SIZE:
        raise _enomem(f"mapping of {length:#x} bytes is larger than the address space")
    if file is None:
        pgoff = 0
    if file is not None and mm.thp and getattr(file, "thp_aligned", False):
        addr = thp_get_unmapped_area(mm, addr, length, pgoff, flags)
    elif file is None and not flags & MAP_SHARED and mm.thp and not addr \
            and length % PMD_SIZE == 0:
        addr = thp_get_unmapped_area(mm, addr, length, 0, flags)
    else:
        addr = mm_get_unmapped_area(mm, addr, length, flags)
    if addr > TASK_SIZE - length:
        raise _enomem(f"{addr:#x} + {length:#x} is beyond TASK_SIZE")
    if addr & ~PAGE_MASK:
        raise SyscallError("EINVAL", f"MAP_FIXED address {addr:#x} is not page aligned")
    if addr < mm.dac_mmap_min_addr and not mm.cap_sys_rawio:       # cap_mmap_addr
        raise SyscallError("EPERM", f"{addr:#x} is below vm.mmap_min_addr")
    return addr


# ---------------------------------------------------------------------------
# The system calls' VMA side (mm/mmap.c, mm/util.c)
# ---------------------------------------------------------------------------
def round_hint_to_min(mm: VmaTree, hint: int) -> int:
    """mm/mmap.c:round_hint_to_min: a hint below mmap_min_addr is raised to it."""
    hint &= PAGE_MASK
    if hint and hint < mm.mmap_min_addr:
        return _page_align(mm.mmap_min_addr)
    return hint


def do_mmap(mm: VmaTree, addr: int, length: int, prot: int, flags: int, file: Any = None,
            pgoff: int = 0, vm_flags: int = 0) -> tuple[int, int]:
    """mmap() after the file lookup: (address, bytes to populate).

    Models mm/mmap.c:do_mmap: flag checks, vm_flags from prot and flags,
    get_unmapped_area, MAP_FIXED_NOREPLACE (EEXIST), MAP_LOCKED limits,
    file mode checks, MAP_NORESERVE, then mmap_region. ``file`` is ignored
    with MAP_ANONYMOUS (as the fd is). The caller faults in the populate
    bytes (MAP_POPULATE, MAP_LOCKED) from the returned address.
    """
    if flags & MAP_ANONYMOUS:
        file = None
    elif file is None:
        raise SyscallError("EBADF", "mmap of a file without a file")
    if not length:
        raise SyscallError("EINVAL", "mmap of length 0")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr = round_hint_to_min(mm, addr)
    length = _page_align(length)
    if mm.map_count > mm.max_map_count:
        raise _enomem(f"map_count {mm.map_count} > max_map_count {mm.max_map_count}")
    vm_flags |= calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags, mm.thp) | mm.def_flags \
        | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    addr = get_unmapped_area(mm, file, addr, length, pgoff, flags)
    if flags & MAP_FIXED_NOREPLACE and mm.find_vma_intersection(addr, addr + length):
        raise SyscallError("EEXIST", f"MAP_FIXED_NOREPLACE at {addr:#x}: already mapped")
    if not mm.mlock_future_ok(bool(vm_flags & VM_LOCKED), length):
        raise SyscallError("EAGAIN", "MAP_LOCKED exceeds RLIMIT_MEMLOCK")
    vm_flags, pgoff = _mmap_type_flags(file, flags, prot, vm_flags, pgoff, addr)
    if flags & MAP_NORESERVE and mm.overcommit_memory != OVERCOMMIT_NEVER:
        vm_flags |= VM_NORESERVE
    addr = mm.mmap_region(addr, length, vm_flags, pgoff, file)
    populate = length if vm_flags & VM_LOCKED or \
        flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE else 0
    return addr, populate


def _mmap_type_flags(file: Any, flags: int, prot: int, vm_flags: int, pgoff: int,
                     addr: int) -> tuple[int, int]:
    """The MAP_SHARED/MAP_PRIVATE switch of do_mmap: (vm_flags, pgoff)."""
    mtype = flags & MAP_TYPE
    valid = (MAP_SHARED, MAP_PRIVATE) + (() if file is None else (MAP_SHARED_VALIDATE,))
    if mtype not in valid:
        raise SyscallError("EINVAL", f"mmap: bad mapping type {mtype:#x}")
    if file is None:
        if mtype == MAP_PRIVATE:
            return vm_flags, addr >> PAGE_SHIFT
        if vm_flags & VM_GROWSDOWN:
            raise SyscallError("EINVAL", "MAP_GROWSDOWN on shared memory")
        return vm_flags | VM_SHARED | VM_MAYSHARE, 0
    if mtype != MAP_PRIVATE:
        if prot & PROT_WRITE and not getattr(file, "writable", False):
            raise SyscallError("EACCES", f"{file.path}: not open for writing")
        vm_flags |= VM_SHARED | VM_MAYSHARE
        if not getattr(file, "writable", False):
            vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
    if not getattr(file, "readable", True):
        raise SyscallError("EACCES", f"{file.path}: not open for reading")
    if getattr(file, "noexec", False):
        if vm_flags & VM_EXEC:
            raise SyscallError("EPERM", f"{file.path}: on a noexec mount")
        vm_flags &= ~VM_MAYEXEC
    if vm_flags & VM_GROWSDOWN:
        raise SyscallError("EINVAL", "MAP_GROWSDOWN on a file")
    return vm_flags, pgoff


def vm_mmap(mm: VmaTree, file: Any, addr: int, length: int, prot: int, flags: int,
            offset: int = 0) -> int:
    """mm/util.c:vm_mmap: mmap with a byte offset; the address (populating is the caller's)."""
    if offset & ~PAGE_MASK or offset + _page_align(length) < offset:
        raise SyscallError("EINVAL", f"mmap offset {offset:#x} is not page aligned")
    return do_mmap(mm, addr, length, prot, flags, file, offset >> PAGE_SHIFT)[0]


def vm_munmap(mm: VmaTree, start: int, length: int):
    """munmap(2): mm/vma.c:do_vmi_munmap; the removed VMAs to zap."""
    return mm.do_vmi_munmap(start, length)


def sys_brk(mm: VmaTree, brk: int) -> int:
    """brk(2): the new break, or the old one when it cannot move.

    Models mm/mmap.c:SYSCALL_DEFINE1(brk): below start_brk or over
    RLIMIT_DATA nothing happens; shrinking unmaps the tail; growing needs
    room below the next VMA (and its guard gap) and goes through
    do_brk_flags, which extends the heap VMA. mm.brk keeps the unaligned
    value asked for.
    """
    origbrk = mm.brk
    if brk < mm.start_brk or not _data_rlimit_ok(mm, brk):
        return origbrk
    newbrk, oldbrk = _page_align(brk), _page_align(mm.brk)
    if oldbrk == newbrk:
        mm.brk = brk
        return brk
    try:
        if brk <= mm.brk:
            return _brk_shrink(mm, brk, newbrk, oldbrk)
        return _brk_grow(mm, brk, newbrk, oldbrk)
    except SyscallError:
        mm.brk = origbrk
        return origbrk


def _data_rlimit_ok(mm: VmaTree, brk: int) -> bool:
    """include/linux/mm.h:check_data_rlimit."""
    if mm.rlimit_data is None:
        return True
    return (brk - mm.start_brk) + (mm.end_data - mm.start_data) <= mm.rlimit_data


def _brk_shrink(mm: VmaTree, brk: int, newbrk: int, oldbrk: int) -> int:
    vma = mm.find_vma_intersection(newbrk, oldbrk)
    if vma is None or vma.start >= oldbrk:
        return mm.brk
    mm.brk = brk
    mm.do_vmi_munmap(newbrk, oldbrk - newbrk)
    return brk


def _brk_grow(mm: VmaTree, brk: int, newbrk: int, oldbrk: int) -> int:
    nxt = mm.find_vma_intersection(oldbrk, newbrk + PAGE_SIZE + mm.stack_guard_gap)
    if nxt is not None and newbrk + PAGE_SIZE > vm_start_gap(mm, nxt):
        return mm.brk
    _, prev = mm.find_vma_prev(oldbrk)
    brkvma = prev if prev is not None and prev.end > mm.start_brk else None
    mm.do_brk_flags(oldbrk, newbrk - oldbrk, 0, brkvma)
    mm.brk = brk
    return brk


def vm_brk_flags(mm: VmaTree, addr: int, request: int, flags: int = 0) -> None:
    """An anonymous mapping like brk's at a fixed address (mm/mmap.c:vm_brk_flags).

    Used by exec for .bss: unmaps what is there, then do_brk_flags with the
    previous VMA as the one to extend.
    """
    length = _page_align(request)
    if not length:
        return
    if flags & ~VM_EXEC:
        raise SyscallError("EINVAL", "vm_brk_flags takes only VM_EXEC")
    get_unmapped_area(mm, None, addr, length, 0, MAP_FIXED)
    if not mm.mlock_future_ok(bool(mm.def_flags & VM_LOCKED), length):
        raise SyscallError("EAGAIN", "brk exceeds RLIMIT_MEMLOCK")
    mm.do_vmi_munmap(addr, length)
    _, prev = mm.find_vma_prev(addr)
    mm.do_brk_flags(addr, length, flags, prev)


# ---------------------------------------------------------------------------
# ELF images
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ElfSegment:
    """One PT_LOAD program header."""

    offset: int
    vaddr: int
    filesz: int
    memsz: int
    flags: str                  # readelf's "R E", "RW", ...
    align: int = PAGE_SIZE

    @property
    def prot(self) -> int:
        """fs/binfmt_elf.c:make_prot."""
        return (PROT_READ if "R" in self.flags else 0) | (PROT_WRITE if "W" in self.flags else 0) \
            | (PROT_EXEC if "E" in self.flags else 0)


@dataclass(frozen=True)
class ElfImage:
    """What exec and ld.so need from an ELF file: type, PT_LOADs, RELRO, deps.

    ``type`` is "DYN" (PIE or shared object) or "EXEC"; ``relro`` is
    (vaddr, memsz) of PT_GNU_RELRO; ``needed`` the DT_NEEDED sonames;
    ``size``/``dev``/``ino`` describe the file for /proc/PID/maps.
    """

    path: str
    type: str
    segments: tuple[ElfSegment, ...]
    relro: tuple[int, int] | None = None
    interp: str | None = None
    needed: tuple[str, ...] = ()
    soname: str | None = None
    size: int = 0
    dev: tuple[int, int] = (0, 0)
    ino: int = 0
    exec_stack: bool = False

    def open(self) -> MappedFile:
        """A new open file of this image (a new ``struct file``)."""
        return MappedFile(self.path, self.size, self.dev, self.ino)

    def total_mapping_size(self) -> int:
        """fs/binfmt_elf.c:total_mapping_size: first page to end of the last segment."""
        lo = min(s.vaddr & PAGE_MASK for s in self.segments)
        return max(s.vaddr + s.memsz for s in self.segments) - lo


@lru_cache(maxsize=1)
def _builtin_data() -> dict:
    text = resources.files("linmem.data").joinpath("elf_images.json").read_text()
    return json.loads(text)


def builtin_images() -> list[str]:
    """The paths of the built-in ELF images."""
    return sorted(_builtin_data()["images"])


def resolve_path(name: str) -> str:
    """A built-in image's path from a path, an alias (/lib64/ld-linux...) or a soname."""
    data = _builtin_data()
    if name in data["images"]:
        return name
    for table in ("aliases", "sonames"):
        if name in data[table]:
            return data[table][name]
    for prefix in ("/bin/", "/lib/"):
        if name.startswith(prefix) and "/usr" + name in data["images"]:
            return "/usr" + name
    raise KeyError(f"no built-in ELF image for {name!r}; built in: {', '.join(builtin_images())}")


def builtin_image(name: str) -> ElfImage:
    """The built-in description of a program or library of the development machine."""
    path = resolve_path(name)
    d = _builtin_data()["images"][path]
    segs = tuple(ElfSegment(*s) for s in d["segments"])
    return ElfImage(path, d["type"], segs, tuple(d["relro"]) if d["relro"] else None,
                    d["interp"], tuple(d["needed"]), d["soname"], d["size"], tuple(d["dev"]),
                    d["ino"], d["exec_stack"])


def ld_so_anon_maps(program: str) -> tuple[int, int]:
    """Sizes of ld.so's early allocation and static TLS mappings for a program."""
    data = _builtin_data()["ld_so"]["anon_maps"]
    sizes = data.get(program)
    if sizes is None:
        try:
            sizes = data.get(resolve_path(program), [8192, 12288])
        except KeyError:                      # a program that is not built in
            sizes = [8192, 12288]
    return sizes[0], sizes[1]


# ---------------------------------------------------------------------------
# exec (fs/exec.c, fs/binfmt_elf.c, arch/x86/entry/vdso/vma.c)
# ---------------------------------------------------------------------------
@dataclass
class ExecInfo:
    """Where exec put things."""

    load_bias: int
    interp_base: int | None
    vdso_base: int
    stack_top: int
    files: dict[str, Any] = field(default_factory=dict)


def _stack_strings(stack_top: int, filename: str, argv: Sequence[str],
                   envp: Sequence[str]) -> tuple[int, int, int]:
    """fs/exec.c: filename, envp, argv copied below the top; (p, arg_len, env_len)."""
    p = stack_top - 8
    p -= len(filename.encode()) + 1
    env_len = sum(len(s.encode()) + 1 for s in envp)
    arg_len = sum(len(s.encode()) + 1 for s in argv)
    return p - env_len - arg_len, arg_len, env_len


def setup_stack(mm: VmaTree, filename: str, argv: Sequence[str], envp: Sequence[str],
                rng=None, exec_stack: bool = False) -> int:
    """The [stack] VMA of a new exec; returns bprm->p (mm.arg_start).

    Models fs/exec.c:__bprm_mm_init, copy_strings and setup_arg_pages: the
    strings sit below the (randomised) stack top; the VMA covers their pages
    plus 128 KiB (at most RLIMIT_STACK), flags VM_STACK_FLAGS.
    """
    stack_top = _page_align(arch_align_stack(randomize_stack_top(STACK_TOP, rng), rng))
    p, arg_len, env_len = _stack_strings(stack_top, filename, argv, envp)
    arg_pages = (stack_top - (p & PAGE_MASK)) >> PAGE_SHIFT
    rlim = (mm.rlimit_stack if mm.rlimit_stack is not None else 1 << 62) & PAGE_MASK
    size = min(rlim, (arg_pages << PAGE_SHIFT) + STACK_EXPAND)
    flags = (VM_STACK_FLAGS | mm.def_flags | (VM_EXEC if exec_stack else 0)) \
        | (VM_SOFTDIRTY if mm.soft_dirty else 0)
    vma = mm.insert_vm_struct(VMA(stack_top - size, stack_top, flags))
    mm.vm_stat_account(vma.flags, vma.pages)
    mm.arg_start, mm.arg_end = p, p + arg_len
    mm.env_start, mm.env_end = mm.arg_end, mm.arg_end + env_len
    return p


def create_elf_tables_sp(p: int, argc: int, envc: int, rng=None) -> int:
    """mm->start_stack: where argc sits (fs/binfmt_elf.c:create_elf_tables)."""
    p = arch_align_stack(p, rng)
    p -= len(ELF_PLATFORM) + 1                     # AT_PLATFORM string
    p -= 16                                        # AT_RANDOM bytes
    sp = p - 8 * 2 * ELF_NAUXV
    items = (argc + 1) + (envc + 1) + 1
    return (sp - 8 * items) & ~15


def elf_map(mm: VmaTree, file: Any, addr: int, seg: ElfSegment, prot: int, flags: int,
            total_size: int) -> int:
    """fs/binfmt_elf.c:elf_map: map a segment's file pages; the whole image first."""
    off_in_page = seg.vaddr & ~PAGE_MASK
    size = _page_align(seg.filesz + off_in_page)
    off = seg.offset - off_in_page
    addr &= PAGE_MASK
    if not size:
        return addr
    if total_size:
        total_size = _page_align(total_size)
        map_addr = vm_mmap(mm, file, addr, total_size, prot, flags, off)
        if total_size > size:
            mm.do_vmi_munmap(map_addr + size, total_size - size)
        return map_addr
    return vm_mmap(mm, file, addr, size, prot, flags, off)


def elf_load(mm: VmaTree, file: Any, addr: int, seg: ElfSegment, prot: int, flags: int,
             total_size: int) -> int:
    """fs/binfmt_elf.c:elf_load: the file part, then .bss past it with vm_brk_flags."""
    off_in_page = seg.vaddr & ~PAGE_MASK
    if seg.filesz:
        map_addr = elf_map(mm, file, addr, seg, prot, flags, total_size)
        zero_start = map_addr + off_in_page + seg.filesz
        zero_end = map_addr + off_in_page + seg.memsz
    else:
        map_addr = zero_start = addr & PAGE_MASK
        zero_end = zero_start + off_in_page + seg.memsz
    if seg.memsz > seg.filesz:
        zero_start, zero_end = _page_align(zero_start), _page_align(zero_end)
        vm_brk_flags(mm, zero_start, zero_end - zero_start, VM_EXEC if prot & PROT_EXEC else 0)
    return map_addr


def _load_binary_segments(mm: VmaTree, image: ElfImage, file: Any, has_interp: bool,
                          rng) -> int:
    """The PT_LOAD loop of load_elf_binary; returns the load bias."""
    load_bias, first = 0, True
    for seg in image.segments:
        flags = MAP_PRIVATE
        total = 0
        if not first:
            flags |= MAP_FIXED
        elif image.type == "EXEC":
            flags |= MAP_FIXED_NOREPLACE
        else:
            if has_interp:
                load_bias = ELF_ET_DYN_BASE + arch_mmap_rnd(rng)
                align = max((s.align for s in image.segments
                             if s.align & (s.align - 1) == 0), default=PAGE_SIZE)
                load_bias &= ~(_page_align(align) - 1)
                flags |= MAP_FIXED_NOREPLACE
            load_bias = (load_bias - seg.vaddr) & PAGE_MASK
            total = image.total_mapping_size()
        addr = elf_load(mm, file, load_bias + seg.vaddr, seg, seg.prot, flags, total)
        if first and image.type == "DYN" and not has_interp:
            load_bias = addr - (seg.vaddr & PAGE_MASK)
        first = False
    return load_bias


def _set_code_data(mm: VmaTree, image: ElfImage, load_bias: int) -> int:
    """start/end_code and start/end_data; returns the end of .bss (elf_brk)."""
    start_code, end_code, start_data, end_data, elf_brk = (1 << 64) - 1, 0, 0, 0, 0
    for s in image.segments:
        if "E" in s.flags:
            start_code = min(start_code, s.vaddr)
            end_code = max(end_code, s.vaddr + s.filesz)
        start_data = max(start_data, s.vaddr)
        end_data = max(end_data, s.vaddr + s.filesz)
        elf_brk = max(elf_brk, s.vaddr + s.memsz)
    mm.start_code, mm.end_code = start_code + load_bias, end_code + load_bias
    mm.start_data, mm.end_data = start_data + load_bias, end_data + load_bias
    return elf_brk + load_bias


def load_elf_interp(mm: VmaTree, image: ElfImage, file: Any) -> int:
    """fs/binfmt_elf.c:load_elf_interp: the dynamic linker, placed top-down."""
    total, load_addr, load_addr_set = image.total_mapping_size(), 0, False
    for seg in image.segments:
        flags = MAP_PRIVATE
        if image.type == "EXEC" or load_addr_set:
            flags |= MAP_FIXED
        elif image.type == "DYN":
            load_addr = -seg.vaddr              # the first segment goes where mmap likes
        map_addr = elf_load(mm, file, load_addr + seg.vaddr, seg, seg.prot, flags, total)
        total = 0
        if not load_addr_set and image.type == "DYN":
            load_addr, load_addr_set = map_addr - (seg.vaddr & PAGE_MASK), True
    return load_addr


def map_vdso(mm: VmaTree) -> int:
    """arch/x86/entry/vdso/vma.c:map_vdso: [vvar], [vvar_vclock], [vdso] together."""
    vvar_size = (VVAR_PAGES + VVAR_VCLOCK_PAGES) << PAGE_SHIFT
    addr = get_unmapped_area(mm, None, 0, VDSO_IMAGE_SIZE + vvar_size, 0, 0)
    mm.install_special_mapping(addr + vvar_size, VDSO_IMAGE_SIZE,
                               VM_READ | VM_EXEC | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC, "[vdso]")
    special = VM_READ | VM_MAYREAD | VM_IO | VM_DONTDUMP | VM_PFNMAP
    mm.install_special_mapping(addr, VVAR_PAGES << PAGE_SHIFT, special, "[vvar]")
    mm.install_special_mapping(addr + (VVAR_PAGES << PAGE_SHIFT), VVAR_VCLOCK_PAGES << PAGE_SHIFT,
                               special, "[vvar_vclock]")
    return addr


def load_elf_binary(mm: VmaTree, image: ElfImage, interp: ElfImage | None = None, *,
                    argv: Sequence[str] | None = None, envp: Sequence[str] = (),
                    filename: str | None = None, rng=None, randomize_va_space: int = 2,
                    open_file: Callable[[ElfImage], Any] | None = None,
                    legacy_layout: bool = False) -> ExecInfo:
    """Build the address space of a freshly exec'ed ELF program in an empty mm.

    Models fs/binfmt_elf.c:load_elf_binary with fs/exec.c: layout, stack,
    segments, interpreter, vDSO, start_stack, start_brk = brk (randomised
    with randomize_va_space 2). ``rng`` None disables randomisation (the
    ADDR_NO_RANDOMIZE personality). ``open_file`` gives the file object of an
    image (default: a new MappedFile each time).
    """
    opener = open_file or ElfImage.open
    if rng is not None and not randomize_va_space:
        rng = None
    argv = list(argv) if argv is not None else [image.path]
    filename = filename or image.path
    arch_pick_mmap_layout(mm, rng, mm.rlimit_stack, legacy_layout)
    p = setup_stack(mm, filename, argv, envp, rng, image.exec_stack)
    stack_top = mm.find_vma(p).end
    info = ExecInfo(0, None, 0, stack_top, {image.path: opener(image)})
    info.load_bias = _load_binary_segments(mm, image, info.files[image.path],
                                           interp is not None, rng)
    elf_brk = _set_code_data(mm, image, info.load_bias)
    if interp is not None:
        info.files[interp.path] = opener(interp)
        info.interp_base = load_elf_interp(mm, interp, info.files[interp.path])
    info.vdso_base = map_vdso(mm)
    mm.start_stack = create_elf_tables_sp(p, len(argv), len(envp), rng)
    _set_brk(mm, image, interp, elf_brk, rng if randomize_va_space > 1 else None)
    return info


def _set_brk(mm: VmaTree, image: ElfImage, interp: ElfImage | None, elf_brk: int, rng) -> None:
    """The brk handling at the end of load_elf_binary."""
    moved = False
    if image.type == "DYN" and interp is None:
        elf_brk, moved = ELF_ET_DYN_BASE, True
    mm.start_brk = mm.brk = _page_align(elf_brk)
    if rng is not None:
        if not moved:
            mm.start_brk = mm.brk = mm.brk + PAGE_SIZE
        mm.start_brk = mm.brk = arch_randomize_brk(mm.brk, rng)


# ---------------------------------------------------------------------------
# ld.so (glibc 2.36 elf/dl-map-segments.h, elf/dl-reloc.c, elf/rtld.c)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _LoadCmd:
    mapstart: int
    mapend: int
    dataend: int
    allocend: int
    mapoff: int
    prot: int


def _loadcmds(image: ElfImage) -> list[_LoadCmd]:
    """elf/dl-load.c: _dl_map_object_from_fd's struct loadcmd for each PT_LOAD."""
    out = []
    for s in image.segments:
        align = max(s.align, PAGE_SIZE)
        out.append(_LoadCmd(s.vaddr & ~(align - 1), _page_align(s.vaddr + s.filesz),
                            s.vaddr + s.filesz, s.vaddr + s.memsz, s.offset & ~(align - 1), s.prot))
    return out


def dl_map_object(mm: VmaTree, image: ElfImage, file: Any) -> int:
    """Map a shared library the way glibc's ld.so does; returns its l_addr.

    Models glibc elf/dl-map-segments.h:_dl_map_segments: one mapping of the
    whole span with the first segment's protection (placed by the kernel;
    over-aligned when p_align > PAGE_SIZE), PROT_NONE over the holes, each
    further segment mapped MAP_FIXED over it, .bss zero pages mapped
    anonymous MAP_FIXED.
    """
    cmds = _loadcmds(image)
    maplength = cmds[-1].allocend - cmds[0].mapstart
    l_map_start = _dl_map_segment(mm, image, cmds[0], maplength, file)
    l_addr = l_map_start - cmds[0].mapstart
    if any(a.mapend != b.mapstart for a, b in zip(cmds, cmds[1:])):
        mm.mprotect(l_addr + cmds[0].mapend, cmds[-1].mapstart - cmds[0].mapend, 0)
    for i, c in enumerate(cmds):
        if i and c.mapend > c.mapstart:
            vm_mmap(mm, file, l_addr + c.mapstart, c.mapend - c.mapstart, c.prot,
                    MAP_FIXED | MAP_PRIVATE, c.mapoff)
        _dl_zero_fill(mm, l_addr, c)
    return l_addr


def _dl_map_segment(mm: VmaTree, image: ElfImage, c: _LoadCmd, maplength: int, file: Any) -> int:
    """glibc elf/dl-map-segments.h:_dl_map_segment."""
    mapalign = max(max(s.align for s in image.segments), PAGE_SIZE)
    if mapalign <= PAGE_SIZE:
        return vm_mmap(mm, file, 0, maplength, c.prot, MAP_PRIVATE, c.mapoff)
    maplen = maplength + mapalign if maplength >= mapalign else 2 * mapalign
    start = vm_mmap(mm, None, 0, maplen, 0, MAP_PRIVATE | MAP_ANONYMOUS)
    aligned = (start + mapalign - 1) & ~(mapalign - 1)
    vm_mmap(mm, file, aligned, maplength, c.prot, MAP_PRIVATE | MAP_FIXED, c.mapoff)
    if aligned > start:
        mm.do_vmi_munmap(start, aligned - start)
    map_end = _page_align(aligned + maplength)
    if start + maplen > map_end:
        mm.do_vmi_munmap(map_end, start + maplen - map_end)
    return aligned


def _dl_zero_fill(mm: VmaTree, l_addr: int, c: _LoadCmd) -> None:
    """The .bss part of _dl_map_segments: anonymous pages past the file's."""
    if c.allocend <= c.dataend:
        return
    zeropage = _page_align(l_addr + c.dataend)
    zeroend = l_addr + c.allocend
    if zeroend > zeropage:
        vm_mmap(mm, None, zeropage, zeroend - zeropage, c.prot,
                MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED)


def dl_protect_relro(mm: VmaTree, image: ElfImage, l_addr: int) -> None:
    """glibc elf/dl-reloc.c:_dl_protect_relro: RELRO pages become read-only."""
    if image.relro is None:
        return
    start = (l_addr + image.relro[0]) & PAGE_MASK
    end = (l_addr + image.relro[0] + image.relro[1]) & PAGE_MASK
    if start != end:
        mm.mprotect(start, end - start, PROT_READ)


def library_load_order(program: ElfImage) -> list[ElfImage]:
    """The breadth-first DT_NEEDED order in which ld.so loads the libraries."""
    seen = {program.path, resolve_path(program.interp) if program.interp else None}
    order, queue = [], [program]
    while queue:
        for name in queue.pop(0).needed:
            lib = builtin_image(name)
            if lib.path not in seen:
                seen.add(lib.path)
                order.append(lib)
                queue.append(lib)
    return order


def ld_so_start(mm: VmaTree, program: ElfImage, info: ExecInfo, interp: ElfImage,
                open_file: Callable[[ElfImage], Any] | None = None) -> list[tuple[ElfImage, int]]:
    """What glibc's ld.so maps before main(): returns (library, l_addr) pairs.

    Its early allocation, /etc/ld.so.cache, each library (dl_map_object),
    the static TLS block, RELRO of libraries, program and itself, then
    /etc/ld.so.cache is unmapped.
    """
    opener = open_file or ElfImage.open
    early, tls = ld_so_anon_maps(program.path)
    vm_mmap(mm, None, 0, early, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    cache_size = _builtin_data()["ld_so"]["cache_size"]
    cache = MappedFile("/etc/ld.so.cache", cache_size)
    cache_addr = vm_mmap(mm, cache, 0, cache_size, PROT_READ, MAP_PRIVATE)
    loaded = []
    for lib in library_load_order(program):
        info.files[lib.path] = opener(lib)
        loaded.append((lib, dl_map_object(mm, lib, info.files[lib.path])))
    vm_mmap(mm, None, 0, tls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for lib, l_addr in reversed(loaded):
        dl_protect_relro(mm, lib, l_addr)
    dl_protect_relro(mm, program, info.load_bias)
    dl_protect_relro(mm, interp, info.interp_base or 0)
    mm.do_vmi_munmap(cache_addr, cache_size)
    return loaded


def exec_image(mm: VmaTree, program: str | ElfImage, argv: Sequence[str] | None = None,
               envp: Sequence[str] = (), *, rng=None, filename: str | None = None,
               open_file: Callable[[ElfImage], Any] | None = None) -> ExecInfo:
    """exec a built-in (or given) dynamically linked program, through ld.so's mappings.

    The address space equals the real program's at main() (before its own
    mallocs and mmaps). With ``rng=None`` it equals ``setarch -R``'s.
    """
    image = program if isinstance(program, ElfImage) else builtin_image(program)
    interp = builtin_image(image.interp) if image.interp else None
    info = load_elf_binary(mm, image, interp, argv=argv, envp=envp, rng=rng,
                           filename=filename, open_file=open_file)
    if interp is not None:
        ld_so_start(mm, image, info, interp, open_file)
    return info


def gate_vma() -> VMA:
    """The [vsyscall] page: listed last in maps, not part of the VMA tree."""
    return VMA(VSYSCALL_START, VSYSCALL_END, VM_EXEC, 0, name="[vsyscall]")
