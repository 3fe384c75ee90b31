"""Watermarks, lowmem_reserve and per-cpu list sizes against the real kernel.

The functions of linmem.mm.mmzone take each zone's managed pages and the
sysctls; fed with what this machine's kernel reports, they must give the
numbers its /proc/zoneinfo shows, to the page. The saved copy (Linux 6.18) is
always checked; the live /proc where it is readable.
"""

from __future__ import annotations

from math import isqrt
from pathlib import Path

import numpy as np
import pytest

from hostproc import HOST_DATA, parse_zoneinfo, read_sysctl
from linmem.kernel.machine import Machine
from linmem.mm import mmzone

SOURCES = [pytest.param(HOST_DATA, id="saved-6.18")]
if Path("/proc/zoneinfo").exists() and Path("/proc/sys/vm/min_free_kbytes").exists():
    SOURCES.append(pytest.param(Path("/proc"), id="live", marks=pytest.mark.realkernel))


def _read(root: Path):
    # Read zoneinfo and the sysctls together; the live kernel grows zones lazily,
    # so retry until a reading is consistent with itself.
    for _ in range(5):
        zones = parse_zoneinfo((root / "zoneinfo").read_text())
        mfk = read_sysctl(root, "min_free_kbytes")[0]
        wsf = read_sysctl(root, "watermark_scale_factor")[0]
        ratio = read_sysctl(root, "lowmem_reserve_ratio")
        if zones == parse_zoneinfo((root / "zoneinfo").read_text()):
            break
    names = tuple(z["name"] for z in zones)
    managed = np.array([z["managed"] for z in zones])
    return zones, names, managed, mfk, wsf, ratio


@pytest.mark.parametrize("root", SOURCES)
def test_watermarks_equal_the_kernels(root):
    zones, names, managed, mfk, wsf, _ = _read(root)
    wm = mmzone.setup_per_zone_wmarks(managed, names, mfk, wsf)
    for z, marks in zip(zones, wm):
        boost = z["boost"]
        assert [z["min"], z["low"], z["high"], z["promo"]] == [int(x) + boost for x in marks], z["name"]


@pytest.mark.parametrize("root", SOURCES)
def test_lowmem_reserve_equals_protection(root):
    zones, names, managed, _, _, ratio = _read(root)
    reserve = mmzone.setup_per_zone_lowmem_reserve(managed, ratio)
    assert [z["protection"] for z in zones] == reserve.tolist()


@pytest.mark.parametrize("root", SOURCES)
def test_pcp_batch_and_high_bounds_equal_the_kernels(root):
    zones, names, managed, mfk, wsf, _ = _read(root)
    wm = mmzone.setup_per_zone_wmarks(managed, names, mfk, wsf)
    for z, marks in zip(zones, wm):
        if not z["pcp"]:
            continue                                   # unpopulated zone
        ncpus = len(z["pcp"])
        batch, high_min, high_max = mmzone.pcp_high_and_batch(
            int(z["managed"]), int(marks[mmzone.WMARK_LOW]), ncpus, 0)
        threshold = mmzone.calculate_normal_threshold(int(z["managed"]), ncpus)
        for p in z["pcp"]:
            assert (p["batch"], p["high_min"], p["high_max"], p["threshold"]) == \
                (batch, high_min, high_max, threshold), z["name"]


def test_worked_example_16gib():
    """linux-mm.md §15.2: DMA 3840, DMA32 770000, Normal 3300000 managed, THP min 67584."""
    names = ("DMA", "DMA32", "Normal", "Movable", "Device")
    managed = [3840, 770000, 3300000, 0, 0]
    wm = mmzone.setup_per_zone_wmarks(managed, names, 67584, 10)
    assert wm[:3, :3].tolist() == [[15, 18, 21], [3193, 3991, 4789], [13686, 17107, 20528]]
    reserve = mmzone.setup_per_zone_lowmem_reserve(managed, [256, 256, 32, 0, 0])
    assert reserve[0, 1:3].tolist() == [3007, 15898] and reserve[1, 2] == 12890
    total = mmzone.calculate_totalreserve_pages(managed, reserve, wm[:, mmzone.WMARK_HIGH])
    assert total == 3840 + (12890 + 4789) + 20528


def _kernel_min_free_kbytes(managed_low: int) -> int:
    """calculate_min_free_kbytes written out: clamp(isqrt(lowmem_kb * 16), 128, 262144)."""
    return min(max(isqrt(managed_low * 4 * 16), 128), 262144)


@pytest.mark.parametrize("ram_mib", [64, 256, 1024, 4096, 16384, 65536, 1 << 20])
def test_default_min_free_kbytes_without_thp(ram_mib):
    m = Machine(ram=ram_mib << 20, thp="never")
    low = int(m.page_alloc.managed[:3].sum())
    assert m.sysctl["min_free_kbytes"] == _kernel_min_free_kbytes(low)


@pytest.mark.parametrize("ram_mib", [64, 256, 1024, 4096, 16384, 65536])
def test_default_min_free_kbytes_with_thp(ram_mib):
    m = Machine(ram=ram_mib << 20, thp="madvise")
    pa = m.page_alloc
    managed = pa.managed
    base = _kernel_min_free_kbytes(int(managed[:3].sum()))
    wm = mmzone.setup_per_zone_wmarks(managed, pa.zone_names, base, 10)
    free_buffer = sum(max(int(a) - int(h), 0) for a, h in zip(managed[:3], wm[:3, 2]))
    zones = int((managed[:3] > 0).sum())
    recommended = min(512 * zones * 2 + 512 * zones * 9, free_buffer // 20) * 4
    assert m.sysctl["min_free_kbytes"] == max(base, recommended)


def test_thp_value_of_big_machines_is_67584():
    """Three low zones: 11 pageblocks per zone x 3 = 16896 pages = 67584 KiB (the host's value)."""
    assert Machine(ram=24 << 30).sysctl["min_free_kbytes"] == 67584
    assert Machine(ram=24 << 30, thp="always").sysctl["min_free_kbytes"] == 67584


def test_sysctl_writes_recompute_the_zones():
    m = Machine(ram=8 << 30)
    pa = m.page_alloc
    m.write_sysctl("vm.min_free_kbytes", 131072)
    expect = mmzone.setup_per_zone_wmarks(pa.managed, pa.zone_names, 131072, 10)
    assert (pa.watermarks() == expect).all()
    m.write_sysctl("vm.watermark_scale_factor", 200)
    expect = mmzone.setup_per_zone_wmarks(pa.managed, pa.zone_names, 131072, 200)
    assert (pa.watermarks() == expect).all()
    assert pa.S.pcp[2, 0, 3] == mmzone.pcp_high_and_batch(
        int(pa.managed[2]), int(expect[2, 1]), 2, 0)[1]
    m.write_sysctl("vm.lowmem_reserve_ratio", [128, 64, 32, 0, 0])
    assert pa.lowmem_reserve[1, 2] == int(pa.managed[2]) // 64
    assert pa.totalreserve_pages == mmzone.calculate_totalreserve_pages(
        pa.managed, pa.lowmem_reserve, expect[:, 2])
    m.write_sysctl("vm.percpu_pagelist_high_fraction", 8)
    assert pa.S.pcp[2, 0, 3] == pa.S.pcp[2, 0, 4] == int(pa.managed[2]) // 8 // 2


def test_highmem_zone_min_is_capped():
    """HighMem's min is managed/1024 clamped to 32..128; its gaps still scale."""
    m = Machine(ram=3 << 30, arch="i386")
    pa = m.page_alloc
    assert pa.zone_names == ("DMA", "Normal", "HighMem", "Movable")
    high = pa.zone_names.index("HighMem")
    managed = int(pa.managed[high])
    assert pa.watermarks()[high, 0] == min(max(managed // 1024, 32), 128)
