"""Small proc files: /proc/stat, /proc/uptime, /proc/loadavg, /proc/swaps and
/proc/sys/vm/*.

The CPU accounting is that of a machine that has done nothing but run its
simulated clock: every tick is idle (USER_HZ = 100 per second and CPU).
"""

from __future__ import annotations

from linmem import sysctl as sysctl_table

USER_HZ = 100
BTIME = 1700000000          # a fixed boot time keeps outputs reproducible


def render_stat(machine) -> str:
    """fs/proc/stat.c:show_stat, for an idle machine."""
    idle = int(machine.clock * USER_HZ)
    cpu_line = lambda label, i: f"{label} 0 0 0 {i} 0 0 0 0 0 0\n"  # noqa: E731
    out = [cpu_line("cpu ", idle * machine.nr_cpus)]
    out += [cpu_line(f"cpu{c}", idle) for c in range(machine.nr_cpus)]
    out.append("intr 0\nctxt 0\n")
    out.append(f"btime {BTIME}\n")
    out.append(f"processes {machine.nr_forks}\nprocs_running {machine.nr_running}\n"
               "procs_blocked 0\n")
    out.append("softirq 0 0 0 0 0 0 0 0 0 0 0\n")
    return "".join(out)


def render_uptime(machine) -> str:
    """fs/proc/uptime.c: uptime and idle time (summed over CPUs), in seconds."""
    return f"{machine.clock:.2f} {machine.clock * machine.nr_cpus:.2f}\n"


def render_loadavg(machine) -> str:
    """fs/proc/loadavg.c for an idle machine."""
    return f"0.00 0.00 0.00 {machine.nr_running}/{machine.nr_tasks} {machine.last_pid}\n"


def render_cpuinfo(machine) -> str:
    """arch/x86/kernel/cpu/proc.c:show_cpuinfo, the leading fields of each CPU.

    XXX: a generic x86-64 CPU; only the fields that describe the topology.
    """
    out = []
    for cpu in range(machine.nr_cpus):
        out.append(f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                   f"model name\t: linmem virtual CPU\nphysical id\t: 0\n"
                   f"siblings\t: {machine.nr_cpus}\ncore id\t\t: {cpu}\n"
                   f"cpu cores\t: {machine.nr_cpus}\napicid\t\t: {cpu}\n\n")
    return "".join(out)


def render_swaps(machine) -> str:
    """mm/swapfile.c:swap_show(): a header, then a line per area: the path
    padded to 40 columns, "partition" or "file\t", size and used KiB (a
    second tab below 10000000), the priority."""
    out = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
    kernel = machine._kernel
    for path, kind, size, used, prio in (kernel.swap.proc_swaps() if kernel else []):
        pad = " " * (40 - len(path) if len(path) < 40 else 1)
        out.append(f"{path}{pad}{'partition' if kind == 'partition' else 'file' + chr(9)}\t"
                   f"{size}\t{chr(9) if size < 10000000 else ''}"
                   f"{used}\t{chr(9) if used < 10000000 else ''}{prio}\n")
    return "".join(out)


def sysctl_files(machine) -> dict[str, str]:
    """name -> text of every readable file of /proc/sys/vm."""
    files = {}
    for name, s in sysctl_table.sysctls_for(machine.arch).items():
        if not s.readable:
            continue
        value = machine.sysctl.get(name)
        files[name] = sysctl_table.format_sysctl(name, value, machine.arch) \
            if s.kind != sysctl_table.WRITEONLY else ""
    return files
