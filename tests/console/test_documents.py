"""A pasted experiment: parsed from YAML or JSON, each field's line known, hazards refused."""

from __future__ import annotations

import pytest

from api.console.documents import DocumentError, parse_document


def test_yaml_gives_each_field_its_line() -> None:
    spec, lines = parse_document("id: a\nname: b\ntask:\n  params:\n    sizes: [1, 2]\n")
    assert spec == {"id": "a", "name": "b", "task": {"params": {"sizes": [1, 2]}}}
    assert lines["task"] == 3 and lines["task.params.sizes"] == 5
    assert lines["task.params.sizes.1"] == 5


def test_json_and_the_api_body_are_taken_too() -> None:
    text = '{"experiment_spec": {"id": "x",\n "task": {"a": 1}}}'
    spec, lines = parse_document(text)
    assert spec == {"id": "x", "task": {"a": 1}}
    assert lines == {"id": 1, "task": 2, "task.a": 2}


def test_a_date_becomes_the_text_the_api_reads() -> None:
    spec, _ = parse_document("id: a\ncreated_at: 2026-01-01\n")
    assert spec["created_at"] == "2026-01-01"


@pytest.mark.parametrize(
    ("text", "words", "line"),
    [
        ("a: [1\nb: 2", "not valid YAML or JSON: line 2", 2),
        ("", "empty", None),
        ("- 1\n- 2", "must be a mapping", 1),
        ("a: 1\n---\nb: 2\n", "not valid YAML or JSON", 2),
        # Nested aliases expand exponentially: refused before anything is built.
        ("a: &x [1, 2]\nb: [*x, *x]\n", "anchors and aliases", 1),
    ],
)
def test_unusable_documents_say_why_and_where(text: str, words: str, line: int | None) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(text)
    assert words in str(caught.value)
    assert caught.value.line == line
