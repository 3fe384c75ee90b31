"""``linmem replay-kernel TRACE``: a trace through the whole kernel model.

With the mappings of a capture (``--maps``, default ``TRACE.maps.json`` when
it exists) the trace runs in its own address space rebuilt in one process
(:mod:`linmem.workload.address_replay`): file pages, anonymous pages and
their faults as the program had them. Without, each distinct page of the
trace is a page of anonymous memory (:mod:`linmem.workload.trace_replay`).
Prints the peak resident set (VmHWM), the faults and the swap traffic.
"""

from __future__ import annotations

import json
import os
import time

import click

from linmem.errors import InputError


def _size(ctx, param, value):
    from linmem.units import parse_size
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@click.command("replay-kernel")
@click.argument("trace")
@click.option("--format", "-f", "fmt", default="native", show_default=True,
              help="Format of the trace: native, lackey.")
@click.option("--maps", default=None,
              help="The mappings of a capture (default: TRACE.maps.json when it exists).")
@click.option("--ram", required=True, callback=_size, help="RAM of the machine, e.g. 1GiB.")
@click.option("--swap", default="0", callback=_size, help="A swapfile of this size.")
@click.option("--lru", type=click.Choice(["classic", "mglru"]), default="classic",
              show_default=True)
@click.option("--cold", is_flag=True,
              help="Mapped files start on disk, not in the page cache (default: cached, "
                   "as when the program ran a moment before).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def replay_kernel(trace, fmt, maps, ram, swap, lru, cold, as_json):
    """Replay TRACE as a process of a machine with RAM (and SWAP); report
    its peak RSS (VmHWM), page faults and pswpin/pswpout.

    \b
    Examples:
      linmem capture -o json.lmt.zst -- /usr/bin/python3 -c 'import json'
      linmem replay-kernel json.lmt.zst --ram 1GiB
      linmem replay-kernel json.lmt.zst --maps json.lmt.zst.maps.json --ram 64MiB --swap 64MiB --json
    """
    from linmem.trace import open_trace

    if maps is None and os.path.exists(f"{trace}.maps.json"):
        maps = f"{trace}.maps.json"
    if maps is None:
        from linmem.workload.trace_replay import replay_kernel as dense
        result = dense(open_trace(trace, fmt), ram=ram, swap=swap, lru=lru).as_dict()
    else:
        result = run_captured(trace, fmt, maps, ram, swap, lru, warm=not cold)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            click.echo(f"{key + ':':<{width + 1}} {value}")


def run_captured(trace: str, fmt: str, maps: str, ram: int, swap: int, lru: str,
                 warm: bool = True) -> dict:
    """Replay a captured trace in its address space on a new machine; the results."""
    from linmem.kernel.machine import Machine
    from linmem.mm.vmstat import vm_event
    from linmem.procfs.pid import mm_counters
    from linmem.trace import open_trace
    from linmem.workload.address_replay import replay_captured
    from linmem.workload.capture import load_maps

    doc = load_maps(maps)
    machine = Machine(ram=ram, lru=lru)
    k = machine.kernel
    if swap:
        k.swap.swapon("/swapfile", swap, None, "file")
    task = k.spawn("/usr/bin/cat", ["replay"])
    start = time.perf_counter()
    r = replay_captured(k, task, open_trace(trace, fmt), doc["mappings"], warm=warm)
    seconds = time.perf_counter() - start
    ev = k.mem.K.events
    counts = {name: int(ev[vm_event(name)]) for name in ("pswpin", "pswpout", "oom_kill")}
    out = {"trace": trace, "maps": maps, **r.as_dict()}
    if task.mm is not None:
        c = mm_counters(k, task)
        minor, major = k.mem.faults(task.pid)
        out.update({"peak_rss_kb": c["hiwater_rss"] * 4, "rss_kb": c["rss"] * 4,
                    "rss_anon_kb": c["anon"] * 4, "rss_file_kb": c["file"] * 4,
                    "minor_faults": minor, "major_faults": major})
    out.update(counts)
    out["seconds"] = round(seconds, 3)
    return out
