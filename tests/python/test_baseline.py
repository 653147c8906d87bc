"""unmix.preprocess.baseline: per-pixel baselines with pybaselines, on
peaks over a known curved background and on the real Raman map."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from unmix import SpectralImage
from unmix import preprocess as pp

pytest.importorskip("pybaselines")

SIGMA = 3.0
RAMAN = (Path(os.environ.get("UNMIX_DATA") or Path(__file__).resolve().parents[2].parent
              / "shared" / "data") / "real" / "renishaw_streamline_Raman_45x49x394.wdf")


def _peaks_on_background(seed=0, n=60, dtype=np.float64):
    """Five Gaussian peaks (width 6 cm-1) on a tilted fluorescence-like
    background of 200-600 counts with a broad bump, white noise of SIGMA."""
    rng = np.random.default_rng(seed)
    x = np.linspace(200.0, 1800.0, 400)
    amp = rng.uniform(200, 600, n)
    tilt = rng.uniform(-0.2, 0.2, n)
    background = amp[:, None] * (1 + tilt[:, None] * (x - 1000) / 800
                                 + 0.3 * np.exp(-((x - 700) / 500) ** 2))
    centres = np.array([520.0, 800.0, 1001.0, 1350.0, 1600.0])
    heights = rng.uniform(50, 400, (n, centres.size))
    peaks = (heights[:, :, None] * np.exp(-0.5 * ((x - centres[:, None]) / 6.0) ** 2)).sum(1)
    X = background + peaks + SIGMA * rng.standard_normal((n, x.size))
    image = SpectralImage(X.reshape(6, n // 6, -1).astype(dtype), channels=x, channel_unit="1/cm")
    return image, background, peaks


def test_baseline_recovers_the_background_under_peaks():
    image, background, peaks = _peaks_on_background()
    out = pp.baseline(image)
    X, Y = image.X, out.X
    assert Y.min() == 0.0 and out.data.shape == image.data.shape
    # Where nothing was clipped, X - Y is the baseline fitted: within a
    # fifth of the noise of the true one (measured 0.66 counts rms for a
    # noise of 3; asls with its defaults is 27 off, under the data).
    kept = Y > 0
    error = (X - Y)[kept] - background[kept]
    assert np.sqrt(np.mean(error**2)) < 0.3 * SIGMA
    assert abs(np.mean(error)) < 0.1 * SIGMA
    # The peaks stay: their summed heights to 2 %.
    centre = np.argmin(np.abs(image.channels - 1001.0))
    assert np.allclose(Y[:, centre], peaks[:, centre], atol=4 * SIGMA)
    # Noise below the baseline is set to zero: about half of the values
    # without a peak, all within the noise.
    step = out.metadata["preprocessing"][-1]
    assert step["step"] == "baseline" and step["method"] == "arpls" and step["options"] == {}
    assert 0.35 < step["clipped_share"] < 0.55
    assert step["clipped"] == int(np.count_nonzero(Y == 0))
    assert step["beyond_noise"] < 0.005 * Y.size


def test_baseline_keeps_float32_and_takes_options():
    image, background, _ = _peaks_on_background(dtype=np.float32, n=12)
    out = pp.baseline(image, "asls", lam=1e4, p=0.05)
    assert out.data.dtype == np.float32
    assert out.metadata["preprocessing"][-1]["options"] == {"lam": 1e4, "p": 0.05}


def test_baseline_warns_when_it_lies_above_the_data():
    image, _, _ = _peaks_on_background(n=12)
    # A constant through the mean of the peaks lies far above the low end.
    with pytest.warns(UserWarning, match=r"more than 3 noise standard deviations below the "
                                         r"baseline .* a stiffer one"):
        out = pp.baseline(image, "poly", poly_order=0)
    assert out.metadata["preprocessing"][-1]["beyond_noise"] > 0.01 * out.data.size


def test_baseline_errors(monkeypatch):
    image, _, _ = _peaks_on_background(n=6)
    with pytest.raises(ValueError, match=r"method must be a 1-D baseline method of "
                                         r"pybaselines.Baseline, such as 'arpls'.*got 'nope'"):
        pp.baseline(image, "nope")
    with pytest.raises(TypeError, match=r"method must be the name of a pybaselines method"):
        pp.baseline(image, 3)
    with pytest.raises(TypeError, match=r"baseline\(method='arpls'\): .*wrong"):
        pp.baseline(image, wrong=1)
    bad = SpectralImage(np.where(np.arange(400) == 3, np.nan, 1.0) * np.ones((2, 3, 400)))
    with pytest.raises(ValueError, match=r"must be finite for baseline removal, got 6 NaN"):
        pp.baseline(bad)
    monkeypatch.setitem(sys.modules, "pybaselines", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "unmix\[baseline\]"'):
        pp.baseline(image)


@pytest.mark.skipif(not RAMAN.exists(), reason=f"{RAMAN} not found (set UNMIX_DATA)")
def test_raman_map_first_component_is_no_longer_the_offset():
    import unmix.io

    image = unmix.io.read(RAMAN)
    corrected = pp.baseline(image)
    sigma = float(np.median(pp._spectrum_noise(image.X)))  # ~8.7 counts

    def floor(E):
        return float(np.percentile(E[0], 10))  # the first component's 10th percentile

    raw = unmix.unmix(image, 3, random_state=0)
    clean = unmix.unmix(corrected, 3, random_state=0)
    # Measured: the raw map's first component is the fluorescence offset,
    # 707 counts under its peaks of 1016 (flat: 70 % of its maximum).
    assert floor(raw.endmembers) > 500 and floor(raw.endmembers) > 0.5 * raw.endmembers[0].max()
    # Without the baseline it sits at the noise (7 counts: the noise below
    # the baseline clipped at zero leaves 0.4-1 sigma), a hundredth of it.
    assert floor(clean.endmembers) < 0.02 * floor(raw.endmembers)
    assert floor(clean.endmembers) < 1.5 * sigma
    # The 1002 cm-1 band, on 6 % of the raw signal, is now a component of
    # its own with no floor.
    band = np.argmin(np.abs(image.channels - 1002.0))
    peaked = clean.endmembers[np.argmax(clean.endmembers[:, band])]
    assert abs(image.channels[np.argmax(peaked)] - 1002.0) < 5
    assert np.percentile(peaked, 10) < 0.01 * peaked.max()


def test_cli_run_baseline_is_in_the_summary_and_the_saved_metadata(tmp_path, capsys):
    import json

    import h5py

    from unmix import cli

    image, _, _ = _peaks_on_background(n=60)
    np.save(tmp_path / "raman.npy", image.data)
    out = tmp_path / "out"
    code = cli.main(["run", str(tmp_path / "raman.npy"), "-k", "2", "--baseline", "-q",
                     "--seed", "0", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "preprocessing: baseline arpls (pybaselines; the " in printed
    with h5py.File(out / "unmixing.h5") as f:
        steps = json.loads(f.attrs["image_metadata"])["preprocessing"]
    assert [s["step"] for s in steps] == ["baseline"] and steps[0]["method"] == "arpls"
    code = cli.main(["run", str(tmp_path / "raman.npy"), "-k", "2", "--baseline", "snip",
                     "-q", "-o", str(tmp_path / "out2")])
    assert code == 0 and "baseline snip" in capsys.readouterr().out
    code = cli.main(["run", str(tmp_path / "raman.npy"), "-k", "2", "--baseline", "nope",
                     "-q", "-o", str(tmp_path / "out3")])
    err = capsys.readouterr().err
    assert code == 2 and "method must be a 1-D baseline method" in err


def test_cli_baseline_before_the_input_file_says_where_to_put_it(tmp_path, capsys):
    from unmix import cli

    path = tmp_path / "raman.npy"
    np.save(path, _peaks_on_background()[0].data)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--baseline", str(path), "-k", "2", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"got {str(path)!r}: to leave the method out, put --baseline after the input" in err
    assert not (tmp_path / "out").exists()
