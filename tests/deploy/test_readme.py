"""The README tells the truth about the settings and the commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_the_settings_table_is_the_generated_one() -> None:
    table = subprocess.run(
        [sys.executable, "scripts/settings_table.py"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout.strip()  # fmt: skip
    assert table in README, "run `python scripts/settings_table.py` and paste it in the README"


def test_the_two_commands_are_what_make_and_ci_run() -> None:
    assert "make run" in README and "make test" in README
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run: .*\n\t\$\(BIN\)/ruckus dev", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()
