"""Running a scenario: boot the machine, run its processes and timed events.

The runner owns simulated time. It boots the machine from the scenario's
``machine`` and ``sysctl`` sections, starts each process at its ``start`` time
(exec of its program), and then always runs the step that is due first: a
process step when the process is ready (steps of one process run in order,
each taking simulated time), or an ``at`` event at its time. Ties go to
``at`` events, then to process starts, then to the lowest PID, so a scenario
and its seed always give the same run. ``wait`` blocks until the named child
has exited (and reaps it). A process that runs out of steps exits with 0.

Time model (seconds of simulated time, documented here and in docs/):

=====================  =========================================
memory access (hit)     ``T_ACCESS`` = 5 ns per page access
minor fault             ``T_MINOR`` = 0.5 us
major fault             the disk's time for the pages read (latency each,
                        plus size / read_bandwidth, behind queued I/O);
                        ``T_MAJOR`` = 80 us where no disk is in use
read(2), write(2)       ``T_COPY`` = 0.2 us per page copied, plus the disk's
                        time for reads, plus balance_dirty_pages' pauses
fsync(2)                until the file's writeback and the journal commit
                        are on disk
system call             ``T_SYSCALL`` = 1 us (mmap, munmap, brk, madvise...)
fork                    ``T_FORK`` = 50 us + 0.1 us per page table entry copied
exec                    ``T_EXEC`` = 200 us
swapon, swapoff         ``T_SYSCALL``; swapoff also ``T_MAJOR`` per page
                        it reads back (an ``at`` event takes no time)
cgroup, cgroup_move     ``T_SYSCALL`` a step, whatever its writes reclaim
                        (an ``at`` event takes no time)
=====================  =========================================

The kernel's own work happens on timers between steps: the flusher, the
journal's commits, the completions of the disk's writes.

Errors of the program (not of the scenario) are events, as on a real
machine: a swapon or swapoff that fails is a ``swapon``/``swapoff`` event
with its ``errno`` (the area keeps its state, the process goes on), and so
is a refused write to a cgroup file (``cgroup_write``, e.g. EAGAIN from
memory.reclaim) or move (``cgroup_move``, EBUSY into a cgroup with
children); ENOMEM from mmap, brk, malloc or fork makes the process exit with
status 1 (as a program that checks malloc does); a bad access kills it with
SIGSEGV. When reclaim cannot find a page the OOM killer kills the process
of highest badness (an ``oom_kill`` event lists every candidate).

kswapd's runs are events too: ``kswapd_wake`` (the zone and order that woke
it) and ``kswapd_sleep`` (pages scanned and reclaimed, the final priority,
whether the node ended balanced). The clock does not move inside a step, and
one ``touch`` step over a large region may wake kswapd thousands of times, so
consecutive runs at the same simulated time are coalesced: while the last two
events are the wake/sleep pair of this time, a new run is added to that pair
(``wakes`` and ``runs`` count the runs; the zone and order become the highest
asked; scanned and reclaimed are summed; ``priority`` is the lowest reached
and ``balanced`` that of the last run). Any other event in between, or a
later time, starts a new pair, so the events stay in time order and there
are at most two for each step, timer or other event that woke kswapd.

The timeline (``timeline.csv``) has, per sample, the time, every meminfo
field, every /proc/vmstat counter, ``kswapd_wakes`` (cumulative) and the
per-second rates over the interval since the previous sample of swap
traffic, faults and reclaim (``pswpin_rate`` ...; see ``RATE_COUNTERS``).

Outputs are collected in memory (:class:`RunResult`) and written by
:func:`write_outputs` into a fresh directory that replaces the target only once
complete, so a run that fails leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import io
import json
import os
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from linmem.errors import InputError
from linmem.kernel.machine import Machine
from linmem.mm.memcontrol import CgroupError
from linmem.mm.memory import OutOfMemory
from linmem.mm.oom_kill import KernelPanic
from linmem.mm.vmstat import node_item
from linmem.mm.swapfile import SwapError
from linmem.mm.vmstat import vm_event
from linmem.procfs.meminfo import meminfo_fields
from linmem.procfs.pagecache import pagecache_json
from linmem.procfs.tree import proc_files, sys_files, write_tree
from linmem.procfs.vmstat import vmstat_values
from linmem.workload import steps as S

T_SAMPLE_EPS = 1e-12
RECLAIMING_FILES = ("memory.max", "memory.high", "memory.reclaim")   # writes that reclaim
RATE_COUNTERS = ("pswpin", "pswpout", "pgmajfault", "pgscan_kswapd", "pgsteal_kswapd",
                 "pgscan_direct", "pgsteal_direct")
_PSWPIN = vm_event("pswpin")


@dataclass
class RunResult:
    """Everything a run produced."""

    machine: Machine
    final: dict[str, str]
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    final_sys: dict[str, str] = field(default_factory=dict)           # the /sys tree at the end
    snapshots_sys: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    processes: list[dict] = field(default_factory=list)
    pagecache: dict[str, str] = field(default_factory=dict)   # "" (final) or snapshot -> json
    panicked: str = ""                                        # why the kernel panicked, if it did
    kswapd_wakes: int = 0
    swap_peak_kb: int = 0                                     # SwapTotal - SwapFree, at its peak

    def summary(self) -> dict:
        """Totals of the run (summary.json)."""
        m = self.machine
        ev = dict(vmstat_values(m))
        return {
            "name": m.name,
            "seed": m.seed,
            "seconds": round(m.clock, 6),
            "machine": {"arch": m.arch, "ram_bytes": m.ram, "cpus": m.nr_cpus,
                        "mem_total_kb": m.totalram_pages << 2,
                        "min_free_kbytes": int(m.sysctl["min_free_kbytes"])},
            "faults": {"minor": ev["pgfault"] - ev["pgmajfault"], "major": ev["pgmajfault"]},
            "pswpin": ev["pswpin"], "pswpout": ev["pswpout"], "oom_kill": ev["oom_kill"],
            "reclaim": {"kswapd_runs": ev["pageoutrun"], "allocstall": sum(
                            v for k, v in ev.items() if k.startswith("allocstall_")),
                        "pgscan_kswapd": ev["pgscan_kswapd"], "pgsteal_kswapd": ev["pgsteal_kswapd"],
                        "pgscan_direct": ev["pgscan_direct"], "pgsteal_direct": ev["pgsteal_direct"],
                        "workingset_refault_file": ev["workingset_refault_file"],
                        "workingset_activate_file": ev["workingset_activate_file"],
                        "kswapd_wakes": self.kswapd_wakes,
                        "workingset_refault_anon": ev["workingset_refault_anon"],
                        "workingset_activate_anon": ev["workingset_activate_anon"]},
            "swap": self._swap_summary(ev),
            "cgroups": self._cgroups(),
            "rates": self._rates(ev),
            "allocation_failures": m.page_alloc.alloc_failures,
            "panic": self.panicked or None,
            "processes": self.processes,
        }

    def _swap_summary(self, ev: dict) -> dict:
        """Swap space and traffic: sizes in KiB, traffic in pages. The peak
        of swap in use is the highest seen at step ends and samples."""
        m = self.machine
        used = (m.total_swap_pages - m.nr_swap_pages) << 2
        cached = int(m.node_stat[node_item("nr_swapcached")]) << 2
        return {"total_kb": m.total_swap_pages << 2, "used_kb": used,
                "peak_used_kb": max(self.swap_peak_kb, used), "cached_kb": cached,
                "pswpin": ev["pswpin"], "pswpout": ev["pswpout"],
                "swap_ra": ev["swap_ra"], "swap_ra_hit": ev["swap_ra_hit"]}

    def _cgroups(self) -> list[dict]:
        """Every memory cgroup but the root, at the end (memory.current,
        peak, limits, events, reclaim)."""
        kernel = self.machine._kernel
        if kernel is None:
            return []
        ctl = kernel.memcg
        return [ctl.summary(m) for m in ctl.memcgs() if m is not ctl.root]

    def _rates(self, ev: dict) -> dict:
        """Per-second rates of RATE_COUNTERS: the mean over the run and the
        peak over the timeline's intervals."""
        rows, seconds = self.timeline, self.machine.clock
        return {name: {"mean": round(ev[name] / seconds, 3) if seconds > 0 else 0.0,
                       "peak": max((r[f"{name}_rate"] for r in rows), default=0.0)}
                for name in RATE_COUNTERS}


def _sample(machine: Machine, previous: dict | None, kswapd_wakes: int) -> dict:
    """One timeline row: meminfo, vmstat, kswapd wakes, and the rates since ``previous``."""
    row = {"time": round(machine.clock, 6)}
    row.update({label.rstrip(":"): kb for label, kb in meminfo_fields(machine)})
    row.update(dict(vmstat_values(machine)))
    row["kswapd_wakes"] = kswapd_wakes
    dt = row["time"] - previous["time"] if previous else 0.0
    for name in RATE_COUNTERS:
        row[f"{name}_rate"] = round((row[name] - previous[name]) / dt, 3) if dt > 0 else 0.0
    return row


class Run:
    """One run of a scenario: the event loop over processes and ``at`` events."""

    def __init__(self, scenario, progress=None):
        self.scenario = scenario
        self.progress = progress               # called as progress(clock, done, total)
        self.machine = Machine.from_scenario(scenario)
        self.result = RunResult(machine=self.machine, final={})
        self.queue: list[tuple] = []           # (time, kind, order, payload)
        self.order = 0
        self.next_sample = 0.0
        self.procs: dict[int, S.Proc] = {}
        self.peak_swap_kb: dict[int, int] = {}     # pid -> highest VmSwap seen
        self._kswapd_pair = None                   # the wake/sleep pair a run is added to
        self.machine.kernel.oom_listeners.append(self._oom_kill)
        self.machine.page_alloc.kswapd_listeners.append(self._kswapd)
        if scenario.files:
            fs = self.machine.kernel.fs
            for path, size in scenario.files.items():
                fs.create(path, size, boot=True)
        for area in scenario.swap:                 # swapon -a at boot, in the order listed
            if area.active:
                self.swapon(area.path)
        memcg = self.machine.kernel.memcg
        for path in sorted(scenario.cgroups):      # parents before children
            memcg.mkdir(path)
        for path, limits in scenario.cgroups.items():
            for key, value in limits.settings().items():
                memcg.write(path, key, value)

    def push(self, time: float, kind: int, payload) -> None:
        """Queue work at ``time``; ``kind`` orders ties: 0 at-event, 1 start, 2 step."""
        self.order += 1
        heapq.heappush(self.queue, (time, kind, self.order, payload))

    def run(self) -> RunResult:
        sc = self.scenario
        for event in sc.at:
            self.push(event.time, 0, event)
        for i, proc in enumerate(sc.processes):
            self.push(proc.start, 1, (i, proc))
        total, done = _work_items(sc), 0
        try:
            while self.queue:
                time, kind, _order, payload = heapq.heappop(self.queue)
                self._advance(time)
                if kind == 0:
                    self._at_event(payload)
                elif kind == 1:
                    self._start(*payload)
                else:
                    pc = payload.pc
                    self._step(payload)
                done += 1 if kind < 2 else max(0, payload.pc - pc)
                if self.progress is not None:
                    self.progress(self.machine.clock, min(done, total), total)
        except KernelPanic as panic:
            self.event("panic", message=f"Kernel panic - not syncing: {panic}")
            self.result.panicked = str(panic)
        self._advance(self.machine.clock)
        self.result.final = proc_files(self.machine)
        self.result.final_sys = sys_files(self.machine)
        self.result.pagecache[""] = pagecache_json(self.machine)
        self._note_swap()
        self.result.processes = [{**p.summary(), "peak_swap_kb": self.peak_swap_kb.get(pid, 0)}
                                 for pid, p in self.procs.items()]
        return self.result

    def _advance(self, time: float) -> None:
        """Move the clock to ``time``: the kernel's timers (writeback, I/O
        completions, the journal) fire and the timeline is sampled on the way,
        in time order (a sample sees the timers due at its time)."""
        m = self.machine
        while True:
            timer = m.next_timer()
            if timer is not None and timer <= time and timer <= self.next_sample + T_SAMPLE_EPS:
                m.run_timers(timer)
            elif self.next_sample <= time + T_SAMPLE_EPS:
                m.clock = max(m.clock, self.next_sample)
                rows = self.result.timeline
                rows.append(_sample(m, rows[-1] if rows else None, self.result.kswapd_wakes))
                self._note_swap()
                self.next_sample += self.scenario.sample
            else:
                break
        m.clock = max(m.clock, time)

    # ------------------------------------------------------------- events

    def _at_event(self, event) -> None:
        if event.action == "snapshot":
            self.snapshot(event.snapshot)
        elif event.action == "swapon":
            self.swapon(event.swapon)
        elif event.action == "swapoff":
            self.swapoff(event.swapoff)
        elif event.action == "cgroup":
            self.cgroup_write(event.cgroup, None)
        else:
            self.sysctl(event.sysctl.as_dict(), f"at {event.time:g}s")

    def cgroup_write(self, write, task, **caller) -> None:
        """Write the control files of ``write`` in the order written, as
        ``task`` (None for an ``at`` event: no process is the writer, so
        none is the OOM killer's current task). Each write is a
        ``cgroup_write`` event: the file, the text written, the pages it
        reclaimed (memory.max, memory.high, memory.reclaim), or ``errno``
        and ``message`` when the kernel refused it."""
        kernel = self.machine.kernel
        saved, kernel.current = kernel.current, task
        try:
            for name, text in write.writes():
                self._cgroup_write_file(write.path, name, text, caller)
        finally:
            kernel.current = saved

    def _cgroup_write_file(self, path: str, name: str, text: str, caller: dict) -> None:
        args = {"path": path, "file": name, "value": text, **caller}
        try:
            pages = self.machine.kernel.memcg.write(path, name, text)
        except CgroupError as err:
            self.event("cgroup_write", **args, errno=err.errno, message=str(err))
            return
        except OutOfMemory:
            # memory.max's OOM kill chose the writer: the write is done and
            # the writer dies on its way back to user space.
            self.event("cgroup_write", **args)
            raise
        if name in RECLAIMING_FILES:
            args["pages_reclaimed"] = pages
        self.event("cgroup_write", **args)

    def swapon(self, path: str, **caller) -> None:
        """swapon(2) of the area listed under ``swap`` at ``path``: a
        ``swapon`` event (with ``errno`` when it fails: EBUSY if already on)."""
        spec = next(a for a in self.scenario.swap if a.path == path)
        try:
            area = self.machine.kernel.swap.swapon(path, spec.size, spec.priority, spec.type)
        except SwapError as err:
            self.event("swapon", path=path, **caller, errno=err.errno, message=str(err))
            return
        self.event("swapon", path=path, **caller, type=area.kind, pages=area.pages,
                   priority=area.priority)

    def swapoff(self, path: str, total_vm: int = 0, **caller) -> int:
        """swapoff(2) of the area at ``path``: a ``swapoff`` event with the
        pages read back (pswpin), or with ``errno`` when it fails (EINVAL if
        the area is off, ENOMEM without the memory to bring its pages
        back: the area stays on). Returns the pages read."""
        events = self.machine.page_alloc.S.events
        before = int(events[_PSWPIN])
        try:
            self.machine.kernel.swap.swapoff(path, total_vm)
        except SwapError as err:
            self.event("swapoff", path=path, **caller, errno=err.errno, message=str(err),
                       pages_read=int(events[_PSWPIN]) - before)
            return int(events[_PSWPIN]) - before
        self.event("swapoff", path=path, **caller, pages_read=int(events[_PSWPIN]) - before)
        return int(events[_PSWPIN]) - before

    def snapshot(self, name: str) -> None:
        self.result.snapshots[name] = proc_files(self.machine)
        self.result.snapshots_sys[name] = sys_files(self.machine)
        self.result.pagecache[name] = pagecache_json(self.machine)
        self.event("snapshot", name=name)

    def sysctl(self, values: dict, where: str) -> None:
        for name, value in values.items():
            try:
                self.machine.write_sysctl(f"vm.{name}", value)
            except ValueError as err:
                raise InputError(f"{where}: sysctl", str(err)) from None
            self.event("sysctl", name=f"vm.{name}", value=value)

    def event(self, kind: str, **fields) -> None:
        self.result.events.append({"time": round(self.machine.clock, 9), "event": kind, **fields})

    # ---------------------------------------------------------- processes

    def _start(self, index: int, spec) -> None:
        where = f"{self.scenario.source or '<scenario>'}: processes[{index}]"
        proc = S.start_process(self, spec, where)
        self.procs[proc.task.pid] = proc
        self.push(self.machine.clock + S.T_EXEC, 2, proc)

    def add_child(self, proc: "S.Proc") -> None:
        self.procs[proc.task.pid] = proc
        self.push(self.machine.clock, 2, proc)

    def _step(self, proc: "S.Proc") -> None:
        if proc.done or proc.blocked:
            return
        cost = S.run_step(self, proc)
        self._note_swap()
        if not proc.done and not proc.blocked:
            self.push(self.machine.clock + cost, 2, proc)

    def _oom_kill(self, victim, report: dict, current: bool) -> None:
        """The OOM killer chose ``victim``: an event with every candidate; a
        victim other than the faulting process ends here (the faulting one
        ends in its step)."""
        self.event("oom_kill", **report)
        proc = self.procs.get(victim.pid)
        if proc is not None:
            S.note_rss(self, proc)                  # its peak, before its memory goes
        if proc is not None and not current:
            S.do_exit(self, proc, 0, signal=9)

    def _kswapd(self, what: str, info: dict) -> None:
        """kswapd woke or went to sleep (PageAllocator.kswapd_listeners): an
        event, or an addition to the pair just recorded when nothing else
        happened since at this time (the rule in the module's docstring)."""
        if what == "wake":
            self.result.kswapd_wakes += 1
            self._kswapd_wake(info)
        else:
            self._kswapd_sleep(info)

    def _kswapd_wake(self, info: dict) -> None:
        ev, now = self.result.events, round(self.machine.clock, 9)
        pair = ev[-2:]
        if [e["event"] for e in pair] == ["kswapd_wake", "kswapd_sleep"] \
                and pair[1]["time"] == now:
            wake = pair[0]
            wake["wakes"] += 1
            zones = self.machine.page_alloc.zone_names
            if zones.index(info["zone"]) > zones.index(wake["zone"]):
                wake["zone"] = pair[1]["zone"] = info["zone"]
            wake["order"] = max(wake["order"], info["order"])
            self._kswapd_pair = pair
            return
        self._kswapd_pair = None
        self.event("kswapd_wake", zone=info["zone"], order=info["order"], wakes=1)

    def _kswapd_sleep(self, info: dict) -> None:
        pair, self._kswapd_pair = self._kswapd_pair, None
        if pair is None:
            self.event("kswapd_sleep", zone=info["zone"], runs=1, scanned=info["scanned"],
                       reclaimed=info["reclaimed"], priority=info["priority"],
                       balanced=info["balanced"])
            return
        sleep = pair[1]
        sleep["runs"] += 1
        sleep["scanned"] += info["scanned"]
        sleep["reclaimed"] += info["reclaimed"]
        if info["priority"] is not None:
            sleep["priority"] = min(p for p in (sleep["priority"], info["priority"])
                                    if p is not None)
        sleep["balanced"] = info["balanced"]

    def _note_swap(self) -> None:
        """Peaks of swap use: the machine's (SwapTotal - SwapFree) and each
        live process's VmSwap, seen at step ends and samples."""
        m = self.machine
        self.result.swap_peak_kb = max(self.result.swap_peak_kb,
                                       (m.total_swap_pages - m.nr_swap_pages) << 2)
        if not m.total_swap_pages:
            return
        mem = m.kernel.mem
        for proc in self.procs.values():
            if proc.task.mm is not None:
                swap_kb = mem.rss(proc.task.mm.id)[2] << 2
                if swap_kb > self.peak_swap_kb.get(proc.task.pid, 0):
                    self.peak_swap_kb[proc.task.pid] = swap_kb

    def wake(self, proc: "S.Proc") -> None:
        """A blocked process may go on (its child exited)."""
        proc.blocked = False
        self.push(self.machine.clock, 2, proc)


def _work_items(scenario) -> int:
    """The work a run does, known before it starts: ``at`` events, process
    starts and steps (those of forked children included). A process killed
    early leaves some undone."""
    def steps(items) -> int:
        return sum(1 + (steps(s.args.steps) if s.kind == "fork" else 0) for s in items)
    return len(scenario.at) + sum(1 + steps(p.steps) for p in scenario.processes)


def run_scenario(scenario, progress=None) -> RunResult:
    """Run a validated scenario and return what it produced.

    ``progress``, if given, is called after each event and step as
    ``progress(clock, done, total)``: the simulated time, the work done
    and the work the scenario holds (``at`` events, starts and steps).
    """
    return Run(scenario, progress).run()


def _timeline_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_outputs(result: RunResult, out: Path) -> None:
    """Write the run's outputs to ``out`` (SCENARIO.md "Outputs"), atomically.

    Everything is written into a temporary sibling directory which then takes
    the place of ``out``. An existing ``out`` is replaced only if it is empty
    or holds an earlier run (it has a summary.json). Interrupted (Ctrl-C:
    KeyboardInterrupt) while writing, it removes the temporary directory and
    leaves ``out`` as it was; SIGINT waits while the directories are renamed
    and cleaned up, so ``out`` is always absent, the earlier run, or this
    one complete.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "summary.json").exists())):
        raise InputError(str(out), "exists and is not an earlier linmem output; "
                         "choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with _sigint_deferred():                    # a Ctrl-C now still finds tmp to remove
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        write_tree(result.final, tmp / "proc")
        write_tree(result.final_sys, tmp / "sys")
        for name, files in result.snapshots.items():
            write_tree(files, tmp / "snapshots" / name / "proc")
        for name, files in result.snapshots_sys.items():
            write_tree(files, tmp / "snapshots" / name / "sys")
        for name, text in result.pagecache.items():
            target = tmp / "snapshots" / name if name else tmp
            target.mkdir(parents=True, exist_ok=True)
            (target / "pagecache.json").write_text(text)
        (tmp / "timeline.csv").write_text(_timeline_csv(result.timeline))
        (tmp / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in result.events))
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        os.chmod(tmp, 0o755)
        with _sigint_deferred():
            if out.exists():
                old = out.with_name(f".{out.name}.old")
                os.rename(out, old)
                os.rename(tmp, out)
                shutil.rmtree(old)
            else:
                os.rename(tmp, out)
    finally:
        with _sigint_deferred():
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp)


@contextlib.contextmanager
def _sigint_deferred():
    """Hold SIGINT back for the duration of the block, then deliver it
    (KeyboardInterrupt) at its end; outside the main thread, do nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)

