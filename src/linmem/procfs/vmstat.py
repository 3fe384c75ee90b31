"""/proc/vmstat (mm/vmstat.c vmstat_start/vmstat_show, Linux 6.18).

"name value" lines in the order of the kernel's vmstat_text: the zone items and
NUMA events summed over zones, the node items (THP ones in huge pages), the
dirty thresholds and memmap sizes computed when read, the VM events, and the
legacy ``nr_unstable 0``. Event names that carry a zone (pgalloc_*,
allocstall_*, pgskip_*) follow the machine's zones.
"""

from __future__ import annotations

from linmem.mm.page_writeback import global_dirty_limits
from linmem.mm.vmstat import (NODE_ITEMS, NUMA_ITEMS, THP_NODE_ITEMS, VM_EVENTS, ZONE_ITEMS,
                              item_exists)

HPAGE_PMD_NR = 512
_ZONE_EVENT_PREFIXES = ("pgalloc_", "allocstall_", "pgskip_")
_X86_64_ZONE_SUFFIXES = ("dma", "dma32", "normal", "movable", "device")


def vm_event_names(zone_names: tuple[str, ...]) -> list[str | None]:
    """VM event names for this machine's zones (None: the slot does not exist).

    The kernel expands FOR_ALL_ZONES() over the configured zones: on x86-64
    dma, dma32, normal, movable, device; on i386 dma, normal, high, movable.
    """
    suffixes = {"DMA": "dma", "DMA32": "dma32", "Normal": "normal", "HighMem": "high",
                "Movable": "movable", "Device": "device"}
    zone_suffixes = [suffixes[n] for n in zone_names]
    names: list[str | None] = []
    for name in VM_EVENTS:
        prefix = next((p for p in _ZONE_EVENT_PREFIXES if name.startswith(p)), None)
        if prefix is None:
            names.append(name)
            continue
        slot = _X86_64_ZONE_SUFFIXES.index(name[len(prefix):])
        names.append(prefix + zone_suffixes[slot] if slot < len(zone_suffixes) else None)
    return names


def vmstat_values(machine) -> list[tuple[str, int]]:
    """(name, value) pairs in /proc/vmstat order."""
    pa = machine.page_alloc
    zone_totals = pa.S.zstat.sum(axis=0)
    items = [(name, int(zone_totals[i])) for i, name in enumerate(ZONE_ITEMS + NUMA_ITEMS)]
    for i, name in enumerate(NODE_ITEMS):
        value = int(machine.node_stat[i])
        items.append((name, value // HPAGE_PMD_NR if name in THP_NODE_ITEMS else value))
    items = [(n, v) for n, v in items if item_exists(n, machine.arch)]
    background, dirty = global_dirty_limits(machine)
    memmap = sum(r.pages for r in machine.layout.reserved if r.name == "memmap")
    items += [("nr_dirty_threshold", dirty), ("nr_dirty_background_threshold", background),
              ("nr_memmap_pages", 0), ("nr_memmap_boot_pages", memmap)]
    events = pa.S.events
    for i, name in enumerate(vm_event_names(pa.zone_names)):
        if name is not None and item_exists(name, machine.arch):
            items.append((name, int(events[i])))
    items.append(("nr_unstable", 0))
    return items


def render_vmstat(machine) -> str:
    return "".join(f"{name} {value}\n" for name, value in vmstat_values(machine))
