"""``linmem vmstat``: procps-ng 4.0.2 ``vmstat``, reading any proc directory.

Follows procps-ng 4.0.2 src/vmstat.c: ``new_header`` and ``new_format`` (the
report, with ``-a``, ``-w``, ``-t``, ``-n``, ``-y``, ``-S`` and ``delay
[count]``), ``sum_format`` (``-s``), ``fork_format`` (``-f``) and
``unitConvert``, over the values libproc2 reads (library/meminfo.c,
library/vmstat.c, library/stat.c; see :mod:`linmem.procfs.parse`).

The first line reports averages since boot exactly as procps computes them:
there is no wall clock in it (/proc/uptime is not read), every rate is
``(count * HZ + Div/2) / Div`` where Div is the sum of the user, nice,
system, irq, softirq, idle, iowait and steal ticks of all CPUs, so on an
N-CPU machine it is a per-CPU-second average. The C arithmetic is kept:
memory goes through ``unitConvert``'s single-precision ``float``, rates are
``unsigned long`` then cast to ``unsigned int``. Later lines are deltas over
``delay`` seconds of real time (0 for a tree that does not change).

Given the same files, the output is byte-identical to ``/usr/bin/vmstat``
(C locale), with one deliberate difference: procps-ng 4.0.2 reads
/proc/meminfo once, so its memory columns never change after the first line
(fixed in procps-ng 4.0.3); linmem re-reads meminfo for every line. Not
implemented: the disk and slab reports (``-d``, ``-D``, ``-p``, ``-m``).
Option errors and bad input exit with status 2 (procps: 1).
"""

from __future__ import annotations

import os
import sys
import time

import click

from linmem.errors import InputError
from linmem.procfs.parse import check_proc_dir, derive_meminfo, read_meminfo, read_stat, read_vmstat, s64, u64
from linmem.tools.free import PROCPS_VERSION, ProcpsCommand, c_float

U32 = 1 << 32

VMSTAT_USAGE = """
Usage:
 vmstat [options] [delay [count]]

Options:
 -a, --active           active/inactive memory
 -f, --forks            number of forks since boot
 -m, --slabs            slabinfo
 -n, --one-header       do not redisplay header
 -s, --stats            event counter statistics
 -d, --disk             disk statistics
 -D, --disk-sum         summarize disk statistics
 -p, --partition <dev>  partition specific statistics
 -S, --unit <char>      define display unit
 -w, --wide             wide output
 -t, --timestamp        show timestamp
 -y, --no-first         skips first line of output
     --proc <path>      read <path> (a proc tree, e.g. one linmem run
                          wrote) instead of /proc

 -h, --help     display this help and exit
 -V, --version  output version information and exit

For more details see vmstat(8).
"""

HEADER = "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----"
HEADER_WIDE = ("--procs-- -----------------------memory---------------------- ---swap-- "
               "-----io---- -system-- ----------cpu----------")
TIMESTAMP_HEADER = " -----timestamp-----"
WIDTHS = (2, 2, 6, 6, 6, 6, 4, 4, 5, 5, 4, 4, 2, 2, 2, 2, 2)
WIDTHS_WIDE = (4, 4, 12, 12, 12, 12, 4, 4, 5, 5, 4, 4, 3, 3, 3, 3, 3, 3)
UNITS = {"b": 1, "B": 1, "k": 1000, "K": 1024, "m": 1000000, "M": 1048576}
CPU_KEYS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
            "guest", "guest_nice")


def _s32(value: int) -> int:
    """Return ``value`` as a C ``int`` (32-bit two's complement)."""
    value %= U32
    return value - U32 if value >= 1 << 31 else value


def unit_convert(kb: int, unit: int) -> int:
    """vmstat.c ``unitConvert``: ``(unsigned long)((float)kb / unit * 1024)``."""
    return _c_ulong(c_float(c_float(c_float(float(u64(kb))) / c_float(float(unit))) * 1024.0))


def _c_ulong(x: float) -> int:
    """Convert a non-negative float to ``unsigned long`` as gcc on x86-64 does:
    from 2**64 on, the conversion (cvttss2si of x - 2**63, then bit 63 flipped)
    gives 0."""
    return int(x) if x < 2.0 ** 64 else 0


def _columns(values: list[int], wide: bool) -> str:
    """Format a header or data row with the procps column widths."""
    widths = WIDTHS_WIDE if wide else WIDTHS
    return " ".join(f"{v:>{w}}" for v, w in zip(values, widths))


def header(wide: bool, active: bool, timestamp: bool) -> str:
    """vmstat.c ``new_header``: the two header lines."""
    names = ["r", "b", "swpd", "free", "inact" if active else "buff",
             "active" if active else "cache", "si", "so", "bi", "bo", "in", "cs",
             "us", "sy", "id", "wa", "st", "gu"]
    first = (HEADER_WIDE if wide else HEADER) + (TIMESTAMP_HEADER if timestamp else "")
    second = _columns(names, wide)
    if timestamp:
        zone = time.strftime("%Z", time.localtime())[: len(TIMESTAMP_HEADER) - 1]
        second += " %*s" % (len(TIMESTAMP_HEADER) - 1, zone)
    return first + "\n" + second + "\n"


def _memory_columns(mem: dict[str, int], unit: int, active: bool) -> list[int]:
    """swpd, free, buff (inact) and cache (active), in the display unit."""
    third, fourth = (mem["inactive"], mem["active"]) if active else (mem["buffers"], mem["cached_all"])
    return [unit_convert(v, unit) for v in (mem["swap_used"], mem["free"], third, fourth)]


def _cpu_shares(use: int, sys_: int, idl: int, iow: int, sto: int, gue: int) -> list[int]:
    """us sy id wa st gu as percentages of Div = use+sys+idl+iow+sto, rounded."""
    div = use + sys_ + idl + iow + sto
    if not div:
        div, idl = 1, 1
    half = div // 2
    use = use - gue if use >= gue else 0
    return [((100 * x + half) // div) % U32 for x in (use, sys_, idl, iow, sto, gue)]


def boot_line(stat: dict, vm: dict, mem: dict, unit: int, active: bool, hz: int) -> list[int]:
    """The since-boot averages (the first line of new_format)."""
    t = stat["cpu"]
    use, sys_ = t["user"] + t["nice"], t["system"] + t["irq"] + t["softirq"]
    idl, iow, sto, gue = t["idle"], t["iowait"], t["steal"], t["guest"] + t["guest_nice"]
    div = use + sys_ + idl + iow + sto or 1
    half = div // 2

    def rate(count: int) -> int:
        return (u64(u64(count * hz) + half) // div) % U32

    kb_per_page = os.sysconf("SC_PAGESIZE") // 1024
    rates = [rate(unit_convert(u64(vm.get(k, 0) * kb_per_page), unit)) for k in ("pswpin", "pswpout")]
    rates += [rate(vm.get(k, 0)) for k in ("pgpgin", "pgpgout")]
    rates += [rate(stat["intr"]), rate(stat["ctxt"])]
    return ([stat["procs_running"], stat["procs_blocked"]] + _memory_columns(mem, unit, active)
            + rates + _cpu_shares(use, sys_, idl, iow, sto, gue))


class Sampler:
    """Successive readings of a proc tree, with procps' delta rules."""

    def __init__(self, proc: str):
        self.proc = proc
        self.vm = read_vmstat(proc)
        self.stat = read_stat(proc)
        self.debt = 0

    def _tick_deltas(self, new: dict, old: dict) -> dict:
        """Per-field tick deltas clamped at 0; all 0 if a sum went backwards
        (library/stat.c TICsetH and stat_derive_unique)."""
        def sums(t):
            usr, sys_ = t["user"] + t["nice"], t["system"] + t["irq"] + t["softirq"]
            idl = t["idle"] + t["iowait"]
            tot = usr + sys_ + idl + t["steal"] + t["guest"] + t["guest_nice"]
            return usr, sys_, idl, tot - idl, tot
        if any(n < o for n, o in zip(sums(new), sums(old))):
            old = new
        return {k: max(s64(new[k] - old[k]), 0) for k in CPU_KEYS}

    def next_line(self, mem: dict, unit: int, active: bool, interval: int) -> list[int]:
        """Read the tree again; return the line of deltas over ``interval`` s."""
        old_vm, old_stat = self.vm, self.stat
        self.vm, self.stat = read_vmstat(self.proc), read_stat(self.proc)
        d = self._tick_deltas(self.stat["cpu"], old_stat["cpu"])
        half = interval // 2
        kb_per_page = os.sysconf("SC_PAGESIZE") // 1024
        per = [unit_convert(u64((self.vm.get(k, 0) - old_vm.get(k, 0)) * kb_per_page), unit)
               for k in ("pswpin", "pswpout")]
        per += [u64(self.vm.get(k, 0) - old_vm.get(k, 0)) for k in ("pgpgin", "pgpgout")]
        rates = [(u64(x + half) // interval) % U32 for x in per]
        rates += [((self.stat[k] - old_stat[k] + half) % U32) // interval for k in ("intr", "ctxt")]
        idl = d["idle"]
        if self.debt:  # "idle can run backwards for a moment"
            idl, self.debt = _s32(idl) + self.debt, 0
        if _s32(idl) < 0:
            self.debt, idl = _s32(idl), 0
        shares = _cpu_shares(d["user"] + d["nice"], d["system"] + d["irq"] + d["softirq"], idl,
                             d["iowait"], d["steal"], d["guest"] + d["guest_nice"])
        return ([self.stat["procs_running"], self.stat["procs_blocked"]]
                + _memory_columns(mem, unit, active) + rates + shares)


def _stamp() -> str:
    """The -t timestamp of a line."""
    return " " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


def _write(text: str) -> None:
    """Write and flush (procps sets stdout line-buffered)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _header_height() -> int:
    """Rows between repeated headers: the terminal height - 3 (24 if unknown)."""
    try:
        rows = os.get_terminal_size(sys.stdout.fileno()).lines
    except (OSError, ValueError, AttributeError):
        rows = 24
    rows = rows if rows > 0 else 24
    return rows - 3 if rows - 3 > 0 else 22


def new_format(proc: str, *, unit: int, active: bool, wide: bool, timestamp: bool,
               one_header: bool, no_first: bool, delay: int, updates: int | None) -> None:
    """vmstat.c ``new_format``: header, since-boot line, then one line per delay.

    ``updates`` is the number of lines (None: forever).
    """
    hz = os.sysconf("SC_CLK_TCK")
    sampler = Sampler(proc)
    mem = derive_meminfo(read_meminfo(proc))
    height = None if one_header else _header_height()
    _write(header(wide, active, timestamp))
    if not no_first:
        line = _columns(boot_line(sampler.stat, sampler.vm, mem, unit, active, hz), wide)
        _write(line + (_stamp() if timestamp else "") + "\n")
    elif updates is not None:
        updates += 1
    i = 1
    while updates is None or i < updates:
        time.sleep(delay)
        if height and i % height == 0:
            _write(header(wide, active, timestamp))
        mem = derive_meminfo(read_meminfo(proc))
        line = _columns(sampler.next_line(mem, unit, active, delay), wide)
        _write(line + (_stamp() if timestamp else "") + "\n")
        i += 1


def sum_format(proc: str, unit: int, unit_name: str) -> str:
    """vmstat.c ``sum_format``: the ``-s`` event counter listing."""
    stat, vm = read_stat(proc), read_vmstat(proc)
    mem = derive_meminfo(read_meminfo(proc))
    lines = [f"{unit_convert(mem[key], unit):13d} {unit_name} {label}" for key, label in (
        ("total", "total memory"), ("used", "used memory"), ("active", "active memory"),
        ("inactive", "inactive memory"), ("free", "free memory"), ("buffers", "buffer memory"),
        ("cached_all", "swap cache"), ("swap_total", "total swap"), ("swap_used", "used swap"),
        ("swap_free", "free swap"))]
    cpu = stat["cpu"]
    lines += [f"{s64(cpu[key]):13d} {label} cpu ticks" for key, label in (
        ("user", "non-nice user"), ("nice", "nice user"), ("system", "system"), ("idle", "idle"),
        ("iowait", "IO-wait"), ("irq", "IRQ"), ("softirq", "softirq"), ("steal", "stolen"),
        ("guest", "non-nice guest"), ("guest_nice", "nice guest"))]
    lines += [f"{vm.get(key, 0):13d} {label}" for key, label in (
        ("pgpgin", "K paged in"), ("pgpgout", "K paged out"),
        ("pswpin", "pages swapped in"), ("pswpout", "pages swapped out"))]
    lines += [f"{stat[key]:13d} {label}" for key, label in (
        ("intr", "interrupts"), ("ctxt", "CPU context switches"), ("btime", "boot time"),
        ("processes", "forks"))]
    return "\n".join(lines) + "\n"


def _print_version(ctx, _param, value):
    """``-V``: print the version line of the procps tool cloned."""
    if value and not ctx.resilient_parsing:
        click.echo(f"vmstat from {PROCPS_VERSION}")
        ctx.exit(0)


def _unit(value: str | None) -> tuple[int, str]:
    """``-S`` k|K|m|M (and b|B): the unit divisor and its one-letter name."""
    if value is None:
        return 1024, "K"
    if not value or value[0] not in UNITS:
        raise InputError("vmstat -S", "-S requires k, K, m or M (default is KiB)")
    return UNITS[value[0]], value[0]


def _delay_count(args: tuple[str, ...]) -> tuple[int, int | None]:
    """``[delay [count]]`` as procps reads them: (delay, number of lines or None)."""
    if len(args) > 2:
        raise InputError("vmstat", f"unexpected argument '{args[2]}' (usage: vmstat [options] [delay [count]])")
    numbers = []
    for arg in args:
        try:
            numbers.append(int(arg, 10))
        except ValueError:
            raise InputError("vmstat", f"failed to parse argument: '{arg}'") from None
    if not numbers:
        return 1, 1
    if numbers[0] < 1:
        raise InputError("vmstat", "delay must be positive integer")
    if numbers[0] >= U32:
        raise InputError("vmstat", "too large delay value")
    if len(numbers) == 1:
        return numbers[0], None
    return numbers[0], u64(numbers[1])


@click.command("vmstat", cls=ProcpsCommand, usage_text=VMSTAT_USAGE,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--active", is_flag=True)
@click.option("-f", "--forks", is_flag=True)
@click.option("-m", "--slabs", is_flag=True)
@click.option("-n", "--one-header", "one_header", is_flag=True)
@click.option("-s", "--stats", is_flag=True)
@click.option("-d", "--disk", is_flag=True)
@click.option("-D", "--disk-sum", "disk_sum", is_flag=True)
@click.option("-p", "--partition", metavar="DEV")
@click.option("-S", "--unit", "unit", metavar="CHAR")
@click.option("-w", "--wide", is_flag=True)
@click.option("-t", "--timestamp", is_flag=True)
@click.option("-y", "--no-first", "no_first", is_flag=True)
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version)
@click.option("--proc", "proc", default="/proc", metavar="PATH", help="proc directory to read")
@click.argument("delay_count", nargs=-1)
def vmstat(proc, active, forks, slabs, one_header, stats, disk, disk_sum, partition, unit,
           wide, timestamp, no_first, delay_count):
    """Report virtual memory statistics, as procps-ng 4.0.2 vmstat."""
    proc = check_proc_dir(proc)
    unit, unit_name = _unit(unit)
    if forks:
        _write(f"{read_stat(proc)['processes']:13d} forks\n")
        return
    for flag, option in ((slabs, "-m"), (disk, "-d"), (disk_sum, "-D"), (partition, "-p")):
        if flag:
            raise InputError("vmstat", f"{option} is not supported: linmem models no disks or slab caches")
    delay, updates = _delay_count(delay_count)
    if stats:
        _write(sum_format(proc, unit, unit_name))
        return
    new_format(proc, unit=unit, active=active, wide=wide, timestamp=timestamp,
               one_header=one_header, no_first=no_first, delay=delay, updates=updates)
