"""``linmem replay TRACE --format F --policy P (--frames N | --memory SIZE)``:
replay a trace on a cache and count its hits and misses.

A frame holds one page (4 KiB) of a trace of addresses, or one object of a
trace of objects; ``--memory`` is the number of frames times 4 KiB.
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


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", required=True, metavar="F", help=FORMAT_HELP)
@click.option("--policy", "-p", required=True, type=click.Choice(list(POLICIES)),
              help="The replacement policy.")
@click.option("--frames", "-n", type=int, default=None, metavar="N",
              help="The cache size in frames (pages or objects).")
@click.option("--memory", "-m", default=None, metavar="SIZE",
              help="The cache size in bytes of 4 KiB frames: 512MiB, 2GiB...")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: requests, hits, misses, miss_ratio, seconds, "
                   "requests_per_second.")
def replay(trace, fmt, policy, frames, memory, as_json):
    """Replay TRACE on a cache under a replacement policy; print the hits and misses.

    \b
    Examples:
      linmem replay app.oracleGeneral --format oracleGeneral --policy lru --frames 100000
      linmem replay app.lackey.zst --format lackey --policy arc --memory 256MiB --json
    """
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
