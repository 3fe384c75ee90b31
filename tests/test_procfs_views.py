"""Format fidelity of linmem's /proc views against the real Linux 6.18 kernel.

The reference is this host's own /proc (tests/data/host-6.18: an x86-64 VM
with 24 GiB and 2 CPUs) and the printf formats of fs/proc/meminfo.c and
mm/vmstat.c. Machines of several sizes (64 MiB to 24 GiB x86-64; 1 and 3 GiB
i386) are checked right after boot and after a fixed mix of allocations and
frees, so that the free lists hold blocks of every order and migratetype.

Where the kernel prints a value linmem must reproduce exactly (MemTotal of
the reference machine, CommitLimit, the watermark formula, lowmem_reserve),
the tests assert exact numbers. Known differences from the real kernel are
strict xfails whose reason names the difference: they start failing (XPASS)
once linmem is fixed, so the marker can then be dropped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from linmem import sysctl as sysctl_table
from linmem.engine import buddy as B
from linmem.kernel.machine import Machine
from linmem.mm import gfp as G
from linmem.procfs.tree import proc_files

HOST = Path(__file__).parent / "data" / "host-6.18"
MiB, GiB = 1 << 20, 1 << 30
NR_PAGE_ORDERS = 11
PAGEBLOCK_NR_PAGES = 512
PAGES_PER_SECTION = 1 << (27 - 12)          # SECTION_SIZE_BITS 27 on x86
SWAP_CLUSTER_MAX = 32

SIZES = {
    "x86_64-64MiB": ("x86_64", 64 * MiB),
    "x86_64-1GiB": ("x86_64", 1 * GiB),
    "x86_64-4GiB": ("x86_64", 4 * GiB),
    "x86_64-24GiB": ("x86_64", 24 * GiB),
    "i386-1GiB": ("i386", 1 * GiB),
    "i386-3GiB": ("i386", 3 * GiB),
}
STATES = ("boot", "allocated")
ALL = [f"{size}-{state}" for size in SIZES for state in STATES]
X86_64 = [c for c in ALL if c.startswith("x86_64")]
I386 = [c for c in ALL if c.startswith("i386")]

# The allocation mix: (order, gfp), cycled; every 45th request is a 2 MiB block.
WORKLOAD = [
    (0, G.GFP_KERNEL), (1, G.GFP_HIGHUSER_MOVABLE), (3, G.GFP_HIGHUSER_MOVABLE),
    (0, G.GFP_HIGHUSER_MOVABLE), (2, G.GFP_KERNEL | G._GFP_RECLAIMABLE),
    (0, G.NAMES["GFP_DMA32"]), (4, G.GFP_KERNEL), (0, G.NAMES["GFP_DMA"]),
]
REQUESTS = 140


# --------------------------------------------------------------- machines

@dataclass
class Case:
    """A machine, its rendered /proc files, and the pages the workload moved."""

    machine: Machine
    files: dict[str, str]
    allocated: int = 0      # pages handed out by alloc_pages
    freed: int = 0          # pages given back with free_pages


def allocate_some(m: Machine) -> tuple[int, int]:
    """Run the fixed allocation mix, free every third block; return the page counts."""
    pa = m.page_alloc
    held = []
    for i in range(REQUESTS):
        order, gfp = WORKLOAD[i % len(WORKLOAD)]
        if i % 45 == 0:
            order, gfp = 9, G.GFP_HIGHUSER_MOVABLE
        cpu = i % m.nr_cpus
        pfn = pa.alloc_pages(order, gfp, cpu=cpu)
        assert pfn is not None, f"request {i} (order {order}) failed on a {m.ram >> 20} MiB machine"
        held.append((pfn, order, cpu))
    freed = held[::3]
    for pfn, order, cpu in freed:
        pa.free_pages(pfn, order, cpu=cpu)
    m.check_invariants()
    return sum(1 << o for _, o, _ in held), sum(1 << o for _, o, _ in freed)


@functools.lru_cache(maxsize=None)
def case(name: str) -> Case:
    """The machine ``SIZE-STATE`` (built once per test session)."""
    size, state = name.rsplit("-", 1)
    arch, ram = SIZES[size]
    m = Machine(ram=ram, arch=arch, cpus=2)
    allocated = freed = 0
    if state == "allocated":
        allocated, freed = allocate_some(m)
    return Case(m, proc_files(m), allocated, freed)


def host(name: str) -> str:
    return (HOST / name).read_text()


# ------------------------------------------------------- printf matching

_CONV = re.compile(r"%(-?)(\d*)(l?[ud]|s)")


@functools.lru_cache(maxsize=None)
def _printf_regex(fmt: str) -> tuple[re.Pattern, tuple[str, ...]]:
    """A regex matching what C's printf(fmt, ...) can print, and the conversions."""
    parts, convs, pos = [], [], 0
    for m in _CONV.finditer(fmt):
        parts.append(re.escape(fmt[pos:m.start()]))
        conv = m.group(3)
        body = r"\S*?" if conv == "s" else r"-?\d+"
        parts.append(f"({body}) *" if m.group(1) else f" *({body})")
        convs.append(conv)
        pos = m.end()
    parts.append(re.escape(fmt[pos:]))
    return re.compile("".join(parts) + r"\Z"), tuple(convs)


def printf_values(fmt: str, text: str) -> tuple:
    """The values ``fmt`` printed to give exactly ``text``; fail if none do.

    The regex finds candidate values, then the format is applied again (Python's
    % has C's semantics for %d, %lu, %Ns and %-Ns) and must give ``text`` back,
    byte for byte: widths, alignment and separators are all checked.
    """
    regex, convs = _printf_regex(fmt)
    m = regex.match(text)
    assert m, f"{text!r} does not match the kernel format {fmt!r}"
    values = tuple(v if c == "s" else int(v) for v, c in zip(m.groups(), convs))
    assert fmt % values == text, f"{text!r} is not what {fmt!r} prints ({fmt % values!r})"
    return values


def lines_of(text: str) -> list[str]:
    """Lines with their newline; the text must end with one."""
    assert text.endswith("\n"), "the file must end with a newline"
    return text.splitlines(keepends=True)


# ----------------------------------------------------------------- parsers

# fs/proc/meminfo.c: show_val_kb() prints a 16-column label and "%8lu kB";
# hugetlb_report_meminfo() and a few others print their own formats.
MEMINFO_FORMATS = {
    "HugePages_Total": "HugePages_Total:   %5lu\n",
    "HugePages_Free": "HugePages_Free:    %5lu\n",
    "HugePages_Rsvd": "HugePages_Rsvd:    %5lu\n",
    "HugePages_Surp": "HugePages_Surp:    %5lu\n",
    "HardwareCorrupted": "HardwareCorrupted: %5lu kB\n",
}
SHOW_VAL_KB = "%-16s%8lu kB\n"


def meminfo(text: str) -> dict[str, int]:
    """Parse /proc/meminfo, checking every line's format on the way."""
    fields = {}
    for line in lines_of(text):
        label = line.split(":", 1)[0]
        fmt = MEMINFO_FORMATS.get(label)
        if fmt is None:
            got_label, value = printf_values(SHOW_VAL_KB, line)
            assert got_label == label + ":"
        else:
            (value,) = printf_values(fmt, line)
        assert label not in fields, f"{label} appears twice"
        fields[label] = value
    return fields


def vmstat(text: str) -> dict[str, int]:
    """Parse /proc/vmstat ("%s %lu\\n" per counter, mm/vmstat.c vmstat_show)."""
    counters = {}
    for line in lines_of(text):
        name, value = printf_values("%s %lu\n", line)
        assert re.fullmatch(r"[a-z0-9_]+", name), f"odd counter name {name!r}"
        assert value >= 0, f"{name} is negative: the kernel prints it with %lu"
        assert name not in counters, f"{name} appears twice"
        counters[name] = value
    return counters


BUDDYINFO_FMT = "Node %d, zone %8s " + "%6lu " * NR_PAGE_ORDERS + "\n"


def buddyinfo(text: str) -> dict[str, list[int]]:
    """Zone -> nr_free per order (frag_show_print), format checked."""
    zones = {}
    for line in lines_of(text):
        node, zone, *counts = printf_values(BUDDYINFO_FMT, line)
        assert node == 0
        zones[zone] = counts
    return zones


def pages_in(counts: list[int]) -> int:
    """Pages in free blocks: sum of nr_free[order] << order."""
    return sum(n << order for order, n in enumerate(counts))


PAGETYPE_ROW_FMT = "Node %4d, zone %8s, type %12s " + "%s%6lu " * NR_PAGE_ORDERS + "\n"
BLOCKCOUNT_ROW_FMT = "Node %d, zone %8s " + "%12lu " * 5 + "\n"


def pagetypeinfo(text: str) -> tuple[dict, dict, list[str]]:
    """Parse /proc/pagetypeinfo (pagetypeinfo_show); check every line's format.

    Returns ({(zone, type): counts per order}, {zone: pageblocks per type},
    migratetype names in header order).
    """
    lines = lines_of(text)
    assert lines[0] == "Page block order: 9\n"
    assert lines[1] == "Pages per block:  512\n"
    assert lines[2] == "\n"
    header = "%-43s " % "Free pages count per migrate type at order"
    header += "".join("%6d " % o for o in range(NR_PAGE_ORDERS)) + "\n"
    assert lines[3] == header
    free, i = {}, 4
    while lines[i] != "\n":
        values = printf_values(PAGETYPE_ROW_FMT, lines[i])
        node, zone, mtype = values[:3]
        assert node == 0
        marks, counts = values[3::2], list(values[4::2])
        assert all(mark in ("", ">") for mark in marks)
        assert all(c == 100000 for mark, c in zip(marks, counts) if mark == ">"), \
            "a capped free list prints >100000"
        free[(zone, mtype)] = counts
        i += 1
    block_header = lines[i + 1]
    names = block_header[len("Number of blocks type "):].split()
    assert block_header == "%-23s" % "Number of blocks type " + "".join(
        "%12s " % n for n in names) + "\n"
    blocks = {}
    for line in lines[i + 2:]:
        node, zone, *counts = printf_values(BLOCKCOUNT_ROW_FMT, line)
        blocks[zone] = counts
    return free, blocks, names


def zoneinfo(text: str) -> list[dict]:
    """The zones of /proc/zoneinfo, each with its watermark block and pagesets."""
    zones = []
    for block in re.split(r"(?m)^(?=Node \d+, zone)", text)[1:]:
        name = block.split("\n", 1)[0].split()[-1]
        zone = {"name": name}
        for key in ("pages free", "boost", "min", "low", "high", "promo", "spanned",
                    "present", "managed", "cma"):
            m = re.search(rf"(?m)^ +{key} +(\d+)$", block)
            zone[key.split()[-1]] = int(m.group(1))
        prot = re.search(r"(?m)^        protection: \(([-\d, ]*)\)$", block).group(1)
        zone["protection"] = [int(x) for x in prot.split(", ")]
        zone["pcp_count"] = sum(int(c) for c in re.findall(r"(?m)^ +count: +(\d+)$", block))
        m = re.search(r"(?m)^  start_pfn: +(\d+)$", block)
        zone["start_pfn"] = int(m.group(1)) if m else None
        zones.append(zone)
    return zones


def structure(text: str) -> list[str]:
    """Each line with its numbers replaced by N: the "shape" of a file."""
    return [re.sub(r"-?\d+", "N", line) for line in text.split("\n")]


# ---------------------------------------------------------------- meminfo

HOST_LABELS = list(meminfo(host("meminfo")))


@pytest.mark.parametrize("name", X86_64)
def test_meminfo_labels_are_the_host_kernels(name):
    assert list(meminfo(case(name).files["meminfo"])) == HOST_LABELS


@pytest.mark.parametrize("name", I386)
def test_meminfo_labels_on_i386_add_highmem_and_drop_directmap1g(name):
    """CONFIG_HIGHMEM adds four lines after Mlocked; 32-bit has no 1G direct map."""
    at = HOST_LABELS.index("Mlocked") + 1
    expected = HOST_LABELS[:at] + ["HighTotal", "HighFree", "LowTotal", "LowFree"] + HOST_LABELS[at:]
    expected.remove("DirectMap1G")
    assert list(meminfo(case(name).files["meminfo"])) == expected


def test_meminfo_format_checker_accepts_the_host_file():
    """The show_val_kb/HugePages formats above parse the real file line for line."""
    fields = meminfo(host("meminfo"))
    assert fields["MemTotal"] == 24683656 and fields["VmallocTotal"] == 34359738367


@pytest.mark.parametrize("name", ALL)
def test_meminfo_lines_have_the_kernels_format(name):
    fields = meminfo(case(name).files["meminfo"])
    assert fields["Hugepagesize"] == 2048
    assert fields["HugePages_Total"] == fields["HugePages_Free"] == 0


def test_memtotal_of_24gib_two_cpu_machine_is_the_hosts():
    fields = meminfo(case("x86_64-24GiB-boot").files["meminfo"])
    assert fields["MemTotal"] == meminfo(host("meminfo"))["MemTotal"] == 24683656


def commit_limit_kb(memtotal_kb: int, ratio: int, swap_kb: int = 0) -> int:
    """mm/util.c vm_commit_limit(): totalram_pages * ratio / 100 + swap, in pages."""
    return ((memtotal_kb >> 2) * ratio // 100 << 2) + swap_kb


def test_commit_limit_of_the_host_follows_vm_commit_limit():
    fields = meminfo(host("meminfo"))
    assert fields["CommitLimit"] == commit_limit_kb(fields["MemTotal"], 50, fields["SwapTotal"])


@pytest.mark.parametrize("name", ALL)
def test_commit_limit_is_overcommit_ratio_of_memtotal(name):
    c = case(name)
    fields = meminfo(c.files["meminfo"])
    ratio = int(c.files["sys/vm/overcommit_ratio"])
    assert ratio == 50
    assert fields["CommitLimit"] == commit_limit_kb(fields["MemTotal"], ratio, fields["SwapTotal"])


@pytest.mark.parametrize("ratio", [0, 10, 100, 150])
@pytest.mark.parametrize("arch", ["x86_64", "i386"])
def test_commit_limit_follows_a_written_overcommit_ratio(arch, ratio):
    m = Machine(ram=1 * GiB, arch=arch, sysctl={"vm.overcommit_ratio": ratio})
    files = proc_files(m)
    fields = meminfo(files["meminfo"])
    assert files["sys/vm/overcommit_ratio"] == f"{ratio}\n"
    assert fields["CommitLimit"] == commit_limit_kb(fields["MemTotal"], ratio)


@pytest.mark.parametrize("name", ALL)
def test_memfree_is_the_pages_in_buddy_blocks(name):
    files = case(name).files
    free_pages = sum(pages_in(counts) for counts in buddyinfo(files["buddyinfo"]).values())
    assert meminfo(files["meminfo"])["MemFree"] == free_pages * 4


@pytest.mark.parametrize("name", ALL)
def test_memtotal_is_the_sum_of_managed_pages(name):
    files = case(name).files
    managed = sum(z["managed"] for z in zoneinfo(files["zoneinfo"]))
    assert meminfo(files["meminfo"])["MemTotal"] == managed * 4


@pytest.mark.parametrize("name", I386)
def test_highmem_lines_split_memory_at_the_highmem_zone(name):
    files = case(name).files
    fields = meminfo(files["meminfo"])
    zones = {z["name"]: z for z in zoneinfo(files["zoneinfo"])}
    high_free = pages_in(buddyinfo(files["buddyinfo"])["HighMem"])
    assert fields["HighTotal"] == zones["HighMem"]["managed"] * 4
    assert fields["HighFree"] == high_free * 4
    assert fields["LowTotal"] == fields["MemTotal"] - fields["HighTotal"]
    assert fields["LowFree"] == fields["MemFree"] - fields["HighFree"]


def _directmap_sizes_are_whole_pages(files):
    """arch_report_meminfo prints page counts shifted: 4k, 2M (or 4M), 1G multiples."""
    fields = meminfo(files["meminfo"])
    for label, unit_kb in (("DirectMap4k", 4), ("DirectMap2M", 2048), ("DirectMap1G", 1 << 20)):
        if label in fields:
            assert fields[label] % unit_kb == 0, f"{label}: {fields[label]} kB is not whole pages"


@pytest.mark.parametrize("name", X86_64)
def test_directmap_sizes_are_whole_pages(name):
    _directmap_sizes_are_whole_pages(case(name).files)


@pytest.mark.parametrize("name", ["i386-1GiB-boot", "i386-3GiB-boot"])
def test_directmap_sizes_are_whole_pages_on_i386(name):
    _directmap_sizes_are_whole_pages(case(name).files)


# ----------------------------------------------------------------- vmstat

HOST_VMSTAT_KEYS = list(vmstat(host("vmstat")))
ZONE_EVENT_PREFIXES = ("pgalloc_", "allocstall_", "pgskip_")
I386_ZONE_SUFFIXES = ("dma", "normal", "high", "movable")
# Counters that only CONFIG_NUMA (and NUMA_BALANCING, which needs it) or
# CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD (x86-64 only) add. Since Linux 6.15
# dropped HIGHMEM64G and X86_BIGSMP, NUMA "depends on X86_64" in practice.
NUMA_ONLY = {"numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local",
             "numa_other", "pgpromote_success", "pgpromote_candidate",
             "pgpromote_candidate_nrl", "zone_reclaim_success", "zone_reclaim_failed",
             "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
             "numa_hint_faults_local", "numa_pages_migrated"}
X86_64_ONLY = {"thp_split_pud"}


def i386_keys(keys: list[str], drop: set[str]) -> list[str]:
    """The x86-64 key list with the zone events of i386 (DMA, Normal, HighMem, Movable)."""
    out = []
    for key in keys:
        prefix = next((p for p in ZONE_EVENT_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            if key not in drop:
                out.append(key)
        elif key.endswith("_dma"):
            out += [prefix + s for s in I386_ZONE_SUFFIXES]
    return out


@pytest.mark.parametrize("name", X86_64)
def test_vmstat_keys_are_the_host_kernels(name):
    assert list(vmstat(case(name).files["vmstat"])) == HOST_VMSTAT_KEYS


@pytest.mark.parametrize("name", I386)
def test_vmstat_zone_events_on_i386_are_dma_normal_high_movable(name):
    keys = list(vmstat(case(name).files["vmstat"]))
    for prefix in ZONE_EVENT_PREFIXES:
        assert [k for k in keys if k.startswith(prefix)] == [prefix + s for s in I386_ZONE_SUFFIXES]
    assert not [k for k in keys if k.endswith(("_dma32", "_device"))]


def test_vmstat_keys_on_i386_are_those_of_a_32bit_kernel():
    keys = list(vmstat(case("i386-1GiB-boot").files["vmstat"]))
    assert keys == i386_keys(HOST_VMSTAT_KEYS, NUMA_ONLY | X86_64_ONLY)


@pytest.mark.parametrize("name", ALL)
def test_vmstat_free_pages_agree_with_meminfo_and_zoneinfo(name):
    files = case(name).files
    counters = vmstat(files["vmstat"])
    zones = zoneinfo(files["zoneinfo"])
    assert counters["nr_free_pages"] * 4 == meminfo(files["meminfo"])["MemFree"]
    assert counters["nr_free_pages"] == sum(z["free"] for z in zones)


@pytest.mark.parametrize("size", list(SIZES))
def test_vmstat_pgalloc_and_pgfree_count_the_workload(size):
    """pgalloc_<zone> adds 1 << order per allocation, pgfree per free (also via pcp)."""
    before = vmstat(case(f"{size}-boot").files["vmstat"])
    after_case = case(f"{size}-allocated")
    after = vmstat(after_case.files["vmstat"])
    pgalloc = sum(after[k] - before[k] for k in after if k.startswith("pgalloc_"))
    assert pgalloc == after_case.allocated
    assert after["pgfree"] - before["pgfree"] == after_case.freed


@pytest.mark.parametrize("name", ALL)
def test_vmstat_pgalloc_goes_to_populated_zones(name):
    files = case(name).files
    populated = set(buddyinfo(files["buddyinfo"]))
    counters = vmstat(files["vmstat"])
    suffix = {"DMA": "dma", "DMA32": "dma32", "Normal": "normal", "HighMem": "high",
              "Movable": "movable", "Device": "device"}
    for z in zoneinfo(files["zoneinfo"]):
        if z["name"] not in populated:
            assert counters[f"pgalloc_{suffix[z['name']]}"] == 0


def test_host_pgfree_counts_the_pages_freed_at_boot():
    """On Linux, memblock_free_all() frees through __free_pages_ok(), which counts
    PGFREE: so pgfree - pgalloc is the free pages plus the pcp lists (the host's
    files were read one after the other, hence the small tolerance)."""
    counters = vmstat(host("vmstat"))
    pcp = sum(z["pcp_count"] for z in zoneinfo(host("zoneinfo")))
    pgalloc = sum(v for k, v in counters.items() if k.startswith("pgalloc_"))
    assert counters["pgfree"] - pgalloc == pytest.approx(counters["nr_free_pages"] + pcp, rel=1e-3)


@pytest.mark.parametrize("name", ["x86_64-1GiB-boot", "x86_64-1GiB-allocated"])
def test_pgfree_minus_pgalloc_is_free_plus_pcp_pages(name):
    c = case(name)
    counters = vmstat(c.files["vmstat"])
    pgalloc = sum(v for k, v in counters.items() if k.startswith("pgalloc_"))
    assert counters["pgfree"] - pgalloc == counters["nr_free_pages"] + c.machine.page_alloc.pcp_pages()


# --------------------------------------------------------------- zoneinfo

HOST_ZONEINFO = host("zoneinfo")


def host_zone_templates() -> tuple[list[str], list[str], list[str]]:
    """From the host's zoneinfo: the per-node block, a populated zone's body
    (Normal, which has no per-node block) and an empty zone's body (Movable)."""
    blocks = {b.split("\n", 1)[0].split()[-1]: structure(b)[1:]
              for b in re.split(r"(?m)^(?=Node \d+, zone)", HOST_ZONEINFO)[1:]}
    dma = blocks["DMA"]
    node_stats = dma[:dma.index("  pages free     N")]
    return node_stats, blocks["Normal"], blocks["Movable"]


def expected_structure(zones: list[dict], drop_numa: bool = False,
                       nr_protection: int = 5) -> list[str]:
    """The structure a kernel with these zones prints, from the host's templates."""
    node_stats, populated, empty = host_zone_templates()
    prot = "        protection: (" + ", ".join(["N"] * nr_protection) + ")"
    out, first = [], True
    for z in zones:
        out += structure(f"Node 0, zone {z['name']:>8}")
        body = populated if z["present"] else empty
        if z["present"] and first:
            out += [line for line in node_stats
                    if not (drop_numa and line.split()[0] in NUMA_ONLY)]
            first = False
        out += [prot if line.startswith("        protection:") else line for line in body
                if not (drop_numa and line.lstrip().startswith("numa_"))]
        out.pop()   # the "" after the block's newline; added back at the end
    return out + [""]


def test_zoneinfo_structure_is_the_hosts():
    """Same zones (24 GiB x86-64, 2 CPUs): identical lines once numbers are masked."""
    for name in ("x86_64-24GiB-boot", "x86_64-24GiB-allocated"):
        assert structure(case(name).files["zoneinfo"]) == structure(HOST_ZONEINFO), name


def test_zoneinfo_templates_rebuild_the_host_file():
    assert expected_structure(zoneinfo(HOST_ZONEINFO)) == structure(HOST_ZONEINFO)


@pytest.mark.parametrize("name", X86_64)
def test_zoneinfo_structure_for_every_size(name):
    """Small machines have an empty Normal zone: header and watermarks only."""
    text = case(name).files["zoneinfo"]
    assert structure(text) == expected_structure(zoneinfo(text))


def test_zoneinfo_on_i386_has_no_numa_counters():
    text = case("i386-1GiB-boot").files["zoneinfo"]
    assert structure(text) == expected_structure(zoneinfo(text), drop_numa=True, nr_protection=4)


@pytest.mark.parametrize("name", ALL)
def test_zoneinfo_protection_has_one_entry_per_zone(name):
    zones = zoneinfo(case(name).files["zoneinfo"])
    expected = 5 if name.startswith("x86_64") else 4
    assert [z["name"] for z in zones] == (
        ["DMA", "DMA32", "Normal", "Movable", "Device"] if expected == 5
        else ["DMA", "Normal", "HighMem", "Movable"])
    assert all(len(z["protection"]) == expected for z in zones)


@pytest.mark.parametrize("name", ALL)
def test_zoneinfo_watermark_block_is_the_machines(name):
    c = case(name)
    pa = c.machine.page_alloc
    for z, zone in zip(zoneinfo(c.files["zoneinfo"]), pa.zones):
        boost = int(pa.S.zs[zone.zid, B.ZS_BOOST])
        assert z["name"] == zone.name
        assert z["boost"] == boost
        assert z["free"] == pa.nr_free_pages(zone.zid)
        assert [z["min"], z["low"], z["high"], z["promo"]] == [pa.wmark(zone.zid, w) for w in range(4)]
        assert [z["min"] - boost, z["low"] - boost, z["high"] - boost, z["promo"] - boost] == \
            [int(x) for x in pa.watermarks()[zone.zid]]
        assert (z["spanned"], z["present"], z["managed"]) == (zone.spanned, zone.present,
                                                              int(pa.managed[zone.zid]))
        assert z["protection"] == [int(r) for r in pa.lowmem_reserve[zone.zid]]
        assert z["cma"] == 0
        if zone.present:
            assert z["start_pfn"] == zone.start_pfn
            assert z["pcp_count"] == pa.pcp_pages(zone.zid)


def kernel_watermarks(zones: list[dict], min_free_kbytes: int, scale_factor: int) -> list[list[int]]:
    """mm/page_alloc.c __setup_per_zone_wmarks(): (min, low, high, promo) per zone."""
    pages_min = min_free_kbytes >> 2
    lowmem = sum(z["managed"] for z in zones if z["name"] not in ("HighMem", "Movable"))
    marks = []
    for z in zones:
        tmp = pages_min * z["managed"] // lowmem
        if z["name"] in ("HighMem", "Movable"):
            low_min = min(max(z["managed"] // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            low_min = tmp
        gap = max(tmp >> 2, z["managed"] * scale_factor // 10000)
        marks.append([low_min, low_min + gap, low_min + 2 * gap, low_min + 3 * gap])
    return marks


def kernel_lowmem_reserve(zones: list[dict], ratios: list[int]) -> list[list[int]]:
    """mm/page_alloc.c setup_per_zone_lowmem_reserve()."""
    n = len(zones)
    reserve = [[0] * n for _ in range(n)]
    for i in range(n - 1):
        clear = not ratios[i] or not zones[i]["managed"]
        upper = 0
        for j in range(i + 1, n):
            upper += zones[j]["managed"]
            reserve[i][j] = 0 if clear else upper // ratios[i]
    return reserve


def test_host_zoneinfo_follows_the_watermark_and_reserve_formulas():
    zones = zoneinfo(HOST_ZONEINFO)
    sysvm = HOST / "sys" / "vm"
    marks = kernel_watermarks(zones, int((sysvm / "min_free_kbytes").read_text()),
                              int((sysvm / "watermark_scale_factor").read_text()))
    assert [[z["min"], z["low"], z["high"], z["promo"]] for z in zones] == marks
    ratios = [int(x) for x in (sysvm / "lowmem_reserve_ratio").read_text().split()]
    assert [z["protection"] for z in zones] == kernel_lowmem_reserve(zones, ratios)


@pytest.mark.parametrize("name", ALL)
def test_zoneinfo_follows_the_watermark_and_reserve_formulas(name):
    files = case(name).files
    zones = zoneinfo(files["zoneinfo"])
    marks = kernel_watermarks(zones, int(files["sys/vm/min_free_kbytes"]),
                              int(files["sys/vm/watermark_scale_factor"]))
    assert [[z[k] - z["boost"] for k in ("min", "low", "high", "promo")] for z in zones] == marks
    ratios = [int(x) for x in files["sys/vm/lowmem_reserve_ratio"].split()]
    assert [z["protection"] for z in zones] == kernel_lowmem_reserve(zones, ratios)


def test_zoneinfo_watermarks_follow_written_sysctls():
    m = Machine(ram=4 * GiB, sysctl={"vm.min_free_kbytes": 131072,
                                     "vm.watermark_scale_factor": 200,
                                     "vm.lowmem_reserve_ratio": [128, 128, 16, 0, 0]})
    files = proc_files(m)
    zones = zoneinfo(files["zoneinfo"])
    assert files["sys/vm/lowmem_reserve_ratio"] == "128\t128\t16\t0\t0\n"
    assert [[z[k] for k in ("min", "low", "high", "promo")] for z in zones] == \
        kernel_watermarks(zones, 131072, 200)
    assert [z["protection"] for z in zones] == kernel_lowmem_reserve(zones, [128, 128, 16, 0, 0])


# ------------------------------------------------ buddyinfo, pagetypeinfo

def test_buddyinfo_and_pagetypeinfo_parsers_accept_the_host_files():
    zones = buddyinfo(host("buddyinfo"))
    free, blocks, names = pagetypeinfo(host("pagetypeinfo"))
    assert list(zones) == ["DMA", "DMA32", "Normal"]
    assert names == ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"]
    assert list(blocks) == list(zones)


@pytest.mark.parametrize("name", ALL)
def test_buddyinfo_lists_the_populated_zones(name):
    files = case(name).files
    populated = [z["name"] for z in zoneinfo(files["zoneinfo"]) if z["present"]]
    assert list(buddyinfo(files["buddyinfo"])) == populated


@pytest.mark.parametrize("name", ALL)
def test_pagetypeinfo_has_the_kernels_format_and_types(name):
    files = case(name).files
    free, blocks, names = pagetypeinfo(files["pagetypeinfo"])
    _, _, host_names = pagetypeinfo(host("pagetypeinfo"))
    assert names == host_names
    zones = list(buddyinfo(files["buddyinfo"]))
    assert list(free) == [(z, t) for z in zones for t in names]
    assert list(blocks) == zones


def test_pagetypeinfo_header_lines_are_the_hosts():
    ours = case("x86_64-24GiB-boot").files["pagetypeinfo"].split("\n")
    theirs = host("pagetypeinfo").split("\n")
    assert ours[:4] == theirs[:4]
    blocks_header = [line for line in ours if line.startswith("Number of blocks type")]
    assert blocks_header == [line for line in theirs if line.startswith("Number of blocks type")]


def buddy_sums_match(files: dict[str, str]) -> None:
    zones = buddyinfo(files["buddyinfo"])
    free, _, names = pagetypeinfo(files["pagetypeinfo"])
    for zone, counts in zones.items():
        sums = [sum(free[(zone, t)][o] for t in names) for o in range(NR_PAGE_ORDERS)]
        assert sums == counts, zone


def test_host_buddyinfo_counts_are_pagetypeinfo_sums():
    buddy_sums_match({"buddyinfo": host("buddyinfo"), "pagetypeinfo": host("pagetypeinfo")})


@pytest.mark.parametrize("name", ALL)
def test_buddyinfo_counts_are_pagetypeinfo_sums(name):
    buddy_sums_match(case(name).files)


def online_pageblocks(m: Machine, start: int, end: int) -> int:
    """Pageblocks pagetypeinfo_showblockcount_print() visits in [start, end):
    one per 512 pfns from the zone start, if its 128 MiB section has memory."""
    sections = {s for lo, hi in m.layout.memory
                for s in range(lo // PAGES_PER_SECTION, (hi - 1) // PAGES_PER_SECTION + 1)}
    return sum(1 for pfn in range(start, end, PAGEBLOCK_NR_PAGES)
               if pfn // PAGES_PER_SECTION in sections)


@pytest.mark.parametrize("name", ALL)
def test_pageblock_counts_cover_the_zone(name):
    c = case(name)
    _, blocks, _ = pagetypeinfo(c.files["pagetypeinfo"])
    for z in zoneinfo(c.files["zoneinfo"]):
        if not z["present"]:
            continue
        start = z["start_pfn"]
        assert sum(blocks[z["name"]]) == online_pageblocks(c.machine, start, start + z["spanned"])


@pytest.mark.parametrize("name", [c for c in ALL if c.endswith("allocated")])
def test_allocations_leave_blocks_of_several_types(name):
    """The workload's unmovable and reclaimable requests claim pageblocks."""
    _, blocks, names = pagetypeinfo(case(name).files["pagetypeinfo"])
    used = {names[i] for counts in blocks.values() for i, n in enumerate(counts) if n}
    assert {"Unmovable", "Movable"} <= used


# ----------------------------------------------------------------- sys/vm

HOST_SYS_VM = {p.name: p.read_text() for p in (HOST / "sys" / "vm").iterdir()}


def sys_vm(files: dict[str, str]) -> dict[str, str]:
    return {k[len("sys/vm/"):]: v for k, v in files.items() if k.startswith("sys/vm/")}


@pytest.mark.parametrize("name", ALL)
def test_sys_vm_files_are_the_readable_sysctls(name):
    c = case(name)
    table = sysctl_table.sysctls_for(c.machine.arch)
    assert set(sys_vm(c.files)) == {n for n, s in table.items() if s.readable}


def test_sys_vm_files_are_the_hosts_but_for_vendor_additions():
    ours = set(sys_vm(case("x86_64-24GiB-boot").files))
    assert ours == set(HOST_SYS_VM) - set(sysctl_table.NOT_MODELLED)
    assert set(HOST_SYS_VM) - ours == {"shrink_inodes_with_pagecache"}


# Computed at boot from the memory size; user_reserve_kbytes also from how much
# memory deferred struct-page init had freed by then (the host's 100404 kB is
# 3% of the 3.2 GB initialised early), so it cannot match a fully booted model.
COMPUTED = {"min_free_kbytes", "user_reserve_kbytes", "admin_reserve_kbytes"}


@pytest.mark.parametrize("name", X86_64)
def test_sys_vm_fixed_defaults_read_as_on_the_host(name):
    ours = sys_vm(case(name).files)
    fixed = sorted(set(ours) - COMPUTED)
    assert {"swappiness", "watermark_scale_factor", "lowmem_reserve_ratio", "overcommit_ratio",
            "dirty_ratio", "dirty_background_ratio", "page-cluster"} <= set(fixed)
    assert {n: ours[n] for n in fixed} == {n: HOST_SYS_VM[n] for n in fixed}


def test_sys_vm_boot_computed_values_of_the_24gib_machine_are_the_hosts():
    ours = sys_vm(case("x86_64-24GiB-boot").files)
    for name in ("min_free_kbytes", "admin_reserve_kbytes"):
        assert ours[name] == HOST_SYS_VM[name], name
    assert ours["min_free_kbytes"] == "67584\n"


@pytest.mark.parametrize("name", I386)
def test_sys_vm_on_i386(name):
    c = case(name)
    ours = sys_vm(c.files)
    assert ours["lowmem_reserve_ratio"] == "256\t32\t0\t0\n"
    for n, s in sysctl_table.sysctls_for("i386").items():
        if s.readable and not s.computed:
            assert ours[n] == sysctl_table.format_sysctl(n, None, "i386"), n
    assert not {"numa_stat", "zone_reclaim_mode", "numa_zonelist_order"} & set(ours)
