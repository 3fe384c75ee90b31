"""``linmem replay TRACE --format F --policy P (--frames N | --memory SIZE)``:
replay a trace on a cache and count its hits and misses.

A frame holds one page (4 KiB) of a trace of addresses, or one object of a
trace of objects; ``--memory`` is the number of frames times 4 KiB.

``--kernel`` replays the trace as a process of a simulated machine instead
and prints its totals, then its timeline (linmem.workload.replay_clock): a
row per simulated second, merged evenly into longer intervals when there
are more than ``TIMELINE_ROWS`` seconds (``--json`` has every second).
"""

from __future__ import annotations

import json

import click

from linmem.cachesim import POLICIES
from linmem.errors import InputError
from linmem.units import PAGE_SIZE, parse_size

FORMAT_HELP = ("The trace's format: oracleGeneral (libCacheSim's binary), csv, txt, "
               "lackey, native; a name ending in .zst is decompressed.")


def frames_option(frames: int | None, memory: str | None) -> int:
    """The cache size in frames from ``--frames`` or ``--memory`` (exactly one)."""
    if (frames is None) == (memory is None):
        raise InputError("--frames/--memory", "give the cache size, one of --frames N "
                         "or --memory SIZE")
    if memory is not None:
        try:
            nbytes = parse_size(memory)
        except ValueError as err:
            raise InputError("--memory", str(err)) from None
        frames = nbytes // PAGE_SIZE
        if frames < 1:
            raise InputError("--memory", f"{memory!r} is less than one 4 KiB frame")
    if frames < 1:
        raise InputError("--frames", f"must be at least 1, got {frames}")
    return frames


KERNEL_POLICIES = {"linux": "classic", "mglru": "mglru"}
TIMELINE_ROWS = 40                  # rows of the printed timeline, at most
# The timeline's counters of a second: (key, column); a merged row sums them.
TIMELINE_SUMS = (("requests", "requests"), ("minor_faults", "minor faults"),
                 ("major_faults", "major faults"), ("pswpin", "pswpin"),
                 ("pswpout", "pswpout"), ("reclaimed", "reclaimed"))


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", required=True, metavar="F", help=FORMAT_HELP)
@click.option("--policy", "-p", default=None,
              type=click.Choice([*POLICIES, *KERNEL_POLICIES]),
              help="The replacement policy; linux and mglru are the kernel model's own "
                   "LRUs (a memory cgroup of N pages; with --kernel, the whole machine).")
@click.option("--frames", "-n", type=int, default=None, metavar="N",
              help="The cache size in frames (pages or objects).")
@click.option("--memory", "-m", default=None, metavar="SIZE",
              help="The cache size in bytes of 4 KiB frames: 512MiB, 2GiB...")
@click.option("--kernel", is_flag=True,
              help="Run the trace through the whole kernel model (faults, reclaim, swap) "
                   "on a machine of --ram (and --swap).")
@click.option("--ram", default=None, metavar="SIZE", help="With --kernel: the machine's RAM.")
@click.option("--swap", default=None, metavar="SIZE", help="With --kernel: a swapfile.")
@click.option("--maps", default=None, metavar="FILE",
              help="With --kernel: the mappings of a capture (default TRACE.maps.json when "
                   "it exists): the trace runs in its own address space.")
@click.option("--cold", is_flag=True,
              help="With --kernel --maps: mapped files start on disk, not in the page cache.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: requests, hits, misses, miss_ratio, seconds, "
                   "requests_per_second (with --kernel: faults, swap traffic, peak RSS..., "
                   "and the timeline, a row per simulated second).")
def replay(trace, fmt, policy, frames, memory, kernel, ram, swap, maps, cold, as_json):
    """Replay TRACE on a cache under a replacement policy; print the hits and misses.
    With --kernel, replay it as a process of a simulated machine instead.

    \b
    Examples:
      linmem replay app.oracleGeneral --format oracleGeneral --policy lru --frames 100000
      linmem replay app.lackey.zst --format lackey --policy arc --memory 256MiB --json
      linmem replay app.oracleGeneral -f oracleGeneral --policy linux --frames 100000
      linmem replay app.lmt.zst --format native --kernel --ram 1GiB --swap 512MiB
    """
    if kernel:
        _replay_kernel(trace, fmt, policy or "linux", ram, swap, maps, cold, as_json,
                       frames, memory)
        return
    if policy is None:
        raise InputError("--policy", f"give a replacement policy: "
                         f"{', '.join([*POLICIES, *KERNEL_POLICIES])}")
    if policy in KERNEL_POLICIES:      # the full model's LRU in a memcg of N pages
        from linmem.cachesim.kernel_lru import replay_trace_kernel as replay_trace
    else:
        from linmem.cachesim import replay_trace

    frames = frames_option(frames, memory)
    try:
        result = replay_trace(trace, fmt, policy, frames)
    except ValueError as err:
        raise InputError("--frames", str(err)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    click.echo(f"{policy}, {frames} frames ({frames * PAGE_SIZE / 2**20:.1f} MiB): "
               f"{result.requests} requests, {result.hits} hits, {result.misses} misses, "
               f"miss ratio {result.miss_ratio:.4f}")
    click.echo(f"{result.seconds:.3f} s, {result.requests_per_second / 1e6:.2f} M requests/s "
               "(reading the trace included)")
    if result.distinct:
        click.echo(f"{result.distinct} distinct pages; state {result.state_bytes / 2**20:.1f} MiB "
                   f"({result.state_bytes / result.distinct:.1f} bytes per distinct page)")


def _size(option: str, value: str | None) -> int:
    try:
        return parse_size(value) if value is not None else 0
    except ValueError as err:
        raise InputError(option, str(err)) from None


def _replay_kernel(trace, fmt, policy, ram, swap, maps, cold, as_json, frames, memory) -> None:
    """``--kernel``: the trace as one process of a machine (linmem.workload.trace_replay,
    or linmem.workload.address_replay with a capture's mappings)."""
    import os

    from linmem.trace import open_trace

    if policy not in KERNEL_POLICIES:
        raise InputError("--policy", f"with --kernel the policy is the kernel's: "
                         f"{' or '.join(KERNEL_POLICIES)}, not {policy}")
    if frames is not None or memory is not None:
        raise InputError("--frames/--memory", "with --kernel the memory is the machine's: "
                         "give --ram SIZE")
    if ram is None:
        raise InputError("--ram", "with --kernel give the machine's RAM, e.g. --ram 1GiB")
    ram_bytes, swap_bytes, lru = _size("--ram", ram), _size("--swap", swap), \
        KERNEL_POLICIES[policy]
    if maps is None and os.path.exists(f"{trace}.maps.json"):
        maps = f"{trace}.maps.json"
    if maps is None:
        from linmem.workload.trace_replay import replay_kernel
        result = replay_kernel(open_trace(trace, fmt), ram=ram_bytes, swap=swap_bytes,
                               lru=lru).as_dict()
    else:
        from linmem.workload.address_replay import run_captured
        result = run_captured(trace, fmt, maps, ram_bytes, swap_bytes, lru, warm=not cold)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    timeline = result.pop("timeline")
    width = max(len(k) for k in result)
    for key, value in result.items():
        click.echo(f"{key + ':':<{width + 1}} {value}")
    _print_timeline(timeline)


def _print_timeline(rows: list[dict]) -> None:
    """The timeline as a table, ``per`` seconds a row so that there are at
    most TIMELINE_ROWS: the counters summed, MemFree at the end."""
    from rich.console import Console
    from rich.table import Table

    if not rows:
        return
    per = -(-len(rows) // TIMELINE_ROWS)
    every = "simulated second" if per == 1 else \
        f"{per} simulated seconds, of {len(rows)}"
    table = Table(title=f"a row per {every} (the last: to the end of the replay)", box=None)
    for column in ("second", *(column for _, column in TIMELINE_SUMS), "free kB"):
        table.add_column(column, justify="right")
    for i in range(0, len(rows), per):
        group = rows[i:i + per]
        first, last = group[0]["second"], group[-1]["second"]
        table.add_row(str(first) if first == last else f"{first}-{last}",
                      *(str(sum(r[key] for r in group)) for key, _ in TIMELINE_SUMS),
                      str(group[-1]["free_kb"]))
    console = Console(highlight=False)
    if not console.is_terminal:                      # a file or a pipe: never wrap the rows
        console = Console(highlight=False, width=1000)
    console.print(table)
