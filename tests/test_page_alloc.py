"""The buddy allocator: split and merge, migratetypes, per-cpu lists, watermarks,
the zonelist fallback, and its invariants under random use."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linmem.engine import buddy as B
from linmem.kernel.machine import Machine
from linmem.mm import gfp as G
from linmem.procfs.buddyinfo import render_buddyinfo, render_pagetypeinfo
from linmem.procfs.zoneinfo import render_zoneinfo

NORMAL, DMA32, DMA = 2, 1, 0


@pytest.fixture(scope="module")
def m8():
    return Machine(ram=8 << 30)


def fresh(ram=8 << 30, **kw) -> Machine:
    return Machine(ram=ram, **kw)


def free_pages_in_blocks(pa, zid):
    return int(sum(int(n) << o for o, n in enumerate(pa.free_area_nr_free(zid))))


def test_boot_state():
    m = fresh()
    pa = m.page_alloc
    m.check_invariants()
    for z in pa.zones:
        assert pa.nr_free_pages(z.zid) == free_pages_in_blocks(pa, z.zid) == pa.managed[z.zid]
    assert pa.pcp_pages() == 0
    # all pageblocks start movable, all free memory sits on the movable lists
    assert pa.S.nfree[:, :, B.MIGRATE_MOVABLE].sum() == pa.S.nfree.sum()


def test_unmovable_allocation_claims_a_max_order_block_and_merges_back():
    """__rmqueue_claim takes the largest block of another type: an order-10
    block is re-typed Unmovable (two pageblocks) and split down to order 4."""
    m = fresh()
    pa = m.page_alloc
    before = pa.free_area_nr_free(NORMAL).copy()
    pfn = pa.alloc_pages(4, G.GFP_KERNEL)
    assert pa.zones[NORMAL].start_pfn <= pfn < pa.zones[NORMAL].end_pfn
    after = pa.free_area_nr_free(NORMAL)
    assert (after - before).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, -1]
    assert pa.pageblock_counts(NORMAL)[B.MIGRATE_UNMOVABLE] == 2
    assert pfn % 1024 == 0                      # the low end of the split block
    assert pa.S.nfree[NORMAL, 4:10, B.MIGRATE_UNMOVABLE].tolist() == [1] * 6
    m.check_invariants()
    pa.free_pages(pfn, 4)
    assert (pa.free_area_nr_free(NORMAL) == before).all()     # merged back to order 10
    assert pa.S.nfree[NORMAL, 10, B.MIGRATE_UNMOVABLE] == 1   # on its new type's list
    m.check_invariants()


def test_buddy_of_a_block_is_pfn_xor_size():
    """Two allocated buddies (x, x ^ 32) merge when both are freed."""
    m = fresh(ram=1 << 30)
    pa = m.page_alloc
    blocks = {pa.alloc_pages(5, G.GFP_HIGHUSER_MOVABLE) for _ in range(64)}
    x = next(p for p in sorted(blocks) if p ^ 32 in blocks)
    is_free_order5 = lambda p: bool(pa.S.flags[p] & B.PG_buddy) and pa.S.order[p] == 5  # noqa
    free0 = pa.nr_free_pages()
    pa.free_pages(x, 5)
    assert is_free_order5(x)
    pa.free_pages(x ^ 32, 5)
    assert not is_free_order5(x) and not is_free_order5(x ^ 32)    # merged upwards
    head = x & ~63
    assert pa.S.flags[head] & B.PG_buddy and pa.S.order[head] >= 6 or \
        any(pa.S.flags[x & ~((1 << o) - 1)] & B.PG_buddy for o in range(7, 11))
    assert pa.nr_free_pages() == free0 + 64
    m.check_invariants()


def test_pcp_refill_takes_a_batch_from_the_buddy():
    """rmqueue_pcplist on an empty list: nr_pcp_alloc gives one batch (63 on a
    big zone), one page is handed out, 62 stay on the list, all of them leave
    NR_FREE_PAGES."""
    m = fresh()
    pa = m.page_alloc
    free0 = pa.nr_free_pages(NORMAL)
    pfn = pa.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, cpu=1)
    assert pa.S.pcp[NORMAL, 1, B.P_BATCH] == 63
    assert pa.nr_free_pages(NORMAL) == free0 - 63
    assert pa.pcp_pages(NORMAL) == 62
    # The first refill raised pcp->high from its boot value to high_min + batch.
    assert pa.S.pcp[NORMAL, 1, B.P_HIGH] == pa.S.pcp[NORMAL, 1, B.P_HIGH_MIN] + 63
    second = pa.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, cpu=1)
    # served from the list: the buddy lists do not move
    assert second != pfn and pa.nr_free_pages(NORMAL) == free0 - 63
    assert pa.pcp_pages(NORMAL) == 61
    assert pa.S.events[B.PGALLOC_DMA + NORMAL] == 2
    pa.free_pages(pfn, 0, cpu=1)
    assert pa.pcp_pages(NORMAL) == 62 and pa.nr_free_pages(NORMAL) == free0 - 63
    assert pa.S.phead[NORMAL, 1, B.order_to_pindex(B.MIGRATE_MOVABLE, 0)] == pfn  # list head
    pa.free_pages(second, 0, cpu=1)
    pa.drain_all_pages()
    assert pa.nr_free_pages(NORMAL) == free0
    m.check_invariants()


def test_pcp_frees_are_returned_in_bulk_above_high():
    """free_frozen_page_commit: a pcp never holds more than its (auto-tuned)
    high mark, at most high_max = managed / 8 / nr_cpus; above it the coldest
    pages go back to the buddy in bulk."""
    m = fresh(ram=1 << 30)
    pa = m.page_alloc
    pages = [pa.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE) for _ in range(40000)]
    p = pa.S.pcp[DMA32, 0]
    for pfn in pages:
        pa.free_pages(pfn, 0)
        assert p[B.P_COUNT] <= p[B.P_HIGH] <= p[B.P_HIGH_MAX]
    assert p[B.P_HIGH_MAX] == int(pa.managed[DMA32]) // 8 // 2
    assert 0 < pa.pcp_pages(DMA32) <= p[B.P_HIGH_MAX] < 40000
    assert pa.nr_free_pages() + pa.pcp_pages() == m.totalram_pages
    m.check_invariants()


def test_watermark_test_is_strict(m8):
    """__zone_watermark_ok: free pages equal to mark + lowmem_reserve fail."""
    S = m8.page_alloc.S
    mark = 1000
    reserve = int(S.zs[DMA32, B.ZS_LOWMEM_RESERVE + NORMAL])
    ok = lambda free, order=0, flags=0: B.zone_watermark_ok_free(  # noqa: E731
        S.ref, DMA32, order, mark, NORMAL, flags, free)
    assert not ok(mark + reserve)
    assert ok(mark + reserve + 1)
    # order 1 cannot use one of its own pages: (1 << order) - 1 are unusable
    assert not ok(mark + reserve + 1, order=1) and ok(mark + reserve + 2, order=1)
    # __GFP_HIGH may use half of min, atomic (non-blocking) 3/8 of it in all
    assert ok(mark // 2 + reserve + 1, flags=B.ALLOC_MIN_RESERVE)
    assert not ok(mark // 2 + reserve, flags=B.ALLOC_MIN_RESERVE)
    atomic = B.ALLOC_MIN_RESERVE | B.ALLOC_NON_BLOCK
    assert ok(mark - 500 - 125 + reserve + 1, flags=atomic)
    assert not ok(mark - 500 - 125 + reserve, flags=atomic)


def test_high_order_watermark_needs_a_free_block_of_that_order():
    m = fresh(ram=1 << 30)
    pa = m.page_alloc
    S = pa.S
    big = lambda: B.zone_watermark_ok(S.ref, DMA32, 10, 0, DMA32, 0)  # noqa: E731
    assert big()
    # Take every order-10 block (and keep the order-9 ones), leaving plenty free.
    while S.nfree[DMA32, 10].sum():
        pfn = S.fhead[DMA32, 10, B.MIGRATE_MOVABLE]
        B.page_del_and_expand(S.ref, pfn, DMA32, 10, 10, B.MIGRATE_MOVABLE)
        B.prep_new_page(S.ref, pfn, DMA32, 10)
    assert pa.nr_free_pages(DMA32) > 1000 and not big()       # free pages, but no order-10 block
    assert B.zone_watermark_ok(S.ref, DMA32, 9, 0, DMA32, 0)


def test_zonelist_fallback_honours_watermarks_and_lowmem_reserve():
    """Movable user pages fill Normal down to its low mark, then DMA32 down to
    low + lowmem_reserve[Movable]; DMA is protected by its much larger reserve.
    The slow path then goes down to the min marks."""
    m = fresh(ram=6 << 30)
    pa = m.page_alloc
    S = pa.S
    movable = 3
    zones_seen = []
    while True:
        pfn = pa.alloc_pages(9, G.GFP_HIGHUSER_MOVABLE)
        if pfn is None:
            break
        z = B.zone_of(S.ref, pfn)
        if not zones_seen or zones_seen[-1] != z:
            zones_seen.append(z)
    assert zones_seen == [NORMAL, DMA32, NORMAL, DMA32]   # fast path at low, slow path at min
    for zid in (NORMAL, DMA32):
        free = pa.nr_free_pages(zid)
        bound = pa.wmark(zid, 0) + int(pa.lowmem_reserve[zid, movable])
        assert free <= bound + 512, pa.zone_names[zid]
    assert pa.nr_free_pages(DMA) == pa.managed[DMA]          # never touched
    assert pa.alloc_failures == 1
    # A GFP_DMA request may still use DMA: nothing is reserved against it.
    assert B.zone_of(S.ref, pa.alloc_pages(0, G.GFP_DMA | G.GFP_KERNEL)) == DMA
    m.check_invariants()


def test_allocation_fails_when_memory_is_gone():
    m = fresh(ram=64 << 20)
    pa = m.page_alloc
    got = 0
    while pa.alloc_pages(0, G.GFP_KERNEL) is not None:
        got += 1
    assert got > 0 and pa.alloc_failures == 1
    # everything above the min watermarks (less reserves) was handed out
    assert pa.nr_free_pages() <= sum(pa.wmark(z.zid, 0) for z in pa.zones) + 2 * 63
    m.check_invariants()


def test_atomic_high_order_allocation_reserves_a_highatomic_pageblock():
    """reserve_highatomic_pageblock: a non-blocking order>0 allocation served
    from the slow path marks its pageblock HighAtomic."""
    m = fresh(ram=2 << 30)
    pa = m.page_alloc
    flags = pa.gfp_to_alloc_flags(G.GFP_ATOMIC, 2)
    assert flags & B.ALLOC_HIGHATOMIC and flags & B.ALLOC_NON_BLOCK
    zl = pa.zonelist(DMA32)
    pfn, zid = B.get_page_from_freelist(pa.S.ref, zl, 2, B.MIGRATE_UNMOVABLE, DMA32, flags, 0)
    assert pfn >= 0
    assert pa.pageblock_counts(zid)[B.MIGRATE_HIGHATOMIC] == 1
    assert pa.S.zs[zid, B.ZS_RESERVED_HIGHATOMIC] == 512
    m.check_invariants()


def test_fallback_boosts_the_watermark_and_wakes_kswapd():
    """Claiming a pageblock below pageblock order for another migratetype boosts
    the zone's marks (boost_watermark: one pageblock); the allocation then
    wakes kswapd, which (with nothing to reclaim) ends the boost."""
    m = fresh(ram=4 << 30)
    pa = m.page_alloc
    S = pa.S
    # Fragment Normal: every block of order >= 9 is split in quarters and every
    # other quarter freed again, so only blocks below pageblock order are free.
    for order in (10, 9):
        while S.fhead[NORMAL, order, B.MIGRATE_MOVABLE] != -1:
            pfn = int(S.fhead[NORMAL, order, B.MIGRATE_MOVABLE])
            B.page_del_and_expand(S.ref, pfn, NORMAL, order, order, B.MIGRATE_MOVABLE)
            q = order - 2
            for i in range(4):
                B.prep_new_page(S.ref, pfn + (i << q), NORMAL, q)
            pa.free_pages(pfn, q)
            pa.free_pages(pfn + (2 << q), q)
    m.check_invariants()
    assert S.nfree[NORMAL, 9:].sum() == 0
    zl = pa.zonelist(NORMAL)
    flags = B.ALLOC_WMARK_LOW | B.ALLOC_KSWAPD
    pfn, zid = B.get_page_from_freelist(S.ref, zl, 0, B.MIGRATE_RECLAIMABLE, NORMAL, flags, 0)
    assert zid == NORMAL
    assert S.zs[NORMAL, B.ZS_BOOST] == 512 and S.kswapd_wake[NORMAL] == 1
    assert pa.wmark(NORMAL, 1) == pa.watermarks()[NORMAL, 1] + 512
    assert pa.pageblock_counts(NORMAL)[B.MIGRATE_RECLAIMABLE] == 1     # claimed
    pa._service_kswapd()
    assert S.zs[NORMAL, B.ZS_BOOST] == 0
    m.check_invariants()


# ---------------------------------------------------------------- random use

ops = st.lists(st.tuples(
    st.sampled_from(["alloc", "alloc", "alloc", "free", "free", "drain", "sysctl"]),
    st.integers(0, 10), st.sampled_from(sorted(G.NAMES)), st.integers(0, 1),
    st.integers(0, 10**9)), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_allocations_keep_the_invariants(sequence):
    m = Machine(ram=96 << 20)
    pa = m.page_alloc
    boot = [pa.free_area_nr_free(z.zid).copy() for z in pa.zones]
    live = []
    highatomic = False
    for op, order, gfp_name, cpu, pick in sequence:
        if op == "alloc":
            gfp = G.NAMES[gfp_name]
            highatomic |= order > 0 and not gfp & G._GFP_DIRECT_RECLAIM
            pfn = pa.alloc_pages(order, gfp, cpu)
            if pfn is not None:
                live.append((pfn, order))
        elif op == "free" and live:
            pfn, order = live.pop(pick % len(live))
            pa.free_pages(pfn, order, cpu)
        elif op == "drain":
            pa.drain_all_pages()
        elif op == "sysctl":
            m.write_sysctl("vm.min_free_kbytes", 128 + pick % 8192)
        m.check_invariants()
        assert pa.nr_free_pages() == sum(free_pages_in_blocks(pa, z.zid) for z in pa.zones)
    for pfn, order in live:
        pa.free_pages(pfn, order)
    pa.drain_all_pages()
    m.check_invariants()
    assert pa.nr_free_pages() == m.totalram_pages
    if not highatomic:       # HighAtomic pageblocks do not merge with others
        for z, before in zip(pa.zones, boot):
            assert (pa.free_area_nr_free(z.zid) == before).all(), z.name


def test_double_free_is_refused():
    m = fresh(ram=64 << 20)
    pa = m.page_alloc
    pfn = pa.alloc_pages(0)
    pa.free_pages(pfn, 0)
    with pytest.raises(ValueError, match="not allocated"):
        pa.free_pages(pfn, 0)


_SCRIPT = """
import hashlib, numpy as np
from linmem.kernel.machine import Machine
from linmem.mm import gfp as G
from linmem.procfs.tree import proc_files
m = Machine(ram=256 << 20)
pa = m.page_alloc
rng = np.random.default_rng(7)
live = []
for i in range(3000):
    if live and rng.random() < 0.4:
        p, o = live.pop(int(rng.integers(len(live)))); pa.free_pages(p, o, int(rng.integers(2)))
    else:
        o = int(rng.choice([0, 0, 1, 2, 3, 5, 9, 10]))
        g = [G.GFP_KERNEL, G.GFP_HIGHUSER_MOVABLE, G.GFP_ATOMIC][int(rng.integers(3))]
        p = pa.alloc_pages(o, g, int(rng.integers(2)))
        if p is not None: live.append((p, o))
files = proc_files(m)
print(hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).hexdigest())
"""


def test_compiled_and_interpreted_kernels_agree():
    """One implementation: NUMBA_DISABLE_JIT=1 runs the same code as Python."""
    outputs = []
    for jit_off in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=jit_off)
        out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        outputs.append(out.stdout.strip())
    assert outputs[0] == outputs[1] and len(outputs[0]) == 64
