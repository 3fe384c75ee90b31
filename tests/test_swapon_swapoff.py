"""swapon and swapoff in scenarios: priorities, bringing pages back, ENOMEM,
/proc/swaps byte for byte, and the scenario's references."""

from __future__ import annotations

import pytest

from linmem.cli import main
from linmem.errors import InputError
from linmem.workload.runner import run_scenario
from linmem.workload.scenario import parse_scenario

HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def run(text: str):
    result = run_scenario(parse_scenario(text, "s.yaml"))
    result.machine.check_invariants()
    return result


def swaps(files: dict) -> dict[str, tuple[str, int, int, int]]:
    """path -> (type, size kB, used kB, priority) from a /proc/swaps text."""
    rows = {}
    for line in files["swaps"].splitlines()[1:]:
        path, kind, size, used, prio = line.split()
        rows[path] = (kind, int(size), int(used), int(prio))
    return rows


def status(files: dict, pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status."""
    out = {}
    for line in files[f"{pid}/status"].splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            out[key] = int(value.split()[0])
    return out


def events(result, kind: str) -> list[dict]:
    return [e for e in result.events if e["event"] == kind]


def meminfo(files: dict) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1]) for line in files["meminfo"].splitlines()}


HOG = """
machine: {{ram: {ram}}}
swap:
{swap}
processes:
  - name: hog
    program: sleep
    steps:
      - mmap: {{as: buf, size: {size}}}
      - touch: {{region: buf, write: true}}
      - snapshot: swapped
{more}
"""


def hog(swap: str, size: str = "160MiB", ram: str = "96MiB", more: str = "", at: str = ""):
    return run(HOG.format(ram=ram, swap=swap, size=size, more=more) + at)


# --- priorities ---------------------------------------------------------------------

def test_the_higher_priority_area_is_used_first():
    result = hog("  - {path: /low, size: 256MiB, priority: 1}\n"
                 "  - {path: /high, size: 256MiB, priority: 10}")
    rows = swaps(result.snapshots["swapped"])
    assert rows["/high"][2] > 32 << 10                   # tens of MiB went out...
    assert rows["/low"][2] == 0                          # ...all to the higher priority


def test_a_full_higher_priority_area_spills_to_the_next():
    result = hog("  - {path: /low, size: 256MiB, priority: 1}\n"
                 "  - {path: /high, size: 16MiB, priority: 10}")
    rows = swaps(result.snapshots["swapped"])
    assert rows["/high"][2] == rows["/high"][1]          # full
    assert rows["/low"][2] > 0


def test_equal_priorities_take_turns_by_cluster():
    result = hog("  - {path: /a, size: 256MiB, priority: 5}\n"
                 "  - {path: /b, size: 256MiB, priority: 5}")
    rows = swaps(result.snapshots["swapped"])
    used_a, used_b = rows["/a"][2], rows["/b"][2]
    assert used_a > 0 and used_b > 0
    assert abs(used_a - used_b) <= 512 * 4               # at most one cluster apart


def test_default_priorities_count_down_from_minus_two():
    result = hog("  - {path: /s1, size: 64MiB}\n  - {path: /s2, size: 64MiB}\n"
                 "  - {path: /dev/zram0, size: 64MiB, type: zram}", size="4MiB")
    rows = swaps(result.final)
    assert [rows[p][3] for p in ("/s1", "/s2", "/dev/zram0")] == [-2, -3, -4]


def test_swapoff_moves_the_lower_default_priorities_up_and_swapon_takes_the_next():
    # mm/swapfile.c: swapoff of an area of negative priority raises those below it
    at = ("at:\n  - {time: 1s, swapoff: /s1}\n  - {time: 2s, snapshot: without}\n"
          "  - {time: 3s, swapon: /s1}\n  - {time: 4s, snapshot: again}\n")
    result = hog("  - {path: /s1, size: 64MiB}\n  - {path: /s2, size: 64MiB}\n"
                 "  - {path: /s3, size: 64MiB}", size="4MiB", more="      - sleep: 5s", at=at)
    off = swaps(result.snapshots["without"])
    assert "/s1" not in off and (off["/s2"][3], off["/s3"][3]) == (-2, -3)
    on = swaps(result.snapshots["again"])
    assert (on["/s1"][3], on["/s2"][3], on["/s3"][3]) == (-4, -2, -3)


# --- swapoff ------------------------------------------------------------------------

BACK = """
machine: {ram: 256MiB}
swap:
  - {path: /swapfile, size: 512MiB}
processes:
  - name: keeper
    program: sleep
    steps:
      - mmap: {as: buf, size: 160MiB}
      - touch: {region: buf, write: true}
      - sleep: 2s
      - snapshot: swapped
      - sleep: 4s
      - snapshot: after
      - sleep: 1s
  - name: pusher
    program: sleep
    start: 1s
    steps:
      - mmap: {as: buf, size: 180MiB}
      - touch: {region: buf, write: true}
      - exit: 0
at:
  - {time: 5s, swapoff: /swapfile}
"""


def test_swapoff_brings_every_page_back():
    result = run(BACK)
    before, after = result.snapshots["swapped"], result.snapshots["after"]
    keeper = status(before, 1)
    assert keeper["VmSwap"] > 16 << 10                  # the pusher pushed it out
    assert keeper["VmRSS"] + keeper["VmSwap"] >= 160 << 10
    back = status(after, 1)
    assert back["VmSwap"] == 0
    assert back["RssAnon"] >= 160 << 10                  # all of it resident again
    assert after["swaps"] == HEADER                      # the area is gone
    info = meminfo(after)
    assert info["SwapTotal"] == info["SwapFree"] == info["SwapCached"] == 0
    off, = events(result, "swapoff")
    assert off["path"] == "/swapfile" and "errno" not in off
    assert off["pages_read"] > 0                         # (the rest was in the swap cache)
    assert not events(result, "oom_kill")


def test_swapoff_without_the_memory_fails_with_enomem_and_leaves_the_area_on():
    at = "at:\n  - {time: 1s, swapoff: /swapfile}\n  - {time: 2s, snapshot: after}\n"
    result = hog("  - {path: /swapfile, size: 256MiB}", size="200MiB",
                 more="      - sleep: 3s", at=at)
    off, = events(result, "swapoff")
    assert off["errno"] == "ENOMEM" and off["path"] == "/swapfile"
    rows = swaps(result.snapshots["after"])
    assert rows["/swapfile"][2] > 64 << 10               # still on, still used
    info = meminfo(result.snapshots["after"])
    assert info["SwapTotal"] == 262140
    assert not events(result, "oom_kill")                # swapoff is the OOM origin: no one killed
    assert [e["name"] for e in events(result, "exit")] == ["hog"]
    assert result.processes[0]["exit"] == "code 0"


def test_swapoff_with_too_little_memory_moves_the_pages_to_another_area():
    # try_to_unuse frees the swap copy of each page it brings back
    # (folio_free_swap), so reclaim gives the pages slots of the area still on
    at = "at:\n  - {time: 2s, swapoff: /swapfile}\n  - {time: 3s, snapshot: after}\n"
    result = hog("  - {path: /swapfile, size: 256MiB}\n"
                 "  - {path: /dev/zram0, size: 160MiB, type: zram, priority: 50, active: false}",
                 size="160MiB", ram="128MiB",
                 more="      - swapon: /dev/zram0\n      - sleep: 5s", at=at)
    before = swaps(result.snapshots["swapped"])
    assert before["/swapfile"][2] > 32 << 10 and "/dev/zram0" not in before
    off = events(result, "swapoff")[0]
    assert "errno" not in off and off["pages_read"] > 0
    after = swaps(result.snapshots["after"])
    assert list(after) == ["/dev/zram0"] and after["/dev/zram0"][2] > 16 << 10
    assert status(result.snapshots["after"], 1)["VmSwap"] == after["/dev/zram0"][2]
    assert not events(result, "oom_kill")


def test_swapoff_fails_with_enomem_when_the_commit_limit_refuses_it():
    # security_vm_enough_memory_mm() with vm.overcommit_memory 2: Committed_AS
    # plus the area's pages must stay below CommitLimit (which counts the area):
    # 51200 + 65535 pages > 256MiB x 50% + 65535
    text = HOG.format(ram="256MiB", swap="  - {path: /swapfile, size: 256MiB}", size="200MiB",
                      more="      - swapoff: /swapfile\n      - snapshot: after")
    text = text.replace("swap:\n", "sysctl: {vm.overcommit_memory: 2}\n"
                        "swap:\n", 1)
    result = run(text)
    off, = events(result, "swapoff")
    assert off["errno"] == "ENOMEM" and off["pid"] == 1 and off["pages_read"] == 0
    assert "commit limit" in off["message"]
    assert "/swapfile" in swaps(result.snapshots["after"])


# --- swapon -------------------------------------------------------------------------

def test_an_inactive_area_is_off_until_a_swapon_step():
    result = hog("  - {path: /swapfile, size: 64MiB}\n"
                 "  - {path: /dev/zram0, size: 128MiB, type: zram, priority: 100, active: false}",
                 size="8MiB", more="      - swapon: /dev/zram0\n      - snapshot: now-on\n"
                                   "      - swapon: /dev/zram0\n      - swapoff: /dev/zram0\n"
                                   "      - swapoff: /dev/zram0\n      - snapshot: now-off")
    assert list(swaps(result.snapshots["swapped"])) == ["/swapfile"]
    assert swaps(result.snapshots["now-on"])["/dev/zram0"] == ("partition", 131068, 0, 100)
    ons = events(result, "swapon")
    assert [(e["path"], e.get("pid"), e.get("errno")) for e in ons] == \
        [("/swapfile", None, None), ("/dev/zram0", 1, None), ("/dev/zram0", 1, "EBUSY")]
    assert ons[1]["pages"] == 32767 and ons[1]["priority"] == 100
    offs = events(result, "swapoff")
    assert [e.get("errno") for e in offs] == [None, "EINVAL"]
    assert list(swaps(result.snapshots["now-off"])) == ["/swapfile"]


# --- /proc/swaps --------------------------------------------------------------------

def test_proc_swaps_is_byte_exact():
    long = "/var/lib/swap/a-rather-long-swap-file-name.img"       # 46 characters
    result = hog(f"  - {{path: /swapfile, size: 256MiB}}\n"
                 f"  - {{path: /dev/zram0, size: 64MiB, type: zram}}\n"
                 f"  - {{path: {long}, size: 10GiB, priority: 7}}\n"
                 f"  - {{path: /dev/sdb2, size: 1GiB, type: partition, priority: 32767}}",
                 size="4MiB")
    assert result.final["swaps"] == (
        HEADER
        + "/swapfile" + " " * 31 + "file\t\t262140\t\t0\t\t-2\n"
        + "/dev/zram0" + " " * 30 + "partition\t65532\t\t0\t\t-3\n"
        + long + " " + "file\t\t10485756\t0\t\t7\n"
        + "/dev/sdb2" + " " * 31 + "partition\t1048572\t\t0\t\t32767\n")


# --- the scenario's references ------------------------------------------------------

@pytest.mark.parametrize("text,where", [
    ("machine: {ram: 1GiB}\nswap:\n  - {path: /swapfile, size: 64MiB}\n"
     "at:\n  - {time: 1s, swapoff: /nope}\n", "s.yaml:5: at[0].swapoff"),
    ("machine: {ram: 1GiB}\nprocesses:\n  - name: a\n    steps:\n      - swapon: /swapfile\n",
     "s.yaml:5: processes[0].steps[0].swapon"),
])
def test_an_unknown_swap_area_is_a_scenario_error(text, where):
    with pytest.raises(InputError) as info:
        parse_scenario(text, "s.yaml")
    assert info.value.where == where
    assert "no swap area" in info.value.what and "list it under `swap`" in info.value.what


def test_an_at_event_has_one_action():
    with pytest.raises(InputError) as info:
        parse_scenario("machine: {ram: 1GiB}\nswap:\n  - {path: /s, size: 64MiB}\n"
                       "at:\n  - {time: 1s, swapon: /s, swapoff: /s}\n", "s.yaml")
    assert "exactly one of snapshot, sysctl, swapon, swapoff" in info.value.what


def test_the_cli_refuses_an_unknown_swap_area_with_status_2(tmp_path, capsys):
    scen = tmp_path / "s.yaml"
    scen.write_text("machine: {ram: 1GiB}\nat:\n  - {time: 1s, swapoff: /swapfile}\n")
    assert main(["run", str(scen), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{scen}:3: at[0].swapoff" in err
    assert not (tmp_path / "out").exists()
