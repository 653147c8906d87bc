"""Figures, files and HTML reports of unmix.unmix, unmix.pca and unmix.select_rank."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from html.parser import HTMLParser

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure
from numpy.testing import assert_array_equal

import unmix
from unmix import report
from unmix.datasets import tof_sims_like
from unmix.image import SpectralImage

UNMIXING_FILES = {
    "W.npy", "H.npy", "channels.npy", "intensity.npy", "unmixing.h5", "spectra.png",
    "abundances.png", "intensity.png", "residual.png", "convergence.png", "report.html",
    "unmixing.hspy", "composite.png",
}
FIGURES = ("spectra.png", "abundances.png", "composite.png", "intensity.png", "residual.png",
           "convergence.png")


@pytest.fixture(scope="module")
def image():
    ref = tof_sims_like(spatial_shape=(16, 16), n_channels=64, n_components=3, seed=2)
    img = ref.image()
    return SpectralImage(img.data, channels=img.channels, channel_unit="m/z", name="tof <test>",
                         metadata={"source": "tof_sims_like", "seed": 2})


@pytest.fixture(scope="module")
def unmixing(image):
    return unmix.unmix(image, 3, n_init=2, random_state=0, max_iter=200, l1_H=0.1)


class _Page(HTMLParser):
    """Collects what a self-contained page must (images) and must not
    (external resources) have."""

    def __init__(self):
        super().__init__()
        self.images, self.external, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append((attrs.get("alt"), attrs.get("src", "")))
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)
        for name in ("href", "src"):
            value = attrs.get(name) or ""
            if value and not value.startswith("data:"):
                self.external.append(value)


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _embedded(page):
    out = {}
    for alt, src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        out[alt] = base64.b64decode(src[len(prefix):])
    return out


def test_save_writes_every_file(unmixing, tmp_path):
    folder = tmp_path / "new" / "result"  # created, parents too
    paths = unmixing.save(folder)
    assert {p.name for p in paths} == UNMIXING_FILES
    assert all(p.parent == folder and p.is_file() for p in paths)
    # Atomic writes leave no temporary files behind.
    assert {p.name for p in folder.iterdir()} == UNMIXING_FILES
    assert_array_equal(np.load(folder / "W.npy"), unmixing.abundances)
    assert_array_equal(np.load(folder / "H.npy"), unmixing.endmembers)
    assert_array_equal(np.load(folder / "channels.npy"), unmixing.channels)
    for name in FIGURES:
        assert (folder / name).read_bytes().startswith(b"\x89PNG")
    # Saving again replaces the files.
    assert {p.name for p in report.save(unmixing, folder)} == UNMIXING_FILES
    assert {p.name for p in folder.iterdir()} == UNMIXING_FILES


def test_html_is_self_contained_and_embeds_every_figure(unmixing, tmp_path):
    unmixing.save(tmp_path)
    page = _parse(tmp_path / "report.html")
    assert page.external == []
    figures = _embedded(page)
    assert set(figures) == set(FIGURES)
    for name in FIGURES:
        assert figures[name] == (tmp_path / name).read_bytes()
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "tof &lt;test&gt;" in text  # escaped
    for needle in ("max_iter", "l1_H", "stop reason", "iterations", unmix.__version__,
                   unmixing.result.stop_reason):
        assert needle in text
    assert "Timings" in text and "total" in text
    assert "table" in page.tags


def test_h5_holds_the_datasets_and_the_parameters(unmixing, tmp_path):
    unmixing.save(tmp_path)
    with h5py.File(tmp_path / "unmixing.h5", "r") as f:
        for name in ("endmembers", "abundances", "residual", "channels", "objective",
                     "rel_error"):
            assert name in f
        assert_array_equal(f["endmembers"][()], unmixing.endmembers)
        assert_array_equal(f["abundances"][()], unmixing.abundances)
        assert_array_equal(f["residual"][()], unmixing.residual)
        assert_array_equal(f["objective"][()], unmixing.result.objective)
        assert_array_equal(f["rel_error"][()], unmixing.result.rel_error)
        assert_array_equal(f["restart_seeds"][()], [r.seed for r in unmixing.restarts])
        attrs = dict(f.attrs)
    encoded = set(json.loads(attrs["json_encoded_attributes"]))
    for name, value in unmixing.params.items():
        assert name in attrs, name
        stored = json.loads(attrs[name]) if name in encoded else attrs[name]
        if value is None or isinstance(value, (bool, int, float, str)):
            assert stored == value, name
    assert attrs["max_iter"] == 200
    assert attrs["l1_H"] == 0.1
    assert attrs["solver"] == "bpp"
    assert "callback" in encoded and json.loads(attrs["callback"]) is None
    assert attrs["stop_reason"] == unmixing.result.stop_reason
    assert attrs["unmix_version"] == unmix.__version__
    assert json.loads(attrs["image_metadata"]) == {"source": "tof_sims_like", "seed": 2}
    assert "total" in json.loads(attrs["timings"])


def test_parameters_h5py_cannot_store_are_json(image, tmp_path):
    calls = []
    H0 = np.full((3, 64), 0.5)
    W0 = np.full((256, 3), 0.5)
    u = unmix.unmix(image, 3, random_state=0, max_iter=3, W=W0, H=H0, callback=calls.append)
    u.save(tmp_path)
    with h5py.File(tmp_path / "unmixing.h5", "r") as f:
        attrs = dict(f.attrs)
    encoded = set(json.loads(attrs["json_encoded_attributes"]))
    assert {"W", "H", "callback"} <= encoded
    assert "shape (3, 64)" in json.loads(attrs["H"])
    assert "append" in json.loads(attrs["callback"])


def test_plot_composes_every_panel(unmixing):
    fig = unmixing.plot()
    assert isinstance(fig, Figure)
    assert len(fig.subfigs) == 2
    # spectra, convergence, 3 maps, composite, residual; the colour bars of
    # the maps and the residual are insets of their axes
    axes = fig.get_axes()
    assert len(axes) >= 7
    assert sum(len(ax.child_axes) for ax in axes) >= 4
    fig.savefig(__import__("io").BytesIO(), format="png")
    assert len(report.plot(unmixing, max_maps=2).get_axes()) >= 6


@pytest.mark.parametrize("shape", [(64,), (3, 8, 8), (2, 2, 4, 4)])
def test_line_scans_and_volumes_plot(shape):
    ref = tof_sims_like(spatial_shape=(8, 8), n_channels=32, n_components=2, seed=0)
    data = np.concatenate([ref.X] * (int(np.prod(shape)) // 64)).reshape(*shape, 32)
    u = unmix.unmix(data, 2, random_state=0)
    fig = u.plot()
    fig.savefig(__import__("io").BytesIO(), format="png")
    title = report.abundances_figure(u).get_suptitle()
    assert ("middle slice" in title) == (len(shape) >= 3)
    if len(shape) == 3:
        assert "axis 0 at 1 of 3" in title
    p = unmix.pca(data, 3)
    p.plot().savefig(__import__("io").BytesIO(), format="png")


def test_exact_fit_convergence_plot_has_no_log_warning():
    rng = np.random.default_rng(0)
    X = rng.random((30, 2)) @ rng.random((2, 10))
    u = unmix.unmix(X.reshape(5, 6, 10), 2, random_state=0, tol=0.0, max_iter=3000)
    report.convergence_figure(u).savefig(__import__("io").BytesIO(), format="png")


def test_pca_save_and_plot(image, tmp_path):
    p = unmix.pca(image, 5)
    paths = p.save(tmp_path)
    names = {q.name for q in paths}
    assert names == {"pca_components.npy", "pca_scores.npy", "pca_mean.npy", "channels.npy",
                     "pca.h5", "pca_components.png", "pca_scores.png", "pca_scree.png",
                     "pca_report.html"}
    page = _parse(tmp_path / "pca_report.html")
    assert page.external == []
    figures = _embedded(page)
    assert set(figures) == {"pca_components.png", "pca_scores.png", "pca_scree.png"}
    for name, png in figures.items():
        assert png == (tmp_path / name).read_bytes()
    with h5py.File(tmp_path / "pca.h5", "r") as f:
        assert_array_equal(f["explained_variance"][()], p.explained_variance)
        assert f.attrs["n_components"] == 5
    assert isinstance(p.plot(), Figure)


def test_rank_selection_save_and_plot(image, tmp_path):
    s = unmix.select_rank(image, [2, 3, 4], n_init=2, random_state=0, max_iter=200)
    fig = s.plot()
    assert isinstance(fig, Figure)
    assert len(fig.get_axes()) >= 6
    paths = s.save(tmp_path)
    assert {q.name for q in paths} == {"rank_selection.h5", "rank_selection.png",
                                       "rank_report.html"}
    page = _parse(tmp_path / "rank_report.html")
    assert page.external == []
    assert _embedded(page)["rank_selection.png"] == (tmp_path / "rank_selection.png").read_bytes()
    text = (tmp_path / "rank_report.html").read_text(encoding="utf-8")
    assert "recommended k" in text
    with h5py.File(tmp_path / "rank_selection.h5", "r") as f:
        assert_array_equal(f["ks"][()], [2, 3, 4])
        assert_array_equal(f["rel_error"][()], s.rel_error)
        assert_array_equal(f["spectrum"][()], s.spectrum)
        assert_array_equal(f["noise_floor"][()], s.noise_floor)
        assert f["endmembers_k3"].shape == (3, 64)
        assert f.attrs["recommended"] == s.recommended
        assert f.attrs["signal_rank"] == s.signal_rank
        assert f.attrs["noise"] == "poisson" and f.attrs["noise_reason"] == s.noise.reason
        assert f.attrs["max_iter"] == 200
        assert json.loads(f.attrs["ks"]) == [2, 3, 4]
    assert "components above the noise" in text and s.noise.reason in text


def test_rank_figure_title_fits_the_figure(image):
    """The reason is a long line: the title wraps it inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    s = unmix.select_rank(image, [2, 3, 4], n_init=2, random_state=0, max_iter=50)
    assert len(s.reason) > 200
    fig = s.plot()
    FigureCanvasAgg(fig).draw()
    box = fig._suptitle.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert len(fig._suptitle.get_text().splitlines()) >= 3


def test_save_errors(unmixing, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="folder"):
        unmixing.save(target)
    with pytest.raises(TypeError, match="folder"):
        unmixing.save(3)
    with pytest.raises(ValueError, match="max_maps"):
        unmixing.plot(max_maps=0)
    with pytest.raises(TypeError, match="fig"):
        report.spectra_figure(unmixing, fig="no")


def test_failed_write_keeps_the_old_file(unmixing, tmp_path, monkeypatch):
    unmixing.save(tmp_path)
    before = (tmp_path / "report.html").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_html", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        unmixing.save(tmp_path)
    assert (tmp_path / "report.html").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_import_is_light_and_plots_need_no_pyplot():
    code = (
        "import sys, numpy as np, unmix\n"
        "assert 'matplotlib' not in sys.modules and 'h5py' not in sys.modules\n"
        "X = np.random.default_rng(0).random((40, 12))\n"
        "unmix.unmix(X.reshape(5, 8, 12), 2, random_state=0).plot()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
