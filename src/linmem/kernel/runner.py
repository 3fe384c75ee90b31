"""Running a scenario: boot the machine, play its timed events, collect outputs.

The runner owns simulated time. It boots the machine from the scenario's
``machine`` and ``sysctl`` sections, then plays the ``at`` events in time order
(a ``sysctl`` event writes through the kernel's handlers, a ``snapshot`` renders
the whole /proc tree), sampling the timeline every ``sample`` seconds. The run
ends at the last event.

Processes need the process model; a scenario that has them is refused with
one clear line until that model exists.

Outputs are collected in memory (:class:`RunResult`) and written by
:func:`write_outputs` into a fresh directory that replaces the target only once
complete, so a run that fails leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from linmem.errors import InputError
from linmem.kernel.machine import Machine
from linmem.procfs.meminfo import meminfo_fields
from linmem.procfs.tree import proc_files, write_tree
from linmem.procfs.vmstat import vmstat_values


@dataclass
class RunResult:
    """Everything a run produced."""

    machine: Machine
    final: dict[str, str]
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)

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
            "allocation_failures": m.page_alloc.alloc_failures,
            "processes": [],
        }


def _sample(machine: Machine) -> dict:
    row = {"time": round(machine.clock, 6)}
    row.update({label.rstrip(":"): kb for label, kb in meminfo_fields(machine)})
    row.update(dict(vmstat_values(machine)))
    return row


def run_scenario(scenario) -> RunResult:
    """Run a validated scenario and return what it produced."""
    if scenario.processes:
        raise InputError(f"{scenario.source or '<scenario>'}: processes",
                         "running processes needs the process model, which this "
                         "version of linmem does not have yet")
    machine = Machine.from_scenario(scenario)
    result = RunResult(machine=machine, final={})
    events = sorted(scenario.at, key=lambda e: e.time)
    end = events[-1].time if events else 0.0
    next_sample = 0.0
    for event in events + [None]:
        until = event.time if event is not None else end
        while next_sample <= until + 1e-12:
            machine.clock = next_sample
            result.timeline.append(_sample(machine))
            next_sample += scenario.sample
        machine.clock = until
        if event is not None:
            _play(machine, event, result)
    result.final = proc_files(machine)
    return result


def _play(machine: Machine, event, result: RunResult) -> None:
    """Apply one ``at`` event."""
    if event.snapshot is not None:
        result.snapshots[event.snapshot] = proc_files(machine)
        result.events.append({"time": machine.clock, "event": "snapshot", "name": event.snapshot})
        return
    for name, value in event.sysctl.as_dict().items():
        try:
            machine.write_sysctl(f"vm.{name}", value)
        except ValueError as err:
            raise InputError(f"at {event.time:g}s: sysctl", str(err)) from None
        result.events.append({"time": machine.clock, "event": "sysctl",
                              "name": f"vm.{name}", "value": value})


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
    or holds an earlier run (it has a summary.json).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "summary.json").exists())):
        raise InputError(str(out), "exists and is not an earlier linmem output; "
                         "choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_tree(result.final, tmp / "proc")
        for name, files in result.snapshots.items():
            write_tree(files, tmp / "snapshots" / name / "proc")
        (tmp / "timeline.csv").write_text(_timeline_csv(result.timeline))
        (tmp / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in result.events))
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
