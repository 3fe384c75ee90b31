"""The built-in example scenarios (``src/linmem/data/scenarios/*.yaml``).

Each example is a scenario file whose header comment says what happens and
where to look; its first line is the one-line description that
``linmem examples`` lists. ``linmem run NAME`` runs one by its name (the
file name without ``.yaml``); ``default`` is the scenario ``linmem run``
runs without an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from linmem.errors import InputError

_DIR = "data/scenarios"


@dataclass(frozen=True)
class Example:
    """A built-in scenario: its name, one-line description and YAML text."""

    name: str
    description: str
    text: str

    def scenario(self):
        """The parsed scenario (see :func:`linmem.workload.scenario.parse_scenario`)."""
        from linmem.workload.scenario import parse_scenario
        return parse_scenario(self.text, f"{self.name}.yaml")


def _description(text: str) -> str:
    """The first sentence of the header comment (it may span lines)."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#") or not line.strip("# "):
            break
        words.extend(line.lstrip("#").split())
    sentence = " ".join(words)
    end = sentence.find(". ")
    return sentence if end < 0 else sentence[:end + 1]


def examples() -> list[Example]:
    """Every built-in example, sorted by name."""
    folder = resources.files("linmem").joinpath(_DIR)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            text = entry.read_text(encoding="utf-8")
            found.append(Example(entry.name[:-len(".yaml")], _description(text), text))
    return sorted(found, key=lambda e: e.name)


def names() -> list[str]:
    """The names of the built-in examples, sorted."""
    return [e.name for e in examples()]


def example(name: str) -> Example:
    """The built-in example ``name``; an InputError listing the names if none."""
    for e in examples():
        if e.name == name:
            return e
    raise InputError(name, f"no such example scenario or file (examples: {', '.join(names())})")
