"""A ``.zst`` trace decompressed as it is read, strictly.

zstandard's own ``stream_reader`` ends quietly where a file was cut in the
middle of a frame, so a truncated trace would read as a shorter one. This
reader feeds the file through a decompression object frame after frame (a
file may hold several, as ``pzstd`` and ``cat a.zst b.zst`` make) and raises
InputError for bytes that are not zstd data and for a last frame cut short.
"""

from __future__ import annotations

import io

import zstandard

from linmem.errors import InputError

READ_SIZE = 1 << 17     # compressed bytes fed at a time (decompressed: ~30 times more)


class ZstdStream(io.RawIOBase):
    """The decompressed bytes of the zstd file ``raw`` (a binary stream),
    with ``path`` to name it in errors."""

    def __init__(self, path: str, raw):
        super().__init__()
        self.path, self.raw = path, raw
        self.dobj = zstandard.ZstdDecompressor().decompressobj()
        self.out, self.off = b"", 0         # decompressed, not yet read: out[off:]
        self.in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self.off == len(self.out):
            data = self.raw.read(READ_SIZE)
            if not data:
                if self.in_frame:
                    raise InputError(self.path, "truncated: the file ends inside a zstd frame")
                return 0
            self.out, self.off = self._decompress(data), 0
        n = min(len(b), len(self.out) - self.off)
        b[:n] = self.out[self.off:self.off + n]
        self.off += n
        return n

    def _decompress(self, data: bytes) -> bytes:
        """Decompress data, starting a new frame wherever one ends."""
        out = []
        try:
            while data:
                out.append(self.dobj.decompress(data))
                self.in_frame = not self.dobj.eof
                data = b""
                if self.dobj.eof:
                    data = self.dobj.unused_data
                    self.dobj = zstandard.ZstdDecompressor().decompressobj()
        except zstandard.ZstdError as err:
            raise InputError(self.path, f"not zstd data, or damaged: {err}") from None
        return b"".join(out)

    def close(self) -> None:
        self.raw.close()
        super().close()
