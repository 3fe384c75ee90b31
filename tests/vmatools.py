"""Helpers to compare linmem's VMA layer with a real process.

* ``maps_rows`` / ``parse_maps``: (start, end, perms, offset, name) rows of a
  model tree and of a real /proc/PID/maps text;
* ``mm_from_smaps``: a VmaTree holding exactly the VMAs of a real smaps text
  (flags from VmFlags), to replay a real program's later mmaps on;
* ``run_traced`` / ``replay``: run a program under ``setarch -R strace`` and
  replay its memory system calls on the model, checking every result.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from linmem.mm import mmap as M
from linmem.mm import vma as V

TRACED = "execve,openat,close,mmap,munmap,mprotect,brk,madvise,mremap,read,pread64,readv"
NAME_OF_MNEMONIC = {name: flag for flag, name in V.VMA_FLAG_MNEMONICS if name}


def can_run_real() -> str | None:
    """None when setarch -R, strace and the built-in binaries are usable here."""
    if os.uname().machine != "x86_64":
        return "not an x86-64 machine"
    for tool in ("setarch", "strace"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    st = os.stat("/usr/bin/cat")
    if st.st_ino != M.builtin_image("/usr/bin/cat").ino:
        return "/usr/bin/cat is not the binary the built-in images were read from"
    return _tools_work()


@functools.lru_cache(maxsize=1)
def _tools_work() -> str | None:
    probe = subprocess.run(["setarch", "x86_64", "-R", "strace", "-o", "/dev/null", "true"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"setarch -R strace fails here: {probe.stderr.strip()}"


def maps_rows(mm: V.VmaTree) -> list[tuple]:
    """The rows /proc/PID/maps would show for the model (without [vsyscall])."""
    rows = []
    for v in mm:
        off = v.pgoff << 12 if v.file is not None else 0
        rows.append((v.start, v.end, v.perms(), off, mm.get_vma_name(v) or ""))
    return rows


MAPS_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$")


def parse_maps(text: str) -> list[tuple]:
    rows = []
    for line in text.splitlines():
        m = MAPS_RE.match(line)
        start, end, perms, off, _dev, _ino, name = m.groups()
        if name != "[vsyscall]":
            rows.append((int(start, 16), int(end, 16), perms, int(off, 16), name))
    return rows


def real_output(*argv: str) -> str:
    """stdout of argv run with an empty environment and no randomisation."""
    return subprocess.run(["env", "-i", "setarch", "x86_64", "-R", *argv], check=True,
                          capture_output=True, text=True).stdout


# --------------------------------------------------------------------------
# smaps -> VmaTree
# --------------------------------------------------------------------------
def mm_from_smaps(text: str, mmap_base: int = 0x7FFFF7FFF000) -> V.VmaTree:
    """A tree with the VMAs of a real smaps (exact vm_flags from VmFlags)."""
    mm = V.VmaTree()
    mm.mmap_base, mm.mmap_legacy_base = mmap_base, M.TASK_UNMAPPED_BASE
    files: dict[str, V.MappedFile] = {}
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text.strip()):
        head = block.splitlines()[0]
        start, end, perms, off, name = parse_maps(head)[0] if "[vsyscall]" not in head else (0,) * 5
        if not start:
            continue
        flags = 0
        for word in re.search(r"VmFlags: (.*)", block).group(1).split():
            flags |= NAME_OF_MNEMONIC[word]
        vma = _vma_of(start, end, flags, off, name, files, block)
        mm._insert(vma)
        mm.vm_stat_account(flags, vma.pages)
        mm.charged += vma.pages if flags & V.VM_ACCOUNT else 0
        mm.locked_vm += vma.pages if flags & V.VM_LOCKED else 0
        if name == "[heap]":
            mm.start_brk, mm.brk = start, end
        if name == "[stack]":
            mm.start_stack = end - 0x1000
    return mm


def _vma_of(start, end, flags, off, name, files, block) -> V.VMA:
    anon = int(re.search(r"Anonymous:\s+(\d+)", block).group(1))
    if name.startswith("/"):
        file = files.setdefault(name, V.MappedFile(name))
        vma = V.VMA(start, end, flags, off >> 12, file)
    elif name in ("[vdso]", "[vvar]", "[vvar_vclock]"):
        vma = V.VMA(start, end, flags, 0, name=name)
    else:
        vma = V.VMA(start, end, flags, start >> 12)
    if anon:
        vma.anon_vma = V.anon_vma_alloc()
        vma.anon_vma_chain = (vma.anon_vma,)
    return vma


# --------------------------------------------------------------------------
# strace replay
# --------------------------------------------------------------------------
CALL_RE = re.compile(r"^(\w+)\((.*)\)\s+= (-?\w+)(?:<[^>]*>)?(?: (E\w+))?")


def run_traced(argv: list[str], workdir: str) -> tuple[str, str]:
    """(strace text, program stdout) of argv under setarch -R with an empty environment.

    All threads are traced (-f); a call interrupted by another thread's is
    put back together where it returned. One process only: no fork.
    """
    trace = os.path.join(workdir, "trace.txt")
    out = subprocess.run(["env", "-i", "setarch", "x86_64", "-R", "strace", "-f", "-y", "-o",
                          trace, "-e", f"trace={TRACED}", "-s", "0", *argv],
                         check=True, capture_output=True, text=True).stdout
    with open(trace) as f:
        return _join_unfinished(f.read()), out


def _join_unfinished(text: str) -> str:
    pending, lines = {}, []
    for line in text.splitlines():
        pid, _, call = line.partition(" ")
        if not pid.isdigit():
            pid, call = "", line
        call = call.strip()
        if call.endswith("<unfinished ...>"):
            pending[pid] = call[:-len("<unfinished ...>")].rstrip()
        elif call.startswith("<..."):
            rest = call.split("resumed>", 1)[1]
            lines.append(pending.pop(pid, "") + rest)
        else:
            lines.append(call)
    return "\n".join(lines) + "\n"


def _split_args(s: str) -> list[str]:
    args, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    args.append(cur.strip())
    return args


def _flags(text: str) -> int:
    value = 0
    for word in text.split("|"):
        if word.startswith("0x") or word.isdigit():
            value |= int(word, 0)
        elif word not in ("MAP_DENYWRITE",) and hasattr(V, word):
            value |= getattr(V, word)
    return value


def _num(text: str) -> int:
    return 0 if text == "NULL" else int(text.split("<")[0], 0)


@dataclass
class Replay:
    """The model process a trace is replayed on, and what happened."""

    mm: V.VmaTree
    fds: dict
    calls: int = 0


def replay(trace: str, stop_at_maps_read: bool = True) -> Replay:
    """Exec the traced program in a new model mm, then replay its calls in order.

    Every mmap/brk result is checked against the real one (AssertionError with
    the line on a mismatch). Stops at the first read of a /proc/.../maps file.
    """
    lines = [ln for ln in trace.splitlines() if CALL_RE.match(ln)]
    name, args, _, _ = _parse(lines[0])
    assert name == "execve", lines[0]
    r = Replay(V.VmaTree(), {})
    filename = args[0].strip('"')
    argv = re.findall(r'"((?:[^"\\]|\\.)*)"', args[1])
    M.load_elf_binary(r.mm, M.builtin_image(filename), _interp(filename), argv=argv,
                      filename=filename)
    for line in lines[1:]:
        name, args, ret, err = _parse(line)
        reading = name in ("read", "pread64", "readv") and re.search(r"/maps>", args[0])
        if stop_at_maps_read and reading:
            break
        _replay_one(r, name, args, ret, err, line)
        r.calls += 1
    return r


def _interp(filename: str):
    image = M.builtin_image(filename)
    return M.builtin_image(image.interp) if image.interp else None


def _parse(line: str):
    m = CALL_RE.match(line)
    return m.group(1), _split_args(m.group(2)), m.group(3), m.group(4)


def _replay_one(r: Replay, name: str, args: list[str], ret: str, err: str | None, line: str):
    mm = r.mm
    if name == "openat" and not err:
        path = re.search(r'"(.*)"', args[1]).group(1)
        r.fds[int(ret)] = _open(path, args[2])
    elif name == "close" and not err:
        r.fds.pop(int(args[0].split("<")[0]), None)
    elif name == "mmap":
        fd = int(args[4].split("<")[0])
        addr, _ = M.do_mmap(mm, _num(args[0]), _num(args[1]), _flags(args[2]), _flags(args[3]),
                            r.fds.get(fd), _num(args[5]) >> 12)
        assert err or addr == int(ret, 16), f"model put it at {addr:#x}: {line}"
    elif name == "munmap":
        mm.do_vmi_munmap(_num(args[0]), _num(args[1]))
    elif name == "mprotect":
        _expect(err, lambda: mm.mprotect(_num(args[0]), _num(args[1]), _flags(args[2])), line)
    elif name == "brk":
        got = M.sys_brk(mm, _num(args[0]))
        assert got == int(ret, 16), f"model brk {got:#x}: {line}"
    elif name == "madvise":
        _expect(err, lambda: mm.madvise(_num(args[0]), _num(args[1]), _flags(args[2])), line)
    elif name == "mremap":
        raise NotImplementedError(f"mremap is not modelled: {line}")


def _expect(err: str | None, call, line: str) -> None:
    try:
        call()
    except V.SyscallError as e:
        assert e.errno_name == err, f"model failed with {e.errno_name}: {line}"
        return
    assert err is None, f"model succeeded where the kernel said {err}: {line}"


def _open(path: str, mode: str) -> V.MappedFile:
    real = os.path.realpath(path)
    st = os.stat(real)
    return V.MappedFile(real, st.st_size, (os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino,
                        writable="O_RDWR" in mode or "O_WRONLY" in mode)
