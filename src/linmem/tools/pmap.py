"""``linmem pmap``: procps-ng 4.0.2 ``pmap``, reading any proc directory.

A port of src/pmap.c over the per-process reading of libproc2
(:mod:`linmem.tools.readproc`):

* the default report from ``PROC/PID/maps``: ``%016lx %6luK perms name``
  and `` total %16ldK``; mapping names as ``mapping_name`` makes them (the
  basename after the line's last ``/``, ``[ stack ]`` for the mapping that
  holds stat's start_stack, ``[ anon ]`` otherwise, ``[ shmid=0x.. ]`` for
  SysV shared memory);
* ``-x`` from ``PROC/PID/smaps``: Address Kbytes RSS Dirty Mode Mapping, a
  row printed when the mapping's ``Swap:`` line is read, the ``total kB``
  footer;
* ``-X`` and ``-XX`` (``print_extended_maps``): every smaps field (-X leaves
  out the ones pmap deems unimportant), widths measured over the whole file
  first, totals and the ``KB`` footer;
* ``-d`` (device format) with its ``mapped: ... writeable/private: ...
  shared: ...`` footer, ``-q`` (no header and footer), ``-p`` (whole paths),
  ``-A low,high`` (address range), ``/proc/PID`` arguments.

The header line is ``PID:   command line`` with the escaped
``PROC/PID/cmdline`` (``[comm]`` for kernel threads). Processes are shown in
the order given; a PID without a directory or a stat file is skipped, and
the exit status is then 42 as procps' (ORed with 1 when a maps file cannot
be opened).

Differences from procps: option errors and malformed files print one
``linmem: WHERE: WHAT`` line and exit 2 (procps: its usage or "Unknown
format in smaps file!", status 1); the rc files of ``-c -C -n -N`` are not
supported. The SysV shared-memory minor device number is found as pmap
finds it (its own shmat() seen in ``/proc/self/maps``) only for the live
``/proc``; in another tree the first ``/SYSV`` mapping of ``PROC/self/maps``
is taken.
"""

from __future__ import annotations

import os
import re
import sys

import click

from linmem.errors import InputError
from linmem.tools import readproc as rp
from linmem.tools.free import PROCPS_VERSION

PMAP_USAGE = """
Usage:
 pmap [options] PID [PID ...]

Options:
 -x, --extended              show details
 -X                          show even more details
            WARNING: format changes according to /proc/PID/smaps
 -XX                         show everything the kernel provides
 -d, --device                show the device format
 -q, --quiet                 do not display header and footer
 -p, --show-path             show path in the mapping
 -A, --range=<low>[,<high>]  limit results to the given range
     --proc PATH             read PATH (a proc tree, e.g. one linmem run
                               wrote) instead of /proc

     --help     display this help and exit
 -V, --version  output version information and exit

For more details see pmap(1).
"""

ULONG = 1 << 64
UNIMPORTANT = {"AnonHugePages", "KernelPageSize", "MMUPageSize", "Shared_Dirty",
               "Private_Dirty", "Shared_Clean", "Private_Clean", "VmFlags"}
_MAP_LINE = re.compile(
    rb"([0-9a-f]{1,20})-([0-9a-f]{1,20})\s*(\S{1,31})\s*([0-9a-f]{1,20})\s*([0-9a-f:]{1,63})"
    rb"\s*(\S{1,20})\s*([^\n]{0,127})")
_HEX = re.compile(rb"[ \t\n\v\f\r]*(?:0[xX])?([0-9a-fA-F]+)")
_SMAP_KEY = re.compile(rb"([^:]{1,20}):[ \t\n\v\f\r]*([+-]?\d+)")
_DETAIL = re.compile(rb"([^:]{1,31}): [ \t\n\v\f\r]*([0-9]{1,20})(?: [ \t\n\v\f\r]*kB)?")


def fgets_lines(data: bytes, size: int = 1024) -> list[bytes]:
    """The pieces ``fgets(buf, size, f)`` returns, one call after another."""
    out = []
    at = 0
    limit = size - 1
    while at < len(data):
        nl = data.find(b"\n", at, at + limit)
        end = nl + 1 if nl >= 0 else min(at + limit, len(data))
        out.append(data[at:end])
        at = end
    return out


def _scan_hex(line: bytes, pos: int = 0) -> tuple[int, int] | None:
    m = _HEX.match(line, pos)
    if not m:
        return None
    return int(m.group(1), 16) % ULONG, m.end()


def scan_maps_line(line: bytes, prev: dict) -> dict:
    """``sscanf("%lx-%lx %31s %llx %x:%x %llu")``: fields that do not parse
    keep their previous values, as the C variables do."""
    out = dict(prev)
    m = _HEX.match(line)
    if not m:
        return out
    out["start"] = int(m.group(1), 16) % ULONG
    pos = m.end()
    if line[pos:pos + 1] != b"-":
        return out
    m = _HEX.match(line, pos + 1)
    if not m:
        return out
    out["end"] = int(m.group(1), 16) % ULONG
    m = re.compile(rb"[ \t\n\v\f\r]*(\S{1,31})").match(line, m.end())
    if not m:
        return out
    out["perms"] = m.group(1)
    m = _HEX.match(line, m.end())
    if not m:
        return out
    out["offset"] = int(m.group(1), 16) % ULONG
    m = re.compile(rb"[ \t\n\v\f\r]*([0-9a-fA-F]+):([0-9a-fA-F]+)").match(line, m.end())
    if not m:
        return out
    out["major"] = int(m.group(1), 16) % (1 << 32)
    out["minor"] = int(m.group(2), 16) % (1 << 32)
    m2 = re.compile(rb"[ \t\n\v\f\r]*(\d+)").match(line, m.end())
    if m2:
        out["inode"] = int(m2.group(1)) % ULONG
    return out


class ShmMinor:
    """pmap.c ``discover_shm_minor``: the minor device of SysV shared memory."""

    def __init__(self, proc: str):
        self.proc = proc
        self._value: int | None = None

    def get(self) -> int:
        if self._value is None:
            self._value = self._discover()
        return self._value

    def _discover(self) -> int:
        none = 0xFFFFFFFF
        if os.path.realpath(self.proc) == "/proc" and os.path.exists("/proc/self/maps"):
            return self._live() or none
        try:
            data = rp.read_bytes(os.path.join(self.proc, "self", "maps"))
        except OSError:
            return none
        for line in data.split(b"\n"):
            f = scan_maps_line(line, {})
            if len(f) < 6 or f.get("major") or f["perms"][3:4] != b"s":
                continue
            if b"/SYSV" in line:
                return f["minor"]
        return none

    @staticmethod
    def _live() -> int | None:
        """Attach a private segment and look for it in /proc/self/maps."""
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        libc.shmget.restype = ctypes.c_int
        ipc_private, ipc_creat, shm_rdonly, ipc_rmid = 0, 0o1000, 0o10000, 0
        shmid = libc.shmget(ipc_private, 42, ipc_creat | 0o666)
        if shmid == -1:
            return None
        try:
            addr = libc.shmat(shmid, None, shm_rdonly)
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                with open("/proc/self/maps", "rb") as fh:
                    lines = fh.read().split(b"\n")
                for line in lines:
                    f = scan_maps_line(line, {})
                    if len(f) < 6 or f["start"] > addr or f.get("major"):
                        continue
                    if f["perms"][3:4] != b"s":
                        continue
                    if b"/SYSV" in line:
                        return f["minor"]
                return None
            finally:
                libc.shmdt(ctypes.c_void_p(addr))
        finally:
            libc.shmctl(shmid, ipc_rmid, None)


class Pmap:
    """One pmap run: options and the per-PID reports."""

    def __init__(self, proc: str, write, *, x=False, X=0, d=False, q=False, showpath=False,
                 range_low=0, range_high=ULONG - 1):
        self.proc = proc
        self.write = write
        self.x, self.X, self.d, self.q = x, X, d, q
        self.showpath = showpath
        self.range_low, self.range_high = range_low, range_high
        self.shm = ShmMinor(proc)
        self.listhead: list[dict] = []       # print_extended_maps keeps it across PIDs

    # -- mapping_name
    def mapping_name(self, start_stack: int, addr: int, length: int, line: bytes,
                     major: int, minor: int, inode: int) -> bytes:
        if not major and b"/SYSV" in line and minor == self.shm.get():
            return b"  [ shmid=0x%x ]" % inode
        slash = line.rfind(b"/")
        if slash >= 0:
            if self.showpath:
                return line[line.find(b"/"):]
            return line[slash + 1:] if line[slash + 1:] else line[slash:]
        if addr <= start_stack <= (addr + length) % ULONG:
            return b"  [ stack ]"
        return b"  [ anon ]"

    # -- one process
    def one_proc(self, pid: int, piddir: str, cmdline: bytes, start_stack: int) -> int:
        """pmap.c ``one_proc``; returns its status bit (1 if the file cannot be opened)."""
        out = self.write
        out(b"%d:   %s\n" % (pid, cmdline))
        name = "smaps" if (self.x or self.X) else "maps"
        path = os.path.join(piddir, name)
        try:
            data = rp.read_bytes(path)
        except OSError:
            return 1
        if self.X:
            self.extended(data, path)
            return 0
        # the column widths of one_proc are fixed: 16 7 7 7 5 (-x), 16 7 5 16 9 (-d)
        if self.x:
            if not self.q:
                out(b"%-16s %7s %7s %7s %-5s Mapping\n" % (b"Address", b"Kbytes", b"RSS",
                                                           b"Dirty", b"Mode"))
        if self.d:
            if not self.q:
                out(b"%-16s %7s %-5s %-16s %-9s Mapping\n" % (b"Address", b"Kbytes", b"Mode",
                                                             b"Offset", b"Device"))
        total_shared = total_private_ro = total_private_rw = 0
        rss = private_dirty = shared_dirty = 0
        total_rss = total_private_dirty = total_shared_dirty = 0
        f = {"start": 0, "end": 0, "perms": b"", "offset": 0, "major": 0, "minor": 0, "inode": 0}
        diff = 0
        perms = b""
        cp2: bytes | None = None
        continuation = False
        for number, raw in enumerate(fgets_lines(data), 1):
            piece_of_long_line, continuation = continuation, not raw.endswith(b"\n")
            if raw[:1].isupper() and raw[:1].isascii():
                m = _SMAP_KEY.match(raw)
                if not m:
                    continue
                key, value = m.group(1), int(m.group(2)) % ULONG
                if key == b"Rss":
                    rss = value
                    total_rss += value
                elif key == b"Shared_Dirty":
                    shared_dirty = value
                    total_shared_dirty += value
                elif key == b"Private_Dirty":
                    private_dirty = value
                    total_private_dirty += value
                elif key == b"Swap":
                    if cp2 is not None:
                        out(b"%016x %7d %7d %7d %5s %s\n" % (
                            f["start"], (diff >> 10) % ULONG, rss % ULONG,
                            (private_dirty + shared_dirty) % ULONG, perms, cp2))
                    rss = shared_dirty = private_dirty = 0
                    diff = 0
                    f["end"] = 0
                    perms = b""
                    cp2 = None
                continue
            if not piece_of_long_line and not _MAP_LINE.match(raw):
                raise InputError(f"{path}:{number}",
                                 f"expected a mapping line, got {raw.strip()[:40]!r}")
            f = scan_maps_line(raw, f)
            if (f["end"] - 1) % ULONG < self.range_low:
                continue
            if self.range_high < f["start"]:
                break
            line = raw.rstrip(b"\n")
            line = bytes(c if 0x20 <= c < 0x7f else 0x3F for c in line)
            diff = (f["end"] - f["start"]) % ULONG
            perms = bytearray(f["perms"].ljust(4, b"\0")[:31])
            if perms[3:4] == b"s":
                total_shared += diff
            if perms[3:4] == b"p":
                perms[3] = ord("-")
                if perms[1:2] == b"w":
                    total_private_rw += diff
                else:
                    total_private_ro += diff
            perms = bytes(perms[:4]) + b"-"
            perms = perms.split(b"\0", 1)[0]
            name = self.mapping_name(start_stack, f["start"], diff, line, f["major"],
                                     f["minor"], f["inode"])
            if self.x:
                cp2 = name
                continue
            if self.d:
                out(b"%016x %7d %5s %016x %03x:%05x %s\n" % (
                    f["start"], (diff >> 10), perms, f["offset"], f["major"], f["minor"], name))
            else:
                out(b"%016x %6dK %s %s\n" % (f["start"], diff >> 10, perms, name))
        if not self.q:
            mapped = (total_shared + total_private_rw + total_private_ro) % ULONG
            mapped_kb = _signed(mapped >> 10)
            if self.x:
                out(b"---------------- ------- ------- ------- \n")
                out(b"%-16s %7d %7d %7d\n" % (b"total kB", mapped_kb, total_rss % ULONG,
                                           (total_shared_dirty + total_private_dirty) % ULONG))
            elif self.d:
                out(b"mapped: %dK    writeable/private: %dK    shared: %dK\n" % (
                    mapped_kb, _signed((total_private_rw % ULONG) >> 10),
                    _signed((total_shared % ULONG) >> 10)))
            else:
                out(b" total %16dK\n" % mapped_kb)
        return 0

    # -- print_extended_maps
    def enabled(self, name: str) -> bool:
        """pmap.c ``is_enabled``."""
        if self.X == 1:
            return name not in UNIMPORTANT
        return True

    def extended(self, data: bytes, path: str) -> None:
        """pmap.c ``print_extended_maps`` (-X, -XX)."""
        out = self.write
        lines = fgets_lines(data)
        w1 = w2 = w3 = w4 = w5 = wv = 0
        has_vmflags = False
        records = []          # one per mapping: (fields, values by description, vmflags)
        n = 0

        def fail():
            raise InputError(f"{path}:{n + 1}", "Unknown format in smaps file!")
        # first pass: measure
        while n < len(lines):
            m = _MAP_LINE.match(lines[n])
            if not m:
                fail()
            start, _end, perms, offset, dev, inode, desc = m.groups()
            while not lines[n].endswith(b"\n"):
                n += 1
                if n >= len(lines):
                    fail()
            w1, w2, w3 = max(w1, len(start)), max(w2, len(perms)), max(w3, len(offset))
            w4, w5 = max(w4, len(dev)), max(w5, len(inode))
            n += 1
            details = []
            while n < len(lines):
                d = _DETAIL.match(lines[n])
                if not d or not self._two_fields(lines[n], d):
                    break
                details.append((d.group(1).decode("latin-1"), d.group(2)))
                n += 1
            vmflags = None
            if n < len(lines) and lines[n].startswith(b"VmFlags:"):
                v = re.match(rb"VmFlags:[ \t\n\v\f\r]*([a-z ]{1,127})", lines[n])
                if v:
                    vmflags = v.group(1)
                    if vmflags.endswith(b" "):
                        vmflags = vmflags[:-1]
                    wv = max(wv, len(vmflags))
                    has_vmflags = True
                    n += 1
            records.append(((start, perms, offset, dev, inode, desc), details, vmflags,
                            lines[n - 1]))
        # the detail list (kept across PIDs, as pmap's static list)
        for rec_index, (_fields, details, _vm, _last) in enumerate(records):
            node_index = 0
            for desc, value in details:
                if not self.enabled(desc):
                    continue
                if node_index >= len(self.listhead):
                    self.listhead.append({"desc": desc, "value": b"", "total": 0,
                                          "width": 0 if self.q else len(desc)})
                elif self.listhead[node_index]["desc"] != desc:
                    raise InputError(path, "ERROR: inconsistent detail field in smaps file, "
                                           f"line: {desc}")
                node = self.listhead[node_index]
                node["value"] = value
                node["total"] = (node["total"] + int(value)) % ULONG
                if self.q:
                    node["width"] = max(node["width"], len(value))
                node_index += 1
        if not self.q:
            for node in self.listhead:
                node["width"] = max(node["width"], len(str(node["total"])))
        # second pass: print
        firstmapping = True
        vmflags_now = next((r[2] for r in reversed(records) if r[2] is not None), b"")
        for (start, perms, offset, dev, inode, desc), details, vmflags, _last in records:
            if firstmapping and not self.q:
                head = []
                w1 = self._justify(head, b"Address", w1)
                w2 = self._justify(head, b"Perm", w2) if self.enabled("Perm") else w2
                w3 = self._justify(head, b"Offset", w3) if self.enabled("Offset") else w3
                w4 = self._justify(head, b"Device", w4) if self.enabled("Device") else w4
                w5 = self._justify(head, b"Inode", w5) if self.enabled("Inode") else w5
                for node in self.listhead:
                    self._justify(head, node["desc"].encode("latin-1"), node["width"])
                if has_vmflags and self.enabled("VmFlags"):
                    wv = self._justify(head, b"VmFlags", wv)
                head.append(b"Mapping\n")
                out(b"".join(head))
            node_index = 0
            for d, value in details:
                if not self.enabled(d):
                    continue
                if node_index < len(self.listhead):
                    self.listhead[node_index]["value"] = value
                node_index += 1
            row = [b"%*s" % (w1, start), b" %*s" % (w2, perms), b" %*s" % (w3, offset),
                   b" %*s" % (w4, dev), b" %*s" % (w5, inode)]
            for node in self.listhead:
                row.append(b" %*s" % (node["width"], node["value"]))
            if has_vmflags and self.enabled("VmFlags"):
                if vmflags is not None:
                    vmflags_now = vmflags
                row.append(b" %*s" % (wv, vmflags_now))
            if self.showpath:
                row.append(b" " + desc)
            else:
                slash = desc.rfind(b"/")
                row.append(b" " + (desc[slash + 1:] if slash >= 0 else desc))
            out(b"".join(row) + b"\n")
            firstmapping = False
        if not self.q and self.listhead:
            gap = w1 + 1 + w2 + 1 + w3 + 1 + w4 + 1 + w5 + 1
            out(b" " * gap + b"".join(b"=" * node["width"] + b" " for node in self.listhead)
                + b"\n")
            out(b" " * gap + b"".join(b"%*d " % (node["width"], node["total"])
                                      for node in self.listhead) + b"KB \n")

    @staticmethod
    def _two_fields(line: bytes, m) -> bool:
        """``sscanf("%31[^:]: %20[0-9] kB %c") == 2``: nothing but blanks after kB."""
        rest = line[m.end():]
        if m.group(0).rstrip().endswith(b"kB"):
            return not rest.strip()
        # no " kB": sscanf stops after the number, two conversions
        return True

    @staticmethod
    def _justify(parts: list, text: bytes, width: int) -> int:
        """pmap.c ``justify_print`` right-aligned; returns the width used."""
        width = max(width, len(text))
        parts.append(b"%*s " % (width, text))
        return width


def _signed(value: int) -> int:
    value %= ULONG
    return value - ULONG if value >= 1 << 63 else value


def parse_range(arg: str) -> tuple[int, int]:
    """pmap.c ``range_arguments``."""
    low, high = 0, ULONG - 1
    first, comma, second = arg.partition(",")
    if not comma:
        second = first

    def strtoul16(text: str) -> tuple[int, str]:
        m = re.match(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX])?([0-9a-fA-F]+)", text)
        if not m:
            return 0, text
        value = int(m.group(2), 16)
        if m.group(1) == "-":
            value = -value
        return value % ULONG, text[m.end():]
    if first:
        low, rest1 = strtoul16(first)
    else:
        rest1 = ""
    if second:
        high, rest2 = strtoul16(second)
    else:
        rest2 = ""
    if rest1 or rest2:
        raise InputError("pmap -A", f"failed to parse argument: '{arg}'")
    return low, high


def run(args: list[str], proc: str, *, x=False, X=0, d=False, q=False, showpath=False,
        range_arg: str | None = None, write=None) -> int:
    """Run ``pmap`` over ``proc`` for the PID arguments; return the exit status."""
    from linmem.procfs.parse import check_proc_dir
    proc = check_proc_dir(proc)
    write = write or sys.stdout.buffer.write
    if (d + x + (1 if X else 0)) > 1:
        raise InputError("pmap", "options -c, -C, -d, -n, -N, -x, -X are mutually exclusive")
    if not args:
        raise InputError("pmap", "argument missing")
    pids = []
    for walk in args:
        if walk.startswith("/proc/"):
            walk = walk[6:]
            if not walk[:1].isdigit():
                continue
        if not walk[:1].isdigit():
            raise InputError("pmap", f"process ID list syntax error: {walk!r}")
        from linmem.tools.ps import c_strtoul0
        pid, rest = c_strtoul0(walk)
        if pid < 1 or pid > 0x7FFFFFFF or rest:
            raise InputError("pmap", f"process ID out of range or malformed: {walk!r}")
        pids.append(pid)
    low, high = parse_range(range_arg) if range_arg is not None else (0, ULONG - 1)
    pmap = Pmap(proc, write, x=x, X=X, d=d, q=q, showpath=showpath, range_low=low,
                range_high=high)
    status = 0
    found = 0
    for pid in pids:
        piddir = os.path.join(proc, str(pid))
        if rp.dir_owner(piddir) is None:
            continue
        tgid = pid
        try:
            status_text = rp.read_bytes(os.path.join(piddir, "status"))
        except OSError:
            status_text = None
        if status_text is not None:
            at = status_text.find(b"Tgid:")
            if at >= 0:
                m = re.match(rb"[ \t\n\v\f\r]*([+-]?\d+)", status_text[at + 5:])
                tgid = rp._c_int(int(m.group(1))) if m else 0
        stat_path = os.path.join(piddir, "stat")
        try:
            stat_data = rp.read_bytes(stat_path)
        except OSError:
            continue
        if not stat_data:
            continue
        stat = rp.stat2proc(stat_data, stat_path)
        found += 1
        cmdline = rp.read_cmdline(piddir, stat["cmd"], stat["state"])
        tgid_dir = os.path.join(proc, str(tgid % (1 << 32)))
        status |= pmap.one_proc(tgid % (1 << 32), tgid_dir, cmdline, stat["start_stack"])
    if found < len(pids):
        status |= 42
    return status


class PmapCommand(click.Command):
    """Prints pmap's usage text (with --proc) as its help."""

    def get_help(self, ctx):
        return PMAP_USAGE[:-1]


def _print_version(ctx, _param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"pmap from {PROCPS_VERSION}")
        ctx.exit(0)


@click.command("pmap", cls=PmapCommand, context_settings={"help_option_names": ["--help"]})
@click.option("-x", "--extended", "x", is_flag=True)
@click.option("-X", "X", count=True)
@click.option("-d", "--device", "d", is_flag=True)
@click.option("-q", "--quiet", "q", is_flag=True)
@click.option("-p", "--show-path", "showpath", is_flag=True)
@click.option("-A", "--range", "range_arg", metavar="LOW[,HIGH]")
@click.option("-r", "sunos_r", is_flag=True, hidden=True)
@click.option("-c", "--read-rc", "rc", is_flag=True, hidden=True)
@click.option("-C", "--read-rc-from", "rc_from", hidden=True)
@click.option("-n", "--create-rc", "rc_create", is_flag=True, hidden=True)
@click.option("-N", "--create-rc-to", "rc_create_to", hidden=True)
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version)
@click.option("--proc", "proc", default="/proc", metavar="PATH",
              help="proc directory to read (a tree linmem run wrote, or /proc)")
@click.argument("pids", nargs=-1)
def pmap(x, X, d, q, showpath, range_arg, sunos_r, rc, rc_from, rc_create, rc_create_to,
         proc, pids):
    """Report the memory map of processes, as procps-ng 4.0.2 pmap."""
    if rc or rc_from or rc_create or rc_create_to:
        raise InputError("pmap", "the rc files of -c, -C, -n, -N are not supported by linmem pmap")
    if sunos_r:
        click.echo("pmap: option -r is ignored as SunOS compatibility", err=True)
    status = run(list(pids), proc, x=x, X=X, d=d, q=q, showpath=showpath, range_arg=range_arg)
    sys.stdout.flush()
    if status:
        raise SystemExit(status)      # linmem.cli.main passes SystemExit through
