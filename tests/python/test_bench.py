"""Smoke tests of bench/bench_solvers.py and bench/bench_perf.py: they run
and print valid JSON lines whose ratios are finite positive numbers.

No time is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

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


# --- bench/bench_perf.py -------------------------------------------------------

PERF = ROOT / "bench" / "bench_perf.py"
PYPLANC_PYTHON = ROOT / "bench" / ".venv-pyplanc" / "bin" / "python"


def run_perf(args: list[str], cwd: Path) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, str(PERF), "--quick", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()], proc.stderr


def positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_perf_quick_records_and_ratios(tmp_path: Path) -> None:
    cases, dtypes = ("tof_k4", "sparse_k20"), ("float64", "float32")
    methods = ("unmix:bpp", "unmix:hals", "sklearn:cd", "pyplanc:hals")
    lines, stderr = run_perf(["--cases", *cases, "--dtypes", *dtypes, "--methods", *methods,
                              "--trace-dtypes", *dtypes, "--no-pyplanc", "--out", str(tmp_path)],
                             tmp_path)
    records = [json.loads(line) for line in lines]  # every stdout line is JSON
    expected = []
    for case in cases:
        for dtype in dtypes:
            expected += [(case, dtype, "method", m) for m in methods]
            expected.append((case, dtype, "targets", None))
    assert [(r["case"], r["dtype"], r["record"], r.get("method")) for r in records] == expected

    for r in records:
        assert r["mode"] == "quick" and {"cpu_model", "cpu_count", "blas"} <= set(r["machine"])
        if r["record"] == "targets":
            assert r["bound"] in ("memory", "compute", "products")
            assert r["per_iter"]["verdict"] in ("PASS", "MISS")
            assert positive(r["per_iter"]["ratio"])
            assert r["vs_sklearn_cd"]["verdict"] in ("PASS", "MISS", "?", "n/a")
            assert r["vs_pyplanc"]["verdict"] == "n/a"  # pyplanc was not run
            assert r["memory"]["verdict"] in ("PASS", "MISS")
            assert ("float32_speedup" in r) == (r["dtype"] == "float32")
            continue
        if r["library"] == "pyplanc":
            assert r["status"] == "skipped" and r["reason"] == "--no-pyplanc"
            continue
        assert r["status"] == "ok", r.get("reason")
        for key in ("sec_per_iter", "floor_sec", "floor_read_sec", "floor_flops_sec",
                    "floor_products_sec", "ratio_to_floor", "ratio_to_products_floor",
                    "best_rel_error", "target_rel_error"):
            assert positive(r[key]), (key, r[key])
        terms = [r["floor_read_sec"], r["floor_flops_sec"]]
        if r["sparse"]:  # sparse products are part of the floor
            terms.append(r["floor_products_sec"])
        assert r["floor_sec"] == max(terms)
        assert math.isclose(r["ratio_to_floor"], r["sec_per_iter"] / r["floor_sec"])
        assert r["trace"][0][0] == 0 and all(positive(p[1]) for p in r["trace"])
        assert r["best_rel_error"] < r["target_rel_error"] <= r["start_rel_error"]
        if r.get("reached_target"):
            assert r["to_target"]["rel_error"] <= r["target_rel_error"]
            assert positive(r["sec_to_target"]) and r["iters_to_target"] >= 1
            assert positive(r["time_to_target_vs_unmix_best"])
        orders = ("C", "F") if r["library"] == "unmix" and r["dtype"] == "float64" else ("C",)
        assert set(r["memory"]) == set(orders)
        for order in orders:
            assert positive(r["memory"][order]["peak_over_X"])
        for ratio in {**r.get("speedup_vs", {}), **r.get("speedup_vs_at_least", {})}.values():
            assert positive(ratio)
    # The case's best error is reached by some method, so someone reaches the target.
    for case in cases:
        for dtype in dtypes:
            assert any(r.get("reached_target") for r in records
                       if (r["case"], r["dtype"], r["record"]) == (case, dtype, "method"))

    assert "| case | dtype | method |" in stderr  # the Markdown tables
    saved = list(tmp_path.glob("*.jsonl"))
    assert len(saved) == 1
    assert saved[0].read_text().splitlines() == lines


@pytest.mark.slow
@pytest.mark.skipif(not PYPLANC_PYTHON.exists(),
                    reason="pyplanc's environment is not set up (bench/bench_perf.py does it)")
def test_perf_quick_pyplanc(tmp_path: Path) -> None:
    lines, _ = run_perf(["--cases", "tof_k4", "--dtypes", "float64", "--methods", "unmix:hals",
                         "pyplanc:hals", "--orders", "C", "--no-save"], tmp_path)
    records = {r.get("method"): r for r in map(json.loads, lines)}
    planc = records["pyplanc:hals"]
    assert planc["status"] == "ok", planc.get("reason")
    assert positive(planc["ratio_to_floor"])
    assert planc["machine"]["pyplanc"]
    assert not list(tmp_path.iterdir())  # --no-save wrote nothing


def test_perf_defaults_quick_records_and_ratios(tmp_path: Path) -> None:
    table = tmp_path / "table.md"
    lines, stderr = run_perf(["--defaults", "--cases", "tof_k4", "--dtypes", "float64",
                              "--out", str(tmp_path), "--markdown", str(table)], tmp_path)
    (r,) = [json.loads(line) for line in lines]  # one JSON line per (case, dtype)
    assert (r["record"], r["case"], r["dtype"], r["mode"]) == ("defaults", "tof_k4", "float64",
                                                               "quick")
    assert r["status"] == "ok", r.get("reason")
    u, s = r["unmix"], r["sklearn"]
    for fit in (u, s):
        assert positive(fit["sec"]) and positive(fit["rel_error"]) and fit["n_iter"] >= 1
        assert fit["hit_max_iter"] == (fit["n_iter"] >= fit["max_iter"])
    assert u["stop_reason"] in ("tol", "max_iter") and s["stop_reason"] in ("tol", "max_iter")
    # The worker's error and unmix's own agree, and the traced fit is the same fit.
    assert math.isclose(u["rel_error"], u["own_rel_error"], rel_tol=1e-6)
    assert u["traced_n_iter"] == u["n_iter"] and len(u["trace"]) == u["n_iter"]
    assert math.isclose(u["traced_rel_error"], u["rel_error"], rel_tol=1e-9)
    assert positive(r["speedup"]) and math.isclose(r["speedup"], s["sec"] / u["sec"])
    assert r["error_le_sklearn"] == (u["rel_error"] <= s["rel_error"])
    if r["reached_sklearn_error"]:
        assert positive(r["sec_to_sklearn_error"]) and positive(r["speedup_to_sklearn_error"])
        assert r["sec_to_sklearn_error"] <= u["traced_sec"]
    for key in ("target_final", "target_reach"):
        assert r[key]["verdict"] in ("PASS", "MISS") and positive(r[key]["target"])

    saved = json.loads((tmp_path / "perf_defaults.quick.json").read_text())
    assert saved["records"] == [r] and {"cpu_model", "blas"} <= set(saved["machine"])
    assert "| tof_k4 | float64 |" in stderr and "| tof_k4 | float64 |" in table.read_text()


# --- bench/bench_pca.py --------------------------------------------------------

PCA_BENCH = ROOT / "bench" / "bench_pca.py"


def test_bench_pca_quick_prints_ratios_and_agreement(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(PCA_BENCH), "--quick", "--k", "3", "5",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [r["k"] for r in records] == [3, 5]
    for r in records:
        assert r["matrix"] == "synthetic_2000x300" and r["unmix_method"] == "randomized"
        for key in ("unmix_sec", "sklearn_randomized_sec", "sklearn_auto_sec",
                    "ratio_randomized_to_unmix", "ratio_auto_to_unmix"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
        assert math.isclose(r["ratio_randomized_to_unmix"],
                            r["sklearn_randomized_sec"] / r["unmix_sec"])
        # Rank 6: the 3 or 5 leading variances are signal, exact to rounding.
        assert r["ev_relerr_unmix"] < 1e-9
