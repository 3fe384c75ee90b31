"""/proc/zoneinfo (mm/vmstat.c zoneinfo_show_print, Linux 6.18).

Every zone of the node, populated or not; the node's counters under its first
populated zone; then per zone the free pages, watermarks (with the boost),
spans, protection (lowmem_reserve), the zone counters, and each CPU's pageset.
"""

from __future__ import annotations

from linmem.engine import buddy as B
from linmem.mm import mmzone
from linmem.mm.vmstat import (NODE_ITEMS, NR_FREE_PAGES, NUMA_ITEMS, THP_NODE_ITEMS, ZONE_ITEMS,
                              item_exists)

NODE = 0
HPAGE_PMD_NR = 512


def _item(name: str, value: int) -> str:
    return f"\n      {name:<12} {value}"


def _node_stats(machine) -> str:
    out = ["\n  per-node stats"]
    for i, name in enumerate(NODE_ITEMS):
        if not item_exists(name, machine.arch):
            continue
        value = int(machine.node_stat[i])
        out.append(_item(name, value // HPAGE_PMD_NR if name in THP_NODE_ITEMS else value))
    return "".join(out)


def _zone_header(machine, z) -> str:
    pa = machine.page_alloc
    zs = pa.S.zs[z.zid]
    marks = [pa.wmark(z.zid, w) for w in range(mmzone.NR_WMARK)]
    protection = ", ".join(str(int(r)) for r in pa.lowmem_reserve[z.zid])
    return (f"\n  pages free     {int(pa.S.zstat[z.zid, NR_FREE_PAGES])}"
            f"\n        boost    {int(zs[B.ZS_BOOST])}"
            f"\n        min      {marks[0]}"
            f"\n        low      {marks[1]}"
            f"\n        high     {marks[2]}"
            f"\n        promo    {marks[3]}"
            f"\n        spanned  {z.spanned}"
            f"\n        present  {z.present}"
            f"\n        managed  {int(zs[B.ZS_MANAGED])}"
            f"\n        cma      0"
            f"\n        protection: ({protection})")


def _pagesets(machine, z) -> str:
    pa = machine.page_alloc
    threshold = mmzone.calculate_normal_threshold(int(pa.S.zs[z.zid, B.ZS_MANAGED]),
                                                  machine.nr_cpus)
    out = ["\n  pagesets"]
    for cpu in range(machine.nr_cpus):
        p = pa.S.pcp[z.zid, cpu]
        out.append(f"\n    cpu: {cpu}"
                   f"\n              count:    {int(p[B.P_COUNT])}"
                   f"\n              high:     {int(p[B.P_HIGH])}"
                   f"\n              batch:    {int(p[B.P_BATCH])}"
                   f"\n              high_min: {int(p[B.P_HIGH_MIN])}"
                   f"\n              high_max: {int(p[B.P_HIGH_MAX])}"
                   f"\n  vm stats threshold: {threshold}")
    return "".join(out)


def render_zoneinfo(machine) -> str:
    """The text of /proc/zoneinfo."""
    pa = machine.page_alloc
    first = next((z for z in pa.zones if z.populated), None)
    out = []
    for z in pa.zones:
        out.append(f"Node {NODE}, zone {z.name:>8}")
        if z is first:
            out.append(_node_stats(machine))
        out.append(_zone_header(machine, z))
        if not z.populated:
            out.append("\n")
            continue
        zstat = pa.S.zstat[z.zid]
        out += [_item(name, int(zstat[i])) for i, name in enumerate(ZONE_ITEMS + NUMA_ITEMS)
                if item_exists(name, machine.arch)]
        out.append(_pagesets(machine, z))
        out.append(f"\n  node_unreclaimable:  {int(machine.node_unreclaimable)}"
                   f"\n  start_pfn:           {z.start_pfn}\n")
    return "".join(out)
