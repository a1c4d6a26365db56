"""Strict YAML for configs and cassettes: one clear error instead of a silent surprise.

:func:`load_yaml` parses with PyYAML's safe loader and refuses what a person
would not mean: a key given twice in one mapping (the error names both
lines), and documents nested deeper than :data:`MAX_DEPTH` (instead of a
``RecursionError``). Every problem is a :class:`ConfigError` whose message
starts with ``FILE:LINE:``.
"""

from __future__ import annotations

from typing import Any

import yaml

from swarm_core.errors import ConfigError

MAX_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first}, again on line {line})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _depth(node: yaml.Node | None) -> int:
    """Nesting depth of a composed node, iteratively (deep documents must not recurse)."""
    if node is None:
        return 0
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(n, yaml.MappingNode):
            stack.extend((child, d + 1) for pair in n.value for child in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend((child, d + 1) for child in n.value)
    return deepest


def load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse ``text``; return ``(data, root node)`` (the node gives line numbers)."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
        if _depth(node) > MAX_DEPTH:
            raise ConfigError(f"{source}: the document is nested deeper than {MAX_DEPTH} levels",
                              file=source)
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}", file=source) from None
    except RecursionError:  # the parser itself recursed too deep: far past MAX_DEPTH
        raise ConfigError(f"{source}: the document is nested deeper than {MAX_DEPTH} levels",
                          file=source) from None
    return data, node
