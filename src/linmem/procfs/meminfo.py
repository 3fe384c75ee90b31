"""/proc/meminfo, as fs/proc/meminfo.c:meminfo_proc_show prints it (Linux 6.18).

Every field the reference x86-64 kernel prints, in its order, from the model's
counters (pages, converted to kB only here). Conditional fields follow that
kernel's configuration: CONFIG_ZSWAP (Zswap, Zswapped) and the balloon counter
are there; HardwareCorrupted, CMA and Unaccepted are not. On i386 the HIGHMEM
fields appear and the direct map is reported in 4k and 2M pages.
"""

from __future__ import annotations

from linmem.mm.show_mem import si_mem_available
from linmem.mm.util import vm_commit_limit
from linmem.mm.vmstat import NR_MLOCK, node_item

VMALLOC_TOTAL_KB = {"x86_64": 34359738367, "i386": 122880}


def _n(machine, name: str) -> int:
    return int(machine.node_stat[node_item(name)])


def _show(label: str, kb: int) -> str:
    """show_val_kb(): a 16-column label, the value right-aligned in 8, " kB"."""
    return f"{label:<16}{kb:>8} kB\n"


def meminfo_fields(machine) -> list[tuple[str, int]]:
    """(label, kB) pairs of the kB-valued lines, in the kernel's order."""
    pa = machine.page_alloc
    K = lambda pages: int(pages) << 2  # noqa: E731  (the kernel's K())
    file_pages = _n(machine, "nr_file_pages")
    swapcached = _n(machine, "nr_swapcached")
    buffers = machine.nr_blockdev_pages
    cached = max(file_pages - swapcached - buffers, 0)
    lru = {name: _n(machine, f"nr_{name}") for name in
           ("active_anon", "inactive_anon", "active_file", "inactive_file", "unevictable")}
    sreclaim, sunreclaim = _n(machine, "nr_slab_reclaimable"), _n(machine, "nr_slab_unreclaimable")
    misc_reclaim = _n(machine, "nr_kernel_misc_reclaimable")
    fields = [
        ("MemTotal:", K(machine.totalram_pages)),
        ("MemFree:", K(pa.nr_free_pages())),
        ("MemAvailable:", K(si_mem_available(machine))),
        ("Buffers:", K(buffers)),
        ("Cached:", K(cached)),
        ("SwapCached:", K(swapcached)),
        ("Active:", K(lru["active_anon"] + lru["active_file"])),
        ("Inactive:", K(lru["inactive_anon"] + lru["inactive_file"])),
        ("Active(anon):", K(lru["active_anon"])),
        ("Inactive(anon):", K(lru["inactive_anon"])),
        ("Active(file):", K(lru["active_file"])),
        ("Inactive(file):", K(lru["inactive_file"])),
        ("Unevictable:", K(lru["unevictable"])),
        ("Mlocked:", K(pa.S.zstat[:, NR_MLOCK].sum())),
    ]
    if machine.arch == "i386":
        fields += _highmem_fields(machine)
    fields += [
        ("SwapTotal:", K(machine.total_swap_pages)),
        ("SwapFree:", K(machine.nr_swap_pages)),
        ("Zswap:", 0),
        ("Zswapped:", 0),
        ("Dirty:", K(_n(machine, "nr_dirty"))),
        ("Writeback:", K(_n(machine, "nr_writeback"))),
        ("AnonPages:", K(_n(machine, "nr_anon_pages"))),
        ("Mapped:", K(_n(machine, "nr_mapped"))),
        ("Shmem:", K(_n(machine, "nr_shmem"))),
        ("KReclaimable:", K(sreclaim + misc_reclaim)),
        ("Slab:", K(sreclaim + sunreclaim)),
        ("SReclaimable:", K(sreclaim)),
        ("SUnreclaim:", K(sunreclaim)),
        ("KernelStack:", _n(machine, "nr_kernel_stack")),
        ("PageTables:", K(_n(machine, "nr_page_table_pages"))),
        ("SecPageTables:", K(_n(machine, "nr_sec_page_table_pages"))),
        ("NFS_Unstable:", 0),
        ("Bounce:", 0),
        ("WritebackTmp:", 0),
        ("CommitLimit:", K(vm_commit_limit(machine))),
        ("Committed_AS:", K(machine.committed_as)),
        ("VmallocTotal:", VMALLOC_TOTAL_KB[machine.arch]),
        ("VmallocUsed:", 0),
        ("VmallocChunk:", 0),
        ("Percpu:", K(_percpu_pages(machine))),
        ("AnonHugePages:", K(_n(machine, "nr_anon_transparent_hugepages"))),
        ("ShmemHugePages:", K(_n(machine, "nr_shmem_hugepages"))),
        ("ShmemPmdMapped:", K(_n(machine, "nr_shmem_pmdmapped"))),
        ("FileHugePages:", K(_n(machine, "nr_file_hugepages"))),
        ("FilePmdMapped:", K(_n(machine, "nr_file_pmdmapped"))),
        ("Balloon:", K(_n(machine, "nr_balloon_pages"))),
    ]
    return fields


def _percpu_pages(machine) -> int:
    return sum(r.pages for r in machine.layout.reserved if r.name == "percpu")


def _highmem_fields(machine) -> list[tuple[str, int]]:
    """HighTotal/HighFree/LowTotal/LowFree (CONFIG_HIGHMEM, si_meminfo)."""
    pa = machine.page_alloc
    zid = pa.zone_names.index("HighMem")
    high_total = int(pa.managed[zid])
    high_free = pa.nr_free_pages(zid)
    return [("HighTotal:", high_total << 2), ("HighFree:", high_free << 2),
            ("LowTotal:", (machine.totalram_pages - high_total) << 2),
            ("LowFree:", (pa.nr_free_pages() - high_free) << 2)]


def direct_map_kb(machine) -> list[tuple[str, int]]:
    """The direct mapping of RAM by page size (arch/x86/mm/pat/set_memory.c).

    XXX: a model, not a replay of init_mem_mapping: the first GiB holds 20 MiB
    of 4k pages (the first 2 MiB and the kernel image, split for its
    protections) and 2M pages for the rest; every other whole GiB of RAM is one
    1G page, a partial GiB 2M pages. i386 (PAE) maps low memory only, in 4k and
    2M pages.
    """
    mib, gib = 1 << 20, 1 << 30
    first_4k = 20 * mib
    ranges = [(s << 12, e << 12) for s, e in machine.layout.memory]
    if machine.arch == "i386":
        mapped = sum(max(0, min(e, 896 * mib) - s) for s, e in ranges)
        return [("DirectMap4k:", first_4k >> 10),
                ("DirectMap2M:", -(-(mapped - first_4k) // (2 * mib)) * (2 * mib) >> 10)]
    size_1g = size_2m = 0
    for start, end in ranges:
        start = max(start, gib)                       # the first GiB is counted apart
        whole = max(0, end // gib - -(-start // gib)) * gib
        size_1g += whole
        size_2m += max(0, end - start - whole)
    size_2m += sum(max(0, min(e, gib) - s) for s, e in ranges) - first_4k
    round_2m = lambda x: -(-x // (2 * mib)) * 2 * mib  # noqa: E731
    return [("DirectMap4k:", first_4k >> 10), ("DirectMap2M:", round_2m(size_2m) >> 10),
            ("DirectMap1G:", size_1g >> 10)]


def render_meminfo(machine) -> str:
    """The text of /proc/meminfo."""
    out = [_show(label, kb) for label, kb in meminfo_fields(machine)]
    out.append("HugePages_Total:       0\nHugePages_Free:        0\n"
               "HugePages_Rsvd:        0\nHugePages_Surp:        0\n")
    out.append(_show("Hugepagesize:", 2048))
    out.append(_show("Hugetlb:", 0))
    out += [_show(label, kb) for label, kb in direct_map_kb(machine)]
    return "".join(out)
