"""``pagecache.json``: each file's page cache, as cachestat(2) and mincore(2)
would show it on the simulated machine (what ``linmem fincore`` reads).

One entry per file of the machine's file systems: its path, size, file
system, and its pages cached, dirty, under writeback; ``evicted`` and
``recently_evicted`` count pages dropped from the cache that left a shadow
entry (none until reclaim keeps shadows).
"""

from __future__ import annotations

import json

PAGE_SIZE = 4096


def pagecache_entries(machine) -> list[dict]:
    """The files and their page-cache state, by path."""
    kernel = machine._kernel
    fs = kernel.mounted_fs if kernel is not None else None
    if fs is None:
        return []
    entries = []
    for path in sorted(fs.inodes):
        inode = fs.inodes[path]
        cached, dirty, writeback = fs.residency(inode)
        entries.append({"path": path, "size": inode.size, "fs": "tmpfs" if inode.tmpfs else "ext4",
                        "cached": cached, "dirty": dirty, "writeback": writeback,
                        "evicted": 0, "recently_evicted": 0})
    return entries


def pagecache_json(machine) -> str:
    return json.dumps({"page_size": PAGE_SIZE, "files": pagecache_entries(machine)},
                      indent=1) + "\n"
