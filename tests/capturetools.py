"""Peak RSS of real programs, natively and as the model predicts from a capture.

``measure(cmd)`` runs ``cmd`` natively under ``/usr/bin/time -v`` (the median
"Maximum resident set size" of five runs, after a first run that warms the
page cache), captures it with ``linmem capture`` and replays the capture
with ``linmem replay --kernel`` on a 1 GiB machine. ``python tests/capturetools.py
--record`` writes tests/data/capture/peak-rss.json from the programs of
:data:`PROGRAMS`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "capture" / "peak-rss.json"
PROGRAMS = {
    "python3-import-json": ["/usr/bin/python3", "-c", "import json"],
    "ls-R-usr-share-doc": ["/bin/ls", "-R", "/usr/share/doc"],
}
RUNS = 5


def skip_reason() -> str | None:
    """Why the live measurement cannot run here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed: the recorded numbers are checked instead"
    if not os.access("/usr/bin/time", os.X_OK):
        return "GNU time (/usr/bin/time) is not installed"
    probe = subprocess.run(["/usr/bin/time", "-v", "true"], capture_output=True, text=True)
    if "Maximum resident set size" not in probe.stderr:
        return "/usr/bin/time has no -v (not GNU time)"
    for cmd in PROGRAMS.values():
        if not os.path.exists(cmd[0]) or (len(cmd) > 2 and cmd[1] == "-R"
                                          and not os.path.isdir(cmd[2])):
            return f"{' '.join(cmd)}: not on this machine"
    return None


def native_maxrss_kb(cmd: list[str]) -> list[int]:
    """"Maximum resident set size" of ``RUNS`` runs, after one warming run."""
    out = []
    for _ in range(RUNS + 1):
        run = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, check=True)
        out.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)",
                                 run.stderr).group(1)))
    return out[1:]


def linmem(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "linmem.cli", *args], env=env,
                          capture_output=True, text=True, check=True)


def measure(cmd: list[str]) -> dict:
    """The native and the predicted peak RSS of ``cmd``, with the replay's counts."""
    native = native_maxrss_kb(cmd)
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "capture.lmt.zst")
        linmem("capture", "-q", "-o", trace, "--", *cmd)
        with open(f"{trace}.maps.json") as f:
            maps = json.load(f)
        replay = json.loads(linmem("replay", trace, "--format", "native", "--kernel",
                                   "--ram", "1GiB", "--json").stdout)
    return {"command": cmd, "native_maxrss_kb": native,
            "native_median_kb": int(statistics.median(native)),
            "model_peak_rss_kb": replay["peak_rss_kb"],
            "model": {k: replay[k] for k in ("requests", "accesses", "dropped", "denied",
                                             "regions", "rss_anon_kb", "rss_file_kb",
                                             "minor_faults", "major_faults")},
            "mappings": len(maps["mappings"]), "polls": maps["polls"]}


def record() -> None:
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True,
                              text=True).stdout.strip()
    doc = {"machine": {"kernel": platform.release(), "valgrind": valgrind,
                       "python3": os.path.realpath("/usr/bin/python3")},
           "results": {name: measure(cmd) for name, cmd in PROGRAMS.items()}}
    RECORDED.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        sys.exit("usage: python tests/capturetools.py --record")
