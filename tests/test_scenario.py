"""Scenario loading (SCENARIO.md v1) and the vm sysctl table.

Every malformed scenario must give one InputError naming the file, the line
and the key path (ARCHITECTURE.md principle 7).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from linmem.errors import InputError
from linmem.sysctl import (NOT_MODELLED, SYSCTLS, defaults, format_sysctl, lookup,
                           sysctls_for, validate_sysctl)
from linmem.workload.scenario import (Scenario, default_scenario, load_scenario,
                                      parse_scenario)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# The example of shared/SCENARIO.md, verbatim.
FULL = """\
name: fork-and-cache            # optional
seed: 1                         # default 0
machine:
  arch: x86_64                  # x86_64 (default) | i386 (has HighMem)
  ram: 4GiB                     # required
  cpus: 2                       # default 2
  thp: madvise                  # never | madvise (default) | always
  lru: classic                  # classic (default) | mglru
sysctl:                         # vm.* knobs; an unknown or unsupported name is an error
  vm.swappiness: 60
  vm.overcommit_memory: 0
  vm.min_free_kbytes: 67584     # default: the kernel's own formula
swap:
  - {path: /swapfile, size: 1GiB, priority: -2, type: file}   # type: file | partition | zram
files:                          # regular files on the simulated disk
  /data/f200: 200MiB
cgroups:                        # cgroup v2 tree, keyed by path
  /batch: {memory.max: 512MiB, memory.high: max, memory.low: 0, memory.min: 0, memory.swap.max: max}
programs:                       # executable images; built-ins exist for common ones
  app: {text: 4MiB, rodata: 1MiB, data: 256KiB, bss: 1MiB, libs: [libc.so.6]}
processes:
  - name: app                   # the comm shown by ps/top
    program: app
    cgroup: /batch              # default: the root cgroup
    oom_score_adj: 0
    start: 0s
    steps:
      - mmap: {as: buf, size: 256MiB}          # anonymous private by default
      - mmap: {as: db, file: /data/f200, shared: true, prot: r}
      - malloc: {as: small, size: 64KiB}       # through the libc model
      - brk: 1MiB
      - touch: {region: buf, write: true}      # every page once, in order
      - touch: {region: buf, pattern: random, count: 100000, fraction: 0.5}
      - touch: {region: db, pattern: zipf, alpha: 0.9, count: 1000000}
      - read: {file: /data/f200, passes: 2}    # read(2) through the page cache
      - write: {file: /data/log, size: 10MiB, sync: false}
      - fork:
          name: child
          steps:
            - touch: {region: buf, write: true, fraction: 0.5}
            - exit: 0
      - wait: child
      - madvise: {region: buf, advice: dontneed}
      - mlock: small
      - munmap: buf
      - free: small
      - exec: {program: app}
      - sleep: 1s
      - snapshot: after-work                   # write the whole view at this point
      - sysctl: {vm.drop_caches: 3}
      - replay: {trace: traces/app.lackey, format: lackey}   # this process's accesses
      - exit: 0
at:                             # timed events of the whole machine
  - {time: 5s, snapshot: t5}
  - {time: 6s, sysctl: {vm.drop_caches: 1}}
sample: 1s                      # interval of the timeline
"""


def _contract_example() -> str | None:
    """The YAML block of shared/SCENARIO.md, when the shared folder is beside us."""
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        path = base.parent / "shared" / "SCENARIO.md"
        if path.is_file():
            return re.search(r"```yaml\n(.*?)```", path.read_text(), re.S).group(1)
    return None


@pytest.fixture
def full(tmp_path) -> Scenario:
    path = tmp_path / "full.yaml"
    path.write_text(FULL)
    return load_scenario(path)


# --- loading good scenarios ---------------------------------------------------------

def test_default_scenario():
    sc = default_scenario()
    m = sc.machine
    assert (m.arch, m.ram, m.cpus, m.thp, m.lru) == ("x86_64", 4 * GiB, 2, "madvise", "classic")
    assert sc.sysctl.as_dict() == {}
    assert [(e.time, e.snapshot) for e in sc.at if e.snapshot] == [(0.0, "boot"),
                                                                   (1.0, "wider-watermarks")]
    assert parse_scenario(M + "processes: [{name: cat}]\n", "s.yaml").processes[0].program == "cat"
    assert sc.sample == 1.0


def test_full_example_is_the_contract_one():
    text = _contract_example()
    if text is None:
        pytest.skip("shared/SCENARIO.md is not beside the repository")
    assert text == FULL


def test_full_example_machine_and_sysctl(full):
    assert full.name == "fork-and-cache" and full.seed == 1
    assert full.machine.ram == 4 * GiB and full.machine.cpus == 2
    assert full.sysctl.as_dict() == {"swappiness": 60, "overcommit_memory": 0,
                                     "min_free_kbytes": 67584}
    assert list(full.sysctl.as_dict()) == ["swappiness", "overcommit_memory", "min_free_kbytes"]
    assert full.sample == 1.0


def test_full_example_resources(full):
    swap = full.swap[0]
    assert (swap.path, swap.size, swap.priority, swap.type) == ("/swapfile", GiB, -2, "file")
    assert full.files == {"/data/f200": 200 * MiB}
    batch = full.cgroups["/batch"]
    assert (batch.memory_max, batch.memory_high, batch.memory_low) == (512 * MiB, "max", 0)
    assert batch.memory_swap_max == "max"
    app = full.programs["app"]
    assert (app.text, app.rodata, app.data, app.bss) == (4 * MiB, MiB, 256 * KiB, MiB)
    assert app.libs == ["libc.so.6"]


def test_full_example_steps(full):
    proc = full.processes[0]
    assert (proc.name, proc.program, proc.cgroup, proc.start) == ("app", "app", "/batch", 0.0)
    steps = proc.steps
    assert [s.kind for s in steps][:4] == ["mmap", "mmap", "malloc", "brk"]
    assert steps[0].args.as_ == "buf" and steps[0].args.size == 256 * MiB
    assert steps[1].args.file == "/data/f200" and steps[1].args.shared and steps[1].args.prot == "r"
    assert steps[3].args == MiB
    assert steps[5].args.pattern == "random" and steps[5].args.fraction == 0.5
    assert steps[6].args.alpha == 0.9 and steps[6].args.count == 1_000_000
    assert steps[7].args.passes == 2 and steps[8].args.size == 10 * MiB
    child = steps[9].args
    assert child.name == "child" and [s.kind for s in child.steps] == ["touch", "exit"]
    assert steps[16].args == 1.0 and steps[17].args == "after-work"
    assert steps[18].args.as_dict() == {"drop_caches": 3}
    assert steps[19].args.format == "lackey" and steps[-1].args == 0


def test_full_example_at_events(full):
    assert [(e.time, e.snapshot) for e in full.at] == [(5.0, "t5"), (6.0, None)]
    assert full.at[1].sysctl.as_dict() == {"drop_caches": 1}


def test_dump_round_trips(full):
    again = Scenario.model_validate(full.model_dump(by_alias=True))
    assert again.model_dump() == full.model_dump()


M = "machine:\n  ram: 4GiB\n"                   # lines 1-2


def test_durations_and_i386():
    sc = parse_scenario("machine: {arch: i386, ram: 1GiB}\nsample: 250ms\n"
                        "sysctl: {vm.lowmem_reserve_ratio: '256 32 -1 0'}\n", "s.yaml")
    assert sc.sample == 0.25
    assert sc.sysctl.as_dict() == {"lowmem_reserve_ratio": (256, 32, 0, 0)}


# --- malformed scenarios -----------------------------------------------------------

P = M + "processes:\n  - name: a\n    steps:\n"  # lines 1-5; steps from line 6

BAD = [
    ("top-unknown", M + "colour: red\n", 3, "colour", "unknown key 'colour'"),
    ("machine-unknown", M + "  disks: 2\n", 3, "machine.disks", "unknown key 'disks'"),
    ("step-unknown-key", P + "      - mmap: {as: x, size: 1MiB, colour: 1}\n", 6,
     "processes[0].steps[0].mmap.colour", "unknown key 'colour'"),
    ("bad-size", "machine:\n  ram: 12XB\n", 2, "machine.ram", "'12XB'"),
    ("negative-size", M + "files:\n  /a: -5\n", 4, "files./a", "-5"),
    ("ram-small", "machine:\n  ram: 32MiB\n", 2, "machine.ram",
     "RAM 32MiB is too small: at least 64MiB"),
    ("ram-big", "machine:\n  ram: 2TiB\n", 2, "machine.ram", "RAM 2TiB is too big"),
    ("i386-ram", "machine:\n  arch: i386\n  ram: 8GiB\n", 3, "machine.ram", "at most 4GiB"),
    ("sysctl-range", M + "sysctl:\n  vm.swappiness: 300\n", 4, "sysctl.vm.swappiness",
     "300 is out of range 0..200"),
    ("sysctl-unknown", M + "sysctl:\n  vm.swapiness: 30\n", 4, "sysctl.vm.swapiness",
     "did you mean vm.swappiness"),
    ("sysctl-slash", M + "sysctl:\n  vm/swappiness: 30\n", 4, "sysctl.vm/swappiness",
     "write names with dots"),
    ("sysctl-unmodelled", M + "sysctl:\n  vm.nr_hugepages: 8\n", 4, "sysctl.vm.nr_hugepages",
     "not modelled"),
    ("sysctl-action", M + "sysctl:\n  vm.drop_caches: 3\n", 4, "sysctl.vm.drop_caches",
     "is an action"),
    ("sysctl-step-range", P + "      - sysctl: {vm.drop_caches: 5}\n", 6,
     "processes[0].steps[0].sysctl.vm.drop_caches", "5 is out of range 1..4"),
    ("cpus-two", M + "  cpus: two\n", 3, "machine.cpus", "expected an integer, got 'two'"),
    ("cpus-zero", M + "  cpus: 0\n", 3, "machine.cpus", "at least 1"),
    ("cpus-many", M + "  cpus: 1025\n", 3, "machine.cpus", "at most 1024"),
    ("bad-arch", "machine:\n  arch: arm64\n  ram: 4GiB\n", 2, "machine.arch", "'arm64'"),
    ("bad-thp", M + "  thp: sometimes\n", 3, "machine.thp", "'sometimes'"),
    ("step-two-keys", P + "      - sleep: 1s\n      - {sleep: 1s, exit: 0}\n", 7,
     "processes[0].steps[1]", "exactly one key"),
    ("step-unknown", P + "      - sleep: 1s\n      - mmapp: {as: x, size: 1MiB}\n", 7,
     "processes[0].steps[1].mmapp", "unknown step 'mmapp'"),
    ("step-bare", P + "      - exit\n", 6, "processes[0].steps[0]", "a step is a mapping"),
    ("yaml-syntax", M + "processes:\n  - name: [a\n", 5, "", "YAML syntax error"),
    ("yaml-tab", "machine:\n\tram: 4GiB\n", 2, "", "YAML syntax error"),
    ("duplicate-key", M + "  ram: 2GiB\n", 3, "machine.ram", "duplicate key 'ram' (first at line 2)"),
    ("missing-machine", "name: x\n", 1, "machine", "missing required key 'machine'"),
    ("missing-ram", "name: x\nmachine:\n  cpus: 2\n", 2, "machine.ram", "missing required key 'ram'"),
    ("bad-duration", M + "sample: 10 parsecs\n", 3, "sample", "'10 parsecs'"),
    ("touch-pattern", P + "      - mmap: {as: x, size: 1MiB}\n      - touch:\n"
     "          region: x\n          pattern: spiral\n", 9,
     "processes[0].steps[1].touch.pattern", "'spiral'"),
    ("zipf-no-alpha", P + "      - mmap: {as: x, size: 1MiB}\n      - touch: {region: x, pattern: zipf}\n",
     7, "processes[0].steps[1].touch.alpha", "pattern zipf needs alpha"),
    ("fraction", P + "      - touch: {region: heap, fraction: 1.5}\n", 6,
     "processes[0].steps[0].touch.fraction", "at most 1"),
    ("unknown-region", P + "      - touch: {region: nope}\n", 6,
     "processes[0].steps[0].touch.region", "no region 'nope'"),
    ("free-mmap", P + "      - mmap: {as: b, size: 1MiB}\n      - free: b\n", 7,
     "processes[0].steps[1].free", "release it with munmap"),
    ("read-missing-file", P + "      - read: {file: /nope}\n", 6,
     "processes[0].steps[0].read.file", "no file '/nope'"),
    ("wait-no-child", P + "      - wait: kid\n", 6, "processes[0].steps[0].wait", "no child 'kid'"),
    ("after-exit", P + "      - exit: 0\n      - sleep: 1s\n", 7, "processes[0].steps[1]", "never runs"),
    ("exit-code", P + "      - exit: 256\n", 6, "processes[0].steps[0].exit", "at most 255"),
    ("fork-nested", P + "      - fork:\n          name: c\n          steps:\n"
     "            - touch: {region: gone}\n", 9,
     "processes[0].steps[0].fork.steps[0].touch.region", "no region 'gone'"),
    ("cgroup-missing", M + "processes:\n  - name: a\n    cgroup: /nope\n", 5,
     "processes[0].cgroup", "no cgroup '/nope'"),
    ("cgroup-limit", M + "cgroups:\n  /a: {memory.max: lots}\n", 4, "cgroups./a.memory.max", "'lots'"),
    ("at-two-actions", M + "at:\n  - {time: 1s, snapshot: a, sysctl: {vm.drop_caches: 1}}\n", 4,
     "at[0]", "exactly one of snapshot, sysctl"),
    ("snapshot-twice", M + "at:\n  - {time: 1s, snapshot: a}\n  - {time: 2s, snapshot: a}\n", 5,
     "at[1].snapshot", "used twice"),
    ("swap-small", M + "swap:\n  - {path: /s, size: 4KiB}\n", 4, "swap[0].size", "at least 40KiB"),
    ("relative-file", M + "files:\n  data/x: 1MiB\n", 4, "files.data/x", "absolute file path"),
    ("bool-seed", M + "seed: true\n", 3, "seed", "expected an integer, got True"),
    ("not-a-mapping", "- a\n", 1, "", "a scenario is a YAML mapping"),
    ("empty", "", 1, "", "empty document"),
]


@pytest.mark.parametrize("text,line,path,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed(tmp_path, text, line, path, fragment):
    file = tmp_path / "scen.yaml"
    file.write_text(text)
    with pytest.raises(InputError) as info:
        load_scenario(file)
    err = info.value
    assert err.where == f"{file}:{line}" + (f": {path}" if path else "")
    assert fragment in err.what
    assert str(err).startswith(f"{file}:{line}")


def test_many_problems_report_the_first_in_document_order():
    text = "machine:\n  ram: 4GiB\n  cpus: 0\nsample: never\nseed: -1\n"
    with pytest.raises(InputError) as info:
        parse_scenario(text, "s.yaml")
    assert info.value.where == "s.yaml:3: machine.cpus"


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        load_scenario(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "no such" in info.value.what


def test_directory_is_not_a_scenario(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_scenario(tmp_path)


# --- the sysctl table --------------------------------------------------------------

HOST_VM = Path("/proc/sys/vm")
# Fixed defaults of a fresh 6.18 kernel that this project's host shows untouched.
FIXED = ["swappiness", "watermark_scale_factor", "watermark_boost_factor",
         "lowmem_reserve_ratio", "overcommit_memory", "overcommit_ratio", "overcommit_kbytes",
         "dirty_ratio", "dirty_background_ratio", "dirty_bytes", "dirty_background_bytes",
         "dirty_expire_centisecs", "dirty_writeback_centisecs", "page-cluster",
         "vfs_cache_pressure", "max_map_count", "panic_on_oom", "oom_dump_tasks",
         "oom_kill_allocating_task", "percpu_pagelist_high_fraction", "extfrag_threshold",
         "compaction_proactiveness", "min_slab_ratio", "min_unmapped_ratio",
         "numa_zonelist_order", "stat_refresh"]


def _host_names() -> list[str]:
    if not HOST_VM.is_dir():
        pytest.skip("no /proc/sys/vm here")
    return sorted(os.listdir(HOST_VM))


@pytest.mark.realkernel
def test_every_host_sysctl_is_known():
    missing = [n for n in _host_names() if n not in SYSCTLS and n not in NOT_MODELLED]
    assert missing == []


@pytest.mark.realkernel
@pytest.mark.parametrize("name", FIXED)
def test_default_text_equals_host(name):
    path = HOST_VM / name
    if not path.exists():
        pytest.skip(f"{name} not on this kernel")
    assert format_sysctl(f"vm.{name}") == path.read_text()


def test_table_entries_are_consistent():
    for name, s in SYSCTLS.items():
        assert s.name == name and s.doc and s.kind in ("int", "bool", "intvec", "string", "writeonly")
        assert s.computed == (s.default is None and s.kind != "writeonly")
        if s.kind == "int" and not s.computed:
            # dirty_bytes and dirty_background_bytes boot at 0 ("unset"), which
            # their handlers refuse on a write: the kernel's own asymmetry.
            unset = name in ("dirty_bytes", "dirty_background_bytes") and s.default == 0
            assert unset or s.minimum <= s.default <= s.maximum, name


def test_computed_defaults_need_a_value():
    assert {n for n, s in SYSCTLS.items() if s.computed} == {
        "min_free_kbytes", "user_reserve_kbytes", "admin_reserve_kbytes"}
    with pytest.raises(ValueError, match="computed"):
        format_sysctl("vm.min_free_kbytes")
    assert format_sysctl("vm.min_free_kbytes", 67584) == "67584\n"


@pytest.mark.parametrize("name,value,message", [
    ("vm.swappiness", 300, "vm.swappiness: 300 is out of range 0..200"),
    ("vm.watermark_scale_factor", 0, "out of range 1..3000"),
    ("vm.watermark_scale_factor", 3001, "out of range 1..3000"),
    ("vm.overcommit_memory", 3, "out of range 0..2"),
    ("vm.min_free_kbytes", -1, "out of range 0.."),
    ("vm.page-cluster", 32, "out of range 0..31"),
    ("vm.dirty_ratio", 101, "out of range 0..100"),
    ("vm.dirty_bytes", 0, "write vm.dirty_ratio instead"),
    ("vm.drop_caches", 0, "out of range 1..4"),
    ("vm.percpu_pagelist_high_fraction", 7, "at least 8"),
    ("vm.vfs_cache_pressure_denom", 99, "out of range 100.."),
    ("vm.swappiness", "+60", "expected an integer"),
    ("vm.swappiness", True, "expected an integer"),
    ("vm.swappiness", 1.5, "expected an integer"),
    ("vm.swapiness", 1, "did you mean vm.swappiness"),
    ("swappiness", 1, "write it vm.swappiness"),
    ("vm.shrink_inodes_with_pagecache", 1, "not modelled"),
    ("vm.lowmem_reserve_ratio", [1, 2], "expected 5 values"),
])
def test_validate_refuses(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_sysctl(name, value)


@pytest.mark.parametrize("name,value,stored", [
    ("vm.swappiness", 0, 0), ("vm.swappiness", 200, 200), ("vm.swappiness", " 60 ", 60),
    ("vm.swappiness", "0x10", 16), ("vm.swappiness", "060", 48),
    ("vm.overcommit_ratio", -1, -1), ("vm.drop_caches", 3, 3),
    ("vm.lowmem_reserve_ratio", "-5 256 32 0 0", (0, 256, 32, 0, 0)),
    ("vm.lowmem_reserve_ratio", [256, 256, 64, 1, 1], (256, 256, 64, 1, 1)),
])
def test_validate_accepts_as_the_kernel(name, value, stored):
    assert validate_sysctl(name, value) == stored


def test_initial_refuses_actions():
    with pytest.raises(ValueError, match="action"):
        validate_sysctl("vm.drop_caches", 1, initial=True)


def test_formats():
    assert format_sysctl("vm.swappiness") == "60\n"
    assert format_sysctl("vm.swappiness", 10) == "10\n"
    assert format_sysctl("vm.lowmem_reserve_ratio") == "256\t256\t32\t0\t0\n"
    assert format_sysctl("vm.numa_zonelist_order") == "Node\n"
    assert format_sysctl("vm.stat_refresh") == ""
    with pytest.raises(ValueError, match="write-only"):
        format_sysctl("vm.drop_caches")


def test_i386_table():
    table = sysctls_for("i386")
    assert "highmem_is_dirtyable" in table and "mmap_rnd_compat_bits" not in table
    assert "numa_stat" not in table
    assert format_sysctl("vm.lowmem_reserve_ratio", arch="i386") == "256\t32\t0\t0\n"
    assert table["mmap_min_addr"].maximum == (1 << 32) - 1
    assert validate_sysctl("vm.highmem_is_dirtyable", 1, "i386") == 1
    with pytest.raises(ValueError, match="only on i386"):
        validate_sysctl("vm.highmem_is_dirtyable", 1)
    assert lookup("vm.mmap_rnd_bits", "i386").default == 8


def test_defaults_cover_readable_files():
    d = defaults()
    assert d["swappiness"] == 60 and d["min_free_kbytes"] is None
    assert "drop_caches" not in d and "compact_memory" not in d
