"""The simulated disk: a block device with a bandwidth and a latency.

Requests are served one after another at the device's bandwidth (reads and
writes share it); each completes ``latency`` after its last byte is
transferred. A request submitted while the device is busy waits its turn, so
a reader behind a flood of writeback waits for it, as on a real disk with one
queue. Defaults are those of a current NVMe SSD: 2 GiB/s reads, 1 GiB/s
writes, 80 us latency.

The device also counts what it did, as /proc/diskstats would (sectors read
and written, requests).
"""

from __future__ import annotations

from dataclasses import dataclass

READ, WRITE = 0, 1
SECTOR = 512


@dataclass
class BlockDevice:
    """One disk (``struct block_device`` with its request queue)."""

    size: int = 256 << 30                 # bytes
    read_bandwidth: float = 2 * 2**30     # bytes per second
    write_bandwidth: float = 2**30
    latency: float = 80e-6                # seconds, per request
    busy_until: float = 0.0
    sectors_read: int = 0
    sectors_written: int = 0
    reads: int = 0
    writes: int = 0

    def submit(self, now: float, op: int, nbytes: int) -> float:
        """Queue a request of ``nbytes`` at time ``now``; when it completes."""
        start = max(now, self.busy_until)
        bandwidth = self.read_bandwidth if op == READ else self.write_bandwidth
        self.busy_until = start + nbytes / bandwidth
        if op == READ:
            self.sectors_read += nbytes // SECTOR
            self.reads += 1
        else:
            self.sectors_written += nbytes // SECTOR
            self.writes += 1
        return self.busy_until + self.latency

    def read_time(self, now: float, pages: int, requests: int) -> float:
        """How long a reader waits for ``pages`` pages read in ``requests``
        synchronous requests (one after another: each waits for the last),
        starting at ``now``: the queue ahead, the transfer, one latency each."""
        if pages <= 0:
            return 0.0
        start = max(now, self.busy_until)
        nbytes = pages * 4096
        transfer = nbytes / self.read_bandwidth
        self.busy_until = start + transfer + requests * self.latency
        self.sectors_read += nbytes // SECTOR
        self.reads += requests
        return self.busy_until - now
