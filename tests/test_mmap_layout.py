"""The x86-64 address-space layout of linmem.mm.mmap against the real kernel.

Reference data in tests/data/host-6.18 was recorded on the development
machine (Linux 6.18, Debian 12) with ``env -i setarch x86_64 -R /bin/cat
/proc/self/{maps,status,stat}``; the ``realkernel`` tests run real programs
again when setarch, strace (and gcc) are there.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import vmatools as T
from hostproc import HOST_DATA
from linmem.mm import mmap as M
from linmem.mm import vma as V

ANON_RW = (V.PROT_READ | V.PROT_WRITE, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
CAT_ARGV = ["/bin/cat", "/proc/self/maps"]


def cat_process(argv=CAT_ARGV) -> V.VmaTree:
    """cat at the moment it reads: exec, malloc's first brk, its 128 KiB buffer."""
    mm = V.VmaTree()
    M.exec_image(mm, "/usr/bin/cat", argv, filename=argv[0])
    M.sys_brk(mm, mm.brk + 0x21000)                 # malloc: 132 KiB top_pad heap
    M.do_mmap(mm, 0, 139264, *ANON_RW)              # cat's read buffer
    mm.check_invariants()
    return mm


def status_kb(text: str, key: str) -> int:
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))


# --- constants and mmap_base ---------------------------------------------------
def test_constants_are_the_kernels():
    assert M.TASK_SIZE == 0x7FFFFFFFF000
    assert M.ELF_ET_DYN_BASE & V.PAGE_MASK == 0x555555554000
    assert M.TASK_UNMAPPED_BASE == 0x2AAAAAAAB000
    assert V.DEFAULT_MAX_MAP_COUNT == 65530 and V.DEFAULT_STACK_GUARD_GAP == 1 << 20


@pytest.mark.parametrize("rlimit, expected", [
    (8 << 20, 0x7FFFF7FFF000),            # 8 MiB + 1 MiB gap < 128 MiB: clamped up
    (64 << 20, 0x7FFFF7FFF000),
    (512 << 20, 0x7FFFDFEFF000),          # 512 MiB + 1 MiB
    (None, 0x155555556000),               # unlimited: 5/6 of the task size
])
def test_mmap_base(rlimit, expected):
    assert M.mmap_base(0, rlimit) == expected


def test_mmap_base_with_randomisation_leaves_room_for_the_stack():
    # The pad grows by the largest stack randomisation (16 GiB) when randomising.
    base = M.mmap_base(0, 8 << 20, randomize=True)
    assert base == M.TASK_SIZE - ((M.STACK_RND_MASK << 12) + (1 << 20) + (8 << 20))


def test_legacy_layout_is_bottom_up_from_a_third():
    mm = V.VmaTree()
    M.arch_pick_mmap_layout(mm, legacy=True)
    assert not mm.topdown and mm.mmap_base == M.TASK_UNMAPPED_BASE
    a = M.vm_mmap(mm, None, 0, 8192, *ANON_RW)
    b = M.vm_mmap(mm, None, 0, 4096, V.PROT_READ, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    assert (a, b) == (M.TASK_UNMAPPED_BASE, M.TASK_UNMAPPED_BASE + 8192)


# --- the exec'ed layout of cat -------------------------------------------------
def test_cat_layout_equals_setarch_R_cat():
    real = T.parse_maps((HOST_DATA / "setarch-R-cat-maps.txt").read_text())
    assert T.maps_rows(cat_process()) == real


def test_cat_vmflags_equal_real_smaps():
    text = (HOST_DATA / "setarch-R-cat-smaps.txt").read_text()
    real = re.findall(r"^VmFlags: (.*)$", text, re.M)[:-1]        # without [vsyscall]
    mm = cat_process(["/bin/cat", "/proc/self/smaps"])
    assert [V.vma_flags_mnemonics(v.flags).strip() for v in mm] == [f.strip() for f in real]


def test_cat_counters_equal_real_status():
    text = (HOST_DATA / "setarch-R-cat-status.txt").read_text()
    mm = cat_process(["/bin/cat", "/proc/self/status"])
    text_kb = ((mm.end_code + 4095) & V.PAGE_MASK) - (mm.start_code & V.PAGE_MASK)
    text_kb = min(text_kb, mm.exec_vm << 12) >> 10                  # task_mem()
    assert mm.total_vm * 4 == status_kb(text, "VmSize") == 2640
    assert mm.data_vm * 4 == status_kb(text, "VmData")
    assert mm.stack_vm * 4 == status_kb(text, "VmStk")
    assert text_kb == status_kb(text, "VmExe")
    assert mm.exec_vm * 4 - text_kb == status_kb(text, "VmLib")
    assert mm.locked_vm == status_kb(text, "VmLck") == 0


def test_cat_mm_fields_equal_real_stat():
    stat = (HOST_DATA / "setarch-R-cat-stat.txt").read_text().split(") ")[1].split()
    field = lambda n: int(stat[n - 3])                              # noqa: E731
    mm = cat_process(["/bin/cat", "/proc/self/stat"])
    assert (mm.start_code, mm.end_code, mm.start_stack) == (field(26), field(27), field(28))
    assert (mm.start_data, mm.end_data, mm.start_brk) == (field(45), field(46), field(47))
    args = (mm.arg_start, mm.arg_end, mm.env_start, mm.env_end)
    assert args == tuple(map(field, (48, 49, 50, 51)))


def test_cat_commit_charge_is_its_accountable_vmas():
    mm = cat_process()
    # private writable VMAs: data 1+1 RELRO page, heap, ld.so/libc data+bss, anon
    assert mm.charged == sum(v.pages for v in mm if v.flags & V.VM_ACCOUNT)
    assert mm.charged == (360 + 132) // 4 + 1 + 4 + 2           # data + stack + RELRO pages


def test_non_pie_python_is_mapped_at_its_link_address():
    mm = V.VmaTree()
    info = M.exec_image(mm, "/usr/bin/python3.11", ["python3.11"])
    first = mm.vmas()[0]
    assert info.load_bias == 0 and first.start == M.ELF_EXEC_BASE
    assert mm.start_brk == 0xACA000              # page after .bss (0xac90b8)
    bss = mm.find_vma(0xA85000)
    assert bss.file is None and (bss.start, bss.end) == (0xA85000, 0xACA000)
    mm.check_invariants()


def test_every_builtin_program_execs():
    for path in M.builtin_images():
        image = M.builtin_image(path)
        if image.interp is None or image.soname is not None:
            continue
        mm = V.VmaTree()
        M.exec_image(mm, path)
        mm.check_invariants()
        assert mm.get_vma_name(mm.vmas()[-1]) == "[stack]"


# --- placement rules -------------------------------------------------------------
def fresh_cat_at_main() -> V.VmaTree:
    mm = V.VmaTree()
    M.exec_image(mm, "/usr/bin/cat", CAT_ARGV, filename="/bin/cat")
    return mm


def test_topdown_placement_and_thp_alignment_as_measured():
    """Addresses a C program got under setarch -R on Linux 6.18 (see /tmp/t.c in the log)."""
    mm = fresh_cat_at_main()
    got = [M.vm_mmap(mm, None, 0, size, *ANON_RW)
           for size in (4096, 1 << 20, 2 << 20, 3 << 20, 4 << 20, (2 << 20) + 4096, 8192, 6 << 20)]
    assert got == [0x7FFFF7FBF000, 0x7FFFF7CD2000, 0x7FFFF7A00000, 0x7FFFF7700000,
                   0x7FFFF7200000, 0x7FFFF6FFF000, 0x7FFFF7FBD000, 0x7FFFF6800000]
    py = V.MappedFile("/usr/bin/python3.11", 6831736)
    assert M.vm_mmap(mm, py, 0, 6831736, V.PROT_READ, V.MAP_PRIVATE) == 0x7FFFF6000000
    assert M.vm_mmap(mm, py, 0, 4 << 20, V.PROT_READ, V.MAP_PRIVATE) == 0x7FFFF5C00000
    shared = M.vm_mmap(mm, None, 0, 4 << 20, ANON_RW[0], V.MAP_SHARED | V.MAP_ANONYMOUS)
    assert shared == 0x7FFFF5800000
    stack = M.vm_mmap(mm, None, 0, 4 << 20, ANON_RW[0], ANON_RW[1] | V.MAP_STACK)
    assert stack == 0x7FFFF5400000 and mm.find_vma(stack).flags & V.VM_NOHUGEPAGE
    mm.check_invariants()


def test_hints_fixed_noreplace_and_mmap_min_addr_as_measured():
    mm = fresh_cat_at_main()
    ro = (V.PROT_READ, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
    M.vm_mmap(mm, None, 0, 4096, *ro)
    assert M.vm_mmap(mm, None, 0, 4 << 20, ANON_RW[0], ANON_RW[1] | V.MAP_STACK) == 0x7FFFF7800000
    M.vm_mmap(mm, None, 0, 4096, *ro)
    noreserve = ANON_RW[1] | V.MAP_NORESERVE
    assert M.vm_mmap(mm, None, 0, 4 << 20, ANON_RW[0], noreserve) == 0x7FFFF7400000
    assert M.vm_mmap(mm, None, 0x10000000, 8192, *ro) == 0x10000000          # free hint: taken
    assert M.vm_mmap(mm, None, 0x10001000, 8192, *ro) == 0x7FFFF7FBC000      # busy: top-down
    assert M.vm_mmap(mm, None, 0x10000000, 2 << 20, *ro) == 0x7FFFF7200000   # hint: no THP
    with pytest.raises(V.SyscallError) as e:
        M.vm_mmap(mm, None, 0x10000000, 8192, ro[0], ro[1] | V.MAP_FIXED_NOREPLACE)
    assert e.value.errno_name == "EEXIST"
    assert M.vm_mmap(mm, None, 0x1000, 8192, *ro) == 0x10000                 # mmap_min_addr


def test_map_fixed_below_vm_mmap_min_addr_is_refused():
    mm = fresh_cat_at_main()
    fixed = (V.PROT_READ, V.MAP_PRIVATE | V.MAP_ANONYMOUS | V.MAP_FIXED)
    assert M.vm_mmap(mm, None, 0x1000, 4096, *fixed) == 0x1000     # as measured (4096 sysctl)
    with pytest.raises(V.SyscallError) as e:
        M.vm_mmap(mm, None, 0, 4096, *fixed)
    assert e.value.errno_name == "EPERM"


def test_stack_guard_gap_is_kept_below_a_growsdown_vma():
    mm = V.VmaTree()
    mm.mmap_base = 0x7F0000000000
    top = mm.mmap_base - (1 << 20)
    mm.mmap_region(top, 1 << 20, V.VM_STACK_FLAGS, top >> 12)
    addr = M.vm_mmap(mm, None, 0, 4096, *ANON_RW)
    assert addr == top - mm.stack_guard_gap - 4096


def test_no_room_is_enomem():
    mm = V.VmaTree()
    mm.mmap_base = mm.mmap_legacy_base = 0x200000
    mm.mmap_min_addr = 0x100000
    M.vm_mmap(mm, None, 0x100000, 0x100000, *ANON_RW)
    mm.mmap_region(0x200000, M.TASK_SIZE - 0x200000, V.VM_READ, 0x200)
    with pytest.raises(V.SyscallError) as e:
        M.vm_mmap(mm, None, 0, 4096, *ANON_RW)
    assert e.value.errno_name == "ENOMEM"


def test_bottom_up_fallback_when_top_down_finds_nothing():
    mm = V.VmaTree()
    mm.mmap_base, mm.mmap_legacy_base = 0x40000000, 0x80000000
    mm.mmap_region(0x10000, 0x40000000 - 0x10000, V.VM_READ, 0x10)
    assert M.vm_mmap(mm, None, 0, 4096, *ANON_RW) == 0x80000000


# --- brk -------------------------------------------------------------------------------
def test_brk_grows_in_place_and_shrinks_by_unmapping():
    mm = fresh_cat_at_main()
    start = mm.start_brk
    assert M.sys_brk(mm, 0) == start                       # query
    assert M.sys_brk(mm, start + 100) == start + 100       # unaligned value remembered
    heap = mm.find_vma(start)
    assert (heap.start, heap.end) == (start, start + 4096) and mm.get_vma_name(heap) == "[heap]"
    assert M.sys_brk(mm, start + 0x21000) == start + 0x21000
    assert mm.map_count == len({id(v) for v in mm}) and mm.find_vma(start) is heap
    assert heap.end == start + 0x21000
    assert M.sys_brk(mm, start + 0x1000) == start + 0x1000
    heap = mm.find_vma(start)             # the split kept a new VMA below, as the kernel does
    assert (heap.start, heap.end) == (start, start + 0x1000)
    assert M.sys_brk(mm, start - 4096) == start + 0x1000   # below start_brk: refused
    assert M.sys_brk(mm, start) == start and mm.find_vma_intersection(start, start + 1) is None
    mm.check_invariants()


def test_brk_stops_below_the_next_mapping():
    mm = fresh_cat_at_main()
    start = mm.start_brk
    M.vm_mmap(mm, None, start + 0x10000, 4096, ANON_RW[0], ANON_RW[1] | V.MAP_FIXED)
    assert M.sys_brk(mm, start + 0xF000) == start + 0xF000
    assert M.sys_brk(mm, start + 0x10000) == start + 0xF000  # newbrk + 1 page would hit it


def test_brk_respects_rlimit_data():
    mm = fresh_cat_at_main()
    mm.rlimit_data = (mm.data_vm + 16) << 12       # may_expand_vm counts every data VMA
    assert M.sys_brk(mm, mm.start_brk + 0x10000) == mm.start_brk + 0x10000
    assert M.sys_brk(mm, mm.start_brk + 0x11000) == mm.start_brk + 0x10000
    mm.rlimit_data = 0x8000                        # check_data_rlimit: brk - start_brk + data
    assert M.sys_brk(mm, mm.start_brk + 0x9000) == mm.start_brk + 0x10000
    assert M.sys_brk(mm, mm.start_brk + 0x4000) == mm.start_brk + 0x4000   # shrinking is fine


# --- randomisation -----------------------------------------------------------------------
def test_randomised_layouts_stay_in_their_windows():
    rng = np.random.default_rng(7)
    for _ in range(20):
        mm = V.VmaTree()
        info = M.exec_image(mm, "/usr/bin/cat", rng=rng)
        bias = info.load_bias - (M.ELF_ET_DYN_BASE & V.PAGE_MASK)
        assert 0 <= bias < 1 << 40 and bias % 4096 == 0
        base0 = M.mmap_base(0, 8 << 20, randomize=True)
        assert base0 - (1 << 40) < mm.mmap_base <= base0
        bss_end = (mm.end_data + 4095) & V.PAGE_MASK
        assert bss_end + 4096 <= mm.start_brk < bss_end + 4096 + (1 << 30)
        stack = mm.vmas()[-1]
        assert M.STACK_TOP - (16 << 30) - 8192 <= stack.end <= M.STACK_TOP
        assert stack.start <= mm.start_stack < stack.end
        mm.check_invariants()


def test_randomisation_is_deterministic_for_a_seed():
    rows = []
    for _ in range(2):
        mm = V.VmaTree()
        M.exec_image(mm, "/usr/bin/ls", rng=np.random.default_rng(42))
        rows.append(T.maps_rows(mm))
    assert rows[0] == rows[1]


# --- the real kernel, live ---------------------------------------------------------------
@pytest.mark.realkernel
def test_live_setarch_cat_equals_model():
    why = T.can_run_real()
    if why:
        pytest.skip(why)
    real = T.parse_maps(T.real_output("/bin/cat", "/proc/self/maps"))
    assert T.maps_rows(cat_process()) == real


@pytest.mark.realkernel
def test_live_unlimited_stack_moves_mmap_base_down():
    why = T.can_run_real()
    if why:
        pytest.skip(why)
    out = subprocess.run(["bash", "-c", "ulimit -s unlimited && exec env -i setarch x86_64 -R "
                          "/bin/cat /proc/self/maps"], check=True, capture_output=True, text=True)
    mm = V.VmaTree(rlimit_stack=None)
    M.exec_image(mm, "/usr/bin/cat", CAT_ARGV, filename="/bin/cat")
    M.sys_brk(mm, mm.brk + 0x21000)
    M.do_mmap(mm, 0, 139264, *ANON_RW)
    assert T.maps_rows(mm) == T.parse_maps(out.stdout)


PY_READ_MAPS = ("import os\nfd = os.open('/proc/self/maps', os.O_RDONLY)\n"
                "buf = bytearray(1 << 20)\n"
                "mv = memoryview(buf)\nn = 0\nwhile True:\n    k = os.readv(fd, [mv[n:]])\n"
                "    if not k: break\n    n += k\nos.write(1, buf[:n])\n")


PY_THREADS = """
import mmap, threading
def work():
    keep = [bytearray(100000) for _ in range(50)]     # malloc arenas of the threads
    big = bytearray(3 << 20)                          # mmap'ed by malloc, freed
for _ in range(4):                                    # one at a time: a replayable order
    t = threading.Thread(target=work)
    t.start()
    t.join()
big = bytearray(64 << 20)
del big
m = mmap.mmap(-1, 5 << 20)
m[0:10] = b"x" * 10
m.madvise(mmap.MADV_DONTNEED, 0, 4096)
shared = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_SHARED)
"""


@pytest.mark.realkernel
@pytest.mark.parametrize("argv", [
    ["/usr/bin/python3.11", "-c", PY_READ_MAPS],
    ["/usr/bin/python3.11", "-c", PY_THREADS + PY_READ_MAPS],
    ["/usr/bin/cat", "/proc/self/maps"],
])
def test_live_strace_replay_gives_the_real_maps(argv, tmp_path):
    why = T.can_run_real()
    if why:
        pytest.skip(why)
    trace, out = T.run_traced(argv, str(tmp_path))
    _no_memory_calls_while_reading_maps(trace)
    r = T.replay(trace)
    r.mm.check_invariants()
    assert T.maps_rows(r.mm) == T.parse_maps(out)


def _no_memory_calls_while_reading_maps(trace: str) -> None:
    lines = trace.splitlines()
    reads = [i for i, ln in enumerate(lines) if re.match(r"p?readv?(64)?\(\d+</proc/\d+/maps>", ln)]
    between = lines[reads[0]:reads[-1]]
    if any(re.match(r"(mmap|munmap|mprotect|brk|mremap)\(", ln) for ln in between):
        pytest.skip("the program changed its mappings while reading maps")


@pytest.mark.realkernel
@pytest.mark.parametrize("argv", [
    ["/usr/bin/ls", "-l", "/usr/bin"],
    ["/usr/bin/bash", "-c", "a=(); for i in {1..3000}; do a+=($i$i$i); done; echo ${#a[@]}"],
])
def test_live_strace_replay_places_every_mapping_like_the_kernel(argv, tmp_path):
    why = T.can_run_real()
    if why:
        pytest.skip(why)
    trace, _ = T.run_traced(argv, str(tmp_path))
    r = T.replay(trace, stop_at_maps_read=False)      # asserts every address on the way
    assert r.calls > 20
    r.mm.check_invariants()


GCC_PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
static char buf[1 << 20];
/* No stdio: its buffers would be malloc'ed between the two dumps. */
static void out(const char *s) { write(1, s, strlen(s)); }
static void dump(const char *path) {
    int fd = open(path, O_RDONLY); size_t n = 0; ssize_t k;
    while ((k = read(fd, buf + n, sizeof buf - n)) > 0) n += k;
    close(fd); write(1, buf, n);
}
int main(int argc, char **argv) {
    char line[64];
    dump("/proc/self/smaps");
    out("--\n");
    for (int i = 1; i < argc; i++) {
        size_t len = strtoul(argv[i], 0, 0);
        void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        snprintf(line, sizeof line, "%p\n", p);
        out(line);
    }
    munmap((char *)0x7ffff7000000, 0x100000);
    mprotect((char *)0x7ffff6c00000, 0x1000, PROT_READ);
    out("--\n");
    dump("/proc/self/maps");
    return 0;
}
"""


@pytest.mark.realkernel
def test_live_c_program_mmaps_land_where_the_model_puts_them(tmp_path):
    why = T.can_run_real() or (None if shutil.which("gcc") else "gcc is not installed")
    if why:
        pytest.skip(why)
    (tmp_path / "m.c").write_text(GCC_PROG)
    subprocess.run(["gcc", "-O1", "-o", str(tmp_path / "m"), str(tmp_path / "m.c")], check=True)
    sizes = ["0x1000", "0x200000", "0x400000", "0x123000", "0x600000", "0x2000", "0x1000000"]
    out = T.real_output(str(tmp_path / "m"), *sizes)
    smaps, addrs, maps = out.split("--\n")
    mm = T.mm_from_smaps(smaps)
    got = [M.vm_mmap(mm, None, 0, int(s, 16), *ANON_RW) for s in sizes]
    assert [f"{a:#x}" for a in got] == addrs.split()
    mm.do_vmi_munmap(0x7FFFF7000000, 0x100000)
    try:
        mm.mprotect(0x7FFFF6C00000, 0x1000, V.PROT_READ)
    except V.SyscallError:
        pass
    assert T.maps_rows(mm) == T.parse_maps(maps)


def test_gap_cache_never_changes_an_answer():
    """Random mmaps and munmaps: the cached search equals the full one every time."""
    import random
    rnd = random.Random(5)
    mm = fresh_cat_at_main()
    mapped = []
    for _ in range(1500):
        if mapped and rnd.random() < 0.35:
            start, size = mapped.pop(rnd.randrange(len(mapped)))
            mm.do_vmi_munmap(start, size)
            continue
        size = rnd.choice([1, 2, 3, 7, 16, 512, 513, 1024]) << 12
        saved = {k: list(v) for k, v in mm.gap_cache.items()}
        mm.gap_cache.clear()
        expected = M.get_unmapped_area(mm, None, 0, size, 0, V.MAP_PRIVATE)
        mm.gap_cache.update(saved)
        addr = M.vm_mmap(mm, None, 0, size, V.PROT_READ, V.MAP_PRIVATE | V.MAP_ANONYMOUS)
        assert addr == expected
        mapped.append((addr, size))
    mm.check_invariants()


def test_special_mappings_cannot_be_split():
    mm = fresh_cat_at_main()
    vdso = next(v for v in mm if v.name == "[vdso]")
    with pytest.raises(V.SyscallError) as e:
        mm.mprotect(vdso.start, 4096, V.PROT_READ)
    assert e.value.errno_name == "EINVAL"
