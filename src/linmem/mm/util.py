"""Overcommit accounting (mm/util.c): CommitLimit, Committed_AS and the
check every accountable mapping passes (__vm_enough_memory).

Private writable mappings (and shared anonymous memory) are "accountable":
their size is charged to Committed_AS (vm_committed_as) when they are made,
whether or not they are ever touched, and the charge is refused according to
vm.overcommit_memory.
"""

from __future__ import annotations

from linmem.units import PAGE_SHIFT


def vm_commit_limit(machine) -> int:
    """CommitLimit in pages.

    Models mm/util.c:vm_commit_limit: overcommit_kbytes when set, else
    (totalram - hugetlb) * overcommit_ratio / 100; plus all swap.
    """
    kbytes = int(machine.sysctl["overcommit_kbytes"])
    if kbytes:
        allowed = kbytes >> (PAGE_SHIFT - 10)
    else:
        allowed = machine.totalram_pages * int(machine.sysctl["overcommit_ratio"]) // 100
    return allowed + machine.total_swap_pages


OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2


def vm_enough_memory(machine, total_vm: int, pages: int, cap_sys_admin: bool = True) -> bool:
    """May ``pages`` more be committed? Charges them to Committed_AS if so.

    Models mm/util.c:__vm_enough_memory. Mode 1 always says yes; mode 0 says
    no only to a single request larger than RAM + swap; mode 2 keeps
    Committed_AS below CommitLimit, less the admin reserve for tasks without
    CAP_SYS_ADMIN, less min(total_vm / 32, user_reserve_kbytes) of the mm.
    """
    machine.committed_as += pages                      # vm_acct_memory
    mode = int(machine.sysctl["overcommit_memory"])
    if mode == OVERCOMMIT_ALWAYS:
        return True
    if mode == OVERCOMMIT_GUESS:
        if pages <= machine.totalram_pages + machine.total_swap_pages:
            return True
    else:
        allowed = vm_commit_limit(machine)
        if not cap_sys_admin:
            allowed -= int(machine.sysctl["admin_reserve_kbytes"]) >> (PAGE_SHIFT - 10)
        reserve = int(machine.sysctl["user_reserve_kbytes"]) >> (PAGE_SHIFT - 10)
        allowed -= min(total_vm // 32, reserve)
        if machine.committed_as < allowed:
            return True
    machine.committed_as -= pages                      # vm_unacct_memory
    return False
