"""YAML with places: load a document keeping the line of every key and item.

Follows principle 7 of ARCHITECTURE.md (bad input gets one line naming the
file, the line and the key path). :func:`load_located` composes the node tree
(which keeps each node's line) and builds the plain Python data from it; a
syntax error, a duplicate key or more than one document becomes an
:class:`~linmem.errors.InputError` at ``FILE:LINE``. :func:`locate` turns a key
path such as ``("processes", 0, "steps", 2, "touch")`` into the line where
that key (or, when the key is absent, its nearest present parent) stands.
"""

from __future__ import annotations

from typing import Any, Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from linmem.errors import InputError

Loc = tuple[Any, ...]


def format_path(loc: Loc) -> str:
    """``("a", 0, "b")`` -> ``a[0].b``; pydantic's ``[key]`` markers are dropped."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def where(source: str, line: int, loc: Loc = ()) -> str:
    """The ``FILE:LINE: key.path`` prefix of an error."""
    path = format_path(loc)
    return f"{source}:{line}: {path}" if path else f"{source}:{line}"


def _syntax_error(exc: yaml.YAMLError, source: str) -> InputError:
    """An InputError at the line of a YAML parser or constructor error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or str(exc)
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and cmark.line + 1 != line:
        context += f" started at line {cmark.line + 1}"
    what = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return InputError(f"{source}:{line}", what)


def _mapping_entries(node: MappingNode) -> Iterator[tuple[Node, Node]]:
    """The (key, value) node pairs of a mapping, skipping ``<<`` merge keys."""
    for key, value in node.value:
        if not (isinstance(key, ScalarNode) and key.tag == "tag:yaml.org,2002:merge"):
            yield key, value


def _check_duplicates(node: Node, source: str, loc: Loc = (), seen=None) -> None:
    """Refuse a mapping that has the same key twice (PyYAML keeps the last)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in _mapping_entries(node):
            ident = (key.tag, key.value) if isinstance(key, ScalarNode) else None
            line = key.start_mark.line + 1
            if ident in first:
                raise InputError(where(source, line, loc + (key.value,)),
                                 f"duplicate key {key.value!r} (first at line {first[ident]})")
            if ident is not None:
                first[ident] = line
            sub = key.value if isinstance(key, ScalarNode) else "?"
            _check_duplicates(value, source, loc + (sub,), seen)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, source, loc + (i,), seen)


def load_located(text: str, source: str) -> tuple[Any, Node | None]:
    """Parse one YAML document; return (data, node tree). Errors: InputError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_duplicates(node, source)
        return loader.construct_document(node), node
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


def _child(node: Node, part: Any) -> tuple[Node, Node] | None:
    """(key node, value node) under ``node`` for one key or index, or None."""
    if isinstance(node, MappingNode) and not isinstance(part, int):
        for key, value in _mapping_entries(node):
            if isinstance(key, ScalarNode) and key.value == str(part):
                return key, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item
    return None


def locate(root: Node | None, loc: Loc) -> int:
    """The 1-based line of ``loc`` in the tree: of the deepest key found on it."""
    if root is None:
        return 1
    line, node = root.start_mark.line + 1, root
    for part in loc:
        if part == "[key]":
            break
        found = _child(node, part)
        if found is None:
            break
        key, node = found
        line = key.start_mark.line + 1
    return line
