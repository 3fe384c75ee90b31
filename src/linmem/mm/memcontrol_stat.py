"""The numbers of memory.stat, v2 and v1 (mm/memcontrol.c memcg_stat_format,
mm/memcontrol-v1.c memcg1_stat_format), as ordered key -> value dicts.

``memory_stat`` gives the v2 keys in the kernel's order (the memory_stats[]
table, in bytes except the workingset counts, with ``slab`` after
slab_unreclaimable; then pgscan, pgsteal and memcg_vm_event_stat[] without
pgpgin/pgpgout); ``memory_stat_v1`` the v1 keys (the memcg's own counters,
its hierarchical limits, then ``total_`` over its subtree). Both read the
per-memcg counters of ``linmem.engine.memcontrol`` and the controller's
event counts; they change nothing. The OOM report (an event) and the
``sys/fs/cgroup`` files (``linmem.procfs.cgroup``) both use them.

The kernel configuration assumed for the keys: SWAP, ZSWAP,
TRANSPARENT_HUGEPAGE, HUGETLB_PAGE (hugetlb not accounted: no key) and
MEMCG_V1 on, NUMA_BALANCING off. Keys linmem has nothing for (slab, percpu,
sock, vmalloc, zswap, file THPs, demotion, lazyfree) are 0.
"""

from __future__ import annotations

from linmem.engine import lru as L
from linmem.engine import memcontrol as MC

PAGE = 4096
PAGE_COUNTER_MAX_BYTES = int(MC.PAGE_COUNTER_MAX) * PAGE

# memory_stats[]: (key, source) in the kernel's order; the source is an mstat
# column (pages), or a name computed below
MEMORY_STATS = (
    ("anon", MC.MS_ANON_MAPPED), ("file", MC.MS_FILE_PAGES), ("kernel", "kernel"),
    ("kernel_stack", "kernel_stack"), ("pagetables", MC.MS_PAGETABLES),
    ("sec_pagetables", None), ("percpu", None), ("sock", None), ("vmalloc", None),
    ("shmem", MC.MS_SHMEM), ("zswap", None), ("zswapped", None),
    ("file_mapped", MC.MS_FILE_MAPPED), ("file_dirty", MC.MS_FILE_DIRTY),
    ("file_writeback", MC.MS_WRITEBACK), ("swapcached", MC.MS_SWAPCACHE),
    ("anon_thp", MC.MS_ANON_THPS), ("file_thp", None), ("shmem_thp", None),
    ("inactive_anon", MC.MS_LRU + L.LRU_INACTIVE_ANON),
    ("active_anon", MC.MS_LRU + L.LRU_ACTIVE_ANON),
    ("inactive_file", MC.MS_LRU + L.LRU_INACTIVE_FILE),
    ("active_file", MC.MS_LRU + L.LRU_ACTIVE_FILE),
    ("unevictable", MC.MS_LRU + L.LRU_UNEVICTABLE),
    ("slab_reclaimable", None), ("slab_unreclaimable", None),
)
WORKINGSET_STATS = (
    ("workingset_refault_anon", MC.MS_REFAULT), ("workingset_refault_file", MC.MS_REFAULT + 1),
    ("workingset_activate_anon", MC.MS_ACTIVATE),
    ("workingset_activate_file", MC.MS_ACTIVATE + 1),
    ("workingset_restore_anon", MC.MS_RESTORE), ("workingset_restore_file", MC.MS_RESTORE + 1),
    ("workingset_nodereclaim", None),
    ("pgdemote_kswapd", None), ("pgdemote_direct", None), ("pgdemote_khugepaged", None),
    ("pgdemote_proactive", None),
)
# memcg_vm_event_stat[] without pgpgin/pgpgout (v1 only)
VM_EVENTS = ("pswpin", "pswpout", "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged",
             "pgscan_proactive", "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged",
             "pgsteal_proactive", "pgfault", "pgmajfault", "pgrefill", "pgactivate",
             "pgdeactivate", "pglazyfree", "pglazyfreed", "swpin_zero", "swpout_zero",
             "zswpin", "zswpout", "zswpwb", "thp_fault_alloc", "thp_collapse_alloc",
             "thp_swpout", "thp_swpout_fallback")
EVENT_KEYS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill", "sock_throttled")
# memcg1_stats[] / memcg1_stat_names[], memcg1_events[]
V1_STATS = (("cache", MC.MS_FILE_PAGES), ("rss", MC.MS_ANON_MAPPED),
            ("rss_huge", MC.MS_ANON_THPS), ("shmem", MC.MS_SHMEM),
            ("mapped_file", MC.MS_FILE_MAPPED), ("dirty", MC.MS_FILE_DIRTY),
            ("writeback", MC.MS_WRITEBACK), ("workingset_refault_anon", MC.MS_REFAULT),
            ("workingset_refault_file", MC.MS_REFAULT + 1), ("swap", "swap"),
            ("swapcached", MC.MS_SWAPCACHE))
V1_EVENTS = ("pgpgin", "pgpgout", "pgfault", "pgmajfault")
# the stats counted in pages but printed as counts (memcg_page_state_output_unit)
EVENT_COLUMNS = {MC.MS_REFAULT, MC.MS_REFAULT + 1, MC.MS_ACTIVATE, MC.MS_ACTIVATE + 1,
                 MC.MS_RESTORE, MC.MS_RESTORE + 1}


MSTAT_EVENTS = {"pgpgin": MC.MS_PGPGIN, "pgpgout": MC.MS_PGPGOUT,
                "pgfault": MC.MS_PGFAULT, "pgmajfault": MC.MS_PGMAJFAULT,
                "pswpin": MC.MS_PSWPIN, "pswpout": MC.MS_PSWPOUT,
                "thp_fault_alloc": MC.MS_THP_FAULT_ALLOC, "pgactivate": MC.MS_PGACTIVATE}


class MemcgView:
    """Read-only numbers of one memcg: its own and its subtree's."""

    def __init__(self, kernel, memcg):
        self.kernel = kernel
        self.memcg = memcg
        self.ctl = kernel.memcg
        self.K = kernel.mem.K

    def own(self, source) -> int:
        """A counter of the memcg's own pages (memcg_page_state_local), in pages."""
        return self._value(self.memcg, source)

    def total(self, source) -> int:
        """The same over the subtree (memcg_page_state)."""
        return sum(self._value(c, source) for c in self.memcg.subtree())

    def _value(self, memcg, source) -> int:
        mstat = self.K.mstat[memcg.id]
        if source is None:
            return 0
        if source == "kernel":
            return int(mstat[MC.MS_PAGETABLES] + mstat[MC.MS_KSTACK])
        if source == "kernel_stack":
            return int(mstat[MC.MS_KSTACK])
        if source == "swap":                          # swap entries charged to it alone
            own = int(self.K.mc[memcg.id, MC.MC_SWAP])
            return own - sum(int(self.K.mc[c.id, MC.MC_SWAP]) for c in memcg.children)
        if source in MSTAT_EVENTS:                    # counted by the compiled code
            return int(mstat[MSTAT_EVENTS[source]]) + int(memcg.vm_events.get(source, 0))
        if isinstance(source, str):
            return int(memcg.vm_events.get(source, 0))
        return int(mstat[source])

    def bytes_of(self, source, total: bool = True) -> int:
        pages = self.total(source) if total else self.own(source)
        return pages if source in EVENT_COLUMNS else pages * PAGE


def memory_stat(kernel, memcg) -> dict[str, int]:
    """memory.stat of cgroup v2 (memcg_stat_format), key -> value."""
    view = MemcgView(kernel, memcg)
    out = {}
    for key, source in MEMORY_STATS:
        out[key] = view.bytes_of(source)
        if key == "slab_unreclaimable":
            out["slab"] = 0
    for key, source in WORKINGSET_STATS:
        out[key] = view.total(source)
    out["pgscan"] = sum(view.total(f"pgscan_{w}") for w in ("kswapd", "direct", "proactive",
                                                          "khugepaged"))
    out["pgsteal"] = sum(view.total(f"pgsteal_{w}") for w in ("kswapd", "direct", "proactive",
                                                            "khugepaged"))
    for name in VM_EVENTS:
        out[name] = view.total(name)
    return out


def memory_stat_v1(kernel, memcg) -> dict[str, int]:
    """memory.stat of the v1 controller (memcg1_stat_format), key -> value."""
    view = MemcgView(kernel, memcg)
    out = {}
    for key, source in V1_STATS:
        out[key] = view.bytes_of(source, total=False)
    for name in V1_EVENTS:
        out[name] = view.own(name)
    for lru, name in enumerate(L.LRU_NAMES):
        out[name] = view.own(MC.MS_LRU + lru) * PAGE
    mc = kernel.mem.K.mc
    limit = min(int(mc[c.id, MC.MC_MAX]) for c in memcg.ancestors())
    out["hierarchical_memory_limit"] = limit * PAGE
    out["hierarchical_memsw_limit"] = PAGE_COUNTER_MAX_BYTES
    for key, source in V1_STATS:
        out[f"total_{key}"] = view.bytes_of(source)
    for name in V1_EVENTS:
        out[f"total_{name}"] = view.total(name)
    for lru, name in enumerate(L.LRU_NAMES):
        out[f"total_{name}"] = view.total(MC.MS_LRU + lru) * PAGE
    return out
