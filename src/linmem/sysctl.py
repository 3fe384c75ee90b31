"""The ``vm.*`` sysctls of Linux 6.18, as /proc/sys/vm shows and checks them.

Contract (``shared/SCENARIO.md``: "vm.* knobs; an unknown or unsupported name is
an error"): :data:`SYSCTLS` lists every file of ``/proc/sys/vm`` that a
mainline Linux 6.18 kernel exposes on x86-64 (NUMA, HZ=250, the common config
of distributions), plus the few that exist only on i386 (HIGHMEM, no NUMA).
Each entry gives:

- ``kind``: ``int`` (one integer; ``ctype`` says whether the kernel stores an
  ``int`` or an ``unsigned long``), ``bool`` (any integer, stored as 0 or 1),
  ``intvec`` (one integer per zone, printed tab-separated), ``string``, or
  ``writeonly`` (an action such as ``drop_caches``, not a setting);
- ``default``: the value on a freshly booted kernel, or ``None`` with
  ``computed=True`` when the kernel computes it at boot from the memory size
  (``min_free_kbytes``, ``user_reserve_kbytes``, ``admin_reserve_kbytes``):
  the machine model fills those in;
- ``minimum``/``maximum``: the range the kernel's proc handler accepts on a
  write (``proc_dointvec_minmax`` with ``extra1``/``extra2``, or the type's
  limits for plain ``proc_dointvec``/``proc_doulongvec_minmax``); writes
  outside it fail with EINVAL there, and a :class:`ValueError` here;
- ``settable``: whether a scenario may set it, i.e. whether linmem's model
  honours it. Setting a knob the model would ignore is an error, never silence.

Where the kernel normalises a written value (negative ``lowmem_reserve_ratio``
entries become 0; ``bool`` knobs store 0 or 1), :func:`validate_sysctl` does
the same. :func:`format_sysctl` renders the exact text of the proc file.

Sources: mm/page_alloc.c (page_alloc_sysctl_table), mm/util.c, mm/vmscan.c,
mm/page-writeback.c, mm/swap.c, mm/oom_kill.c, mm/compaction.c, mm/mmap.c,
mm/vmstat.c, mm/filemap.c, mm/hugetlb.c, fs/dcache.c, fs/drop_caches.c,
fs/fs-writeback.c, fs/userfaultfd.c, security/min_addr.c, kernel/pid_sysctl.h.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Any

ARCHES = ("x86_64", "i386")
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
ULONG_MAX = {"x86_64": (1 << 64) - 1, "i386": (1 << 32) - 1}
HZ = 250
JIFFIES_MAX = INT_MAX // HZ   # proc_dointvec_jiffies refuses |v| > INT_MAX / HZ

# Zones whose lowmem_reserve_ratio entries /proc/sys/vm/lowmem_reserve_ratio
# prints, in order (MAX_NR_ZONES entries; ZONE_DEVICE needs a 64-bit kernel).
ZONES = {
    "x86_64": ("DMA", "DMA32", "Normal", "Movable", "Device"),
    "i386": ("DMA", "Normal", "HighMem", "Movable"),
}

INT, BOOL, INTVEC, STRING, WRITEONLY = "int", "bool", "intvec", "string", "writeonly"


@dataclass(frozen=True)
class Sysctl:
    """One file of /proc/sys/vm: its kind, default, accepted range and meaning."""

    name: str
    kind: str
    default: Any
    minimum: int | None
    maximum: int | None
    doc: str
    ctype: str = "int"
    mode: int = 0o644
    settable: bool = True
    computed: bool = False
    source: str = ""
    arches: tuple[str, ...] = ARCHES

    @property
    def readable(self) -> bool:
        """True when the file can be read (its mode has a read bit)."""
        return bool(self.mode & 0o444)

    @property
    def dotted(self) -> str:
        """The name as scenarios and sysctl(8) write it: ``vm.swappiness``."""
        return f"vm.{self.name}"


def _s(name, default, lo, hi, doc, **kw) -> Sysctl:
    """Build one table entry; ``kind`` defaults to ``int``."""
    kind = kw.pop("kind", INT)
    return Sysctl(name, kind, default, lo, hi, doc, **kw)


_UL = ULONG_MAX["x86_64"]
_TABLE = [
    _s("admin_reserve_kbytes", None, 0, _UL,
       "Free memory kept for root when overcommit_memory=2 (KiB); boot value "
       "min(3% of free pages, 8MiB).", ctype="unsigned long", computed=True,
       source="mm/util.c:init_admin_reserve"),
    _s("compact_memory", None, 1, 1,
       "Writing 1 compacts all zones; any other value is refused.", kind=WRITEONLY,
       mode=0o200, settable=False, source="mm/compaction.c:sysctl_compaction_handler"),
    _s("compact_unevictable_allowed", 1, 0, 1,
       "Whether compaction may move unevictable (mlocked) pages.", settable=False,
       source="mm/compaction.c"),
    _s("compaction_proactiveness", 20, 0, 100,
       "How hard kcompactd compacts in the background (0 disables).", settable=False,
       source="mm/compaction.c:compaction_proactiveness_sysctl_handler"),
    _s("defrag_mode", 0, 0, 1,
       "1: the allocator compacts rather than fall back to other migratetypes.",
       settable=False, source="mm/page_alloc.c"),
    _s("dirty_background_bytes", 0, 1, _UL,
       "Dirty bytes at which background writeback starts; 0 (unset) means "
       "dirty_background_ratio applies. Writing it clears the ratio.",
       ctype="unsigned long", source="mm/page-writeback.c:dirty_background_bytes_handler"),
    _s("dirty_background_ratio", 10, 0, 100,
       "Percent of dirtyable memory at which background writeback starts.",
       source="mm/page-writeback.c:dirty_background_ratio_handler"),
    _s("dirty_bytes", 0, 2 * 4096, _UL,
       "Dirty bytes at which a writer is throttled; 0 (unset) means dirty_ratio "
       "applies. Writing it clears the ratio.", ctype="unsigned long",
       source="mm/page-writeback.c:dirty_bytes_handler"),
    _s("dirty_expire_centisecs", 3000, 0, INT_MAX,
       "Age (1/100 s) after which dirty data is written back.",
       source="mm/page-writeback.c"),
    _s("dirty_ratio", 20, 0, 100,
       "Percent of dirtyable memory at which a writer is throttled.",
       source="mm/page-writeback.c:dirty_ratio_handler"),
    _s("dirty_writeback_centisecs", 500, INT_MIN, INT_MAX,
       "Interval (1/100 s) of the flusher threads; 0 disables periodic writeback.",
       source="mm/page-writeback.c:dirty_writeback_centisecs_handler"),
    _s("dirtytime_expire_seconds", 43200, 0, INT_MAX,
       "Age after which lazily-timestamped inodes are written.", settable=False,
       source="fs/fs-writeback.c:dirtytime_interval_handler"),
    _s("drop_caches", None, 1, 4,
       "Write 1 to drop clean page cache, 2 reclaimable slab, 3 both; 4 silences "
       "the log message.", kind=WRITEONLY, mode=0o200,
       source="fs/drop_caches.c:drop_caches_sysctl_handler"),
    _s("extfrag_threshold", 500, 0, 1000,
       "Fragmentation index above which compaction is preferred to reclaim.",
       settable=False, source="mm/compaction.c"),
    _s("highmem_is_dirtyable", 0, 0, 1,
       "Whether HighMem counts as dirtyable memory for the dirty limits.",
       source="mm/page-writeback.c", arches=("i386",)),
    _s("hugetlb_optimize_vmemmap", 0, INT_MIN, INT_MAX,
       "Free the vmemmap pages of HugeTLB pages (hugetlbfs is not modelled).",
       kind=BOOL, settable=False, source="mm/hugetlb_vmemmap.c", arches=("x86_64",)),
    _s("hugetlb_shm_group", 0, INT_MIN, INT_MAX,
       "Group allowed to create SysV shm segments in huge pages.", settable=False,
       source="mm/hugetlb.c"),
    _s("laptop_mode", 0, -JIFFIES_MAX, JIFFIES_MAX,
       "Seconds of delay for laptop-mode writeback (0: off).", settable=False,
       source="mm/page-writeback.c (proc_dointvec_jiffies)"),
    _s("legacy_va_layout", 0, 0, INT_MAX,
       "Non-zero: the legacy bottom-up mmap layout.", source="mm/util.c"),
    _s("lowmem_reserve_ratio", (256, 256, 32, 0, 0), INT_MIN, INT_MAX,
       "Per zone, the divisor of the pages of higher zones reserved against "
       "allocations that could use them; values below 1 are stored as 0 (no "
       "reserve).", kind=INTVEC, source="mm/page_alloc.c:lowmem_reserve_ratio_sysctl_handler"),
    _s("max_map_count", 65530, 0, INT_MAX,
       "Maximum number of VMAs in one address space.", source="mm/mmap.c"),
    _s("memfd_noexec", 0, 0, 2,
       "Default exec permission of memfd_create() files.", settable=False,
       source="kernel/pid_sysctl.h"),
    _s("min_free_kbytes", None, 0, INT_MAX,
       "Free memory (KiB) the min watermarks keep; boot value "
       "sqrt(16 * lowmem KiB), clamped to 128..262144.", computed=True,
       source="mm/page_alloc.c:calculate_min_free_kbytes"),
    _s("min_slab_ratio", 5, 0, 100,
       "Percent of a node's pages of reclaimable slab that node reclaim keeps.",
       settable=False, source="mm/vmscan.c", arches=("x86_64",)),
    _s("min_unmapped_ratio", 1, 0, 100,
       "Percent of a node's pages that must be unmapped file pages for node reclaim.",
       settable=False, source="mm/vmscan.c", arches=("x86_64",)),
    _s("mmap_min_addr", 4096, 0, _UL,
       "Lowest address a process may mmap.", ctype="unsigned long",
       source="security/min_addr.c:mmap_min_addr_handler"),
    _s("mmap_rnd_bits", 28, 28, 32,
       "Bits of randomness of the mmap base (ASLR is not modelled).", mode=0o600,
       settable=False, source="mm/mmap.c"),
    _s("mmap_rnd_compat_bits", 8, 8, 16,
       "Bits of randomness of the mmap base of 32-bit tasks.", mode=0o600,
       settable=False, source="mm/mmap.c", arches=("x86_64",)),
    _s("nr_hugepages", 0, 0, _UL,
       "Size of the persistent HugeTLB pool (hugetlbfs is not modelled).",
       ctype="unsigned long", settable=False, source="mm/hugetlb.c"),
    _s("nr_hugepages_mempolicy", 0, 0, _UL,
       "nr_hugepages following the writer's NUMA policy.", ctype="unsigned long",
       settable=False, source="mm/hugetlb.c", arches=("x86_64",)),
    _s("nr_overcommit_hugepages", 0, 0, _UL,
       "Surplus HugeTLB pages allowed beyond nr_hugepages.", ctype="unsigned long",
       settable=False, source="mm/hugetlb.c"),
    _s("numa_stat", 1, 0, 1,
       "Whether the NUMA counters of /proc/vmstat are kept.", settable=False,
       source="mm/vmstat.c", arches=("x86_64",)),
    _s("numa_zonelist_order", "Node", None, None,
       "Zonelist order; only node order remains.", kind=STRING, settable=False,
       source="mm/page_alloc.c:numa_zonelist_order_handler", arches=("x86_64",)),
    _s("oom_dump_tasks", 1, INT_MIN, INT_MAX,
       "Non-zero: the OOM killer lists every task's memory use.", source="mm/oom_kill.c"),
    _s("oom_kill_allocating_task", 0, INT_MIN, INT_MAX,
       "Non-zero: the OOM killer kills the allocating task instead of choosing.",
       source="mm/oom_kill.c"),
    _s("overcommit_kbytes", 0, 0, _UL,
       "CommitLimit from a fixed size (KiB) instead of overcommit_ratio; writing "
       "it clears the ratio.", ctype="unsigned long", source="mm/util.c:overcommit_kbytes_handler"),
    _s("overcommit_memory", 0, 0, 2,
       "0: heuristic overcommit, 1: always, 2: never beyond CommitLimit.",
       source="mm/util.c:overcommit_policy_handler"),
    _s("overcommit_ratio", 50, INT_MIN, INT_MAX,
       "Percent of RAM in CommitLimit when overcommit_memory=2; writing it clears "
       "overcommit_kbytes.", source="mm/util.c:overcommit_ratio_handler"),
    _s("page-cluster", 3, 0, 31,
       "log2 of the pages of one swap readahead (3 on machines of 16MiB or more).",
       source="mm/swap.c"),
    _s("page_lock_unfairness", 5, 0, INT_MAX,
       "Times a page-lock waiter may be passed over.", settable=False,
       source="mm/filemap.c"),
    _s("panic_on_oom", 0, 0, 2,
       "1: panic instead of OOM-killing (except in a cpuset/memcg), 2: always panic.",
       source="mm/oom_kill.c"),
    _s("percpu_pagelist_high_fraction", 0, 0, INT_MAX,
       "Fraction of a zone's pages a per-cpu list may hold (0: the default "
       "sizing; otherwise at least 8).", source="mm/page_alloc.c"),
    _s("stat_interval", 1, -JIFFIES_MAX, JIFFIES_MAX,
       "Seconds between vmstat per-cpu counter folds.", settable=False,
       source="mm/vmstat.c (proc_dointvec_jiffies)"),
    _s("stat_refresh", None, None, None,
       "Any write folds the per-cpu vmstat counters; reads are empty.",
       kind=WRITEONLY, mode=0o600, settable=False, source="mm/vmstat.c:vmstat_refresh"),
    _s("swappiness", 60, 0, 200,
       "Relative cost of swapping anon pages against dropping file pages.",
       source="mm/vmscan.c"),
    _s("unprivileged_userfaultfd", 0, 0, 1,
       "Whether unprivileged users may use userfaultfd.", settable=False,
       source="fs/userfaultfd.c"),
    _s("user_reserve_kbytes", None, 0, _UL,
       "Memory (KiB) kept back from a user's single process when "
       "overcommit_memory=2; boot value min(3% of free pages, 128MiB).",
       ctype="unsigned long", computed=True, source="mm/util.c:init_user_reserve"),
    _s("vdso_enabled", 1, 0, 1,
       "Whether 32-bit processes get a vDSO.", settable=False,
       source="arch/x86/entry/vdso/vdso32-setup.c", arches=("i386",)),
    _s("vfs_cache_pressure", 100, 0, INT_MAX,
       "Numerator of the reclaim pressure on dentry and inode caches.",
       source="fs/dcache.c"),
    _s("vfs_cache_pressure_denom", 100, 100, INT_MAX,
       "Denominator of vfs_cache_pressure.", source="fs/dcache.c"),
    _s("watermark_boost_factor", 15000, 0, INT_MAX,
       "Watermark boost after a fragmenting fallback, in 1/10000 of the high mark.",
       source="mm/page_alloc.c"),
    _s("watermark_scale_factor", 10, 1, 3000,
       "Distance between watermarks, in 1/10000 of a zone's managed pages.",
       source="mm/page_alloc.c:watermark_scale_factor_sysctl_handler"),
    _s("zone_reclaim_mode", 0, 0, INT_MAX,
       "Bits enabling node-local reclaim before falling back to other nodes.",
       settable=False, source="mm/vmscan.c", arches=("x86_64",)),
]

#: Every vm sysctl, keyed by its file name in /proc/sys/vm (x86-64 values).
SYSCTLS: dict[str, Sysctl] = {s.name: s for s in _TABLE}

#: Names some kernels show in /proc/sys/vm that linmem does not model, and why.
NOT_MODELLED: dict[str, str] = {
    "shrink_inodes_with_pagecache": "a vendor patch, not in mainline Linux 6.18",
    "memory_failure_early_kill": "CONFIG_MEMORY_FAILURE (hardware memory errors)",
    "memory_failure_recovery": "CONFIG_MEMORY_FAILURE (hardware memory errors)",
    "enable_soft_offline": "CONFIG_MEMORY_FAILURE (hardware memory errors)",
    "nr_trim_pages": "kernels without an MMU only",
}

# What differs on i386: ranges of unsigned longs, zones, mmap randomness.
_I386 = {
    "lowmem_reserve_ratio": {"default": (256, 32, 0, 0)},
    "mmap_rnd_bits": {"default": 8, "minimum": 8, "maximum": 16},
}


def sysctls_for(arch: str = "x86_64") -> dict[str, Sysctl]:
    """The sysctls a kernel of ``arch`` shows, with that arch's values."""
    table = {}
    for s in _TABLE:
        if arch not in s.arches:
            continue
        if arch == "i386":
            if s.maximum == _UL:
                s = replace(s, maximum=ULONG_MAX["i386"])
            s = replace(s, **_I386.get(s.name, {}))
        table[s.name] = s
    return table


def _bare(name: str) -> str:
    """``vm.swappiness`` -> ``swappiness``; a name without ``vm.`` stays."""
    return name[3:] if name.startswith("vm.") else name


def unknown_message(name: str) -> str:
    """Say why ``name`` is not a sysctl a scenario can use, with a suggestion."""
    if "/" in name:
        return f"unknown sysctl {name!r}: write names with dots, e.g. vm.swappiness"
    if not name.startswith("vm."):
        hint = f": write it vm.{name}" if name in SYSCTLS else ": only vm.* sysctls are modelled"
        return f"unknown sysctl {name!r}{hint}"
    bare = _bare(name)
    if bare in NOT_MODELLED:
        return f"vm.{bare} is not modelled by linmem: {NOT_MODELLED[bare]}"
    close = difflib.get_close_matches(bare, SYSCTLS, n=1)
    hint = f" (did you mean vm.{close[0]}?)" if close else ""
    return f"unknown sysctl {name!r}{hint}"


def lookup(name: str, arch: str = "x86_64") -> Sysctl:
    """The entry for ``vm.NAME`` (or a bare ``NAME``) on ``arch``.

    Raises ValueError for a name that is unknown or absent on ``arch``.
    """
    bare = _bare(name)
    s = SYSCTLS.get(bare)
    if s is None:
        raise ValueError(unknown_message(name if name.startswith("vm.") else f"vm.{name}"))
    if arch not in s.arches:
        raise ValueError(f"vm.{bare} exists only on {', '.join(s.arches)}, not on {arch}")
    return sysctls_for(arch)[bare]


_KERNEL_INT = re.compile(r"^-?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


def _to_int(s: Sysctl, value: Any) -> int:
    """One integer as the kernel's proc_get_long reads it (base 0: 0x.., 0..)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{s.dotted}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    text = value.strip()
    if not _KERNEL_INT.match(text):
        raise ValueError(f"{s.dotted}: expected an integer, got {value!r}")
    return int(text, 0) if not re.match(r"^-?0[0-7]+$", text) else int(text, 8)


def _range_hint(s: Sysctl, v: int) -> str:
    """A word of explanation where the kernel's refusal surprises."""
    if s.name in ("dirty_bytes", "dirty_background_bytes") and v == 0:
        ratio = s.name.replace("bytes", "ratio")
        return f" (0 is only the boot value, meaning unset: write vm.{ratio} instead)"
    return ""


def _check_range(s: Sysctl, v: int) -> int:
    """Refuse ``v`` outside the handler's range, as the kernel does (EINVAL)."""
    if (s.minimum is not None and v < s.minimum) or (s.maximum is not None and v > s.maximum):
        raise ValueError(f"{s.dotted}: {v} is out of range {s.minimum}..{s.maximum}"
                         f"{_range_hint(s, v)}")
    if s.name == "percpu_pagelist_high_fraction" and 0 < v < 8:
        raise ValueError(f"{s.dotted}: {v} is refused: must be 0 or at least 8")
    return v


def _vector(s: Sysctl, value: Any) -> tuple[int, ...]:
    """An ``intvec`` value: a list of integers or a whitespace-separated string."""
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{s.dotted}: expected a list of integers, got {value!r}")
    if len(items) != len(s.default):
        zones = " ".join(ZONES["i386" if len(s.default) == 4 else "x86_64"])
        raise ValueError(f"{s.dotted}: expected {len(s.default)} values, one per zone "
                         f"({zones}), got {len(items)}")
    ints = [_check_range(s, _to_int(s, item)) for item in items]
    return tuple(v if v >= 1 else 0 for v in ints)


def _normalize(s: Sysctl, value: Any) -> Any:
    """Parse and check ``value`` for ``s``; return what the kernel stores."""
    if s.kind == INTVEC:
        return _vector(s, value)
    if s.kind == STRING:
        if not isinstance(value, str):
            raise ValueError(f"{s.dotted}: expected a string, got {value!r}")
        return value
    if s.kind == WRITEONLY and s.minimum is None:
        return value
    v = _check_range(s, _to_int(s, value))
    return int(v != 0) if s.kind == BOOL else v


def validate_sysctl(name: str, value: Any, arch: str = "x86_64", *,
                    initial: bool = False) -> Any:
    """Check a scenario's write of ``value`` to ``name``; return the stored value.

    ``name`` is ``vm.NAME``. Raises ValueError, with a message naming the sysctl
    and the value, for an unknown name, one absent on ``arch``, one linmem does
    not model (``settable`` false), a value the kernel would refuse, or (with
    ``initial``: the scenario's boot-time ``sysctl`` section) an action such as
    ``vm.drop_caches`` that only makes sense while the machine runs.
    """
    if not name.startswith("vm."):
        raise ValueError(unknown_message(name))
    s = lookup(name, arch)
    if not s.settable:
        raise ValueError(f"{s.dotted} is not modelled by linmem, so a scenario cannot set it")
    if initial and s.kind == WRITEONLY:
        raise ValueError(f"{s.dotted} is an action, not a setting: write it from a "
                         f"`sysctl` step or an `at` event")
    return _normalize(s, value)


def format_sysctl(name: str, value: Any = None, arch: str = "x86_64") -> str:
    """The exact text of /proc/sys/vm/NAME holding ``value`` (default: the default).

    Integers print as ``"60\\n"``, vectors tab-separated (``"256\\t256\\t32\\t0\\t0\\n"``),
    ``stat_refresh`` reads empty. Raises ValueError for a write-only file
    (mode 0200) and for a computed default when no value is given.
    """
    s = lookup(name, arch)
    if not s.readable:
        raise ValueError(f"{s.dotted} is write-only (mode {s.mode:04o}): it has no text")
    if s.kind == WRITEONLY:
        return ""
    if value is None:
        if s.computed:
            raise ValueError(f"{s.dotted}: the default is computed at boot; pass the value")
        value = s.default
    if s.kind == INTVEC:
        return "\t".join(str(int(v)) for v in value) + "\n"
    return f"{value}\n"


def defaults(arch: str = "x86_64") -> dict[str, Any]:
    """Boot values of the readable sysctls of ``arch``; computed ones are None."""
    return {n: s.default for n, s in sysctls_for(arch).items()
            if s.readable and s.kind != WRITEONLY}
