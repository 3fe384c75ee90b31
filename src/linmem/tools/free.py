"""``linmem free``: procps-ng 4.0.2 ``free``, reading any proc directory.

Follows procps-ng 4.0.2 src/free.c (``main``, ``scale_size``,
``print_head_col``) over the values library/meminfo.c derives
(:func:`linmem.procfs.parse.derive_meminfo`): used = MemTotal - MemAvailable,
buff/cache = Buffers + Cached + SReclaimable, Low/High rows, Total and Comm
rows, repeat with ``-s``/``-c``. The output is byte-identical to
``/usr/bin/free`` (C locale) given the same /proc/meminfo, including the C
arithmetic: sizes are ``unsigned long`` kB multiplied into ``long long``
bytes, ``-h`` rounds through a C ``float`` before ``"%.1f"``, explicit units
divide as ``double`` and truncate.

With ``-s``/``-c`` the file is re-read at most once per wall-clock second,
as libproc2's ``procps_meminfo_get`` does; each report comes from one read
(procps can mix two reads when the second turns in the middle of a report).

Differences from procps, all outside the printed report: the proc directory
is chosen with ``--proc PATH``; option errors and bad input print one
``linmem: WHERE: WHAT`` line and exit with status 2 (procps: its own message,
status 1). ``ProcpsCommand`` (procps usage text as help, long options
abbreviated as getopt_long allows) is shared with ``linmem vmstat``.
"""

from __future__ import annotations

import math
import struct
import sys
import time

import click

from linmem.errors import InputError
from linmem.procfs.parse import derive_meminfo, read_meminfo, s64, u64

PROCPS_VERSION = "procps-ng 4.0.2"

FREE_USAGE = """
Usage:
 free [options]

Options:
 -b, --bytes         show output in bytes
     --kilo          show output in kilobytes
     --mega          show output in megabytes
     --giga          show output in gigabytes
     --tera          show output in terabytes
     --peta          show output in petabytes
 -k, --kibi          show output in kibibytes
 -m, --mebi          show output in mebibytes
 -g, --gibi          show output in gibibytes
     --tebi          show output in tebibytes
     --pebi          show output in pebibytes
 -h, --human         show human-readable output
     --si            use powers of 1000 not 1024
 -l, --lohi          show detailed low and high memory statistics
 -t, --total         show total for RAM + swap
 -v, --committed     show committed memory and commit limit
 -s N, --seconds N   repeat printing every N seconds
 -c N, --count N     repeat printing N times, then exit
 -w, --wide          wide output
     --proc PATH     read PATH (a proc tree, e.g. one linmem run wrote)
                       instead of /proc

     --help     display this help and exit
 -V, --version  output version information and exit

For more details see free(1).
"""

HEADER = "               total        used        free      shared  buff/cache   available"
HEADER_WIDE = ("               total        used        free      shared     buffers"
               "       cache   available")

# option name -> (exponent of scale_size, SI flag)
UNITS = {
    "bytes": (1, False), "kibi": (2, False), "mebi": (3, False), "gibi": (4, False),
    "tebi": (5, False), "pebi": (6, False), "kilo": (2, True), "mega": (3, True),
    "giga": (4, True), "tera": (5, True), "peta": (6, True),
}


class ProcpsCommand(click.Command):
    """A click command that prints a procps usage text as its help and, like
    getopt_long, accepts unambiguous abbreviations of long options."""

    def __init__(self, *args, usage_text: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.usage_text = usage_text

    def get_help(self, ctx):
        """Return the procps usage text (click's echo adds the last newline)."""
        return self.usage_text[:-1] if self.usage_text.endswith("\n") else self.usage_text

    def parse_args(self, ctx, args):
        """Expand ``--tot`` to ``--total`` etc. before click parses."""
        longs = [name[2:] for p in self.get_params(ctx) for name in p.opts + p.secondary_opts
                 if name.startswith("--")]
        return super().parse_args(ctx, expand_long_prefixes(args, longs))


def expand_long_prefixes(args: list[str], longs: list[str]) -> list[str]:
    """Replace unambiguous prefixes of long options by the full option name."""
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name not in longs:
                matches = [n for n in longs if n.startswith(name)]
                if len(matches) == 1:
                    arg = f"--{matches[0]}{eq}{value}"
        out.append(arg)
    return out


# --- scale_size ----------------------------------------------------------

def c_float(x: float) -> float:
    """Round a double to the nearest C ``float`` (IEEE single)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def c_long(x: float) -> int:
    """Convert a double to a C ``long`` as x86-64 does (truncate; out of range -> LONG_MIN)."""
    if math.isfinite(x) and -(1 << 63) <= x < (1 << 63):
        return int(x)
    return -(1 << 63)


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def scale_size(kb: int, human: bool, si: bool, exponent: int) -> str:
    """procps-ng 4.0.2 free.c ``scale_size``: one value, given in kB."""
    base = 1000 if si else 1024
    nbytes = s64(u64(kb) * 1024)
    if not human:
        if exponent == 0:
            return str(c_div(nbytes, base))
        if exponent == 1:
            return str(nbytes)
        return str(c_long(float(nbytes) / float(base ** (exponent - 1))))
    text = f"{nbytes}B"
    if len(text) <= 4:
        return text
    for power, unit in enumerate("KMGTP", 1):
        scaled = float(nbytes) / float(base ** power)
        suffix, room = (unit, 4) if si else (unit + "i", 5)
        text = "%.1f%s" % (c_float(scaled), suffix)
        if len(text) <= room:
            return text
        text = f"{c_long(scaled)}{suffix}"
        if len(text) <= room:
            return text
    return text


# --- the report ----------------------------------------------------------

def _row(label: str, values: list[int], human: bool, si: bool, exponent: int) -> str:
    """One row: the label padded to 9 columns, then "%11s" and " %11s"..."""
    cells = [scale_size(v, human, si, exponent) for v in values]
    return label.ljust(9) + "%11s" % cells[0] + "".join(" %11s" % c for c in cells[1:]) + "\n"


def report(mem: dict[str, int], *, human=False, si=False, exponent=0,
           wide=False, lohi=False, total=False, committed=False) -> str:
    """Return one free report for the derived meminfo values ``mem``."""
    fmt = dict(human=human, si=si, exponent=exponent)
    if wide:
        cache = [mem["buffers"], mem["cached_all"]]
    else:
        cache = [u64(mem["buffers"] + mem["cached_all"])]
    out = [(HEADER_WIDE if wide else HEADER) + "\n",
           _row("Mem:", [mem["total"], mem["used"], mem["free"], mem["shared"], *cache,
                         mem["available"]], **fmt)]
    if lohi:
        out.append(_row("Low:", [mem["low_total"], mem["low_used"], mem["low_free"]], **fmt))
        out.append(_row("High:", [mem["high_total"], mem["high_used"], mem["high_free"]], **fmt))
    out.append(_row("Swap:", [mem["swap_total"], mem["swap_used"], mem["swap_free"]], **fmt))
    if total:
        out.append(_row("Total:", [u64(mem["total"] + mem["swap_total"]),
                                   u64(mem["used"] + mem["swap_used"]),
                                   u64(mem["free"] + mem["swap_free"])], **fmt))
    if committed:
        out.append(_row("Comm:", [mem["commit_limit"], mem["committed_as"],
                                  u64(mem["commit_limit"] - mem["committed_as"])], **fmt))
    return "".join(out)


class MeminfoReader:
    """Derived meminfo values, re-read at most once per wall-clock second.

    libproc2's ``procps_meminfo_get`` re-reads /proc/meminfo only when
    ``time(NULL)`` has moved on since the last read, so ``free -s 0.2``
    repeats a report until the second changes; this does the same.
    """

    def __init__(self, proc: str):
        self.proc = proc
        self.second: int | None = None
        self.mem: dict[str, int] = {}

    def get(self) -> dict[str, int]:
        """Return the values, reading the file again if a second has passed."""
        now = int(time.time())
        if self.second is None or now - self.second >= 1:
            self.mem = derive_meminfo(read_meminfo(self.proc))
            self.second = now
        return self.mem


# --- options -------------------------------------------------------------

def _unit(unit_counts: dict[str, int]) -> tuple[int, bool]:
    """Return (exponent, si) of the one unit option given, as check_unit_set."""
    if sum(unit_counts.values()) > 1:
        raise InputError("free", "Multiple unit options don't make sense.")
    for name, count in unit_counts.items():
        if count:
            return UNITS[name]
    return 0, False


def _seconds(value: str | None) -> float | None:
    """Parse ``-s N`` as strtod_nol_or_err; at least one microsecond."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        raise InputError("free -s", f"seconds argument failed: '{value}'") from None
    if not math.isfinite(seconds) or seconds * 1e6 < 1:
        raise InputError("free -s", f"seconds argument `{value}' is not positive number")
    return seconds


def _count(value: str | None) -> int | None:
    """Parse ``-c N`` as strtol_or_err; at least 1."""
    if value is None:
        return None
    try:
        count = int(value, 10)
    except ValueError:
        raise InputError("free -c", f"failed to parse count argument: '{value}'") from None
    if count < 1:
        raise InputError("free -c", f"count argument '{value}' is not a positive integer")
    return count


def _print_version(ctx, _param, value):
    """``-V``: print the version line of the procps tool cloned."""
    if value and not ctx.resilient_parsing:
        click.echo(f"free from {PROCPS_VERSION}")
        ctx.exit(0)


def _unit_option(short: str | None, name: str):
    """A counted unit flag (so that ``-m -m`` is refused, as procps does)."""
    decls = ([short] if short else []) + [f"--{name}"]
    return click.option(*decls, name, count=True)


def _options(f):
    """Attach the procps free options to ``f``."""
    for short, name in reversed([("-b", "bytes"), (None, "kilo"), (None, "mega"), (None, "giga"),
                                 (None, "tera"), (None, "peta"), ("-k", "kibi"), ("-m", "mebi"),
                                 ("-g", "gibi"), (None, "tebi"), (None, "pebi")]):
        f = _unit_option(short, name)(f)
    for decls in [("-h", "--human", "human"), ("--si", "si"), ("-l", "--lohi", "lohi"),
                  ("-t", "--total", "total"), ("-v", "--committed", "committed"),
                  ("-w", "--wide", "wide")]:
        f = click.option(*decls, is_flag=True)(f)
    f = click.option("-s", "--seconds", "seconds", metavar="N")(f)
    f = click.option("-c", "--count", "count", metavar="N")(f)
    f = click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
                     callback=_print_version)(f)
    return click.option("--proc", "proc", default="/proc", show_default=True, metavar="PATH",
                        help="proc directory to read")(f)


@click.command("free", cls=ProcpsCommand, usage_text=FREE_USAGE,
               context_settings={"help_option_names": ["--help"]})
@_options
def free(proc, human, si, lohi, total, committed, wide, seconds, count, **units):
    """Display amount of free and used memory, as procps-ng 4.0.2 free."""
    exponent, unit_si = _unit(units)
    interval, count = _seconds(seconds), _count(count)
    repeat = interval is not None or count is not None
    if interval is None:
        interval = 1.0
    flags = dict(human=human, si=si or unit_si, exponent=exponent, wide=wide,
                 lohi=lohi, total=total, committed=committed)
    reader = MeminfoReader(proc)
    while True:
        sys.stdout.write(report(reader.get(), **flags))
        sys.stdout.flush()
        if count is not None:
            count -= 1
            if count < 1:
                return
        if not repeat:
            return
        sys.stdout.write("\n")
        sys.stdout.flush()
        time.sleep(interval)
