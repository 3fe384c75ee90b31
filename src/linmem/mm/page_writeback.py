"""Dirty-memory limits (mm/page-writeback.c).

Only the global thresholds exist so far (shown in /proc/vmstat); dirtying,
writeback and throttling come with the page cache.
"""

from __future__ import annotations

from linmem.mm.mmzone import WMARK_HIGH
from linmem.mm.vmstat import NR_ZONE_ACTIVE_FILE, NR_ZONE_INACTIVE_FILE, node_item
from linmem.units import PAGE_SIZE


def global_dirtyable_memory(machine) -> int:
    """Pages that may hold dirty data.

    Models global_dirtyable_memory(): free pages above the reserves plus the
    file LRU; HighMem is left out unless vm.highmem_is_dirtyable.
    """
    pa = machine.page_alloc
    x = pa.nr_free_pages()
    x -= min(x, pa.totalreserve_pages)
    node = machine.node_stat
    x += int(node[node_item("nr_inactive_file")] + node[node_item("nr_active_file")])
    if "HighMem" in pa.zone_names and not machine.sysctl.get("highmem_is_dirtyable", 0):
        x -= min(x, highmem_dirtyable_memory(machine))
    return x + 1


def highmem_dirtyable_memory(machine) -> int:
    """Models highmem_dirtyable_memory(): HighMem free above its high mark, plus
    its file LRU pages."""
    pa = machine.page_alloc
    zid = pa.zone_names.index("HighMem")
    if not pa.zones[zid].populated:
        return 0
    free = pa.nr_free_pages(zid)
    x = free - min(free, pa.wmark(zid, WMARK_HIGH))
    return x + int(pa.S.zstat[zid, NR_ZONE_INACTIVE_FILE] + pa.S.zstat[zid, NR_ZONE_ACTIVE_FILE])


def global_dirty_limits(machine) -> tuple[int, int]:
    """(background threshold, dirty threshold) in pages.

    Models domain_dirty_limits() for the global domain: *_bytes when set, else
    the ratio (kept per PAGE_SIZE for precision) of dirtyable memory; the
    background threshold is at most half the dirty one.
    """
    available = global_dirtyable_memory(machine)
    sysctl = machine.sysctl
    ratio = int(sysctl["dirty_ratio"]) * PAGE_SIZE // 100
    bg_ratio = int(sysctl["dirty_background_ratio"]) * PAGE_SIZE // 100
    nbytes, bg_bytes = int(sysctl["dirty_bytes"]), int(sysctl["dirty_background_bytes"])
    thresh = -(-nbytes // PAGE_SIZE) if nbytes else ratio * available // PAGE_SIZE
    bg = -(-bg_bytes // PAGE_SIZE) if bg_bytes else bg_ratio * available // PAGE_SIZE
    if bg >= thresh:
        bg = thresh // 2
    return bg, thresh
