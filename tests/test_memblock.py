"""Boot memory: zone spans, present and managed pages, and what the kernel keeps."""

from __future__ import annotations

import pytest

from hostproc import HOST_DATA, parse_zoneinfo
from linmem.kernel.machine import Machine
from linmem.mm.memblock import boot_layout, large_system_hash_pages, memmap_pages


def test_24gib_machine_matches_the_reference_host():
    """The reference VM (24 GiB, 2 CPUs): same spans and present pages per zone,
    DMA managed 3840, and MemTotal 24683656 kB, as its kernel reports."""
    host = {z["name"]: z for z in parse_zoneinfo((HOST_DATA / "zoneinfo").read_text())}
    meminfo = (HOST_DATA / "meminfo").read_text().split("\n")[0]
    m = Machine(ram=24 << 30, cpus=2)
    for z in m.page_alloc.zones:
        assert (z.spanned, z.present) == (host[z.name]["spanned"], host[z.name]["present"]), z.name
    assert m.page_alloc.managed[0] == host["DMA"]["managed"] == 3840
    assert meminfo.split()[1] == str(m.totalram_pages * 4) == "24683656"


def test_reference_host_boot_reservations():
    """dmesg of the reference host: 98304 pages of memmap (nr_memmap_boot_pages),
    a 2^22-entry dentry and a 2^21-entry inode hash (32 MiB and 16 MiB)."""
    layout = boot_layout("x86_64", 24 << 30, 2)
    sizes = {r.name: r.pages for r in layout.reserved}
    assert sizes["memmap"] == 98304
    assert sizes["dentry hash"] == (1 << 22) * 8 // 4096
    assert sizes["inode hash"] == (1 << 21) * 8 // 4096


@pytest.mark.parametrize("ram", [64 << 20, 200 << 20, 1 << 30, 3 << 30, 5 << 30, 64 << 30, 1 << 40])
def test_layout_is_consistent(ram):
    layout = boot_layout("x86_64", ram, 2)
    present = sum(e - s for s, e in layout.memory)
    assert present == (ram >> 12) - 98                       # pfn 0 and the 640K-1M hole
    assert sum(layout.present(z) for z in range(5)) == present
    reserved = sorted((r.start, r.end) for r in layout.reserved)
    assert all(a[1] <= b[0] for a, b in zip(reserved, reserved[1:])), "reservations overlap"
    managed = sum(layout.managed(z) for z in range(5))
    free = sum(e - s for s, e in layout.free_ranges())
    assert managed == free < present
    assert layout.present(3) == layout.present(4) == 0       # Movable, Device empty


def test_zone_boundaries_x86_64():
    layout = boot_layout("x86_64", 8 << 30, 2)
    assert layout.zone_span(0) == (1, 4096)                  # DMA: below 16 MiB
    assert layout.zone_span(1) == (4096, 1 << 20)            # DMA32: to 4 GiB, PCI hole spanned
    assert layout.zone_span(2) == (1 << 20, (1 << 20) + (5 << 18))   # Normal from 4 GiB


def test_zone_boundaries_i386():
    layout = boot_layout("i386", 2 << 30, 2)
    assert layout.zone_names == ("DMA", "Normal", "HighMem", "Movable")
    assert layout.zone_span(1) == (4096, 896 << 8)           # Normal up to 896 MiB
    assert layout.zone_span(2) == (896 << 8, 2 << 18)        # HighMem above
    memmap = next(r for r in layout.reserved if r.name == "memmap")
    assert memmap.end <= 896 << 8                            # early allocations in lowmem


def test_small_machine_has_no_normal_zone():
    m = Machine(ram=64 << 20)
    assert [z.populated for z in m.page_alloc.zones] == [True, True, False, False, False]
    assert 0 < m.totalram_pages < (64 << 20) >> 12


def test_memmap_and_hash_formulas():
    # 1/64 of every present 128 MiB section
    assert memmap_pages([(0, 32768)], 64) == 512
    assert memmap_pages([(1, 159), (256, 300)], 64) == 512
    # one bucket per 8 KiB (dentry) of low memory, rounded up to a power of two
    assert large_system_hash_pages(3 << 18, 13) == (1 << 19) * 8 // 4096


def test_frame_table_fits_32_bytes_per_frame():
    from linmem.mm.frames import BYTES_PER_FRAME, FrameTable
    assert BYTES_PER_FRAME <= 32
    assert FrameTable.zeros(1 << 20).nbytes() == BYTES_PER_FRAME << 20


def test_one_tebibyte_machine_boots():
    m = Machine(ram=1 << 40, cpus=8)
    pa = m.page_alloc
    assert m.totalram_pages == pa.nr_free_pages()
    # the square-root rule (4 * sqrt(lowmem KiB) = 129944 KiB here, below the
    # 256 MiB clamp) is above THP's recommendation, which never lowers it
    from math import isqrt
    assert m.sysctl["min_free_kbytes"] == min(isqrt(m.totalram_pages * 4 * 16), 262144)
