"""Figures of :func:`unmix.unmix`, :func:`unmix.pca` and
:func:`unmix.select_rank`, one module per family: :mod:`.spectra`
(endmember spectra with element markers, :mod:`.lines`), :mod:`.maps`
(abundance, intensity and residual maps), :mod:`.composite` (colour
composite), :mod:`.convergence`, :mod:`.pca`, :mod:`.rank` and
:mod:`.overview` (everything in one); :mod:`.calibration` draws maps in the
file's spatial units with a scale bar.

Figures are :class:`matplotlib.figure.Figure` objects made directly, never
through pyplot: nothing touches matplotlib's global state or needs a GUI
backend, and the figures are garbage-collected like any object. Display one
in a notebook by leaving it as the cell's value. Every function takes
``fig``, a Figure or SubFigure to draw into, to compose them.

The figures read the results they draw and never import the modules that
make them (:mod:`unmix.workflow`, :mod:`unmix.rank`), so those can import
the figures without a cycle.
"""

from .composite import composite_figure
from .convergence import convergence_figure
from .maps import abundances_figure, intensity_figure, residual_figure
from .overview import plot
from .pca import pca_components_figure, pca_scores_figure, plot_pca, scree_figure
from .rank import plot_rank
from .spectra import data_spectra, spectra_figure

__all__ = [
    "abundances_figure", "composite_figure", "convergence_figure", "data_spectra",
    "intensity_figure", "pca_components_figure", "pca_scores_figure", "plot", "plot_pca",
    "plot_rank", "residual_figure", "scree_figure", "spectra_figure",
]
