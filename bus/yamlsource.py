"""YAML with line numbers: every value keeps the line it was written on.

A scenario error is only useful if it says where to look, so the file is
parsed with ``yaml.compose`` (which keeps each node's ``start_mark``) and
turned into plain Python values plus a map from field path
(``goals[2].timeout_s``) to line number. Duplicate keys, which PyYAML would
silently let the last one win, are reported as errors here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bus.errors import HilError


@dataclass
class Source:
    """A parsed YAML document: the values and where each one came from."""

    file: str
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[int, str, str]] = field(default_factory=list)

    def line(self, path: str) -> int:
        """The line of ``path``, or of its nearest parent that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("", 1)


class YamlError(HilError, ValueError):
    """The text is not YAML at all (syntax error), with file and line."""


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def parse(text: str, file: str) -> Source:
    """Parse one YAML document, remembering the line of every value."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlError(f"{file}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{file}: not valid YAML: {exc}") from None
    source = Source(file, None)
    if root is None:
        source.data = None
        return source
    loader = yaml.SafeLoader("")
    source.lines[""] = root.start_mark.line + 1
    source.data = _convert(root, "", source, loader)
    return source


def _convert(node: yaml.Node, path: str, source: Source, loader: yaml.SafeLoader) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                source.problems.append((key_node.start_mark.line + 1, path or "(top)", "keys must be plain names"))
                continue
            key = str(key)
            sub = child(path, key)
            if key in out:
                source.problems.append((key_node.start_mark.line + 1, sub, "duplicate key"))
                continue
            source.lines[sub] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, sub, source, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, child(path, i), source, loader) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        source.problems.append((node.start_mark.line + 1, path, f"cannot read value: {exc.problem}"))
        return None
