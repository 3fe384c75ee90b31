"""The machine's files: a block device (blockdev), an ext4-like file system
with its metadata in the block device's cache (ext4, vfs), and the flusher
that writes dirty pages back (fs_writeback)."""
