"""Processes against the real kernel's numbers: demand paging, fork and
copy-on-write, THP, madvise, mlock, brk, overcommit; and the per-process views.

The real numbers come from tests/data/realkernel/faults-6.18.json, measured
on the reference machines by tests/realkernel (getrusage around each phase).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from linmem.kernel.machine import Machine
from linmem.mm import mmap as mmaplib
from linmem.mm import vma as V
from linmem.mm.vmstat import node_item
from linmem.procfs.pid import pid_files

RECORDED = json.loads((Path(__file__).parent / "data/realkernel/faults-6.18.json").read_text())
MiB = 1 << 20


def real(experiment: str, phase: str) -> int:
    return RECORDED["results"][experiment]["phases"][phase]["minflt"]


class Proc:
    """A process of a fresh machine, driven through the kernel API."""

    def __init__(self, machine=None, program="/usr/bin/sleep"):
        self.m = machine or Machine(ram=2 << 30)
        self.k = self.m.kernel
        self.task = self.k.spawn(program, ["sleep", "100"])

    def mmap(self, size, prot=V.PROT_READ | V.PROT_WRITE, flags=V.MAP_PRIVATE | V.MAP_ANONYMOUS):
        return mmaplib.vm_mmap(self.task.mm.vmas, None, 0, size, prot, flags)

    def faults_of(self, task, fn):
        before = self.k.mem.faults(task.pid)[0]
        fn()
        return self.k.mem.faults(task.pid)[0] - before

    def touch(self, task, addr, size, write=True):
        status, _ = self.k.access(task, np.arange(addr, addr + size, 4096), write)
        assert status == 0

    def madvise(self, addr, size, advice):
        return self.task.mm.vmas.madvise(addr, size, advice)


SIZES = [4, 16, 64]


@pytest.mark.parametrize("mib", SIZES)
@pytest.mark.parametrize("huge", [False, True])
def test_first_touch_and_read_then_write(mib, huge):
    suffix = " hugepage" if huge else ""
    p = Proc()
    a = p.mmap(mib * MiB)
    if huge:
        p.madvise(a, mib * MiB, V.MADV_HUGEPAGE)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, mib * MiB)) == \
        real(f"anon-first-touch {mib}M{suffix}", "touch")
    b = p.mmap(mib * MiB)
    if huge:
        p.madvise(b, mib * MiB, V.MADV_HUGEPAGE)
    exp = f"anon-read-then-write {mib}M{suffix}"
    assert p.faults_of(p.task, lambda: p.touch(p.task, b, mib * MiB, write=False)) == \
        real(exp, "read")
    assert p.faults_of(p.task, lambda: p.touch(p.task, b, mib * MiB)) == real(exp, "write")


@pytest.mark.parametrize("mib", SIZES)
@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("huge", [False, True])
def test_fork_copy_on_write(mib, fraction, huge):
    exp = f"fork-cow {mib}M {fraction}" + (" hugepage" if huge else "")
    p = Proc()
    size = mib * MiB
    a = p.mmap(size)
    if huge:
        p.madvise(a, size, V.MADV_HUGEPAGE)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "parent-touch")
    child = p.k.fork(p.task)
    assert p.faults_of(child, lambda: p.touch(child, a, size, write=False)) == \
        real(exp, "child-read")
    part = int(size * fraction)
    assert p.faults_of(child, lambda: p.touch(child, a, part)) == real(exp, "child-write")
    p.k.exit(child)
    p.k.reap(p.task, child)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "parent-rewrite")
    p.m.check_invariants()


@pytest.mark.parametrize("mib", SIZES)
def test_madvise_dontneed_and_free(mib):
    p = Proc()
    size = mib * MiB
    exp = f"madvise-dontneed {mib}M"
    a = p.mmap(size)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "touch")
    for _v, s, e in p.madvise(a, size, V.MADV_DONTNEED):
        p.k.mem.zap(p.task.mm.id, s, e)
    assert p.k.mem.rss(p.task.mm.id)[1] == 0
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "touch-again")


@pytest.mark.parametrize("mib", SIZES)
def test_mlock_faults_everything_in(mib):
    p = Proc()
    size = mib * MiB
    a = p.mmap(size)

    def mlock():
        for vma, s, e in p.task.mm.vmas.mlock(a, size):
            p.touch(p.task, s, e - s, write=True)
    assert p.faults_of(p.task, mlock) == real(f"mlock {mib}M", "mlock")
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(f"mlock {mib}M", "touch")
    assert p.task.mm.vmas.locked_vm == size // 4096


def test_pss_of_a_page_shared_by_n_processes_is_a_nth():
    m = Machine(ram=2 << 30)
    k = m.kernel
    tasks = [k.spawn("/usr/bin/cat", ["cat"]) for _ in range(3)]
    for t in tasks:
        text = next(v for v in t.mm.vmas.vmas() if v.perms() == "r-xp" and v.file.path.endswith("libc.so.6"))
        k.access(t, np.arange(text.start, text.end, 4096), False)
    smaps = pid_files(k, tasks[0])[f"{tasks[0].pid}/smaps"]
    block = smaps.split("libc.so.6\n")[2].split("VmFlags")[0]     # the r-xp mapping
    rss = int(re.search(r"Rss:\s+(\d+)", block).group(1))
    pss = int(re.search(r"Pss:\s+(\d+)", block).group(1))
    # each page counts (4096 << 12) // 3 in PSS's fixed point, truncated when printed
    pages = rss // 4
    assert rss > 1000 and pss == ((pages * ((4096 << 12) // 3)) >> 12) >> 10
    assert int(re.search(r"Shared_Clean:\s+(\d+)", block).group(1)) == rss


def test_status_counters_equal_the_page_tables():
    p = Proc()
    a = p.mmap(8 * MiB)
    p.touch(p.task, a, 4 * MiB)
    files = pid_files(p.k, p.task)
    status = files[f"{p.task.pid}/status"]
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1))
    rollup = files[f"{p.task.pid}/smaps_rollup"]
    assert rss == int(re.search(r"Rss:\s+(\d+)", rollup).group(1))
    assert anon == int(re.search(r"Anonymous:\s+(\d+)", rollup).group(1)) == 4096
    statm = files[f"{p.task.pid}/statm"].split()
    assert int(statm[1]) * 4 == rss


def test_maps_lines_have_the_kernels_padding():
    p = Proc(program="/usr/bin/cat")
    maps = pid_files(p.k, p.task)[f"{p.task.pid}/maps"]
    for line in maps.splitlines():
        m = re.match(r"^[0-9a-f]{8,}-[0-9a-f]{8,} [r-][w-][x-][ps] [0-9a-f]{8} "
                     r"[0-9a-f]{2}:[0-9a-f]{2} \d+ ", line)
        assert m, line
        if len(line) > m.end():                      # a name: it starts at column 74
            assert line[73] != " " and line[m.end():73].strip() == ""
    assert maps.splitlines()[-1].startswith("ffffffffff600000-ffffffffff601000 --xp")


def test_overcommit_never_refuses_the_first_mapping_past_the_limit():
    """vm.overcommit_memory=2, ratio 10: CommitLimit = MemTotal * 10% (no swap);
    a root task may commit up to CommitLimit - min(total_vm/32, user_reserve)."""
    m = Machine(ram=1 << 30, sysctl={"vm.overcommit_memory": 2, "vm.overcommit_ratio": 10})
    p = Proc(m)
    limit = m.totalram_pages * 10 // 100
    committed = m.committed_as
    reserve = int(m.sysctl["user_reserve_kbytes"]) // 4
    room = limit - min(p.task.mm.vmas.total_vm // 32, reserve) - committed
    with pytest.raises(V.SyscallError) as err:
        p.mmap(room * 4096)                                # Committed_AS would reach it
    assert err.value.errno_name == "ENOMEM"
    assert m.committed_as == committed
    p.mmap((room - 1) * 4096)                              # one page less fits
    assert m.committed_as == committed + room - 1


def test_overcommit_guess_refuses_only_more_than_ram_plus_swap():
    m = Machine(ram=1 << 30)
    p = Proc(m)
    p.mmap(m.totalram_pages * 4096)                        # exactly RAM: allowed
    with pytest.raises(V.SyscallError):
        p.mmap((m.totalram_pages + 1) * 4096)
    p.mmap(m.totalram_pages * 2 * 4096, flags=V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_NORESERVE)


def test_no_page_is_lost_when_every_process_exits():
    m = Machine(ram=2 << 30)
    p = Proc(m, program="/usr/bin/cat")
    text = next(v for v in p.task.mm.vmas.vmas() if v.perms() == "r-xp")
    p.touch(p.task, text.start, text.end - text.start, write=False)
    a = p.mmap(32 * MiB)
    p.touch(p.task, a, 32 * MiB)
    child = p.k.fork(p.task)
    p.touch(child, a, 16 * MiB)
    p.k.exit(child)
    p.k.reap(p.task, child)
    p.k.exit(p.task)
    pa = m.page_alloc
    file_pages = int(m.node_stat[node_item("nr_file_pages")])    # the page cache stays
    assert file_pages > 0
    assert pa.nr_free_pages() + pa.pcp_pages() + file_pages == m.totalram_pages
    assert m.committed_as == 0
    m.check_invariants()
    m.write_sysctl("vm.drop_caches", 1)          # the clean, unmapped page cache goes
    pa.drain_all_pages()
    assert int(m.node_stat[node_item("nr_file_pages")]) == 0
    assert pa.nr_free_pages() == m.totalram_pages                # all of boot's free pages
    m.check_invariants()


def test_smaps_has_the_fields_of_a_real_process_in_order():
    """The labels of each smaps block and of smaps_rollup, as this kernel prints them."""
    import subprocess
    p = Proc(program="/usr/bin/cat")
    files = pid_files(p.k, p.task)
    labels = lambda text: [ln.split(":")[0] for ln in text.splitlines()  # noqa: E731
                           if not re.match(r"^[0-9a-f]+-", ln)]
    ours = labels(files[f"{p.task.pid}/smaps"].split("\n", 1)[1].split("VmFlags")[0] + "VmFlags:")
    expected = ["Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty",
                "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
                "Anonymous", "KSM", "LazyFree", "AnonHugePages", "ShmemPmdMapped",
                "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss",
                "Locked", "THPeligible", "ProtectionKey", "VmFlags"]
    assert ours == expected
    if Path("/proc/self/smaps").exists():
        real = subprocess.run(["cat", "/proc/self/smaps"], capture_output=True, text=True).stdout
        first = real.split("\n", 1)[1].split("VmFlags")[0] + "VmFlags:"
        assert labels(first) == expected
        real_rollup = subprocess.run(["cat", "/proc/self/smaps_rollup"], capture_output=True,
                                     text=True).stdout
        assert labels(files[f"{p.task.pid}/smaps_rollup"]) == labels(real_rollup)


@pytest.mark.parametrize("mib", SIZES)
def test_map_populate_and_mlock_onfault(mib):
    p = Proc()
    size = mib * MiB
    flags = V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_POPULATE
    assert p.faults_of(p.task, lambda: p.k.mmap(p.task, size, 3, flags)) == \
        real(f"populate {mib}M", "mmap-populate")
    a = p.k.mmap(p.task, size, 3, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    exp = f"mlock {mib}M onfault"
    assert p.faults_of(p.task, lambda: p.k.mlock(p.task, a, size, onfault=True)) == \
        real(exp, "mlock")
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "touch")
    assert p.faults_of(p.task, lambda: p.k.munlock(p.task, a, size)) == real(exp, "munlock")


def test_mlock_moves_present_pages_to_the_unevictable_list():
    p = Proc()
    a = p.mmap(8 * MiB)
    p.touch(p.task, a, 8 * MiB)
    node = lambda name: int(p.m.node_stat[node_item(name)])  # noqa: E731
    assert node("nr_inactive_anon") == 2048 and node("nr_unevictable") == 0
    p.k.mlock(p.task, a, 8 * MiB)
    assert node("nr_unevictable") == 2048 and node("nr_inactive_anon") == 0
    assert int(p.m.page_alloc.S.zstat[:, E_NR_MLOCK].sum()) == 2048
    p.k.munlock(p.task, a, 8 * MiB)
    assert node("nr_unevictable") == 0 and node("nr_inactive_anon") == 2048
    p.m.check_invariants()


from linmem.mm.vmstat import NR_MLOCK as E_NR_MLOCK  # noqa: E402


def test_fork_fails_with_enomem_when_the_copy_cannot_be_committed():
    """dup_mmap charges the child's private writable VMAs; under
    overcommit_memory=2 a parent holding most of the limit cannot fork."""
    m = Machine(ram=1 << 30, sysctl={"vm.overcommit_memory": 2, "vm.overcommit_ratio": 50})
    p = Proc(m)
    limit = m.totalram_pages * 50 // 100
    p.mmap((limit * 3 // 5) * 4096)
    committed = m.committed_as
    free_before = m.page_alloc.nr_free_pages() + m.page_alloc.pcp_pages()
    with pytest.raises(V.SyscallError) as err:
        p.k.fork(p.task)
    assert err.value.errno_name == "ENOMEM"
    assert m.committed_as == committed and len(p.k.tasks) == 1
    assert m.page_alloc.nr_free_pages() + m.page_alloc.pcp_pages() == free_before
    m.check_invariants()


def _file_read_faults(p, f, size, advice=None, write=False):
    """mmap ``f``, read every page (then write every page), munmap: the faults."""
    prot = V.PROT_READ | (V.PROT_WRITE if write else 0)
    a = p.k.mmap(p.task, size, prot, V.MAP_PRIVATE, file=f)
    if advice is not None:
        p.k.madvise(p.task, a, size, advice)
    vas = np.arange(a, a + size, 4096)
    before = p.k.mem.faults(p.task.pid)
    p.k.access(p.task, vas, False)
    after = p.k.mem.faults(p.task.pid)
    read = (after[0] - before[0], after[1] - before[1])
    written = None
    if write:
        p.k.access(p.task, vas, True)
        end = p.k.mem.faults(p.task.pid)
        written = (end[0] - after[0], end[1] - after[1])
    p.k.munmap(p.task, a, size)
    return read, written


def _real(experiment):
    res = RECORDED["results"][experiment]
    return {name: (ph["minflt"], ph["majflt"]) for name, ph in res["phases"].items()}, \
        res.get("minflt_range", {})


@pytest.mark.parametrize("mib", [16, 200])
def test_file_mmap_reads_with_fault_around_and_readahead(mib):
    """Cold: one major fault (read-around), then one minor fault per 16 pages
    (fault-around, readahead ahead of the reader); warm: exactly pages / 16;
    MADV_RANDOM cold: a major fault per page; a private write copies each page."""
    p = Proc()
    size = mib * MiB
    name = f"@file{mib}M"
    cold = p.k.open_file(V.MappedFile(f"/data/cold{mib}", size))
    (minor, major), _ = _file_read_faults(p, cold, size)
    real, spread = _real(f"file-mmap-read {name}")
    lo, hi = spread.get("read", [real["read"][0]] * 2)
    assert major == real["read"][1] == 1
    assert lo - 5 <= minor <= hi        # the real kernel adds a few for pages still under I/O
    assert _file_read_faults(p, cold, size)[0] == _real(f"file-mmap-read {name} warm")[0]["read"]
    rnd = p.k.open_file(V.MappedFile(f"/data/random{mib}", size))
    assert _file_read_faults(p, rnd, size, V.MADV_RANDOM)[0] == \
        _real(f"file-mmap-read {name} random")[0]["read"]
    assert _file_read_faults(p, rnd, size, V.MADV_RANDOM)[0] == \
        _real(f"file-mmap-read {name} random warm")[0]["read"]
    priv = p.k.open_file(V.MappedFile(f"/data/private{mib}", size))
    read, written = _file_read_faults(p, priv, size, write=True)
    assert written == _real(f"file-private {name}")[0]["write"]
    p.m.check_invariants()


@pytest.mark.parametrize("mib", SIZES)
def test_shared_anonymous_memory_across_fork(mib):
    """MAP_SHARED|MAP_ANONYMOUS is a shmem object: the child maps the same pages,
    one fault per 64 KiB window (fault-around), writable without faults; the
    parent sees the child's writes without faulting; Shmem counts the pages,
    which go when the last mapping goes."""
    p = Proc()
    size = mib * MiB
    exp = f"fork-shared {mib}M"
    a = p.k.mmap(p.task, size, 3, V.MAP_SHARED | V.MAP_ANONYMOUS)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "parent-touch")
    child = p.k.fork(p.task)
    assert p.faults_of(child, lambda: p.touch(child, a, size, write=False)) == \
        real(exp, "child-read")
    assert p.faults_of(child, lambda: p.touch(child, a, size)) == real(exp, "child-write")
    p.k.exit(child)
    p.k.reap(p.task, child)
    assert p.faults_of(p.task, lambda: p.touch(p.task, a, size)) == real(exp, "parent-rewrite")
    assert int(p.m.node_stat[node_item("nr_shmem")]) == size // 4096
    assert p.k.mem.rss(p.task.mm.id)[3] == size // 4096           # RssShmem
    p.k.munmap(p.task, a, size)
    assert int(p.m.node_stat[node_item("nr_shmem")]) == 0
    p.m.check_invariants()


def test_address_randomisation_comes_from_the_seed():
    def layout(seed, aslr):
        m = Machine(ram=1 << 30, seed=seed)
        m.aslr = aslr
        t = m.kernel.spawn("/usr/bin/cat", ["cat"])
        return [(v.start, v.end) for v in t.mm.vmas.vmas()]
    assert layout(1, False) == layout(2, False)               # off: setarch -R's layout
    assert layout(1, True) == layout(1, True)                 # deterministic per seed
    assert layout(1, True) != layout(2, True) != layout(1, False)
