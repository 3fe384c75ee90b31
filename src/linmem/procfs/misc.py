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
    out.append(f"processes {machine.nr_forks}\nprocs_running 1\nprocs_blocked 0\n")
    out.append("softirq 0 0 0 0 0 0 0 0 0 0 0\n")
    return "".join(out)


def render_uptime(machine) -> str:
    """fs/proc/uptime.c: uptime and idle time (summed over CPUs), in seconds."""
    return f"{machine.clock:.2f} {machine.clock * machine.nr_cpus:.2f}\n"


def render_loadavg(machine) -> str:
    """fs/proc/loadavg.c for an idle machine."""
    return f"0.00 0.00 0.00 1/{machine.nr_tasks} {machine.last_pid}\n"


def render_swaps(machine) -> str:
    """mm/swapfile.c:swap_show header (areas come with swap)."""
    return "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


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
