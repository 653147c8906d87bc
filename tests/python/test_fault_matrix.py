"""tools/fault_matrix.py works end to end on its fastest front.

The matrix itself takes minutes and is not part of the test suite (see
docs/reliability.rst, "Fault injection"); this runs one trial of it, which
may pass or fail depending on where the signal lands, and checks that the
tool records it, draws it and exits non-zero exactly when it failed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_matrix.py"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals and /proc")


def _tool():
    spec = importlib.util.spec_from_file_location("fault_matrix", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_trial_of_the_python_front(tmp_path):
    out, figure = tmp_path / "matrix.json", tmp_path / "matrix.png"
    res = subprocess.run(
        [sys.executable, str(TOOL), "--fronts", "python", "--signals", "SIGKILL", "--trials", "1",
         "--max-iter", "300", "--out", str(out), "--figure", str(figure)],
        capture_output=True, text=True, timeout=300)
    data = json.loads(out.read_text())
    assert not data["broken"], data["broken"]  # the uninterrupted runs failed
    [trial] = data["trials"]
    assert trial["front"] == "python" and trial["signal"] == "SIGKILL"
    assert 0 <= trial["kill_fraction"] <= 1.1
    tool = _tool()
    assert trial["outcome"] in (tool.COMPLETED, tool.KILLED, tool.FAILED)
    assert bool(trial["failures"]) == (trial["outcome"] == tool.FAILED)
    assert res.returncode == (1 if trial["failures"] else 0), res.stdout + res.stderr
    assert "Python API" in res.stdout
    assert figure.read_bytes().startswith(b"\x89PNG")
    # The stored result draws again without running anything.
    again = subprocess.run([sys.executable, str(TOOL), "--plot", str(out), "--figure",
                            str(tmp_path / "again.png")], capture_output=True, text=True, timeout=120)
    assert again.returncode == res.returncode and (tmp_path / "again.png").exists()
