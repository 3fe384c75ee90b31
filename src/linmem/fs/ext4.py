"""Where ext4 keeps its metadata: the blocks an operation reads or dirties.

File data lives in each file's own page cache; metadata is read and written
through the block device's page cache with buffer heads, and that is what
/proc/meminfo calls Buffers. This module says which metadata blocks each
operation touches, for an ext4 made by mke2fs's defaults (4 KiB blocks,
32768 blocks and 8192 inodes of 256 bytes per block group, flex_bg of 16
groups, extents):

* mount reads the superblock, the group descriptors (64 bytes per group),
  the root's and the journal's inode block and the journal superblock
  (ext4_fill_super, jbd2_journal_load);
* a path lookup reads, for each directory on the way, the inode-table block
  holding its inode and its directory block (ext4_lookup -> ext4_bread); the
  file's own inode block (ext4_iget -> __ext4_get_inode_loc);
* creating a file reads and dirties its group's inode bitmap, and dirties
  the inode-table block, the directory block and the group descriptor
  (__ext4_new_inode, ext4_add_entry);
* allocating data blocks (delayed allocation: at writeback, ext4_map_blocks)
  reads and dirties the block bitmap of each group the data lands in (one
  per 128 MiB), dirties the group descriptor and the inode; a file of more
  than 4 extents (512 MiB) needs extent-tree leaf blocks, 340 extents each;
* unlink dirties the directory block, the inode, the inode bitmap and the
  block bitmaps that held the data (ext4_unlink, ext4_free_blocks);
* each journal commit (every 5 s, or at fsync) writes a descriptor block,
  a copy of every dirtied metadata block and a commit block into the
  journal, itself blocks of the device (jbd2_journal_commit_transaction).

Blocks are named, not numbered: a key such as ``("itable", group, n)``; the
block device cache gives each key its own page.

XXX: the layout is that of an empty file system (files are allocated in
order, one group after the other; directories are one block); no orphan
list, no xattrs, no htree directories.
"""

from __future__ import annotations

BLOCK = 4096
BLOCKS_PER_GROUP = 32768
INODES_PER_GROUP = 8192
INODE_SIZE = 256
INODES_PER_BLOCK = BLOCK // INODE_SIZE
GROUP_DESC_SIZE = 64
EXTENT_BLOCKS = 32768                 # the longest extent (ext4 initialized extents)
EXTENTS_IN_INODE = 4
EXTENTS_PER_BLOCK = (BLOCK - 12) // 12
JOURNAL_BLOCKS = 32768                # a 128 MiB journal (mke2fs for >= 128 GiB)


def group_desc_blocks(nr_groups: int) -> int:
    return -(-nr_groups * GROUP_DESC_SIZE // BLOCK)


def inode_block(ino: int) -> tuple:
    """The inode-table block holding inode ``ino`` (__ext4_get_inode_loc)."""
    group, index = divmod(ino - 1, INODES_PER_GROUP)
    return ("itable", group, index // INODES_PER_BLOCK)


def inode_bitmap(ino: int) -> tuple:
    return ("ibitmap", (ino - 1) // INODES_PER_GROUP)


def group_desc(group: int) -> tuple:
    return ("gdt", group * GROUP_DESC_SIZE // BLOCK)


ROOT_INO = 2
JOURNAL_INO = 8


def mount_blocks(nr_groups: int) -> list[tuple]:
    """Read at mount (ext4_fill_super): superblock, group descriptors, the
    inode-table block of the root and journal inodes (ext4_iget), the
    journal superblock (jbd2_journal_load)."""
    return [("sb",), *[("gdt", k) for k in range(group_desc_blocks(nr_groups))],
            inode_block(ROOT_INO), inode_block(JOURNAL_INO), ("journal", 0)]


def lookup_blocks(dir_inos: list[int], ino: int) -> list[tuple]:
    """Read by a path lookup: each directory's inode and directory block, then
    the file's inode."""
    blocks = []
    for d in dir_inos:
        blocks += [inode_block(d), ("dir", d, 0)]
    return blocks + [inode_block(ino)]


def create_blocks(dir_ino: int, ino: int) -> list[tuple]:
    """Dirtied by creating inode ``ino`` in directory ``dir_ino``."""
    group = (ino - 1) // INODES_PER_GROUP
    return [inode_bitmap(ino), inode_block(ino), ("dir", dir_ino, 0), group_desc(group)]


def extent_leaf_blocks(ino: int, nr_blocks: int) -> list[tuple]:
    """Extent-tree leaves of a file of ``nr_blocks`` contiguous blocks."""
    extents = -(-nr_blocks // EXTENT_BLOCKS)
    if extents <= EXTENTS_IN_INODE:
        return []
    return [("extent", ino, k) for k in range(-(-extents // EXTENTS_PER_BLOCK))]


def allocation_blocks(ino: int, first_block: int, nr_blocks: int, file_blocks: int) -> list[tuple]:
    """Dirtied by allocating blocks [first_block, first_block + nr_blocks) of
    the disk to a file that then has ``file_blocks`` blocks."""
    if nr_blocks <= 0:
        return []
    g0 = first_block // BLOCKS_PER_GROUP
    g1 = (first_block + nr_blocks - 1) // BLOCKS_PER_GROUP
    blocks = [("bbitmap", g) for g in range(g0, g1 + 1)]
    blocks += sorted({group_desc(g) for g in range(g0, g1 + 1)})
    return blocks + [inode_block(ino)] + extent_leaf_blocks(ino, file_blocks)


def unlink_blocks(dir_ino: int, ino: int, first_block: int, nr_blocks: int) -> list[tuple]:
    """Dirtied by removing the last link of a file and freeing its blocks."""
    blocks = [("dir", dir_ino, 0), inode_block(ino), inode_bitmap(ino)]
    if nr_blocks > 0:
        g0 = first_block // BLOCKS_PER_GROUP
        g1 = (first_block + nr_blocks - 1) // BLOCKS_PER_GROUP
        blocks += [("bbitmap", g) for g in range(g0, g1 + 1)]
    return blocks


def journal_blocks(head: int, nr_metadata: int) -> tuple[list[tuple], int]:
    """The journal blocks a commit of ``nr_metadata`` dirty metadata blocks
    writes (descriptor, copies, commit block), from position ``head``; and
    the new head (the journal is a ring)."""
    n = nr_metadata + 2
    blocks = [("journal", 1 + (head + k) % (JOURNAL_BLOCKS - 1)) for k in range(n)]
    return blocks, (head + n) % (JOURNAL_BLOCKS - 1)
