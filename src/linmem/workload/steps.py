"""The steps of a scenario process, as system calls and memory accesses.

Each step of SCENARIO.md becomes what a program doing it would make the
kernel do: ``mmap`` is mmap(2) (anonymous private unless ``shared`` or a
``file``), ``brk`` grows the heap by that much (sbrk), ``malloc``/``free`` go
through the libc model, ``touch`` accesses pages of a region in a pattern
(each page access a load or a store), ``madvise``/``mlock``/``munmap`` act on a
whole region, ``fork`` starts a child that runs its own steps, ``wait`` reaps a
child, ``exec`` replaces the program, ``swapon``/``swapoff`` turn a listed swap
area on or off (as swapon(8) run by the process), ``cgroup`` writes control
files of a memory cgroup and ``cgroup_move`` moves the process to another
cgroup (as a shell's ``echo``), ``exit`` ends the process.

Regions are named by ``as``, or ``heap`` (start_brk..brk), ``stack``, ``text``
(the program's executable mapping) and ``data`` (its writable mapping).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from linmem.engine.readahead import file_ra_state_init
from linmem.errors import InputError
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.fadvise import (POSIX_FADV_DONTNEED, POSIX_FADV_NORMAL, POSIX_FADV_RANDOM,
                               POSIX_FADV_SEQUENTIAL, POSIX_FADV_WILLNEED, generic_fadvise)
from linmem.mm.memcontrol import CgroupError
from linmem.mm.memory import OutOfMemory
from linmem.mm.vmstat import vm_event
from linmem.workload.libc import Libc

T_ACCESS = 5e-9
T_MINOR = 0.5e-6
T_MAJOR = 80e-6
T_SYSCALL = 1e-6
T_FORK = 50e-6
T_EXEC = 200e-6
_PGPGIN = vm_event("pgpgin")
T_COPY = 0.2e-6            # a page copied to user space
T_ZRAM = 8e-6              # a page decompressed from zram (lzo-rle), with its fault
PAGE = 4096

SEGV = -3                          # the access status of a SIGSEGV
PROTS = {"none": V.PROT_NONE, "r": V.PROT_READ, "w": V.PROT_WRITE, "x": V.PROT_EXEC}
ADVICE = {"normal": V.MADV_NORMAL, "random": V.MADV_RANDOM, "sequential": V.MADV_SEQUENTIAL,
          "willneed": V.MADV_WILLNEED, "dontneed": V.MADV_DONTNEED, "free": V.MADV_FREE,
          "hugepage": V.MADV_HUGEPAGE, "nohugepage": V.MADV_NOHUGEPAGE,
          "populate_read": V.MADV_POPULATE_READ, "populate_write": V.MADV_POPULATE_WRITE}
FADV = {"normal": POSIX_FADV_NORMAL, "random": POSIX_FADV_RANDOM,
        "sequential": POSIX_FADV_SEQUENTIAL, "willneed": POSIX_FADV_WILLNEED,
        "dontneed": POSIX_FADV_DONTNEED}


class ProcessEnded(Exception):
    """The process exited or was killed in the middle of a step."""


@dataclass(eq=False)
class Proc:
    """A scenario process: its task, its steps and what its steps named."""

    task: object
    steps: list
    where: str
    name: str
    pc: int = 0
    done: bool = False
    blocked: bool = False
    waiting_for: str | None = None
    regions: dict = field(default_factory=dict)      # name -> (addr, length)
    allocs: dict = field(default_factory=dict)       # name -> libc Allocation
    children: dict = field(default_factory=dict)     # name -> Proc
    parent: "Proc | None" = None
    libc: Libc | None = None
    peak_rss_kb: int = 0
    exit_status: str = ""
    minflt: int = 0
    majflt: int = 0
    op: dict | None = None                           # a step in progress (write)

    def summary(self) -> dict:
        t = self.task
        return {"pid": t.pid, "name": self.name, "ppid": t.ppid,
                "minor_faults": self.minflt, "major_faults": self.majflt,
                "peak_rss_kb": self.peak_rss_kb, "exit": self.exit_status}


# -------------------------------------------------------------------- programs

def program_image(run, name: str, where: str) -> mmaplib.ElfImage:
    """The ELF image of a scenario program or a built-in one."""
    programs = run.scenario.programs
    if name in programs:
        return synthetic_image(name, programs[name], where)
    for candidate in (name, f"/usr/bin/{name}"):
        try:
            return mmaplib.builtin_image(candidate)
        except KeyError:
            pass
    programs = [p.rsplit("/", 1)[-1] for p in mmaplib.builtin_images() if "/bin/" in p]
    raise InputError(f"{where}.program", f"unknown program {name!r}: define it under "
                     f"`programs` or use a built-in one ({', '.join(programs)})")


def synthetic_image(name: str, prog, where: str) -> mmaplib.ElfImage:
    """A PIE program with the sizes a scenario gives: headers (R), text (R E),
    rodata (R), data and bss (RW), linked against ``libs`` by ld-linux."""
    align = lambda n: (n + PAGE - 1) & ~(PAGE - 1)  # noqa: E731
    off = PAGE
    segs = [mmaplib.ElfSegment(0, 0, PAGE, PAGE, "R")]
    segs.append(mmaplib.ElfSegment(off, off, prog.text, prog.text, "R E"))
    off += align(prog.text)
    if prog.rodata:
        segs.append(mmaplib.ElfSegment(off, off, prog.rodata, prog.rodata, "R"))
        off += align(prog.rodata)
    segs.append(mmaplib.ElfSegment(off, off, max(prog.data, 1), max(prog.data, 1) + prog.bss,
                                   "RW"))
    for lib in prog.libs:
        try:
            mmaplib.builtin_image(lib)
        except KeyError:
            raise InputError(f"{where}.libs", f"unknown library {lib!r}") from None
    return mmaplib.ElfImage(f"/usr/bin/{name}", "DYN", tuple(segs), None,
                            "/lib64/ld-linux-x86-64.so.2", tuple(prog.libs), None,
                            off + align(max(prog.data, 1)), (0xfe, 0), 100000 + len(name))


def start_process(run, spec, where: str) -> Proc:
    """A scenario process: spawn it running its program."""
    kernel = run.machine.kernel
    image = program_image(run, spec.program, where)
    task = kernel.spawn(image, [image.path.rsplit("/", 1)[-1]], comm=spec.name,
                        oom_score_adj=spec.oom_score_adj, cgroup=spec.cgroup)
    proc = Proc(task, list(spec.steps), where, spec.name)
    _after_exec(run, proc)
    run.event("exec", pid=task.pid, name=spec.name, program=image.path)
    return proc


def _after_exec(run, proc: Proc) -> None:
    proc.regions = {}
    proc.allocs = {}
    proc.libc = new_libc(proc.task)


def new_libc(task) -> Libc:
    """A libc working on ``task``'s address space (sbrk, mmap, munmap)."""
    def sbrk(increment: int) -> int:
        mm = task.mm.vmas
        old = mm.brk
        if increment and mmaplib.sys_brk(mm, old + increment) == old:
            raise V.SyscallError("ENOMEM", "brk")
        return old

    def mmap(length: int) -> int:
        return mmaplib.vm_mmap(task.mm.vmas, None, 0, length, V.PROT_READ | V.PROT_WRITE,
                               V.MAP_PRIVATE | V.MAP_ANONYMOUS)

    def munmap(addr: int, length: int) -> None:
        mmaplib.vm_munmap(task.mm.vmas, addr, length)
    return Libc(sbrk, mmap, munmap)


# ----------------------------------------------------------------------- steps

def run_step(run, proc: Proc) -> float:
    """Run the next step of ``proc``; the simulated time it took."""
    if proc.pc >= len(proc.steps):
        do_exit(run, proc, 0)
        return 0.0
    step = proc.steps[proc.pc]
    where = f"{proc.where}.steps[{proc.pc}].{step.kind}"
    handler = HANDLERS.get(step.kind)
    if handler is None:
        raise InputError(where, f"step {step.kind!r} needs a part of the model this version "
                         "does not have yet")
    proc.pc += 1
    try:
        cost = handler(run, proc, step.args, where)
    except V.SyscallError as err:
        run.event(err.errno_name, pid=proc.task.pid, step=step.kind, message=err.message)
        do_exit(run, proc, 1)
        return T_SYSCALL
    except OutOfMemory as err:
        run.event("oom", pid=proc.task.pid, step=step.kind, message=str(err))
        proc.op = None
        do_exit(run, proc, 0, signal=9)
        return 0.0
    except ProcessEnded:
        return 0.0
    note_rss(run, proc)
    return cost + run.machine.kernel.memcg.take_delay(proc.task.pid)   # memory.high's sleeps


def note_rss(run, proc: Proc) -> None:
    if proc.task.mm is not None:
        file, anon, _swap, shmem = run.machine.kernel.mem.rss(proc.task.mm.id)
        proc.peak_rss_kb = max(proc.peak_rss_kb, (file + anon + shmem) << 2)


def region(run, proc: Proc, name: str, where: str) -> tuple[int, int]:
    """(address, length) of a named region of the process."""
    mm = proc.task.mm.vmas
    if name in proc.regions:
        return proc.regions[name]
    if name in proc.allocs:
        a = proc.allocs[name]
        return (a.addr, a.size)
    if name == "heap":
        return (mm.start_brk, mm.brk - mm.start_brk)
    if name == "stack":
        v = mm.find_vma(mm.start_stack)
        return (v.start, v.end - v.start)
    if name in ("text", "data"):
        perms = "r-xp" if name == "text" else "rw-p"
        for v in mm.vmas():
            if v.file is not None and v.start >= mm.start_code and v.perms() == perms:
                return (v.start, v.end - v.start)
    raise InputError(where, f"no region {name!r} in this process")


def _access(run, proc: Proc, vas: np.ndarray, write: bool) -> float:
    """Touch ``vas``; the time it took. SIGSEGV ends the process."""
    kernel = run.machine.kernel
    before = kernel.mem.faults(proc.task.pid)
    events = kernel.mem.K.events
    pgpgin, zram_in = int(events[_PGPGIN]), kernel.swap.sync_reads
    status, where = kernel.access(proc.task, vas, write)
    after = kernel.mem.faults(proc.task.pid)
    minor, major = after[0] - before[0], after[1] - before[1]
    cost = len(vas) * T_ACCESS + minor * T_MINOR
    zram = kernel.swap.sync_reads - zram_in          # swap-ins from zram: no disk
    cost += zram * T_ZRAM
    major -= min(major, zram)
    if major and kernel.mounted_fs is not None:      # the disk's time for what was read
        read = (int(events[_PGPGIN]) - pgpgin) // 4 - zram
        cost += kernel.mounted_fs.device.read_time(run.machine.clock, read, major)
    else:
        cost += major * T_MAJOR
    if status == SEGV:
        run.event("segfault", pid=proc.task.pid, address=hex(int(vas[where])), write=write)
        do_exit(run, proc, 0, signal=11)
        raise ProcessEnded()
    return cost


def touch_addresses(run, proc: Proc, args, where: str) -> tuple[np.ndarray, bool]:
    """The page addresses a ``touch`` step accesses, in order."""
    start, length = region(run, proc, args.region, where)
    npages = max(1, int(length * args.fraction) // PAGE)
    base = start & ~(PAGE - 1)
    rng = run.machine.rng
    count = args.count if args.count is not None else npages
    if args.pattern == "sequential":
        idx = np.arange(count, dtype=np.int64) % npages
    elif args.pattern == "random":
        idx = rng.integers(0, npages, size=count, dtype=np.int64)
    elif args.pattern == "stride":
        step = max(1, args.stride // PAGE)
        idx = (np.arange(count, dtype=np.int64) * step) % npages
    else:
        ranks = np.arange(1, npages + 1, dtype=np.float64)
        weights = ranks ** -args.alpha
        idx = rng.choice(npages, size=count, p=weights / weights.sum()).astype(np.int64)
    idx = np.tile(idx, args.passes)
    return base + idx * PAGE, args.write


def step_touch(run, proc, args, where) -> float:
    vas, write = touch_addresses(run, proc, args, where)
    return _access(run, proc, vas, write)


def step_mmap(run, proc, args, where) -> float:
    prot = 0
    for letter in args.prot if args.prot != "none" else "":
        prot |= PROTS[letter]
    mm = proc.task.mm.vmas
    flags = V.MAP_SHARED if args.shared else V.MAP_PRIVATE
    file = None
    length = args.size
    if args.file is not None:
        inode = _inode(run, proc, args.file, where)
        file = run.machine.kernel.fs.open(args.file)
        length = length or inode.size
    else:
        flags |= V.MAP_ANONYMOUS          # shared: a shmem object (shmem_zero_setup)
    addr = mmaplib.vm_mmap(mm, file, 0, length, prot, flags)
    proc.regions[args.as_] = (addr, length)
    run.event("mmap", pid=proc.task.pid, region=args.as_, address=hex(addr), length=length)
    return T_SYSCALL


def step_munmap(run, proc, name, where) -> float:
    addr, length = region(run, proc, name, where)
    mmaplib.vm_munmap(proc.task.mm.vmas, addr, length)
    proc.regions.pop(name, None)
    return T_SYSCALL


def step_brk(run, proc, size, where) -> float:
    proc.libc.sbrk(size)
    return T_SYSCALL


def step_malloc(run, proc, args, where) -> float:
    proc.allocs[args.as_] = proc.libc.malloc(args.size)
    return T_SYSCALL


def step_free(run, proc, name, where) -> float:
    if name not in proc.allocs:
        raise InputError(where, f"{name!r} was not allocated with malloc")
    proc.libc.free(proc.allocs.pop(name))
    return T_SYSCALL


def step_madvise(run, proc, args, where) -> float:
    if args.advice not in ADVICE:
        raise InputError(f"{where}.advice", f"madvise {args.advice!r} needs a part of the "
                         "model this version does not have yet")
    addr, length = region(run, proc, args.region, where)
    return _timed(run, proc, lambda: run.machine.kernel.madvise(
        proc.task, addr & ~(PAGE - 1), length, ADVICE[args.advice]))


def step_mlock(run, proc, name, where) -> float:
    """mlock(2): lock the region and fault it in."""
    addr, length = region(run, proc, name, where)
    return _timed(run, proc, lambda: run.machine.kernel.mlock(proc.task, addr, length))


def _timed(run, proc: Proc, call) -> float:
    """Run a system call; its cost: the call plus the faults it took."""
    before = run.machine.kernel.mem.faults(proc.task.pid)
    call()
    after = run.machine.kernel.mem.faults(proc.task.pid)
    return T_SYSCALL + (after[0] - before[0]) * T_MINOR + (after[1] - before[1]) * T_MAJOR


def step_fork(run, proc, args, where) -> float:
    kernel = run.machine.kernel
    child_task = kernel.fork(proc.task, comm=args.name)
    child = Proc(child_task, list(args.steps), f"{where}", args.name, parent=proc,
                 regions=dict(proc.regions), allocs=dict(proc.allocs))
    _after_fork_libc(child, proc)
    proc.children[args.name] = child
    run.add_child(child)
    run.event("fork", pid=proc.task.pid, child=child_task.pid, name=args.name)
    pages = sum(v.pages for v in proc.task.mm.vmas.vmas())
    return T_FORK + pages * 1e-10


def _after_fork_libc(child: Proc, parent: Proc) -> None:
    """The child's libc is a copy of the parent's, working on the child's mm."""
    child.libc = new_libc(child.task)
    a = parent.libc.arena
    child.libc.arena.heap_start, child.libc.arena.top, child.libc.arena.end = \
        a.heap_start, a.top, a.end
    child.libc.arena.free_chunks = list(a.free_chunks)


def _inode(run, proc, path: str, where: str):
    """The file a step names; ENOENT (the process exits 1) when it is gone."""
    inode = run.machine.kernel.fs.inodes.get(path)
    if inode is None:
        raise V.SyscallError("ENOENT", f"{path}: no such file")
    return inode


def step_read(run, proc, args, where) -> float:
    """open(2), posix_fadvise(2) with ``advice``, then read(2) of the step's
    part of the file ``passes`` times (read_requests). Each step opens the
    file anew: its readahead state starts afresh (file_ra_state_init). The
    reader waits for the disk's time for what it read."""
    kernel = run.machine.kernel
    inode = _inode(run, proc, args.file, where)
    size = inode.size
    fid = kernel.fs.fid(inode)
    offsets, counts = read_requests(args, size, run.machine.rng)
    events = run.machine.page_alloc.S.events
    before = int(events[_PGPGIN]) - 4 * kernel.fs.metadata_reads
    file_ra_state_init(kernel.mem.K.ra[fid])
    if args.advice != "normal":
        generic_fadvise(kernel.mem, fid, size, args.offset, _part(args, size), FADV[args.advice])
    wait = kernel.read_file(proc.task, args.file, np.tile(offsets, args.passes),
                            np.tile(counts, args.passes))
    read_pages = (int(events[_PGPGIN]) - 4 * kernel.fs.metadata_reads - before) // 4
    run.event("read", pid=proc.task.pid, file=args.file, passes=args.passes,
              pages_read_from_disk=read_pages, seconds=round(wait, 9))
    copied = -(-int(counts.sum()) // PAGE) * args.passes
    return wait + copied * T_COPY


def _part(args, size: int) -> int:
    """Bytes of the file a read step covers."""
    return args.size if args.size is not None else max(0, size - args.offset)


def read_requests(args, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, byte counts) of one pass of a read step: ``block`` bytes at a
    time through the part in order, or ``count`` (default: the part's blocks)
    blocks at random block-aligned offsets of the part; the last block of the
    part is cut at its end."""
    part = _part(args, size)
    nblocks = -(-part // args.block)
    if args.pattern == "sequential":
        idx = np.arange(nblocks, dtype=np.int64)
    else:
        count = args.count if args.count is not None else nblocks
        idx = rng.integers(0, nblocks, size=count, dtype=np.int64) if nblocks else \
            np.zeros(0, dtype=np.int64)
    offsets = args.offset + idx * args.block
    counts = np.minimum(args.block, args.offset + part - offsets)
    return offsets, counts


def step_write(run, proc, args, where) -> float:
    """write(2) of ``size`` bytes. The step runs in parts: it gives the run
    back its time at each balance_dirty_pages (every ``nr_dirtied_pause``
    pages), so that the flusher and other processes go on while the writer
    is throttled."""
    kernel = run.machine.kernel
    op = proc.op
    cost = 0.0
    if op is None:
        inode = kernel.fs.inodes.get(args.file) or kernel.fs.create(args.file)
        offset = inode.size if args.offset is None else args.offset
        op = proc.op = {"pos": offset, "end": offset + args.size, "start": run.machine.clock,
                        "waited": 0.0}
        cost = T_SYSCALL
    n, waited = kernel.write_file(proc.task, args.file, op["pos"], op["end"] - op["pos"])
    op["pos"] += n
    op["waited"] += waited
    cost += -(-n // PAGE) * T_COPY + waited
    if op["pos"] < op["end"]:
        proc.pc -= 1                                 # the same step goes on
        return cost
    proc.op = None
    synced = kernel.fsync(proc.task, args.file) if args.sync else 0.0
    run.event("write", pid=proc.task.pid, file=args.file, bytes=args.size, sync=args.sync,
              throttled_seconds=round(op["waited"], 9),
              seconds=round(run.machine.clock + cost + synced - op["start"], 9))
    return cost + synced


def step_fsync(run, proc, path, where) -> float:
    """fsync(2): waits until the file's data and the journal are on disk."""
    _inode(run, proc, path, where)
    seconds = run.machine.kernel.fsync(proc.task, path)
    run.event("fsync", pid=proc.task.pid, file=path, seconds=round(seconds, 9))
    return T_SYSCALL + seconds


def step_unlink(run, proc, path, where) -> float:
    """unlink(2): the name goes; the data when the file is no longer mapped."""
    _inode(run, proc, path, where)
    run.machine.kernel.unlink(proc.task, path)
    run.event("unlink", pid=proc.task.pid, file=path)
    return T_SYSCALL


def step_wait(run, proc, name, where) -> float:
    child = proc.children.get(name)
    if child is None:
        raise InputError(where, f"no child named {name!r}")
    if child.task.state == "Z":
        _reap(run, proc, child)
        return T_SYSCALL
    proc.blocked = True
    proc.waiting_for = name
    proc.pc -= 1                      # run the wait again once woken
    return 0.0


def _reap(run, parent: Proc, child: Proc) -> None:
    run.machine.kernel.reap(parent.task, child.task)
    del parent.children[child.name]
    run.event("reap", pid=parent.task.pid, child=child.task.pid)


def step_exec(run, proc, args, where) -> float:
    image = program_image(run, args.program, where)
    run.machine.kernel.exec(proc.task, image, [image.path.rsplit("/", 1)[-1]])
    _after_exec(run, proc)
    run.event("exec", pid=proc.task.pid, program=image.path)
    return T_EXEC


def step_sleep(run, proc, seconds, where) -> float:
    return float(seconds)


def step_snapshot(run, proc, name, where) -> float:
    run.snapshot(name)
    return 0.0


def step_sysctl(run, proc, values, where) -> float:
    run.sysctl(values.as_dict(), where)
    return T_SYSCALL


def step_swapon(run, proc, path, where) -> float:
    """swapon(2) of an area listed under ``swap`` (a failure is an event)."""
    run.swapon(path, pid=proc.task.pid)
    return T_SYSCALL


def step_swapoff(run, proc, path, where) -> float:
    """swapoff(2): the area's pages come back into memory (a failure, such
    as ENOMEM, is an event); the caller waits for the reads."""
    read = run.swapoff(path, proc.task.mm.vmas.total_vm, pid=proc.task.pid)
    return T_SYSCALL + read * T_MAJOR


def step_cgroup(run, proc, write, where) -> float:
    """write(2)s to a cgroup's control files, in the order written (each is
    an event; a refusal, such as EAGAIN from memory.reclaim, too). What the
    writes reclaim takes no time of the process's."""
    run.cgroup_write(write, proc.task, pid=proc.task.pid)
    return T_SYSCALL


def step_cgroup_move(run, proc, path, where) -> float:
    """The process writes its PID to ``path``/cgroup.procs: its new pages are
    charged there, what it charged before stays where it was (cgroup v2).
    A ``cgroup_move`` event, with ``errno`` when the kernel refuses."""
    task = proc.task
    before = task.cgroup
    try:
        run.machine.kernel.memcg.move(task, path)
    except CgroupError as err:
        run.event("cgroup_move", pid=task.pid, to=path, errno=err.errno, message=str(err))
        return T_SYSCALL
    run.event("cgroup_move", pid=task.pid, to=path, **{"from": before})
    return T_SYSCALL


def step_replay(run, proc, args, where) -> float:
    """The process makes the accesses of a recorded trace, in the address
    space its capture recorded (linmem.workload.address_replay): one chunk
    of the trace each time the step runs, so that other processes go on
    between chunks. At the end a ``replay`` event counts the requests, the
    accesses made, those ``dropped`` (outside every mapping) and those
    ``denied`` (the protection forbade them)."""
    op = proc.op
    if op is None:
        op = proc.op = {"replay": _start_replay(run, proc, args, where)}
    replay = op["replay"]
    kernel = run.machine.kernel
    minor, major = kernel.mem.faults(proc.task.pid)
    before = replay.out.requests
    more = replay.step()
    after = kernel.mem.faults(proc.task.pid)
    cost = (replay.out.requests - before) * T_ACCESS + (after[0] - minor) * T_MINOR + \
        (after[1] - major) * T_MAJOR
    if more:
        proc.pc -= 1                                 # the same step goes on
        return cost
    proc.op = None
    run.event("replay", pid=proc.task.pid, trace=args.trace, **replay.out.as_dict())
    if replay.out.killed:
        raise OutOfMemory("the OOM killer chose the replaying process")
    return cost


def _start_replay(run, proc, args, where):
    from linmem.trace import open_trace
    from linmem.workload.address_replay import CapturedReplay
    from linmem.workload.capture import load_maps
    trace = str(run.scenario.resolve(args.trace))
    if not os.path.exists(trace):
        raise InputError(f"{where}.trace", f"{trace}: no such file")
    maps = str(run.scenario.resolve(args.maps)) if args.maps else f"{trace}.maps.json"
    if args.maps and not os.path.exists(maps):
        raise InputError(f"{where}.maps", f"{maps}: no such file")
    mappings = load_maps(maps)["mappings"] if os.path.exists(maps) else None
    return CapturedReplay(run.machine.kernel, proc.task, open_trace(trace, args.format),
                          mappings, warm=not args.cold)


def step_exit(run, proc, code, where) -> float:
    do_exit(run, proc, code)
    return 0.0


def do_exit(run, proc: Proc, code: int, signal: int = 0) -> None:
    """The process ends: exit_mm, then its parent (if waiting) wakes."""
    if proc.done:
        return
    kernel = run.machine.kernel
    proc.minflt, proc.majflt = kernel.mem.faults(proc.task.pid)
    kernel.exit(proc.task, code, signal)
    proc.done = True
    proc.exit_status = f"signal {signal}" if signal else f"code {code}"
    run.event("exit", pid=proc.task.pid, name=proc.name, code=code, signal=signal)
    parent = proc.parent
    if parent is not None and parent.blocked and parent.waiting_for == proc.name:
        run.wake(parent)


HANDLERS = {
    "touch": step_touch, "mmap": step_mmap, "munmap": step_munmap, "brk": step_brk,
    "malloc": step_malloc, "free": step_free, "madvise": step_madvise, "mlock": step_mlock,
    "fork": step_fork, "wait": step_wait, "read": step_read, "write": step_write,
    "fsync": step_fsync, "unlink": step_unlink, "exec": step_exec, "sleep": step_sleep,
    "snapshot": step_snapshot, "sysctl": step_sysctl, "swapon": step_swapon,
    "swapoff": step_swapoff, "cgroup": step_cgroup, "cgroup_move": step_cgroup_move,
    "replay": step_replay, "exit": step_exit,
}
