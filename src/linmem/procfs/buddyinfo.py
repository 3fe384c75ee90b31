"""/proc/buddyinfo and /proc/pagetypeinfo (mm/vmstat.c frag_show_print,
pagetypeinfo_showfree_print, pagetypeinfo_showblockcount_print)."""

from __future__ import annotations

from linmem.engine.buddy import MIGRATE_TYPES, MIGRATETYPE_NAMES, NR_PAGE_ORDERS, PAGEBLOCK_ORDER

NODE = 0
FREELIST_CAP = 100000     # pagetypeinfo stops counting a list here (">100000")


def render_buddyinfo(machine) -> str:
    """One line per populated zone: free blocks per order."""
    pa = machine.page_alloc
    lines = []
    for z in pa.zones:
        if not z.populated:
            continue
        counts = "".join(f"{int(n):6d} " for n in pa.free_area_nr_free(z.zid))
        lines.append(f"Node {NODE}, zone {z.name:>8} {counts}\n")
    return "".join(lines)


def render_pagetypeinfo(machine) -> str:
    """Free blocks per order and migratetype, then pageblocks per migratetype."""
    pa = machine.page_alloc
    out = [f"Page block order: {PAGEBLOCK_ORDER}\n", f"Pages per block:  {1 << PAGEBLOCK_ORDER}\n",
           "\n", f"{'Free pages count per migrate type at order':<43} "]
    out += [f"{o:6d} " for o in range(NR_PAGE_ORDERS)]
    out.append("\n")
    populated = [z for z in pa.zones if z.populated]
    for z in populated:
        for mt in range(MIGRATE_TYPES):
            out.append(f"Node {NODE:4d}, zone {z.name:>8}, type {MIGRATETYPE_NAMES[mt]:>12} ")
            for o in range(NR_PAGE_ORDERS):
                n = int(pa.S.nfree[z.zid, o, mt])
                out.append(f">{FREELIST_CAP:6d} " if n >= FREELIST_CAP else f"{n:6d} ")
            out.append("\n")
    out.append(f"\n{'Number of blocks type ':<23}")
    out += [f"{name:>12} " for name in MIGRATETYPE_NAMES]
    out.append("\n")
    for z in populated:
        counts = pa.pageblock_counts(z.zid)
        out.append(f"Node {NODE}, zone {z.name:>8} " + "".join(f"{int(c):12d} " for c in counts) + "\n")
    return "".join(out)
