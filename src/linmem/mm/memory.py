"""Page tables and page faults: demand paging, copy-on-write, THP, unmapping.

A process's memory is mapped lazily. mmap only creates a VMA; the first access
to each page faults, and the kernel decides what to map:

* a read of anonymous memory maps the shared zero page (read-only);
* a write maps a new zeroed page (do_anonymous_page), or, in a VMA eligible
  for transparent huge pages, a whole 2 MiB folio with one fault
  (do_huge_pmd_anonymous_page; a read maps the huge zero page);
* a file page comes from the page cache, read from disk first if absent (a
  major fault); a write to a private file mapping copies it (do_cow_fault);
* a write to a present but write-protected page (do_wp_page) reuses it when
  no one else holds it (wp_can_reuse_anon_folio: refcount 1), else copies it.
  fork write-protects every private page on both sides, which is what makes
  this copy-on-write.

Every fault is counted: ``pgfault`` (and ``pgmajfault``) machine-wide, min_flt
or maj_flt of the task. Page-table pages are allocated from the buddy
allocator (GFP_PGTABLE_USER) and counted in PageTables and the mm's VmPTE.

The compiled kernels live in ``linmem.engine.memory`` and
``linmem.engine.pgtable``; this class owns their arrays, grows them, and runs
the allocator's slow path when the compiled fast path cannot get a page.

File faults go through the page cache with fault-around and readahead
(``linmem.engine.filemap``).

Shared anonymous memory is a shmem object: a page cache of zeroed,
swap-backed pages (Shmem), freed when its last mapping goes. Under memory
pressure its pages, like those of tmpfs files, go to swap and come back on
the next fault, read or write (``linmem.engine.shmem``).

Deviations from Linux (``XXX``): LRU additions are not batched per CPU, a
PTE-mapped THP subpage is always copied on a write fault, shmem has no huge
pages (shmem_enabled=never, the default).
"""

from __future__ import annotations

import numpy as np

from linmem.engine import buddy as B
from linmem.engine import filemap as F
from linmem.engine import memory as E
from linmem.engine import page_writeback as PW
from linmem.engine import pgtable as P
from linmem.engine import lru as L
from linmem.engine import memcontrol as MC
from linmem.engine import readahead as R
from linmem.engine import shmem as SH
from linmem.engine import swapfile as SW
from linmem.engine.lru import NR_LRU_LISTS
from linmem.mm import gfp as G
from linmem.mm.memblock import KERNEL_LOAD_PFN
from linmem.mm.vmstat import PGFAULT

MAX_MEMCGS = MC.MAX_MEMCGS
THP_MODE = {"never": 0, "madvise": 1, "always": 2}


class OutOfMemory(Exception):
    """The allocator's slow path found no page for a fault (the OOM killer's case)."""


def _swap_info(page_cluster: int) -> np.ndarray:
    """The swap areas' table, none on yet (linmem.engine.swapfile)."""
    si = np.zeros((SW.MAX_SWAPFILES + 1, SW.NR_SI), dtype=np.int64)
    si[SW.G_ROW, SW.G_CUR_AREA] = -1
    si[SW.G_ROW, SW.G_PAGE_CLUSTER] = page_cluster
    si[SW.G_ROW, SW.G_RA_HITS] = SW.SWAPIN_READAHEAD_HITS_INIT
    return si


class MemoryModel:
    """The page tables and mappings of every process of one machine."""

    def __init__(self, machine, tables: int = 256, mms: int = 16, tasks: int = 64):
        self.machine = machine
        pa = machine.page_alloc
        self.pa = pa
        user_zl = pa.zonelist(G.gfp_zone(G.GFP_HIGHUSER_MOVABLE, pa.zone_names))
        kernel_zl = pa.zonelist(G.gfp_zone(G.GFP_KERNEL, pa.zone_names))
        ctl = np.full(P.C_NR, -1, dtype=np.int64)
        ctl[P.C_ZERO_PFN] = KERNEL_LOAD_PFN      # empty_zero_page lives in the kernel image
        ctl[P.C_CPU] = 0
        ctl[P.C_PT_NFREE] = 0
        ctl[P.C_PT_NEXT] = 0
        ctl[P.C_USE_ZERO_PAGE] = 1
        ctl[P.C_THP_MODE] = THP_MODE[machine.thp]
        ctl[P.C_MEMCG] = 0
        ctl[P.C_NEED_CHARGE] = 0
        ctl[P.C_OVER_HIGH] = 0
        self.K = pa.S
        self.K.replace(
            pt=np.zeros((tables, P.PTRS_PER_TABLE), dtype=np.int64),
            pt_pfn=np.full(tables, -1, dtype=np.int64),
            pt_free=np.zeros(tables, dtype=np.int64),
            mm_stat=np.zeros((mms, P.NR_MM_STAT), dtype=np.int64),
            task_stat=np.zeros((tasks, P.NR_TASK_STAT), dtype=np.int64),
            lru_head=np.full((MAX_MEMCGS, 1, NR_LRU_LISTS), -1, dtype=np.int32),
            lru_tail=np.full((MAX_MEMCGS, 1, NR_LRU_LISTS), -1, dtype=np.int32),
            ctl=ctl,
            pc=np.zeros(0, dtype=np.int32),
            f_base=np.zeros(0, dtype=np.int64),
            f_npages=np.zeros(0, dtype=np.int64),
            ra=np.zeros((0, F.NR_RA), dtype=np.int64),
            fstat=np.zeros((0, PW.NR_FSTAT), dtype=np.int64),
            shadow=np.zeros(0, dtype=np.int64),
            nonresident=np.zeros(MAX_MEMCGS, dtype=np.int64),
            lrucost=np.zeros((MAX_MEMCGS, L.NR_LRUCOST), dtype=np.int64),
            mc=MC.new_mc(), mstat=np.zeros((MAX_MEMCGS, MC.NR_MS), dtype=np.int64),
            si=_swap_info(int(machine.sysctl["page-cluster"])),
            zl_user=user_zl, zl_kernel=kernel_zl,
            alloc=np.array([G.gfp_zone(G.GFP_HIGHUSER_MOVABLE, pa.zone_names),
                            G.gfp_zone(G.GFP_KERNEL, pa.zone_names),
                            B.ALLOC_WMARK_LOW | pa.alloc_flags_nofragment(int(user_zl[0]),
                                                                          G.GFP_HIGHUSER_MOVABLE),
                            B.ALLOC_WMARK_LOW | pa.alloc_flags_nofragment(int(kernel_zl[0]),
                                                                          G.GFP_KERNEL)],
                           dtype=np.int64),
        )
        if getattr(machine, "lru", "classic") == "mglru":
            from linmem.mm.lru_gen import lru_gen_init    # the multi-gen LRU's state
            lru_gen_init(self.K, MAX_MEMCGS, self.K.zs.shape[0])
        self.memcg_hooks = None           # the kernel's memcg slow paths (charge, over_high)
        self.free_mm_ids: list[int] = []
        self.next_mm_id = 0
        self.thp_gfp = G.GFP_TRANSHUGE_LIGHT

    # ------------------------------------------------------------ growth

    def _grow_tables(self) -> None:
        K = self.K
        n = K.pt.shape[0]
        self.K.replace(pt=np.concatenate([K.pt, np.zeros_like(K.pt)]),
                      pt_pfn=np.concatenate([K.pt_pfn, np.full(n, -1, dtype=np.int64)]),
                      pt_free=np.concatenate([K.pt_free, np.zeros(n, dtype=np.int64)]))

    def ensure_mm_rows(self, n: int) -> None:
        if n > self.K.mm_stat.shape[0]:
            rows = max(n, 2 * self.K.mm_stat.shape[0])
            grown = np.zeros((rows, P.NR_MM_STAT), dtype=np.int64)
            grown[:self.K.mm_stat.shape[0]] = self.K.mm_stat
            self.K.replace(mm_stat=grown)

    def ensure_task_rows(self, n: int) -> None:
        if n > self.K.task_stat.shape[0]:
            rows = max(n, 2 * self.K.task_stat.shape[0])
            grown = np.zeros((rows, P.NR_TASK_STAT), dtype=np.int64)
            grown[:self.K.task_stat.shape[0]] = self.K.task_stat
            self.K.replace(task_stat=grown)

    def register_file(self, npages: int, shmem: bool = False) -> int:
        """Give a file of ``npages`` pages its place in the page cache; its id."""
        K = self.K
        fid = K.f_base.shape[0]
        base = K.pc.shape[0]
        row = np.array([[npages, 0, 0, -1]], dtype=np.int64)
        self.K.replace(pc=np.concatenate([K.pc, np.full(npages, -1, dtype=np.int32)]),
                      shadow=np.concatenate([K.shadow, np.zeros(npages, dtype=np.int64)]),
                      f_base=np.append(K.f_base, base),
                      f_npages=np.append(K.f_npages, npages),
                      ra=np.concatenate([K.ra, np.zeros((1, F.NR_RA), dtype=np.int64)]),
                      fstat=np.concatenate([K.fstat, row]))
        self.K.ra[fid, F.RA_SHMEM] = int(shmem)
        R.file_ra_state_init(self.K.ra[fid])
        return fid

    def resize_file(self, fid: int, npages: int) -> None:
        """A file now has ``npages`` pages (i_size_write). Its slice of the
        page-cache index moves to the end, twice as big, when it is full;
        shrinking is truncate's business (the pages beyond must be gone)."""
        K = self.K
        cap = int(K.fstat[fid, PW.FS_CAP])
        if npages > cap:
            new_cap = max(npages, 2 * cap, 16)
            base = K.pc.shape[0]
            old = int(K.f_base[fid])
            grown = np.concatenate([K.pc, np.full(new_cap, -1, dtype=np.int32)])
            grown[base:base + cap] = K.pc[old:old + cap]
            grown[old:old + cap] = -1
            shadow = np.concatenate([K.shadow, np.zeros(new_cap, dtype=np.int64)])
            shadow[base:base + cap] = K.shadow[old:old + cap]
            shadow[old:old + cap] = 0
            K.replace(pc=grown, shadow=shadow)
            K.f_base[fid] = base
            K.fstat[fid, PW.FS_CAP] = new_cap
        K.f_npages[fid] = npages

    # --------------------------------------------------- the memory loop

    def _slowpath(self, thp_gfp: int) -> None:
        """Get the page the compiled fast path could not, into its slot; or
        make its memcg charge possible (linmem.mm.memcontrol)."""
        K = self.K
        kind = int(K.ctl[P.C_NEED_KIND])
        cpu = int(K.ctl[P.C_CPU])
        need_charge = int(K.ctl[P.C_NEED_CHARGE])
        K.ctl[P.C_NEED_CHARGE] = 0
        if need_charge == 2:                    # pay for the pages charged over high
            self.memcg_hooks.over_high()
            return
        if need_charge == 1:                    # the page is in its slot; a memcg refused
            nr = P.HPAGE_PMD_NR if kind == P.KIND_THP else 1
            gfp = G.GFP_PGTABLE_USER if kind == P.KIND_KERNEL else G.GFP_KERNEL   # as charged
            if not self.memcg_hooks.charge(int(K.ctl[P.C_MEMCG]), nr, gfp):
                pfn = int(K.ctl[P.C_PREALLOC_THP])      # a THP charge falls back to 4 KiB
                self.pa.free_pages(pfn, P.HPAGE_PMD_ORDER)
                K.ctl[P.C_PREALLOC_THP] = -2
            return
        if kind == P.KIND_THP:
            pfn = self.pa.alloc_pages(P.HPAGE_PMD_ORDER, thp_gfp, cpu)
            K.ctl[P.C_PREALLOC_THP] = -2 if pfn is None else pfn
            return
        gfp = G.GFP_HIGHUSER_MOVABLE if kind == P.KIND_USER else G.GFP_PGTABLE_USER
        pfn = self.pa.alloc_pages(0, gfp, cpu)
        if pfn is None:
            raise OutOfMemory("no page for a fault or a page table")
        K.ctl[P.C_PREALLOC_USER if kind == P.KIND_USER else P.C_PREALLOC_KERNEL] = pfn

    def _resumable(self, call, thp_gfp: int = G.GFP_TRANSHUGE_LIGHT):
        """Run ``call(M)`` -> (status, position) until it needs nothing more."""
        while True:
            status, position = call(self.K.ref)
            if status == P.NEED_PAGE:
                self._slowpath(thp_gfp)
            elif status == P.NEED_TABLES:
                self._grow_tables()
            else:
                return status, position

    def _release_prealloc(self) -> None:
        """Pages preallocated for a retry that did not need them go back; a
        swap-in left waiting in its readahead lets go of its page."""
        K = self.K
        if K.ctl[P.C_SWAP_PEND_VA] != -1:
            K.ctl[P.C_SWAP_PEND_VA] = -1
            K.refcount[int(K.ctl[P.C_SWAP_PEND_PAGE])] -= 1
        for slot, order in ((P.C_PREALLOC_USER, 0), (P.C_PREALLOC_KERNEL, 0),
                            (P.C_PREALLOC_THP, P.HPAGE_PMD_ORDER)):
            if K.ctl[slot] >= 0:
                self.pa.free_pages(int(K.ctl[slot]), order)
            K.ctl[slot] = -1

    # ---------------------------------------------------------- mm_struct

    def new_mm(self) -> int:
        """A new address space: its id, with a PGD (models mm_alloc -> pgd_alloc)."""
        mm = self.free_mm_ids.pop() if self.free_mm_ids else self.next_mm_id
        if mm == self.next_mm_id:
            self.next_mm_id += 1
        self.ensure_mm_rows(mm + 1)
        self.K.mm_stat[mm] = 0

        def call(M):
            tid, st = P.alloc_table(M)
            return st, tid
        status, tid = self._resumable(call)
        self.K.mm_stat[mm, P.MM_PGD] = tid
        return mm

    def free_mm(self, mm: int) -> None:
        """Models mmdrop -> pgd_free: the PGD goes, the id is reused."""
        P.free_table(self.K.ref, int(self.K.mm_stat[mm, P.MM_PGD]))
        self.K.mm_stat[mm] = 0
        self.free_mm_ids.append(mm)

    # --------------------------------------------------------------- faults

    def access(self, mm: int, pid: int, vas: np.ndarray, write: bool | int, vmas: np.ndarray,
               memcg: int = 0, cpu: int = 0, max_faults: int = -1) -> tuple[int, int]:
        """Replay accesses of one task; (status, index of a SEGV or len(vas)).
        ``write``: False (loads), True (stores), or E.ACCESS_WRITE_IN_ADDR
        (bit 0 of each address marks a store). With ``max_faults`` >= 0 the
        accesses stop before the fault that would be one too many: (OK,
        index of the access not made).

        Models the MMU and handle_mm_fault for each address in ``vas``.
        """
        self.K.ctl[P.C_CPU] = cpu
        vas = np.ascontiguousarray(vas, dtype=np.int64)
        thp_gfp = self.thp_gfp_for(vmas)
        state = {"start": 0}
        events, before = self.K.events, int(self.K.events[PGFAULT])

        def call(M):                # faults taken before a resume count against max_faults
            left = max_faults - (int(events[PGFAULT]) - before) if max_faults >= 0 else -1
            status, k = E.access_pages(M, vmas, mm, pid, vas, int(write), state["start"], memcg,
                                       left)
            state["start"] = k
            return status, k
        try:
            return self._resumable(call, thp_gfp)
        finally:
            self._release_prealloc()

    def thp_gfp_for(self, vmas: np.ndarray) -> int:
        """Models vma_thp_gfp_mask() with defrag "madvise": MADV_HUGEPAGE regions
        may reclaim and compact for a huge page, others only try."""
        if len(vmas) and (vmas[:, E.V_FLAGS] & E.VM_HUGEPAGE).any():
            return G.GFP_TRANSHUGE
        return G.GFP_TRANSHUGE_LIGHT

    # ------------------------------------------------------------ unmapping

    def read(self, fid: int, isize: int, offsets, counts, memcg: int = 0) -> None:
        """read(2) calls of ``counts`` bytes at ``offsets`` (arrays, or a count
        for all) from a file of ``isize`` bytes (filemap_read: readahead, every
        folio copied marked accessed)."""
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        counts = np.ascontiguousarray(np.broadcast_to(counts, offsets.shape), dtype=np.int64)
        prog = np.zeros(5, dtype=np.int64)
        calls = SH.shmem_read_calls if self.K.ra[fid, F.RA_SHMEM] else F.filemap_read_calls
        self.run_resumable(lambda K: calls(K, fid, isize, offsets, counts, prog, memcg))

    def run_resumable(self, call):
        """Run a compiled ``call(K)`` -> (status, position) to the end, getting it
        the pages it needs (see ``_resumable``)."""
        try:
            return self._resumable(call)
        finally:
            self._release_prealloc()

    def write(self, fid: int, start: int, end: int, head_partial: bool, tail_partial: bool,
              old_npages: int, memcg: int = 0) -> tuple[int, int]:
        """write(2) over pages [start, end) (generic_perform_write); the file
        must already be big enough. Returns (pages newly dirtied, pages read)."""
        progress = np.array([start, 0, 0], dtype=np.int64)
        if self.K.ra[fid, F.RA_SHMEM]:                 # shmem_write_begin: SGP_WRITE
            return self._run_progress(progress, lambda K: SH.shmem_perform_write(
                K, fid, start, end, memcg, progress))
        return self._run_progress(progress, lambda K: PW.generic_perform_write(
            K, fid, start, end, head_partial, tail_partial, old_npages, memcg, progress))

    def _run_progress(self, progress: np.ndarray, kernel) -> tuple[int, int]:
        """Run a resumable kernel that keeps its place in ``progress``
        (W_INDEX, W_DIRTIED, W_READ): (pages newly dirtied, pages read)."""
        self.run_resumable(lambda K: (kernel(K), progress[PW.W_INDEX]))
        return int(progress[PW.W_DIRTIED]), int(progress[PW.W_READ])

    def touch_blocks(self, fid: int, indices, dirty: bool, read_missing: bool = True,
                     memcg: int = 0) -> tuple[int, int]:
        """Metadata blocks of a block device's cache (__bread/__getblk,
        mark_buffer_dirty). Returns (pages newly dirtied, blocks read)."""
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        progress = np.zeros(3, dtype=np.int64)
        return self._run_progress(progress, lambda K: PW.touch_blocks(
            K, fid, indices, dirty, read_missing, memcg, progress))

    def start_writeback(self, fid: int, start: int, end: int, nr_to_write: int) -> tuple[np.ndarray, int]:
        """Put up to ``nr_to_write`` dirty pages of [start, end) under writeback
        (write_cache_pages): their pfns, and the index after the last one."""
        out = np.empty(max(0, min(nr_to_write, end - start)), dtype=np.int64)
        n, index = PW.write_cache_pages(self.K.ref, fid, start, end, len(out), out)
        return out[:n], int(index)

    def end_writeback(self, pages: np.ndarray) -> None:
        """The device has written these pages (folio_end_writeback)."""
        PW.folio_end_writeback(self.K.ref, pages, len(pages))

    def residency(self, fid: int) -> tuple[int, int, int]:
        """(cached, dirty, writeback) pages of a file."""
        c, d, w = PW.file_residency(self.K.ref, fid)
        return int(c), int(d), int(w)

    def set_clock(self, seconds: float) -> None:
        """The clock compiled code stamps inodes with (dirtied_when)."""
        self.K.ctl[P.C_NOW_US] = int(round(seconds * 1e6))

    def unuse(self, mm: int, vmas: np.ndarray, lo: int, hi: int) -> None:
        """swapoff's unuse_mm(): the swap entries of slots [lo, hi) in ``mm``
        come back into memory (OutOfMemory when they cannot)."""
        progress = np.zeros(2, dtype=np.int64)
        try:
            self._resumable(lambda M: (E.unuse_vmas(M, vmas, mm, lo, hi, progress, 0), 0))
        finally:
            self._release_prealloc()

    def shmem_unuse(self, fid: int, lo: int, hi: int) -> None:
        """swapoff's shmem_unuse_inode(): the pages of a shmem file swapped
        out to slots [lo, hi) come back into its page cache (OutOfMemory
        when they cannot)."""
        progress = np.zeros(1, dtype=np.int64)
        self.run_resumable(lambda M: (SH.shmem_unuse_file(M, fid, lo, hi, progress, 0), 0))

    def shmem_swapped(self, fid: int, start: int = 0, end: int | None = None) -> int:
        """Pages of indices [start, end) of a shmem file that are swapped out
        (shmem_partial_swap_usage)."""
        end = int(self.K.f_npages[fid]) if end is None else end
        return int(SH.shmem_partial_swap_usage(self.K.ref, fid, start, end))

    def truncate(self, fid: int) -> None:
        """Drop a file's page cache (a shmem object's pages when it goes)."""
        E.truncate_file(self.K.ref, fid)

    def zap(self, mm: int, start: int, end: int) -> None:
        """Drop every mapping in [start, end) (models zap_page_range_single)."""
        E.zap_range(self.K.ref, mm, start, end)

    def free_pgtables(self, mm: int, start: int, end: int, floor: int, ceiling: int) -> None:
        E.free_pgtables(self.K.ref, mm, start, end, floor, ceiling)

    def copy_range(self, src_mm: int, dst_mm: int, start: int, end: int) -> None:
        """Copy the PTEs of a private VMA for fork (models copy_page_range)."""
        state = {"va": start}

        def call(M):
            status, va = E.copy_range(M, src_mm, dst_mm, state["va"], end)
            state["va"] = va
            return status, va
        try:
            self._resumable(call)
        finally:
            self._release_prealloc()

    # ------------------------------------------------------------- queries

    def rss(self, mm: int) -> tuple[int, int, int, int]:
        """(file, anon, swap entries, shmem) pages of an mm (get_mm_counter)."""
        row = self.K.mm_stat[mm]
        return (int(row[P.MM_FILEPAGES]), int(row[P.MM_ANONPAGES]), int(row[P.MM_SWAPENTS]),
                int(row[P.MM_SHMEMPAGES]))

    def pgtables_bytes(self, mm: int) -> int:
        """Models mm_pgtables_bytes(): PTE, PMD and PUD tables (not the PGD)."""
        row = self.K.mm_stat[mm]
        return int(row[P.MM_NR_PTES] + row[P.MM_NR_PMDS] + row[P.MM_NR_PUDS]) << 12

    def faults(self, pid: int) -> tuple[int, int]:
        row = self.K.task_stat[pid]
        return int(row[P.T_MIN_FLT]), int(row[P.T_MAJ_FLT])
