"""Overcommit accounting (mm/util.c).

Only the limit exists so far; Committed_AS and ``__vm_enough_memory`` come
with processes and their mappings.
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
