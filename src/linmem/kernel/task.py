"""Processes: task_struct, mm_struct, and their life cycle (fork, exec, exit, wait).

A process (``Task``) has a PID, a parent, children, a name (comm) and an
address space (``MM``). The address space is two things kept in step: the
VMAs (``linmem.mm.vma.VmaTree``: what is mapped, with what rights) and the
page tables (``linmem.mm.memory.MemoryModel``: which pages are there).

* **exec** (fs/exec.c: begin_new_exec -> exec_mmap) gives the task a new,
  empty mm, lays the program out (``linmem.mm.mmap.exec_image``: stack,
  segments, ld.so, vDSO, shared libraries), then drops the old mm (mmput);
* **fork** (kernel/fork.c: copy_process -> dup_mm -> dup_mmap) copies every
  VMA, charging VM_ACCOUNT ones against the commit limit, and the page tables
  of private VMAs with anonymous pages (copy_page_range: both sides
  write-protected, the pages shared copy-on-write);
* **exit** (kernel/exit.c: do_exit -> exit_mm -> mmput -> exit_mmap) unmaps
  everything and frees the page tables; the task stays a zombie until its
  parent waits for it, which adds its faults to the parent's cmin_flt/cmaj_flt.

Memory shared between address spaces is shared for real: the pages of a
library's text are the page cache's, mapped by every process that maps the
library, and their mapcount says by how many (PSS divides by it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from linmem.fs import ext4
from linmem.mm import mmap as mmaplib
from linmem.mm.page_writeback import DirtyThrottle, balance_dirty_pages
from linmem.mm.gfp import GFP_KERNEL_ACCOUNT
from linmem.engine.pgtable import C_MEMCG
from linmem.mm.memory import MemoryModel, OutOfMemory
from linmem.mm.util import vm_enough_memory
from linmem.mm.vmstat import node_item, vm_event
from linmem.mm.vma import (VM_SHARED, VM_WRITE, MappedFile, ShmemFile, SyscallError, Unmapped,
                           VmaTree)

KERNEL_STACK_KB = 16            # THREAD_SIZE on x86-64
_NR_KERNEL_STACK = node_item("nr_kernel_stack")
_PGPGIN = vm_event("pgpgin")
TASK_SIZE_TOP = 1 << 47


_mm_serials = itertools.count(1)


@dataclass(eq=False)
class MM:
    """An address space: its VMAs and its page tables (``id`` in the memory
    model, reused after it goes; ``serial``, never reused)."""

    id: int
    vmas: VmaTree
    serial: int = field(default_factory=lambda: next(_mm_serials))
    _rows: np.ndarray | None = None
    _rows_generation: int = -1

    def rows(self, file_id) -> np.ndarray:
        """The VMAs as the int64 rows the compiled fault code takes (cached)."""
        if self._rows is None or self._rows_generation != self.vmas.generation:
            rows = self.vmas.rows(file_id)
            self._rows = np.array(rows, dtype=np.int64).reshape(-1, 6)
            self._rows_generation = self.vmas.generation
        return self._rows


@dataclass(eq=False)
class Task:
    """A process (one thread): task_struct as far as memory needs it."""

    pid: int
    ppid: int
    comm: str
    cmdline: list[str]
    mm: MM | None
    start_time: float = 0.0
    state: str = "R"                  # R running, S sleeping, Z zombie
    exit_code: int = 0
    exit_signal: int = 0
    children: list[int] = field(default_factory=list)
    oom_score_adj: int = 0
    cgroup: str = "/"
    cmin_flt: int = 0
    cmaj_flt: int = 0
    program: str = ""
    stack_pfns: list[int] = field(default_factory=list)
    dirty: DirtyThrottle = field(default_factory=DirtyThrottle)


class Kernel:
    """The processes of one machine and the system calls that change their memory."""

    def __init__(self, machine):
        self.machine = machine
        self.mem = MemoryModel(machine)
        self.tasks: dict[int, Task] = {}
        self.last_pid = 0
        self.files: dict[str, MappedFile] = {}
        self.file_ids: dict[int, int] = {}
        self.mounted_fs = None
        self._dirtying: dict[int, float] = {}   # pid -> last balance_dirty_pages
        self._current: Task | None = None        # the task in a system call or fault
        self.oom_listeners: list = []            # called with (victim, report) on a kill
        from linmem.mm.memcontrol import MemoryController
        from linmem.mm.rmap import RmapIndex
        from linmem.mm.swapfile import Swap
        from linmem.mm.vmscan import Reclaim
        self.memcg = MemoryController(self)
        machine.page_alloc.reclaim = Reclaim(machine, RmapIndex(self))
        machine.page_alloc.reclaim.memcgs = self.memcg
        machine.page_alloc.out_of_memory = self.out_of_memory
        self.mem.memcg_hooks = _MemcgHooks(self)
        self.swap = Swap(self)

    @property
    def current(self) -> Task | None:
        """The task in a system call or fault: new pages are charged to its memcg."""
        return self._current

    @current.setter
    def current(self, task: Task | None) -> None:
        self._current = task
        memcg = self.memcg.by_path.get(task.cgroup) if task is not None else None
        self.mem.K.ctl[C_MEMCG] = memcg.id if memcg is not None else 0

    def out_of_memory(self, order: int, gfp: int, memcg=None) -> bool:
        """Models out_of_memory(): panic if vm.panic_on_oom (for an OOM inside
        a memory cgroup only when it is 2); kill the task that asked if
        vm.oom_kill_allocating_task; else the process of highest badness
        (SIGKILL; its memory is freed as it exits), among the memcg's tasks
        when ``memcg`` is given (mem_cgroup_out_of_memory), with the whole
        memory.oom.group when it is set. True when memory was freed;
        OutOfMemory when the victim is the task that faulted; KernelPanic
        when nothing can be killed in a global OOM; False in a memcg's."""
        from linmem.mm.oom_kill import OOM_SCORE_ADJ_MIN, KernelPanic, select_bad_process
        from linmem.mm.vmstat import vm_event
        sysctl = self.machine.sysctl
        panic = int(sysctl["panic_on_oom"])
        if panic == 2 or (panic and memcg is None):     # check_panic_on_oom
            kind = "compulsory" if panic == 2 else "system-wide"
            raise KernelPanic(f"Out of memory: {kind} panic_on_oom is enabled")
        victim, candidates = select_bad_process(self, memcg)
        reason = ("highest badness (rss + swap entries + page tables, "
                  "+ oom_score_adj x totalpages/1000)")
        current = self.current
        if memcg is None and int(sysctl["oom_kill_allocating_task"]) and current is not None \
                and current.mm is not None and current.oom_score_adj != OOM_SCORE_ADJ_MIN:
            victim, reason = current, "oom_kill_allocating_task: the task that asked"
        if victim is None:
            if memcg is not None:                # no killable task in the memcg
                return False
            raise KernelPanic("System is deadlocked on memory")   # out_of_memory: nothing to kill
        report = {"order": order, "gfp": gfp, "invoker": current.comm if current else "",
                  "invoker_pid": current.pid if current else 0,
                  "invoker_oom_score_adj": current.oom_score_adj if current else 0,
                  "victim": victim.pid,
                  "victim_name": victim.comm, "victim_memcg": victim.cgroup,
                  "reason": reason, "candidates": candidates}
        group = []
        if memcg is not None:
            report.update(self.memcg.oom_report(memcg))
            oom_group = self.memcg.oom_group_of(victim, memcg)
            if oom_group is not None:            # memory.oom.group: the whole group goes
                group = [t for t in self.memcg.tasks_in(oom_group)
                         if t is not victim and t.mm is not None and
                         t.oom_score_adj != OOM_SCORE_ADJ_MIN]
                report["oom_group"] = oom_group.path
                report["oom_group_victims"] = [t.pid for t in group]
        self.machine.page_alloc.S.events[vm_event("oom_kill")] += 1 + len(group)
        if memcg is not None:
            self.memcg.count_oom_kill(victim, group)
        killed_current = False
        for task in [victim, *group]:
            is_current = task is self.current
            event = report if task is victim else \
                dict(report, victim=task.pid, victim_name=task.comm, victim_memcg=task.cgroup,
                     reason=f"memory.oom.group of {report['oom_group']}")
            for listener in self.oom_listeners:  # the runner records it and ends the process
                listener(task, event, is_current)
            if is_current:
                killed_current = True
            elif task.state != "Z":
                self.exit(task, 0, signal=9)
        if killed_current:
            raise OutOfMemory(f"killed by the OOM killer: pid {victim.pid} ({victim.comm})")
        return True

    @property
    def fs(self):
        """The file system on the machine's disk (mounted at first use), with
        its flusher (linmem.fs)."""
        if self.mounted_fs is None:
            from linmem.fs.blockdev import BlockDevice
            from linmem.fs.fs_writeback import BdiWriteback
            from linmem.fs.vfs import Filesystem
            self.mounted_fs = Filesystem(self, BlockDevice(**self.machine.disk))
            BdiWriteback(self.machine, self.mounted_fs)
        return self.mounted_fs

    # ------------------------------------------------------------ files

    def open_file(self, image) -> MappedFile:
        """One ``struct file`` per path, shared by every mapping of it (so the
        page cache, and PSS, see one file)."""
        path = image.path
        if path not in self.files:
            self.files[path] = image if isinstance(image, MappedFile) else image.open()
        return self.files[path]

    def file_id(self, file) -> int:
        """The page-cache id of a file (registered at first use); -1 for none."""
        if file is None or getattr(file, "size", None) is None:
            return -1
        inode = getattr(file, "inode", None)
        if inode is not None:
            return self.mounted_fs.fid(inode)
        key = id(file)
        if key not in self.file_ids:
            shmem = isinstance(file, ShmemFile)
            self.file_ids[key] = self.mem.register_file(-(-file.size // 4096), shmem)
            if shmem:
                file.release = self._release_shmem
        return self.file_ids[key]

    def drop_pagecache(self) -> int:
        """Models drop_pagecache_sb() over every file: clean, unmapped pages go."""
        from linmem.engine.memory import invalidate_mapping_pages
        return sum(invalidate_mapping_pages(self.mem.K.ref, fid)
                   for fid in range(self.mem.K.f_base.shape[0]))

    def _release_shmem(self, file) -> None:
        """The last mapping of a shmem object went: its pages go (shmem_evict_inode)."""
        self.mem.truncate(self.file_ids.pop(id(file)))

    def try_to_unuse(self, lo: int, n: int) -> None:
        """Models try_to_unuse() for swapoff of the slots [lo, lo + n): every
        shmem file's swapped-out pages there (shmem_unuse) and every address
        space's swap entries are read back, then the swap cache lets go of
        the area. OutOfMemory when memory does not suffice: the swapoff task
        is the OOM origin (set_current_oom_origin), so the OOM killer takes
        no other process; the pages already brought back stay. The passes
        repeat while they make progress (the kernel's "goto retry" while
        si->inuse_pages): reclaim may swap a page out again to the area
        before the last address space is done."""
        from linmem.engine.memory import drop_swap_cache_range
        from linmem.engine.readahead import RA_SHMEM
        pa = self.machine.page_alloc
        saved, pa.out_of_memory = pa.out_of_memory, _swapoff_oom
        held = n
        try:
            while True:                 # retry while reclaim puts back what was brought in
                for fid in np.flatnonzero(self.mem.K.ra[:, RA_SHMEM]):     # shmem_unuse
                    self.mem.shmem_unuse(int(fid), lo, lo + n)
                seen = set()
                for task in list(self.tasks.values()):
                    mm = task.mm
                    if mm is None or id(mm) in seen:
                        continue
                    seen.add(id(mm))
                    self.mem.unuse(mm.id, mm.rows(self.file_id), lo, lo + n)
                before, held = held, drop_swap_cache_range(self.mem.K.ref, lo, lo + n)
                if held == 0 or held >= before:
                    break
        finally:
            pa.out_of_memory = saved
        if held:
            raise OutOfMemory(f"{held} swap slots are still in use")

    # --------------------------------------------------------------- mm

    def new_mm(self) -> MM:
        """mm_alloc(): an empty VMA tree with the machine's limits and hooks."""
        mm_id = self.mem.new_mm()
        mm = MM(mm_id, None)
        sysctl = self.machine.sysctl
        mm.vmas = VmaTree(int(sysctl["max_map_count"]),
                          account=lambda pages: self._account(mm, pages),
                          unaccount=self._unaccount,
                          overcommit_memory=int(sysctl["overcommit_memory"]),
                          thp=True, cap_ipc_lock=True,
                          unmap_hook=lambda un: self._unmapped(mm, un))
        return mm

    def _account(self, mm: MM, pages: int) -> bool:
        """security_vm_enough_memory_mm() for a change of ``mm`` (root tasks)."""
        return vm_enough_memory(self.machine, mm.vmas.total_vm, pages, cap_sys_admin=True)

    def _unaccount(self, pages: int) -> None:
        self.machine.committed_as -= pages

    def _unmapped(self, mm: MM, un: Unmapped) -> None:
        """VMAs left the tree: zap their pages, free the page tables nobody needs."""
        for vma in un.vmas:
            self.mem.zap(mm.id, vma.start, vma.end)
        ceiling = un.ceiling if un.ceiling is not None else TASK_SIZE_TOP
        self.mem.free_pgtables(mm.id, un.start, un.end, un.floor, ceiling)

    def mmput(self, mm: MM) -> None:
        """Models mmput -> exit_mmap: unmap everything, free the tables and the PGD."""
        mm.vmas.exit_mmap()
        self.mem.free_pgtables(mm.id, 0, TASK_SIZE_TOP, 0, TASK_SIZE_TOP)
        self.mem.free_mm(mm.id)

    # -------------------------------------------------------------- tasks

    def alloc_thread_stack(self, task: Task) -> None:
        """Models alloc_thread_stack_node() with VMAP_STACK: THREAD_SIZE (16 KiB)
        of order-0 GFP_KERNEL pages, counted in KernelStack."""
        pa = self.machine.page_alloc
        for _ in range(KERNEL_STACK_KB // 4):
            pfn = pa.alloc_pages(0, GFP_KERNEL_ACCOUNT)
            if pfn is None:
                raise OutOfMemory("no page for a kernel stack")
            task.stack_pfns.append(pfn)
        self.machine.node_stat[_NR_KERNEL_STACK] += KERNEL_STACK_KB
        self.memcg.charge_kernel_stack(task, task.stack_pfns)

    def free_thread_stack(self, task: Task) -> None:
        """Models free_thread_stack() when the task is released (reaped)."""
        self.memcg.uncharge_kernel_stack(task.stack_pfns)
        for pfn in task.stack_pfns:
            self.machine.page_alloc.free_pages(pfn, 0)
        if task.stack_pfns:
            self.machine.node_stat[_NR_KERNEL_STACK] -= KERNEL_STACK_KB
        task.stack_pfns = []

    def alloc_pid(self) -> int:
        """alloc_pid(): the next PID (PIDs are not reused in a run)."""
        self.last_pid += 1
        self.mem.ensure_task_rows(self.last_pid + 1)
        self.mem.K.task_stat[self.last_pid] = 0
        return self.last_pid

    def spawn(self, program, argv: list[str] | None = None, ppid: int = 0,
              comm: str | None = None, **attrs) -> Task:
        """A new process running ``program`` (fork of a launcher, then exec)."""
        pid = self.alloc_pid()
        task = Task(pid, ppid, comm or "", argv or [], None,
                    start_time=self.machine.clock, **attrs)
        self.tasks[pid] = task
        if ppid in self.tasks:
            self.tasks[ppid].children.append(pid)
        self.current = task                   # its pages are charged to its memcg
        self.alloc_thread_stack(task)
        self.exec(task, program, argv)
        self.machine.nr_forks += 1
        self._update_counts()
        return task

    def exec(self, task: Task, program, argv: list[str] | None = None) -> None:
        """Models execve(): a new address space replaces the old one."""
        self.current = task
        image = program if isinstance(program, mmaplib.ElfImage) else mmaplib.builtin_image(program)
        mm = self.new_mm()
        argv = argv or [image.path]
        rng = None if not self.machine.aslr else self.machine.rng
        mmaplib.exec_image(mm.vmas, image, argv, rng=rng, open_file=self.open_file)
        old = task.mm
        task.mm = mm
        task.program = image.path
        task.cmdline = list(argv)
        task.comm = (task.comm or image.path.rsplit("/", 1)[-1])[:15]
        if old is not None:
            self.mmput(old)

    def fork(self, parent: Task, comm: str | None = None) -> Task:
        """Models copy_process -> dup_mm: a child with a copy of the address
        space (private anonymous memory shared copy-on-write)."""
        self.current = parent                 # the child's tables: the parent's memcg
        child_mm = self.new_mm()
        try:
            pairs = parent.mm.vmas.dup_mmap(child_mm.vmas)
        except SyscallError:                            # ENOMEM: the commit charge failed
            self.mmput(child_mm)
            raise
        for src, dst in pairs:
            if _vma_needs_copy(src):
                self.mem.copy_range(parent.mm.id, child_mm.id, dst.start, dst.end)
        pid = self.alloc_pid()
        child = Task(pid, parent.pid, comm or parent.comm, list(parent.cmdline), child_mm,
                     start_time=self.machine.clock, oom_score_adj=parent.oom_score_adj,
                     cgroup=parent.cgroup, program=parent.program)
        self.tasks[pid] = child
        parent.children.append(pid)
        self.alloc_thread_stack(child)
        self.machine.nr_forks += 1
        self._update_counts()
        return child

    def exit(self, task: Task, code: int = 0, signal: int = 0) -> None:
        """Models do_exit: the address space goes, the task becomes a zombie."""
        if task.mm is not None:
            self.mmput(task.mm)
            task.mm = None
        task.state = "Z"
        task.exit_code = code
        task.exit_signal = signal
        for pid in list(task.children):                 # forget_original_parent: to init
            orphan = self.tasks[pid]
            orphan.ppid = 0
            if orphan.state == "Z":
                self.release(orphan)                    # init reaps zombies at once
        task.children = []
        if task.ppid not in self.tasks:
            self.release(task)
        self._update_counts()

    def release(self, task: Task) -> None:
        """Models release_task(): the last of a task goes (its kernel stack)."""
        self.free_thread_stack(task)
        self.tasks.pop(task.pid, None)

    def reap(self, parent: Task, child: Task) -> None:
        """Models wait_task_zombie: the parent collects the child's faults."""
        minflt, majflt = self.mem.faults(child.pid)
        parent.cmin_flt += minflt + child.cmin_flt
        parent.cmaj_flt += majflt + child.cmaj_flt
        parent.children.remove(child.pid)
        self.release(child)
        self._update_counts()

    def _update_counts(self) -> None:
        m = self.machine
        live = [t for t in self.tasks.values() if t.state != "Z"]
        m.nr_tasks = len(live)
        m.nr_running = sum(1 for t in live if t.state == "R")
        m.last_pid = self.last_pid

    # ------------------------------------------------------ system calls

    def mmap(self, task: Task, length: int, prot: int, flags: int, file=None,
             offset: int = 0, addr: int = 0) -> int:
        """mmap(2): the address; MAP_POPULATE and MAP_LOCKED fault the range in
        (__mm_populate: writable private memory is faulted for write)."""
        self.current = task
        from linmem.mm.mmap import do_mmap
        if offset % 4096:
            raise SyscallError("EINVAL", f"mmap offset {offset:#x} is not page aligned")
        addr, populate = do_mmap(task.mm.vmas, addr, length, prot, flags, file, offset >> 12)
        if populate:
            self.populate(task, addr, populate)
        return addr

    def populate(self, task: Task, start: int, length: int) -> None:
        """Models __mm_populate(): fault in every page of the range."""
        self.current = task
        for vma in task.mm.vmas.vmas_in(start, start + length):
            s, e = max(start, vma.start), min(start + length, vma.end)
            write = (vma.flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
            status, _ = self.access(task, np.arange(s, e, 4096, dtype=np.int64), write)
            if status != 0:
                raise SyscallError("EFAULT", "populate hit an inaccessible page")

    def munmap(self, task: Task, addr: int, length: int) -> None:
        """munmap(2) (the unmap hook zaps the pages and frees the tables)."""
        self.current = task
        task.mm.vmas.do_vmi_munmap(addr, length)

    def brk(self, task: Task, new_brk: int) -> int:
        """brk(2): the new break (the old one when it cannot move)."""
        self.current = task
        from linmem.mm.mmap import sys_brk
        return sys_brk(task.mm.vmas, new_brk)

    def madvise(self, task: Task, addr: int, length: int, advice: int) -> None:
        """madvise(2): flag advice changes the VMAs; DONTNEED zaps the range
        (zap_page_range_single); POPULATE_READ/WRITE fault it in; FREE leaves
        the pages mapped until reclaim (XXX: the lazy-free LRU move comes with
        reclaim); WILLNEED reads a file range in (madvise_willneed), and does
        nothing on anonymous memory."""
        self.current = task
        from linmem.mm.vma import (MADV_DONTNEED, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
                                   MADV_WILLNEED)
        for vma, s, e in task.mm.vmas.madvise(addr, length, advice):
            if advice == MADV_WILLNEED:
                self.madvise_willneed(vma, s, e)
            elif advice == MADV_DONTNEED:
                self.mem.zap(task.mm.id, s, e)
            elif advice in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
                status, _ = self.access(task, np.arange(s, e, 4096, dtype=np.int64),
                                        advice == MADV_POPULATE_WRITE)
                if status != 0:
                    raise SyscallError("EFAULT", "populate hit an inaccessible page")

    def madvise_willneed(self, vma, start: int, end: int) -> None:
        """Models madvise_willneed(): on a file mapping, POSIX_FADV_WILLNEED of
        the file range mapped at [start, end) (linmem.mm.fadvise). XXX: on
        shmem and anonymous memory the kernel starts reading swapped-out
        pages back (shmem_swapin_range, swapin_walk_pmd_entry); not here."""
        from linmem.engine.readahead import RA_SHMEM
        from linmem.mm.fadvise import madvise_willneed
        fid = self.file_id(vma.file)
        if fid >= 0 and not self.mem.K.ra[fid, RA_SHMEM]:
            madvise_willneed(self.mem, fid, vma.file.size, vma.pgoff, vma.start, start, end)

    def mlock(self, task: Task, addr: int, length: int, onfault: bool = False) -> None:
        """mlock(2)/mlock2(MLOCK_ONFAULT): lock the VMAs, mlock the pages already
        there (mlock_vma_pages_range), fault in the rest unless on fault."""
        self.current = task
        from linmem.engine.memory import mlock_range
        for _vma, s, e in task.mm.vmas.mlock(addr, length, onfault):
            mlock_range(self.mem.K.ref, task.mm.id, s, e, True)
            self.populate(task, s, e - s)
        if onfault:
            mlock_range(self.mem.K.ref, task.mm.id, addr, addr + length, True)

    def munlock(self, task: Task, addr: int, length: int) -> None:
        """munlock(2): the pages go back to the evictable lists."""
        self.current = task
        from linmem.engine.memory import mlock_range
        task.mm.vmas.munlock(addr, length)
        mlock_range(self.mem.K.ref, task.mm.id, addr & ~4095, addr + length, False)

    # ---------------------------------------------------------- file I/O

    def read_file(self, task: Task, path: str, offsets=None, counts=None) -> float:
        """read(2) calls of ``counts`` bytes at ``offsets`` (default: the
        whole file, 128 KiB per call): the seconds the reader waits for the
        disk (one request per readahead window of 32 pages)."""
        fs = self.fs
        self.current = task
        inode = fs.lookup(path)
        fid = fs.fid(inode)
        if offsets is None:
            offsets = np.arange(0, inode.size, 32 * 4096, dtype=np.int64)
            counts = 32 * 4096
        events = self.mem.K.events
        before = int(events[_PGPGIN])
        try:
            self.mem.read(fid, inode.size, offsets, counts)
        finally:
            self.memcg.return_to_user(task)
        read = (int(events[_PGPGIN]) - before) // 4
        return fs.device.read_time(self.machine.clock, read, -(-read // 32)) if read else 0.0

    def write_file(self, task: Task, path: str, offset: int, nbytes: int) -> tuple[int, float]:
        """write(2) of ``nbytes`` at ``offset`` (a new file is created), up to
        the next call of balance_dirty_pages: (bytes written, seconds waited:
        reads of partly written pages and the dirty-throttling pause).
        Models generic_perform_write and balance_dirty_pages_ratelimited."""
        fs = self.fs
        now = self.machine.clock
        self.current = task
        inode = fs.inodes.get(path) or fs.create(path)
        throttle = task.dirty
        wb = fs.writeback
        bw = fs.device.write_bandwidth / 4096
        if throttle.exceeded and not inode.tmpfs:
            pause = balance_dirty_pages(self.machine, throttle, now, wb, bw, self._dirtiers())
            if throttle.exceeded:
                return 0, pause
        budget = max(1, throttle.nr_dirtied_pause - throttle.nr_dirtied)
        first = offset // 4096
        end = min(offset + nbytes, (first + budget) * 4096)
        old_size, old_npages = inode.size, inode.npages
        fs.extend(inode, end)
        self.mem.set_clock(now)
        try:
            dirtied, read = self.mem.write(fs.fid(inode), first, -(-end // 4096),
                                           offset % 4096 != 0,
                                           end % 4096 != 0 and end < old_size, old_npages)
        finally:
            self.memcg.return_to_user(task)
        seconds = fs.device.read_time(now, read, read) if read else 0.0
        if inode.tmpfs:
            return end - offset, seconds               # no writeback: no throttling
        if dirtied:
            wb.wakeup_delayed(now)
        fs.blocks([ext4.inode_block(inode.ino)], dirty=True)   # mtime, i_size: ext4_dirty_inode
        throttle.nr_dirtied += dirtied
        if throttle.nr_dirtied >= throttle.nr_dirtied_pause:
            self._dirtying[task.pid] = now
            seconds += balance_dirty_pages(self.machine, throttle, now, wb, bw, self._dirtiers())
        return end - offset, seconds

    def _dirtiers(self) -> int:
        """Tasks that dirtied pages in the last 200 ms (they share the disk)."""
        now = self.machine.clock
        return max(1, sum(1 for t in self._dirtying.values() if now - t <= 0.2))

    def fsync(self, task: Task, path: str) -> float:
        """fsync(2): the seconds until the file's data and the journal are on disk."""
        self.current = task
        fs = self.fs
        inode = fs.inodes.get(path)
        if inode is None or inode.tmpfs or inode.fid < 0:
            return 0.0
        now = self.machine.clock
        return fs.writeback.fsync(inode.fid, now) - now

    def unlink(self, task: Task, path: str) -> bool:
        """unlink(2): False when there is no such file."""
        self.current = task
        return self.fs.unlink(path, self.machine.clock)

    # -------------------------------------------------------- invariants

    def check_invariants(self) -> None:
        """RSS counters equal what the page tables map; every mapping of a
        page is counted in its mapcount; the VMA trees are consistent; the
        swap areas, swap map, swap cache and swap PTEs agree (check_swap)."""
        from linmem.engine import task_mmu as T
        from linmem.mm.debug import check_memcg, check_swap
        mapped = 0
        for task in self.tasks.values():
            if task.mm is None:
                continue
            task.mm.vmas.check_invariants()
            stats = T.smaps_stats(self.mem.K, task.mm.id, 0, TASK_SIZE_TOP, False)
            file, anon, _swap, shmem = self.mem.rss(task.mm.id)
            if stats[T.RESIDENT] != (file + anon + shmem) * 4096 or \
                    stats[T.ANONYMOUS] != anon * 4096:
                raise AssertionError(f"pid {task.pid}: RSS counters (file {file}, anon {anon}) "
                                     f"differ from the page tables ({stats[T.RESIDENT] >> 12} "
                                     f"resident, {stats[T.ANONYMOUS] >> 12} anonymous)")
            mapped += int(stats[T.RESIDENT]) >> 12
        total = int(self.mem.K.mapcount.sum())
        if total != mapped:
            raise AssertionError(f"page mapcounts add up to {total}, the page tables map {mapped}")
        check_swap(self)
        check_memcg(self)

    # ------------------------------------------------------------ access

    def access(self, task: Task, vas: np.ndarray, write: bool,
               max_faults: int = -1) -> tuple[int, int]:
        """The task touches ``vas``: (status, index reached); -3 is SIGSEGV.
        ``max_faults`` >= 0 stops it before a fault once that many were taken."""
        mm = task.mm
        self.current = task
        if write and len(vas):
            # vmf_anon_prepare(): a write fault in a private VMA needs its anon_vma
            for vma in mm.vmas.vmas_in(int(vas.min()), int(vas.max()) + 1):
                if vma.anon_vma is None and not vma.flags & VM_SHARED:
                    mm.vmas.anon_vma_prepare(vma)
        try:
            return self.mem.access(mm.id, task.pid, vas, write, mm.rows(self.file_id),
                                   cpu=task.pid % self.machine.nr_cpus, max_faults=max_faults)
        finally:
            self.memcg.return_to_user(task)


def _swapoff_oom(order: int, gfp: int) -> bool:
    """The OOM killer during swapoff: its victim is the swapoff task (the
    OOM origin), so swapoff gives up (no process is killed here)."""
    raise OutOfMemory("out of memory bringing the pages back")


def _vma_needs_copy(vma) -> bool:
    """Models vma_needs_copy(): private VMAs that have anonymous pages."""
    return not (vma.flags & VM_SHARED) and vma.anon_vma is not None


class _MemcgHooks:
    """What the memory model's slow path asks of the memory controller."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel

    def charge(self, memcg_id: int, nr_pages: int, gfp: int) -> bool:
        return self.kernel.memcg.charge_slowpath(memcg_id, nr_pages, gfp)

    def over_high(self) -> None:
        task = self.kernel.current
        if task is not None:
            self.kernel.memcg.pay_over_high(task)
