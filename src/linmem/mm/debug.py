"""Executable invariants of the memory model (the kernel's CONFIG_DEBUG_VM).

Every frame of the machine is in exactly one state, and the counters agree
with the lists:

* each frame is reserved, or covered by exactly one free buddy block, one
  per-cpu list entry, or one allocated block (its head has refcount > 0);
* every block on free list (zone, order, type) is marked PG_buddy with that
  order, lies in the zone, is aligned to 2^order, and its pageblock has that
  migratetype; the list lengths equal ``nr_free``;
* the pages in free blocks of a zone equal its NR_FREE_PAGES (isolated
  pageblocks excepted), and the HighAtomic ones its nr_free_highatomic;
* the pages on a CPU's pcp lists equal its ``count``.

``check_page_alloc`` raises AssertionError with the first violation found.
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine.jit import njit
from linmem.mm.frames import PG_buddy, PG_pcp, PG_reserved
from linmem.mm.vmstat import NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS

# error codes of _walk_free_lists
_OK, _NOT_BUDDY, _BAD_ORDER, _OUT_OF_ZONE, _MISALIGNED, _WRONG_TYPE, _OVERLAP, \
    _COUNT, _PCP_FLAG, _PCP_COUNT, _NOT_COVERED, _TOO_LONG = range(12)

_MESSAGES = {
    _NOT_BUDDY: "a block on a free list is not marked PG_buddy",
    _BAD_ORDER: "a free block's order differs from its list's",
    _OUT_OF_ZONE: "a free block lies outside its zone",
    _MISALIGNED: "a free block is not aligned to its order",
    _WRONG_TYPE: "a free block sits on the list of another migratetype than its pageblock",
    _OVERLAP: "a frame is covered twice (free and free, or free and allocated)",
    _COUNT: "a free list's length differs from nr_free",
    _PCP_FLAG: "a frame on a pcp list is not marked PG_pcp",
    _PCP_COUNT: "a pcp's count differs from the pages on its lists",
    _NOT_COVERED: "a frame is neither reserved, free, nor part of an allocation",
    _TOO_LONG: "a list is longer than the machine (a cycle)",
}


@njit
def _cover(cover, start, n):
    for pfn in range(start, start + n):
        if cover[pfn]:
            return False
        cover[pfn] = 1
    return True


@njit
def _walk_free_lists(S, cover, pages):
    """Walk every free list; fill ``cover`` and pages[zone, type]. Returns (code, pfn)."""
    nz = S.zs.shape[0]
    limit = S.flags.shape[0]
    for z in range(nz):
        for o in range(B.NR_PAGE_ORDERS):
            for mt in range(B.MIGRATE_TYPES):
                pfn = S.fhead[z, o, mt]
                n = 0
                while pfn != -1:
                    n += 1
                    if n > limit:
                        return _TOO_LONG, pfn
                    if not (S.flags[pfn] & PG_buddy):
                        return _NOT_BUDDY, pfn
                    if S.order[pfn] != o:
                        return _BAD_ORDER, pfn
                    if pfn < S.zs[z, B.ZS_START] or pfn + (1 << o) > S.zs[z, B.ZS_END]:
                        return _OUT_OF_ZONE, pfn
                    if pfn & ((1 << o) - 1):
                        return _MISALIGNED, pfn
                    if S.pb_mt[pfn >> B.PAGEBLOCK_ORDER] != mt:
                        return _WRONG_TYPE, pfn
                    if not _cover(cover, pfn, 1 << o):
                        return _OVERLAP, pfn
                    pages[z, mt] += 1 << o
                    pfn = S.nxt[pfn]
                if n != S.nfree[z, o, mt]:
                    return _COUNT, z
    return _OK, 0


@njit
def _walk_pcp_lists(S, cover):
    nz, ncpu, nlists = S.phead.shape
    limit = S.flags.shape[0]
    for z in range(nz):
        for cpu in range(ncpu):
            total = 0
            for pindex in range(nlists):
                order = B.pindex_to_order(pindex)
                pfn = S.phead[z, cpu, pindex]
                n = 0
                while pfn != -1:
                    n += 1
                    if n > limit:
                        return _TOO_LONG, pfn
                    if not (S.flags[pfn] & PG_pcp):
                        return _PCP_FLAG, pfn
                    if not _cover(cover, pfn, 1 << order):
                        return _OVERLAP, pfn
                    total += 1 << order
                    pfn = S.nxt[pfn]
            if total != S.pcp[z, cpu, B.P_COUNT]:
                return _PCP_COUNT, z
    return _OK, 0


@njit
def _cover_rest(S, cover):
    """Reserved frames and allocated blocks cover what the free lists do not."""
    n = S.flags.shape[0]
    pfn = 0
    while pfn < n:
        if cover[pfn]:
            pfn += 1
            continue
        if S.flags[pfn] & PG_reserved:
            cover[pfn] = 1
            pfn += 1
            continue
        if S.refcount[pfn] > 0:
            size = 1 << np.int64(S.order[pfn])
            if not _cover(cover, pfn, size):
                return _OVERLAP, pfn
            pfn += size
            continue
        return _NOT_COVERED, pfn
    return _OK, 0


def check_page_alloc(pa) -> None:
    """Check the buddy allocator's invariants (see the module docstring)."""
    S = pa.S
    cover = np.zeros(S.flags.shape[0], dtype=np.uint8)
    pages = np.zeros((S.zs.shape[0], B.MIGRATE_TYPES), dtype=np.int64)
    for walk, args in ((_walk_free_lists, (S.ref, cover, pages)), (_walk_pcp_lists, (S.ref, cover)),
                       (_cover_rest, (S.ref, cover))):
        code, where = walk(*args)
        if code != _OK:
            raise AssertionError(f"{_MESSAGES[code]} (pfn or zone {where}: "
                                 f"flags {pa.frames.flag_names(where) if code not in (_COUNT, _PCP_COUNT) else '-'})")
    for z in pa.zones:
        free = int(pages[z.zid, :B.MIGRATE_ISOLATE].sum())
        if free != S.zstat[z.zid, NR_FREE_PAGES]:
            raise AssertionError(f"zone {z.name}: free blocks hold {free} pages, "
                                 f"NR_FREE_PAGES is {S.zstat[z.zid, NR_FREE_PAGES]}")
        if pages[z.zid, B.MIGRATE_HIGHATOMIC] != S.zs[z.zid, B.ZS_FREE_HIGHATOMIC]:
            raise AssertionError(f"zone {z.name}: nr_free_highatomic disagrees with the lists")
        big = sum(int(S.nfree[z.zid, o, :B.MIGRATE_ISOLATE].sum()) << o
                  for o in range(B.PAGEBLOCK_ORDER, B.NR_PAGE_ORDERS))
        if big != S.zstat[z.zid, NR_FREE_PAGES_BLOCKS]:
            raise AssertionError(f"zone {z.name}: NR_FREE_PAGES_BLOCKS is "
                                 f"{S.zstat[z.zid, NR_FREE_PAGES_BLOCKS]}, blocks hold {big}")


def check_page_cache(machine) -> None:
    """The page cache and the LRU lists agree with the counters.

    * every folio on an LRU list has PG_lru, sits on the list its flags name,
      once; the lists add up to the node's nr_{in,}active_{anon,file} and
      nr_unevictable;
    * every cached page belongs to its file at its index and is on an LRU
      list; the cached pages and the swap cache's are nr_file_pages (so
      Cached + Buffers + SwapCached = file pages), the swap-backed cached
      ones nr_shmem, the swap cache's nr_swapcached;
    * a shmem page swapped out (a swap entry in its file's slot) holds a
      reference on a slot in use, and its swap-cache folio, if any, is in no
      page cache;
    * dirty and writeback pages are nr_dirty and nr_writeback, per file too,
      and their sum is the zones' nr_zone_write_pending; a page under
      writeback is in the page cache or the swap cache (swap writes count in
      nr_writeback; a dirty swap-cache page does not count in nr_dirty:
      swap_aops' dirty_folio is noop_dirty_folio).
    """
    from linmem.engine.debug import walk_lru
    from linmem.engine.filemap import RA_SHMEM
    from linmem.engine.lru import NR_INACTIVE_ANON, NR_LRU_LISTS
    from linmem.engine.page_writeback import FS_DIRTY, FS_WRITEBACK
    from linmem.mm.frames import PG_dirty, PG_lru, PG_swapbacked, PG_swapcache, PG_writeback
    from linmem.mm.vmstat import node_item, zone_item

    K = machine.page_alloc.S
    if K.lru_head.shape[0] == 0:
        return
    seen = np.zeros(K.flags.shape[0], dtype=np.int32)
    counts, bad = walk_lru(K.ref, seen)
    if bad >= 0:
        raise AssertionError(f"pfn {bad} is on the wrong LRU list, or a list loops")
    if K.lrugen.shape[0]:                           # the multi-gen LRU's lists
        from linmem.mm.lru_gen import check_lru_gen
        counts = counts.copy()
        counts[0, :4] += check_lru_gen(machine, seen)
    on_lru = np.flatnonzero(K.flags & PG_lru)
    if (seen > 1).any() or not (seen[on_lru] == 1).all() or int((seen > 0).sum()) != len(on_lru):
        raise AssertionError("a folio is on no LRU list, or on several, against its PG_lru")
    node = K.node_stat
    lists = node[NR_INACTIVE_ANON:NR_INACTIVE_ANON + NR_LRU_LISTS]
    if not (counts.sum(axis=0) == lists).all():
        raise AssertionError(f"LRU lists hold {counts.sum(axis=0).tolist()} pages, "
                             f"the node counters say {lists.tolist()}")
    cached = shmem = dirty = writeback = 0
    swap_refs = np.zeros(K.swap_map.shape[0], dtype=np.int64)
    if K.swap_cache.shape[0]:                   # swap writes count in nr_writeback
        pages = K.swap_cache[K.swap_cache != 0].astype(np.int64) - 1
        writeback += int(((K.flags[pages] & PG_writeback) != 0).sum())
    for fid in range(K.f_base.shape[0]):
        base, n = int(K.f_base[fid]), int(K.f_npages[fid])
        slots = K.pc[base:base + n].astype(np.int64)
        swapped = -slots[slots <= -2] - 2
        if len(swapped):
            if swapped.max() >= len(swap_refs):
                raise AssertionError(f"file {fid}: a swap entry names no swap slot")
            np.add.at(swap_refs, swapped, 1)
        index = np.flatnonzero(slots >= 0)
        pages = slots[index]
        if (K.mapping[pages] != fid).any() or (K.index[pages] != index).any():
            raise AssertionError(f"file {fid}: a cached page names another file or index")
        if not (K.flags[pages] & PG_lru).all():
            raise AssertionError(f"file {fid}: a cached page is on no LRU list")
        flags = K.flags[pages]
        if (flags & PG_swapcache).any():
            raise AssertionError(f"file {fid}: a cached page is in the swap cache too")
        d = int(((flags & PG_dirty) != 0).sum()) if not K.ra[fid, RA_SHMEM] else 0
        w = int(((flags & PG_writeback) != 0).sum())
        if (d, w) != (int(K.fstat[fid, FS_DIRTY]), int(K.fstat[fid, FS_WRITEBACK])):
            raise AssertionError(f"file {fid}: {d} dirty and {w} writeback pages, counted "
                                 f"{K.fstat[fid, FS_DIRTY]} and {K.fstat[fid, FS_WRITEBACK]}")
        cached += len(pages)
        shmem += int(((flags & PG_swapbacked) != 0).sum())
        dirty += d
        writeback += w
    swapcached = int((K.swap_cache != 0).sum())
    if len(swap_refs):
        from linmem.engine.swapfile import COUNT_MASK, SWAP_HAS_CACHE
        counts = (K.swap_map & COUNT_MASK).astype(np.int64)
        held = np.flatnonzero(swap_refs)
        if (counts[held] < swap_refs[held]).any():
            raise AssertionError("a shmem swap entry's slot counts fewer references than it has")
        if ((K.swap_map & SWAP_HAS_CACHE) != 0).sum() < swapcached:
            raise AssertionError("a swap-cache folio's slot lacks SWAP_HAS_CACHE")
    expect = {"nr_file_pages": cached + swapcached, "nr_shmem": shmem, "nr_dirty": dirty,
              "nr_writeback": writeback, "nr_swapcached": swapcached}
    for name, value in expect.items():
        if int(node[node_item(name)]) != value:
            raise AssertionError(f"{name} is {int(node[node_item(name)])}, the page cache "
                                 f"holds {value}")
    pending = int(K.zstat[:, zone_item("nr_zone_write_pending")].sum())
    if pending != dirty + writeback:
        raise AssertionError(f"nr_zone_write_pending {pending} != dirty {dirty} + writeback {writeback}")
    flagged = int(((K.flags & PG_writeback) != 0).sum())
    if flagged != writeback:
        raise AssertionError(f"{flagged} pages are under writeback, {writeback} of them in the "
                             f"page cache or the swap cache")
    if machine.nr_blockdev_pages > cached:
        raise AssertionError("Buffers exceed the page cache")


def check_swap(kernel) -> None:
    """The swap areas, the swap map, the swap cache and the page tables agree.

    * each slot's count (swap_map & COUNT_MASK) is the number of swap PTEs
      naming it in every live address space plus the shmem page-cache
      entries naming it; each mm's MM_SWAPENTS is the number of its swap PTEs;
    * SWAP_HAS_CACHE is set exactly on the slots the swap cache holds a folio
      for; ``swap_cache[slot]`` and ``swp[pfn]`` point at each other, and such
      a folio has PG_swapcache and is on an LRU list; no other frame has
      PG_swapcache; nr_swapcached is the number of cached slots;
    * an active area's first slot is its header (SWAP_MAP_BAD); its
      SI_INUSE is 1 + its used slots; no slot outside an active area is in
      use; SwapFree (G_NR_FREE) and SwapTotal (G_TOTAL) are the free and the
      usable slots of the areas open for writing (SWP_WRITEOK).
    """
    from linmem.engine import swapfile as SW
    from linmem.engine.debug_swap import count_swap_ptes
    from linmem.engine.pgtable import MM_SWAPENTS
    from linmem.mm.frames import PG_lru, PG_swapcache
    from linmem.mm.vmstat import node_item

    K = kernel.mem.K
    nslots = K.swap_map.shape[0]
    refs = np.zeros(nslots, dtype=np.int64)
    seen = set()
    for task in kernel.tasks.values():
        if task.mm is None or task.mm.id in seen:
            continue
        seen.add(task.mm.id)
        found, bad = count_swap_ptes(K.ref, task.mm.id, refs)
        if bad >= 0:
            raise AssertionError(f"pid {task.pid}: a swap PTE names slot {bad}, "
                                 f"beyond the {nslots} slots")
        if found != K.mm_stat[task.mm.id, MM_SWAPENTS]:
            raise AssertionError(f"pid {task.pid}: MM_SWAPENTS is "
                                 f"{K.mm_stat[task.mm.id, MM_SWAPENTS]}, its page tables "
                                 f"hold {found} swap entries")
    for fid in range(K.f_base.shape[0]):        # shmem swap entries in the page cache
        pc = K.pc[int(K.f_base[fid]):int(K.f_base[fid] + K.f_npages[fid])].astype(np.int64)
        np.add.at(refs, -pc[pc <= -2] - 2, 1)
    _check_swap_areas(K, SW)
    smap = K.swap_map.astype(np.int64)
    header = np.zeros(nslots, dtype=bool)
    for a in _active_areas(K, SW):
        header[int(K.si[a, SW.SI_BASE])] = True
    counts = np.where(header, 0, smap & SW.COUNT_MASK)
    wrong = np.flatnonzero(counts != refs)
    if len(wrong):
        s = int(wrong[0])
        raise AssertionError(f"slot {s}: swap_map count {counts[s]}, but {refs[s]} swap PTEs "
                             f"and shmem entries refer to it ({len(wrong)} slots disagree)")
    cached = K.swap_cache.astype(np.int64) != 0
    has_cache = (smap & SW.SWAP_HAS_CACHE) != 0
    wrong = np.flatnonzero(has_cache != cached)
    if len(wrong):
        s = int(wrong[0])
        raise AssertionError(f"slot {s}: SWAP_HAS_CACHE is {bool(has_cache[s])} but the swap "
                             f"cache {'holds pfn %d' % (K.swap_cache[s] - 1) if cached[s] else 'is empty'}")
    slots = np.flatnonzero(cached)
    pages = K.swap_cache[slots].astype(np.int64) - 1
    back = K.swp[pages].astype(np.int64) - 1 if len(pages) else pages
    if (back != slots).any():
        i = int(np.flatnonzero(back != slots)[0])
        raise AssertionError(f"swap_cache[{slots[i]}] is pfn {pages[i]}, whose swp names "
                             f"slot {back[i]}")
    if len(pages) and not (K.flags[pages] & PG_swapcache).all():
        raise AssertionError("a folio in the swap cache has no PG_swapcache")
    if len(pages) and not (K.flags[pages] & PG_lru).all():
        raise AssertionError("a folio in the swap cache is on no LRU list")
    linked = np.flatnonzero(K.swp) if K.swp.shape[0] else np.zeros(0, dtype=np.int64)
    flagged = np.flatnonzero(K.flags & PG_swapcache)
    if len(linked) != len(pages) or not np.array_equal(flagged, np.sort(pages)):
        raise AssertionError(f"{len(linked)} frames name a swap slot and {len(flagged)} have "
                             f"PG_swapcache, but the swap cache holds {len(pages)}")
    node = int(K.node_stat[node_item("nr_swapcached")])
    if node != len(pages):
        raise AssertionError(f"nr_swapcached is {node}, the swap cache holds {len(pages)}")


def _active_areas(K, SW) -> list[int]:
    return [a for a in range(SW.MAX_SWAPFILES) if K.si[a, SW.SI_FLAGS] & SW.SWP_USED]


def _check_swap_areas(K, SW) -> None:
    """Each area's header and SI_INUSE; nothing used outside the areas;
    the machine-wide SwapFree and SwapTotal."""
    si = K.si
    inside = np.zeros(K.swap_map.shape[0], dtype=bool)
    nr_free = total = 0
    for a in _active_areas(K, SW):
        base, nmax = int(si[a, SW.SI_BASE]), int(si[a, SW.SI_MAX])
        inside[base:base + nmax] = True
        if K.swap_map[base] != SW.SWAP_MAP_BAD:
            raise AssertionError(f"swap area {a}: its header slot {base} is not SWAP_MAP_BAD")
        used = int((K.swap_map[base + 1:base + nmax] != 0).sum())
        if si[a, SW.SI_INUSE] != 1 + used:
            raise AssertionError(f"swap area {a}: SI_INUSE is {si[a, SW.SI_INUSE]}, "
                                 f"1 + {used} slots are in use")
        if (K.swap_map[base + 1:base + nmax] & SW.COUNT_MASK == SW.SWAP_MAP_BAD).any():
            raise AssertionError(f"swap area {a}: a slot other than the header is SWAP_MAP_BAD")
        if si[a, SW.SI_FLAGS] & SW.SWP_WRITEOK:
            nr_free += nmax - int(si[a, SW.SI_INUSE])
            total += nmax - 1
    outside = np.flatnonzero(~inside & (K.swap_map != 0))
    if len(outside):
        raise AssertionError(f"slot {outside[0]} is in use (swap_map {K.swap_map[outside[0]]:#x}) "
                             f"outside every active swap area")
    if (si[SW.G_ROW, SW.G_NR_FREE], si[SW.G_ROW, SW.G_TOTAL]) != (nr_free, total):
        raise AssertionError(f"SwapFree {si[SW.G_ROW, SW.G_NR_FREE]} and SwapTotal "
                             f"{si[SW.G_ROW, SW.G_TOTAL]} pages, the areas open for writing "
                             f"have {nr_free} free of {total}")


def check_memcg(kernel) -> None:
    """The memory cgroups' counters agree with the frames and the node.

    * every charged frame (PG_memcg) is allocated; a folio's charge is its
      size; each memcg's usage is what is charged to it plus its children's
      usage (the root's: every charged page), so children never hold more
      than their parent;
    * each memcg's own LRU sizes are its lists' lengths, its subtree sizes
      the sum over the subtree, the root's the node's counters;
    * each node counter kept per memcg (anon mapped, file pages, shmem,
      file mapped, dirty, writeback, swap cache, anon THPs, workingset
      events) sums over the memcgs to the node's;
    * each memcg's swap usage is the in-use slots charged to its subtree;
    * the memcgs' fault, swap-in/out and THP-fault events add up to vmstat's.
    """
    from linmem.engine import memcontrol as MC
    from linmem.engine.debug import walk_lru
    from linmem.engine.lru import NR_LRU_LISTS
    from linmem.mm.frames import PG_head, PG_memcg
    from linmem.mm.vmstat import node_item

    K = kernel.mem.K
    ctl = kernel.memcg
    memcgs = ctl.memcgs()
    charged = np.flatnonzero(K.flags & PG_memcg)
    if (K.refcount[charged] <= 0).any():
        raise AssertionError("a charged frame is free")
    weight = np.where(K.flags[charged] & PG_head, 512, 1)
    own = np.bincount(K.memcg[charged].astype(np.int64), weights=weight,
                      minlength=MC.MAX_MEMCGS).astype(np.int64)
    for memcg in memcgs:
        kstack = int(K.mstat[memcg.id, MC.MS_KSTACK])
        subtree = sum(int(own[c.id]) for c in memcg.subtree())
        usage = int(K.mc[memcg.id, MC.MC_USAGE])
        if usage != subtree:
            raise AssertionError(f"memcg {memcg.path}: usage {usage} pages, {subtree} charged "
                                 f"to its subtree ({kstack} of its own kernel stack)")
        children = sum(int(K.mc[c.id, MC.MC_USAGE]) for c in memcg.children)
        if children > usage:
            raise AssertionError(f"memcg {memcg.path}: children use {children} > {usage}")
    if K.lrugen.shape[0] == 0:
        seen = np.zeros(K.flags.shape[0], dtype=np.int32)
        counts, _ = walk_lru(K.ref, seen)
        for memcg in memcgs:
            mine = K.mstat[memcg.id, MC.MS_LRU:MC.MS_LRU + NR_LRU_LISTS]
            if not (mine == counts[memcg.id]).all():
                raise AssertionError(f"memcg {memcg.path}: LRU sizes {mine.tolist()}, its "
                                     f"lists hold {counts[memcg.id].tolist()}")
    node = K.node_stat
    for memcg in memcgs:
        sub = sum(K.mstat[c.id, MC.MS_LRU:MC.MS_LRU + NR_LRU_LISTS] for c in memcg.subtree())
        hier = K.mstat[memcg.id, MC.MS_LRU_H:MC.MS_LRU_H + NR_LRU_LISTS]
        if not (hier == sub).all():
            raise AssertionError(f"memcg {memcg.path}: subtree LRU sizes {hier.tolist()} != "
                                 f"{sub.tolist()}")
    root_lru = K.mstat[0, MC.MS_LRU_H:MC.MS_LRU_H + NR_LRU_LISTS]
    lists = node[node_item("nr_inactive_anon"):node_item("nr_inactive_anon") + NR_LRU_LISTS]
    if not (root_lru == lists).all():
        raise AssertionError(f"the root memcg's LRU sizes {root_lru.tolist()} are not the "
                             f"node's {lists.tolist()}")
    pairs = {"nr_anon_pages": MC.MS_ANON_MAPPED, "nr_file_pages": MC.MS_FILE_PAGES,
             "nr_shmem": MC.MS_SHMEM, "nr_mapped": MC.MS_FILE_MAPPED,
             "nr_dirty": MC.MS_FILE_DIRTY, "nr_writeback": MC.MS_WRITEBACK,
             "nr_swapcached": MC.MS_SWAPCACHE, "nr_anon_transparent_hugepages": MC.MS_ANON_THPS,
             "nr_page_table_pages": MC.MS_PAGETABLES,
             "workingset_refault_anon": MC.MS_REFAULT, "workingset_refault_file": MC.MS_REFAULT + 1,
             "workingset_activate_anon": MC.MS_ACTIVATE,
             "workingset_activate_file": MC.MS_ACTIVATE + 1,
             "workingset_restore_anon": MC.MS_RESTORE, "workingset_restore_file": MC.MS_RESTORE + 1}
    for name, col in pairs.items():
        total = int(K.mstat[:, col].sum())
        if total != int(node[node_item(name)]):
            raise AssertionError(f"memcgs' {name} add up to {total}, the node's is "
                                 f"{int(node[node_item(name)])}")
    from linmem.mm.vmstat import vm_event
    for name, col in (("pgfault", MC.MS_PGFAULT), ("pgmajfault", MC.MS_PGMAJFAULT),
                      ("pswpin", MC.MS_PSWPIN), ("pswpout", MC.MS_PSWPOUT),
                      ("thp_fault_alloc", MC.MS_THP_FAULT_ALLOC)):
        total = int(K.mstat[:, col].sum())
        if total != int(K.events[vm_event(name)]):
            raise AssertionError(f"memcgs' {name} add up to {total}, the machine's is "
                                 f"{int(K.events[vm_event(name)])}")
    if K.swap_map.shape[0]:
        from linmem.engine.swapfile import SWAP_MAP_BAD
        in_use = np.flatnonzero((K.swap_map != 0) & (K.swap_map != SWAP_MAP_BAD))
        per = np.bincount(K.swap_cgroup[in_use].astype(np.int64), minlength=MC.MAX_MEMCGS)
        for memcg in memcgs:
            expect = int(sum(per[c.id] for c in memcg.subtree()))
            if int(K.mc[memcg.id, MC.MC_SWAP]) != expect:
                raise AssertionError(f"memcg {memcg.path}: swap usage "
                                     f"{int(K.mc[memcg.id, MC.MC_SWAP])}, {expect} slots "
                                     f"charged to its subtree")
