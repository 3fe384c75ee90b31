"""A simulated machine: its memory, its sysctls, its counters and its clock.

``Machine`` is the top of the model and the entry point of the Python API::

    from linmem.kernel.machine import Machine
    m = Machine(ram=4 << 30)                 # a 4 GiB x86-64 machine, booted
    pfn = m.page_alloc.alloc_pages(0)        # one page, GFP_KERNEL
    m.write_sysctl("vm.min_free_kbytes", 131072)
    m.check_invariants()

Booting follows the kernel's order: the firmware map and memblock reservations
(``linmem.mm.memblock``), the memmap and the buddy lists (``page_alloc.boot``),
then the boot-time initcalls that size the reserves: ``init_per_zone_wmark_min``
(min_free_kbytes, watermarks, lowmem_reserve), ``init_user_reserve`` and
``init_admin_reserve``, and khugepaged's ``set_recommended_min_free_kbytes``
when THP is enabled. The scenario's ``sysctl`` section is applied after boot,
each write going through the same handler as a write to /proc/sys/vm.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from linmem import sysctl as sysctl_table
from linmem.mm import mmzone
from linmem.mm.frames import FrameTable
from linmem.mm.memblock import boot_layout
from linmem.mm.page_alloc import PageAllocator

THP_MODES = ("never", "madvise", "always")
INITIAL_JIFFIES = (-300 * 250) & 0xFFFFFFFF    # jiffies at boot (HZ 250), as a 32-bit count


class Machine:
    """One simulated x86-64 (or i386) machine with a single memory node."""

    def __init__(self, ram: int, arch: str = "x86_64", cpus: int = 2, thp: str = "madvise",
                 lru: str = "classic", sysctl: dict | None = None, seed: int = 0,
                 disk: dict | None = None):
        if thp not in THP_MODES:
            raise ValueError(f"thp must be one of {', '.join(THP_MODES)}, got {thp!r}")
        self.arch = arch
        self.ram = ram
        self.nr_cpus = cpus
        self.thp = thp
        self.lru = lru
        self.seed = seed
        self.name: str | None = None
        self.rng = np.random.default_rng(seed)
        self.clock = 0.0                      # simulated seconds since boot
        self.layout = boot_layout(arch, ram, cpus)
        self.frames = FrameTable.zeros(self.layout.max_pfn)
        self.page_alloc = PageAllocator(self.layout, cpus, self.frames)
        self.node_stat = self.page_alloc.S.node_stat
        self.sysctl: dict[str, object] = sysctl_table.defaults(arch)
        self.user_min_free_kbytes = -1
        self.committed_as = 0                 # vm_committed_as, in pages
        self.aslr = False                     # address randomisation (from the seed)
        self.cgroup_version = 2               # the memory controller's files: v2 or v1
        self.disk = dict(disk or {})          # BlockDevice settings (size, bandwidths, latency)
        self.timers: list = []                # (time, order, callback): the kernel's timers
        self._timer_order = itertools.count()
        self._kernel = None
        self.page_alloc.boot()
        self._boot_initcalls()
        for name, value in (sysctl or {}).items():
            self.write_sysctl(name, value)

    @classmethod
    def from_scenario(cls, scenario) -> "Machine":
        """Build and boot the machine a scenario describes (``machine`` and ``sysctl``)."""
        m = scenario.machine
        sysctl = {f"vm.{k}": v for k, v in scenario.sysctl.as_dict().items()}
        disk = m.disk.model_dump() if getattr(m, "disk", None) is not None else None
        machine = cls(ram=m.ram, arch=m.arch, cpus=m.cpus, thp=m.thp, lru=m.lru,
                      sysctl=sysctl, seed=scenario.seed, disk=disk)
        machine.name = scenario.name
        machine.aslr = m.aslr
        machine.cgroup_version = 1 if m.cgroup == "v1" else 2
        return machine

    # ----------------------------------------------------------------- boot

    @property
    def thp_enabled(self) -> bool:
        """hugepage_pmd_enabled(): THP is "always" or "madvise"."""
        return self.thp != "never"

    def _boot_initcalls(self) -> None:
        """Models init_per_zone_wmark_min(), init_{user,admin}_reserve() and
        khugepaged's start-up, in boot order."""
        pa = self.page_alloc
        self.sysctl["min_free_kbytes"] = pa.default_min_free_kbytes(False)
        self._setup_per_zone_wmarks()
        pa.setup_per_zone_lowmem_reserve(self.sysctl["lowmem_reserve_ratio"])
        free_kbytes = pa.nr_free_pages() << 2
        self.sysctl["user_reserve_kbytes"] = min(free_kbytes // 32, 1 << 17)
        self.sysctl["admin_reserve_kbytes"] = min(free_kbytes // 32, 1 << 13)
        if self.thp_enabled:
            self._set_recommended_min_free_kbytes()

    def _set_recommended_min_free_kbytes(self) -> None:
        """Models mm/khugepaged.c:set_recommended_min_free_kbytes()."""
        pa = self.page_alloc
        high = pa.watermarks()[:, mmzone.WMARK_HIGH]
        self.sysctl["min_free_kbytes"] = mmzone.recommended_min_free_kbytes(
            pa.managed, high, pa.zone_names, int(self.sysctl["min_free_kbytes"]))
        self._setup_per_zone_wmarks()

    def _setup_per_zone_wmarks(self) -> None:
        self.page_alloc.setup_per_zone_wmarks(
            int(self.sysctl["min_free_kbytes"]), int(self.sysctl["watermark_scale_factor"]),
            int(self.sysctl["percpu_pagelist_high_fraction"]))

    # -------------------------------------------------------------- sysctls

    def write_sysctl(self, name: str, value) -> None:
        """Write ``vm.NAME`` as a write to /proc/sys/vm/NAME would.

        Raises ValueError (naming the sysctl and the value) where the kernel
        refuses the write; then runs the handler the kernel runs.
        """
        stored = sysctl_table.validate_sysctl(name, value, self.arch)
        bare = name[3:] if name.startswith("vm.") else name
        handler = self._HANDLERS.get(bare)
        self._sysctl_before = self.sysctl.get(bare)
        if sysctl_table.lookup(bare, self.arch).kind != sysctl_table.WRITEONLY:
            self.sysctl[bare] = stored
        if handler:
            handler(self, stored)

    def _min_free_kbytes_handler(self, value: int) -> None:
        """Models min_free_kbytes_sysctl_handler()."""
        self.user_min_free_kbytes = value
        self._setup_per_zone_wmarks()

    def _wmark_handler(self, _value: int) -> None:
        """Models watermark_scale_factor_sysctl_handler() and
        percpu_pagelist_high_fraction_sysctl_handler()."""
        self._setup_per_zone_wmarks()

    def _lowmem_reserve_handler(self, value) -> None:
        """Models lowmem_reserve_ratio_sysctl_handler()."""
        self.page_alloc.setup_per_zone_lowmem_reserve(value)

    def _drop_caches_handler(self, value: int) -> None:
        """Models drop_caches_sysctl_handler(): 1 drops the clean, unmapped page
        cache (drop_pagecache), 2 the unused inodes and dentries (drop_slab:
        the next lookup reads them again), 3 both; 4 only silences the
        message. Counted in drop_pagecache/drop_slab."""
        from linmem.mm.vmstat import vm_event
        if value & 1:
            if self._kernel is not None:
                self._kernel.drop_pagecache()
            self.page_alloc.S.events[vm_event("drop_pagecache")] += 1
        if value & 2:
            if self._kernel is not None and self._kernel.mounted_fs is not None:
                self._kernel.mounted_fs.drop_inodes()
            self.page_alloc.S.events[vm_event("drop_slab")] += 1

    def _boost_factor_handler(self, value: int) -> None:
        """watermark_boost_factor is read by boost_watermark()."""
        from linmem.engine.buddy import T_BOOST_FACTOR
        self.page_alloc.S.tunables[T_BOOST_FACTOR] = value

    def _dirty_pair_handler(self, name: str, value: int) -> None:
        """Models dirty_ratio_handler() and friends: the ratio and the bytes
        form of a dirty limit exclude each other; writing one (a new value)
        zeroes the other."""
        other = {"dirty_ratio": "dirty_bytes", "dirty_bytes": "dirty_ratio",
                 "dirty_background_ratio": "dirty_background_bytes",
                 "dirty_background_bytes": "dirty_background_ratio"}[name]
        if value != self._sysctl_before:
            self.sysctl[other] = 0

    def _dirty_writeback_handler(self, value: int) -> None:
        """Models dirty_writeback_centisecs_handler(): a new non-zero interval
        wakes the flusher at once to write everything (WB_REASON_PERIODIC)."""
        fs = self._kernel.mounted_fs if self._kernel is not None else None
        if value and value != self._sysctl_before and fs is not None:
            fs.writeback.flush_all(self.clock)

    def _page_cluster_handler(self, value: int) -> None:
        """page-cluster is read by swap readahead (swap_vma_ra_win)."""
        if self._kernel is not None:
            self._kernel.swap.set_page_cluster(value)

    _HANDLERS = {
        "page-cluster": _page_cluster_handler,
        "min_free_kbytes": _min_free_kbytes_handler,
        "watermark_scale_factor": _wmark_handler,
        "percpu_pagelist_high_fraction": _wmark_handler,
        "lowmem_reserve_ratio": _lowmem_reserve_handler,
        "watermark_boost_factor": _boost_factor_handler,
        "drop_caches": _drop_caches_handler,
        "dirty_ratio": lambda m, v: m._dirty_pair_handler("dirty_ratio", v),
        "dirty_bytes": lambda m, v: m._dirty_pair_handler("dirty_bytes", v),
        "dirty_background_ratio": lambda m, v: m._dirty_pair_handler("dirty_background_ratio", v),
        "dirty_background_bytes": lambda m, v: m._dirty_pair_handler("dirty_background_bytes", v),
        "dirty_writeback_centisecs": _dirty_writeback_handler,
    }

    # ---------------------------------------------------------------- time

    def add_timer(self, when: float, callback) -> None:
        """Run ``callback(when)`` once the clock reaches ``when`` (the flusher,
        the journal, I/O completions)."""
        heapq.heappush(self.timers, (when, next(self._timer_order), callback))

    def timer_expiry(self, delay: float) -> float:
        """When a kernel timer armed now for ``delay`` seconds fires.

        Models kernel/time/timer.c calc_wheel_index(): the timer wheel keeps
        a timer in the level its delay falls in, whose granularity is 8^level
        jiffies (1 jiffy up to 63, 8 up to 503, 64 up to 4031...), and rounds
        its expiry up to the next multiple of that granularity, counted on
        the absolute jiffies clock (which starts at INITIAL_JIFFIES, five
        minutes before wrapping). A 5 s timer at HZ 250 fires 4 to 256 ms late.
        """
        hz = 250
        now = INITIAL_JIFFIES + int(round(self.clock * hz))
        delta = max(0, int(round(delay * hz)))
        level = 0
        while level < 8 and delta >= 63 << (3 * level):
            level += 1
        shift = 3 * level
        expires = (((now + delta) >> shift) + 1) << shift if level else now + delta
        return (expires - INITIAL_JIFFIES) / hz

    def next_timer(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    def run_timers(self, until: float) -> None:
        """Fire, in time order, every timer due by ``until``; the clock follows."""
        while self.timers and self.timers[0][0] <= until:
            when, _, callback = heapq.heappop(self.timers)
            self.clock = max(self.clock, when)
            callback(self.clock)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass with nothing running but the
        kernel's timers (writeback, I/O completion)."""
        until = self.clock + seconds
        self.run_timers(until)
        self.clock = until

    # ---------------------------------------------------------------- state

    # Facts that later mechanisms (swap, the page cache, processes) provide; a
    # machine without them has none of each.
    nr_forks = 0                  # processes created since boot (/proc/stat)
    nr_tasks = 0                  # tasks alive (/proc/loadavg)
    nr_running = 0                # tasks running
    last_pid = 0
    kswapd_failures = 0           # pgdat->kswapd_failures

    @property
    def total_swap_pages(self) -> int:
        """SwapTotal in pages: the slots of the areas that are on."""
        return self._kernel.swap.total_pages if self._kernel is not None else 0

    @property
    def nr_swap_pages(self) -> int:
        """SwapFree in pages (get_nr_swap_pages())."""
        return self._kernel.swap.free_pages if self._kernel is not None else 0

    @property
    def nr_blockdev_pages(self) -> int:
        """Buffers: the block device's page cache (nr_blockdev_pages())."""
        fs = self._kernel.mounted_fs if self._kernel is not None else None
        return fs.buffers if fs is not None else 0

    @property
    def node_unreclaimable(self) -> bool:
        """pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES."""
        return self.kswapd_failures >= 16

    @property
    def kernel(self):
        """The processes and their address spaces (created at first use)."""
        if self._kernel is None:
            from linmem.kernel.task import Kernel
            self._kernel = Kernel(self)
        return self._kernel

    @property
    def totalram_pages(self) -> int:
        """MemTotal in pages: the sum of the zones' managed pages."""
        return int(self.page_alloc.managed.sum())

    def check_invariants(self) -> None:
        """Raise AssertionError naming the first broken rule of the model."""
        from linmem.mm.debug import check_page_alloc, check_page_cache

        check_page_alloc(self.page_alloc)
        check_page_cache(self)
        if self._kernel is not None:
            self._kernel.check_invariants()
