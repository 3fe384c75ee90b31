"""``linmem trace ...``: convert memory-access traces and say what they hold.

``convert`` streams a trace of any format into linmem's native format
(:mod:`linmem.trace.native`); ``info`` reads one in a single pass and counts.
Neither holds the whole trace in memory. Bad input (a missing file, a
malformed line, a truncated binary trace) is an InputError: one line, exit
status 2, and no output file.
"""

from __future__ import annotations

import json

import click

FORMAT_HELP = "Format of the trace: lackey, native (and the other registered ones)."


@click.group("trace")
def trace():
    """Convert memory-access traces and say what they hold.

    \b
    Examples:
      valgrind --tool=lackey --trace-mem=yes --log-file=ls.lackey ls
      linmem trace convert ls.lackey --format lackey -o ls.lmt.zst
      linmem trace info ls.lmt.zst
    """


@trace.command("convert")
@click.argument("src")
@click.option("--format", "-f", "fmt", required=True, help=FORMAT_HELP)
@click.option("--output", "-o", required=True,
              help="The native trace to write; zstd-compressed when it ends in .zst.")
def convert(src, fmt, output):
    """Convert the trace SRC to linmem's native format.

    \b
    Examples:
      linmem trace convert ls.lackey --format lackey -o ls.lmt
      linmem trace convert ls.lackey.zst -f lackey -o ls.lmt.zst
    """
    from linmem.trace import open_trace
    from linmem.trace.native import write_native

    total = write_native(output, open_trace(src, fmt))
    click.echo(f"{output}: {total} requests")


@trace.command("info")
@click.argument("path", metavar="TRACE")
@click.option("--format", "-f", "fmt", default="native", show_default=True, help=FORMAT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def info(path, fmt, as_json):
    """Count the requests of TRACE: reads, writes, instruction fetches, distinct
    addresses and 4 KiB pages, pids and the span of its times; say whether its
    addresses are object ids or byte addresses.

    \b
    Examples:
      linmem trace info ls.lmt
      linmem trace info ls.lackey --format lackey --json
    """
    from linmem.trace import open_trace
    from linmem.trace.info import trace_info

    counts = {"trace": path, "format": fmt, **trace_info(open_trace(path, fmt))}
    if as_json:
        click.echo(json.dumps(counts, indent=2))
    else:
        click.echo(_text(counts))


def _text(c: dict) -> str:
    """The counts as aligned lines for a person."""
    pids = c["pids"]
    shown = ", ".join(f"{pid} ({n})" for pid, n in list(pids.items())[:8])
    more = f", ... ({len(pids)} in all)" if len(pids) > 8 else ""
    t = c["time"]
    rows = [
        ("trace", f"{c['trace']} ({c['format']})"),
        ("requests", f"{c['requests']}: {c['reads']} reads, {c['writes']} writes, "
                     f"{c['ifetches']} instruction fetches"),
        ("bytes", str(c["bytes"])),
        ("addresses", "object ids" if c["objects"] else "byte addresses"),
        ("distinct addresses", str(c["distinct_addresses"])),
        ("distinct pages", f"{c['distinct_pages']} "
                           f"({'one per object' if c['objects'] else '4 KiB'})"),
        ("pids", f"{len(pids)}: {shown}{more}"),
        ("time", f"{t['first']} to {t['last']} (span {t['span']})"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in rows)
