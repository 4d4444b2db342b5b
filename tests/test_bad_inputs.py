"""docs/bad_inputs.md is what the command says today for each of its bad inputs, and none ends in a traceback."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_bad_inputs_table_is_current_and_has_no_traceback():
    done = subprocess.run(
        [sys.executable, "docs/bad_inputs.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in (REPO / "docs" / "bad_inputs.md").read_text().splitlines() if line.startswith("| ")]
    assert len(rows) - 1 >= 40  # the header row is not a case
    assert not any("TRACEBACK" in row or "| 1 |" in row for row in rows)
