"""What a microscopist sees: element markers, spectra in counts, maps on
their own scales with calibrated axes and a scale bar, the colour
composite — on a synthetic EDS-like image and on the real files when
present ($UNMIX_DATA/real)."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import unmix
from unmix import figures, preprocess, report
from unmix.figures import calibration, lines
from unmix.figures.composite import COMPOSITE_COLOURS, composite_image
from unmix.image import SpectralImage

REAL = Path(os.environ.get("UNMIX_DATA")
            or Path(__file__).resolve().parents[2].parent / "shared" / "data") / "real"

needs_exspy = pytest.mark.skipif(lines.database_missing() is not None,
                                 reason="eXSpy (the line database) is not installed")

# Line energies (keV) the synthetic spectra peak at: O Kα, Fe Lα, Si Kα, Fe Kα.
_PEAKS = {"O": 0.525, "FeL": 0.705, "Si": 1.740, "Fe": 6.404}


def _eds_image(shape=(12, 16), **metadata) -> SpectralImage:
    """Two phases (an iron oxide, a silicate) of Poisson counts over 0-10
    keV with a strobe peak at 0 keV ten times the tallest line, 0.5 nm
    pixels."""
    rng = np.random.default_rng(0)
    e = np.linspace(-0.1, 10.0, 400)

    def peaks(*names):
        return sum(np.exp(-0.5 * ((e - _PEAKS[n]) / 0.06) ** 2) for n in names)

    strobe = 200.0 * np.exp(-0.5 * (e / 0.03) ** 2)
    H = np.stack([20 * peaks("Fe", "FeL", "O"), 20 * peaks("Si", "O")]) + 0.2 + strobe
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    a = (xx / (shape[1] - 1)).reshape(-1)
    W = np.stack([a, 1 - a], axis=1)
    X = rng.poisson(W @ H).astype(np.float64)
    meta = {"elements": ["Fe", "O", "Si"], "signal_type": "EDS_SEM", "beam_energy": 15.0,
            "spatial_axes": [{"name": "y", "units": "nm", "offset": 0.0, "scale": 0.5},
                             {"name": "x", "units": "nm", "offset": 0.0, "scale": 0.5}]}
    meta.update(metadata)
    return SpectralImage(X.reshape(*shape, e.size), channels=e, channel_unit="keV",
                         name="eds", metadata=meta)


@pytest.fixture(scope="module")
def eds():
    return unmix.unmix(_eds_image(), 2, random_state=0, max_iter=100)


def _marker_texts(fig) -> list:
    return [t for ax in fig.get_axes() for t in ax.texts if t.get_gid() == "element-marker"]


def _labels(fig) -> str:
    return " | ".join(t.get_text() for t in _marker_texts(fig))


# ---------------------------------------------------------------------------
# Element markers
# ---------------------------------------------------------------------------


@needs_exspy
def test_markers_name_the_metadata_elements(eds):
    text = _labels(figures.spectra_figure(eds))
    for label in ("Fe Kα", "Fe Lα", "O Kα", "Si Kα"):
        assert label in text, text
    # Lines outside the plotted range are not marked (Fe Kβ is not a main line).
    assert "Kβ" not in text


@needs_exspy
def test_markers_stop_at_the_beam_energy_and_follow_the_user():
    u = unmix.unmix(_eds_image(beam_energy=5.0), 2, random_state=0, max_iter=20)
    text = _labels(figures.spectra_figure(u))
    assert "Fe Lα" in text and "Fe Kα" not in text  # 6.4 keV needs more than 5 kV
    text = _labels(figures.spectra_figure(u, elements="Cu", lines=["Fe_Kb"]))
    assert "Cu Lα" in text and "Fe Kβ" not in text  # Fe Kβ 7.06 keV: above the beam
    assert "Si" not in text  # the user's elements replace the file's


@needs_exspy
def test_marker_labels_do_not_overlap():
    found = lines.markers({"elements": ["Mg", "Al", "Si", "Lu", "Hf", "Nd", "Sm", "U"]},
                          "keV", np.linspace(0.8, 20, 100))
    assert len(found) >= 10
    fig = figures.spectra_figure(unmix.unmix(_eds_image(
        elements=["Mg", "Al", "Si", "Lu", "Hf", "Nd", "Sm", "U", "Fe", "O"]), 2,
        random_state=0, max_iter=20))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in _marker_texts(fig)]
    assert len(boxes) >= 6
    ax = fig.get_axes()[0].get_window_extent(renderer)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    for box in boxes:  # inside the axes, not cut at its edges
        assert ax.x0 - 1 <= box.x0 and box.x1 <= ax.x1 + 1


def test_without_the_database_no_markers_and_a_hint(eds, tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "_database", lambda: None)
    assert _labels(figures.spectra_figure(eds)) == ""
    report.save(eds, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "element markers" in page and "pip install exspy" in page


def test_bad_elements_are_named(eds):
    with pytest.raises(TypeError, match=r"elements must be a list of str.*got 3"):
        figures.spectra_figure(eds, elements=3)


def test_cli_elements_option():
    from unmix import cli

    args = cli.build_parser().parse_args(["run", "x.npy", "-k", "2", "-o", "out",
                                          "--elements", "Fe, Pt"])
    assert args.elements == ["Fe", "Pt"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "x.npy", "-k", "2", "-o", "o", "--elements", "fe"])


# ---------------------------------------------------------------------------
# Spectra in the data's units
# ---------------------------------------------------------------------------


def test_spectra_are_in_counts_and_the_strobe_peak_does_not_set_the_range(eds):
    fig = figures.spectra_figure(eds)
    ax = fig.get_axes()[0]
    assert ax.get_ylabel().startswith("counts per pixel")
    drawn = np.array([line.get_ydata() for line in ax.get_lines()[:2]])
    np.testing.assert_allclose(drawn, eds.endmembers)  # the endmembers, in counts
    e = eds.channels
    top = ax.get_ylim()[1]
    assert drawn[:, np.abs(e) < 0.05].max() > 3 * top  # the strobe peak is cut ...
    assert drawn[:, e > 0.15].max() < top  # ... every line fits


def test_spectra_of_poisson_scaled_data_are_drawn_in_counts():
    image = _eds_image()
    scaled, scaling = preprocess.poisson_scale(image)
    u = unmix.unmix(scaled, 2, random_state=0, max_iter=30)
    H, label = figures.data_spectra(u)
    assert "Poisson-scaled" in label  # honest when the scaling is not given
    H, label = figures.data_spectra(u, scaling)
    assert label.startswith("counts per pixel")
    # Each spectrum is the scaled one times the channel scale, up to its own
    # constant (a pure pixel at the mean intensity).
    unscaled = u.endmembers * scaling.channel_scale
    for j in range(2):
        ok = unscaled[j] > 0
        np.testing.assert_allclose(H[j][ok] / unscaled[j][ok], H[j][ok][0] / unscaled[j][ok][0],
                                   rtol=1e-10)
    with pytest.raises(ValueError, match="scaling must be the PoissonScaling"):
        figures.data_spectra(u, preprocess.poisson_scale(_eds_image((4, 4)))[1])

    # The peak ratios drawn are those of the counts: Fe Kα and O Kα are
    # equally tall (20 counts) in the iron oxide; the scaled data say 1.5.
    plain = unmix.unmix(scaled, 2, random_state=0, max_iter=300, sum_to_one=False,
                        normalize="max")
    H, _ = figures.data_spectra(plain, scaling)
    fe, o = (int(np.argmin(np.abs(plain.channels - _PEAKS[n]))) for n in ("Fe", "O"))
    iron = int(np.argmax(H[:, fe]))
    assert H[iron, fe] / H[iron, o] == pytest.approx(1.0, abs=0.1)
    assert abs(plain.endmembers[iron, fe] / plain.endmembers[iron, o] - 1.0) > 0.3


# ---------------------------------------------------------------------------
# Maps: own colour scales, calibrated axes, scale bar
# ---------------------------------------------------------------------------


def _images(fig):
    return [im for ax in fig.get_axes() for im in ax.get_images()]


def test_every_map_has_its_own_colour_scale_and_bar(eds):
    weak = eds.abundances.copy()
    weak[..., 1] *= 0.01  # a weak component stays visible on its own scale
    u = dataclasses.replace(eds, abundances=weak)
    fig = figures.abundances_figure(u)
    images = _images(fig)
    assert len(images) == 2
    for j, im in enumerate(images):
        lo, hi = im.get_clim()
        assert lo == min(0.0, weak[..., j].min()) and hi == pytest.approx(weak[..., j].max())
        assert im.colorbar is not None and im.colorbar.ax in im.axes.child_axes


def test_maps_are_calibrated_with_a_scale_bar(eds):
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    fig = figures.abundances_figure(eds)
    for ax in [im.axes for im in _images(fig)]:
        bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
        assert len(bars) == 1
        rect = bars[0].size_bar.get_children()[0]
        length = rect.get_width()  # in the axes' units: nm
        assert bars[0].txt_label.get_text() == f"{length:g} nm"
        assert length / 0.5 == pytest.approx(2)  # 16 px of 0.5 nm: 8 nm, a 1 nm bar is 2 px
        x0, x1 = ax.get_xlim()
        assert (x0, x1) == pytest.approx((-0.25, 7.75))
        assert "nm" in ax.get_xlabel() or not ax.get_xlabel()
    FigureCanvasAgg(fig).draw()


def test_uncalibrated_maps_are_in_pixels_without_a_bar(eds):
    image = _eds_image(spatial_axes=[{"name": "y"}, {"name": "x"}])
    u = unmix.unmix(image, 2, random_state=0, max_iter=20)
    fig = figures.abundances_figure(u)
    ax = _images(fig)[0].axes
    assert not ax.artists and "pixel" in ax.get_xlabel() + ax.get_ylabel()


@pytest.mark.parametrize("span, units, length, label", [
    (8.0, "nm", 1.0, "1 nm"), (0.79, "µm", 0.1, "100 nm"), (117.0, "µm", 20.0, "20 µm"),
    (0.59, "µm", 0.1, "100 nm"), (3000.0, "nm", 500.0, "500 nm"), (12.0, "Å", 2.0, "200 pm"),
    (7.0, "mm", 1.0, "1 mm"), (40.0, "px units", 5.0, "5 px units"),
])
def test_scale_bar_lengths_are_round(span, units, length, label):
    assert calibration.nice_length(span) == pytest.approx(length)
    assert calibration.scale_bar_label(length, units) == label


# ---------------------------------------------------------------------------
# The colour composite
# ---------------------------------------------------------------------------


def test_composite_puts_each_component_in_its_colour():
    maps = np.zeros((4, 5, 3))
    for j in range(3):
        maps[j, :, j] = 1.0
    rgb, colours = composite_image(maps)
    assert rgb.shape == (4, 5, 3) and rgb.min() >= 0 and rgb.max() <= 1
    for j in range(3):
        np.testing.assert_allclose(rgb[j, 0], colours[j])
    np.testing.assert_allclose(rgb[3, 0], 0.0)  # no component: black
    with pytest.raises(ValueError, match="m from 1 to 3"):
        composite_image(np.zeros((4, 5, 4)))


def test_composite_figure_names_the_colours(eds, tmp_path):
    fig = figures.composite_figure(eds)
    ax = _images(fig)[0].axes
    legend = ax.get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert [n.split()[0] for n in names] == ["#1", "#2"]
    faces = [tuple(p.get_facecolor()[:3]) for p in legend.get_patches()]
    assert faces == [tuple(c) for c in COMPOSITE_COLOURS[2]]
    with pytest.raises(ValueError, match="components must be 1 to 3 distinct indices"):
        figures.composite_figure(eds, components=[0, 2])
    paths = report.save(eds, tmp_path)
    assert "composite.png" in {p.name for p in paths}


def test_figures_and_report_never_import_the_workflow_at_run_time():
    """The dependency is one way: workflow and rank import the report, which
    names their types only for annotations (under TYPE_CHECKING)."""
    root = Path(unmix.__file__).parent
    for path, package in [*((p, ["unmix", "figures"]) for p in (root / "figures").glob("*.py")),
                          (root / "report.py", ["unmix"])]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                assert module not in ("unmix.workflow", "unmix.rank"), (path, module)


# ---------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------


def _real(name: str):
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set UNMIX_DATA)")
    from unmix.io import read

    return read(path)


@needs_exspy
@pytest.mark.parametrize("name, expected, bar", [
    ("espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy", ("Mg Kα", "Si Kα", "Ca Kα", "Fe Kα"),
     "100 nm"),
    ("bruker_50x50_SEM-EDS_AlAgCu.bcf", ("Al Kα", "Ag Lα", "Cu Kα", "O Kα", "C Kα"), "100 nm"),
])
def test_real_eds_files(name, expected, bar):
    image = _real(name)
    if not image.metadata.get("elements"):
        pytest.skip(f"the reader gives no elements for {name}")
    # Gaussian weights: the figures are tested here, not the fit (which
    # warns about the files' sparse channels under Poisson weights).
    u = unmix.unmix(image, 3, random_state=0, max_iter=30, noise="gaussian")
    fig = figures.spectra_figure(u)
    text = _labels(fig)
    for label in expected:
        assert label in text, text
    fig = figures.abundances_figure(u)
    axis = calibration.spatial_axes(image.metadata, 2)[1]
    for ax in [im.axes for im in _images(fig)]:
        size_bar = ax.artists[0]
        assert size_bar.txt_label.get_text() == bar
        length = size_bar.size_bar.get_children()[0].get_width()
        assert calibration.scale_bar_label(length, axis.units) == bar
        assert 0.1 < length / axis.scale / image.spatial_shape[1] <= 0.2


@needs_exspy
def test_eels_spectra_mark_the_major_edges():
    found = lines.markers({"elements": ["Fe", "O"], "signal_type": "EELS"}, "eV",
                          np.linspace(400.0, 900.0, 50))
    labels = {m.label for m in found}
    assert {"O K", "Fe L3", "Fe L2"} <= labels
    assert all(400.0 <= m.position <= 900.0 for m in found)


@needs_exspy
def test_the_line_database_loads_without_pyplot():
    """Marking lines reads eXSpy's table, not its package (which imports
    all of HyperSpy and pyplot)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from unmix.figures import lines\n"
            "assert lines.markers({'elements': ['Fe']}, 'keV', [0.0, 10.0])\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
