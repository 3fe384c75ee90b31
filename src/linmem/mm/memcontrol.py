"""The cgroup v2 memory controller (mm/memcontrol.c, mm/page_counter.c).

Memory cgroups form a tree below the root. Every page is charged to the
memcg of the task it was allocated for (the compiled charge path is
``linmem.engine.memcontrol``); the charge walks up, so each memcg's
``memory.current`` counts its subtree. This module is the slow path and the
control files:

* **memory.max.** A charge that would take a memcg (or an ancestor) past its
  max fails in the fast path; try_charge_memcg then reclaims from the memcg
  whose limit was hit (try_to_free_mem_cgroup_pages: the reclaim of
  ``linmem.mm.vmscan`` restricted to that subtree), retries up to
  MAX_RECLAIM_RETRIES times without progress, and then invokes the OOM
  killer inside that memcg (mem_cgroup_out_of_memory). Charges of more than
  8 pages (THP) never OOM: the fault falls back to small pages.
* **memory.high.** A charge that leaves a memcg above high makes the task
  pay on its way back to user space (mem_cgroup_handle_over_high): reclaim
  of the excess, then a sleep growing with the square of the overage,
  at most 2 s per call. Never the OOM killer.
* **memory.low / memory.min.** Effective protection, computed top-down from
  the reclaim's target (mem_cgroup_calculate_protection, effective_protection
  with the siblings' claims scaled down when they overcommit the parent's).
  Reclaim skips a memcg at or below its emin; one at or below elow is skipped
  in the first pass and reclaimed (counting ``low``) only when that pass
  freed nothing.
* **memory.swap.max**, **memory.oom.group** (the OOM kills the whole group),
  **memory.reclaim** (proactive reclaim), **memory.peak**, and the
  ``memory.events`` counters low, high, max, oom, oom_kill, oom_group_kill.

The model keeps the counters; ``linmem.procfs.cgroup`` renders the files.
XXX: no per-CPU charge stock, no socket or slab memory, no memory.zswap.*,
no PSI (memory.pressure), one node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linmem.engine import memcontrol as MC
from linmem.engine import pgtable as P
from linmem.mm import gfp as G

PAGE = 4096
MAX_RECLAIM_RETRIES = 16
MEMCG_CHARGE_BATCH = 64
HZ = 1000                       # the delay model's jiffies (CONFIG_HZ_1000)
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
MEMCG_MAX_HIGH_DELAY_JIFFIES = 2 * HZ
PAGE_ALLOC_COSTLY_ORDER = 3
EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
SETTINGS = {"memory.max": MC.MC_MAX, "memory.high": MC.MC_HIGH, "memory.low": MC.MC_LOW,
            "memory.min": MC.MC_MIN, "memory.swap.max": MC.MC_SWAP_MAX}


class CgroupError(ValueError):
    """A cgroup operation the kernel would refuse: ``errno`` names the error
    the system call returns (``"EAGAIN"``), the message says why."""

    def __init__(self, message: str, errno: str = "EINVAL"):
        super().__init__(message)
        self.errno = errno


@dataclass(eq=False)
class MemCgroup:
    """One memory cgroup: its place in the tree and its event counters."""

    id: int
    path: str
    parent: "MemCgroup | None"
    children: list = field(default_factory=list)
    oom_group: bool = False
    events_local: dict = field(default_factory=lambda: dict.fromkeys(EVENTS, 0))
    vm_events: dict = field(default_factory=dict)  # own pgfault, pgscan_direct, ... counts

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"

    def subtree(self) -> list["MemCgroup"]:
        """This memcg and its descendants, in pre-order (css_next_descendant_pre)."""
        out = [self]
        for child in self.children:
            out.extend(child.subtree())
        return out

    def ancestors(self) -> list["MemCgroup"]:
        """This memcg and every ancestor up to the root."""
        out, c = [], self
        while c is not None:
            out.append(c)
            c = c.parent
        return out


def memparse(text) -> int:
    """memparse(): a number of bytes with an optional K, M, G, T, P or E suffix."""
    text = str(text).strip()
    units = "KMGTPE"
    if text and text[-1].upper() in units:
        return int(text[:-1]) << (10 * (units.index(text[-1].upper()) + 1))
    return int(text)


def pages_of(value) -> int:
    """page_counter_memparse(): bytes to whole pages (truncated); "max" is
    PAGE_COUNTER_MAX."""
    if value == "max":
        return int(MC.PAGE_COUNTER_MAX)
    return memparse(value) // PAGE


class MemoryController:
    """The memcg tree of one machine, and memcg reclaim and OOM."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.root = MemCgroup(0, "/", None)
        self.by_path: dict[str, MemCgroup] = {"/": self.root}
        self.by_id: dict[int, MemCgroup] = {0: self.root}
        self.delay: dict[int, float] = {}          # pid -> throttling not yet slept (s)
        self.reclaim_cursor: dict[int, int] = {}   # target id -> last memcg id walked

    @property
    def K(self):
        return self.kernel.mem.K

    # ----------------------------------------------------------- the tree

    def mkdir(self, path: str) -> MemCgroup:
        """Create a cgroup (and missing ancestors), online with default limits."""
        if path in self.by_path:
            return self.by_path[path]
        parent = self.mkdir(path.rsplit("/", 1)[0] or "/")
        free = [i for i in range(1, MC.MAX_MEMCGS) if i not in self.by_id]
        if not free:
            raise CgroupError(f"cannot create {path}: at most {MC.MAX_MEMCGS - 1} "
                              f"memory cgroups", "ENOSPC")
        memcg = MemCgroup(free[0], path, parent)
        parent.children.append(memcg)
        self.by_path[path] = memcg
        self.by_id[memcg.id] = memcg
        mc = self.K.mc
        mc[memcg.id] = MC.new_mc()[1]
        mc[memcg.id, MC.MC_PARENT] = parent.id
        mc[memcg.id, MC.MC_ONLINE] = 1
        self.K.mstat[memcg.id] = 0
        self.K.lrucost[memcg.id] = 0
        self.K.nonresident[memcg.id] = 0
        return memcg

    def get(self, path: str) -> MemCgroup:
        try:
            return self.by_path[path]
        except KeyError:
            raise CgroupError(f"no cgroup {path}", "ENOENT") from None

    def memcgs(self) -> list[MemCgroup]:
        return self.root.subtree()

    def tasks_in(self, memcg: MemCgroup, recursive: bool = True) -> list:
        """The live tasks of a memcg (cgroup.procs), or of its subtree."""
        paths = {c.path for c in memcg.subtree()} if recursive else {memcg.path}
        return [t for pid, t in sorted(self.kernel.tasks.items())
                if t.cgroup in paths and t.state != "Z"]

    def move(self, task, path: str) -> None:
        """cgroup.procs write: the task's new charges go to ``path``; what it
        charged before stays where it was (cgroup v2 does not move charges)."""
        memcg = self.get(path)
        if memcg.children and memcg is not self.root:     # cgroup_migrate_vet_dst
            raise CgroupError(f"{path} has child cgroups: cgroup v2 puts processes only "
                              f"in leaves (and the root)", "EBUSY")
        task.cgroup = path
        if self.kernel.current is task:
            self.kernel.current = task

    # ----------------------------------------------------------- counters

    def usage(self, memcg: MemCgroup) -> int:
        """page_counter_read(&memcg->memory): pages of the subtree."""
        return int(self.K.mc[memcg.id, MC.MC_USAGE])

    def limit(self, memcg: MemCgroup, col: int = MC.MC_MAX) -> int:
        return int(self.K.mc[memcg.id, col])

    def margin(self, memcg: MemCgroup) -> int:
        """Models mem_cgroup_margin(): pages the memcg may still charge."""
        usage, limit = self.usage(memcg), self.limit(memcg)
        return max(limit - usage, 0)

    def event(self, memcg: MemCgroup, name: str) -> None:
        """Models memcg_memory_event(): counted locally; memory.events sums the subtree."""
        memcg.events_local[name] += 1

    def events(self, memcg: MemCgroup, local: bool = False) -> dict:
        """memory.events (hierarchical) or memory.events.local."""
        if local:
            return dict(memcg.events_local)
        total = dict.fromkeys(EVENTS, 0)
        for c in memcg.subtree():
            for k, v in c.events_local.items():
                total[k] += v
        return total

    def summary(self, memcg: MemCgroup) -> dict:
        """One memcg's numbers for summary.json and ``linmem run``: sizes in
        KiB (limits None for max), its memory.events, and its subtree's
        reclaim and fault counts."""
        mc = self.K.mc[memcg.id]

        def limit(col):
            v = int(mc[col])
            return None if v >= MC.PAGE_COUNTER_MAX else v << 2

        sub = memcg.subtree()

        def total(name):
            return sum(c.vm_events.get(name, 0) for c in sub)
        return {"path": memcg.path, "current_kb": int(mc[MC.MC_USAGE]) << 2,
                "peak_kb": int(mc[MC.MC_PEAK]) << 2,
                "max_kb": limit(MC.MC_MAX), "high_kb": limit(MC.MC_HIGH),
                "low_kb": int(mc[MC.MC_LOW]) << 2, "min_kb": int(mc[MC.MC_MIN]) << 2,
                "swap_current_kb": int(mc[MC.MC_SWAP]) << 2,
                "swap_peak_kb": int(mc[MC.MC_SWAP_PEAK]) << 2,
                "swap_max_kb": limit(MC.MC_SWAP_MAX),
                "events": self.events(memcg),
                "pgscan": sum(total(f"pgscan_{w}") for w in ("kswapd", "direct", "proactive")),
                "pgsteal": sum(total(f"pgsteal_{w}") for w in ("kswapd", "direct", "proactive")),
                "pgfault": int(sum(self.K.mstat[c.id, MC.MS_PGFAULT] for c in sub)),
                "pgmajfault": int(sum(self.K.mstat[c.id, MC.MS_PGMAJFAULT] for c in sub))}

    # ----------------------------------------------------------- settings

    def write(self, path: str, key: str, value) -> int:
        """Write a control file (memory.max, memory.high, ..., memory.reclaim,
        memory.oom.group, memory.peak); the pages reclaimed by the write."""
        memcg = self.get(path)
        if memcg is self.root and key != "memory.reclaim":
            raise CgroupError(f"the root cgroup has no {key}", "ENOENT")
        if key == "memory.oom.group":
            memcg.oom_group = bool(int(value))
            return 0
        if key == "memory.reclaim":
            return self.memory_reclaim(memcg, value)
        if key == "memory.peak":                    # any write resets the watermark
            self.K.mc[memcg.id, MC.MC_PEAK] = self.usage(memcg)
            return 0
        if key == "memory.swap.peak":
            self.K.mc[memcg.id, MC.MC_SWAP_PEAK] = self.K.mc[memcg.id, MC.MC_SWAP]
            return 0
        if key not in SETTINGS:
            raise CgroupError(f"unknown memory controller file {key!r}", "ENOENT")
        self.K.mc[memcg.id, SETTINGS[key]] = pages_of(value)
        if key == "memory.max":
            return self.memory_max_write(memcg)
        if key == "memory.high":
            return self.memory_high_write(memcg)
        return 0

    def memory_high_write(self, memcg: MemCgroup) -> int:
        """Models memory_high_write(): reclaim down to the new high; give up
        after MAX_RECLAIM_RETRIES more rounds that freed nothing."""
        high = self.limit(memcg, MC.MC_HIGH)
        retries, total = MAX_RECLAIM_RETRIES, 0
        while True:
            usage = self.usage(memcg)
            if usage <= high:
                break
            reclaimed = self.try_to_free_mem_cgroup_pages(memcg, usage - high)
            total += reclaimed
            if not reclaimed:
                if retries == 0:
                    break
                retries -= 1
        return total

    def memory_max_write(self, memcg: MemCgroup) -> int:
        """Models memory_max_write(): reclaim down to the new max; after
        MAX_RECLAIM_RETRIES rounds without progress, OOM kills in the memcg
        until it fits or nothing is left to kill (each attempt counts oom)."""
        retries, total = MAX_RECLAIM_RETRIES, 0
        while True:
            usage, limit = self.usage(memcg), self.limit(memcg)
            if usage <= limit:
                break
            if retries > 0:
                reclaimed = self.try_to_free_mem_cgroup_pages(memcg, usage - limit)
                total += reclaimed
                if not reclaimed:
                    retries -= 1
                continue
            self.event(memcg, "oom")
            if not self.out_of_memory(memcg, 0, G.GFP_KERNEL):
                break
        return total

    def memory_reclaim(self, memcg: MemCgroup, value) -> int:
        """Models user_proactive_reclaim() for memory.reclaim: ``value`` is
        bytes, or "BYTES [swappiness=N|max]"; reclaim in rounds of a quarter
        of what is left; CgroupError (EAGAIN) after MAX_RECLAIM_RETRIES + 1
        rounds that freed nothing. The pages reclaimed."""
        words = str(value).split()
        if not words:
            raise CgroupError("memory.reclaim: no amount (EINVAL)")
        nr_to_reclaim = memparse(words[0]) // PAGE
        swappiness = None
        for word in words[1:]:
            k, _, v = word.partition("=")
            if k != "swappiness" or not v:
                raise CgroupError(f"memory.reclaim: unknown option {word!r} (EINVAL)")
            if v == "max":
                swappiness = 201                           # SWAPPINESS_ANON_ONLY
            elif v.isdigit() and 0 <= int(v) <= 200:
                swappiness = int(v)
            else:
                raise CgroupError(f"memory.reclaim: swappiness {v!r} is not 0-200 or max "
                                  f"(EINVAL)")
        reclaimed, retries = 0, MAX_RECLAIM_RETRIES
        while reclaimed < nr_to_reclaim:
            batch = (nr_to_reclaim - reclaimed) // 4
            got = self.try_to_free_mem_cgroup_pages(memcg, batch, proactive=True,
                                                    swappiness=swappiness)
            if not got:
                if retries == 0:
                    raise CgroupError(f"memory.reclaim: {reclaimed * PAGE} of "
                                      f"{nr_to_reclaim * PAGE} bytes reclaimed (EAGAIN)", "EAGAIN")
                retries -= 1
            reclaimed += got
        return reclaimed

    # ------------------------------------------------------------ reclaim

    def try_to_free_mem_cgroup_pages(self, memcg: MemCgroup, nr_pages: int,
                                     may_swap: bool = True, proactive: bool = False,
                                     swappiness: int | None = None) -> int:
        """Models try_to_free_mem_cgroup_pages(): reclaim from the memcg's
        subtree, at least SWAP_CLUSTER_MAX pages."""
        reclaim = self.kernel.machine.page_alloc.reclaim
        return reclaim.try_to_free_mem_cgroup_pages(memcg, nr_pages, may_swap=may_swap,
                                                    proactive=proactive, swappiness=swappiness)

    def calculate_protection(self, target: MemCgroup) -> None:
        """Models mem_cgroup_calculate_protection() for every memcg below the
        reclaim's target, top-down: emin and elow (pages) in ``self.emin``/
        ``self.elow``."""
        mc = self.K.mc
        self.emin, self.elow = {}, {}

        def claims(parent: MemCgroup, col: int) -> int:      # children_{min,low}_usage
            return sum(min(self.usage(c), int(mc[c.id, col])) for c in parent.children)

        for memcg in target.subtree():
            if memcg is target or memcg is self.root:
                continue
            usage = self.usage(memcg)
            parent = memcg.parent
            if parent is target:
                self.emin[memcg.id] = int(mc[memcg.id, MC.MC_MIN])
                self.elow[memcg.id] = int(mc[memcg.id, MC.MC_LOW])
                continue
            if not usage:
                self.emin[memcg.id] = self.elow[memcg.id] = 0
                continue
            parent_usage = self.usage(parent)
            self.emin[memcg.id] = effective_protection(
                usage, parent_usage, int(mc[memcg.id, MC.MC_MIN]),
                self.emin.get(parent.id, 0), claims(parent, MC.MC_MIN))
            self.elow[memcg.id] = effective_protection(
                usage, parent_usage, int(mc[memcg.id, MC.MC_LOW]),
                self.elow.get(parent.id, 0), claims(parent, MC.MC_LOW))

    def protection(self, target: MemCgroup, memcg: MemCgroup) -> tuple[int, int]:
        """Models mem_cgroup_protection(): (emin, elow), none for the target
        itself or the root."""
        if memcg is target or memcg is self.root:
            return 0, 0
        return self.emin.get(memcg.id, 0), self.elow.get(memcg.id, 0)

    def below_min(self, target: MemCgroup, memcg: MemCgroup) -> bool:
        """Models mem_cgroup_below_min()."""
        if memcg is target or memcg is self.root:
            return False
        return self.emin.get(memcg.id, 0) >= self.usage(memcg)

    def below_low(self, target: MemCgroup, memcg: MemCgroup) -> bool:
        """Models mem_cgroup_below_low()."""
        if memcg is target or memcg is self.root:
            return False
        return self.elow.get(memcg.id, 0) >= self.usage(memcg)

    def eligible(self, target: MemCgroup, memcg: MemCgroup, sc) -> bool:
        """The protection test of shrink_node_memcgs() for one memcg of the
        walk: never below its effective min; below its effective low only in
        the low-reclaiming pass (counting a low event), else the pass notes
        it skipped one (memcg_low_skipped)."""
        if self.below_min(target, memcg):
            return False
        if self.below_low(target, memcg):
            if not sc.memcg_low_reclaim:
                sc.memcg_low_skipped = True
                return False
            self.event(memcg, "low")
        return True

    # ------------------------------------------------------------- charge

    def charge_slowpath(self, memcg_id: int, nr_pages: int, gfp: int = 0) -> bool:
        """Models the retry loop of try_charge_memcg() after the fast path
        was refused: reclaim from the memcg over its limit, retry, then OOM
        inside it. True when the charge can now succeed; False for a
        costly (THP) charge that must fall back. A task killed meanwhile
        ends with OutOfMemory (raised by the OOM killer)."""
        memcg = self.by_id[memcg_id]
        retries, raised_max_event = MAX_RECLAIM_RETRIES, False
        costly = nr_pages > (1 << PAGE_ALLOC_COSTLY_ORDER)
        while True:
            over = self._over_limit(memcg, nr_pages)
            if over is None:
                return True
            if not raised_max_event:                    # once per charge
                self.event(over, "max")
                raised_max_event = True
            reclaimed = self.try_to_free_mem_cgroup_pages(over, nr_pages)
            if self.margin(over) >= nr_pages:
                continue
            if reclaimed and not costly:
                continue
            if retries > 0:
                retries -= 1
                continue
            if costly:                                  # no OOM above PAGE_ALLOC_COSTLY_ORDER
                return False
            self.event(over, "oom")
            if not self.out_of_memory(over, 0, gfp):
                from linmem.mm.memory import OutOfMemory
                raise OutOfMemory(f"memory cgroup {over.path} out of memory, "
                                  f"nothing left to kill")
            retries = MAX_RECLAIM_RETRIES          # a task was killed: retry afresh

    def _over_limit(self, memcg: MemCgroup, nr_pages: int) -> MemCgroup | None:
        """The first memcg from ``memcg`` up whose max the charge would pass."""
        mc = self.K.mc
        for c in memcg.ancestors():
            if mc[c.id, MC.MC_USAGE] + nr_pages > mc[c.id, MC.MC_MAX]:
                return c
        return None

    def charge_kernel_stack(self, task, pfns: list[int]) -> None:
        """A kernel stack's pages (memcg_charge_kernel_stack): charged to the
        task's memcg, forced past the limit if need be (XXX: fork does not
        fail with ENOMEM)."""
        memcg = self.by_path.get(task.cgroup, self.root)
        ref = self.K.ref
        for pfn in pfns:
            MC.page_counter_charge(ref, memcg.id, 1)
            MC.commit_charge(ref, pfn, memcg.id)
        self.K.mstat[memcg.id, MC.MS_KSTACK] += len(pfns)

    def uncharge_kernel_stack(self, pfns: list[int]) -> None:
        """The stack's pages leave their memcg as they are freed."""
        K = self.K
        for pfn in pfns:
            if K.flags[pfn] & MC.PG_memcg:
                K.mstat[int(K.memcg[pfn]), MC.MS_KSTACK] -= 1
                MC.uncharge_folio(K.ref, pfn, 1)

    # --------------------------------------------------------------- high

    def over_high(self, memcg_id: int) -> list[MemCgroup]:
        """The memcgs from ``memcg_id`` up whose usage passes memory.high."""
        mc = self.K.mc
        return [c for c in self.by_id[memcg_id].ancestors()
                if mc[c.id, MC.MC_USAGE] > mc[c.id, MC.MC_HIGH]]

    def handle_over_high(self, task, nr_pages: int) -> float:
        """Models mem_cgroup_handle_over_high(): reclaim ``nr_pages`` (the
        pages charged over high) from every memcg from the task's up that is
        above its high (reclaim_high, counting high), then, if the worst
        overage still calls for more than 10 ms, retry (SWAP_CLUSTER_MAX
        pages a round; MAX_RECLAIM_RETRIES rounds without progress), and
        sleep the penalty: in proportion to the square of the overage and
        to ``nr_pages``, at most 2 s. The seconds slept."""
        memcg = self.by_path.get(task.cgroup, self.root)
        retries, in_retry = MAX_RECLAIM_RETRIES, False
        while True:
            reclaimed = self.reclaim_high(memcg, 32 if in_retry else nr_pages)
            penalty = min(self.calculate_high_delay(memcg, nr_pages),
                          MEMCG_MAX_HIGH_DELAY_JIFFIES)
            if penalty <= HZ // 100:
                return 0.0
            if reclaimed or retries > 0:
                if not reclaimed:
                    retries -= 1
                in_retry = True
                continue
            return penalty / HZ

    def return_to_user(self, task) -> None:
        """resume_user_mode_work(): a task that charged pages over memory.high
        pays for them before it runs on."""
        if self.K.ctl[P.C_OVER_HIGH] > 0:
            self.pay_over_high(task)

    def pay_over_high(self, task) -> None:
        """mem_cgroup_handle_over_high() for the current task; the sleep is
        added to the task's time (``take_delay``)."""
        nr_pages = int(self.K.ctl[P.C_OVER_HIGH])
        self.K.ctl[P.C_OVER_HIGH] = 0
        if nr_pages:
            delay = self.handle_over_high(task, nr_pages)
            if delay:
                self.delay[task.pid] = self.delay.get(task.pid, 0.0) + delay

    def take_delay(self, pid: int) -> float:
        """The throttling sleeps of a task since the last call (seconds)."""
        return self.delay.pop(pid, 0.0)

    def reclaim_high(self, memcg: MemCgroup, nr_pages: int) -> int:
        """Models reclaim_high(): each memcg from ``memcg`` up above its high
        counts a high event and reclaims ``nr_pages``."""
        total = 0
        mc = self.K.mc
        for c in memcg.ancestors():
            if c is self.root:
                break
            if mc[c.id, MC.MC_USAGE] <= mc[c.id, MC.MC_HIGH]:
                continue
            self.event(c, "high")
            total += self.try_to_free_mem_cgroup_pages(c, nr_pages)
        return total

    def calculate_high_delay(self, memcg: MemCgroup, nr_pages: int) -> int:
        """Models calculate_high_delay() with mem_find_max_overage (jiffies)."""
        mc = self.K.mc
        max_overage = 0
        for c in memcg.ancestors():
            if c is self.root:
                break
            max_overage = max(max_overage, calculate_overage(int(mc[c.id, MC.MC_USAGE]),
                                                             int(mc[c.id, MC.MC_HIGH])))
        if not max_overage:
            return 0
        penalty = max_overage * max_overage * HZ
        penalty >>= MEMCG_DELAY_PRECISION_SHIFT
        penalty >>= MEMCG_DELAY_SCALING_SHIFT
        return penalty * nr_pages // MEMCG_CHARGE_BATCH

    # ---------------------------------------------------------------- OOM

    def out_of_memory(self, memcg: MemCgroup, order: int, gfp: int = 0) -> bool:
        """Models mem_cgroup_out_of_memory(): the OOM killer constrained to the
        memcg's tasks, against the memcg's limit. With memory.oom.group the
        victim's whole group (mem_cgroup_get_oom_group: the highest ancestor
        up to the OOM memcg with oom.group set) is killed. True when something
        was killed."""
        return self.kernel.out_of_memory(order, gfp, memcg=memcg)

    def oom_report(self, memcg: MemCgroup) -> dict:
        """What a memcg OOM report adds (mem_cgroup_print_oom_meminfo): the
        constraint, the memcg and its counters (pages)."""
        from linmem.mm.memcontrol_stat import memory_stat, memory_stat_v1
        mc = self.K.mc[memcg.id]
        v1 = getattr(self.kernel.machine, "cgroup_version", 2) == 1
        stat = (memory_stat_v1 if v1 else memory_stat)(self.kernel, memcg)
        return {"constraint": "CONSTRAINT_MEMCG", "oom_memcg": memcg.path,
                "cgroup_version": 1 if v1 else 2,
                "memory_usage_pages": int(mc[MC.MC_USAGE]),
                "memory_limit_pages": int(mc[MC.MC_MAX]),
                "memory_failcnt": int(mc[MC.MC_FAILCNT]) if v1 else self.events(memcg)["max"],
                "swap_usage_pages": int(mc[MC.MC_SWAP]),
                "swap_limit_pages": int(mc[MC.MC_SWAP_MAX]),
                "swap_failcnt": int(mc[MC.MC_SWAP_EVENTS_MAX]),
                "kmem_usage_pages": int(sum(self.K.mstat[c.id, MC.MS_PAGETABLES] +
                                            self.K.mstat[c.id, MC.MS_KSTACK]
                                            for c in memcg.subtree())),
                "memcg_stat": stat,
                "totalpages": self.totalpages(memcg)}

    def count_oom_kill(self, victim, group: list) -> None:
        """memcg_memory_event(OOM_KILL) on each killed task's memcg, and
        OOM_GROUP_KILL for the others of a memory.oom.group."""
        for task in [victim, *group]:
            memcg = self.by_path.get(task.cgroup, self.root)
            self.event(memcg, "oom_kill")
            if task is not victim:
                self.event(memcg, "oom_group_kill")
        if group:
            self.event(self.by_path.get(victim.cgroup, self.root), "oom_group_kill")

    def oom_group_of(self, victim, oom_memcg: MemCgroup) -> MemCgroup | None:
        """Models mem_cgroup_get_oom_group()."""
        memcg = self.by_path.get(victim.cgroup)
        group = None
        c = memcg
        while c is not None:
            if c.oom_group:
                group = c
            if c is oom_memcg:
                break
            c = c.parent
        return group

    def totalpages(self, memcg: MemCgroup) -> int:
        """Models mem_cgroup_get_max() (v2), the OOM's totalpages: the
        memcg's max, plus the swap it may use when swappiness is not 0."""
        m = self.kernel.machine
        limit = self.limit(memcg)
        if int(m.sysctl["swappiness"]):
            limit += min(int(self.K.mc[memcg.id, MC.MC_SWAP_MAX]), m.total_swap_pages)
        return limit or 1


def effective_protection(usage: int, parent_usage: int, setting: int, parent_effective: int,
                         siblings_protected: int) -> int:
    """Models effective_protection() without memory_recursiveprot: the
    memcg's claim (its setting, up to its usage), scaled down in proportion
    when the siblings' claims together pass the parent's protection."""
    protected = min(usage, setting)
    if siblings_protected > parent_effective:
        return protected * parent_effective // siblings_protected
    return protected


def calculate_overage(usage: int, high: int) -> int:
    """Models calculate_overage(): (usage - high) / high, fixed point 2^20."""
    if usage <= high:
        return 0
    high = max(high, 1)
    return ((usage - high) << MEMCG_DELAY_PRECISION_SHIFT) // high
