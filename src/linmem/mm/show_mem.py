"""What the kernel reports about memory as a whole: si_mem_available, si_meminfo.

Kernel: mm/show_mem.c (si_mem_available, si_meminfo). Values are in pages.
"""

from __future__ import annotations

from linmem.mm import mmzone
from linmem.mm.vmstat import node_item


def si_mem_available(machine) -> int:
    """MemAvailable in pages: an estimate of memory usable without swapping.

    Models mm/show_mem.c:si_mem_available: free pages less the reserves
    (totalreserve_pages), plus the page cache and reclaimable kernel memory,
    each less the part reclaim could not take without falling below the low
    watermarks (half of it, at most the sum of the low marks).
    """
    pa = machine.page_alloc
    wmark_low = sum(pa.wmark(z.zid, mmzone.WMARK_LOW) for z in pa.zones)
    node = machine.node_stat
    available = pa.nr_free_pages() - pa.totalreserve_pages
    pagecache = int(node[node_item("nr_active_file")] + node[node_item("nr_inactive_file")])
    pagecache -= min(pagecache // 2, wmark_low)
    available += pagecache
    reclaimable = int(node[node_item("nr_slab_reclaimable")]
                      + node[node_item("nr_kernel_misc_reclaimable")])
    available += reclaimable - min(reclaimable // 2, wmark_low)
    return max(available, 0)
