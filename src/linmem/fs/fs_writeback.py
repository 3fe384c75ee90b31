"""The flusher: writing dirty page cache back to disk (fs/fs-writeback.c).

One ``bdi_writeback`` for the disk. Its work function (wb_workfn ->
wb_do_writeback) runs

* when background writeback is started (balance_dirty_pages found more than
  the background threshold dirty): write the oldest-dirtied files until the
  dirty pages are below the background threshold (wb_check_background_flush);
* periodically (wb_check_old_data_flush, "kupdate"): every
  ``dirty_writeback_centisecs`` while anything is dirty, write every file
  dirtied more than ``dirty_expire_centisecs`` ago; the wake-ups are kernel
  timers, late by the timer wheel's granularity (Machine.timer_expiry), so
  data dirtied once is written 30 to 31.5 s later, as on the real kernel;

each file from where its last writeback stopped (range_cyclic), in chunks of
MAX_WRITEBACK_PAGES (4 MiB). A chunk goes under writeback when submitted and
is ended (folio_end_writeback) when the disk has written it. At most
``MAX_INFLIGHT_CHUNKS`` chunks are in flight (the block layer's request
queue); the flusher goes on as they complete. The journal commits its
running transaction when it is ``JOURNAL_COMMIT_INTERVAL`` old (jbd2's
kjournald2), which then leaves metadata dirty for the flusher.

fsync (ext4_sync_file -> file_write_and_wait_range, jbd2 commit) writes all
of a file's dirty pages and waits for them and for the commit.

Deviations (``XXX``): one writeback for everything (no per-cgroup
writeback); files are written oldest-dirtied first without the b_io/b_more_io
rotation; a chunk's pages end writeback together.
"""

from __future__ import annotations

import numpy as np

from linmem.engine.page_writeback import FS_DIRTIED_WHEN, FS_DIRTY
from linmem.fs.blockdev import WRITE
from linmem.mm.page_writeback import global_dirty_limits
from linmem.mm.vmstat import node_item

MAX_WRITEBACK_PAGES = 1024
MAX_INFLIGHT_CHUNKS = 8
NR_DIRTY = node_item("nr_dirty")


class BdiWriteback:
    """The disk's writeback: the flusher's state and its in-flight I/O."""

    def __init__(self, machine, fs):
        self.machine = machine
        self.fs = fs
        self.mem = fs.mem
        self.device = fs.device
        self.inflight = 0                     # chunks submitted, not yet written
        self.cursor: dict[int, int] = {}      # file -> writeback_index
        self.pending: dict[int, list] = {}    # file -> [done time of its chunks]
        self.background = False
        self.kupdate_more = False             # expired data left for lack of queue room
        self.everything = False               # wakeup_flusher_threads: write all
        self.work_queued = False
        self.delayed_at: float | None = None
        self.commit_at: float | None = None
        self.written_chunks = 0
        fs.writeback = self

    # -------------------------------------------------------------- wakeups

    def _sysctl(self, name: str) -> int:
        return int(self.machine.sysctl[name])

    def wakeup_delayed(self, now: float) -> None:
        """wb_wakeup_delayed(): the periodic flush, armed when something is
        first dirtied (and re-armed while anything stays dirty)."""
        interval = self._sysctl("dirty_writeback_centisecs") / 100
        if interval <= 0 or self.delayed_at is not None:
            return
        self.delayed_at = self.machine.timer_expiry(interval)
        self.machine.add_timer(self.delayed_at, self._delayed_work)
        self.arm_commit()

    def arm_commit(self) -> None:
        """kjournald2's timer for the running transaction."""
        due = self.fs.commit_due()
        if due is not None and self.commit_at is None:
            self.commit_at = self.machine.timer_expiry(max(0.0, due - self.machine.clock))
            self.machine.add_timer(self.commit_at, self._commit_work)

    def _commit_work(self, now: float) -> None:
        self.commit_at = None
        self.fs.commit(now)
        self.wakeup_delayed(now)

    def _delayed_work(self, now: float) -> None:
        self.delayed_at = None
        self.wb_workfn(now, kupdate=True)

    def flush_all(self, now: float) -> None:
        """wakeup_flusher_threads(): write every dirty page, however young."""
        self.everything = True
        self._queue(now)

    def start_background(self, now: float) -> None:
        """wb_start_background_writeback(): wake the flusher now."""
        self.background = True
        self._queue(now)

    def _queue(self, now: float) -> None:
        if not self.work_queued:
            self.work_queued = True
            self.machine.add_timer(now, self._queued_work)

    def _queued_work(self, now: float) -> None:
        self.work_queued = False
        self.wb_workfn(now, kupdate=self.kupdate_more)
        if self.everything and not self.kupdate_more:
            self.everything = False

    @property
    def in_progress(self) -> bool:
        """writeback_in_progress(): background work is running."""
        return self.background

    # ----------------------------------------------------------------- work

    def dirty_files(self) -> np.ndarray:
        """Files with dirty pages, oldest dirtied first (the b_dirty list)."""
        fstat = self.mem.K.fstat
        fids = np.flatnonzero(fstat[:, FS_DIRTY] > 0)
        return fids[np.argsort(fstat[fids, FS_DIRTIED_WHEN], kind="stable")]

    def wb_workfn(self, now: float, kupdate: bool) -> None:
        """wb_do_writeback(): background writeback while over the background
        threshold, then the expired files; re-arm while anything is dirty."""
        fstat = self.mem.K.fstat
        if self.background:
            while self.inflight < MAX_INFLIGHT_CHUNKS:
                bg, _ = global_dirty_limits(self.machine)
                if int(self.mem.K.node_stat[NR_DIRTY]) <= bg:
                    self.background = False
                    break
                fids = self.dirty_files()
                if not len(fids):
                    self.background = False
                    break
                self._write_chunk(int(fids[0]), now)
        if kupdate or self.everything:
            self.kupdate_more = False
            expire = self._sysctl("dirty_expire_centisecs") / 100
            cutoff = int(round((now - expire) * 1e6)) if not self.everything else 1 << 62
            for fid in self.dirty_files():
                if fstat[fid, FS_DIRTIED_WHEN] > cutoff:
                    break
                while fstat[fid, FS_DIRTY] > 0:
                    if self.inflight >= MAX_INFLIGHT_CHUNKS:
                        self.kupdate_more = True
                        break
                    self._write_chunk(int(fid), now)
        if len(self.dirty_files()):
            self.wakeup_delayed(now)

    def _write_chunk(self, fid: int, now: float, nr: int = MAX_WRITEBACK_PAGES) -> float:
        """Submit up to ``nr`` dirty pages of a file from its cursor
        (range_cyclic: wrap around once). Returns when they will be written."""
        npages = int(self.mem.K.f_npages[fid])
        self.fs.allocate_for_writeback(fid)
        start = self.cursor.get(fid, 0)
        pages, index = self.mem.start_writeback(fid, start, npages, nr)
        if len(pages) < nr and start > 0:
            more, index = self.mem.start_writeback(fid, 0, start, nr - len(pages))
            pages = np.concatenate([pages, more])
        self.cursor[fid] = index if index < npages else 0
        if not len(pages):
            return now
        done = self.device.submit(now, WRITE, len(pages) * 4096)
        self.inflight += 1
        self.pending.setdefault(fid, []).append(done)
        self.machine.add_timer(done, lambda t, p=pages, f=fid, d=done: self._end(t, p, f, d))
        return done

    def _end(self, now: float, pages: np.ndarray, fid: int, done: float) -> None:
        """The disk wrote a chunk (end_bio -> folio_end_writeback)."""
        self.mem.end_writeback(pages)
        self.inflight -= 1
        self.written_chunks += 1
        waits = self.pending.get(fid)
        if waits:
            waits.remove(done)
            if not waits:
                del self.pending[fid]
        if self.background or self.kupdate_more:
            self._queue(now)

    # ---------------------------------------------------------------- fsync

    def fsync(self, fid: int, now: float) -> float:
        """ext4_sync_file(): write every dirty page of the file, wait for all
        its writeback, commit the journal. Returns when it is all on disk."""
        done = now
        while self.mem.K.fstat[fid, FS_DIRTY] > 0:
            self.cursor[fid] = 0
            done = max(done, self._write_chunk(fid, now))
        done = max([done, *self.pending.get(fid, [])])
        return max(done, self.fs.commit(done))

    def wait_inode(self, inode) -> None:
        """truncate_inode_pages waits for pages under writeback: end them now."""
        fid = inode.fid
        for when in sorted(self.pending.get(fid, [])):
            self.machine.run_timers(when)
