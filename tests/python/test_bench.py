"""Smoke test of bench/bench_solvers.py: it runs and prints valid JSON lines.

No time is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_solvers.py"

FIELDS = {
    "case", "m", "n", "k", "dtype", "solver", "n_iter", "sec_per_iter",
    "floor_products_sec", "floor_read_sec", "floor_sec", "ratio_to_floor", "machine",
}


def test_bench_quick_prints_json_lines(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--k", "2", "3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every stdout line is JSON
    assert [(r["k"], r["solver"]) for r in records] == [
        (k, s) for k in (2, 3) for s in ("bpp", "hals", "mu")
    ]
    for r in records:
        assert FIELDS <= set(r), FIELDS - set(r)
        assert r["case"] == "quick" and r["dtype"] == "float64"
        assert r["n_iter"] >= 1
        for key in ("sec_per_iter", "floor_products_sec", "floor_read_sec", "floor_sec",
                    "ratio_to_floor"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
        assert r["floor_sec"] == max(r["floor_products_sec"], 2 * r["floor_read_sec"])
        assert math.isclose(r["ratio_to_floor"], r["sec_per_iter"] / r["floor_sec"])
        machine = r["machine"]
        assert {"platform", "cpu_count", "blas"} <= set(machine)

    saved = list(tmp_path.glob("*.jsonl"))
    assert len(saved) == 1
    assert saved[0].read_text().splitlines() == lines


def test_bench_float32_single_solver(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--k", "2", "--solvers", "hals",
         "--dtype", "float32", "--iters", "2", "--repeats", "1", "--no-save"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert record["dtype"] == "float32" and record["solver"] == "hals"
    assert record["n_iter"] == 2
    assert not list(tmp_path.iterdir())  # --no-save wrote nothing
