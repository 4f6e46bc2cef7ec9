"""Saves and trainings killed with SIGKILL at random moments, many times (the driver is tests/faults.py).

After every kill the saved folder loads exactly (the fit before or the fit being written, never a mix)
or, before the first save ever finished, is absent; leftovers of the killed writer are gone after the next
save; a killed training loses at most ``checkpoint_every`` steps and its resume ends exactly where the
uninterrupted run does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("faults.py")


def _drive(mode: str, kills: int, seed: int, folder: Path) -> dict:
    out = subprocess.run([sys.executable, str(DRIVER), mode, str(kills), str(seed), str(folder)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_killed_saves_leave_a_loadable_fit_and_no_litter(tmp_path):
    result = _drive("saves", 150, 0, tmp_path)
    assert set(result["outcomes"]) <= {"0", "1", "absent"}, result      # never refused, mixed or lost
    assert result["outcomes"].get("absent", 0) <= 1, result              # only if the first save never ended
    assert result["kills_leaving_temporaries"] > 0, result               # the kills did land mid-save
    assert result["temporaries_after_next_save"] == 0 and result["final"] == "1", result


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_killed_trainings_lose_at_most_checkpoint_every_steps_and_resume_exactly(tmp_path):
    result = _drive("trainings", 4, 0, tmp_path)
    for record in result["records"]:
        assert record["resume_ok"] and record["exact"], record
        assert 0 <= record["lost_steps"] <= result["checkpoint_every"], record
        assert record["temporaries"] == 0, record
