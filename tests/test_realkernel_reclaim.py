"""Memory running short: what Linux 6.18 does, recorded and live.

tests/realkernel/reclaim.c runs each experiment phase by phase inside a fresh
cgroup v1 memory group with a small limit; tests/realkernel/reclaim.py
snapshots the group's memory.stat and counters, /proc/vmstat and the swap
area it added around every phase (and at checkpoints inside a phase), reads
the kernel's memcg OOM report from /dev/kmsg, and records everything in
tests/data/realkernel/reclaim-6.18.json (see the README there).

Every check runs against the recorded data (always: each fact must hold in
all three recorded runs) and against a live run of a quick subset (root,
cgroup v1 memory controller, gcc, loop devices, /proc/kpageflags, zram;
skipped with the reason otherwise, marked ``realkernel`` and ``slow``).

Exact: the program's getrusage faults, the memcg's memory.stat after a settle
phase, the swap area's used pages, the kpageflags scan, cachestat(2) of the
files, the kernel's OOM report. Global /proc/vmstat counters (pswpin,
pswpout, workingset_*, pgscan/pgsteal) include the rest of the machine and
lag by the per-cpu thresholds: they are checked within LAG or as ratios.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from realkernel import harness
from realkernel import reclaim as rk

PAGE = 4096
RECORDED = rk.load_recorded()

#: Pages a global /proc/vmstat counter may be off in one phase: per-cpu
#: deltas not yet folded in (2 CPUs x "vm stats threshold") and the rest of a
#: shared machine (which does not swap, but reads and reclaims files).
LAG = 256
#: Pages of the group that are not the experiment's: the program's own
#: mlocked text, libraries and buffers (~600 pages, unevictable), its page
#: tables, ext4 metadata.
OVERHEAD = 1024

#: The experiments re-run live (quick ones).
LIVE = ("anon-oom 64M 32M 128M", "anon-swap-passes zram 64M 128M 3 write",
        "file-refault 64M 48M 1M 3 32M", "oom-victim adj", "oom-victim size",
        "anon-plus-streaming 160M 96M 120M 60 same")


def pages(size: str) -> int:
    return harness.parse_size(size) // PAGE


# ------------------------------------------------------------------ sources

@pytest.fixture(scope="module")
def live_runner():
    """Run a spec once on this machine (cached per module)."""
    reason = (rk.skip_reason(loop=True, swap="zram") or rk.kmsg_skip_reason())
    if reason:
        pytest.skip(reason)
    facts = rk.kernel_facts()
    if facts["release"].split(".")[:2] != RECORDED["kernel"]["release"].split(".")[:2]:
        pytest.skip(f"kernel {facts['release']} is not the recorded "
                    f"{RECORDED['kernel']['release']}")
    if facts["lru_gen_enabled"] not in (None, "0x0000"):
        pytest.skip("MGLRU is enabled here; the record is of the classic LRU")
    if rk.swap_in_use():
        pytest.skip(f"swap is active on this machine ({rk.swap_in_use()}): the OOM "
                    "experiments need a machine without swap")
    cache: dict[str, dict] = {}

    def run(spec_id: str) -> dict:
        if spec_id not in cache:
            for _ in range(3):           # again if another process disturbed it
                cache[spec_id] = rk.run_once(tuple(spec_id.split()))
                if not rk.disturbances(cache[spec_id]):
                    break
        return cache[spec_id]
    return run


class Source:
    """Results by id; ``runs(id)`` gives the derived facts of every run."""

    def __init__(self, get, live: bool):
        self._get, self.live = get, live

    def __call__(self, spec_id: str) -> dict:
        if self.live and spec_id not in LIVE:
            pytest.skip(f"{spec_id} is only checked in the recorded data")
        result = self._get(spec_id)
        assert "error" not in result, result["error"]
        return result

    def runs(self, spec_id: str) -> list[dict]:
        result = self(spec_id)
        return result.get("derived_runs", [result["derived"]])


@pytest.fixture(params=["recorded", pytest.param(
    "live", marks=[pytest.mark.realkernel, pytest.mark.slow])])
def results(request):
    if request.param == "recorded":
        return Source(lambda spec_id: RECORDED["results"][spec_id], live=False)
    return Source(request.getfixturevalue("live_runner"), live=True)


def phase(result, name):
    return result["phases"][name]


def limit_pages(result) -> int:
    return result["group"]["limit_bytes"] // PAGE


# --------------------------------------------------------- 1. anon-oom

OOM = "anon-oom 64M 32M 128M"


def test_anon_beyond_the_limit_is_killed_with_sigkill(results):
    r = results(OOM)
    for d in results.runs(OOM):
        assert (d["exit_status"], d["signal"]) == (137, 9)
        assert d["oom_kill"] == 1 and d["killed"] and d["killed_pid_is_program"]
    assert r["exit"]["status"] == 137 and r["exit"]["signal"] == 9
    assert r["cgroup"]["oom_kill"] == 1
    assert phase(r, "touch-anon")["killed"] is True
    assert "settle-anon" not in r["phases"]            # it never got there
    (report,) = r["oom"]
    assert report["constraint"]["constraint"] == "CONSTRAINT_MEMCG"
    assert report["killed"]["pid"] == r["pid"]
    assert report["usage"]["memory"]["usage_kb"] == report["usage"]["memory"]["limit_kb"] \
        == 64 * 1024


def test_the_page_cache_is_reclaimed_before_the_kill(results):
    r = results(OOM)
    n = pages("32M")
    limit = limit_pages(r)
    for d in results.runs(OOM):
        # The file was cached (the machine's DAMON scheme may take a few
        # dozen of its pages at once: seen 69).
        assert d["cache_after_read"] >= n - 256
        # ... and gone at the OOM (but a few dozen pages: seen 0-17)
        assert d["cache_at_oom"] <= 64
        assert d["cache_at_last_checkpoint"] <= 256 + 64   # (1 MiB before it)
        # The group's usage at the OOM: anon only.
        assert d["rss_at_oom"] >= limit - OVERHEAD
        # Reclaim began only when cache + anon reached the limit.
        assert limit - n - OVERHEAD - 256 <= d["first_reclaim_at_pages"] <= limit - n + 256
        # Pages written before death: the limit less the program's own.
        assert limit - OVERHEAD <= d["pages_touched"] <= limit


def test_memsw_limit_hit_first_leaves_failcnt_zero(results):
    """With memsw == limit and no swap, the charge fails on memory+swap
    first: memory.failcnt stays 0, and memsw failcnt is not counted on 6.18."""
    r = results(OOM)
    assert r["cgroup"]["failcnt"] == 0 and r["cgroup"]["memsw_failcnt"] == 0
    assert r["cgroup"]["max_usage"] == limit_pages(r)


# ------------------------------------------------------ 2. swap passes

SWAPFILE = "anon-swap-passes swapfile 64M 128M 3 write"
ZRAM = "anon-swap-passes zram 64M 128M 3 write"
SWAP_READ = "anon-swap-passes swapfile 64M 128M 3 read"


def _passes(d):
    return [d[f"pass-{i}"] for i in (1, 2, 3)]


@pytest.mark.parametrize("spec", [SWAPFILE, ZRAM, SWAP_READ])
def test_first_pass_swaps_out_what_does_not_fit(results, spec):
    r = results(spec)
    n = pages("128M")
    for d in results.runs(spec):
        p1 = d["pass-1"]
        assert p1["majflt"] <= 1 and n <= p1["minflt"] <= n + 8
        # Everything beyond the limit went to swap, once; reclaim writes a
        # little ahead (pages under writeback wait in the swap cache).
        assert n - limit_pages(r) - LAG <= p1["pswpout"] <= n - limit_pages(r) + 2 * OVERHEAD
    # Every page is mapped, swapped out, or swapped out and still in the swap
    # cache (unmapped, written); "rss" also holds the program's own locked
    # pages ("unevictable").
    m = phase(r, "settle-1")["memcg_after"]
    assert abs(m["rss"] + m["swap"] + m["swapcached"] - n - m["unevictable"]) <= 16
    assert r["exit"]["status"] == 0 and r["cgroup"]["oom_kill"] == 0


@pytest.mark.parametrize("spec", [SWAPFILE, SWAP_READ])
def test_swapfile_swap_in_reads_ahead_page_cluster_pages(results, spec):
    """page-cluster 3: each major fault reads 8 slots; the next 7 pages are
    minor faults on the swap cache (VMA readahead with every hit)."""
    cluster = 1 << RECORDED["kernel"]["vm"]["page-cluster"]
    n = pages("128M")
    for d in results.runs(spec):
        for p in _passes(d)[1:]:
            assert n // cluster - 8 <= p["majflt"] <= n // cluster + 8
            # A few pages of the previous pass's end may still be mapped.
            assert n - 16 <= p["majflt"] + p["minflt"] <= n
            assert cluster - 0.05 <= p["pswpin_per_majflt"] <= cluster + 0.05
            assert abs(p["pswpin"] - n) <= LAG
            assert abs(p["swap_ra_hit"] - (n - p["majflt"])) <= LAG


def test_zram_swap_in_is_a_major_fault_per_page(results):
    """zram is synchronous: no readahead, no swap cache; every page read
    back is one major fault and one pswpin."""
    r = results(ZRAM)
    n = pages("128M")
    for d in results.runs(ZRAM):
        for p in _passes(d)[1:]:
            # (a few dozen of the previous pass's last pages may survive)
            assert n - 64 <= p["majflt"] <= n and p["minflt"] <= 4
            assert abs(p["pswpin"] - p["majflt"]) <= 8
            assert p["swap_ra"] <= 8
    for name in ("settle-1", "settle-2", "settle-3"):
        assert phase(r, name)["memcg_after"]["swapcached"] == 0
    assert r["swap"]["kind"] == "zram"


@pytest.mark.parametrize("spec", [SWAPFILE, ZRAM, SWAP_READ])
def test_swap_used_is_swapped_out_plus_swap_cache(results, spec):
    """The area's used slots = the group's swap + its swap cache pages (a
    page read back keeps its slot until written)."""
    r = results(spec)
    for name in ("settle-1", "settle-2", "settle-3"):
        p = phase(r, name)
        m = p["memcg_after"]
        assert abs(p["swap_used"] - (m["swap"] + m["swapcached"])) <= 64, (name, p)


def test_read_passes_drop_clean_swap_cache_without_writing(results):
    """Pages read back but not written keep their swap slot: evicting them
    again writes nothing (pass 3); pass 2 writes only the pages that had
    stayed resident in pass 1 (never written before)."""
    r = results(SWAP_READ)
    n = pages("128M")
    for d in results.runs(SWAP_READ):
        p1, p2, p3 = _passes(d)
        assert p3["pswpout"] <= LAG
        assert abs(p2["pswpout"] - (n - p1["pswpout"])) <= OVERHEAD
    assert phase(r, "settle-2")["memcg_after"]["swapcached"] >= limit_pages(r) - 2 * OVERHEAD


def test_write_passes_write_every_evicted_page_again(results):
    """A written page loses its slot (write fault on an exclusive swap-cache
    page): each pass writes the pages it evicts again."""
    n = pages("128M")
    for spec in (SWAPFILE, ZRAM):
        for d in results.runs(spec):
            for p in _passes(d)[1:]:
                assert p["pswpout"] >= n - 2 * OVERHEAD


# --------------------------------------------------- 3. file refaults

THRASH = ("file-refault 64M 128M 4K", "file-refault 64M 128M 1M")
WARM = "file-refault 64M 48M 1M 3 32M"


@pytest.mark.parametrize("spec", THRASH)
def test_a_file_twice_the_limit_refaults_every_page_and_is_never_activated(results, spec):
    """The classic LRU's weakness: a cyclic read of 2 x the memory. Every page
    of passes 2 and 3 is a refault, but the refault distance (~half the
    file) exceeds the workingset size (active file ~0, no swap): nothing is
    activated, the file thrashes."""
    r = results(spec)
    n = pages("128M")
    for d in results.runs(spec):
        p1, p2, p3 = (d[f"pass-{i}"] for i in (1, 2, 3))
        assert n <= p1["memcg_pgpgin"] <= n + 16 and p1["memcg_refault_file"] == 0
        for p in (p2, p3):
            # (the few activated pages stay and are not read again)
            assert n - 256 <= p["memcg_refault_file"] <= p["memcg_pgpgin"] <= n + 16
            assert p["active_pages"] <= 256                # ~no activation
            assert p["activate_file"] <= LAG
            assert p["majflt"] == 0                        # read(2): no faults
        for p in (p1, p2, p3):
            cached, dirty, wb, evicted, recent = p["cachestat"]
            assert cached == p["resident"] and cached + evicted == n
            assert limit_pages(r) - 2 * OVERHEAD <= cached <= limit_pages(r)
            assert p["referenced_pages"] >= cached - 64    # one read: referenced


def test_refaults_of_a_recently_evicted_file_are_activated(results):
    """A file made active (read twice: 32M) protects the workingset: a 48M
    file read under the 64M limit is partly evicted (pass 1). On pass 2 every
    page refaults (the resident rest is evicted before the read reaches it),
    and the refaults of the pages evicted in pass 1 are recent (distance <=
    the active file) and activated; on pass 3 every refault is activated and
    the whole file is resident after it (the warm file made room)."""
    r = results(WARM)
    n = pages("48M")
    for d in results.runs(WARM):
        p1, p2, p3 = (d[f"pass-{i}"] for i in (1, 2, 3))
        evicted = n - p1["resident"]
        assert p1["memcg_refault_file"] == 0 and p1["cachestat"][3] == evicted > 0
        assert p1["active_pages"] >= pages("16M")          # the warm file, partly
        assert n - 64 <= p2["memcg_refault_file"] <= n
        assert evicted - LAG <= p2["activate_file"] <= 2 * evicted
        assert p2["active_pages"] - p1["active_pages"] >= evicted - LAG
        assert abs(p3["activate_file"] - p3["memcg_refault_file"]) <= LAG
        assert p3["resident"] == n
    warm = phase(r, "warm-2")
    assert warm["memcg_after"]["active_file"] >= pages("32M") - 256         # 2nd read


# ---------------------------------------------- 4. anon vs. file: swappiness

def streaming(s, how=""):
    return (f"anon-plus-streaming 160M 96M 200M {s}" if not how
            else f"anon-plus-streaming 160M 96M 120M {s} {how}")


@pytest.mark.parametrize("s", (0, 60))
def test_streaming_reads_do_not_swap_at_swappiness_0_and_60(results, s):
    """Use-once file pages (three distinct 200M files): with inactive file
    to spare and no refaults, reclaim trims the cache only (0: memcg
    reclaim never scans anon; 60: cache_trim_mode)."""
    n = pages("96M")
    for d in results.runs(streaming(s)):
        assert d["pswpout"] <= LAG and d["swap_after"] == 0
        assert d["rss_after"] == d["rss_before"] >= n


def test_swappiness_100_and_200_swap_at_the_first_reclaim(results):
    """At 100 and 200 the first reclaim of the stream may scan anon: the
    group's LRU sizes it decides by are the memcg statistics as last flushed
    (every 2 s), which can still show no inactive file, so cache_trim_mode is
    off and SCAN_FRACT gives anon all (200) or part (100) of the scan until
    the next flush. At 200 the whole anon memory went to swap in every run of
    this record (another recording saw 0 and 14811 pages: when the flush
    came first, nothing); at 100 a few hundred pages."""
    n = pages("96M")
    runs200 = results.runs(streaming(200))
    assert max(d["swap_after"] for d in runs200) >= n - 64
    for d in runs200:
        assert d["swap_after"] in range(0, n + 1)
        assert d["rss_after"] + d["swap_after"] >= n
        if d["swap_after"] >= n - 64:
            assert d["rss_after"] <= OVERHEAD
        assert all(s["swap"] == d["swap_after"] for s in d["per_stream"])   # stream 1 only
    for d in results.runs(streaming(100)):
        assert d["swap_after"] <= pages("8M")
        assert all(s["swap"] == d["swap_after"] for s in d["per_stream"])


@pytest.mark.parametrize("s", (100, 200))
def test_with_inactive_file_already_counted_streaming_never_swaps(results, s):
    """The same, after 40M of use-once file pages read and settled (their
    LRU sizes flushed): the first reclaim finds plenty of inactive file and
    trims the cache only (cache_trim_mode), whatever the swappiness."""
    for d in results.runs(f"anon-plus-streaming 160M 96M 200M {s} distinct 40M"):
        assert d["swap_after"] == 0 and d["rss_after"] == d["rss_before"]
        assert d["pswpout"] <= LAG


def test_swap_grows_with_swappiness(results):
    for how in ("", "same"):
        swapped = [max(d["swap_after"] for d in results.runs(streaming(s, how)))
                   for s in rk.SWAPPINESS]
        assert swapped == sorted(swapped), (how, swapped)
        assert swapped[0] == 0


def test_rereads_that_refault_recently_make_reclaim_swap(results):
    """Reading a 120M file again (its refaults are recent: within active +
    anon workingset) deactivates file pages and lets reclaim scan anon even
    at swappiness 60; at 0, memcg reclaim never swaps."""
    for d in results.runs(streaming(0, "same")):
        assert d["pswpout"] <= LAG and d["swap_after"] == 0
    for d in results.runs(streaming(60, "same")):
        assert d["swap_after"] >= pages("16M")
        assert d["per_stream"][0]["swap"] == 0             # the first read: none


# --------------------------------------------------------- 5. OOM victim

VICTIM = {"size": 0, "adj": 1, "self": 2}


@pytest.mark.parametrize("scenario", sorted(VICTIM))
def test_the_victim_has_the_highest_badness(results, scenario):
    """badness = rss + swapents + pgtables/4096 + adj x totalpages/1000,
    totalpages = the memcg limit (no swap): the largest process, unless an
    oom_score_adj outweighs it; the allocating process is not preferred."""
    spec = f"oom-victim {scenario}"
    r = results(spec)
    for d in results.runs(spec):
        assert d["oom_kill"] == 1 and d["reports"] == 1
        assert d["killed_index"] == [VICTIM[scenario]]
        assert d["highest_badness_index"] == d["report_victim_index"] == VICTIM[scenario]
        assert d["totalpages"] == limit_pages(r)
    for i, p in enumerate(r["processes"]):
        if i == VICTIM[scenario]:
            assert (p["exit"]["status"], p["exit"]["signal"]) == (137, 9)
        else:
            assert p["exit"] == {**p["exit"], "status": 0, "signal": 0}


@pytest.mark.parametrize("scenario", sorted(VICTIM))
def test_proc_oom_score_follows_the_formula(results, scenario):
    """/proc/PID/oom_score = (1000 + badness x 1000 / totalpages) x 2 / 3
    with the global totalpages (RAM + swap), read before the OOM."""
    r = results(f"oom-victim {scenario}")
    total = RECORDED["kernel"]["mem_total_kb"] // 4            # totalram_pages, no swap
    for p in r["processes"]:
        st = p["status"]
        points = (st["VmRSS"] + st["VmPTE"]) // 4 + p["adj"] * (total // 1000)
        expect = (1000 + points * 1000 // total) * 2 // 3
        assert abs(p["oom_score"] - expect) <= 1, p
        assert p["oom_score_adj"] == p["adj"] == p["info"]["oom_score_adj"]


def test_oom_report_lists_the_group_tasks(results):
    r = results("oom-victim adj")
    (report,) = r["oom"]
    assert {t["pid"] for t in report["tasks"]} == {p["pid"] for p in r["processes"]}
    for t in report["tasks"]:
        p = next(p for p in r["processes"] if p["pid"] == t["pid"])
        assert t["oom_score_adj"] == p["adj"]
        assert t["swapents"] == 0
    killed = report["killed"]
    assert killed["oom_score_adj"] == 400 and killed["anon_rss_kb"] >= 24 * 1024


# ---------------------------------------------------------- the data itself

def test_recorded_data_covers_the_matrix():
    kernel = RECORDED["kernel"]
    assert kernel["release"].startswith("6.18") and kernel["page_size"] == PAGE
    assert kernel["vm"]["page-cluster"] == 3 and kernel["swap_total_kb"] == 0
    assert kernel["zswap_enabled"] in (None, "N")
    ids = [rk.spec_id(s) for s in rk.matrix()]
    assert ids == list(RECORDED["results"])
    for spec in rk.matrix():
        r = RECORDED["results"][rk.spec_id(spec)]
        assert "error" not in r, (spec, r["error"])
        assert r["runs"] == 3 and len(r["derived_runs"]) == 3
        for key in ("group", "cgroup", "oom", "swap", "derived", "seconds"):
            assert key in r, (spec, key)
        assert r["seconds"] < 60
        for name, p in r.get("phases", {}).items():
            for key in ("memcg", "memcg_after", "vmstat", "vmstat_after"):
                assert key in p, (spec, name, key)
            assert set(rk.VMSTAT_EVENTS) == set(p["vmstat"])
            if not p.get("killed"):
                for key in ("minflt", "majflt", "us", "status", "resident", "cachestat"):
                    assert key in p, (spec, name, key)
            if name.startswith("settle"):
                assert "scan" in p and p["us"] >= rk.SETTLE_SECONDS * 1e6
        if spec[0] in ("anon-swap-passes", "anon-plus-streaming"):
            assert r["swap"]["kind"] == spec[1] if spec[0] == "anon-swap-passes" \
                else r["swap"]["kind"] == "swapfile"
            assert r["swap"]["priority"] == rk.SWAP_PRIORITY
            assert r["swap"]["areas_active"] == [r["swap"]["areas_active"][0]]
        else:
            assert r["swap"]["areas_active"] == []        # OOM runs: no swap anywhere
        if "fs" in r:
            assert "data=journal" in r["fs"]["mount_options"]
            assert r["fs"]["loop_direct_io"] is True


def test_recorded_results_by_experiment():
    passes = rk.recorded_results("anon-swap-passes")
    assert set(passes) == {SWAPFILE, ZRAM, SWAP_READ}
    assert set(rk.recorded_results("oom-victim")) == {f"oom-victim {s}" for s in VICTIM}
    assert rk.recorded_results("file-refault")[WARM]["args"] == ["64M", "48M", "1M", "3", "32M"]


def test_oom_report_parser():
    lines = [
        "reclaim invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "CPU: 1 UID: 0 PID: 7 Comm: reclaim Not tainted 6.18.0 #1 PREEMPT(voluntary)",
        " dump_stack_lvl+0x5d/0x80",
        "memory: usage 65536kB, limit 65536kB, failcnt 0",
        "Memory cgroup stats for /a/g:",
        "cache 0",
        "rss 66650112",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
        "swapents oom_score_adj name",
        "[      7]     0     7    33910    16579    16224      355         0   176128        0"
        "             0 reclaim",
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/a/g,task_memcg=/a/g,task=reclaim,pid=7,uid=0",
        "Memory cgroup out of memory: Killed process 7 (reclaim) total-vm:135640kB, "
        "anon-rss:64896kB, file-rss:1420kB, shmem-rss:0kB, UID:0 pgtables:172kB "
        "oom_score_adj:0",
    ]
    (rep,) = rk.oom_reports(lines, "g")
    assert rep["stats"] == {"cache": 0, "rss": 66650112}
    assert rep["tasks"][0]["rss"] == 16579 and rep["tasks"][0]["pgtables_bytes"] == 176128
    assert rep["killed"]["pid"] == 7 and rep["usage"]["memory"]["limit_kb"] == 65536
    assert rk.badness(rep["tasks"][0], 16384) == 16579 + 43
    assert rk.oom_reports(lines, "other") == []


# ----------------------------------------------------------------- cleanup

def _leftovers() -> list[str]:
    out = []
    parent = harness.cgroup_parent()
    if parent is not None:
        out += [str(p) for p in parent.glob(f"{harness.CGROUP_PREFIX}{os.getpid()}-*")]
    out += [str(p) for p in Path(tempfile.gettempdir()).glob(f"{rk.SWAP_PREFIX}{os.getpid()}-*")]
    out += [name for name in rk.swap_in_use() if rk.SWAP_PREFIX in name]
    return out


@pytest.mark.realkernel
@pytest.mark.parametrize("kind", ("swapfile", "zram"))
def test_swap_area_is_removed_when_the_body_fails(kind):
    reason = rk.swapfile_skip_reason() if kind == "swapfile" else rk.zram_skip_reason()
    if reason:
        pytest.skip(reason)
    zrams = sorted(Path("/sys/block").glob("zram*"))
    with pytest.raises(ZeroDivisionError):
        with rk.swap_area(kind, size=16 << 20) as swap:
            assert swap.name in rk.swap_in_use() and swap.used_pages() == 0
            name = swap.name
            1 / 0
    assert name not in rk.swap_in_use()
    assert sorted(Path("/sys/block").glob("zram*")) == zrams
    assert _leftovers() == []


@pytest.mark.realkernel
@pytest.mark.slow
def test_live_runs_left_nothing_behind(live_runner):
    zrams = sorted(Path("/sys/block").glob("zram*"))
    swaps = rk.swap_in_use()
    live_runner(ZRAM)
    assert rk.swap_in_use() == swaps
    assert sorted(Path("/sys/block").glob("zram*")) == zrams
    assert _leftovers() == []
