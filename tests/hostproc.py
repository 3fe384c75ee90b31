"""Read the real kernel's zone facts from a zoneinfo text (this machine's or a saved copy)."""

from __future__ import annotations

import re
from pathlib import Path

HOST_DATA = Path(__file__).parent / "data" / "host-6.18"


def parse_zoneinfo(text: str) -> list[dict]:
    """Zones in order, each with name, marks, spans, protection and its pagesets."""
    zones = []
    for block in re.split(r"(?m)^Node \d+, zone\s+", text)[1:]:
        name = block.split("\n", 1)[0].strip()
        zone = {"name": name, "pcp": []}
        for key in ("pages free", "boost", "min", "low", "high", "promo", "spanned",
                    "present", "managed"):
            m = re.search(rf"(?m)^\s+{key}\s+(\d+)$", block)
            zone[key.replace("pages ", "")] = int(m.group(1))
        prot = re.search(r"protection: \(([^)]*)\)", block).group(1)
        zone["protection"] = [int(x) for x in prot.split(",")]
        for m in re.finditer(r"count:\s+(\d+)\s+high:\s+(\d+)\s+batch:\s+(\d+)\s+"
                             r"high_min:\s+(\d+)\s+high_max:\s+(\d+)\s+vm stats threshold:\s+(\d+)",
                             block):
            zone["pcp"].append(dict(zip(("count", "high", "batch", "high_min", "high_max",
                                         "threshold"), map(int, m.groups()))))
        zones.append(zone)
    return zones


def read_sysctl(root: Path, name: str) -> list[int]:
    return [int(x) for x in (root / "sys" / "vm" / name).read_text().split()]
