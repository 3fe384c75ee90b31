"""``linmem smem``: smem 1.5 (Debian's), reading any proc directory.

A port of the smem script's ``procdata`` source and its reports:

* the process report (default): PID User Command Swap USS PSS RSS from
  ``PROC/PID/smaps`` -- each value the sum over the mappings (USS =
  Private_Clean + Private_Dirty), the user from the owner of the process
  directory, the command line with NULs as spaces; kernel threads (empty
  command line) and processes whose smaps cannot be read or has no mapping
  are left out;
* ``-m`` (per mapping name), ``-u`` (per user), ``-w`` (whole system, from
  meminfo; ``-K`` is not supported);
* ``-c COLUMNS``, ``-s COL``, ``-r``, ``-t`` totals, ``-k`` unit suffixes,
  ``-p`` percentages, ``-n`` numeric users, ``-H`` no header, ``-a``
  autosize, ``-R`` real memory, ``-P/-M/-U`` regular-expression filters.

The layout is smem's: ``%`` formats from its field table, every line ending
in a space, rows sorted as Python sorts ``(key, row)`` tuples (ties by the
row's values), the totals row after a rule of dashes as long as the header.

smem's ``-S SOURCE`` reads ``SOURCE/proc``; ``--proc PATH`` reads ``PATH``.
Differences from smem: missing or malformed machine-wide files (meminfo)
and bad options print one ``linmem: WHERE: WHAT`` line and exit 2 (smem:
a traceback, nothing, or status 255); unknown columns and sort fields are
listed as smem lists them, then exit 2 instead of 255. The ``avguss``
column of ``-m`` is USS / PIDs (smem 1.5 stops with a KeyError on it). Per-process files
that cannot be read or parsed leave the process out, as smem does.
"""

from __future__ import annotations

import os
import re
import sys

import click

from linmem.errors import InputError

FIELD_HELP = {
    "pid": "process ID", "user": "owner of process", "name": "name of process",
    "command": "process command line", "maps": "total number of mappings",
    "swap": "amount of swap space consumed (ignoring sharing)", "uss": "unique set size",
    "rss": "resident set size (ignoring sharing)",
    "pss": "proportional set size (including sharing)",
    "vss": "virtual set size (total virtual memory mapped)",
}


class Source:
    """smem's ``procdata``: files under a proc directory."""

    def __init__(self, proc: str):
        self.proc = proc
        self._ucache: dict[int, str] = {}
        self._memdata: dict | None = None

    def _read(self, rel: str) -> str:
        with open(os.path.join(self.proc, rel), encoding="utf-8") as fh:
            return fh.read()

    def pids(self) -> list[int]:
        try:
            names = os.listdir(self.proc)
        except FileNotFoundError:
            raise InputError(self.proc, "no such directory") from None
        return [int(e) for e in names if e.isdigit() and e.isascii() and not self.iskernel(e)]

    def iskernel(self, pid) -> bool:
        return self.pidcmd(pid) == ""

    def mapdata(self, pid: int) -> list[str]:
        return self._read(f"{pid}/smaps").splitlines(True)

    def pidname(self, pid) -> str:
        try:
            line = self._read(f"{pid}/stat")
            return line[line.find("(") + 1: line.find(")")]
        except Exception:
            return "?"

    def pidcmd(self, pid) -> str:
        try:
            return self._read(f"{pid}/cmdline")[:-1].replace("\0", " ")
        except Exception:
            return "?"

    def piduser(self, pid) -> int:
        try:
            return os.stat(os.path.join(self.proc, str(pid))).st_uid
        except Exception:
            return -1

    def username(self, uid: int) -> str:
        if uid == -1:
            return "?"
        if uid not in self._ucache:
            import pwd
            try:
                self._ucache[uid] = pwd.getpwuid(uid)[0]
            except KeyError:
                self._ucache[uid] = str(uid)
        return self._ucache[uid]

    def memory(self) -> dict:
        """smem ``memory()``: lower-cased meminfo keys with a kB value."""
        if self._memdata is None:
            path = os.path.join(self.proc, "meminfo")
            try:
                text = self._read("meminfo")
            except OSError as err:
                raise InputError(path, f"cannot read: {err.strerror or err}") from None
            t = {}
            for line in text.splitlines(True):
                m = re.match(r"(\S+):\s+(\d+) kB", line)
                if m:
                    t[m.group(1).lower()] = int(m.group(2))
            self._memdata = t
        return self._memdata

    def meminfo(self, key: str) -> int:
        mem = self.memory()
        if key not in mem:
            raise InputError(os.path.join(self.proc, "meminfo"), f"no {key} line in kB")
        return mem[key]


def units(x) -> str:
    """smem ``units``."""
    s = ""
    if x == 0:
        return "0"
    for s in ("", "K", "M", "G", "T"):
        if x < 1024:
            break
        x /= 1024.0
    return "%.1f%s" % (x, s)


def fromunits(x: str) -> int:
    """smem ``fromunits`` (``-R``)."""
    s = dict(k=2**10, K=2**10, kB=2**10, KB=2**10, M=2**20, MB=2**20, G=2**30, GB=2**30,
             T=2**40, TB=2**40)
    for k, v in s.items():
        if x.endswith(k):
            try:
                return int(float(x[:-len(k)]) * v)
            except ValueError:
                break
    raise InputError("smem -R", "Memory size should be written with units, for example 1024M")


class Smem:
    """One smem run over a source with its options."""

    def __init__(self, src: Source, opts: dict, write):
        self.src = src
        self.o = opts
        self.write = write
        self.warned = False
        self._totalmem = 0

    # -- helpers from the script
    def totalmem(self):
        if not self._totalmem:
            if self.o["realmem"]:
                self._totalmem = fromunits(self.o["realmem"]) / 1024
            else:
                self._totalmem = self.src.meminfo("memtotal")
        return self._totalmem

    def filters(self, opt, arg, *sources) -> bool:
        if not opt:
            return False
        for f in sources:
            if re.search(opt, f(arg)):
                return False
        return True

    def pidusername(self, pid) -> str:
        return self.src.username(self.src.piduser(pid))

    def pidmaps(self, pid) -> dict:
        maps: dict = {}
        start = None
        seen = False
        empty = True
        for number, line in enumerate(self.src.mapdata(pid), 1):
            empty = False
            try:
                f = line.split()
                if f[-1] == "kB":
                    if f[0].startswith("Pss"):
                        seen = True
                    maps[start][f[0][:-1].lower()] = int(f[1])
                elif "-" in f[0] and ":" not in f[0]:
                    start_text, end = f[0].split("-")
                    start = int(start_text, 16)
                    name = "<anonymous>"
                    if len(f) > 5:
                        name = f[5]
                    maps[start] = dict(end=int(end, 16), mode=f[1], offset=int(f[2], 16),
                                       device=f[3], inode=f[4], name=name)
            except (IndexError, ValueError, KeyError):
                # smem would stop with a traceback or drop the process
                where = f"{os.path.join(self.src.proc, str(pid), 'smaps')}:{number}"
                raise InputError(where, f"cannot read this smaps line: {line.strip()[:40]!r}") \
                    from None
        if not empty and not seen and not self.warned:
            sys.stderr.write("warning: kernel does not appear to support PSS measurement\n")
            self.warned = True
            if not self.o["sort"]:
                self.o["sort"] = "rss"
        if self.o["mapfilter"]:
            return {m: v for m, v in maps.items()
                    if not self.filters(self.o["mapfilter"], m, lambda x: maps[x]["name"])}
        return maps

    def skip(self, pid) -> bool:
        return (self.filters(self.o["processfilter"], pid, self.src.pidname, self.src.pidcmd)
                or self.filters(self.o["userfilter"], pid, self.pidusername))

    def showamount(self, a, total):
        if self.o["abbreviate"]:
            return units(a * 1024)
        if self.o["percent"]:
            if total == 0:
                return "N/A"
            return "%.2f%%" % (100.0 * a / total)
        return a

    # -- reports
    def showpids(self) -> int:
        pt = {}
        for pid in self.src.pids():
            if self.skip(pid):
                continue
            try:
                maps = self.pidmaps(pid)
            except (OSError, UnicodeDecodeError):
                continue
            t = dict(size=0, rss=0, pss=0, shared_clean=0, shared_dirty=0,
                     private_clean=0, private_dirty=0, referenced=0, swap=0)
            for m in maps:
                for k in t:
                    t[k] += maps[m].get(k, 0)
            t["uss"] = t["private_clean"] + t["private_dirty"]
            t["maps"] = len(maps)
            if t["maps"] != 0:
                pt[pid] = t

        def showuser(p):
            if self.o["numeric"]:
                return self.src.piduser(p)
            return self.pidusername(p)
        fields = dict(
            pid=("PID", lambda n: n, "% 5s", lambda x: len(pt), "process ID"),
            user=("User", showuser, "%-8s", lambda x: len(dict.fromkeys(x)), "owner of process"),
            name=("Name", self.src.pidname, "%-24.24s", None, "name of process"),
            command=("Command", self.src.pidcmd, "%-27.27s", None, "process command line"),
            maps=("Maps", lambda n: pt[n]["maps"], "% 5s", sum, "total number of mappings"),
            swap=("Swap", lambda n: pt[n]["swap"], "% 8a", sum,
                  "amount of swap space consumed (ignoring sharing)"),
            uss=("USS", lambda n: pt[n]["uss"], "% 8a", sum, "unique set size"),
            rss=("RSS", lambda n: pt[n]["rss"], "% 8a", sum,
                 "resident set size (ignoring sharing)"),
            pss=("PSS", lambda n: pt[n]["pss"], "% 8a", sum,
                 "proportional set size (including sharing)"),
            vss=("VSS", lambda n: pt[n]["size"], "% 8a", sum,
                 "virtual set size (total virtual memory mapped)"),
        )
        columns = self.o["columns"] or "pid user command swap uss pss rss"
        return self.showtable(list(pt.keys()), fields, columns.split(), self.o["sort"] or "pss")

    def showmaps(self) -> int:
        pt: dict = {}
        for pid in self.src.pids():
            if self.skip(pid):
                continue
            try:
                maps = self.pidmaps(pid)
                seen = {}
                for m in maps:
                    name = maps[m]["name"]
                    if name not in pt:
                        t = dict(size=0, rss=0, pss=0, shared_clean=0, shared_dirty=0,
                                 private_clean=0, count=0, private_dirty=0, referenced=0,
                                 swap=0, pids=0)
                    else:
                        t = pt[name]
                    for k in t:
                        t[k] += maps[m].get(k, 0)
                    t["count"] += 1
                    if name not in seen:
                        t["pids"] += 1
                        seen[name] = 1
                    pt[name] = t
            except (OSError, UnicodeDecodeError):
                continue
        fields = dict(
            map=("Map", lambda n: n, "%-40.40s", len, "mapping name"),
            count=("Count", lambda n: pt[n]["count"], "% 5s", sum, "number of mappings found"),
            pids=("PIDs", lambda n: pt[n]["pids"], "% 5s", sum, "number of PIDs using mapping"),
            swap=("Swap", lambda n: pt[n]["swap"], "% 8a", sum,
                  "amount of swap space consumed (ignoring sharing)"),
            uss=("USS", lambda n: pt[n]["private_clean"] + pt[n]["private_dirty"], "% 8a", sum,
                 "unique set size"),
            rss=("RSS", lambda n: pt[n]["rss"], "% 8a", sum,
                 "resident set size (ignoring sharing)"),
            pss=("PSS", lambda n: pt[n]["pss"], "% 8a", sum,
                 "proportional set size (including sharing)"),
            vss=("VSS", lambda n: pt[n]["size"], "% 8a", sum,
                 "virtual set size (total virtual address space mapped)"),
            avgpss=("AVGPSS", lambda n: int(1.0 * pt[n]["pss"] / pt[n]["pids"]), "% 8a", sum,
                    "average PSS per PID"),
            # smem 1.5 reads pt[n]["uss"], which it never sets (KeyError)
            avguss=("AVGUSS", lambda n: int(1.0 * (pt[n]["private_clean"] + pt[n]["private_dirty"])
                                            / pt[n]["pids"]), "% 8a", sum, "average USS per PID"),
            avgrss=("AVGRSS", lambda n: int(1.0 * pt[n]["rss"] / pt[n]["pids"]), "% 8a", sum,
                    "average RSS per PID"),
        )
        columns = self.o["columns"] or "map pids avgpss pss"
        return self.showtable(list(pt.keys()), fields, columns.split(), self.o["sort"] or "pss")

    def showusers(self) -> int:
        pt: dict = {}
        for pid in self.src.pids():
            if self.skip(pid):
                continue
            try:
                maps = self.pidmaps(pid)
                if len(maps) == 0:
                    continue
            except (OSError, UnicodeDecodeError):
                continue
            user = self.src.piduser(pid)
            if user not in pt:
                t = dict(size=0, rss=0, pss=0, shared_clean=0, shared_dirty=0,
                         private_clean=0, count=0, private_dirty=0, referenced=0, swap=0)
            else:
                t = pt[user]
            for m in maps:
                for k in t:
                    t[k] += maps[m].get(k, 0)
            t["count"] += 1
            pt[user] = t

        def showuser(u):
            if self.o["numeric"]:
                return u
            return self.src.username(u)
        fields = dict(
            user=("User", showuser, "%-8s", None, "user name or ID"),
            count=("Count", lambda n: pt[n]["count"], "% 5s", sum, "number of processes"),
            swap=("Swap", lambda n: pt[n]["swap"], "% 8a", sum,
                  "amount of swapspace consumed (ignoring sharing)"),
            uss=("USS", lambda n: pt[n]["private_clean"] + pt[n]["private_dirty"], "% 8a", sum,
                 "unique set size"),
            rss=("RSS", lambda n: pt[n]["rss"], "% 8a", sum,
                 "resident set size (ignoring sharing)"),
            pss=("PSS", lambda n: pt[n]["pss"], "% 8a", sum,
                 "proportional set size (including sharing)"),
            vss=("VSS", lambda n: pt[n]["pss"], "% 8a", sum,
                 "virtual set size (total virtual memory mapped)"),
        )
        columns = self.o["columns"] or "user count swap uss pss rss"
        return self.showtable(list(pt.keys()), fields, columns.split(), self.o["sort"] or "pss")

    def showsystem(self) -> int:
        t = self.totalmem()
        ki = 0
        m = self.src.memory()
        for key in ("memtotal", "memfree", "anonpages", "mapped", "buffers", "sreclaimable",
                    "cached"):
            self.src.meminfo(key)
        mt = m["memtotal"]
        f = m["memfree"]
        fh = max(t - mt - ki, 0)
        u = m["anonpages"] + m["mapped"]
        kd = mt - f - u
        kdc = m["buffers"] + m["sreclaimable"] + (m["cached"] - m["mapped"])
        rows = [("firmware/hardware", fh, 0), ("kernel image", ki, 0),
                ("kernel dynamic memory", kd, kdc), ("userspace memory", u, m["mapped"]),
                ("free memory", f, f)]
        fields = dict(
            order=("Order", lambda n: n, "% 1s", lambda x: "", "hierarchical order"),
            area=("Area", lambda n: rows[n][0], "%-24s", lambda x: "", "memory area"),
            used=("Used", lambda n: rows[n][1], "%10a", sum, "area in use"),
            cache=("Cache", lambda n: rows[n][2], "%10a", sum, "area used as reclaimable cache"),
            noncache=("Noncache", lambda n: rows[n][1] - rows[n][2], "%10a", sum,
                      "area not reclaimable"))
        columns = self.o["columns"] or "area used cache noncache"
        return self.showtable(list(range(len(rows))), fields, columns.split(),
                              self.o["sort"] or "order")

    def showfields(self, fields, f) -> int:
        if isinstance(f, (list, set)):
            self.write("unknown fields: " + " ".join(f) + "\n")
        else:
            self.write("unknown field %s\n" % f)
        self.write("known fields:\n")
        for name in sorted(fields):
            self.write("%-8s %s\n" % (name, fields[name][-1]))
        names = " ".join(sorted(f)) if isinstance(f, (list, set)) else f
        raise InputError("smem", f"unknown field(s): {names}")

    def autosize(self, columns, fields, rows) -> dict:
        colsizes = {}
        for c in columns:
            sizes = [1]
            if not self.o["no_header"]:
                sizes.append(len(fields[c][0]))
            if (self.o["abbreviate"] or self.o["percent"]) and "a" in fields[c][2]:
                sizes.append(7)
            else:
                for r in rows:
                    sizes.append(len(str(fields[c][1](r))))
            colsizes[c] = max(sizes)
        overflowcols = {"command", "map"} & set(columns)
        if overflowcols:
            overflowcol = overflowcols.pop()
            totnoflow = sum(colsizes.values()) - colsizes[overflowcol]
            try:
                ttycolumns = os.get_terminal_size(0).columns
            except OSError:
                ttycolumns = 80
            maxflowcol = max(ttycolumns - totnoflow - len(columns), 10)
            colsizes[overflowcol] = min(colsizes[overflowcol], maxflowcol)
        return colsizes

    def showtable(self, rows, fields, columns, sort) -> int:
        header = ""
        fmt = ""
        formatter = []
        if sort not in fields:
            return self.showfields(fields, sort)
        mt = self.totalmem()
        st = self.src.meminfo("swaptotal")
        missing = set(columns) - set(fields)
        if missing:
            return self.showfields(fields, missing)
        colsizes = self.autosize(columns, fields, rows) if self.o["autosize"] else {}
        for n in columns:
            f = fields[n][2]
            if "a" in f:
                if n == "swap":
                    formatter.append(lambda x: self.showamount(x, st))
                else:
                    formatter.append(lambda x: self.showamount(x, mt))
                f = f.replace("a", "s")
            else:
                formatter.append(lambda x: x)
            if n in colsizes:
                f = re.sub(r"[0-9]+", str(colsizes[n]), f)
            fmt += f + " "
            header += f % fields[n][0] + " "
        table = []
        for n in rows:
            r = [fields[c][1](n) for c in columns]
            table.append((fields[sort][1](n), r))
        table.sort(reverse=bool(self.o["reverse"]))
        if not self.o["no_header"]:
            self.write(header + "\n")
        for _k, r in table:
            self.write(fmt % tuple(f(v) for f, v in zip(formatter, r)) + "\n")
        if self.o["totals"]:
            t = []
            for c in columns:
                f = fields[c][3]
                if f:
                    t.append(f([fields[c][1](n) for n in rows]))
                else:
                    t.append("")
            self.write("-" * len(header) + "\n")
            self.write(fmt % tuple(f(v) for f, v in zip(formatter, t)) + "\n")
        return 0


SMEM_USAGE = """Usage: smem [options]

Options:
  -h, --help            show this help message and exit
  -H, --no-header       disable header line
  -c COLUMNS, --columns=COLUMNS
                        columns to show
  -t, --totals          show totals
  -a, --autosize        size columns to fit terminal size
  -R REALMEM, --realmem=REALMEM
                        amount of physical RAM
  -m, --mappings        show mappings
  -u, --users           show users
  -w, --system          show whole system
  -P PROCESSFILTER, --processfilter=PROCESSFILTER
                        process filter regex
  -M MAPFILTER, --mapfilter=MAPFILTER
                        map filter regex
  -U USERFILTER, --userfilter=USERFILTER
                        user filter regex
  -n, --numeric         numeric output
  -s SORT, --sort=SORT  field to sort on
  -r, --reverse         reverse sort
  -p, --percent         show percentage
  -k, --abbreviate      show unit suffixes
  -S SOURCE, --source=SOURCE
                        /proc data source (reads SOURCE/proc)
  --proc=PATH           proc directory to read (a tree linmem run wrote)
                        instead of /proc
"""


def run(proc: str, write=None, **options) -> int:
    """Run smem over ``proc`` with the options of :func:`smem`; return the status."""
    write = write or sys.stdout.write
    defaults = dict(no_header=False, columns=None, totals=False, autosize=False, realmem=None,
                    mappings=False, users=False, system=False, processfilter=None,
                    mapfilter=None, userfilter=None, numeric=False, sort=None, reverse=False,
                    percent=False, abbreviate=False)
    defaults.update(options)
    from linmem.procfs.parse import check_proc_dir
    src = Source(check_proc_dir(proc))
    for key in ("processfilter", "mapfilter", "userfilter"):
        if defaults[key]:
            try:
                re.compile(defaults[key])
            except re.error as err:
                raise InputError(f"smem --{key}", f"bad regular expression: {err}") from None
    tool = Smem(src, defaults, write)
    if defaults["mappings"]:
        return tool.showmaps()
    if defaults["users"]:
        return tool.showusers()
    if defaults["system"]:
        return tool.showsystem()
    return tool.showpids()


class SmemCommand(click.Command):
    """Prints smem's usage text (with --proc) as its help."""

    def get_help(self, ctx):
        return SMEM_USAGE[:-1]


@click.command("smem", cls=SmemCommand, context_settings={"help_option_names": ["--help"]})
@click.option("-H", "--no-header", "no_header", is_flag=True)
@click.option("-c", "--columns", "columns")
@click.option("-t", "--totals", "totals", is_flag=True)
@click.option("-a", "--autosize", "autosize", is_flag=True)
@click.option("-R", "--realmem", "realmem")
@click.option("-K", "--kernel", "kernel", hidden=True)
@click.option("-m", "--mappings", "mappings", is_flag=True)
@click.option("-u", "--users", "users", is_flag=True)
@click.option("-w", "--system", "system", is_flag=True)
@click.option("-P", "--processfilter", "processfilter")
@click.option("-M", "--mapfilter", "mapfilter")
@click.option("-U", "--userfilter", "userfilter")
@click.option("-n", "--numeric", "numeric", is_flag=True)
@click.option("-s", "--sort", "sort")
@click.option("-r", "--reverse", "reverse", is_flag=True)
@click.option("-p", "--percent", "percent", is_flag=True)
@click.option("-k", "--abbreviate", "abbreviate", is_flag=True)
@click.option("--pie", "pie", hidden=True)
@click.option("--bar", "bar", hidden=True)
@click.option("-S", "--source", "source", help="read SOURCE/proc, as smem -S")
@click.option("--proc", "proc", default=None, metavar="PATH",
              help="proc directory to read (a tree linmem run wrote, or /proc)")
def smem(proc, source, kernel, pie, bar, **options):
    """Report memory usage with shared memory divided proportionally, as smem 1.5."""
    if kernel:
        raise InputError("smem -K", "reading a kernel image is not supported by linmem smem")
    if pie or bar:
        raise InputError("smem", "--pie and --bar need matplotlib; not supported by linmem smem")
    if proc is None:
        proc = os.path.join(source, "proc") if source else "/proc"
    status = run(proc, **options)
    sys.stdout.flush()
    if status:
        raise SystemExit(status)      # linmem.cli.main passes SystemExit through
