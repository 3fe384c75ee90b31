"""shmem/tmpfs pages go to swap under memory pressure and come back.

A 96 MiB machine with a 256 MiB swapfile holds 128 MiB of MAP_SHARED
anonymous memory, or of a /dev/shm file, by swapping part of it out
(shmem_writeout: the page-cache slot holds the swap entry, the folio goes
through the swap cache to the swap device); nobody is OOM-killed. Reading
it again swaps it back in (shmem_swapin_folio): a fault that has to read is
major, one that finds its page in the swap cache (swap_cluster_readahead
put it there) minor; read(2) and write(2) swap in without faults. Shmem in
meminfo is the resident pages only; the swapped ones count in smaps' Swap of
the mapping but not in SwapPss nor in VmSwap (MM_SWAPENTS). Truncation
(exit of the last mapper, unlink) and swapoff leave no slot in use.
"""

from __future__ import annotations

import numpy as np
import pytest

from linmem.engine import pgtable as P
from linmem.engine import swapfile as SW
from linmem.engine.readahead import RA_SHMEM, pc_is_swap, pc_swap_slot
from linmem.kernel.machine import Machine
from linmem.mm import vma as V
from linmem.mm.vmstat import node_item, vm_event
from linmem.procfs.meminfo import render_meminfo
from linmem.procfs.pid import pid_files

MiB = 1 << 20
PAGES = 128 * MiB // 4096


def ev(m, name):
    return int(m.page_alloc.S.events[vm_event(name)])


def nd(m, name):
    return int(m.node_stat[node_item(name)])


def machine(page_cluster=None):
    sysctl = {} if page_cluster is None else {"vm.page-cluster": page_cluster}
    m = Machine(ram=96 * MiB, sysctl=sysctl)
    m.kernel.swap.swapon("/swapfile", 256 * MiB)
    return m


def swap_used(m):
    return m.total_swap_pages - m.nr_swap_pages


def entries(m, fid):
    """The file's page-cache slots: pfns, -1, or swap entries."""
    K = m.kernel.mem.K
    base, n = int(K.f_base[fid]), int(K.f_npages[fid])
    return K.pc[base:base + n].astype(np.int64)


def meminfo_kb(m, field):
    for line in render_meminfo(m).splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def smaps_of(m, task, start):
    """The smaps block of the VMA starting at ``start``, as a dict of kB."""
    text = pid_files(m.kernel, task)[f"{task.pid}/smaps"]
    block = text[text.index(f"{start:x}-"):]
    out = {}
    for line in block.splitlines()[1:]:
        if line.startswith("VmFlags"):
            break
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def status_kb(m, task, field):
    for line in pid_files(m.kernel, task)[f"{task.pid}/status"].splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def write_file(m, task, path, size):
    pos = 0
    while pos < size:
        n, seconds = m.kernel.write_file(task, path, pos, size - pos)
        pos += n
        m.advance(seconds)


# --------------------------------------------------------------------------
# MAP_SHARED anonymous memory

@pytest.fixture(scope="module")
def shared():
    """128 MiB of MAP_SHARED|MAP_ANONYMOUS memory written on the 96 MiB machine."""
    m = machine()
    k = m.kernel
    task = k.spawn("/usr/bin/sleep", ["sleep", "100"])
    addr = k.mmap(task, 128 * MiB, V.PROT_READ | V.PROT_WRITE, V.MAP_SHARED | V.MAP_ANONYMOUS)
    vma = next(v for v in task.mm.vmas.vmas() if v.start == addr)
    fid = k.file_id(vma.file)
    status, _ = k.access(task, np.arange(addr, addr + 128 * MiB, 4096, dtype=np.int64), True)
    return m, task, addr, fid, status


def test_writing_more_shared_memory_than_ram_swaps_instead_of_oom_killing(shared):
    m, task, _addr, fid, status = shared
    assert status == 0 and task.state != "Z" and ev(m, "oom_kill") == 0
    assert m.kernel.mem.K.ra[fid, RA_SHMEM]
    slots = entries(m, fid)
    swapped = int(pc_is_swap(slots).sum())
    resident = int((slots >= 0).sum())
    assert swapped > 32 * MiB // 4096                  # at least what RAM cannot hold
    assert resident + swapped == PAGES                 # every page is somewhere
    assert ev(m, "pswpout") >= swapped                 # each was written to the swapfile
    assert swap_used(m) >= swapped
    m.check_invariants()


def test_shmem_counts_the_resident_pages_only(shared):
    m, task, addr, fid, _status = shared
    resident = int((entries(m, fid) >= 0).sum())
    assert nd(m, "nr_shmem") == resident                # shmem_delete_from_page_cache
    assert meminfo_kb(m, "Shmem") == resident * 4
    # RssShmem (MM_SHMEMPAGES) is what the page table maps, no more
    rss_shmem = m.kernel.mem.rss(task.mm.id)[3]
    assert rss_shmem <= resident and status_kb(m, task, "RssShmem") == rss_shmem * 4


def test_shmem_swap_is_in_smaps_swap_but_not_in_swap_pss_nor_vmswap(shared):
    m, task, addr, fid, _status = shared
    swapped = int(pc_is_swap(entries(m, fid)).sum())
    block = smaps_of(m, task, addr)
    assert block["Swap"] == swapped * 4                 # shmem_swap_usage()
    assert block["SwapPss"] == 0                        # only swap PTEs feed SwapPss
    swapents = m.kernel.mem.rss(task.mm.id)[2]
    assert status_kb(m, task, "VmSwap") == swapents * 4  # MM_SWAPENTS: no shmem
    assert swapents + swapped <= swap_used(m)


def test_a_page_still_in_the_swap_cache_comes_back_with_a_minor_fault(shared):
    m, task, addr, fid, _status = shared
    K = m.kernel.mem.K
    slots = entries(m, fid)
    cached = [i for i in np.flatnonzero(pc_is_swap(slots))
              if K.swap_cache[pc_swap_slot(slots[i])] != 0]
    assert cached, "reclaim left written folios in the swap cache"
    index = int(cached[0])
    slot = int(pc_swap_slot(slots[index]))
    minflt, majflt = m.kernel.mem.faults(task.pid)
    pswpin = ev(m, "pswpin")
    status, _ = m.kernel.access(task, np.array([addr + index * 4096]), False)
    assert status == 0
    assert m.kernel.mem.faults(task.pid) == (minflt + 1, majflt)
    assert ev(m, "pswpin") == pswpin
    assert entries(m, fid)[index] >= 0                  # back in the page cache
    assert K.swap_map[slot] == 0 and K.swap_cache[slot] == 0   # and the slot is free
    m.check_invariants()


def test_reading_it_back_swaps_it_in_with_the_right_fault_counts(shared):
    m, task, addr, fid, _status = shared
    swapped = int(pc_is_swap(entries(m, fid)).sum())
    minflt, majflt = m.kernel.mem.faults(task.pid)
    before = {name: ev(m, name) for name in ("pgmajfault", "pswpin", "swap_ra", "swap_ra_hit")}
    status, _ = m.kernel.access(task, np.arange(addr, addr + 128 * MiB, 4096, dtype=np.int64),
                                False)
    assert status == 0 and ev(m, "oom_kill") == 0
    d = {name: ev(m, name) - before[name] for name in before}
    minflt2, majflt2 = m.kernel.mem.faults(task.pid)
    majors = majflt2 - majflt
    # every page swapped out faults once at least (fault-around maps only
    # cached pages); a fault reads its page (major) or finds it in the swap
    # cache, where the cluster readahead of another one put it (minor)
    assert (minflt2 - minflt) + majors >= swapped
    assert majors == d["pgmajfault"] > 0
    assert d["pswpin"] == majors + d["swap_ra"]
    assert d["swap_ra_hit"] > 0
    assert majors * 8 >= d["pswpin"]                    # at most 2^page-cluster per read
    assert majors < d["pswpin"] // 4                    # the readahead did most of it
    m.check_invariants()


def test_exit_frees_every_slot(shared):
    m, task, _addr, _fid, _status = shared
    m.kernel.exit(task)
    assert m.nr_swap_pages == m.total_swap_pages
    assert nd(m, "nr_shmem") == 0 and nd(m, "nr_swapcached") == 0
    assert meminfo_kb(m, "SwapFree") == meminfo_kb(m, "SwapTotal")
    m.check_invariants()


def test_without_readahead_every_page_read_back_is_a_major_fault():
    """page-cluster 0: swap_cluster_readahead reads the faulting page only."""
    m = machine(page_cluster=0)
    k = m.kernel
    task = k.spawn("/usr/bin/sleep", ["sleep", "100"])
    addr = k.mmap(task, 128 * MiB, V.PROT_READ | V.PROT_WRITE, V.MAP_SHARED | V.MAP_ANONYMOUS)
    assert k.access(task, np.arange(addr, addr + 128 * MiB, 4096, dtype=np.int64), True)[0] == 0
    majflt, pswpin = k.mem.faults(task.pid)[1], ev(m, "pswpin")
    assert k.access(task, np.arange(addr, addr + 128 * MiB, 4096, dtype=np.int64), False)[0] == 0
    assert ev(m, "swap_ra") == 0
    assert k.mem.faults(task.pid)[1] - majflt == ev(m, "pswpin") - pswpin > 0
    m.check_invariants()
    k.exit(task)
    assert m.nr_swap_pages == m.total_swap_pages
    m.check_invariants()


# --------------------------------------------------------------------------
# a /dev/shm file

@pytest.fixture(scope="module")
def tmpfs():
    m = machine()
    task = m.kernel.spawn("/usr/bin/sleep", ["sleep", "100"])
    write_file(m, task, "/dev/shm/big", 128 * MiB)
    fid = m.kernel.fs.inodes["/dev/shm/big"].fid
    return m, task, fid


def test_a_tmpfs_file_larger_than_ram_swaps(tmpfs):
    m, task, fid = tmpfs
    slots = entries(m, fid)
    swapped = int(pc_is_swap(slots).sum())
    assert ev(m, "oom_kill") == 0 and swapped > 0
    assert int((slots >= 0).sum()) + swapped == PAGES
    assert nd(m, "nr_shmem") == int((slots >= 0).sum())
    m.check_invariants()


def test_drop_caches_leaves_shmem_and_its_swap_alone(tmpfs):
    m, task, fid = tmpfs
    before = entries(m, fid).copy()
    used, shmem = swap_used(m), nd(m, "nr_shmem")
    m.write_sysctl("vm.drop_caches", 3)
    assert (entries(m, fid) == before).all()
    assert swap_used(m) == used and nd(m, "nr_shmem") == shmem
    m.check_invariants()


def test_read_and_write_swap_in_without_faults(tmpfs):
    m, task, fid = tmpfs
    k = m.kernel
    faults = k.mem.faults(task.pid)
    pgfault, pgmajfault, pswpin = ev(m, "pgfault"), ev(m, "pgmajfault"), ev(m, "pswpin")
    slots = entries(m, fid)
    first = int(np.flatnonzero(pc_is_swap(slots))[0])
    k.read_file(task, "/dev/shm/big", np.array([first * 4096]), 4096)   # SGP_READ
    assert entries(m, fid)[first] >= 0
    assert ev(m, "pswpin") > pswpin
    slots = entries(m, fid)
    second = int(np.flatnonzero(pc_is_swap(slots))[0])
    k.write_file(task, "/dev/shm/big", second * 4096, 4096)           # SGP_WRITE
    page = int(entries(m, fid)[second])
    assert page >= 0
    from linmem.mm.frames import PG_dirty
    assert k.mem.K.flags[page] & PG_dirty
    assert k.mem.faults(task.pid) == faults                             # no fault
    assert (ev(m, "pgfault"), ev(m, "pgmajfault")) == (pgfault, pgmajfault)
    m.check_invariants()
    k.read_file(task, "/dev/shm/big")                                   # all of it
    assert ev(m, "oom_kill") == 0
    m.check_invariants()


def test_unlinking_the_file_frees_every_slot(tmpfs):
    m, task, fid = tmpfs
    assert swap_used(m) > 0
    assert m.kernel.unlink(task, "/dev/shm/big")
    assert m.nr_swap_pages == m.total_swap_pages
    assert nd(m, "nr_shmem") == 0 and nd(m, "nr_swapcached") == 0
    m.check_invariants()


def test_swapoff_brings_a_tmpfs_file_back():
    m = machine()
    k = m.kernel
    task = k.spawn("/usr/bin/sleep", ["sleep", "100"])
    write_file(m, task, "/dev/shm/half", 40 * MiB)
    hog = k.spawn("/usr/bin/sleep", ["sleep", "100"])
    a = k.mmap(hog, 96 * MiB, V.PROT_READ | V.PROT_WRITE, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    assert k.access(hog, np.arange(a, a + 96 * MiB, 4096, dtype=np.int64), True)[0] == 0
    fid = k.fs.inodes["/dev/shm/half"].fid
    assert pc_is_swap(entries(m, fid)).any()
    k.exit(hog)
    m.check_invariants()
    k.swap.swapoff("/swapfile")
    slots = entries(m, fid)
    assert not pc_is_swap(slots).any() and (slots >= 0).all()
    assert nd(m, "nr_shmem") == 40 * MiB // 4096
    assert m.total_swap_pages == 0 and nd(m, "nr_swapcached") == 0
    assert not (m.kernel.mem.K.swap_map[m.kernel.mem.K.swap_map != SW.SWAP_MAP_BAD]).any()
    m.check_invariants()
    assert int(k.mem.K.ctl[P.C_SWAP_PEND_VA]) == -1
