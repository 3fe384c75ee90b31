"""``linmem capture -- CMD ARGS``: record a real program's accesses and mappings.

Runs CMD under valgrind lackey and writes the native trace (OUT, default
``CMD.lmt.zst``) and the guest's mappings (``OUT.maps.json``), as
:mod:`linmem.workload.capture` describes. A missing valgrind, or a command
that cannot be started, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys
import time

import click


@click.command("capture", context_settings={"ignore_unknown_options": True})
@click.option("--output", "-o", default=None,
              help="The native trace to write (.zst: compressed); default CMD.lmt.zst. "
                   "The mappings go to OUTPUT.maps.json.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def capture(output, quiet, cmd):
    """Run CMD under valgrind lackey; record its memory accesses as a native
    trace and its mappings, so that `linmem replay --kernel` can rebuild its
    address space.

    \b
    Examples:
      linmem capture -o json.lmt.zst -- /usr/bin/python3 -c 'import json'
      linmem capture -- /bin/ls -R /usr/share/doc > /dev/null
      linmem replay json.lmt.zst --format native --kernel --ram 1GiB
    """
    from linmem.workload.capture import run_capture

    cmd = list(cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    out = output or f"{os.path.basename(cmd[0]) if cmd else 'capture'}.lmt.zst"
    show = not quiet and sys.stderr.isatty()
    start = time.perf_counter()
    if show:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text
        console = Console(stderr=True)
        with Live(Text(""), console=console, transient=True, refresh_per_second=8) as live:
            def progress(requests, mappings):
                secs = time.perf_counter() - start
                live.update(Text(_line(cmd, requests, mappings, secs)))
            result = run_capture(cmd, out, progress)
    else:
        result = run_capture(cmd, out)
    secs = time.perf_counter() - start
    click.echo(f"{result.trace}: {result.requests} requests, {result.pages} pages; "
               f"{result.maps}: {result.mappings} mappings ({result.polls} polls); "
               f"{cmd[0]} exited {result.exit_status}; {secs:.1f} s", err=True)
    return 0


def _line(cmd: list[str], requests: int, mappings: int, secs: float) -> str:
    rate = requests / secs / 1e6 if secs > 0 else 0.0
    return (f"capturing {os.path.basename(cmd[0])}: {requests / 1e6:,.1f} M requests "
            f"({rate:.1f} M/s), {mappings} mappings seen, {secs:.0f} s")
