"""Boot memory: the firmware memory map, zone spans and what the kernel keeps.

Before the buddy allocator exists, x86 Linux learns the RAM from the firmware's
e820 map, registers it with memblock, and allocates its early data from it
(``memblock_alloc``). Whatever memblock still holds as free is then handed to
the buddy allocator (``memblock_free_all``); what it reserved never is. This is
why MemTotal (the sum of the zones' ``managed`` pages) is below the RAM::

    RAM ─┬─ firmware holes (pfn 0, 640 KiB-1 MiB, the PCI hole below 4 GiB)
         │                                         -> not present
         └─ present ─┬─ memblock reservations      -> present, not managed
                     └─ free at the end of boot    -> managed (MemTotal)

The reservation model, item by item (x86-64, Linux 6.18; the constants were
calibrated on the reference machines, whose ``dmesg`` and /proc/zoneinfo are in
``tests/data/host-6.18``; a 24 GiB, 2-CPU machine reproduces their MemTotal of
24683656 kB exactly):

* **Firmware map** (a Firecracker/QEMU-style e820): pfn 0 is reserved, RAM runs
  to 0x9fc00, 0x9fc00-1 MiB is the legacy ROM hole; the rest of RAM starts at
  1 MiB and goes up to 3 GiB; beyond 3 GiB of RAM the remainder is placed above
  the 32-bit PCI hole, from 4 GiB.
* **The first 1 MiB** is always reserved on x86 (``x86/setup``: real-mode
  trampoline and BIOS corruption protection).
* **The kernel image**, resident text, rodata, data and bss (29292 KiB, after
  ``free_initmem`` has freed the init sections), loaded at 16 MiB.
* **The memmap**: 64 bytes of ``struct page`` per page frame of every present
  128 MiB section (SPARSEMEM_VMEMMAP), allocated top-down (1/64 of RAM).
* **Boot hash tables** (``alloc_large_system_hash``): the dentry cache (8-byte
  buckets, one per 8 KiB of low memory) and the inode cache (one per 16 KiB),
  each rounded up to a power of two.
* **Per-cpu areas**: 53 pages per CPU (the embedded first chunk).
* **Other early allocations**: 2265 pages (page tables of the direct map,
  NODE_DATA, mem_section, ACPI tables...), kept as one block.

The i386 model is the same map with 32-byte ``struct page`` entries and all
early allocations in low memory (below 896 MiB).

Deviations from Linux: no NUMA (one node); no deferred struct-page init (the
reference machines grow their zones lazily, ``deferred_init=lazy``: linmem gives
every zone its final size at boot); swiotlb is off, as on the reference machines
(``swiotlb=noforce``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linmem.units import PAGE_SHIFT

MiB = 1 << 20
GiB = 1 << 30

PAGES_PER_SECTION = 1 << (27 - PAGE_SHIFT)      # SECTION_SIZE_BITS = 27
KERNEL_LOAD_PFN = (16 * MiB) >> PAGE_SHIFT     # CONFIG_PHYSICAL_START
KERNEL_IMAGE_PAGES = 29292 // 4                 # 7323 pages resident after boot
PERCPU_PAGES_PER_CPU = 53
EARLY_MISC_PAGES = 2265
LOW_RAM_LIMIT = 3 * GiB                         # RAM below the PCI hole
HIGH_RAM_START = 4 * GiB
LEGACY_HOLE = (0x9F000 >> PAGE_SHIFT, (1 * MiB) >> PAGE_SHIFT)   # pfn 159..255

ZONES_X86_64 = ("DMA", "DMA32", "Normal", "Movable", "Device")
ZONES_I386 = ("DMA", "Normal", "HighMem", "Movable")
MAX_DMA_PFN = (16 * MiB) >> PAGE_SHIFT
MAX_DMA32_PFN = (4 * GiB) >> PAGE_SHIFT
MAX_LOWMEM_PFN_I386 = (896 * MiB) >> PAGE_SHIFT


@dataclass(frozen=True)
class Reservation:
    """A memblock reservation: ``[start, end)`` in pfns, with what it holds."""

    name: str
    start: int
    end: int

    @property
    def pages(self) -> int:
        return self.end - self.start


@dataclass
class BootLayout:
    """The physical memory of a machine as the kernel sees it after boot."""

    arch: str
    ram_bytes: int
    nr_cpus: int
    memory: list[tuple[int, int]]            # present RAM ranges [start, end) in pfns
    zone_names: tuple[str, ...]
    zone_bounds: list[tuple[int, int]]       # arch zone limits [start, end) in pfns
    reserved: list[Reservation] = field(default_factory=list)

    @property
    def max_pfn(self) -> int:
        return self.memory[-1][1]

    def zone_span(self, zid: int) -> tuple[int, int]:
        """``[zone_start_pfn, zone_end_pfn)``: the arch limits clipped to the node.

        Models mm/mm_init.c:zone_spanned_pages_in_node: holes inside the span
        (the PCI hole in DMA32) count as spanned, not present. Empty: (0, 0).
        """
        lo, hi = self.zone_bounds[zid]
        node_start, node_end = self.memory[0][0], self.memory[-1][1]
        start, end = max(lo, node_start), min(hi, node_end)
        return (start, end) if start < end else (0, 0)

    def spanned(self, zid: int) -> int:
        start, end = self.zone_span(zid)
        return end - start

    def present(self, zid: int) -> int:
        lo, hi = self.zone_bounds[zid]
        return self.present_between(lo, hi)

    def present_between(self, lo: int, hi: int) -> int:
        """Present pages in ``[lo, hi)``."""
        return sum(_overlap(s, e, lo, hi) for s, e in self.memory)

    def reserved_in(self, zid: int) -> int:
        """Present pages of zone ``zid`` that memblock reserved."""
        lo, hi = self.zone_bounds[zid]
        return sum(self.present_between(max(r.start, lo), min(r.end, hi))
                   for r in self.reserved if min(r.end, hi) > max(r.start, lo))

    def managed(self, zid: int) -> int:
        return self.present(zid) - self.reserved_in(zid)

    def free_ranges(self) -> list[tuple[int, int]]:
        """Present ranges minus reservations: what ``memblock_free_all`` releases."""
        cuts = sorted((r.start, r.end) for r in self.reserved)
        out = []
        for start, end in self.memory:
            pos = start
            for rs, re_ in cuts:
                if re_ <= pos or rs >= end:
                    continue
                if rs > pos:
                    out.append((pos, rs))
                pos = max(pos, re_)
            if pos < end:
                out.append((pos, end))
        return out


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def e820_memory(arch: str, ram_bytes: int) -> list[tuple[int, int]]:
    """Usable RAM ranges in pfns, as the firmware map reports them.

    Models the e820 map of the reference VMs (see the module docstring).
    """
    ram_pages = ram_bytes >> PAGE_SHIFT
    low_pages = min(ram_pages, LOW_RAM_LIMIT >> PAGE_SHIFT)
    ranges = [(1, LEGACY_HOLE[0]), (LEGACY_HOLE[1], low_pages)]
    if ram_pages > low_pages:
        start = HIGH_RAM_START >> PAGE_SHIFT
        ranges.append((start, start + ram_pages - low_pages))
    return ranges


def zone_bounds(arch: str, max_pfn: int) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    """Arch zone limits (arch/x86/mm/init.c zone_sizes_init)."""
    if arch == "i386":
        low = min(max_pfn, MAX_LOWMEM_PFN_I386)
        return ZONES_I386, [(0, MAX_DMA_PFN), (MAX_DMA_PFN, low), (low, max_pfn), (0, 0)]
    return ZONES_X86_64, [(0, MAX_DMA_PFN), (MAX_DMA_PFN, MAX_DMA32_PFN),
                          (MAX_DMA32_PFN, max(max_pfn, MAX_DMA32_PFN)), (0, 0), (0, 0)]


def large_system_hash_pages(nr_kernel_pages: int, scale: int, bucketsize: int = 8) -> int:
    """Pages of one boot hash table.

    Models mm/mm_init.c:alloc_large_system_hash with the default size: one
    bucket per 2^scale bytes of low memory (rounded up to 1 MiB), rounded up to
    a power of two.
    """
    entries = -(-nr_kernel_pages // 256) * 256        # round_up to 1 MiB of pages
    entries >>= scale - PAGE_SHIFT
    entries = max(entries, (1 << PAGE_SHIFT) // bucketsize)
    entries = 1 << (entries - 1).bit_length()          # roundup_pow_of_two
    return max(1, (entries * bucketsize) >> PAGE_SHIFT)


def memmap_pages(memory: list[tuple[int, int]], struct_page_bytes: int) -> int:
    """Pages of ``struct page`` arrays: one per frame of every present section.

    Models mm/sparse.c (SPARSEMEM_VMEMMAP): memmap exists per 128 MiB section
    that has memory in it.
    """
    sections = set()
    for start, end in memory:
        sections.update(range(start // PAGES_PER_SECTION, (end - 1) // PAGES_PER_SECTION + 1))
    return len(sections) * PAGES_PER_SECTION * struct_page_bytes >> PAGE_SHIFT


class _TopDown:
    """memblock's top-down allocator over what is still free below ``limit``."""

    def __init__(self, layout: BootLayout, limit: int):
        self.layout = layout
        self.limit = limit

    def alloc(self, name: str, pages: int) -> None:
        for start, end in reversed(self.layout.free_ranges()):
            end = min(end, self.limit)
            if end - start >= pages:
                self.layout.reserved.append(Reservation(name, end - pages, end))
                return
        raise ValueError(f"RAM too small for the kernel's boot allocations ({name})")


def boot_layout(arch: str, ram_bytes: int, nr_cpus: int) -> BootLayout:
    """The whole boot memory picture of a machine: ranges, zones, reservations."""
    memory = e820_memory(arch, ram_bytes)
    max_pfn = memory[-1][1]
    names, bounds = zone_bounds(arch, max_pfn)
    layout = BootLayout(arch, ram_bytes, nr_cpus, memory, names, bounds)
    layout.reserved.append(Reservation("first 1MiB", 0, (1 * MiB) >> PAGE_SHIFT))
    layout.reserved.append(Reservation("kernel image", KERNEL_LOAD_PFN,
                                       KERNEL_LOAD_PFN + KERNEL_IMAGE_PAGES))
    if arch == "i386":
        limit, struct_page = min(max_pfn, MAX_LOWMEM_PFN_I386), 32
    else:
        limit, struct_page = max_pfn, 64
    top = _TopDown(layout, limit)
    top.alloc("memmap", memmap_pages(memory, struct_page))
    nr_kernel_pages = sum(_overlap(s, e, 0, limit) for s, e in layout.free_ranges())
    top.alloc("dentry hash", large_system_hash_pages(nr_kernel_pages, 13))
    top.alloc("inode hash", large_system_hash_pages(nr_kernel_pages, 14))
    top.alloc("percpu", PERCPU_PAGES_PER_CPU * nr_cpus)
    top.alloc("early allocations", EARLY_MISC_PAGES)
    return layout
