"""docs/api.md's examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "api.md"


def test_the_api_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    m = namespace["m"]
    assert namespace["minor"] >= 16384 and namespace["major"] == 0
    k = namespace["k"]
    assert namespace["cgroup"] == f"{k.memcg.usage(k.memcg.get('/batch')) * 4096}\n"
    assert (namespace["out"] / "run" / "summary.json").exists()
    assert m.total_swap_pages > m.nr_swap_pages          # /batch swapped
