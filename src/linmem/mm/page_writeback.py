"""Dirty-memory limits and the throttling of writers (mm/page-writeback.c).

The dirty thresholds are fractions (``dirty_ratio``, ``dirty_background_ratio``)
of the memory that may hold dirty data, or absolute (``*_bytes``); they are
shown in /proc/vmstat. A task writing to files calls balance_dirty_pages
every ``nr_dirtied_pause`` pages: over the background threshold it starts
the flusher, and past the free-run ceiling it is made to sleep so that the
dirty pages settle between the ceiling and the threshold, at the speed the
disk writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# ---------------------------------------------------------------------------
# balance_dirty_pages: throttling writers

HZ = 250                      # CONFIG_HZ of the distribution kernels
MAX_PAUSE = max(HZ // 5, 1)   # jiffies: 200 ms
DIRTY_POLL_INITIAL = 32       # current->nr_dirtied_pause at fork (128 KiB)
MIN_PAUSE_TARGET = 0.010      # seconds of writing between two calls (wb_min_pause)


@dataclass
class DirtyThrottle:
    """A task's dirty-throttling state (task_struct nr_dirtied,
    nr_dirtied_pause, dirty_paused_when)."""

    nr_dirtied: int = 0
    nr_dirtied_pause: int = DIRTY_POLL_INITIAL
    dirty_paused_when: float = 0.0
    exceeded: bool = False


def ilog2(x: int) -> int:
    return max(0, int(x).bit_length() - 1)


def dirty_poll_interval(dirty: int, thresh: int) -> int:
    """Models dirty_poll_interval(): how many pages a task may dirty before
    looking again, while below the free-run ceiling: about the square root
    of the distance to the threshold."""
    if thresh > dirty:
        return 1 << (ilog2(thresh - dirty) >> 1)
    return 1


def dirty_freerun_ceiling(thresh: int, bg_thresh: int) -> int:
    """Models dirty_freerun_ceiling(): below this, writers are not throttled."""
    return (thresh + bg_thresh) // 2


def pos_ratio_polynom(setpoint: int, dirty: int, limit: int) -> float:
    """Models pos_ratio_polynom(): the global control line
    1 + ((setpoint - dirty) / (limit - setpoint + 1))^3, clamped to [0, 2]."""
    x = (setpoint - dirty) / (limit - setpoint + 1)
    return min(max(1.0 + x * x * x, 0.0), 2.0)


def wb_max_pause(bw_pages: float, wb_dirty: int) -> float:
    """Models wb_max_pause(): long enough to write the dirty pages, at most
    MAX_PAUSE (200 ms). In seconds."""
    t = wb_dirty // (1 + int(bw_pages) // 32)     # roundup_pow_of_two(1 + HZ/8) = 32
    return min(t + 1, MAX_PAUSE) / HZ


def balance_dirty_pages(machine, throttle: DirtyThrottle, now: float, wb,
                        write_bw_pages: float, dirtiers: int = 1) -> float:
    """How long a task that has dirtied ``throttle.nr_dirtied`` pages sleeps.

    Models balance_dirty_pages() for the global domain: background writeback
    starts once more than the background threshold is dirty; below the
    free-run ceiling (half-way between the two thresholds) there is no pause;
    above it the task is paused so that it dirties at ``task_ratelimit`` =
    ``dirty_ratelimit`` x pos_ratio, where pos_ratio falls from 1 at the
    setpoint (half-way between the ceiling and the threshold) to 0 at the
    threshold; at or past the threshold the pause is the longest
    (wb_max_pause) and the task keeps being paused (dirty_exceeded) until
    the dirty pages fall back below it.

    XXX: ``dirty_ratelimit`` is the disk's write bandwidth shared by the tasks
    dirtying (the value wb_update_dirty_ratelimit converges to); the per-wb
    control line, the pause's lower bound (wb_min_pause) and the 200 ms
    bandwidth sampling are left out.
    """
    bg, thresh = global_dirty_limits(machine)
    node = machine.node_stat
    nr_dirty = int(node[node_item("nr_dirty")])
    dirty = nr_dirty + int(node[node_item("nr_writeback")])
    if nr_dirty > bg and not wb.in_progress:
        wb.start_background(now)
    freerun = dirty_freerun_ceiling(thresh, bg)
    throttle.exceeded = dirty > thresh
    if dirty <= freerun:
        throttle.dirty_paused_when = now
        throttle.nr_dirtied = 0
        throttle.nr_dirtied_pause = dirty_poll_interval(dirty, thresh)
        return 0.0
    setpoint = (freerun + thresh) // 2
    pos_ratio = 0.0 if dirty >= thresh else pos_ratio_polynom(setpoint, dirty, thresh)
    task_ratelimit = write_bw_pages / max(1, dirtiers) * pos_ratio
    max_pause = wb_max_pause(write_bw_pages, dirty)
    if task_ratelimit < 1:
        pause = max_pause
    else:
        period = throttle.nr_dirtied / task_ratelimit
        pause = period - (now - throttle.dirty_paused_when) if throttle.dirty_paused_when else period
        pause = min(max(pause, 0.0), max_pause)
    throttle.dirty_paused_when = now + pause
    throttle.nr_dirtied = 0
    throttle.nr_dirtied_pause = max(1, int(task_ratelimit * MIN_PAUSE_TARGET))
    return pause
