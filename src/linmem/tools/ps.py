"""``linmem ps``: procps-ng 4.0.2 ``ps``, reading any proc directory.

A port of src/ps (parser.c, sortformat.c, select.c, display.c, output.c)
over the per-process reading of libproc2 (:mod:`linmem.tools.readproc`):

* option parsing as parser.c: SysV (``-e -A -a -d -N -f -F -l -j -o -O -p
  -q -s -t -u -U -g -G -C -H -w -y -c -P``), BSD (``a u x j l s v X m e c
  n h r f w o O k p q t T U S g``) and GNU long options (``--sort
  --format --pid --ppid --sid --tty --user --User --group --Group
  --deselect --forest --no-headers --headers --cols --width --columns
  --rows --lines --cumulative --version``), with the same fall-back from
  SysV to BSD parsing; ``$PS_FORMAT`` and the default SysV/BSD formats
  (``generate_sysv_list`` and the ``OL_*`` macros, so ``ps aux`` prints
  USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND);
* every format specifier of output.c's table with its header, width and
  justification; the ones whose data procps gets elsewhere than /proc
  (SELinux context, systemd, NUMA node, namespaces) are refused;
* selection as select.c (``want_this_proc``), sorting as ``fancy_spew``
  (stable sorts applied last key first, on the library's sort item, which
  is skipped when the item is not in the result stack -- ``--sort=vsize``
  sorts nothing in procps either), the forest of display.c;
* the column layout of ``show_one_proc`` byte for byte (right/left/user
  justification, overflow into the next column's padding, the unlimited
  last column), the screen width rules of global.c (COLUMNS, a terminal's
  width, unlimited when stdout is no terminal, ``w``/``ww``).

Values come from the files as procps reads them: VSZ and RSS from
status VmSize/VmRSS, %MEM = VmRSS*1000/MemTotal (meminfo), %CPU and the
elapsed time from stat utime+stime and start_time against ``uptime``,
START/STIME from ``btime`` (PROC/stat) plus start_time, in local time.

Differences from procps: option errors and unreadable input print one
``linmem: WHERE: WHAT`` line and exit 2 (procps: its usage, status 1);
``--help`` prints linmem's summary; thread displays (``-L -T -m m H``) are
not supported; process selection by our own terminal reads ``PROC/self/stat``
(procps reads /proc/<its own pid>); strings sort as in the C locale (procps
uses strcoll).
"""

from __future__ import annotations

import os
import re
import struct
import sys
import time

import click

from linmem.errors import InputError
from linmem.tools import readproc as rp
from linmem.tools.free import PROCPS_VERSION

OUTBUF_SIZE = 2 * 64 * 1024
SPACE_AMOUNT = 144
COLWID = 240

PS_USAGE = """
Usage:
 ps [options]

linmem ps clones procps-ng 4.0.2 ps over a proc directory. Supported:
 -A, -e, a, x, -a, -d, -N, r, T         process selection
 -p, p, --pid, --ppid, -s, --sid, -t, t, --tty, -C, -u, U, --user,
 -U, --User, -g, --group, -G, --Group   selection by list
 -o, o, --format, -O, O, -f, -F, -l, -j, j, l, s, u, v, X, m
                                        output format
 --sort, k                              sort order
 f, --forest, -H                        process tree
 h, --no-headers, --headers, n, c, e, S, --cumulative, w, --cols, --rows
 L                                      list format specifiers
 -V, V, --version                       version
     --proc PATH     read PATH (a proc tree, e.g. one linmem run wrote)
                       instead of /proc

For more details see ps(1).
"""

# --- column flags (common.h) ------------------------------------------------------
USER, LEFT, RIGHT, UNLIMITED, WCHAN, SIGNAL = 1, 2, 3, 4, 5, 6
JUST_MASK = 0x0F
PIDMAX = 0x10
TO, PO, ET, AN = 0x10000000, 0x20000000, 0x40000000, 0x80000000

# spec -> (header, print function, sort item, width, flags); output.c format_array
FORMATS = {
    '%cpu': ('%CPU', 'pcpu', 'UTILIZATION', 4, ET | RIGHT),
    '%mem': ('%MEM', 'pmem', 'VM_RSS', 4, PO | RIGHT),
    'acflag': ('ACFLG', 'nop', 'noop', 5, AN | RIGHT),
    'acflg': ('ACFLG', 'nop', 'noop', 5, AN | RIGHT),
    'addr': ('ADDR', 'nop', 'noop', 4, AN | RIGHT),
    'addr_1': ('ADDR', 'nop', 'noop', 1, AN | LEFT),
    'ag_id': ('AGID', 'agid', 'AUTOGRP_ID', 5, AN | RIGHT),
    'ag_nice': ('AGNI', 'agnice', 'AUTOGRP_NICE', 4, AN | RIGHT),
    'alarm': ('ALARM', 'nop', 'noop', 5, AN | RIGHT),
    'argc': ('ARGC', 'nop', 'noop', 4, PO | RIGHT),
    'args': ('COMMAND', 'args', 'CMDLINE', 27, PO | UNLIMITED),
    'atime': ('TIME', 'time', 'TIME_ALL', 8, ET | RIGHT),
    'blocked': ('BLOCKED', 'sigmask', 'SIGBLOCKED', 9, TO | SIGNAL),
    'bnd': ('BND', 'nop', 'noop', 1, TO | RIGHT),
    'bsdstart': ('START', 'bsdstart', 'TICS_BEGAN', 6, ET | RIGHT),
    'bsdtime': ('TIME', 'bsdtime', 'TICS_ALL', 6, ET | RIGHT),
    'c': ('C', 'c', 'UTILIZATION', 2, ET | RIGHT),
    'caught': ('CAUGHT', 'sigcatch', 'SIGCATCH', 9, TO | SIGNAL),
    'cgname': ('CGNAME', 'cgname', 'CGNAME', 27, PO | UNLIMITED),
    'cgroup': ('CGROUP', 'cgroup', 'CGROUP', 27, PO | UNLIMITED),
    'cgroupns': ('CGROUPNS', 'cgroupns', 'NS_CGROUP', 10, ET | RIGHT),
    'class': ('CLS', 'class', 'SCHED_CLASS', 3, TO | LEFT),
    'cls': ('CLS', 'class', 'SCHED_CLASS', 3, TO | RIGHT),
    'cmaj_flt': ('-', 'nop', 'noop', 1, AN | RIGHT),
    'cmd': ('CMD', 'args', 'CMDLINE', 27, PO | UNLIMITED),
    'cmin_flt': ('-', 'nop', 'noop', 1, AN | RIGHT),
    'cnswap': ('-', 'nop', 'noop', 1, AN | RIGHT),
    'comm': ('COMMAND', 'comm', 'CMD', 15, PO | UNLIMITED),
    'command': ('COMMAND', 'args', 'CMDLINE', 27, PO | UNLIMITED),
    'context': ('CONTEXT', 'context', 'ID_TGID', 31, ET | LEFT),
    'cp': ('CP', 'cp', 'UTILIZATION', 3, ET | RIGHT),
    'cpu': ('CPU', 'nop', 'noop', 3, AN | RIGHT),
    'cpuid': ('CPUID', 'psr', 'PROCESSOR', 5, TO | RIGHT),
    'cputime': ('TIME', 'time', 'TIME_ALL', 8, ET | RIGHT),
    'cputimes': ('TIME', 'times', 'TIME_ALL', 8, ET | RIGHT),
    'ctid': ('CTID', 'nop', 'noop', 5, ET | RIGHT),
    'cuc': ('%CUC', 'utilization_c', 'UTILIZATION_C', 7, AN | RIGHT),
    'cursig': ('CURSIG', 'nop', 'noop', 6, AN | RIGHT),
    'cutime': ('-', 'nop', 'TICS_USER_C', 1, AN | RIGHT),
    'cuu': ('%CUU', 'utilization', 'UTILIZATION', 6, AN | RIGHT),
    'cwd': ('CWD', 'nop', 'noop', 3, AN | LEFT),
    'drs': ('DRS', 'drs', 'VSIZE_BYTES', 5, PO | RIGHT),
    'dsiz': ('DSIZ', 'dsiz', 'VSIZE_BYTES', 4, PO | RIGHT),
    'egid': ('EGID', 'egid', 'ID_EGID', 5, ET | RIGHT),
    'egroup': ('EGROUP', 'egroup', 'ID_EGROUP', 8, ET | USER),
    'eip': ('EIP', 'eip', 'ADDR_CURR_EIP', 16, TO | RIGHT),
    'emul': ('EMUL', 'nop', 'noop', 13, PO | LEFT),
    'end_code': ('E_CODE', 'nop', 'ADDR_CODE_END', 16, PO | RIGHT),
    'environ': ('ENVIRONMENT', 'nop', 'noop', 11, PO | UNLIMITED),
    'esp': ('ESP', 'esp', 'ADDR_CURR_ESP', 16, TO | RIGHT),
    'etime': ('ELAPSED', 'etime', 'TIME_ELAPSED', 11, ET | RIGHT),
    'etimes': ('ELAPSED', 'etimes', 'TIME_ELAPSED', 7, ET | RIGHT),
    'euid': ('EUID', 'euid', 'ID_EUID', 5, ET | RIGHT),
    'euser': ('EUSER', 'euser', 'ID_EUSER', 8, ET | USER),
    'exe': ('EXE', 'exe', 'EXE', 27, PO | UNLIMITED),
    'f': ('F', 'flag', 'FLAGS', 1, ET | RIGHT),
    'fgid': ('FGID', 'fgid', 'FLAGS', 5, ET | RIGHT),
    'fgroup': ('FGROUP', 'fgroup', 'ID_FGROUP', 8, ET | USER),
    'flag': ('F', 'flag', 'FLAGS', 1, ET | RIGHT),
    'flags': ('F', 'flag', 'FLAGS', 1, ET | RIGHT),
    'fname': ('COMMAND', 'fname', 'CMD', 8, PO | LEFT),
    'fsgid': ('FSGID', 'fgid', 'ID_FGID', 5, ET | RIGHT),
    'fsgroup': ('FSGROUP', 'fgroup', 'ID_FGROUP', 8, ET | USER),
    'fsuid': ('FSUID', 'fuid', 'ID_FUID', 5, ET | RIGHT),
    'fsuser': ('FSUSER', 'fuser', 'ID_FUSER', 8, ET | USER),
    'fuid': ('FUID', 'fuid', 'ID_FUID', 5, ET | RIGHT),
    'fuser': ('FUSER', 'fuser', 'ID_FUSER', 8, ET | USER),
    'gid': ('GID', 'egid', 'ID_EGID', 5, ET | RIGHT),
    'group': ('GROUP', 'egroup', 'ID_EGROUP', 8, ET | USER),
    'ignored': ('IGNORED', 'sigignore', 'SIGIGNORE', 9, TO | SIGNAL),
    'inblk': ('INBLK', 'nop', 'noop', 5, AN | RIGHT),
    'inblock': ('INBLK', 'nop', 'noop', 5, AN | RIGHT),
    'intpri': ('PRI', 'opri', 'PRIORITY', 3, TO | RIGHT),
    'ipcns': ('IPCNS', 'ipcns', 'NS_IPC', 10, ET | RIGHT),
    'jid': ('JID', 'nop', 'noop', 1, PO | RIGHT),
    'jobc': ('JOBC', 'nop', 'noop', 4, AN | RIGHT),
    'ktrace': ('KTRACE', 'nop', 'noop', 8, AN | RIGHT),
    'ktracep': ('KTRACEP', 'nop', 'noop', 8, AN | RIGHT),
    'label': ('LABEL', 'context', 'ID_TGID', 31, ET | LEFT),
    'lastcpu': ('C', 'psr', 'PROCESSOR', 3, TO | RIGHT),
    'lim': ('LIM', 'lim', 'RSS_RLIM', 5, AN | RIGHT),
    'login': ('LOGNAME', 'nop', 'noop', 8, AN | LEFT),
    'logname': ('LOGNAME', 'nop', 'noop', 8, AN | LEFT),
    'longtname': ('TTY', 'tty8', 'TTY_NAME', 8, PO | LEFT),
    'lsession': ('SESSION', 'sd_session', 'SD_SESS', 11, ET | LEFT),
    'lstart': ('STARTED', 'lstart', 'TICS_BEGAN', 24, ET | RIGHT),
    'luid': ('LUID', 'luid', 'ID_LOGIN', 5, ET | RIGHT),
    'luser': ('LUSER', 'nop', 'noop', 8, ET | USER),
    'lwp': ('LWP', 'tasks', 'ID_PID', 5, TO | PIDMAX | RIGHT),
    'lxc': ('LXC', 'lxcname', 'LXCNAME', 8, ET | LEFT),
    'm_drs': ('DRS', 'drs', 'VSIZE_BYTES', 5, PO | RIGHT),
    'm_dt': ('DT', 'nop', 'noop', 4, PO | RIGHT),
    'm_lrs': ('LRS', 'nop', 'noop', 5, PO | RIGHT),
    'm_resident': ('RES', 'nop', 'MEM_RES_PGS', 5, PO | RIGHT),
    'm_share': ('SHRD', 'nop', 'MEM_SHR_PGS', 5, PO | RIGHT),
    'm_size': ('SIZE', 'size', 'VSIZE_BYTES', 5, PO | RIGHT),
    'm_swap': ('SWAP', 'nop', 'noop', 5, PO | RIGHT),
    'm_trs': ('TRS', 'trs', 'VSIZE_BYTES', 5, PO | RIGHT),
    'machine': ('MACHINE', 'sd_machine', 'SD_MACH', 31, ET | LEFT),
    'maj_flt': ('MAJFL', 'majflt', 'FLT_MAJ', 6, AN | RIGHT),
    'majflt': ('MAJFLT', 'majflt', 'FLT_MAJ', 6, AN | RIGHT),
    'min_flt': ('MINFL', 'minflt', 'FLT_MIN', 6, AN | RIGHT),
    'minflt': ('MINFLT', 'minflt', 'FLT_MIN', 6, AN | RIGHT),
    'mntns': ('MNTNS', 'mntns', 'NS_MNT', 10, ET | RIGHT),
    'msgrcv': ('MSGRCV', 'nop', 'noop', 6, AN | RIGHT),
    'msgsnd': ('MSGSND', 'nop', 'noop', 6, AN | RIGHT),
    'mwchan': ('MWCHAN', 'nop', 'noop', 6, TO | WCHAN),
    'netns': ('NETNS', 'netns', 'NS_NET', 10, ET | RIGHT),
    'ni': ('NI', 'nice', 'NICE', 3, TO | RIGHT),
    'nice': ('NI', 'nice', 'NICE', 3, TO | RIGHT),
    'nivcsw': ('IVCSW', 'nop', 'noop', 5, AN | RIGHT),
    'nlwp': ('NLWP', 'nlwp', 'NLWP', 4, PO | RIGHT),
    'nsignals': ('NSIGS', 'nop', 'noop', 5, AN | RIGHT),
    'nsigs': ('NSIGS', 'nop', 'noop', 5, AN | RIGHT),
    'nswap': ('NSWAP', 'nop', 'noop', 5, AN | RIGHT),
    'numa': ('NUMA', 'numa', 'PROCESSOR_NODE', 4, AN | RIGHT),
    'nvcsw': ('VCSW', 'nop', 'noop', 5, AN | RIGHT),
    'nwchan': ('WCHAN', 'nop', 'noop', 6, TO | RIGHT),
    'oom': ('OOM', 'oom', 'OOM_SCORE', 4, TO | RIGHT),
    'oomadj': ('OOMADJ', 'oom_adj', 'OOM_ADJ', 5, TO | RIGHT),
    'opri': ('PRI', 'opri', 'PRIORITY', 3, TO | RIGHT),
    'osz': ('SZ', 'nop', 'noop', 2, PO | RIGHT),
    'oublk': ('OUBLK', 'nop', 'noop', 5, AN | RIGHT),
    'oublock': ('OUBLK', 'nop', 'noop', 5, AN | RIGHT),
    'ouid': ('OWNER', 'sd_ouid', 'SD_OUID', 5, ET | LEFT),
    'p_ru': ('P_RU', 'nop', 'noop', 6, AN | RIGHT),
    'paddr': ('PADDR', 'nop', 'noop', 6, AN | RIGHT),
    'pagein': ('PAGEIN', 'majflt', 'FLT_MAJ', 6, AN | RIGHT),
    'pcpu': ('%CPU', 'pcpu', 'UTILIZATION', 4, ET | RIGHT),
    'pending': ('PENDING', 'sig', 'SIGNALS', 9, ET | SIGNAL),
    'pgid': ('PGID', 'pgid', 'ID_PGRP', 5, PO | PIDMAX | RIGHT),
    'pgrp': ('PGRP', 'pgid', 'ID_PGRP', 5, PO | PIDMAX | RIGHT),
    'pid': ('PID', 'procs', 'ID_TGID', 5, PO | PIDMAX | RIGHT),
    'pidns': ('PIDNS', 'pidns', 'NS_PID', 10, ET | RIGHT),
    'pmem': ('%MEM', 'pmem', 'VM_RSS', 4, PO | RIGHT),
    'poip': ('-', 'nop', 'noop', 1, AN | RIGHT),
    'policy': ('POL', 'class', 'SCHED_CLASS', 3, TO | LEFT),
    'ppid': ('PPID', 'ppid', 'ID_PPID', 5, PO | PIDMAX | RIGHT),
    'pri': ('PRI', 'pri', 'PRIORITY', 3, TO | RIGHT),
    'pri_api': ('API', 'pri_api', 'PRIORITY', 3, TO | RIGHT),
    'pri_bar': ('BAR', 'pri_bar', 'PRIORITY', 3, TO | RIGHT),
    'pri_baz': ('BAZ', 'pri_baz', 'PRIORITY', 3, TO | RIGHT),
    'pri_foo': ('FOO', 'pri_foo', 'PRIORITY', 3, TO | RIGHT),
    'priority': ('PRI', 'priority', 'PRIORITY', 3, TO | RIGHT),
    'prmgrp': ('PRMGRP', 'nop', 'noop', 12, PO | RIGHT),
    'prmid': ('PRMID', 'nop', 'noop', 12, PO | RIGHT),
    'project': ('PROJECT', 'nop', 'noop', 12, PO | LEFT),
    'projid': ('PROJID', 'nop', 'noop', 5, PO | RIGHT),
    'pset': ('PSET', 'nop', 'noop', 4, TO | RIGHT),
    'psr': ('PSR', 'psr', 'PROCESSOR', 3, TO | RIGHT),
    'pss': ('PSS', 'pss', 'SMAP_PSS', 5, PO | RIGHT),
    'psxpri': ('PPR', 'nop', 'noop', 3, TO | RIGHT),
    'rbytes': ('RBYTES', 'rbytes', 'IO_READ_BYTES', 5, TO | RIGHT),
    'rchars': ('RCHARS', 'rchars', 'IO_READ_CHARS', 5, TO | RIGHT),
    're': ('RE', 'nop', 'noop', 3, AN | RIGHT),
    'resident': ('RES', 'nop', 'MEM_RES_PGS', 5, PO | RIGHT),
    'rgid': ('RGID', 'rgid', 'ID_RGID', 5, ET | RIGHT),
    'rgroup': ('RGROUP', 'rgroup', 'ID_RGROUP', 8, ET | USER),
    'rlink': ('RLINK', 'nop', 'noop', 8, AN | RIGHT),
    'rops': ('ROPS', 'rops', 'IO_READ_OPS', 5, TO | RIGHT),
    'rss': ('RSS', 'rss', 'VM_RSS', 5, PO | RIGHT),
    'rssize': ('RSS', 'rss', 'VM_RSS', 5, PO | RIGHT),
    'rsz': ('RSZ', 'rss', 'VM_RSS', 5, PO | RIGHT),
    'rtprio': ('RTPRIO', 'rtprio', 'PRIORITY_RT', 6, TO | RIGHT),
    'ruid': ('RUID', 'ruid', 'ID_RUID', 5, ET | RIGHT),
    'ruser': ('RUSER', 'ruser', 'ID_RUSER', 8, ET | USER),
    's': ('S', 's', 'STATE', 1, TO | LEFT),
    'sched': ('SCH', 'sched', 'SCHED_CLASS', 3, TO | RIGHT),
    'scnt': ('SCNT', 'nop', 'noop', 4, AN | RIGHT),
    'scount': ('SC', 'nop', 'noop', 4, AN | RIGHT),
    'seat': ('SEAT', 'sd_seat', 'SD_SEAT', 11, ET | LEFT),
    'sess': ('SESS', 'sess', 'ID_SESSION', 5, PO | PIDMAX | RIGHT),
    'session': ('SESS', 'sess', 'ID_SESSION', 5, PO | PIDMAX | RIGHT),
    'sgi_p': ('P', 'sgi_p', 'STATE', 1, TO | RIGHT),
    'sgi_rss': ('RSS', 'rss', 'VM_RSS', 4, PO | LEFT),
    'sgid': ('SGID', 'sgid', 'ID_SGID', 5, ET | RIGHT),
    'sgroup': ('SGROUP', 'sgroup', 'ID_SGROUP', 8, ET | USER),
    'share': ('-', 'nop', 'noop', 1, PO | RIGHT),
    'sid': ('SID', 'sess', 'ID_SESSION', 5, PO | PIDMAX | RIGHT),
    'sig': ('PENDING', 'sig', 'SIGNALS', 9, ET | SIGNAL),
    'sig_block': ('BLOCKED', 'sigmask', 'SIGBLOCKED', 9, TO | SIGNAL),
    'sig_catch': ('CATCHED', 'sigcatch', 'SIGCATCH', 9, TO | SIGNAL),
    'sig_ignore': ('IGNORED', 'sigignore', 'SIGIGNORE', 9, TO | SIGNAL),
    'sig_pend': ('SIGNAL', 'sig', 'SIGNALS', 9, ET | SIGNAL),
    'sigcatch': ('CAUGHT', 'sigcatch', 'SIGCATCH', 9, TO | SIGNAL),
    'sigignore': ('IGNORED', 'sigignore', 'SIGIGNORE', 9, TO | SIGNAL),
    'sigmask': ('BLOCKED', 'sigmask', 'SIGBLOCKED', 9, TO | SIGNAL),
    'size': ('SIZE', 'swapable', 'VSIZE_BYTES', 5, PO | RIGHT),
    'sl': ('SL', 'nop', 'noop', 3, AN | RIGHT),
    'slice': ('SLICE', 'sd_slice', 'SD_SLICE', 31, ET | LEFT),
    'spid': ('SPID', 'tasks', 'ID_PID', 5, TO | PIDMAX | RIGHT),
    'stackp': ('STACKP', 'stackp', 'ADDR_STACK_START', 16, PO | RIGHT),
    'start': ('STARTED', 'start', 'TICS_BEGAN', 8, ET | RIGHT),
    'start_code': ('S_CODE', 'nop', 'ADDR_CODE_START', 16, PO | RIGHT),
    'start_stack': ('STACKP', 'stackp', 'ADDR_STACK_START', 16, PO | RIGHT),
    'start_time': ('START', 'stime', 'TICS_BEGAN', 5, ET | RIGHT),
    'stat': ('STAT', 'stat', 'STATE', 4, TO | LEFT),
    'state': ('S', 's', 'STATE', 1, TO | LEFT),
    'status': ('STATUS', 'nop', 'noop', 6, AN | RIGHT),
    'stime': ('STIME', 'stime', 'TICS_BEGAN', 5, ET | RIGHT),
    'suid': ('SUID', 'suid', 'ID_SUID', 5, ET | RIGHT),
    'supgid': ('SUPGID', 'supgid', 'SUPGIDS', 20, PO | UNLIMITED),
    'supgrp': ('SUPGRP', 'supgrp', 'SUPGROUPS', 40, PO | UNLIMITED),
    'suser': ('SUSER', 'suser', 'ID_SUSER', 8, ET | USER),
    'svgid': ('SVGID', 'sgid', 'ID_SGID', 5, ET | RIGHT),
    'svgroup': ('SVGROUP', 'sgroup', 'ID_SGROUP', 8, ET | USER),
    'svuid': ('SVUID', 'suid', 'ID_SUID', 5, ET | RIGHT),
    'svuser': ('SVUSER', 'suser', 'ID_SUSER', 8, ET | USER),
    'systime': ('SYSTEM', 'nop', 'noop', 6, ET | RIGHT),
    'sz': ('SZ', 'sz', 'VM_SIZE', 5, PO | RIGHT),
    'taskid': ('TASKID', 'nop', 'noop', 5, TO | PIDMAX | RIGHT),
    'tdev': ('TDEV', 'nop', 'noop', 4, AN | RIGHT),
    'tgid': ('TGID', 'procs', 'ID_TGID', 5, PO | PIDMAX | RIGHT),
    'thcount': ('THCNT', 'nlwp', 'NLWP', 5, PO | RIGHT),
    'tid': ('TID', 'tasks', 'ID_PID', 5, TO | PIDMAX | RIGHT),
    'time': ('TIME', 'time', 'TIME_ALL', 8, ET | RIGHT),
    'timens': ('TIMENS', 'timens', 'NS_TIME', 10, ET | RIGHT),
    'timeout': ('TMOUT', 'nop', 'noop', 5, AN | RIGHT),
    'times': ('TIME', 'times', 'TIME_ALL', 8, ET | RIGHT),
    'tmout': ('TMOUT', 'nop', 'noop', 5, AN | RIGHT),
    'tname': ('TTY', 'tty8', 'TTY_NAME', 8, PO | LEFT),
    'tpgid': ('TPGID', 'tpgid', 'ID_TPGID', 5, PO | PIDMAX | RIGHT),
    'trs': ('TRS', 'trs', 'VSIZE_BYTES', 4, PO | RIGHT),
    'trss': ('TRSS', 'trs', 'VSIZE_BYTES', 4, PO | RIGHT),
    'tsess': ('TSESS', 'nop', 'noop', 5, PO | PIDMAX | RIGHT),
    'tsession': ('TSESS', 'nop', 'noop', 5, PO | PIDMAX | RIGHT),
    'tsid': ('TSID', 'nop', 'noop', 5, PO | PIDMAX | RIGHT),
    'tsig': ('PENDING', 'tsig', 'SIGPENDING', 9, ET | SIGNAL),
    'tsiz': ('TSIZ', 'tsiz', 'VSIZE_BYTES', 4, PO | RIGHT),
    'tt': ('TT', 'tty8', 'TTY_NAME', 8, PO | LEFT),
    'tty': ('TT', 'tty8', 'TTY_NAME', 8, PO | LEFT),
    'tty4': ('TTY', 'tty4', 'TTY_NAME', 4, PO | LEFT),
    'tty8': ('TTY', 'tty8', 'TTY_NAME', 8, PO | LEFT),
    'u_procp': ('UPROCP', 'nop', 'noop', 6, AN | RIGHT),
    'ucmd': ('CMD', 'comm', 'CMD', 15, PO | UNLIMITED),
    'ucomm': ('COMMAND', 'comm', 'CMD', 15, PO | UNLIMITED),
    'uid': ('UID', 'euid', 'ID_EUID', 5, ET | RIGHT),
    'uid_hack': ('UID', 'euser', 'ID_EUSER', 8, ET | USER),
    'umask': ('UMASK', 'nop', 'noop', 5, AN | RIGHT),
    'uname': ('USER', 'euser', 'ID_EUSER', 8, ET | USER),
    'unit': ('UNIT', 'sd_unit', 'SD_UNIT', 31, ET | LEFT),
    'upr': ('UPR', 'nop', 'noop', 3, TO | RIGHT),
    'uprocp': ('UPROCP', 'nop', 'noop', 8, AN | RIGHT),
    'user': ('USER', 'euser', 'ID_EUSER', 8, ET | USER),
    'userns': ('USERNS', 'userns', 'NS_USER', 10, ET | RIGHT),
    'usertime': ('USER', 'nop', 'noop', 4, ET | RIGHT),
    'usrpri': ('UPR', 'nop', 'noop', 3, TO | RIGHT),
    'uss': ('USS', 'uss', 'SMAP_PRV_TOTAL', 5, PO | RIGHT),
    'util': ('C', 'c', 'UTILIZATION', 2, ET | RIGHT),
    'utime': ('UTIME', 'nop', 'TICS_USER', 6, ET | RIGHT),
    'utsns': ('UTSNS', 'utsns', 'NS_UTS', 10, ET | RIGHT),
    'uunit': ('UUNIT', 'sd_uunit', 'SD_UUNIT', 31, ET | LEFT),
    'vm_data': ('DATA', 'nop', 'VM_DATA', 5, PO | RIGHT),
    'vm_exe': ('EXE', 'nop', 'VM_EXE', 5, PO | RIGHT),
    'vm_lib': ('LIB', 'nop', 'VM_LIB', 5, PO | RIGHT),
    'vm_lock': ('LCK', 'nop', 'VM_RSS_LOCKED', 3, PO | RIGHT),
    'vm_stack': ('STACK', 'nop', 'VM_STACK', 5, PO | RIGHT),
    'vsize': ('VSZ', 'vsz', 'VSIZE_BYTES', 6, PO | RIGHT),
    'vsz': ('VSZ', 'vsz', 'VM_SIZE', 6, PO | RIGHT),
    'wbytes': ('WBYTES', 'wbytes', 'IO_WRITE_BYTES', 5, TO | RIGHT),
    'wcbytes': ('WCBYTES', 'wcbytes', 'IO_WRITE_CBYTES', 5, TO | RIGHT),
    'wchan': ('WCHAN', 'wchan', 'WCHAN_NAME', 6, TO | WCHAN),
    'wchars': ('WCHARS', 'wchars', 'IO_WRITE_CHARS', 5, TO | RIGHT),
    'wname': ('WCHAN', 'wchan', 'WCHAN_NAME', 6, TO | WCHAN),
    'wops': ('WOPS', 'wops', 'IO_WRITE_OPS', 5, TO | RIGHT),
    'xstat': ('XSTAT', 'nop', 'noop', 5, AN | RIGHT),
    'zone': ('ZONE', 'context', 'ID_TGID', 31, ET | LEFT),
    'zoneid': ('ZONEID', 'nop', 'noop', 31, ET | RIGHT),
    '~': ('-', 'nop', 'noop', 1, AN | RIGHT),
}

# output.c macro_array
MACROS = {
    "DFMT": "pid,tname,state,cputime,cmd", "DefBSD": "pid,tname,stat,bsdtime,args",
    "DefSysV": "pid,tname,time,cmd", "END_BSD": "state,tname,cputime,comm",
    "END_SYS5": "state,tname,time,command", "F5FMT": "uname,pid,ppid,c,start,tname,time,cmd",
    "FB_": "pid,tt,stat,time,command", "FB_j": "user,pid,ppid,pgid,sess,jobc,stat,tt,time,command",
    "FB_l": "uid,pid,ppid,cpu,pri,nice,vsz,rss,wchan,stat,tt,time,command",
    "FB_u": "user,pid,pcpu,pmem,vsz,rss,tt,stat,start,time,command",
    "FB_v": "pid,stat,time,sl,re,pagein,vsz,rss,lim,tsiz,pcpu,pmem,command",
    "FD_": "pid,tty,time,comm", "FD_f": "user,pid,ppid,start_time,tty,time,comm",
    "FD_fj": "user,pid,ppid,start_time,tty,time,pgid,sid,comm",
    "FD_j": "pid,tty,time,pgid,sid,comm",
    "FD_l": "flags,state,uid,pid,ppid,priority,nice,vsz,wchan,tty,time,comm",
    "FD_lj": "flags,state,uid,pid,ppid,priority,nice,vsz,wchan,tty,time,pgid,sid,comm",
    "FL5FMT": "f,state,uid,pid,ppid,pcpu,pri,nice,rss,wchan,start,time,command",
    "FLASK_context": "pid,context,command", "HP_": "pid,tty,time,comm",
    "HP_f": "user,pid,ppid,cpu,stime,tty,time,args",
    "HP_fl": "flags,state,user,pid,ppid,cpu,intpri,nice,addr,sz,wchan,stime,tty,time,args",
    "HP_l": "flags,state,uid,pid,ppid,cpu,intpri,nice,addr,sz,wchan,tty,time,comm",
    "J390": "pid,sid,pgrp,tname,atime,args",
    "JFMT": "user,pid,ppid,pgid,sess,jobc,state,tname,cputime,command",
    "L5FMT": "f,state,uid,pid,ppid,c,pri,nice,addr,sz,wchan,tt,time,ucmd",
    "LFMT": "uid,pid,ppid,cp,pri,nice,vsz,rss,wchan,state,tname,cputime,command",
    "OL_X": "pid,start_stack,esp,eip,timeout,alarm,stat,tname,bsdtime,args",
    "OL_j": "ppid,pid,pgid,sid,tname,tpgid,stat,uid,bsdtime,args",
    "OL_l": "flags,uid,pid,ppid,priority,nice,vsz,rss,wchan,stat,tname,bsdtime,args",
    "OL_m": "pid,tname,majflt,minflt,m_trs,m_drs,m_size,m_swap,rss,m_share,vm_lib,m_dt,args",
    "OL_s": "uid,pid,pending,sig_block,sig_ignore,caught,stat,tname,bsdtime,args",
    "OL_u": "user,pid,pcpu,pmem,vsz,rss,tname,stat,start_time,bsdtime,args",
    "OL_v": "pid,tname,stat,bsdtime,maj_flt,m_trs,m_drs,rss,pmem,args",
    "RD_": "pid,tname,state,bsdtime,comm", "RD_f": "uid,pid,ppid,start_time,tname,bsdtime,args",
    "RD_fj": "uid,pid,ppid,start_time,tname,bsdtime,pgid,sid,args",
    "RD_j": "pid,tname,state,bsdtime,pgid,sid,comm",
    "RD_l": "flags,state,uid,pid,ppid,priority,nice,wchan,tname,bsdtime,comm",
    "RD_lj": "flags,state,uid,pid,ppid,priority,nice,wchan,tname,bsdtime,pgid,sid,comm",
    "RUSAGE": "minflt,majflt,nswap,inblock,oublock,msgsnd,msgrcv,nsigs,nvcsw,nivcsw",
    "SCHED": "user,pcpu,pri,usrpri,nice,psxpri,psr,policy,pset",
    "SFMT": "uid,pid,cursig,sig,sigmask,sigignore,sigcatch,stat,tname,command",
    "Std_f": "uid_hack,pid,ppid,c,stime,tname,time,cmd",
    "Std_fl": "f,s,uid_hack,pid,ppid,c,opri,ni,addr,sz,wchan,stime,tname,time,cmd",
    "Std_l": "f,s,uid,pid,ppid,c,opri,ni,addr,sz,wchan,tname,time,ucmd",
    "THREAD": "user,pcpu,pri,scnt,wchan,usertime,systime",
    "UFMT": "uname,pid,pcpu,pmem,vsz,rss,tt,state,start,time,command",
    "VFMT": "pid,tt,state,time,sl,pagein,vsz,rss,pcpu,pmem,command",
}

SHORTSORT = {"C": "pcpu", "G": "tpgid", "J": "cstime", "M": "maj_flt", "N": "cmaj_flt",
             "P": "ppid", "R": "resident", "S": "share", "T": "start_time", "U": "uid",
             "c": "cmd", "f": "flags", "g": "pgrp", "j": "cutime", "k": "utime", "m": "min_flt",
             "n": "cmin_flt", "o": "session", "p": "pid", "r": "rss", "s": "size", "t": "tty",
             "u": "user", "v": "vsize", "y": "priority"}

# pr function -> the library items it asks for (output.c setRELn)
PR_ITEMS = {
    'args': ('CMDLINE', 'CMD', 'ENVIRON'), 'comm': ('CMD', 'CMDLINE', 'ENVIRON'),
    'cgname': ('CGNAME',), 'cgroup': ('CGROUP',), 'fname': ('CMD',),
    'etime': ('TIME_ELAPSED',), 'etimes': ('TIME_ELAPSED',),
    'c': ('TICS_ALL', 'TICS_ALL_C', 'TIME_ELAPSED', 'UTILIZATION'),
    'pcpu': ('TICS_ALL', 'TICS_ALL_C', 'TIME_ELAPSED', 'UTILIZATION'),
    'cp': ('TICS_ALL', 'TICS_ALL_C', 'TIME_ELAPSED', 'UTILIZATION'),
    'pgid': ('ID_PGRP',), 'ppid': ('ID_PPID',), 'time': ('TIME_ALL',), 'times': ('TIME_ALL',),
    'vsz': ('VM_SIZE',), 'priority': ('PRIORITY',), 'opri': ('PRIORITY',),
    'pri_foo': ('PRIORITY',), 'pri_bar': ('PRIORITY',), 'pri_baz': ('PRIORITY',),
    'pri': ('PRIORITY',), 'pri_api': ('PRIORITY',), 'nice': ('NICE', 'SCHED_CLASS'),
    'oom_adj': ('OOM_ADJ',), 'oom': ('OOM_SCORE',), 'class': ('SCHED_CLASS',),
    'rtprio': ('SCHED_CLASS', 'PRIORITY_RT'), 'sched': ('SCHED_CLASS',),
    'wchan': ('WCHAN_NAME',), 'tty4': ('TTY_NUMBER',), 'tty8': ('TTY_NAME',),
    'stat': ('STATE', 'NICE', 'VM_RSS_LOCKED', 'ID_SESSION', 'ID_TGID', 'NLWP', 'ID_PGRP',
             'ID_TPGID'),
    's': ('STATE',), 'flag': ('FLAGS',), 'stackp': ('ADDR_STACK_START',),
    'esp': ('ADDR_CURR_ESP',), 'eip': ('ADDR_CURR_EIP',), 'bsdtime': ('TICS_ALL', 'TICS_ALL_C'),
    'bsdstart': ('TICS_BEGAN',), 'sz': ('VM_SIZE',),
    'dsiz': ('VSIZE_BYTES', 'ADDR_CODE_END', 'ADDR_CODE_START'),
    'tsiz': ('VSIZE_BYTES', 'ADDR_CODE_END', 'ADDR_CODE_START'),
    'drs': ('VSIZE_BYTES', 'ADDR_CODE_END', 'ADDR_CODE_START'),
    'trs': ('VSIZE_BYTES', 'ADDR_CODE_END', 'ADDR_CODE_START'),
    'swapable': ('VM_DATA', 'VM_STACK', 'VSIZE_BYTES'), 'size': ('VSIZE_BYTES',),
    'minflt': ('FLT_MIN', 'FLT_MIN_C'), 'majflt': ('FLT_MAJ', 'FLT_MAJ_C'),
    'lim': ('RSS_RLIM',), 'psr': ('PROCESSOR',), 'pss': ('SMAP_PSS',),
    'numa': ('PROCESSOR_NODE',), 'rss': ('VM_RSS',), 'pmem': ('VM_RSS',),
    'lstart': ('TICS_BEGAN',), 'stime': ('TICS_BEGAN',), 'start': ('TICS_BEGAN',),
    'tsig': ('SIGPENDING',), 'sig': ('SIGNALS',), 'sigmask': ('SIGBLOCKED',),
    'sigignore': ('SIGIGNORE',), 'sigcatch': ('SIGCATCH',), 'uss': ('SMAP_PRV_TOTAL',),
    'egid': ('ID_EGID',), 'rgid': ('ID_RGID',), 'sgid': ('ID_SGID',), 'fgid': ('ID_FGID',),
    'euid': ('ID_EUID',), 'ruid': ('ID_RUID',), 'suid': ('ID_SUID',), 'fuid': ('ID_FUID',),
    'luid': ('ID_LOGIN',), 'ruser': ('ID_RUSER', 'ID_RUID'), 'euser': ('ID_EUSER', 'ID_EUID'),
    'fuser': ('ID_FUSER', 'ID_FUID'), 'suser': ('ID_SUSER', 'ID_SUID'),
    'egroup': ('ID_EGROUP', 'ID_EGID'), 'rgroup': ('ID_RGROUP', 'ID_RGID'),
    'fgroup': ('ID_FGROUP', 'ID_FGID'), 'sgroup': ('ID_SGROUP', 'ID_SGID'),
    'rbytes': ('IO_READ_BYTES',), 'rchars': ('IO_READ_CHARS',), 'rops': ('IO_READ_OPS',),
    'wbytes': ('IO_WRITE_BYTES',), 'wcbytes': ('IO_WRITE_CBYTES',),
    'wchars': ('IO_WRITE_CHARS',), 'wops': ('IO_WRITE_OPS',), 'procs': ('ID_TGID',),
    'tasks': ('ID_PID',), 'nlwp': ('NLWP',), 'sess': ('ID_SESSION',), 'supgid': ('SUPGIDS',),
    'supgrp': ('SUPGROUPS',), 'tpgid': ('ID_TPGID',), 'sgi_p': ('STATE', 'PROCESSOR'),
    'exe': ('EXE',), 'utilization': ('UTILIZATION',), 'utilization_c': ('UTILIZATION_C',),
    'lxcname': ('LXCNAME',), 'agid': ('AUTOGRP_ID',), 'agnice': ('AUTOGRP_NICE',),
    'nop': ('noop',),
}
# display.c finalize_stacks: items every stack carries
FIXED_ITEMS = ("CMD", "ID_EGID", "ID_EUID", "ID_FGID", "ID_FUID", "ID_PID", "ID_PPID", "ID_RGID",
               "ID_RUID", "ID_SESSION", "ID_SGID", "ID_SUID", "ID_TGID", "STATE", "TTY",
               "ID_PGRP", "ID_TPGID", "NICE", "NLWP", "RSS", "VM_RSS_LOCKED", "SIGBLOCKED",
               "SIGCATCH", "SIGIGNORE", "SIGNALS", "SIGPENDING", "TICS_ALL", "TICS_ALL_C",
               "TIME_ALL", "TIME_ELAPSED", "TICS_BEGAN", "extra", "noop")
# print functions whose data procps takes from outside /proc text linmem models
UNSUPPORTED_PR = {"context", "numa", "sd_session", "sd_machine", "sd_ouid", "sd_seat",
                  "sd_slice", "sd_unit", "sd_uunit", "cgroupns", "ipcns", "mntns", "netns",
                  "pidns", "timens", "userns", "utsns"}
# sort comparison kinds of the library items (pids.c Item_table sortfunc)
NUM_SORT = {"ID_PGRP", "ID_PID", "ID_PPID", "ID_SESSION", "ID_TGID", "ID_TID", "ID_TPGID",
            "NICE", "NLWP", "PRIORITY", "PRIORITY_RT", "PROCESSOR", "PROCESSOR_NODE",
            "SCHED_CLASS", "STATE", "TTY", "ID_LOGIN", "AUTOGRP_ID", "AUTOGRP_NICE",
            "OOM_ADJ", "OOM_SCORE", "EXIT_SIGNAL"}
STR_SORT = {"CMD", "CMDLINE", "ID_EUSER", "ID_RUSER", "ID_SUSER", "ID_FUSER", "ID_EGROUP",
            "ID_RGROUP", "ID_SGROUP", "ID_FGROUP", "SIGBLOCKED", "SIGCATCH", "SIGIGNORE",
            "SIGNALS", "SIGPENDING", "SUPGIDS", "SUPGROUPS", "EXE", "CGROUP", "CGNAME",
            "WCHAN_NAME", "LXCNAME", "ENVIRON"}
VERS_SORT = {"TTY_NAME", "TTY_NUMBER"}

SEL_RUID, SEL_EUID, SEL_SUID, SEL_FUID, SEL_RGID, SEL_EGID, SEL_SGID, SEL_FGID = range(1, 9)
SEL_PGRP, SEL_PID, SEL_TTY, SEL_SESS, SEL_COMM, SEL_PPID, SEL_PID_QUICK = range(9, 16)
SS_B_x, SS_B_g, SS_U_d, SS_U_a, SS_B_a = 0x01, 0x02, 0x04, 0x08, 0x10
FF_Uf, FF_Uj, FF_Ul, FF_Bj, FF_Bl, FF_Bs, FF_Bu, FF_Bv, FF_LX, FF_Lm, FF_Fc = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100, 0x200, 0x400)
FM_c, FM_j, FM_y, FM_P, FM_M, FM_F = 0x1, 0x2, 0x4, 0x10, 0x20, 0x80
HEAD_SINGLE, HEAD_NONE, HEAD_MULTI = 0, 1, 2
SF_U_O, SF_U_o, SF_B_O, SF_B_o, SF_B_m, SF_G_sort, SF_G_format = range(1, 8)


class PsError(InputError):
    """An option error, reported as ``linmem: ps: WHAT``."""

    def __init__(self, what: str):
        super().__init__("ps", what)


class Unsupported(InputError):
    """A procps feature linmem ps does not have (never retried as BSD options)."""

    def __init__(self, what: str):
        super().__init__("ps", what)


# --- small C helpers ---------------------------------------------------------------

def c_strtoul0(text: str) -> tuple[int, str]:
    """``strtoul(s, &end, 0)``: the value and the unparsed rest."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return 0, text
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    if m.group(1) == "-":
        value = -value
    return value % (1 << 64), text[m.end():]


def strverscmp(a: str, b: str) -> int:
    """glibc ``strverscmp``."""
    s_n, s_i, s_f, s_z, cmp, length = 0, 3, 6, 9, 2, 3
    next_state = [s_n, s_i, s_z, s_n, s_i, s_i, s_n, s_f, s_f, s_n, s_f, s_z]
    result_type = [cmp, cmp, cmp, cmp, length, cmp, cmp, cmp, cmp,
                   cmp, -1, -1, +1, length, length, +1, length, length,
                   cmp, cmp, cmp, cmp, cmp, cmp, cmp, cmp, cmp,
                   cmp, +1, +1, -1, cmp, cmp, -1, cmp, cmp]
    p1 = a.encode() + b"\0"
    p2 = b.encode() + b"\0"
    i = 0

    def cls(c: int) -> int:
        return (c == 0x30) + (0x30 <= c <= 0x39)

    c1, c2 = p1[0], p2[0]
    state = s_n + cls(c1)
    while c1 - c2 == 0:
        if c1 == 0:
            return 0
        state = next_state[state]
        i += 1
        c1, c2 = p1[i], p2[i]
        state += cls(c1)
    diff = c1 - c2
    state = result_type[state * 3 + cls(c2)]
    if state == cmp:
        return diff
    if state == length:
        j1, j2 = i + 1, i + 1
        while 0x30 <= p1[j1] <= 0x39:
            j1 += 1
            if not 0x30 <= p2[j2] <= 0x39:
                return 1
            j2 += 1
        return -1 if 0x30 <= p2[j2] <= 0x39 else diff
    return state


def c_float(x: float) -> float:
    """Round to a C ``float``."""
    return struct.unpack("f", struct.pack("f", x))[0]


# --- screen width (utf-8 cells) -------------------------------------------------

def _wcwidth(ch: str) -> int:
    """Columns of one printable character (glibc-like: wide East Asian = 2)."""
    import unicodedata
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _iswprint(ch: str) -> bool:
    import unicodedata
    return unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp")


def ps_escape(raw: bytes, maxcells: int, bufsize: int = OUTBUF_SIZE,
              utf8: bool = False) -> tuple[str, int]:
    """output.c ``escape_str``: (text, cells) of at most ``maxcells`` cells."""
    if maxcells <= 0 or bufsize <= 0:
        return "", 0
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    if not utf8:
        limit = min(maxcells, bufsize - 1)
        out = rp.esc_all(raw[:limit])
        return out.decode("ascii"), len(out)
    out: list[str] = []
    cells = nbytes = 0
    i = 0
    while cells < maxcells and nbytes + 1 < bufsize and i < len(raw):
        c = raw[i]
        length = rp._UTF_LEN[c]
        seq = raw[i:i + length] if length > 0 else b""
        try:
            ch = seq.decode("utf-8") if length > 0 else None
        except UnicodeDecodeError:
            ch = None
        if ch is None or len(ch) != 1:
            out.append("?")
            i += 1
            cells += 1
            nbytes += 1
        elif length == 1:
            out.append(ch if 0x20 <= c < 0x7f else "?")
            i += 1
            cells += 1
            nbytes += 1
        elif not _iswprint(ch):
            out.append("?")
            i += length
            cells += 1
            nbytes += 1
        else:
            width = _wcwidth(ch)
            if width > maxcells - cells or length >= bufsize - (nbytes + 1):
                break
            out.append(ch)
            i += length
            nbytes += length
            cells += max(width, 0)
    return "".join(out), cells


# --- format nodes -------------------------------------------------------------------

class FormatNode:
    """One output column (common.h ``format_node``)."""

    __slots__ = ("name", "pr", "width", "flags", "sr", "spec")

    def __init__(self, name, pr, width, flags, sr, spec):
        self.name, self.pr, self.width, self.flags, self.sr, self.spec = (
            name, pr, width, flags, sr, spec)


class SortNode:
    __slots__ = ("sr", "pr", "reverse")

    def __init__(self, sr, pr, reverse):
        self.sr, self.pr, self.reverse = sr, pr, reverse


class Options:
    """The parser's globals (global.c ``reset_global``)."""

    def __init__(self):
        self.all_processes = 0
        self.bsd_c_option = 0
        self.bsd_e_option = 0
        self.forest_type = ""
        self.format_flags = 0
        self.format_list: list[FormatNode] = []
        self.format_modifiers = 0
        self.header_type = HEAD_SINGLE
        self.include_dead_children = 0
        self.negate_selection = 0
        self.running_only = 0
        self.selection_list: list[tuple[int, list]] = []   # newest first
        self.simple_select = 0
        self.sort_list: list[SortNode] = []
        self.thread_flags = 0
        self.unix_f_option = 0
        self.user_is_number = 0
        self.wchan_is_number = 0
        self.prefer_bsd_defaults = 0
        self.screen_cols = 80
        self.screen_rows = 24
        self.w_count = 0
        self.sf_list: list[tuple[str, int]] = []            # newest first
        self.select_bits = 0


# --- the parser (parser.c, sortformat.c, select.c) ----------------------------------

class Parser:
    """parser.c ``arg_parse`` over the argument list."""

    def __init__(self, argv: list[str], pid_length: int, env: dict):
        self.argv = ["ps"] + list(argv)
        self.pid_length = pid_length
        self.env = env

    # -- helpers
    def _opt_arg(self) -> str | None:
        """parser.c ``get_opt_arg``."""
        rest = self.argv[self.thisarg][self.flagpos + 1:]
        if rest:
            return rest
        if self.thisarg + 2 > len(self.argv):
            return None
        if self.argv[self.thisarg + 1] == "":
            return None
        self.thisarg += 1
        return self.argv[self.thisarg]

    def _gnu_arg(self, s: str, sl: int) -> str | None:
        """parser.c ``grab_gnu_arg``."""
        tail = s[sl:]
        if tail[:1] in ("=", ":"):
            return tail[1:] or None
        if tail:
            return None
        if self.thisarg + 2 > len(self.argv):
            return None
        if self.argv[self.thisarg + 1] == "":
            return None
        self.thisarg += 1
        return self.argv[self.thisarg]

    def _parse_list(self, arg: str, kind: str, typecode: int) -> None:
        """parser.c ``parse_list``."""
        items = [x for x in re.split(r"[ ,\t]", arg)]
        if arg == "" or any(x == "" for x in items):
            raise PsError("improper list")
        values = [self._parse_item(kind, x) for x in items]
        self.o.selection_list.insert(0, (typecode, values))

    def _parse_item(self, kind: str, text: str):
        if kind == "pid":
            value, rest = c_strtoul0(text)
            if rest:
                raise PsError("process ID list syntax error")
            if value < 1 or value > 0x7FFFFFFF:
                raise PsError("process ID out of range")
            return value
        if kind in ("uid", "gid"):
            value, rest = c_strtoul0(text)
            if rest or not text:
                try:
                    if kind == "uid":
                        import pwd
                        value = pwd.getpwnam(text).pw_uid
                    else:
                        import grp
                        value = grp.getgrnam(text).gr_gid
                except KeyError:
                    if not self.o.negate_selection:
                        raise PsError("user name does not exist" if kind == "uid"
                                      else "group name does not exist") from None
                    value = 0xFFFFFFFF
            if not self.o.negate_selection and value > 0xFFFFFFFE:
                raise PsError("user ID out of range" if kind == "uid" else "group ID out of range")
            return value % (1 << 32)
        if kind == "cmd":
            return text.encode()[:63]
        if kind == "tty":
            return self._parse_tty(text)
        raise AssertionError(kind)

    @staticmethod
    def _parse_tty(text: str) -> int:
        """parser.c ``parse_tty``: the device number of a terminal name."""
        import stat as st_mod
        candidates = [text] if text.startswith("/") else [
            f"/dev/pts/{text}", f"/dev/{text}", f"/dev/tty{text}", f"/dev/pty{text}",
            f"/dev/{text}nsole"]
        for path in candidates:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not st_mod.S_ISCHR(st.st_mode):
                raise PsError("list member was not a TTY")
            return st.st_rdev
        if text.startswith("/"):
            raise PsError("TTY could not be found")
        if text in ("-", "?"):
            return 0
        if len(text) == 1 and os.path.exists(text):
            return 0
        raise PsError("TTY could not be found")

    def _defer(self, arg: str, source: int) -> None:
        self.o.sf_list.insert(0, (arg, source))
        if source == SF_G_sort:
            self.have_gnu_sort = True

    # -- SysV
    def _sysv(self) -> None:
        o = self.o
        arg_text = self.argv[self.thisarg]
        self.flagpos = 0
        while True:
            self.flagpos += 1
            if self.flagpos >= len(arg_text):
                return
            c = arg_text[self.flagpos]
            if c in "Ae":
                o.all_processes = 1
            elif c == "a":
                o.simple_select |= SS_U_a
            elif c == "d":
                o.simple_select |= SS_U_d
            elif c == "N":
                o.negate_selection = 1
            elif c == "f":
                o.format_flags |= FF_Uf
                o.unix_f_option = 1
            elif c == "F":
                o.format_modifiers |= FM_F
                o.format_flags |= FF_Uf
                o.unix_f_option = 1
            elif c == "l":
                o.format_flags |= FF_Ul
            elif c == "j":
                o.format_modifiers |= FM_j
            elif c == "c":
                o.format_modifiers |= FM_c
            elif c == "y":
                o.format_modifiers |= FM_y
            elif c == "P":
                o.format_modifiers |= FM_P
            elif c in "MZ":
                o.format_modifiers |= FM_M
            elif c == "H":
                o.forest_type = "u"
            elif c == "L":
                o.thread_flags |= 0x0010
            elif c == "T":
                o.thread_flags |= 0x0008
            elif c == "m":
                o.thread_flags |= 0x0004
            elif c == "w":
                o.w_count += 1
            elif c == "V":
                raise _Version()
            elif c == "x":
                raise PsError("must set personality to get -x option")
            elif c in "CGUgopqstuO":
                arg = self._opt_arg()
                messages = {
                    "C": "list of command names must follow -C",
                    "G": "list of real groups must follow -G",
                    "U": "list of real users must follow -U",
                    "g": "list of session leaders OR effective group names must follow -g",
                    "o": "format specification must follow -o",
                    "O": "format or sort specification must follow -O",
                    "p": "list of process IDs must follow -p",
                    "q": "List of process IDs must follow -q.",
                    "s": "list of session IDs must follow -s",
                    "t": "list of terminals (pty, tty...) must follow -t",
                    "u": "list of users must follow -u"}
                if arg is None:
                    raise PsError(messages[c])
                if c == "o":
                    self._defer(arg, SF_U_o)
                elif c == "O":
                    self._defer(arg, SF_U_O)
                elif c == "g":
                    try:
                        self._parse_list(arg, "pid", SEL_SESS)
                    except PsError:
                        try:
                            self._parse_list(arg, "gid", SEL_EGID)
                        except PsError:
                            raise PsError("list of session leaders OR effective group IDs "
                                          "was invalid") from None
                else:
                    kind, code = {"C": ("cmd", SEL_COMM), "G": ("gid", SEL_RGID),
                                  "U": ("uid", SEL_RUID), "p": ("pid", SEL_PID),
                                  "q": ("pid", SEL_PID_QUICK), "s": ("pid", SEL_SESS),
                                  "t": ("tty", SEL_TTY), "u": ("uid", SEL_EUID)}[c]
                    self._parse_list(arg, kind, code)
                return
            elif c == "-":
                raise PsError("embedded '-' among SysV options makes no sense")
            else:
                raise PsError("unsupported SysV option")

    # -- BSD
    def _bsd(self) -> None:
        o = self.o
        arg_text = self.argv[self.thisarg]
        if arg_text.startswith("-"):
            if not self.force_bsd:
                raise PsError("cannot happen - problem #1")
            self.flagpos = 0
        else:
            if self.force_bsd:
                raise PsError("second chance parse failed, not BSD or SysV")
            self.flagpos = -1
        while True:
            self.flagpos += 1
            if self.flagpos >= len(arg_text):
                return
            c = arg_text[self.flagpos]
            if c.isdigit():
                self._parse_list(arg_text[self.flagpos:], "pid", SEL_PID)
                return
            if c == "H":
                o.thread_flags |= 0x0001
            elif c == "L":
                raise _ListFormats()
            elif c == "M":
                o.thread_flags |= 0x0002
            elif c == "S":
                o.include_dead_children = 1
            elif c == "T":
                o.selection_list.insert(0, (SEL_TTY, [None]))
            elif c == "V":
                raise _Version()
            elif c == "W":
                raise PsError("obsolete W option not supported (you have a /dev/drum?)")
            elif c == "X":
                o.format_flags |= FF_LX
            elif c == "Z":
                o.format_modifiers |= FM_M
            elif c == "a":
                o.simple_select |= SS_B_a
            elif c == "c":
                o.bsd_c_option = 1
            elif c == "e":
                o.bsd_e_option = 1
            elif c == "f":
                o.forest_type = "b"
            elif c == "g":
                o.simple_select |= SS_B_g
            elif c == "h":
                if o.header_type:
                    raise PsError("only one heading option may be specified")
                o.header_type = HEAD_NONE
            elif c == "j":
                o.format_flags |= FF_Bj
            elif c == "l":
                o.format_flags |= FF_Bl
            elif c == "m":
                if self.force_bsd:               # the BSD retry sets PER_OLD_m
                    o.format_flags |= FF_Lm
                else:
                    o.thread_flags |= 0x0002
            elif c == "n":
                o.wchan_is_number = 1
                o.user_is_number = 1
            elif c == "r":
                o.running_only = 1
            elif c == "s":
                o.format_flags |= FF_Bs
            elif c == "u":
                o.format_flags |= FF_Bu
            elif c == "v":
                o.format_flags |= FF_Bv
            elif c == "w":
                o.w_count += 1
            elif c == "x":
                o.simple_select |= SS_B_x
            elif c in "OUkopqt":
                arg = self._opt_arg()
                if arg is None:
                    if c == "t":
                        o.selection_list.insert(0, (SEL_TTY, [None]))
                        return
                    raise PsError({
                        "O": "format or sort specification must follow O",
                        "U": "list of users must follow U",
                        "k": "long sort specification must follow 'k'",
                        "o": "format specification must follow o",
                        "p": "list of process IDs must follow p",
                        "q": "List of process IDs must follow q."}[c])
                if c == "O":
                    self._defer(arg, SF_B_O)
                elif c == "k":
                    self._defer(arg, SF_G_sort)
                elif c == "o":
                    self._defer(arg, SF_B_o)
                else:
                    kind, code = {"U": ("uid", SEL_EUID), "p": ("pid", SEL_PID),
                                  "q": ("pid", SEL_PID_QUICK), "t": ("tty", SEL_TTY)}[c]
                    self._parse_list(arg, kind, code)
                return
            elif c == "-":
                raise PsError("embedded '-' among BSD options makes no sense")
            else:
                raise PsError("unsupported option (BSD syntax)")

    # -- GNU
    GNU = ("Group", "User", "cols", "columns", "context", "cumulative", "deselect", "forest",
           "format", "group", "header", "headers", "heading", "headings", "info", "lines",
           "no-header", "no-headers", "no-heading", "no-headings", "noheader", "noheaders",
           "noheading", "noheadings", "pid", "ppid", "quick-pid", "rows", "sid", "sort", "tty",
           "user", "version", "width")

    def _gnu(self) -> None:
        o = self.o
        s = self.argv[self.thisarg][2:]
        sl = len(re.match(r"[^:=]*", s).group())
        if sl > 15:
            raise PsError("unknown gnu long option")
        name = s[:sl]
        if name == "help":
            raise _Help()
        if name not in self.GNU:
            raise PsError("unknown gnu long option")
        lists = {"Group": ("gid", SEL_RGID, "list of real groups must follow --Group"),
                 "User": ("uid", SEL_RUID, "list of real users must follow --User"),
                 "group": ("gid", SEL_EGID, "list of effective groups must follow --group"),
                 "pid": ("pid", SEL_PID, "list of process IDs must follow --pid"),
                 "ppid": ("pid", SEL_PPID, "list of process IDs must follow --ppid"),
                 "quick-pid": ("pid", SEL_PID_QUICK,
                               "List of process IDs must follow --quick-pid."),
                 "sid": ("pid", SEL_SESS, "some sid thing(s) must follow --sid"),
                 "tty": ("tty", SEL_TTY, "list of ttys must follow --tty"),
                 "user": ("uid", SEL_EUID, "list of effective users must follow --user")}
        if name in lists:
            kind, code, message = lists[name]
            arg = self._gnu_arg(s, sl)
            if not arg:
                raise PsError(message)
            self._parse_list(arg, kind, code)
        elif name in ("cols", "width", "columns", "rows", "lines"):
            arg = self._gnu_arg(s, sl)
            value, rest = c_strtoul0(arg) if arg else (0, "x")
            if value >= 1 << 63:
                value -= 1 << 64
            if arg and not rest and 0 < value < 2000000000:
                if name in ("rows", "lines"):
                    o.screen_rows = value
                else:
                    o.screen_cols = value
            else:
                raise PsError("number of rows must follow --rows or --lines"
                              if name in ("rows", "lines") else
                              "number of columns must follow --cols, --width, or --columns")
        elif name == "cumulative":
            if s[sl:]:
                raise PsError("option --cumulative does not take an argument")
            o.include_dead_children = 1
        elif name == "deselect":
            if s[sl:]:
                raise PsError("option --deselect does not take an argument")
            o.negate_selection = 1
        elif name.replace("-", "").startswith("nohead"):
            if s[sl:]:
                raise PsError("option --no-heading does not take an argument")
            if o.header_type:
                raise PsError("only one heading option may be specified")
            o.header_type = HEAD_NONE
        elif name.startswith("head"):
            if s[sl:]:
                raise PsError("option --heading does not take an argument")
            if o.header_type:
                raise PsError("only one heading option may be specified")
            o.header_type = HEAD_MULTI
        elif name == "forest":
            if s[sl:]:
                raise PsError("option --forest does not take an argument")
            o.forest_type = "g"
        elif name == "format":
            arg = self._gnu_arg(s, sl)
            if not arg:
                raise PsError("format specification must follow --format")
            self._defer(arg, SF_G_format)
        elif name == "sort":
            arg = self._gnu_arg(s, sl)
            if not arg:
                raise PsError("long sort specification must follow --sort")
            self._defer(arg, SF_G_sort)
        elif name == "version":
            raise _Version()
        elif name == "context":
            o.format_flags |= FF_Fc
        else:
            raise Unsupported(f"option --{name} is not supported by linmem ps")

    def _trailing_pids(self) -> None:
        """parser.c ``parse_trailing_pids``."""
        pids, pgrps, sids = [], [], []
        for data in self.argv[self.thisarg:]:
            if data.startswith("-"):
                pgrps.append(self._parse_item("pid", data[1:]))
            elif data.startswith("+"):
                sids.append(self._parse_item("pid", data[1:]))
            else:
                pids.append(self._parse_item("pid", data))
        self.thisarg = len(self.argv) - 1
        if pids:
            self.o.selection_list.insert(0, (SEL_PID, pids))
        if pgrps:
            self.o.selection_list.insert(0, (SEL_PGRP, pgrps))
        if sids:
            self.o.selection_list.insert(0, (SEL_SESS, sids))

    @staticmethod
    def _arg_type(s: str) -> str:
        c = s[:1]
        if c.isascii() and c.isalpha():
            return "bsd"
        if c.isdigit():
            return "pid"
        if c == "+":
            return "sess"
        if c != "-":
            return "fail"
        c = s[1:2]
        if c.isascii() and c.isalpha():
            return "sysv"
        if c.isdigit():
            return "pgrp"
        if c != "-":
            return "fail"
        c = s[2:3]
        if c.isascii() and c.isalpha():
            return "gnu"
        if c == "":
            return "end"
        return "fail"

    def _parse_all(self) -> None:
        self.thisarg = 0
        while True:
            self.thisarg += 1
            if self.thisarg >= len(self.argv):
                return
            kind = self._arg_type(self.argv[self.thisarg])
            if kind == "gnu":
                self._gnu()
            elif kind == "sysv" and not self.force_bsd:
                self._sysv()
            elif kind in ("sysv", "bsd"):
                self.o.prefer_bsd_defaults = 1
                self._bsd()
            elif kind in ("pgrp", "sess", "pid"):
                self.o.prefer_bsd_defaults = 1
                self._trailing_pids()
            else:
                raise PsError("garbage option")

    def parse(self) -> Options:
        """parser.c ``arg_parse``: SysV first, then everything again as BSD."""
        self.force_bsd = False
        try:
            self._attempt()
            return self.o
        except PsError as first:
            self.force_bsd = True
            try:
                self._attempt()
            except PsError:
                raise first from None
            return self.o

    def _attempt(self) -> None:
        self.o = Options()
        self.have_gnu_sort = False
        self.o.prefer_bsd_defaults = 1 if self.force_bsd else 0
        self._set_screen_size()
        self._parse_all()
        self._thread_check()
        SortFormat(self).process()
        self._select_bits_setup()
        o = self.o
        if o.w_count and o.screen_cols < 132:
            o.screen_cols = 132
        if o.w_count > 1:
            o.screen_cols = OUTBUF_SIZE

    def _set_screen_size(self) -> None:
        """global.c ``set_screen_size``."""
        o = self.o
        cols, rows = 80, 24
        for fd in (1, 2, 0):
            try:
                size = os.get_terminal_size(fd)
            except (OSError, ValueError):
                continue
            if size.columns > 0 and size.lines > 0:
                cols, rows = size.columns, size.lines
                break
        else:
            try:
                fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    size = os.get_terminal_size(fd)
                    if size.columns > 0 and size.lines > 0:
                        cols, rows = size.columns, size.lines
                except OSError:
                    pass
                finally:
                    os.close(fd)
        try:
            stdout_tty = sys.stdout.isatty()
        except (AttributeError, ValueError):
            stdout_tty = False
        if not stdout_tty:
            cols = OUTBUF_SIZE
        for var in ("COLUMNS", "LINES"):
            value = self.env.get(var)
            if value:
                number, rest = c_strtoul0(value)
                if not rest and 0 < number < OUTBUF_SIZE:
                    if var == "COLUMNS":
                        cols = number
                    else:
                        rows = number
        o.screen_cols, o.screen_rows = cols, rows

    def _thread_check(self) -> None:
        o = self.o
        if o.thread_flags:
            if o.forest_type:
                raise PsError("thread display conflicts with forest display")
            raise Unsupported("thread displays (-L, -T, -m, m, H, M) are not supported "
                              "by linmem ps")

    def _select_bits_setup(self) -> None:
        """select.c ``select_bits_setup``."""
        o = self.o
        if not o.simple_select and not o.prefer_bsd_defaults:
            o.select_bits = 0xAA00
            return
        if not (o.simple_select & (SS_U_a | SS_U_d)):
            switch_val = o.simple_select | SS_B_g
        else:
            switch_val = o.simple_select
        table = {SS_U_a | SS_U_d: 0x3F3F, SS_U_a: 0x0303, SS_U_d: 0x3333,
                 SS_B_g: 0x0A0A, SS_B_g | SS_B_a: 0x0F0F, SS_B_g | SS_B_x: 0xAAAA}
        if switch_val == SS_B_g | SS_B_x | SS_B_a:
            o.all_processes = 1
            o.simple_select = 0
        elif switch_val in table:
            o.select_bits = table[switch_val]
        else:
            raise PsError("process selection options conflict")


class _Version(Exception):
    pass


class _ListFormats(Exception):
    pass


class _Help(Exception):
    pass


class SortFormat:
    """sortformat.c: format and sort lists from the deferred options."""

    def __init__(self, parser: Parser):
        self.p = parser
        self.o = parser.o
        self.already_sort = False
        self.already_format = False

    def one_spec(self, spec: str, override: str | None) -> list[FormatNode] | None:
        """sortformat.c ``do_one_spec`` (a macro gives several columns)."""
        if spec in FORMATS:
            head, pr, sr, width, flags = FORMATS[spec]
            if flags & PIDMAX:
                width = max(self.p.pid_length, len(head))
            if override is not None:
                return [FormatNode(override, pr, max(width, len(override.encode())), flags, sr,
                                   spec)]
            return [FormatNode(head, pr, width, flags, sr, spec)]
        if spec in MACROS:
            out = []
            for item in re.split(r"[, ]", MACROS[spec]):
                out += self.one_spec(item, override)
            return out
        return None

    def format_parse(self, text: str) -> list[FormatNode]:
        """sortformat.c ``format_parse``."""
        try:
            return self._format_parse(text)
        except PsError:
            if "%" in text:
                raise Unsupported("AIX format descriptors are not supported by linmem ps") \
                    from None
            raise

    def _format_parse(self, text: str) -> list[FormatNode]:
        tokens_ok = True
        items = 0
        need = True
        for ch in text + "\0":
            if ch in " ,\t\n\0":
                if need and ch != "\0":
                    tokens_ok = False
                if need and ch == "\0" and items == 0:
                    pass
                need = True
            else:
                if need:
                    items += 1
                need = False
        if not tokens_ok:
            raise PsError("improper format list")
        if not items:
            raise PsError("empty format list")
        walk = text.rstrip(" ,\t\n") if text[-1:] in " ,\t\n" else text
        if text[-1:] in " ,\t\n":
            walk = text[:-1]
        out: list[FormatNode] = []
        rest: str | None = walk
        while items:
            items -= 1
            assert rest is not None
            m = re.search(r"[ ,\t\n]", rest)
            if items and m:
                item, rest = rest[:m.start()], rest[m.end():]
            else:
                item, rest = rest, None
            override = None
            if "=" in item:
                item, override = item.split("=", 1)
            width = None
            if ":" in item:
                item, width_text = item.split(":", 1)
                if (not width_text or not width_text.isdigit() or width_text[0] == "0"
                        or int(width_text) <= 0):
                    raise PsError("column widths must be unsigned decimal numbers")
                width = int(width_text)
            nodes = self.one_spec(item, override)
            if nodes is None:
                raise PsError(f'unknown user-defined format specifier "{item}"')
            if width is not None:
                if len(nodes) > 1:
                    raise PsError("can not set width for a macro (multi-column) format specifier")
                nodes[0].width = width
            out += nodes
        return out

    @staticmethod
    def one_sort(spec: str) -> SortNode | None:
        reverse = 1
        if spec.startswith("-"):
            reverse, spec = -1, spec[1:]
        elif spec.startswith("+"):
            spec = spec[1:]
        if spec not in FORMATS:
            return None
        _, pr, sr, _, _ = FORMATS[spec]
        return SortNode(sr, pr, reverse)

    def long_sort_parse(self, text: str) -> list[SortNode]:
        """sortformat.c ``long_sort_parse`` (returned in application order)."""
        need, items = True, 0
        for ch in text + "\0":
            if ch in " ,\t\n\0":
                if need and ch != "\0":
                    raise PsError("improper sort list")
                need = True
            else:
                if need:
                    items += 1
                need = False
        if not items:
            raise PsError("empty sort list")
        if text[-1:] in " ,\t\n":
            text = text[:-1]
        nodes = []
        for item in re.split(r"[ ,\t\n]", text):
            node = self.one_sort(item)
            if node is None:
                raise PsError("unknown sort specifier")
            nodes.append(node)
        nodes.reverse()
        return nodes

    def verify_short_sort(self, text: str) -> str | None:
        if any(c not in "CGJKMNPRSTUcfgjkmnoprstuvy+-" for c in text):
            return "bad sorting code"
        seen = set()
        for i, c in enumerate(text):
            if c in "+-":
                nxt = text[i + 1:i + 2]
                if not nxt or nxt in "+-":
                    return "bad sorting code"
                continue
            if c == "P" and self.o.forest_type:
                return "PPID sort and forest output conflict"
            if c in seen:
                return "bad sorting code"
            seen.add(c)
        return None

    def short_sort_parse(self, text: str) -> list[SortNode]:
        nodes = []
        direction = 1
        for c in text:
            if c == "+":
                direction = 1
            elif c == "-":
                direction = -1
            else:
                if c not in SHORTSORT:
                    raise PsError("unknown sort specifier")
                node = self.one_sort(SHORTSORT[c])
                if node is None:
                    raise PsError("unknown sort specifier")
                node.reverse = direction
                nodes.append(node)
                direction = 0           # sortformat.c: later codes get 0, which sorts nothing
        nodes.reverse()
        return nodes

    def process(self) -> None:
        """sortformat.c ``process_sf_options``."""
        o = self.o
        per_node_formats: dict[int, list[FormatNode]] = {}
        per_node_sorts: dict[int, list[SortNode]] = {}
        for index in range(len(o.sf_list) - 1, -1, -1):      # oldest first
            text, code = o.sf_list[index]
            if code in (SF_B_o, SF_G_format, SF_U_o):
                per_node_formats[index] = self.format_parse(text)
                self.already_format = True
            elif code == SF_U_O:
                if self.already_format:
                    raise PsError("option -O can not follow other format options")
                nodes = self.format_parse(text)
                self.already_format = True
                per_node_formats[index] = self._o_wrap_after_pid(nodes, "u")
            elif code == SF_B_O:
                err = ("multiple sort options" if self.p.have_gnu_sort or self.already_sort
                       else self.verify_short_sort(text))
                if err is None:
                    per_node_sorts[index] = self.short_sort_parse(text)
                    self.already_sort = True
                    continue
                if self.already_format:
                    raise PsError("option O is neither first format nor sort order")
                try:
                    nodes = self.format_parse(text)
                except PsError:
                    raise PsError(err) from None
                self.already_format = True
                per_node_formats[index] = self._o_wrap_after_pid(nodes, "b")
            else:                                          # SF_G_sort, SF_B_m
                if self.already_sort:
                    raise PsError("multiple sort options")
                per_node_sorts[index] = self.long_sort_parse(text)
                self.already_sort = True
        formats: list[FormatNode] = []
        for index in range(len(o.sf_list) - 1, -1, -1):
            formats += per_node_formats.get(index, [])
        sorts: list[SortNode] = []
        for index in range(len(o.sf_list)):
            sorts += per_node_sorts.get(index, [])
        o.format_list = formats
        o.sort_list = sorts
        if not o.format_flags and not o.format_modifiers and not o.format_list:
            env_format = self.p.env.get("PS_FORMAT")
            if env_format:
                try:
                    o.format_list = self.format_parse(env_format)
                    return
                except PsError as err:
                    print(f"warning: $PS_FORMAT ignored. ({err.what})", file=sys.stderr)
        if o.format_list:
            if o.format_flags:
                raise PsError("conflicting format options")
            if o.format_modifiers:
                raise PsError("can not use output modifiers with user-defined output")
            return
        spec = {0: None, FF_Uf | FF_Ul: None, FF_Uf: None, FF_Ul: None,
                FF_Uj | FF_Ul: "RD_lj", FF_Uj | FF_Uf: "RD_fj", FF_Bj: "OL_j", FF_Bl: "OL_l",
                FF_Bs: "OL_s", FF_Bu: "OL_u", FF_Bv: "OL_v", FF_LX: "OL_X", FF_Lm: "OL_m",
                FF_Fc: "FLASK_context"}
        if o.format_flags not in spec:
            raise PsError("conflicting format options")
        name = spec[o.format_flags]
        if name is None:
            o.format_list = self.generate_sysv_list()
            return
        o.format_list = self.one_spec(name, None)
        self._modifiers()

    def _o_wrap_after_pid(self, nodes, otype):
        """sortformat.c ``O_wrap``: user columns after PID, then the trailer."""
        trailer = "END_BSD" if otype == "b" else "END_SYS5"
        return self.one_spec("pid", None) + nodes + self.one_spec(trailer, None)

    def generate_sysv_list(self) -> list[FormatNode]:
        """sortformat.c ``generate_sysv_list`` (built front to back here)."""
        o = self.o
        ff, fm = o.format_flags, o.format_modifiers
        if (fm & FM_y) and not (ff & FF_Ul):
            raise PsError("modifier -y without format -l makes no sense")
        stack: list[str] = []          # pushed in C order; reversed at the end

        def push(spec):
            stack.append(spec)
        if o.prefer_bsd_defaults:
            push("cmd" if ff else "args")
            push("bsdtime")
            if not (ff & FF_Ul):
                push("stat")
        else:
            push("cmd" if ff & FF_Uf else "ucmd")
            push("time")
        push("tname")
        if ff & FF_Uf:
            push("stime")
        if fm & FM_F:
            if not (fm & FM_P):
                push("psr")
            if not ((ff & FF_Ul) and (fm & FM_y)):
                push("rss")
        if ff & FF_Ul:
            push("wchan")
        if (fm & FM_F) or (ff & FF_Ul):
            push("sz")
        if ff & FF_Ul:
            push("rss" if fm & FM_y else "addr_1")
        if fm & FM_c:
            push("pri")
            push("class")
        elif ff & FF_Ul:
            push("ni")
            push("opri")
        if (ff & (FF_Uf | FF_Ul)) and not (fm & FM_c):
            push("c")
        if fm & FM_P:
            push("psr")
        if fm & FM_j:
            push("sid")
            push("pgid")
        if ff & (FF_Uf | FF_Ul):
            push("ppid")
        push("pid")
        if ff & FF_Uf:
            push("uid_hack")
        elif ff & FF_Ul:
            push("uid")
        if ff & FF_Ul:
            push("s")
            if not (fm & FM_y):
                push("f")
        if fm & FM_M:
            push("label")
        out = []
        for spec in reversed(stack):
            out += self.one_spec(spec, None)
        return out

    def _modifiers(self) -> None:
        """The end of ``process_sf_options``: -j, -y, -c, -M on a macro format."""
        o = self.o
        fl = o.format_list

        def add_after(name, nodes):
            for i, node in enumerate(fl):
                if node.name == name:
                    fl[i + 1:i + 1] = nodes
                    return True
            return False

        def delete(name):
            for i, node in enumerate(fl):
                if node.name == name:
                    del fl[i]
                    return True
            return False
        if o.format_modifiers & FM_j:
            if not add_after("PPID", self.one_spec("pgid", None)):
                if not add_after("PID", self.one_spec("pgid", None)):
                    raise PsError("internal error: no PID or PPID for -j option")
            if not add_after("PGID", self.one_spec("sid", None)):
                raise PsError("lost my PGID")
        if o.format_modifiers & FM_y:
            delete("F")
            if add_after("ADDR", self.one_spec("rss", None)):
                delete("ADDR")
        if o.format_modifiers & FM_c:
            for name in ("%CPU", "CPU", "CP", "C", "NI"):
                delete(name)
            if not add_after("PRI", self.one_spec("class", None)):
                raise PsError("internal error: no PRI for -c option")
            delete("PRI")
            if not add_after("CLS", self.one_spec("pri", None)):
                raise PsError("lost my CLS")
        if o.format_modifiers & FM_M:
            fl[0:0] = self.one_spec("label", None)


# --- the data of one process -----------------------------------------------------------

class System:
    """The machine-wide inputs, read once and only when a column needs them."""

    def __init__(self, proc: str):
        self.proc = proc
        self._boot_tics: int | None = None
        self._btime: int | None = None
        self._memtotal: int | None = None
        self.now = int(time.time())
        self.ttys = rp.TtyNames(proc)
        self.utf8 = rp.utf8_locale()

    def boot_tics(self) -> int:
        """pids.c: ``uptime * Hertz``, as an unsigned long long."""
        if self._boot_tics is None:
            from linmem.procfs.parse import read_uptime
            up, _ = read_uptime(self.proc)
            self._boot_tics = int(up * rp.HERTZ) % rp.U64
        return self._boot_tics

    def btime(self) -> int:
        """output.c ``boot_time``: btime of PROC/stat."""
        if self._btime is None:
            from linmem.procfs.parse import read_stat
            self._btime = read_stat(self.proc)["btime"] % (1 << 32)
        return self._btime

    def memtotal(self) -> int:
        """output.c ``memory_total``: MemTotal of PROC/meminfo."""
        if self._memtotal is None:
            from linmem.procfs.parse import read_meminfo
            self._memtotal = read_meminfo(self.proc).get("MemTotal", 0)
            if not self._memtotal:
                raise InputError(os.path.join(self.proc, "meminfo"), "MemTotal is missing or 0")
        return self._memtotal


class Proc:
    """One process as ``simple_readproc`` fills a proc_t, plus the item values."""

    def __init__(self, system: System, pid: int, uid_gid, stat: dict, status: dict | None,
                 piddir: str):
        self.sys = system
        self.piddir = piddir
        p = dict(stat)
        p["tid"] = p["tgid"] = pid
        p["euid"], p["egid"] = uid_gid
        for key in ("ruid", "suid", "fuid", "rgid", "sgid", "fgid"):
            p.setdefault(key, 0)
        self.has_status = status is not None
        if status is not None:
            threads = status.get("threads", 0)
            if threads:
                p["nlwp"] = threads
                p["tgid"] = status.get("tgid_s", 0)
                p["tid"] = status.get("pid_s", 0)
            else:
                p["nlwp"] = 1
                p["tgid"] = p["tid"] = status.get("pid_s", 0)
            for key, value in status.items():
                if key not in ("threads", "tgid_s", "pid_s"):
                    p[key] = value
            if not p.get("signal"):
                p["signal"] = p.get("_sigpnd", "")
            p.setdefault("supgid", "-")
        self.p = p
        self._cache: dict[str, object] = {}

    def get(self, item: str):
        """The value of a library item (pids.c ``set_pids_*``)."""
        if item in self._cache:
            return self._cache[item]
        value = self._compute(item)
        self._cache[item] = value
        return value

    def _compute(self, item: str):
        p, s = self.p, self.sys
        simple = {
            "ID_TGID": "tgid", "ID_PID": "tid", "ID_TID": "tid", "ID_PPID": "ppid",
            "ID_PGRP": "pgrp", "ID_SESSION": "session", "ID_TPGID": "tpgid", "TTY": "tty",
            "STATE": "state", "NICE": "nice", "NLWP": "nlwp", "PRIORITY": "priority",
            "PRIORITY_RT": "rtprio", "SCHED_CLASS": "sched", "PROCESSOR": "processor",
            "FLAGS": "flags", "FLT_MAJ": "maj_flt", "FLT_MIN": "min_flt",
            "TICS_BEGAN": "start_time", "VSIZE_BYTES": "vsize", "RSS": "rss",
            "RSS_RLIM": "rss_rlim", "ADDR_CODE_END": "end_code",
            "ADDR_CODE_START": "start_code", "ADDR_CURR_EIP": "kstk_eip",
            "ADDR_CURR_ESP": "kstk_esp", "ADDR_STACK_START": "start_stack",
            "ID_EUID": "euid", "ID_RUID": "ruid", "ID_SUID": "suid", "ID_FUID": "fuid",
            "ID_EGID": "egid", "ID_RGID": "rgid", "ID_SGID": "sgid", "ID_FGID": "fgid",
            "TICS_USER": "utime",
        }
        if item in simple:
            return p.get(simple[item], 0)
        if item.startswith("VM_") and item != "VM_USED":
            key = {"VM_RSS_LOCKED": "vm_lock", "VM_RSS_SHARED": "vm_rss_shared"}.get(
                item, item.lower())
            return p.get(key, 0) % rp.U64
        if item == "FLT_MAJ_C":
            return (p["maj_flt"] + p["cmaj_flt"]) % rp.U64
        if item == "FLT_MIN_C":
            return (p["min_flt"] + p["cmin_flt"]) % rp.U64
        if item == "TICS_ALL":
            return (p["utime"] + p["stime"]) % rp.U64
        if item == "TICS_ALL_C":
            return (p["utime"] + p["stime"] + p["cutime"] + p["cstime"]) % rp.U64
        if item == "TIME_ALL":
            return (float(p["utime"]) + p["stime"]) / rp.HERTZ
        if item == "TIME_ELAPSED":
            t = float((s.boot_tics() - p["start_time"]) % rp.U64)
            return t / rp.HERTZ if t > 0 else 0.0
        if item in ("UTILIZATION", "UTILIZATION_C"):
            t = float((s.boot_tics() - p["start_time"]) % rp.U64)
            tics = p["utime"] + p["stime"]
            if item == "UTILIZATION_C":
                tics += p["cutime"] + p["cstime"]
            if t > 0:
                return c_float(c_float(float(tics % rp.U64)) * 100.0) / t
            return 0.0
        if item in ("ID_EUSER", "ID_RUSER", "ID_SUSER", "ID_FUSER"):
            return rp.user_name(p[item[3].lower() + "uid"])
        if item in ("ID_EGROUP", "ID_RGROUP", "ID_SGROUP", "ID_FGROUP"):
            return rp.group_name(p[item[3].lower() + "gid"])
        if item in ("SIGNALS", "SIGBLOCKED", "SIGIGNORE", "SIGCATCH", "SIGPENDING"):
            key = {"SIGNALS": "signal", "SIGBLOCKED": "blocked", "SIGIGNORE": "sigignore",
                   "SIGCATCH": "sigcatch", "SIGPENDING": "_sigpnd"}[item]
            return p.get(key, "")
        if item == "CMD":
            return p["cmd"]
        if item == "CMDLINE":
            return rp.read_cmdline(self.piddir, p["cmd"], p["state"])
        if item == "ENVIRON":
            raw = rp.read_unvectored(os.path.join(self.piddir, "environ"))
            return rp.lib_escape(raw) if raw else b"-"
        if item == "TTY_NAME":
            return s.ttys.name(p["tty"], p["tid"])
        if item == "TTY_NUMBER":
            return s.ttys.name(p["tty"], p["tid"], abbrev_tty=True)
        if item in ("SMAP_PSS", "SMAP_PRV_TOTAL"):
            rollup = self._rollup()
            if item == "SMAP_PSS":
                return rollup["Pss"]
            return (rollup["Private_Clean"] + rollup["Private_Dirty"]) % rp.U64
        if item.startswith("MEM_"):
            statm = self._statm()
            key = {"CODE": "trs", "DATA": "drs", "RES": "resident", "SHR": "share",
                   "VIRT": "size"}[item.split("_")[1]]
            return statm[key] if item.endswith("_PGS") else statm[key] * (rp.PAGE_SIZE // 1024)
        if item.startswith("IO_"):
            return self._io()[item]
        if item in ("OOM_SCORE", "OOM_ADJ"):
            name = "oom_score" if item == "OOM_SCORE" else "oom_score_adj"
            return _read_int(os.path.join(self.piddir, name))
        if item == "WCHAN_NAME":
            return rp.lookup_wchan(os.path.join(s.proc, str(p["tid"])))
        if item == "EXE":
            try:
                target = os.readlink(os.path.join(self.piddir, "exe")).encode(
                    "utf-8", "surrogateescape")
            except OSError:
                return b"-"
            return rp.lib_escape(target[:rp.MAX_BUFSZ - 1])
        if item in ("CGROUP", "CGNAME"):
            return self._cgroup()[item]
        if item == "SUPGIDS":
            return p.get("supgid", "[ duplicate SUPGIDS ]")
        if item == "SUPGROUPS":
            return self._supgroups()
        if item == "ID_LOGIN":
            try:
                with open(os.path.join(self.piddir, "loginuid"), "rb") as fh:
                    data = fh.read(31)
            except OSError:
                return -1
            m = re.match(rb"\s*([+-]?\d+)", data)
            return rp._c_int(int(m.group(1))) if m else 0
        if item in ("AUTOGRP_ID", "AUTOGRP_NICE"):
            try:
                with open(os.path.join(self.piddir, "autogroup"), "rb") as fh:
                    data = fh.read(31)
            except OSError:
                return -1 if item == "AUTOGRP_ID" else 0
            m = re.match(rb"/autogroup-(-?\d+) nice (-?\d+)", data)
            if not m:
                return -1 if item == "AUTOGRP_ID" else 0
            return int(m.group(1) if item == "AUTOGRP_ID" else m.group(2))
        if item == "LXCNAME":
            return self._lxc()
        if item in ("noop", "extra", "TICS_USER_C", "TICS_SYSTEM"):
            return 0
        raise PsError(f"item {item} is not supported by linmem ps")

    def _read_optional(self, name: str) -> bytes | None:
        try:
            return rp.read_bytes(os.path.join(self.piddir, name))
        except OSError:
            return None

    def _rollup(self) -> dict:
        data = self._read_optional("smaps_rollup")
        return rp.smaps2proc(data) if data is not None else dict.fromkeys(rp._ROLLUP_KEYS, 0)

    def _statm(self) -> dict:
        data = self._read_optional("statm")
        names = ("size", "resident", "share", "trs", "lrs", "drs", "dt")
        if data is None:
            return dict.fromkeys(names, 0)
        return rp.statm2proc(data, os.path.join(self.piddir, "statm"))

    def _io(self) -> dict:
        data = self._read_optional("io")
        keys = (("rchar", "IO_READ_CHARS"), ("wchar", "IO_WRITE_CHARS"),
                ("syscr", "IO_READ_OPS"), ("syscw", "IO_WRITE_OPS"),
                ("read_bytes", "IO_READ_BYTES"), ("write_bytes", "IO_WRITE_BYTES"),
                ("cancelled_write_bytes", "IO_WRITE_CBYTES"))
        out = {item: 0 for _, item in keys}
        if data:
            at = 0
            for name, item in keys:
                m = re.compile(rb"\s*" + name.encode() + rb":\s*(\d+)").match(data, at)
                if not m:
                    break
                out[item] = int(m.group(1)) % rp.U64
                at = m.end()
        return out

    def _cgroup(self) -> dict:
        raw = rp.read_unvectored(os.path.join(self.piddir, "cgroup"), sep=b"\0")
        parts = []
        for group in raw.split(b"\0"):
            if not group or group.endswith(b"/"):
                continue
            parts.append(rp.lib_escape(group))
        cgroup = b",".join(parts) or b"-"
        at = cgroup.find(b":name=")
        cgname = cgroup[at + 6:] if at >= 0 and cgroup[at + 6:] else cgroup
        return {"CGROUP": cgroup, "CGNAME": cgname}

    def _supgroups(self) -> str:
        supgid = self.p.get("supgid")
        if supgid is None or supgid.startswith("-"):
            return "-"
        names = []
        for gid in supgid.split(","):
            if gid:
                names.append(rp.group_name(int(gid) % (1 << 32)))
        return ",".join(names) or "-"

    def _lxc(self) -> str:
        data = self._read_optional("cgroup")
        if not data:
            return "-"
        text = data.decode("utf-8", "replace")
        for delim in ("lxc.payload.", "lxc.payload/", "lxc/"):
            at = text.find(delim)
            if at >= 0:
                line = text[at:].split("\n", 1)[0]
                name = line.split(delim)[-1]
                return name.split("/", 1)[0]
        return "-"


def _read_int(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            data = fh.read(63)
    except OSError:
        return 0
    m = re.match(rb"\s*([+-]?\d+)", data)
    return rp._c_int(int(m.group(1))) if m else 0


def read_processes(system: System, pids: list[tuple[int, str]] | None) -> list[Proc]:
    """readproc.c ``readproc`` over the whole tree (or a pid list), in its order."""
    proc = system.proc
    entries = rp.pid_dirs(proc) if pids is None else pids
    out = []
    for pid, _name in entries:
        piddir = os.path.join(proc, str(pid))
        owner = rp.dir_owner(piddir)
        if owner is None:
            continue
        stat_path = os.path.join(piddir, "stat")
        try:
            data = rp.read_bytes(stat_path)
        except OSError:
            continue
        if not data:
            continue
        stat = rp.stat2proc(data, stat_path)
        status = None
        status_path = os.path.join(piddir, "status")
        try:
            status_data = rp.read_bytes(status_path)
        except OSError:
            status_data = None
        if status_data:
            status = rp.status2proc(status_data, status_path)
        out.append(Proc(system, pid, owner, stat, status, piddir))
    return out


# --- printing (output.c) ---------------------------------------------------------------

class Printer:
    """output.c ``show_one_proc`` and the ``pr_*`` functions."""

    def __init__(self, opts: Options, system: System, fmt: list[FormatNode], write):
        self.o = opts
        self.sys = system
        self.fmt = fmt
        self.write = write
        self.max_rightward = OUTBUF_SIZE - 1
        self.forest_prefix = ""
        self.lines_to_next_header = 1
        self.header_gap = -1
        self.did_stuff = False
        self._check_headers()
        self._check_header_width()

    def _check_headers(self) -> None:
        """display.c ``check_headers``."""
        o = self.o
        if o.header_type == HEAD_MULTI:
            self.header_gap = o.screen_rows - 1
            return
        if o.header_type == HEAD_NONE:
            self.lines_to_next_header = -1
            return
        if not any(node.name and node.pr for node in self.fmt):
            self.lines_to_next_header = -1

    def _check_header_width(self) -> None:
        """output.c ``check_header_width``."""
        total = 0
        was_normal = 0
        sigs = 0
        for i, node in enumerate(self.fmt):
            just = node.flags & JUST_MASK
            if just == SIGNAL:
                sigs += 1
            if just == UNLIMITED:
                total += node.width if i + 1 < len(self.fmt) else 3
            else:
                total += node.width
            total += was_normal
            was_normal = 1
        i = 0
        cols = self.o.screen_cols
        while True:
            i += 1
            self.active_cols = cols * i
            if self.active_cols >= total:
                break
            if cols * i >= OUTBUF_SIZE // 2:
                break
        self.wide_signals = total + sigs * 7 <= self.active_cols

    # -- the pr functions: each returns (text, cells)
    def _forest(self) -> str:
        """output.c ``forest_helper``."""
        if not self.forest_prefix:
            return ""
        rightward = min(self.max_rightward, OUTBUF_SIZE - 1)
        out = []
        unixy = self.o.forest_type == "u"
        step = 2 if unixy else 4
        for ch in self.forest_prefix:
            if rightward < step:
                break
            if unixy:
                out.append("  ")
            else:
                out.append({" ": "    ", "L": " \\_ ", "+": " \\_ ", "|": " |  "}[ch])
            rightward -= step
        return "".join(out)

    def _escape(self, raw, cells: int) -> tuple[str, int]:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        return ps_escape(raw, cells, utf8=self.sys.utf8)

    def _text_after_forest(self, raw: bytes, env: bool, limit: int | None = None):
        """pr_args, pr_comm, pr_fname: forest prefix, escaped text, environment."""
        fh = self._forest()
        rightward = self.max_rightward - len(fh)
        if limit is not None and rightward > limit:
            rightward = limit
        text, cells = self._escape(raw, rightward)
        rightward -= cells
        out = fh + text
        if env and self.o.bsd_e_option and rightward > 1:
            e = self._proc.get("ENVIRON")
            if e != b"-":
                out += " "
                rightward -= 1
                etext, ecells = self._escape(e, rightward)
                out += etext
                rightward -= ecells
        return out, self.max_rightward - rightward

    def pr(self, name: str, proc: Proc) -> tuple[str, int]:
        self._proc = proc
        g = proc.get
        o = self.o
        if name == "nop":
            return "-", 1
        if name == "args":
            raw = g("CMD") if o.bsd_c_option else g("CMDLINE")
            return self._text_after_forest(raw, True)
        if name == "comm":
            raw = g("CMDLINE") if o.unix_f_option else g("CMD")
            return self._text_after_forest(raw, True)
        if name == "fname":
            return self._text_after_forest(g("CMD"), False, limit=8)
        if name in ("cgname", "cgroup", "exe", "supgrp"):
            item = {"cgname": "CGNAME", "cgroup": "CGROUP", "exe": "EXE",
                    "supgrp": "SUPGROUPS"}[name]
            text, cells = self._escape(g(item), self.max_rightward)
            return text, cells
        if name == "supgid":
            value = g("SUPGIDS")[:self.max_rightward]
            return value, len(value)
        if name in ("etime", "time"):
            t = int(g("TIME_ELAPSED" if name == "etime" else "TIME_ALL")) % rp.U64
            ss, t = t % 60, t // 60
            mm, t = t % 60, t // 60
            hh, dd = t % 24, (t // 24) % (1 << 32)
            if name == "etime":
                out = (f"{dd}-" if dd else "") + (f"{hh:02d}:" if dd or hh else "") + \
                    f"{mm:02d}:{ss:02d}"
            else:
                out = (f"{dd}-" if dd else "") + f"{hh:02d}:{mm:02d}:{ss:02d}"
            return out, len(out)
        if name == "etimes":
            return self._s(str(int(g("TIME_ELAPSED")) % (1 << 32)))
        if name == "times":
            return self._s(str(int(g("TIME_ALL")) % rp.U64))
        if name in ("c", "pcpu", "cp"):
            total = g("TICS_ALL_C") if o.include_dead_children else g("TICS_ALL")
            jiffies = int(g("TIME_ELAPSED") * rp.HERTZ) % rp.U64
            scale = 100 if name == "c" else 1000
            pcpu = (total * scale // jiffies) % (1 << 32) if jiffies else 0
            if name == "c":
                return self._s("%2u" % min(pcpu, 99))
            if name == "cp":
                return self._s("%3u" % min(pcpu, 999))
            if pcpu > 999:
                return self._s(str(pcpu // 10))
            return self._s(f"{pcpu // 10}.{pcpu % 10}")
        if name == "pgid":
            return self._s(str(g("ID_PGRP") % (1 << 32)))
        if name == "ppid":
            return self._s(str(g("ID_PPID") % (1 << 32)))
        if name in ("vsz", "rss"):
            return self._s(str(g("VM_SIZE" if name == "vsz" else "VM_RSS")))
        if name == "sz":
            return self._s(str(g("VM_SIZE") // (rp.PAGE_SIZE // 1024)))
        if name in ("priority", "opri", "pri_foo", "pri_bar", "pri_baz", "pri", "pri_api"):
            prio = g("PRIORITY")
            value = {"priority": prio, "opri": 60 + prio, "pri_foo": prio - 20,
                     "pri_bar": prio + 1, "pri_baz": prio + 100, "pri": 39 - prio,
                     "pri_api": -1 - prio}[name]
            return self._s(str(value))
        if name == "nice":
            if g("SCHED_CLASS") not in (0, 3, -1):
                return "-", 1
            return self._s(str(g("NICE")))
        if name in ("oom", "oom_adj"):
            return self._s(str(g("OOM_SCORE" if name == "oom" else "OOM_ADJ")))
        if name == "class":
            names = {-1: "-", 0: "TS", 1: "FF", 2: "RR", 3: "B", 4: "ISO", 5: "IDL", 6: "DLN",
                     7: "#7", 8: "#8", 9: "#9"}
            return self._s(names.get(g("SCHED_CLASS"), "?"))
        if name == "rtprio":
            if g("SCHED_CLASS") in (0, -1):
                return "-", 1
            return self._s(str(g("PRIORITY_RT")))
        if name == "sched":
            value = g("SCHED_CLASS")
            return self._s("-" if value == -1 else str(value))
        if name == "wchan":
            w = g("WCHAN_NAME")[:self.max_rightward]
            return w, len(w)
        if name in ("tty4", "tty8"):
            return self._s(g("TTY_NUMBER" if name == "tty4" else "TTY_NAME"))
        if name == "stat":
            out = g("STATE")
            nice = g("NICE")
            if nice < 0:
                out += "<"
            if nice > 0:
                out += "N"
            if g("VM_RSS_LOCKED"):
                out += "L"
            if g("ID_SESSION") == g("ID_TGID"):
                out += "s"
            if g("NLWP") > 1:
                out += "l"
            if g("ID_PGRP") == g("ID_TPGID"):
                out += "+"
            return out, len(out)
        if name == "s":
            return g("STATE"), 1
        if name == "flag":
            return self._s("%o" % ((g("FLAGS") >> 6) & 7))
        if name in ("stackp", "esp", "eip"):
            item = {"stackp": "ADDR_STACK_START", "esp": "ADDR_CURR_ESP",
                    "eip": "ADDR_CURR_EIP"}[name]
            return self._s("%016x" % g(item))
        if name == "bsdtime":
            t = g("TICS_ALL_C") if o.include_dead_children else g("TICS_ALL")
            u = (t // rp.HERTZ) % (1 << 32)
            return self._s("%3u:%02u" % (u // 60, u % 60))
        if name == "bsdstart":
            start = self.sys.btime() + g("TICS_BEGAN") // rp.HERTZ
            ago = max(self.sys.now - start, 0)
            text = time.asctime(time.localtime(start))
            out = (text[4:] if ago > 3600 * 24 else text[10:])[:6]
            return out, 6
        if name in ("dsiz", "tsiz", "drs", "trs"):
            vsize = g("VSIZE_BYTES")
            end, start = g("ADDR_CODE_END"), g("ADDR_CODE_START")
            value = 0
            if vsize:
                if name in ("dsiz", "drs"):
                    value = ((vsize - end + start) % rp.U64) >> 10
                else:
                    value = ((end - start) % rp.U64) >> 10
            if value >= 1 << 63:
                value -= 1 << 64
            return self._s(str(value))
        if name == "swapable":
            return self._s(str((g("VM_DATA") + g("VM_STACK")) % rp.U64))
        if name == "size":
            return self._s(str(g("VSIZE_BYTES")))
        if name in ("minflt", "majflt"):
            kind = "FLT_MIN" if name == "minflt" else "FLT_MAJ"
            value = g(kind + "_C") if o.include_dead_children else g(kind)
            return self._s(str(value))
        if name == "lim":
            value = g("RSS_RLIM")
            if value == rp.U64 - 1:
                return "xx", 2
            return self._s("%5u" % (value >> 10))
        if name == "psr":
            return self._s(str(g("PROCESSOR")))
        if name == "pss":
            return self._s(str(g("SMAP_PSS")))
        if name == "uss":
            return self._s(str(g("SMAP_PRV_TOTAL")))
        if name == "pmem":
            pmem = g("VM_RSS") * 1000 // self.sys.memtotal()
            pmem = min(pmem, 999)
            return self._s("%2u.%u" % (pmem // 10, pmem % 10))
        if name == "lstart":
            t = self.sys.btime() + g("TICS_BEGAN") // rp.HERTZ
            return self._s("%24.24s" % time.asctime(time.localtime(t)))
        if name == "stime":
            return self._s(self._stime(g("TICS_BEGAN")))
        if name == "start":
            t = self.sys.btime() + g("TICS_BEGAN") // rp.HERTZ
            text = list(time.asctime(time.localtime(t)))
            if text[8] == " ":
                text[8] = "0"
            if text[11] == " ":
                text[11] = "0"
            text = "".join(text)
            if (t + 60 * 60 * 24) % rp.U64 > self.sys.now:
                return self._s("%8.8s" % text[11:])
            return self._s("  %6.6s" % text[4:])
        if name in ("tsig", "sig", "sigmask", "sigignore", "sigcatch"):
            item = {"tsig": "SIGPENDING", "sig": "SIGNALS", "sigmask": "SIGBLOCKED",
                    "sigignore": "SIGIGNORE", "sigcatch": "SIGCATCH"}[name]
            return self._s(self._sig(g(item)))
        if name in ("egid", "rgid", "sgid", "fgid", "euid", "ruid", "suid", "fuid"):
            item = "ID_" + name.upper()
            value = g(item)
            return self._s(str(value - (1 << 32) if value >= 1 << 31 else value))
        if name == "luid":
            value = g("ID_LOGIN")
            return self._s("-" if value == -1 else str(value))
        if name in ("ruser", "euser", "fuser", "suser", "egroup", "rgroup", "fgroup", "sgroup"):
            kind = name[0].upper()
            if name.endswith("user"):
                return self._name(g(f"ID_{kind}USER"), g(f"ID_{kind}UID"))
            return self._name(g(f"ID_{kind}GROUP"), g(f"ID_{kind}GID"))
        if name in ("rbytes", "rchars", "rops", "wbytes", "wcbytes", "wchars", "wops"):
            item = {"rbytes": "IO_READ_BYTES", "rchars": "IO_READ_CHARS",
                    "rops": "IO_READ_OPS", "wbytes": "IO_WRITE_BYTES",
                    "wcbytes": "IO_WRITE_CBYTES", "wchars": "IO_WRITE_CHARS",
                    "wops": "IO_WRITE_OPS"}[name]
            return self._s(str(g(item)))
        if name == "procs":
            return self._s(str(g("ID_TGID")))
        if name == "tasks":
            return self._s(str(g("ID_PID")))
        if name == "nlwp":
            return self._s(str(g("NLWP")))
        if name == "sess":
            return self._s(str(g("ID_SESSION")))
        if name == "tpgid":
            return self._s(str(g("ID_TPGID")))
        if name == "sgi_p":
            if g("STATE") == "R":
                return self._s(str(g("PROCESSOR") % (1 << 32)))
            return "*", 1
        if name in ("utilization", "utilization_c"):
            cu = g("UTILIZATION" if name == "utilization" else "UTILIZATION_C")
            if cu > 99.0:
                cu = 99.999
            return self._s("%#.3f" % cu)
        if name == "lxcname":
            return self._s(g("LXCNAME"))
        if name in ("agid", "agnice"):
            return self._s(str(g("AUTOGRP_ID" if name == "agid" else "AUTOGRP_NICE")))
        raise PsError(f"format function {name} is not supported by linmem ps")

    @staticmethod
    def _s(text: str) -> tuple[str, int]:
        text = text[:COLWID - 1]
        return text, len(text)

    def _stime(self, tics: int) -> str:
        """output.c ``pr_stime``."""
        now = time.localtime(self.sys.now)
        t = self.sys.btime() + tics // rp.HERTZ
        then = time.localtime(t)
        fmt = "%H:%M"
        if now.tm_yday != then.tm_yday:
            fmt = "%b%d"
        if now.tm_year != then.tm_year:
            fmt = "%Y"
        return time.strftime(fmt, then)

    def _sig(self, sig: str) -> str:
        """output.c ``help_pr_sig``."""
        if self.wide_signals:
            return sig if len(sig) > 8 else "00000000" + sig
        if len(sig.lstrip("0")) > 8:
            return "<" + sig[-8:]
        if len(sig) < 8:
            return "00000000"[len(sig):] + sig
        return sig[len(sig) - 8:]

    def _name(self, name: str, number: int) -> tuple[str, int]:
        """output.c ``do_pr_name``."""
        if not self.o.user_is_number:
            text, cells = self._escape(name, OUTBUF_SIZE)
            if cells <= self.max_rightward:
                return text, cells
            if self.max_rightward >= 1:
                raw = text.encode()
                if len(raw) >= self.max_rightward and raw[self.max_rightward - 1] < 127:
                    out = raw[:self.max_rightward - 1].decode("utf-8", "replace") + "+"
                    return out, self.max_rightward
        return self._s(str(number % (1 << 32)))

    # -- show_one_proc
    def show(self, proc: Proc | None) -> None:
        """output.c ``show_one_proc`` (None prints the header)."""
        if proc is not None:
            self.lines_to_next_header -= 1
            if self.lines_to_next_header == 0:
                self.lines_to_next_header = self.header_gap
                self.show(None)
        self.did_stuff = True
        correct = actual = dospace = 0
        out = []
        fmt = self.fmt
        for i, node in enumerate(fmt):
            last = i + 1 == len(fmt)
            legit = 0
            if not last:
                self.max_rightward = node.width
                tmpspace = 0
            else:
                tmpspace = correct - actual
                if tmpspace < 1:
                    tmpspace = dospace
                    self.max_rightward = self.active_cols - actual - tmpspace
                else:
                    self.max_rightward = self.active_cols - max(correct, actual)
            if self.max_rightward <= 0:
                self.max_rightward = 0
            elif self.max_rightward >= OUTBUF_SIZE:
                self.max_rightward = OUTBUF_SIZE - 1
            if proc is not None and node.pr:
                text, amount = self.pr(node.pr, proc)
            else:
                text = node.name
                amount = len(text.encode())
            just = node.flags & JUST_MASK
            if just in (LEFT, 0):
                leftpad = 0
            elif just == RIGHT:
                leftpad = max(node.width - amount, 0)
            elif just == SIGNAL:
                if self.wide_signals:
                    leftpad = max(16 - amount, 0)
                    legit = 7
                else:
                    leftpad = max(9 - amount, 0)
            elif just == USER:
                leftpad = max(node.width - amount, 0)
                if not self.o.user_is_number:
                    leftpad = 0
            elif just == WCHAN:
                if self.o.wchan_is_number:
                    leftpad = max(node.width - amount, 0)
                else:
                    if self.active_cols - actual - tmpspace < 1:
                        text = text[:1]
                    leftpad = 0
            else:  # UNLIMITED
                if self.active_cols - actual - tmpspace < 1:
                    text = text[:1]
                leftpad = 0
            space = correct - actual + leftpad
            if space < 1:
                space = dospace
            if space > SPACE_AMOUNT:
                space = SPACE_AMOUNT
            out.append(" " * space + text)
            if last:
                break
            actual += space + amount
            correct += node.width + legit
            if node.pr and fmt[i + 1].pr:
                correct += 1
                dospace = 1
            else:
                dospace = 0
        self.write("".join(out) + "\n")


# --- the whole run (display.c main) ---------------------------------------------------------

def _items_in_stack(opts: Options) -> set:
    """display.c ``finalize_stacks``: the items a result stack carries."""
    items = set(FIXED_ITEMS)
    for node in opts.format_list:
        items.update(PR_ITEMS.get(node.pr, ()))
    for node in opts.sort_list:
        items.update(PR_ITEMS.get(node.pr, ()))
    return items


def _sort_key(item: str, proc: Proc):
    value = proc.get(item)
    if item in STR_SORT:
        return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if item == "STATE":
        return ord(value)
    return value


def _sort(procs: list[Proc], item: str, order: int, present: set) -> list[Proc]:
    """pids.c ``procps_pids_sort``: stable, and a no-op when the item is absent."""
    if order not in (1, -1) or item not in present or len(procs) < 2:
        return procs
    if item == "noop":
        return procs
    if item in VERS_SORT:
        import functools
        cmp = functools.cmp_to_key(lambda a, b: strverscmp(a.get(item), b.get(item)))
        return sorted(procs, key=cmp, reverse=order < 0)
    return sorted(procs, key=lambda p: _sort_key(item, p), reverse=order < 0)


class Selector:
    """select.c ``want_this_proc``."""

    def __init__(self, opts: Options, system: System):
        self.o = opts
        self.sys = system
        self.cached_euid = os.geteuid()
        self._cached_tty: int | None = None

    def cached_tty(self) -> int:
        """The tty of ps itself: here the process PROC/self points to."""
        if self._cached_tty is None:
            path = os.path.join(self.sys.proc, "self", "stat")
            try:
                data = rp.read_bytes(path)
            except OSError:
                raise InputError(path, "cannot read it: selecting by our own terminal needs "
                                       "PROC/self") from None
            self._cached_tty = rp.stat2proc(data, path)["tty"]
        return self._cached_tty

    def _table(self, p: Proc) -> bool:
        index = ((p.get("ID_EUID") == self.cached_euid)
                 | ((p.get("ID_SESSION") == p.get("ID_TGID")) << 1)
                 | ((not p.get("TTY")) << 2))
        bits = self.o.select_bits
        off = bits & (1 << index)
        on = bits & (1 << (index | 8))
        if off == on:               # the tty bit does not matter
            return bool(off)
        index |= (p.get("TTY") == self.cached_tty()) << 3
        return bool(bits & (1 << index))

    def _listed(self, p: Proc) -> bool:
        for typecode, values in self.o.selection_list:
            if typecode == SEL_COMM:
                cmd = p.get("CMD")
                for want in values:
                    if len(cmd) == 15 and len(want) >= 15 and cmd[:15] == want[:15]:
                        return True
                    if cmd[:63] == want[:63]:
                        return True
                continue
            item = {SEL_RUID: "ID_RUID", SEL_EUID: "ID_EUID", SEL_SUID: "ID_SUID",
                    SEL_FUID: "ID_FUID", SEL_RGID: "ID_RGID", SEL_EGID: "ID_EGID",
                    SEL_SGID: "ID_SGID", SEL_FGID: "ID_FGID", SEL_PGRP: "ID_PGRP",
                    SEL_PID: "ID_TGID", SEL_PID_QUICK: "ID_TGID", SEL_PPID: "ID_PPID",
                    SEL_TTY: "TTY", SEL_SESS: "ID_SESSION"}[typecode]
            have = p.get(item) % (1 << 32)
            for want in values:
                if want is None:
                    want = self.cached_tty()
                if have == want % (1 << 32):
                    return True
        return False

    def want(self, p: Proc) -> bool:
        o = self.o
        accepted = True
        if not o.all_processes:
            if (o.simple_select or not o.selection_list) and self._table(p):
                pass
            elif self._listed(p):
                pass
            else:
                accepted = False
        if o.running_only and p.get("STATE") not in ("R", "D"):
            accepted = False
        return (not accepted) if o.negate_selection else accepted


def pid_length(proc: str) -> int:
    """sysinfo.c ``procps_pid_length``: digits of PROC/sys/kernel/pid_max, else 5."""
    try:
        with open(os.path.join(proc, "sys", "kernel", "pid_max"), "rb") as fh:
            line = fh.readline(23)
    except OSError:
        return 5
    if not line:
        return 5
    return len(line) - 1 if line.endswith(b"\n") else len(line)


def run(argv: list[str], proc: str, write=None, env=None) -> int:
    """Run ``ps ARGV`` over ``proc``; return the exit status."""
    write = write or sys.stdout.write
    env = os.environ if env is None else env
    from linmem.procfs.parse import check_proc_dir
    proc = check_proc_dir(proc)
    try:
        opts = Parser(argv, pid_length(proc), env).parse()
    except _Version:
        write(f"ps from {PROCPS_VERSION}\n")
        return 0
    except _Help:
        write(PS_USAGE)
        return 0
    except _ListFormats:
        tests = [("_left", "LLLLLLLL"), ("_left2", "L2L2L2L2"), ("_right", "RRRRRRRRRRR"),
                 ("_right2", "R2R2R2R2R2R"), ("_unlimited", "U"), ("_unlimited2", "U2")]
        rows = tests + [(spec, head) for spec, (head, pr, *_rest) in FORMATS.items()
                        if pr != "nop" and spec != "~"]
        for spec, head in sorted(rows, key=lambda r: r[0].encode()):
            write("%-12.12s %-8.8s\n" % (spec, head))
        return 0
    for node in opts.format_list:
        if node.pr in UNSUPPORTED_PR:
            raise PsError(f"format specifier {node.spec} is not supported by linmem ps "
                          "(procps takes it from outside /proc)")
    for node in opts.sort_list:
        if node.pr in UNSUPPORTED_PR:
            raise PsError("unknown sort specifier")
    quick = [v for t, vals in opts.selection_list if t == SEL_PID_QUICK for v in vals]
    if sum(1 for t, _ in opts.selection_list if t == SEL_PID_QUICK) > 1:
        raise PsError("q/-q/--quick-pid can only be used once.")
    if quick and len(opts.selection_list) > 1:
        raise PsError("q/-q/--quick-pid cannot be combined with other selection options.")
    if quick and opts.forest_type:
        raise PsError("q/-q/--quick-pid cannot be used together with forest type listings.")
    if quick and opts.sort_list:
        raise PsError("q/-q,--quick-pid cannot be used together with sort options.")
    if quick and opts.negate_selection:
        raise PsError("q/-q/--quick-pid cannot be used together with negation switches.")

    system = System(proc)
    printer = Printer(opts, system, opts.format_list, write)
    selector = Selector(opts, system)
    if quick:
        pids = [(pid, str(pid)) for pid in quick]          # in the order given
        procs = read_processes(system, pids)
    else:
        procs = read_processes(system, None)
    if opts.forest_type or opts.sort_list:
        if not procs:
            raise InputError(proc, "no processes (procps: fatal library error, reap)")
        chosen = [p for p in procs if selector.want(p)]
        if chosen:
            present = _items_in_stack(opts)
            sorts = list(opts.sort_list)
            if opts.forest_type:
                if not sorts:
                    sorts = [SortNode("ID_PPID", "ppid", 1)]
                sorts = [SortNode("TICS_BEGAN", "stime", 1)] + sorts
            for node in sorts:
                chosen = _sort(chosen, node.sr, node.reverse, present)
            if opts.forest_type:
                _show_forest(printer, chosen)
            else:
                for p in chosen:
                    printer.show(p)
    else:
        for p in procs:
            if selector.want(p):
                printer.show(p)
    if not printer.did_stuff:
        printer.lines_to_next_header -= 1
        if printer.lines_to_next_header == 0:
            printer.show(None)
        return 1
    return 0


def _show_forest(printer: Printer, procs: list[Proc]) -> None:
    """display.c ``show_forest`` and ``show_tree``."""
    n = len(procs)
    prefix = [""] * (4 * 32 * 1024 + 100)
    limit = len(prefix)

    def show_tree(self_i: int, level: int, have_sibling: bool) -> None:
        if level:
            prefix[level - 1] = "+" if have_sibling else "L"
        printer.forest_prefix = "".join(prefix[:level])
        printer.show(procs[self_i])
        i = 0
        self_pid = procs[self_i].get("ID_PID")
        while True:
            if i >= n:
                return
            if procs[i].get("ID_PPID") == self_pid:
                break
            i += 1
        if level:
            prefix[level - 1] = "|" if have_sibling else " "
        while True:
            if i >= n:
                break
            more = not (i + 1 >= n or procs[i + 1].get("ID_PPID") != self_pid)
            if self_pid == 1 and printer.o.forest_type != "u":
                show_tree(i, level, more)
            else:
                show_tree(i, level + 1 if level + 1 < limit else level, more)
            i += 1
            if not more:
                break
        printer.forest_prefix = "".join(prefix[:level])

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * n + 1000))
    i = n
    while i:
        i -= 1
        parent = procs[i].get("ID_PPID")
        if any(procs[j].get("ID_PID") == parent for j in range(n)):
            continue
        show_tree(i, 0, False)


class PsCommand(click.Command):
    """Prints linmem's ps summary as its help."""

    def get_help(self, ctx):
        return PS_USAGE[:-1]


@click.command("ps", cls=PsCommand,
               context_settings={"help_option_names": ["--help"],
                                 "ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.option("--proc", "proc", default="/proc", metavar="PATH",
              help="proc directory to read (a tree linmem run wrote, or /proc)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def ps(proc, args):
    """Report a snapshot of the current processes, as procps-ng 4.0.2 ps."""
    args = list(args)
    # --proc may also follow ps options
    while "--proc" in args:
        at = args.index("--proc")
        if at + 1 >= len(args):
            raise InputError("ps", "--proc needs a PATH")
        proc = args[at + 1]
        del args[at:at + 2]
    for i, arg in enumerate(list(args)):
        if arg.startswith("--proc="):
            proc = arg[len("--proc="):]
            args.remove(arg)
    status = run(args, proc)
    sys.stdout.flush()
    if status:
        raise SystemExit(status)      # linmem.cli.main passes SystemExit through
