"""How fast linmem reads traces: lackey text, plain and zstd, and the native
format it converts them to.

Generates a lackey trace of ``--lines`` lines (default 20 M, about 330 MB)
shaped like a real one (instruction fetches in the text, loads and stores
to the heap and the 10-digit stack addresses, some modifies, valgrind's
``==PID==`` lines around them), then times, with the compiled scanner
already loaded and the file in the page cache:

- lackey parsing of the text and of its ``.zst`` (lines/s, MB/s of text);
- the conversion to the native format (``write_native``, requests/s);
- reading the native file back, plain and ``.zst`` (requests/s, MB/s).

Every pass iterates the chunks (1 M requests) as a consumer would; the
numbers are the medians of ``--repeat`` passes.

Usage::

    .venv/bin/python benchmarks/trace_parse.py [--lines 20000000] [--repeat 3]

Always exits 0: the target (lackey parsing at 10 M lines/s or more) is
printed next to the number, not enforced.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import zstandard

from linmem.trace import open_trace
from linmem.trace.native import write_native

TARGET_LINES_S = 10e6
PATTERN_LINES = 1 << 20        # lines generated once, then repeated
PID = 4242


def lackey_lines(n: int, seed: int = 1) -> bytes:
    """n lackey records: 70% instruction fetches, 20% loads, 8% stores,
    2% modifies, with /bin/true's mix of address widths."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, n, p=[0.70, 0.20, 0.08, 0.02])
    text = 0x401000 + np.cumsum(rng.integers(1, 8, n)) % 0x180000
    heap = 0x4a20000 + rng.integers(0, 1 << 22, n)
    stack = 0x1ffefff000 - rng.integers(0, 1 << 14, n)
    addr = np.where(kind == 0, text, np.where(rng.random(n) < 0.5, heap, stack))
    size = np.where(kind == 0, rng.integers(1, 16, n), 1 << rng.integers(0, 4, n))
    prefix = ("I  ", " L ", " S ", " M ")
    return "".join(f"{prefix[k]}{a:08x},{s}\n"
                   for k, a, s in zip(kind.tolist(), addr.tolist(), size.tolist())).encode()


def make_trace(path: str, lines: int) -> tuple[int, int]:
    """Write a lackey trace of about ``lines`` lines; (lines, bytes)."""
    head = (f"=={PID}== Lackey, an example Valgrind tool\n"
            f"=={PID}== Command: ./bench\n=={PID}== \n").encode()
    foot = f"=={PID}== \n=={PID}== Exit code:       0\n".encode()
    body = lackey_lines(min(lines, PATTERN_LINES))
    repeats = max(1, lines // PATTERN_LINES)
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(repeats):
            f.write(body)
        f.write(foot)
    return 5 + repeats * min(lines, PATTERN_LINES), os.path.getsize(path)


def compress(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(fin, fout)


def timed(fn, repeat: int) -> tuple[float, int]:
    """The median seconds of ``repeat`` calls of fn, and what it returned."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), result


def requests(path: str, fmt: str) -> int:
    return sum(len(c) for c in open_trace(path, fmt))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="linmem-trace-bench-") as tmp:
        text, native = os.path.join(tmp, "bench.lackey"), os.path.join(tmp, "bench.lmt")
        t0 = time.perf_counter()
        lines, nbytes = make_trace(text, args.lines)
        compress(text, text + ".zst")
        made = time.perf_counter() - t0
        print(f"lackey trace: {lines / 1e6:.1f} M lines, {nbytes / 1e6:.0f} MB "
              f"(.zst {os.path.getsize(text + '.zst') / 1e6:.0f} MB), made in {made:.1f} s")

        first = _first_use(tmp)
        rows = []
        s, n = timed(lambda: requests(text, "lackey"), args.repeat)
        rows.append(("lackey", s, n, nbytes, lines))
        s, _ = timed(lambda: requests(text + ".zst", "lackey"), args.repeat)
        rows.append(("lackey .zst", s, n, nbytes, lines))
        s, _ = timed(lambda: write_native(native, open_trace(text, "lackey")), 1)
        rows.append(("lackey -> native", s, n, nbytes, lines))
        write_native(native + ".zst", open_trace(native, "native"))
        native_bytes = os.path.getsize(native)
        s, _ = timed(lambda: requests(native, "native"), args.repeat)
        rows.append(("native", s, n, native_bytes, None))
        s, _ = timed(lambda: requests(native + ".zst", "native"), args.repeat)
        rows.append(("native .zst", s, n, native_bytes, None))
        print(f"native trace: {native_bytes / 1e6:.0f} MB "
              f"(.zst {os.path.getsize(native + '.zst') / 1e6:.0f} MB); "
              f"first lackey read of a process (numba import, compiled scanner load): "
              f"{first:.2f} s")
        _print(rows)


def _first_use(tmp: str) -> float:
    """Seconds of the first read of a tiny lackey trace: loading numba and
    the compiled scanner from its cache (compiling it, the very first time)."""
    path = os.path.join(tmp, "tiny.lackey")
    with open(path, "w") as f:
        f.write("I  0401ab70,3\n")
    t0 = time.perf_counter()
    requests(path, "lackey")
    return time.perf_counter() - t0


def _print(rows) -> None:
    print(f"{'pass':<18} {'seconds':>8} {'M lines/s':>10} {'M requests/s':>13} {'MB/s':>7}")
    for name, s, n, nbytes, lines in rows:
        per_line = f"{lines / s / 1e6:10.1f}" if lines else f"{'':10}"
        print(f"{name:<18} {s:8.2f} {per_line} {n / s / 1e6:13.1f} {nbytes / s / 1e6:7.0f}")
    lackey_rate = rows[0][4] / rows[0][1]
    verdict = "met" if lackey_rate >= TARGET_LINES_S else "NOT met"
    print(f"target: lackey parsing at {TARGET_LINES_S / 1e6:.0f} M lines/s or more: {verdict} "
          f"({lackey_rate / 1e6:.1f} M lines/s)")


if __name__ == "__main__":
    main()
