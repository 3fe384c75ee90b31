"""``linmem run [SCENARIO] [--out DIR]``: run a scenario and show the machine.

SCENARIO is a YAML file (docs/scenario.md) or the name of a built-in example
(``linmem examples`` lists them); without one, the built-in default runs.
With ``--out`` the outputs (the /proc tree, snapshots, timeline, events,
summary) are written to DIR; either way a short summary is printed.

On a terminal, a run that lasts more than a second shows a progress bar on
stderr: the scenario's steps done (``at`` events, process starts and steps)
and the simulated time reached. Ctrl-C stops the run cleanly with exit
status 130: interrupted while running, nothing is written; while writing,
the partly written temporary directory is removed. DIR is therefore either
absent (or as an earlier run left it) or complete, never half-written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from linmem.errors import InputError

EXIT_INTERRUPTED = 130          # 128 + SIGINT, as shells report it


@click.command("run")
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory to write the outputs to (proc/, snapshots/, timeline.csv, "
                   "events.jsonl, summary.json).")
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
def run(scenario, out, seed):
    """Run SCENARIO (a file or a built-in example's name; default: the
    built-in scenario) and print a summary.

    \b
    Examples:
      linmem run
      linmem run swap --out out/swap
      linmem run my-scenario.yaml --out out/mine --seed 3
    """
    scen = _load(scenario)
    if seed is not None:
        if seed < 0:
            raise InputError("--seed", f"must not be negative, got {seed}")
        scen.seed = seed
    _warn_if_compiling()
    from linmem.workload.runner import run_scenario, write_outputs
    bar = _ProgressBar()
    try:
        try:
            result = run_scenario(scen, progress=bar)
        finally:
            bar.close()
        if out:
            write_outputs(result, Path(out))
    except KeyboardInterrupt:
        click.echo("linmem: interrupted; no outputs written", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    _print_summary(result, out)


def _load(scenario: str | None):
    """The scenario named on the command line: a file, else a built-in
    example (a bare name, without ``/`` or ``.yaml``), or the default."""
    from linmem.workload import examples
    from linmem.workload.scenario import default_scenario, load_scenario
    if scenario is None:
        return default_scenario()
    if os.path.isfile(scenario) or "/" in scenario or scenario.endswith((".yaml", ".yml")):
        return load_scenario(scenario)
    if scenario in examples.names() or not os.path.exists(scenario):
        return examples.example(scenario).scenario()
    return load_scenario(scenario)                  # a directory: says so


class _ProgressBar:
    """The run's progress callback: a rich bar on stderr, shown only when
    stderr is a terminal and the run has lasted more than ``DELAY`` seconds
    (short runs stay quiet), refreshed at most ten times a second."""

    DELAY = 1.0

    def __init__(self):
        from rich.console import Console
        self.console = Console(stderr=True)
        self.enabled = self.console.is_terminal
        self.started = self.last = time.monotonic()
        self.bar = self.task = None

    def __call__(self, clock: float, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 or now - self.started < self.DELAY:
            return
        self.last = now
        if self.bar is None:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self.bar = Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("steps, {task.fields[clock]} simulated"),
                                TimeElapsedColumn(), console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("run", total=total, clock="")
        self.bar.update(self.task, completed=done, clock=f"{clock:.3f} s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _warn_if_compiling() -> None:
    """The compiled kernels are cached next to their sources; on the first run
    numba compiles them, which takes a minute or two: say so."""
    import os

    import linmem.engine
    if os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return
    cache = Path(linmem.engine.__file__).parent / "__pycache__"
    if not any(cache.glob("memory.access_pages-*.nbi")):
        click.echo("linmem: compiling the model's kernels (first run only, a minute or two)...",
                   err=True)


def _print_summary(result, out) -> None:
    """A few lines on the machine and its memory, as a person would want them."""
    from rich.console import Console
    from rich.table import Table

    m = result.machine
    pa = m.page_alloc
    console = Console(highlight=False)
    meminfo = {label.rstrip(":"): kb for label, kb in _meminfo(m)}
    console.print(f"[bold]{m.name or 'scenario'}[/bold]: {m.arch}, {m.ram >> 20} MiB RAM, "
                  f"{m.nr_cpus} CPUs, THP {m.thp}, {m.clock:g} s simulated")
    console.print(f"MemTotal {meminfo['MemTotal']} kB ({m.ram // 1024 - meminfo['MemTotal']} kB "
                  f"kept by firmware and the kernel), MemFree {meminfo['MemFree']} kB, "
                  f"MemAvailable {meminfo['MemAvailable']} kB, "
                  f"min_free_kbytes {m.sysctl['min_free_kbytes']}")
    table = Table("zone", "spanned", "present", "managed", "free", "min", "low", "high",
                  box=None)
    for z in pa.zones:
        if not z.populated:
            continue
        marks = [str(pa.wmark(z.zid, w)) for w in range(3)]
        table.add_row(z.name, str(z.spanned), str(z.present), str(int(pa.managed[z.zid])),
                      str(pa.nr_free_pages(z.zid)), *marks)
    console.print(table)
    _print_reclaim(console, m)
    _print_cgroups(console, result.summary()["cgroups"])
    if result.processes:
        procs = Table("pid", "name", "minor faults", "major faults", "peak RSS kB", "exit",
                      box=None)
        for p in result.processes:
            procs.add_row(str(p["pid"]), p["name"], str(p["minor_faults"]),
                          str(p["major_faults"]), str(p["peak_rss_kb"]), p["exit"])
        console.print(procs)
    _print_kernel_log(console, result.events)
    if out:
        console.print(f"outputs written to {out}/ (try: linmem free --proc {out}/proc)")


def _print_reclaim(console, machine) -> None:
    """One line on reclaim and one per swap area, when there was any."""
    from linmem.mm.vmstat import vm_event
    ev = machine.page_alloc.S.events
    n = {name: int(ev[vm_event(name)]) for name in (
        "pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct", "pswpin",
        "pswpout", "oom_kill")}
    if any(n.values()):
        console.print(f"reclaim: kswapd scanned {n['pgscan_kswapd']} pages, freed "
                      f"{n['pgsteal_kswapd']}; direct reclaim scanned {n['pgscan_direct']}, "
                      f"freed {n['pgsteal_direct']}; swapped out {n['pswpout']}, in "
                      f"{n['pswpin']}; OOM kills {n['oom_kill']}")
    kernel = machine._kernel
    for path, kind, size, used, prio in (kernel.swap.proc_swaps() if kernel else []):
        console.print(f"swap {path} ({kind}, priority {prio}): {size} kB, {used} kB used")


def _print_cgroups(console, cgroups: list[dict]) -> None:
    """One row per memory cgroup: usage, peak, limits, events, reclaim."""
    from rich.table import Table
    if not cgroups:
        return
    table = Table("cgroup", "current", "peak", "max", "high", "swap", "low/high/max/oom/kill",
                  "scanned", "reclaimed", title="memory cgroups (kB; events)", box=None)
    for c in cgroups:
        ev = c["events"]
        table.add_row(c["path"], str(c["current_kb"]), str(c["peak_kb"]),
                      "max" if c["max_kb"] is None else str(c["max_kb"]),
                      "max" if c["high_kb"] is None else str(c["high_kb"]),
                      str(c["swap_current_kb"]),
                      "/".join(str(ev[k]) for k in ("low", "high", "max", "oom", "oom_kill")),
                      str(c["pgscan"]), str(c["pgsteal"]))
    console.print(table)


def _print_kernel_log(console, events) -> None:
    """The OOM killer's reports and any panic, as the kernel logs them."""
    from linmem.procfs.kmsg import oom_report_lines
    for event in events:
        if event["event"] == "oom_kill":
            for line in oom_report_lines(event):
                console.print(f"[{event['time']:12.6f}] {line}", markup=False, soft_wrap=True)
        elif event["event"] == "panic":
            console.print(f"[{event['time']:12.6f}] {event['message']}", markup=False, soft_wrap=True)


def _meminfo(machine):
    from linmem.procfs.meminfo import meminfo_fields
    return meminfo_fields(machine)
