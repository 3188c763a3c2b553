"""An experiment pasted as YAML or JSON: parsed, with the line of every field it holds."""

from __future__ import annotations

import json
from typing import Any

import yaml


class DocumentError(ValueError):
    """The text is not a usable document; `line` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def parse_document(text: str) -> tuple[Any, dict[str, int]]:
    """The document and the 1-based line of each field, by dotted path (`task.params.runs`).

    A document of the form `{experiment_spec: ...}` (the API's body) is unwrapped.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DocumentError(
            f"not valid YAML or JSON: {where}{err.problem or err}", mark.line + 1 if mark else None
        ) from err
    except yaml.YAMLError as err:  # more than one document, and the like
        raise DocumentError(f"not valid YAML or JSON: {err}") from err
    if node is None:
        raise DocumentError("the document is empty: paste or upload an experiment")
    lines: dict[str, int] = {}
    _walk(node, "", lines, set())
    # Through JSON: a YAML date or timestamp becomes the string the API reads anyway.
    document = json.loads(json.dumps(yaml.safe_load(text), default=str))
    if isinstance(document, dict) and isinstance(document.get("experiment_spec"), dict):
        prefix = "experiment_spec."
        document = document["experiment_spec"]
        lines = {k.removeprefix(prefix): v for k, v in lines.items() if k.startswith(prefix)}
    if not isinstance(document, dict):
        raise DocumentError("the experiment must be a mapping of fields (id, name, task, ...)", 1)
    return document, lines


def _walk(node: yaml.Node, path: str, lines: dict[str, int], seen: set[int], line: int = 0) -> None:
    # An alias is the same node met twice: refused, as nested aliases expand exponentially.
    if id(node) in seen:
        raise DocumentError("anchors and aliases (&, *) are not accepted", node.start_mark.line + 1)
    seen.add(id(node))
    if path:
        lines[path] = line or node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            where = f"{path}.{name}" if path else name
            _walk(value, where, lines, seen, key.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}.{i}" if path else str(i), lines, seen)
