"""Files: the namespace, inodes, read(2), write(2), fsync(2) and unlink(2).

The machine has one disk with an ext4 file system mounted at ``/`` and a
tmpfs at ``/dev/shm``. Files of the scenario's ``files`` section exist at
boot, on disk and not cached (a tmpfs file is in memory from the start, as
shmem pages). A write creates a file or extends it.

* read(2) goes through the file's page cache (linmem.engine.filemap:
  on-demand readahead, folio_mark_accessed on every folio copied);
* write(2) is generic_perform_write (linmem.engine.page_writeback): pages
  dirtied, and every ``nr_dirtied_pause`` pages the writer calls
  balance_dirty_pages (linmem.mm.page_writeback), which may make it sleep;
  the write returns after that many pages so that the run can let time pass;
* the data reaches the disk by writeback (linmem.fs.fs_writeback): the
  flusher, or fsync, which writes the file's dirty pages, waits for them and
  commits the journal;
* unlink removes the name; the inode and its page cache (dirty pages
  included, never written) go when no one has it open or mapped (iput ->
  evict -> truncate_inode_pages_final).

Metadata goes through the block device's page cache (Buffers), following
linmem.fs.ext4, and through the journal, whose commits (every 5 s, or at
fsync) write the journal blocks and leave the metadata dirty for writeback.

The time things take comes from the disk (linmem.fs.blockdev): synchronous
reads wait for the device, writes are asynchronous except for fsync.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linmem.fs import ext4
from linmem.fs.blockdev import WRITE, BlockDevice
from linmem.mm.vma import MappedFile
from linmem.mm.vmstat import vm_event

PAGE = 4096
TMPFS_MOUNT = "/dev/shm/"
DISK_DEV = (254, 1)          # vda1
TMPFS_DEV = (0, 23)
JOURNAL_COMMIT_INTERVAL = 5.0
_PGPGOUT = vm_event("pgpgout")


@dataclass(eq=False)
class Inode:
    """A file's inode: its size, place on disk and page cache."""

    ino: int
    path: str
    size: int
    tmpfs: bool
    dir_inos: list[int]
    fid: int = -1                 # its page cache (registered at first use)
    nlink: int = 1
    opened: int = 0               # open file descriptions and mappings
    first_block: int = -1         # data blocks allocated (ext4 delayed allocation)
    nr_blocks: int = 0
    icached: bool = False         # in the inode and dentry caches (no lookup I/O)

    @property
    def npages(self) -> int:
        return -(-self.size // PAGE)


@dataclass(eq=False)
class FsFile(MappedFile):
    """An open file of this file system; its mappings keep the inode."""

    inode: Inode | None = None
    on_last_put: object = None

    def vm_get(self) -> None:
        self.inode.opened += 1

    def vm_put(self) -> None:
        self.inode.opened -= 1
        if self.on_last_put is not None:
            self.on_last_put(self.inode)


@dataclass
class Journal:
    """jbd2's running transaction: the metadata blocks dirtied since the last
    commit, and where the ring's head is."""

    running: list = field(default_factory=list)
    started: float = -1.0
    head: int = 0
    commits: int = 0


class Filesystem:
    """The machine's files: an ext4 on the disk, and a tmpfs."""

    def __init__(self, kernel, device: BlockDevice):
        self.kernel = kernel
        self.mem = kernel.mem
        self.device = device
        self.inodes: dict[str, Inode] = {}
        self.by_fid: dict[int, Inode] = {}
        self.dirs: dict[str, int] = {"/": 2}
        self.next_ino = 12                    # EXT4_FIRST_INO 11 is lost+found
        self.next_block = 0
        self.nr_groups = max(1, device.size // (ext4.BLOCK * ext4.BLOCKS_PER_GROUP))
        self.first_data_block = self._first_data_block()
        self.bdev_fid = self.mem.register_file(0)
        self.bdev_slots: dict[tuple, int] = {}
        self.journal = Journal()
        self.writeback = None                 # the flusher (linmem.fs.fs_writeback)
        self.metadata_reads = 0
        self.blocks(ext4.mount_blocks(self.nr_groups), dirty=False)

    def _first_data_block(self) -> int:
        """Past the metadata of the first flex group (bitmaps, inode tables)."""
        flex = min(16, self.nr_groups)
        table = ext4.INODES_PER_GROUP * ext4.INODE_SIZE // ext4.BLOCK
        return 1 + ext4.group_desc_blocks(self.nr_groups) + flex * (2 + table) + ext4.JOURNAL_BLOCKS

    # ------------------------------------------------------------ metadata

    def _slot(self, key: tuple) -> int:
        slot = self.bdev_slots.get(key)
        if slot is None:
            slot = len(self.bdev_slots)
            self.bdev_slots[key] = slot
            if slot >= self.mem.K.f_npages[self.bdev_fid]:
                self.mem.resize_file(self.bdev_fid, slot + 1)
        return slot

    def blocks(self, keys: list[tuple], dirty: bool, read_missing: bool = True) -> int:
        """Read (or find) metadata blocks; ``dirty``: add them to the running
        transaction (jbd2_journal_dirty_metadata). Returns blocks read."""
        if not keys:
            return 0
        slots = [self._slot(k) for k in keys]
        _, read = self.mem.touch_blocks(self.bdev_fid, slots, False, read_missing)
        self.metadata_reads += read
        if dirty:
            if not self.journal.running:
                self.journal.started = self.kernel.machine.clock
            self.journal.running.extend(k for k in keys if k not in self.journal.running)
            if self.writeback is not None:
                self.writeback.arm_commit()
        return read

    def commit(self, now: float) -> float:
        """jbd2_journal_commit_transaction(): write the running transaction to
        the journal (descriptor, copies, commit block) and leave its metadata
        dirty for writeback (checkpointing). Returns when the commit is on disk."""
        j = self.journal
        if not j.running:
            return now
        keys, j.head = ext4.journal_blocks(j.head, len(j.running))
        self.blocks(keys, dirty=False, read_missing=False)
        done = self.device.submit(now, WRITE, len(keys) * ext4.BLOCK)
        self.mem.K.events[_PGPGOUT] += 4 * len(keys)
        self.mem.touch_blocks(self.bdev_fid, [self._slot(k) for k in j.running], True)
        j.running = []
        j.started = -1.0
        j.commits += 1
        return done

    def commit_due(self) -> float | None:
        """When the running transaction must commit (its age reaches the
        commit interval), or None."""
        if not self.journal.running:
            return None
        return self.journal.started + JOURNAL_COMMIT_INTERVAL

    # ---------------------------------------------------------- namespace

    def _parents(self, path: str) -> list[int]:
        """The inodes of the directories on the way to ``path`` (created as needed)."""
        inos = [2]
        parts = path.strip("/").split("/")[:-1]
        here = ""
        for part in parts:
            here += "/" + part
            if here not in self.dirs:
                self.dirs[here] = self.next_ino
                self.next_ino += 1
            inos.append(self.dirs[here])
        return inos

    def create(self, path: str, size: int = 0, boot: bool = False) -> Inode:
        """A new file of ``size`` bytes. At boot (the ``files`` section) it is
        on disk and cold; otherwise it is new and empty, and ``size`` is 0."""
        tmpfs = path.startswith(TMPFS_MOUNT)
        inode = Inode(self.next_ino, path, size, tmpfs, [] if tmpfs else self._parents(path),
                      icached=not boot)
        self.next_ino += 1
        self.inodes[path] = inode
        if boot and not tmpfs:
            self._allocate(inode, inode.npages, journal=False)
        elif not tmpfs:
            self.blocks(ext4.create_blocks(inode.dir_inos[-1], inode.ino), dirty=True)
        self.fid(inode)
        if boot and tmpfs and size:
            self.mem.write(inode.fid, 0, inode.npages, False, False, 0)
        return inode

    def _allocate(self, inode: Inode, nr_blocks: int, journal: bool = True) -> None:
        """Give the file's not yet allocated blocks a place on disk (ext4
        delayed allocation, at writeback): contiguous, after the last file."""
        want = nr_blocks - inode.nr_blocks
        if want <= 0:
            return
        if inode.first_block < 0:
            inode.first_block = self.first_data_block + self.next_block
        start = inode.first_block + inode.nr_blocks
        self.next_block += want
        inode.nr_blocks = nr_blocks
        if journal:
            self.blocks(ext4.allocation_blocks(inode.ino, start, want, nr_blocks), dirty=True)

    def allocate_for_writeback(self, fid: int) -> None:
        """ext4_writepages -> ext4_map_blocks: delayed allocation of a file's
        blocks when its data is first written back."""
        inode = self.by_fid.get(fid)
        if inode is not None and not inode.tmpfs and inode.nr_blocks < inode.npages:
            self._allocate(inode, inode.npages)

    def lookup(self, path: str) -> Inode | None:
        """The inode of ``path`` (path_lookupat): from the dentry and inode
        caches, or, the first time, by ext4_lookup and ext4_iget, which read
        the directories' and the inode's blocks."""
        inode = self.inodes.get(path)
        if inode is not None and not inode.tmpfs and not inode.icached:
            self.blocks(ext4.lookup_blocks(inode.dir_inos, inode.ino), dirty=False)
            inode.icached = True
        return inode

    def drop_inodes(self) -> None:
        """drop_caches 2 (prune_icache_sb, prune_dcache_sb): unused inodes and
        dentries go; the next lookup reads them again."""
        for inode in self.inodes.values():
            if not inode.opened:
                inode.icached = False

    def fid(self, inode: Inode) -> int:
        if inode.fid < 0:
            inode.fid = self.mem.register_file(inode.npages, shmem=inode.tmpfs)
            self.by_fid[inode.fid] = inode
        return inode.fid

    def open(self, path: str) -> FsFile:
        """A ``struct file`` for mmap: keeps the inode while mapped."""
        inode = self.lookup(path)
        dev = TMPFS_DEV if inode.tmpfs else DISK_DEV
        return FsFile(path=path, size=inode.size, dev=dev, ino=inode.ino, writable=True,
                      inode=inode, on_last_put=self._maybe_evict)

    def unlink(self, path: str, now: float) -> bool:
        """unlink(2): the name goes at once; the inode when no one holds it."""
        inode = self.lookup(path)
        if inode is None:
            return False
        del self.inodes[path]
        inode.nlink = 0
        if not inode.tmpfs:
            self.blocks(ext4.unlink_blocks(inode.dir_inos[-1], inode.ino, inode.first_block,
                                           inode.nr_blocks), dirty=True)
        self._maybe_evict(inode)
        return True

    def _maybe_evict(self, inode: Inode) -> None:
        """iput_final -> evict -> truncate_inode_pages_final: an unlinked inode
        no one holds loses its pages (waiting for writeback first)."""
        if inode.nlink or inode.opened or inode.fid < 0:
            return
        if self.writeback is not None:
            self.writeback.wait_inode(inode)
        self.mem.truncate(inode.fid)
        self.mem.resize_file(inode.fid, 0)

    # -------------------------------------------------------------- sizes

    def extend(self, inode: Inode, size: int) -> None:
        """i_size_write for a write past the end."""
        if size > inode.size:
            inode.size = size
            self.mem.resize_file(self.fid(inode), inode.npages)

    def residency(self, inode: Inode) -> tuple[int, int, int]:
        """(cached, dirty, writeback) pages, as cachestat(2) counts them."""
        return self.residency_of(inode.fid)

    def residency_of(self, fid: int) -> tuple[int, int, int]:
        return self.mem.residency(fid) if fid >= 0 else (0, 0, 0)

    @property
    def buffers(self) -> int:
        """nr_blockdev_pages(): pages in the block device's cache."""
        return self.mem.residency(self.bdev_fid)[0]


