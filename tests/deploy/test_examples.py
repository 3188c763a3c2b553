"""The example experiment files are valid specs the agent's tasks accept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.tasks import supported_tasks
from common.models import ExperimentSpec, TaskType
from common.params import check_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_is_an_example_for_each_task_type() -> None:
    types = {yaml.safe_load(p.read_text())["task"]["type"] for p in EXAMPLES}
    assert types == {t.value for t in TaskType}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_a_spec_its_task_accepts(path: Path) -> None:
    spec = ExperimentSpec.model_validate(yaml.safe_load(path.read_text()))
    check_spec(spec)  # what the server checks when the experiment is created
    task = supported_tasks()[spec.task.type]
    task.params(spec)  # raises TaskError naming the bad param
    assert task.framework_note(spec) is None  # the example asks for a framework the task runs
