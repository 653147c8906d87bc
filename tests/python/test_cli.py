"""The ``unmix`` command line: every subcommand end to end, its errors and its help.

The end-to-end tests run ``python -m unmix ...`` as a subprocess in a
temporary folder, as a user would; the demo runs once per session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unmix import cli
from unmix.datasets import tof_sims_like

TIMEOUT = 120  # seconds; a command that takes longer has hung
SUBCOMMANDS = ("run", "rank", "pca", "demo")


def unmix_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unmix", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def assert_one_line_error(proc: subprocess.CompletedProcess, command: str, *words: str) -> None:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"unmix {command}: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

SHAPE = (12, 10)
N_CHANNELS = 40
K = 3


@pytest.fixture(scope="module")
def small():
    """A small ToF-SIMS-like image with 3 components: (12, 10, 40) counts."""
    return tof_sims_like(spatial_shape=SHAPE, n_channels=N_CHANNELS, n_components=K,
                         counts_per_pixel=500.0, seed=3)


@pytest.fixture(scope="module")
def files(small, tmp_path_factory):
    """The small image as .npy (cube) and as an HDF5 file with two datasets."""
    import h5py

    folder = tmp_path_factory.mktemp("input")
    cube = small.X.reshape(*SHAPE, N_CHANNELS)
    np.save(folder / "cube.npy", cube)
    with h5py.File(folder / "scan.h5", "w") as f:
        f["/data/cube"] = cube
        f["/data/cube"].attrs["channels"] = small.channels
        f["/data/cube"].attrs["channel_unit"] = "m/z"
        f["/data/dark"] = np.zeros((4, 4, 4))
    (folder / "broken.npy").write_text("this is not a numpy file\n")
    return folder


# ---------------------------------------------------------------------------
# unmix demo (once per session)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("demo")
    proc = unmix_cli("demo", "--quiet", cwd=cwd)
    return cwd / "unmix-demo", proc


def test_demo_writes_the_reports_and_a_summary(demo):
    out, proc = demo
    assert_ok(proc)
    assert proc.stderr == ""  # --quiet: no progress bars, and no warnings
    for name in ("summary.json", "pca/pca_report.html", "nmf/report.html", "nmf/W.npy",
                 "nmf/H.npy", "nmf/unmixing.h5"):
        assert (out / name).is_file(), name
    assert list((out / "nmf").glob("*.png")) and list((out / "pca").glob("*.png"))
    summary = json.loads((out / "summary.json").read_text())
    for name in summary["files"]:
        assert (out / name).is_file(), name
    assert str(out.resolve()) in proc.stdout
    assert len(proc.stdout.splitlines()) <= 12  # a one-screen summary


def test_demo_scores_the_nmf_against_the_ground_truth(demo):
    out, proc = demo
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["spatial_shape"] == [128, 128]
    assert summary["data"]["n_channels"] == 512
    scores = summary["scores"]
    assert len(scores["spectral_angle_deg"]) == 4
    # The 4 spectra are found: each within a few degrees of its true spectrum.
    assert max(scores["spectral_angle_deg"]) < 5.0
    assert scores["mean_spectral_angle_deg"] == pytest.approx(
        np.mean(scores["spectral_angle_deg"]))
    assert 0 <= scores["abundance_rmse"] < 0.05
    assert f"{scores['mean_spectral_angle_deg']:.2f} deg" in proc.stdout
    assert 0 < scores["rel_error"] < 1
    # On this linear mixture with pure pixels plain NMF from the same start
    # is already right; the default (fractions, minimum volume) must not cost
    # accuracy there (it gains where the data are not linear: Samson,
    # test_real_data.py).
    plain = summary["unconstrained"]
    assert scores["mean_spectral_angle_deg"] <= plain["mean_spectral_angle_deg"] + 0.1
    assert scores["abundance_rmse"] <= plain["abundance_rmse"] + 0.005
    assert summary["nmf"]["noise"] == "poisson" and summary["nmf"]["fractions"] == "material"
    # PCA: the variance ratios are sorted and sum to at most 1.
    ratio = summary["pca"]["explained_variance_ratio"]
    assert ratio == sorted(ratio, reverse=True) and sum(ratio) <= 1 + 1e-9
    # The NMF factors are those of the report.
    W, H = np.load(out / "nmf" / "W.npy"), np.load(out / "nmf" / "H.npy")
    assert W.min() >= 0 and H.min() >= 0
    assert H.shape == (4, 512) and W.size == 128 * 128 * 4


# ---------------------------------------------------------------------------
# unmix run
# ---------------------------------------------------------------------------


def test_run_npy(files, tmp_path):
    proc = unmix_cli("run", files / "cube.npy", "-k", K, "--seed", 0, "--n-init", 2,
                     "-o", "out", cwd=tmp_path)
    assert_ok(proc)
    out = tmp_path / "out"
    for name in ("W.npy", "H.npy", "unmixing.h5", "report.html"):
        assert (out / name).is_file(), name
    assert list(out.glob("*.png"))
    H = np.load(out / "H.npy")
    W = np.load(out / "W.npy")
    assert H.shape == (K, N_CHANNELS) and W.size == SHAPE[0] * SHAPE[1] * K
    assert str(out.resolve()) in proc.stdout
    for word in ("12 x 10 pixels x 40 channels", "k = 3", "iterations", "relative error",
                 "W.npy", "report.html"):
        assert word in proc.stdout, word
    # Progress bars go to stderr, the summary to stdout.
    assert "start 2/2" in proc.stderr and "start 2/2" not in proc.stdout


def test_run_hdf5_with_preprocessing_and_options(files, tmp_path):
    proc = unmix_cli("run", files / "scan.h5", "--dataset", "/data/cube", "-k", 2,
                     "--crop", "0:8,0:6", "--bin", "2", "--normalize", "total",
                     "--plain", "--solver", "hals", "--l1", "0.001", "--max-iter", "50",
                     "--option", "l2_H=0.5", "--option", "tol=1e-4", "--seed", "1",
                     "--quiet", "-o", tmp_path / "out", cwd=tmp_path)
    assert_ok(proc)
    assert proc.stderr == ""
    assert "4 x 3 pixels x 40 channels" in proc.stdout
    assert "crop 0:8,0:6, bin 2, normalize total" in proc.stdout
    for word in ("solver='hals'", "l1_W=0.001", "max_iter=50", "l2_H=0.5", "tol=0.0001"):
        assert word in proc.stdout, word
    assert np.load(tmp_path / "out" / "H.npy").shape == (2, N_CHANNELS)


def test_run_forwards_option_literals_to_nmf(files, tmp_path):
    """--option values are Python literals (a bare word is a string) and reach unmix.nmf."""
    proc = unmix_cli("run", files / "cube.npy", "-k", 2, "--option", "max_iter=3",
                     "--option", "init=random", "--option", "tol=0.0", "--seed", 0, "-q",
                     "-o", tmp_path / "out", cwd=tmp_path)
    assert_ok(proc)
    assert "3 iterations (max_iter)" in proc.stdout
    assert "init='random'" in proc.stdout


def test_run_poisson_scale_writes_the_factors_of_the_counts(small, files, tmp_path, capsys):
    code, out, err = run_main(capsys, "run", files / "cube.npy", "-k", K, "--seed", 0,
                              "--poisson-scale", "--quiet", "-o", tmp_path / "out")
    assert code == 0, err
    assert "preprocessing: Poisson scaling" in out and "W_unscaled.npy" in out
    W = np.load(tmp_path / "out" / "W_unscaled.npy").reshape(-1, K)
    H = np.load(tmp_path / "out" / "H_unscaled.npy")
    assert W.min() >= 0 and H.min() >= 0
    # The unscaled factors model the counts as read, to about the noise.
    X = small.X
    assert np.linalg.norm(X - W @ H) / np.linalg.norm(X) < 0.5
    scaled = np.load(tmp_path / "out" / "W.npy").reshape(-1, K) @ np.load(tmp_path / "out" /
                                                                         "H.npy")
    assert np.linalg.norm(X - scaled) / np.linalg.norm(X) > 0.5  # a different scale


def test_run_constrained_flags_fit_in_two_steps(files, tmp_path, capsys):
    """--sum-to-one with --smooth-W runs the two-step fit of unmix.unmix on
    the pixel grid; the numbers of the "auto" weights are printed and saved."""
    import h5py

    code, out, err = run_main(capsys, "run", files / "cube.npy", "-k", K, "--init", "spa",
                              "--sum-to-one", "--smooth-W", "auto", "--minvol-H", "auto",
                              "--seed", 0, "--quiet", "-o", tmp_path / "out")
    assert code == 0, err
    for word in ("sum_to_one=True, smooth_W='auto', minvol_H='auto'", "two-step fit",
                 "weights set from the data:", "noise_variance=", "minvol_H="):
        assert word in out, word
    with h5py.File(tmp_path / "out" / "unmixing.h5") as f:
        assert f.attrs["two_step"] and f.attrs["tol"] == 1e-7
        assert f.attrs["graph_W"].startswith("unmix.graphs.edge_aware((12, 10), ..., connectivity=8)")
        weights = json.loads(f.attrs["weights"])
        assert f.attrs["model"] == "strict"
        np.testing.assert_allclose(f["abundances"][()].sum(axis=-1), 1.0, atol=1e-9)
    assert {"noise_variance", "minvol_H", "smooth_W"} <= set(weights)
    assert weights["smooth_W"] == pytest.approx(30 * weights["noise_variance"])
    # W.npy holds the fractions: every pixel sums to one.
    np.testing.assert_allclose(np.load(tmp_path / "out" / "W.npy").sum(axis=-1), 1.0, atol=1e-9)


# ---------------------------------------------------------------------------
# unmix rank and unmix pca
# ---------------------------------------------------------------------------


def test_rank(files, tmp_path):
    proc = unmix_cli("rank", files / "cube.npy", "--k", "1:4", "--n-init", 1, "--seed", 0,
                     "--max-iter", 100, "-q", "-o", tmp_path / "rank", cwd=tmp_path)
    assert_ok(proc)
    line = next(ln for ln in proc.stdout.splitlines() if "recommended k = " in ln)
    k = int(line.split("recommended k = ")[1].split(":")[0])
    assert k == K  # the image has K components
    assert f"hold {K} components above the noise" in line
    assert "noise: poisson, the data are whole numbers (counts)" in proc.stdout
    assert "spectrum / noise floor: s2² " in proc.stdout and "threshold " in proc.stdout
    assert any((tmp_path / "rank").iterdir())
    assert str((tmp_path / "rank").resolve()) in proc.stdout


def test_rank_poisson_scale_is_the_poisson_test(files, tmp_path, capsys):
    """--poisson-scale asks for the test on Poisson-scaled counts, which the
    counts themselves get by default: the same spectrum and recommendation;
    --noise gaussian takes the scaled data as they are."""
    outputs = {}
    for name, flags in (("auto", []), ("scaled", ["--poisson-scale"]),
                        ("gaussian", ["--poisson-scale", "--noise", "gaussian"])):
        code, out, err = run_main(capsys, "rank", files / "cube.npy", "--k", "2:4", "--n-init", 1,
                                  "--seed", 0, "--max-iter", 30, "--plain", *flags, "-q",
                                  "-o", tmp_path / name)
        assert code == 0, err
        outputs[name] = out
    spectrum = [ln for ln in outputs["auto"].splitlines() if "spectrum / noise floor" in ln]
    assert spectrum and spectrum[0] in outputs["scaled"]
    for name in ("auto", "scaled"):
        assert f"recommended k = {K}: the Poisson-scaled data" in outputs[name]
    assert "Poisson scaling (in the rank test, as --noise poisson)" in outputs["scaled"]
    assert "noise: gaussian, asked for" in outputs["gaussian"]
    assert "the Marchenko-Pastur noise floor" in outputs["gaussian"]


def test_pca(files, tmp_path):
    proc = unmix_cli("pca", files / "cube.npy", "-k", 5, "-q", "-o", tmp_path / "pca",
                     cwd=tmp_path)
    assert_ok(proc)
    assert "explained variance" in proc.stdout
    assert "1: " in proc.stdout and "5: " in proc.stdout
    assert any((tmp_path / "pca").iterdir())
    assert str((tmp_path / "pca").resolve()) in proc.stdout


# ---------------------------------------------------------------------------
# Bad input: one line, exit code 2, never a traceback
# ---------------------------------------------------------------------------


def test_missing_file_as_a_process(tmp_path):
    proc = unmix_cli("run", tmp_path / "nothing.npy", "-k", 2, "-o", "out", cwd=tmp_path)
    assert_one_line_error(proc, "run", "nothing.npy")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def run_main(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


BAD = [
    (["run", "{dir}/nothing.h5", "-k", "2"], "nothing.h5"),
    (["run", "{dir}/cube.npy", "-k", "0"], "-k"),
    (["run", "{dir}/cube.npy", "-k", "two"], "-k"),
    (["run", "{dir}/cube.npy", "-k", "2", "--frobnicate"], "--frobnicate"),
    (["run", "{dir}/cube.npy", "-k", "2", "--solver", "newton"], "newton"),
    (["run", "{dir}/cube.npy", "-k", "2", "--option", "frobnicate=1"], "frobnicate"),
    (["run", "{dir}/cube.npy", "-k", "2", "--option", "l1_W"], "NAME=VALUE"),
    (["run", "{dir}/cube.npy", "-k", "2", "--option", "l1_W=-1"], "l1_W"),
    (["run", "{dir}/cube.npy", "-k", "2", "--option", "random_state=1"], "--seed"),
    (["run", "{dir}/cube.npy", "-k", "2", "--l1", "0.1", "--option", "l1_W=0.2"], "twice"),
    (["run", "{dir}/cube.npy", "-k", "2", "--l1", "-0.1"], "l1_W"),
    (["run", "{dir}/cube.npy", "-k", "2", "--max-iter", "0"], "max_iter"),
    (["run", "{dir}/cube.npy", "-k", "2", "--smooth-W", "lots"], "--smooth-W"),
    (["run", "{dir}/cube.npy", "-k", "2", "--plain", "--smooth-W", "auto"], "sum_to_one=True"),
    (["run", "{dir}/cube.npy", "-k", "2", "--minvol-H", "-1"], "minvol_H"),
    (["run", "{dir}/cube.npy", "-k", "2", "--init", "nndsvd", "--n-init", "0"], "--n-init"),
    (["run", "{dir}/broken.npy", "-k", "2"], "broken.npy"),
    (["run", "{dir}/scan.h5", "-k", "2", "--dataset", "/nope"], "/nope"),
    (["run", "{dir}/scan.h5", "-k", "2"], "dataset"),
    (["run", "{dir}/cube.npy", "-k", "2", "--crop", "0-4"], "--crop"),
    (["run", "{dir}/cube.npy", "-k", "2", "--bin", "0"], "--bin"),
    (["rank", "{dir}/cube.npy", "--k", "5:2"], "--k"),
    (["rank", "{dir}/cube.npy", "--k", "0:3"], "--k"),
    (["rank", "{dir}/cube.npy", "--k", "2:100"], "100"),
    (["pca", "{dir}/nothing.npy"], "nothing.npy"),
    (["pca", "{dir}/cube.npy", "-k", "0"], "-k"),
    (["demo", "-k", "0"], "-k"),
]


@pytest.mark.parametrize("argv, word", BAD, ids=[" ".join(a[2:] if a[0] == "run" else a)
                                                  for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_code_2(argv, word, files, tmp_path, capsys):
    argv = [a.format(dir=files) for a in argv]
    if argv[0] != "demo":
        argv += ["-o", str(tmp_path / "out")]
    code, out, err = run_main(capsys, *argv, "--quiet")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"unmix {argv[0]}: error: "), lines[0]
    assert word in lines[0], lines[0]


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run_main(capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("unmix: error: ")


def test_output_that_is_a_file_is_refused(files, tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    code, _, err = run_main(capsys, "pca", files / "cube.npy", "-o", tmp_path / "taken")
    assert code == 2 and "taken" in err and "not a folder" in err


# ---------------------------------------------------------------------------
# Help and version
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand(command, capsys):
    code, out, err = run_main(capsys, command, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: unmix {command}")
    if command in ("run", "rank"):
        # The named flags say which unmix.nmf keyword they set.
        for flag, keyword in (("--l1", "l1_W"), ("--l1-H", "l1_H"), ("--l2-W", "l2_W"),
                              ("--max-iter", "max_iter"), ("--seed", "random_state"),
                              ("--sum-to-one", "sum_to_one"), ("--smooth-W", "smooth_W"),
                              ("--minvol-H", "minvol_H")):
            assert flag in out and f"[{keyword}" in out, flag
        assert "--option NAME=VALUE" in out


def test_top_level_help_lists_the_subcommands(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    for command in SUBCOMMANDS:
        assert command in out


def test_version(tmp_path):
    import unmix

    proc = unmix_cli("--version", cwd=tmp_path)
    assert_ok(proc)
    assert proc.stdout.strip() == f"unmix {unmix.__version__}"


def test_k_ranges():
    assert cli._k_list("2:5") == [2, 3, 4, 5]
    assert cli._k_list("2:10:4") == [2, 6, 10]
    assert cli._k_list("3,5,8") == [3, 5, 8]


def test_option_values_are_literals():
    assert cli._option("l1_W=0.01") == ("l1_W", 0.01)
    assert cli._option("sum-to-one=True") == ("sum_to_one", True)
    assert cli._option("bounds=(0, 1)") == ("bounds", (0, 1))
    assert cli._option("solver=hals") == ("solver", "hals")
    assert cli._option("init='random'") == ("init", "random")
    assert cli._option("time_limit=None") == ("time_limit", None)
