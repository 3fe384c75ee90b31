"""/proc/PID/*: status, stat, statm, maps, smaps, smaps_rollup, cmdline,
oom_score, oom_score_adj, cgroup (fs/proc/array.c, fs/proc/task_mmu.c,
fs/proc/base.c, Linux 6.18 x86-64).

Values come from the task, its VMA tree (counters, layout) and its page
tables (RSS counters, the smaps page walk); the fields a memory model has no
opinion on (signals, capabilities, namespaces) are those of an unprivileged
root process of the reference machines.
"""

from __future__ import annotations

from linmem.engine import task_mmu as T
from linmem.engine.pgtable import MM_HIWATER_RSS
from linmem.mm import mmap as mmaplib
from linmem.mm.oom_kill import oom_score
from linmem.mm.vma import VM_LOCKED, vma_flags_mnemonics
from linmem.procfs.cgroup import proc_pid_cgroup
from linmem.procfs.misc import USER_HZ

PAGE = 4096
RLIM_INFINITY = (1 << 64) - 1
STATES = {"R": "R (running)", "S": "S (sleeping)", "D": "D (disk sleep)", "Z": "Z (zombie)"}
SIGCHLD = 17


def _kb(label: str, kb: int) -> str:
    """task_mem's SEQ_PUT_DEC: "Label:\\t" then the value right-aligned in 8, " kB"."""
    return f"{label}:\t{kb:>8} kB\n"


def mm_counters(kernel, task) -> dict:
    """The numbers task_mem and task_statm print, in pages."""
    mm = task.mm
    v = mm.vmas
    file, anon, swap, shmem = kernel.mem.rss(mm.id)
    rss = file + anon + shmem
    hiwater_rss = max(int(kernel.mem.K.mm_stat[mm.id, MM_HIWATER_RSS]), rss)
    text = ((v.end_code + PAGE - 1) & ~(PAGE - 1)) - (v.start_code & ~(PAGE - 1))
    text = min(text, v.exec_vm * PAGE)
    return {"total_vm": v.total_vm, "hiwater_vm": max(v.hiwater_vm, v.total_vm),
            "locked_vm": v.locked_vm, "pinned_vm": v.pinned_vm, "rss": rss,
            "hiwater_rss": hiwater_rss, "anon": anon, "file": file, "shmem": shmem,
            "swap": swap, "data_vm": v.data_vm, "stack_vm": v.stack_vm,
            "text_bytes": text, "lib_bytes": v.exec_vm * PAGE - text,
            "pte_bytes": kernel.mem.pgtables_bytes(mm.id)}


def render_status(kernel, task) -> str:
    """fs/proc/array.c:proc_pid_status."""
    out = [f"Name:\t{task.comm}\n", "Umask:\t0022\n", f"State:\t{STATES[task.state]}\n",
           f"Tgid:\t{task.pid}\n", "Ngid:\t0\n", f"Pid:\t{task.pid}\n", f"PPid:\t{task.ppid}\n",
           "TracerPid:\t0\n", "Uid:\t0\t0\t0\t0\n", "Gid:\t0\t0\t0\t0\n", "FDSize:\t64\n",
           "Groups:\t \n", f"NStgid:\t{task.pid}\n", f"NSpid:\t{task.pid}\n",
           f"NSpgid:\t{task.pid}\n", f"NSsid:\t{task.pid}\n", "Kthread:\t0\n"]
    if task.mm is not None:
        c = mm_counters(kernel, task)
        K = lambda pages: pages << 2  # noqa: E731
        out += [_kb("VmPeak", K(c["hiwater_vm"])), _kb("VmSize", K(c["total_vm"])),
                _kb("VmLck", K(c["locked_vm"])), _kb("VmPin", K(c["pinned_vm"])),
                _kb("VmHWM", K(c["hiwater_rss"])), _kb("VmRSS", K(c["rss"])),
                _kb("RssAnon", K(c["anon"])), _kb("RssFile", K(c["file"])),
                _kb("RssShmem", K(c["shmem"])), _kb("VmData", K(c["data_vm"])),
                _kb("VmStk", K(c["stack_vm"])), _kb("VmExe", c["text_bytes"] >> 10),
                _kb("VmLib", c["lib_bytes"] >> 10), _kb("VmPTE", c["pte_bytes"] >> 10),
                _kb("VmSwap", K(c["swap"])), _kb("HugetlbPages", 0)]
    out += ["CoreDumping:\t0\n", f"THP_enabled:\t{0 if kernel.machine.thp == 'never' else 1}\n",
            "untag_mask:\t0xffffffffffffffff\n", "Threads:\t1\n", "SigQ:\t0/96364\n",
            "SigPnd:\t0000000000000000\n", "ShdPnd:\t0000000000000000\n",
            "SigBlk:\t0000000000000000\n", "SigIgn:\t0000000000000000\n",
            "SigCgt:\t0000000000000000\n", "CapInh:\t0000000000000000\n",
            "CapPrm:\t000001fffeffffff\n", "CapEff:\t000001fffeffffff\n",
            "CapBnd:\t000001fffeffffff\n", "CapAmb:\t0000000000000000\n", "NoNewPrivs:\t0\n",
            "Seccomp:\t0\n", "Seccomp_filters:\t0\n",
            "Speculation_Store_Bypass:\tthread vulnerable\n",
            "SpeculationIndirectBranch:\tconditional enabled\n",
            f"Cpus_allowed:\t{(1 << kernel.machine.nr_cpus) - 1:x}\n",
            f"Cpus_allowed_list:\t0-{kernel.machine.nr_cpus - 1}\n",
            "Mems_allowed:\t" + ",".join(["00000000"] * 31 + ["00000001"]) + "\n",
            "Mems_allowed_list:\t0\n", "voluntary_ctxt_switches:\t0\n",
            "nonvoluntary_ctxt_switches:\t0\n"]
    return "".join(out)


def render_statm(kernel, task) -> str:
    """fs/proc/array.c:proc_pid_statm (task_statm), in pages."""
    if task.mm is None:
        return "0 0 0 0 0 0 0\n"
    c = mm_counters(kernel, task)
    shared = c["file"] + c["shmem"]
    return (f"{c['total_vm']} {shared + c['anon']} {shared} {c['text_bytes'] >> 12} 0 "
            f"{c['data_vm'] + c['stack_vm']} 0\n")


def render_stat(kernel, task) -> str:
    """fs/proc/array.c:do_task_stat, the 52 fields."""
    minflt, majflt = kernel.mem.faults(task.pid)
    mm = task.mm
    v = mm.vmas if mm is not None else None
    vsize = v.total_vm * PAGE if v else 0
    rss = mm_counters(kernel, task)["rss"] if mm is not None else 0
    g = (lambda name: getattr(v, name)) if v else (lambda name: 0)
    start = int(task.start_time * USER_HZ)
    fields = [task.pid, f"({task.comm})", task.state, task.ppid, task.pid, task.pid, 0, -1,
              4194304, minflt, task.cmin_flt, majflt, task.cmaj_flt, 0, 0, 0, 0, 20, 0, 1, 0,
              start, vsize, rss, RLIM_INFINITY, g("start_code") if v else 0,
              g("end_code") if v else 0, g("start_stack") if v else 0, 0, 0, 0, 0, 0, 0, 0, 0,
              0, SIGCHLD, task.pid % kernel.machine.nr_cpus, 0, 0, 0, 0, 0,
              g("start_data"), g("end_data"), g("start_brk"), g("arg_start"), g("arg_end"),
              g("env_start"), g("env_end"), task.exit_code]
    return " ".join(str(f) for f in fields) + "\n"


def maps_line(start: int, end: int, perms: str, offset: int, dev: tuple[int, int], ino: int,
              name: str | None) -> str:
    """fs/proc/task_mmu.c:show_vma_header_prefix + show_map_vma: the name starts
    at column 74 (the prefix padded to 73), an unnamed line ends with a space."""
    prefix = f"{start:08x}-{end:08x} {perms} {offset:08x} {dev[0]:02x}:{dev[1]:02x} {ino} "
    if name is None:
        return prefix + "\n"
    return f"{prefix:<73}{name}\n"


def _vma_lines(task):
    """(vma, maps line) of every VMA, then the gate VMA [vsyscall]."""
    v = task.mm.vmas
    for vma in v.vmas():
        f = vma.file
        dev = getattr(f, "dev", (0, 0)) if f is not None else (0, 0)
        ino = getattr(f, "ino", 0) if f is not None else 0
        offset = vma.pgoff * PAGE if f is not None else 0
        yield vma, maps_line(vma.start, vma.end, vma.perms(), offset, dev, ino,
                             v.get_vma_name(vma))


def _gate_line() -> str:
    gate = mmaplib.gate_vma()
    return maps_line(gate.start, gate.end, gate.perms(), 0, (0, 0), 0, "[vsyscall]")


def render_maps(kernel, task) -> str:
    if task.mm is None:
        return ""
    return "".join(line for _vma, line in _vma_lines(task)) + _gate_line()


_SMAPS_TAIL = (("Shared_Clean", T.SHARED_CLEAN), ("Shared_Dirty", T.SHARED_DIRTY),
               ("Private_Clean", T.PRIVATE_CLEAN), ("Private_Dirty", T.PRIVATE_DIRTY),
               ("Referenced", T.REFERENCED), ("Anonymous", T.ANONYMOUS))


def _smaps_block(stats, rollup: bool) -> str:
    """fs/proc/task_mmu.c:__show_smap (labels padded to 16, values to 8)."""
    kb = lambda label, value: f"{label + ':':<16}{value:>8} kB\n"  # noqa: E731
    pss = lambda v: (v >> T.PSS_SHIFT) >> 10  # noqa: E731
    out = [kb("Rss", stats[T.RESIDENT] >> 10), kb("Pss", pss(stats[T.PSS])),
           kb("Pss_Dirty", pss(stats[T.PSS_DIRTY]))]
    if rollup:
        out += [kb("Pss_Anon", pss(stats[T.PSS_ANON])), kb("Pss_File", pss(stats[T.PSS_FILE])),
                kb("Pss_Shmem", pss(stats[T.PSS_SHMEM]))]
    out += [kb(label, stats[i] >> 10) for label, i in _SMAPS_TAIL]
    out += [kb("KSM", 0), kb("LazyFree", stats[T.LAZYFREE] >> 10),
            kb("AnonHugePages", stats[T.ANONYMOUS_THP] >> 10), kb("ShmemPmdMapped", 0),
            kb("FilePmdMapped", 0), kb("Shared_Hugetlb", 0), f"{'Private_Hugetlb:':<17}{0:>7} kB\n",
            kb("Swap", stats[T.SWAP] >> 10), kb("SwapPss", pss(stats[T.SWAP_PSS])),
            kb("Locked", pss(stats[T.PSS_LOCKED]))]
    return "".join(out)


def thp_eligible(kernel, vma) -> int:
    """THPeligible: thp_vma_allowable_order() for a PMD-sized anonymous folio."""
    from linmem.mm.vma import VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED
    mode = kernel.machine.thp
    if vma.file is not None or vma.flags & (VM_NOHUGEPAGE | VM_SHARED) or mode == "never":
        return 0
    if mode == "madvise" and not vma.flags & VM_HUGEPAGE:
        return 0
    start = (vma.start + (2 << 20) - 1) & ~((2 << 20) - 1)
    return int(start + (2 << 20) <= vma.end)


def vma_stats(kernel, task, vma):
    stats = T.smaps_stats(kernel.mem.K, task.mm.id, vma.start, vma.end,
                          bool(vma.flags & VM_LOCKED))
    stats[T.SWAP] += shmem_swap(kernel, task, vma) * 4096
    return stats


def shmem_swap(kernel, task, vma) -> int:
    """Models smap_gather_stats() for a shmem mapping: its file's pages in
    the mapped range that are swapped out count in Swap (shmem_swap_usage;
    never in SwapPss, which only swap PTEs feed). A private writable mapping
    counts only those its page table has no entry for (smaps_pte_hole)."""
    from linmem.engine.readahead import RA_SHMEM
    from linmem.engine.shmem import shmem_swap_holes
    from linmem.mm.vma import VM_SHARED, VM_WRITE
    fid = kernel.file_id(vma.file) if vma.file is not None else -1
    K = kernel.mem.K
    if fid < 0 or not K.ra[fid, RA_SHMEM]:
        return 0
    pages = (vma.end - vma.start) >> 12
    if vma.flags & VM_SHARED or not vma.flags & VM_WRITE:
        return kernel.mem.shmem_swapped(fid, vma.pgoff, vma.pgoff + pages)
    return int(shmem_swap_holes(K.ref, task.mm.id, fid, vma.start, vma.end, vma.pgoff))


def render_smaps(kernel, task) -> str:
    """fs/proc/task_mmu.c:show_smap for every VMA."""
    if task.mm is None:
        return ""
    out = []
    for vma, line in _vma_lines(task):
        out.append(line)
        out.append(f"{'Size:':<16}{vma.size >> 10:>8} kB\n{'KernelPageSize:':<16}{4:>8} kB\n"
                   f"{'MMUPageSize:':<16}{4:>8} kB\n")
        out.append(_smaps_block(vma_stats(kernel, task, vma), rollup=False))
        out.append(f"{'THPeligible:':<16}{thp_eligible(kernel, vma):>8}\n")
        out.append(f"{'ProtectionKey:':<16}{0:>8}\n")
        out.append(f"VmFlags: {vma_flags_mnemonics(vma.flags)}\n")
    return "".join(out)


def render_smaps_rollup(kernel, task) -> str:
    """fs/proc/task_mmu.c:show_smaps_rollup."""
    if task.mm is None:
        return ""
    vmas = task.mm.vmas.vmas()
    total = sum((vma_stats(kernel, task, vma) for vma in vmas), start=T.smaps_stats(
        kernel.mem.K, task.mm.id, 0, 0, False))
    header = maps_line(vmas[0].start, vmas[-1].end, "---p", 0, (0, 0), 0, "[rollup]")
    return header + _smaps_block(total, rollup=True)


def pid_files(kernel, task) -> dict[str, str]:
    """Relative path -> text of every file of /proc/PID."""
    files = {"status": render_status(kernel, task), "stat": render_stat(kernel, task),
             "statm": render_statm(kernel, task), "maps": render_maps(kernel, task),
             "smaps": render_smaps(kernel, task), "smaps_rollup": render_smaps_rollup(kernel, task),
             "cmdline": "".join(a + "\0" for a in task.cmdline),
             "comm": task.comm + "\n",
             "oom_score": f"{oom_score(kernel, task)}\n",
             "oom_score_adj": f"{task.oom_score_adj}\n",
             "cgroup": proc_pid_cgroup(task, getattr(kernel.machine, "cgroup_version", 2))}
    return {f"{task.pid}/{name}": text for name, text in files.items()}
