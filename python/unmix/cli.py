"""The ``unmix`` command line: unmix spectral images from files.

  unmix run IMAGE -k 4 -o OUT        NMF of an image; factors, maps and a report in OUT
  unmix rank IMAGE --k 2:10 -o OUT   compare numbers of components, recommend one
  unmix pca IMAGE -o OUT             principal components (the unconstrained baseline)
  unmix demo                         the built-in ToF-SIMS-like image, scored against its truth

Each command has its own --help. Progress bars go to stderr (--quiet hides
them), a short summary to stdout. Bad input ends with one line
"unmix CMD: error: ..." and exit code 2.

OUT is replaced as a whole once the new result is complete: an error,
Ctrl-C (exit code 130) or SIGTERM (143) leaves the previous one as it was.
It must be a new or empty folder, or one that unmix wrote.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from . import __version__
from . import _signals
from ._output import OutputError, check as _output, publish
from ._validation import INITS, SOLVERS

#: Components ``unmix pca`` keeps unless -k says otherwise: the explained
#: variance of real maps flattens long before (the rest is noise), and all
#: of them would cost a full eigendecomposition and a score map each.
PCA_DEFAULT_K = 20

#: Exit code for bad input (argparse's own).
EXIT_USAGE = 2
#: Exit code after Ctrl-C (128 + SIGINT); after SIGTERM it is 128 + 15.
EXIT_INTERRUPTED = 130

#: Exceptions that mean bad input (a file, an option, a value the library
#: refuses) or a missing optional package: reported in one line, exit code 2.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)
#: Exit code when the computation itself failed (RuntimeError from the core,
#: MemoryError) or its result could not be written: one line too, but not a
#: usage error.
EXIT_FAILED = 1

def _weight(text: str) -> Any:
    """A weight: a number (checked by unmix.nmf) or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None


#: Named flags of ``run``/``rank`` that map to keywords of :func:`unmix.nmf`:
#: (flags, keyword, type, help); type ``bool`` makes a switch that sets True.
_NMF_FLAGS: tuple[tuple[tuple[str, ...], str, Callable[[str], Any], str], ...] = (
    (("--solver",), "solver", str, "the update rule"),
    (("--init",), "init", str, "how the first start is made"),
    (("--l1", "--l1-W"), "l1_W", float, "l1 (sparsity) penalty on the abundances W"),
    (("--l1-H",), "l1_H", float, "l1 penalty on the spectra H"),
    (("--l2-W",), "l2_W", float, "l2 (ridge) penalty on the abundances W"),
    (("--l2-H",), "l2_H", float, "l2 penalty on the spectra H"),
    (("--max-iter",), "max_iter", int, "maximum number of iterations per fit"),
    (("--tol",), "tol", float, "relative decrease of the objective at which a fit stops"),
    (("--time-limit",), "time_limit", float, "seconds after which a fit stops"),
    (("--extrapolate",), "extrapolate", bool,
     "extrapolation with restarts: several times fewer iterations (solvers bpp and admm)"),
    (("--sum-to-one",), "sum_to_one", bool,
     "strict fractions: every pixel's total explained by its composition alone (constant "
     "intensity); the default fractions let every pixel have its own intensity"),
    (("--smooth-W",), "smooth_W", _weight,
     "spatial smoothness of the abundances on the pixel grid, fitted in a second step with "
     "the endmembers held (see unmix.unmix); 'auto': 30 x the noise variance"),
    (("--minvol-H",), "minvol_H", _weight,
     "minimum-volume weight of the spectra; default 'auto' with fractions: set from the "
     "residual the noise does not explain (unmix.fractions.minvol_weight)"),
)

#: Keywords of unmix.nmf that the command line sets itself.
_RESERVED = {"X", "n_components", "W", "H", "callback", "verbose", "random_state"}


class CommandError(Exception):
    """Bad input found by the command line itself (reported in one line)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.HelpFormatter):
    """Wraps paragraphs of descriptions and epilogs to the terminal, but keeps
    indented lines (commands, examples) as they are."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for block in text.strip("\n").split("\n\n"):
            lines = block.split("\n")
            if any(line.startswith(" ") for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(block.split()), width,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)


# ---------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _k_list(text: str) -> list[int]:
    """``2:10`` (inclusive), ``2:10:2`` or ``2,3,5``."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            if step < 1:
                raise ValueError
            ks = list(range(parts[0], parts[1] + 1, step))
        else:
            ks = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be FIRST:LAST[:STEP] (inclusive) or a list K1,K2,..., got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(
            f"must give numbers of components >= 1, got {text!r}")
    return ks


def _int_tuple(text: str) -> tuple[int, ...]:
    """``2`` or ``2,2`` or ``2x2``: binning factors."""
    try:
        factors = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be one integer factor or one per axis (e.g. 2 or 2,2,4), got {text!r}"
        ) from None
    if not factors or min(factors) < 1:
        raise argparse.ArgumentTypeError(f"binning factors must be >= 1, got {text!r}")
    return factors


def _crop(text: str) -> tuple[slice, ...]:
    """``Y0:Y1,X0:X1[,C0:C1]``: a slice per axis (empty ends allowed; an empty
    field is the whole axis, so ``,,68:`` crops the channels only)."""
    out = []
    for part in text.split(","):
        bounds = part.split(":") if part.strip() else ["", ""]
        if len(bounds) != 2:
            raise argparse.ArgumentTypeError(
                f"must be START:STOP per axis, separated by commas (e.g. 0:64,0:64), got {text!r}")
        try:
            start, stop = (int(b) if b.strip() else None for b in bounds)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be integer START:STOP per axis (e.g. 0:64,0:64), got {text!r}") from None
        out.append(slice(start, stop))
    return tuple(out)


def _selection(text: str) -> tuple[int, int]:
    """``AXIS=INDEX`` of --select."""
    axis, sep, index = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return int(axis), int(index)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be AXIS=INDEX, two integers (e.g. 2=1), got {text!r}") from None


def _baseline_method(text: str) -> str:
    """METHOD of --baseline, which may be left out: a file name there is the
    input file taken for the method, which argparse would report only as a
    missing INPUT."""
    if not text.isidentifier():
        raise argparse.ArgumentTypeError(
            f"takes the name of a pybaselines method (arpls, asls, snip, mor ...) or nothing, "
            f"got {text!r}: to leave the method out, put --baseline after the input file")
    return text


def _range(text: str) -> tuple[Optional[float], Optional[float]]:
    """``LO:HI`` of --channel-range: numbers, either end empty (open)."""
    bounds = text.split(":")
    try:
        if len(bounds) != 2:
            raise ValueError
        lo, hi = (float(b) if b.strip() else None for b in bounds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be LO:HI, two numbers in the channel axis' units (e.g. 0.2:20), either "
            f"end empty, got {text!r}") from None
    if lo is not None and hi is not None and not lo <= hi:
        raise argparse.ArgumentTypeError(f"must have LO <= HI, got {text!r}")
    return lo, hi


def _option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE a Python literal (a bare word is a string)."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        if not value.strip().replace("-", "_").replace(".", "_").isidentifier():
            raise argparse.ArgumentTypeError(
                f"the value of {name} must be a Python literal (number, string, True/False/None, "
                f"tuple or list), got {value!r}") from None
        parsed = value.strip()  # a bare word, e.g. solver=hals
    return name, parsed


# ---------------------------------------------------------------------------
# Shared option groups
# ---------------------------------------------------------------------------


def _nmf_defaults() -> dict[str, Any]:
    from ._nmf import nmf

    return {p.name: p.default for p in inspect.signature(nmf).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (the summary is still printed)")


def _add_input(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input and preprocessing")
    g.add_argument("input", metavar="INPUT",
                   help="the image file, read by unmix.io.read: .npy, .npz, HDF5 (.h5 "
                        ".hdf5 .nxs .hspy), TIFF, .mat or a vendor format")
    g.add_argument("--dataset", metavar="NAME",
                   help="which array of the file: the path inside an HDF5 file, the key "
                        "of an .npz, the variable of a .mat, the series index of a TIFF "
                        "(default: the only candidate)")
    g.add_argument("--channel-axis", type=int, default=None, metavar="AXIS",
                   help="the axis of the stored array holding the channels (default: "
                        "the one the format says, else the last)")
    g.add_argument("--select", type=_selection, action="append", default=[],
                   metavar="AXIS=INDEX",
                   help="take INDEX on AXIS of the stored array (axes numbered as in the "
                        "file, like --channel-axis), e.g. the channel of a 4-D grid (y, x, "
                        "channel, bias): --channel-axis -1 --select 2=1; repeatable")
    g.add_argument("--crop", type=_crop, metavar="Y0:Y1,X0:X1[,C0:C1]",
                   help="read only this region (from HDF5 and .npy, only it is read): "
                        "one START:STOP of indices per axis, spatial axes first, then "
                        "optionally the channels; empty ends allowed, an empty field is "
                        "the whole axis (,,68: crops the channels only)")
    g.add_argument("--channel-range", type=_range, metavar="LO:HI",
                   help="keep the channels from LO to HI (both included) in the units of "
                        "the file's channel axis (keV, V, cm-1 ...), e.g. 0.2:20; an empty "
                        "end is open (unmix.preprocess.crop's channels=(lo, hi))")
    g.add_argument("--bin", type=_int_tuple, metavar="F[,F...]",
                   help="sum blocks of pixels: one factor for every spatial axis, or one "
                        "per spatial axis, optionally followed by one for the channels")
    g.add_argument("--baseline", nargs="?", const="arpls", default=None, metavar="METHOD",
                   type=_baseline_method,
                   help="remove each pixel's baseline (fluorescence, offset) with a method "
                        "of pybaselines, after binning (unmix.preprocess.baseline; needs "
                        "unmix[baseline]): arpls (without METHOD), asls, snip, mor ...")
    g.add_argument("--normalize", choices=("total", "max", "l2"),
                   help="scale every pixel spectrum to unit total counts, maximum or "
                        "l2 norm (unmix.preprocess.normalize)")
    g.add_argument("--poisson-scale", action="store_true",
                   help="weight the data for Poisson counting noise before the fit "
                        "(unmix.preprocess.poisson_scale)")


def _add_nmf(p: argparse.ArgumentParser, n_init_default: Optional[int] = None) -> None:
    defaults = _nmf_defaults()
    g = p.add_argument_group(
        "NMF options",
        "Named flags map to keywords of unmix.nmf (shown in brackets); unset flags "
        "keep unmix.nmf's defaults. Any other keyword of unmix.nmf, including "
        "constraints added later, is given with --option NAME=VALUE.")
    for flags, keyword, type_, text in _NMF_FLAGS:
        default = defaults.get(keyword)
        shown = f"; default {default}" if default is not None else ""
        if type_ is bool:
            g.add_argument(*flags, dest=keyword, action="store_const", const=True, default=None,
                           help=f"{text} [{keyword}=True]")
            continue
        choices = {"solver": SOLVERS,
                   "init": tuple(i for i in INITS if i != "custom")}.get(keyword)
        metavar = "{" + ",".join(choices) + "}" if choices else keyword.upper()
        extra = {"choices": choices} if choices else {}
        g.add_argument(*flags, dest=keyword, type=type_, default=None, metavar=metavar,
                       help=f"{text} [{keyword}{shown}]", **extra)
    g.add_argument("--option", dest="options", action="append", type=_option, default=[],
                   metavar="NAME=VALUE",
                   help="any keyword of unmix.nmf, the value a Python literal (a bare word "
                        "is a string); repeatable, e.g. --option l1_H=0.1 "
                        "--option init=random")
    g.add_argument("--plain", dest="sum_to_one", action="store_const", const=False,
                   help="plain NMF instead of fractions: no sum-to-one and no "
                        "minimum-volume term, endmembers scaled to a maximum of 1 "
                        "[sum_to_one=False]")
    g.add_argument("--noise", choices=("auto", "poisson", "gaussian"), default="auto",
                   help="the noise model: 'auto' takes whole numbers (counts) and files "
                        "labelled as X-ray counts as Poisson, the rest as Gaussian "
                        "(default: %(default)s)")
    g.add_argument("--n-init", type=_positive_int, default=n_init_default, metavar="N",
                   help="N fits, the first from --init, the others from other starts; "
                        "the best is kept"
                        + (" (default: %(default)s)" if n_init_default else ""))
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the starts; the same seed gives the same result "
                        "[random_state]")


def _nmf_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords for unmix.nmf from the named flags and the --option's."""
    options: dict[str, Any] = {}
    for flags, keyword, _, _ in _NMF_FLAGS:
        value = getattr(args, keyword)
        if value is not None:
            options[keyword] = value
    from ._nmf import nmf

    params = inspect.signature(nmf).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name, value in args.options:
        if name in _RESERVED:
            raise CommandError(f"--option {name}=... is set by the command line itself "
                               f"(use -k, --seed, --quiet), got --option {name}")
        if not open_ended and name not in params:
            known = sorted(n for n in params if n not in _RESERVED)
            raise CommandError(f"--option {name}: unmix.nmf has no keyword {name!r}; it has "
                               + ", ".join(known))
        if name in options:
            raise CommandError(f"--option {name}: {name} is given twice")
        options[name] = value
    return options


# ---------------------------------------------------------------------------
# Steps shared by the commands
# ---------------------------------------------------------------------------


def _read(args: argparse.Namespace,
          nonneg: bool = True) -> tuple[Any, list[str], dict[str, Any]]:
    """The image of INPUT, cropped, binned, normalized and scaled as asked;
    the steps done (for the summary); and what undoes the rescaling steps.
    The data as read must be finite, and non-negative with ``nonneg``."""
    from . import io
    from ._validation import check_data
    from .image import described

    path = Path(args.input)
    kwargs: dict[str, Any] = {"channel_axis": args.channel_axis}
    if args.dataset is not None:
        dataset: Any = args.dataset
        if dataset.isdigit() and path.suffix.lower() not in (".h5", ".hdf5", ".nxs", ".hspy",
                                                              ".npz", ".mat"):
            dataset = int(dataset)  # a TIFF series or a vendor file's signal index
        kwargs["dataset"] = dataset
    if args.crop is not None:
        kwargs["crop"] = args.crop
    if args.select:
        kwargs["select"] = dict(args.select)
    with _Stage(f"reading {path.name}", args.quiet):
        image = io.read(path, **kwargs)
    steps = []
    if args.crop is not None:  # the channels kept in their units too, when cropped
        channels = len(args.crop) > len(image.spatial_shape)
        steps.append(f"crop {_format_crop(args.crop)}{_span(image) if channels else ''}")
    if args.channel_range is not None:
        image, step = _channel_range(image, args.channel_range)
        steps.append(step)
    # Named in the file's values: binning can hide a negative value, and
    # normalizing changes the minimum the message would quote.
    try:
        check_data(image.X, described(image), nonneg)
    except ValueError:
        unmeasured = _unmeasured(image, args)
        if unmeasured is None:
            raise
        raise CommandError(unmeasured) from None
    undo: dict[str, Any] = {}
    if args.bin is not None or args.normalize is not None or args.poisson_scale \
            or args.baseline is not None:
        from . import preprocess

        if args.bin is not None:
            n_spatial = len(image.spatial_shape)
            factors = args.bin
            if len(factors) == 1:
                image = preprocess.bin(image, factors[0])
            elif len(factors) == n_spatial:
                image = preprocess.bin(image, factors)
            elif len(factors) == n_spatial + 1:
                image = preprocess.bin(image, factors[:-1], channels=factors[-1])
            else:
                raise CommandError(
                    f"--bin takes 1 factor, {n_spatial} (one per spatial axis) or "
                    f"{n_spatial + 1} (the channels last) for an image with {n_spatial} "
                    f"spatial axes, got {','.join(map(str, factors))}")
            steps.append("bin " + "x".join(str(f) for f in factors))
        if args.baseline is not None:
            with _Stage(f"removing the baseline ({args.baseline})", args.quiet):
                image = preprocess.baseline(image, args.baseline)
            done = image.metadata["preprocessing"][-1]
            below, beyond = done["clipped_share"], done["beyond_noise"] / max(image.data.size, 1)
            steps.append(f"baseline {args.baseline} (pybaselines; the {100 * below:.1f} % of "
                         f"values below it set to zero, {100 * beyond:.2g} % beyond 3 noise "
                         "sigma)")
        if args.normalize is not None:
            image, undo["pixel_norm"] = preprocess.normalize(image, args.normalize)
            steps.append(f"normalize {args.normalize}")
        if args.poisson_scale:
            image, undo["poisson"] = preprocess.poisson_scale(image)
            steps.append("Poisson scaling")
    return image, steps, undo


def _save_undo(out: Path, result: Any, undo: dict[str, Any]) -> list[Path]:
    """Files that map the factors of the preprocessed data back to the data
    as read: the per-pixel norms of --normalize, the factors of the original
    counts after --poisson-scale."""
    from .report import _write_npy

    written = []
    if "poisson" in undo:
        W, H = undo["poisson"].unscale(result.abundances, result.endmembers)
        written += [_write_npy(out / "W_unscaled.npy", W), _write_npy(out / "H_unscaled.npy", H)]
    if "pixel_norm" in undo:
        written.append(_write_npy(out / "pixel_norm.npy", undo["pixel_norm"]))
    return written


def _span(image: Any) -> str:
    """`` (channels 0.2-20 keV)``: the channels kept, in the file's units."""
    unit = f" {image.channel_unit}" if image.channel_unit else ""
    c = image.channels
    return f" (channels {c[0]:.4g} to {c[-1]:.4g}{unit})"


def _channel_range(image: Any, bounds: tuple[Optional[float], Optional[float]]
                   ) -> tuple[Any, str]:
    """--channel-range: the image cropped, and the step in both units."""
    import numpy as np

    from . import preprocess

    c = np.asarray(image.channels, dtype=float)
    lo = float(np.min(c)) if bounds[0] is None else bounds[0]
    hi = float(np.max(c)) if bounds[1] is None else bounds[1]
    kept = np.flatnonzero((c >= lo) & (c <= hi))
    cropped = preprocess.crop(image, channels=(lo, hi))
    unit = f" {image.channel_unit}" if image.channel_unit else ""
    return cropped, (f"channel range {lo:g} to {hi:g}{unit}: channels {kept[0]}:{kept[-1] + 1} "
                     f"of {len(c)}{_span(cropped)}")


def _unmeasured(image: Any, args: argparse.Namespace) -> Optional[str]:
    """The message for grid points a file says were never measured (NaN)."""
    import numpy as np

    n = image.metadata.get("unmeasured_points")
    rows = image.metadata.get("complete_rows")
    if not n or not np.isnan(np.asarray(image.X)).any():
        return None
    return (f"{args.input}: {n} grid points were never measured (NaN: the grid was stopped "
            f"early); its first {rows} rows are complete: read them with --crop 0:{rows}")


def _publish(args: argparse.Namespace, out: Path, command: str,
             write: Callable[[Path], list[Path]]) -> list[Path]:
    """:func:`unmix._output.publish`, with a status line while it writes."""
    with _Stage(f"writing {out}", args.quiet):
        return publish(out, command, write)


def _format_crop(crop: Sequence[slice]) -> str:
    return ",".join(f"{'' if s.start is None else s.start}:{'' if s.stop is None else s.stop}"
                    for s in crop)


def _describe(image: Any) -> str:
    spatial = " x ".join(str(n) for n in image.spatial_shape)
    unit = f" ({image.channel_unit})" if getattr(image, "channel_unit", "") else ""
    return f"{spatial} pixels x {image.n_channels} channels{unit}, {image.data.dtype}"


def _check_input(args: argparse.Namespace) -> None:
    """Before any work: the input exists and the output can be a folder."""
    path = Path(args.input)
    if not path.exists():
        raise CommandError(f"no such file: {str(path)!r}")
    _output(args.output)


def _wrap(items: Sequence[str], indent: str, width: int = 88) -> str:
    lines, line = [], indent
    for i, item in enumerate(items):
        piece = item + (", " if i + 1 < len(items) else "")
        if len(line) + len(piece) > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += piece
    lines.append(line.rstrip())
    return "\n".join(lines)


def _print_files(out: Path, names: Sequence[str]) -> None:
    print(f"  wrote {len(names)} files to {out.resolve()}:")
    print(_wrap(names, "    "))


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _fmt_options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in options.items())


class _FitProgress:
    """One progress bar (stderr) over a sequence of NMF fits, fed by the
    ``callback`` of :func:`unmix.nmf`: the fit running, its iteration and
    relative error. A fit starts when the iteration count starts again."""

    def __init__(self, labels: Sequence[str], desc: str) -> None:
        from tqdm.auto import tqdm

        self.labels = list(labels)
        self.desc = desc
        self.index = -1
        self.last = 0
        self.shown = 0.0
        self.info: Any = None
        self.bar = tqdm(total=len(self.labels), desc=f"{desc}: preparing the data", unit="fit",
                        file=sys.stderr, dynamic_ncols=True)

    def __call__(self, info: Any) -> bool:
        if info.iteration <= self.last or self.index < 0:
            if self.index >= 0:
                # The fit that ended, on its own last iteration (the
                # throttled line below may show an earlier one).
                self._show(self.info)
                self.bar.update(1)
            self.index += 1
            if self.index >= self.bar.total:  # a refit the labels did not foresee
                self.bar.total = self.index + 1
            label = (self.labels[self.index] if self.index < len(self.labels)
                     else f"{self.desc} refinement")
            self.bar.set_description_str(label, refresh=False)
        self.last = info.iteration
        self.info = info
        now = time.monotonic()
        if now - self.shown > 0.2:
            self.shown = now
            self._show(info)
        return False

    def _show(self, info: Any) -> None:
        self.bar.set_postfix_str(f"iteration {info.iteration}, rel. error "
                                 f"{info.rel_error:.4g}")

    def __repr__(self) -> str:
        return "<the progress bar of the unmix command line>"

    def close(self) -> None:
        if self.info is not None:
            self._show(self.info)
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


def _fit_labels(prefix: str, n_init: int, options: dict[str, Any], k: int) -> list[str]:
    """The fits unmix.unmix runs, in order: the restarts, then the second
    step of a two-step fit."""
    from .workflow import _two_step

    return [f"{prefix}start {i + 1}/{n_init}" for i in range(n_init)] + (
        [f"{prefix}abundances, endmembers held"] if _two_step(options, k) else [])


def _progress(args: argparse.Namespace, labels: Sequence[str],
              desc: str) -> Optional[_FitProgress]:
    return None if args.quiet else _FitProgress(labels, desc)


class _Steps:
    """A progress line (stderr) over the named steps of a command."""

    def __init__(self, names: Sequence[str], quiet: bool, desc: str) -> None:
        self.bar = None
        self.desc = desc
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(names), desc=desc, file=sys.stderr,
                            bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}]")

    def start(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc}: {name}")

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_description_str(self.desc)
            self.bar.close()


class _Stage:
    """A status line (stderr) with the elapsed time, for a step without a
    count (reading a file, writing the results). It appears only once the
    step has lasted a second, so quick steps, and the one-line errors they
    may end with, print nothing else."""

    def __init__(self, text: str, quiet: bool) -> None:
        import threading

        self.text = text
        self.bar: Any = None
        self.started = time.time()
        self.done = threading.Event()
        self.thread = None if quiet else threading.Thread(target=self._tick, daemon=True)
        if self.thread is not None:
            self.thread.start()

    def _tick(self) -> None:
        if self.done.wait(1.0):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=None, desc=self.text, file=sys.stderr,
                        bar_format="{desc} [{elapsed}]")
        self.bar.start_t = self.started  # the step's time, not the line's
        while not self.done.wait(0.5):
            self.bar.refresh()

    def __enter__(self) -> "_Stage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()
        if self.bar is not None:
            self.bar.close()


class _PassProgress:
    """A progress bar (stderr) over the passes of :func:`unmix.pca` over
    the data, fed by its ``progress(done, total)``; drawn from the first
    call, so an error before any work prints nothing else."""

    def __init__(self, desc: str, quiet: bool) -> None:
        self.desc = desc
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="pass", file=sys.stderr,
                            dynamic_ncols=True)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .workflow import unmix as unmix_image

    options = _nmf_options(args)
    _check_input(args)
    image, steps, undo = _read(args)
    n_init = args.n_init or 1
    progress = _progress(args, _fit_labels("NMF ", n_init, options, args.k), "NMF")
    start = time.perf_counter()
    try:
        result = unmix_image(image, args.k, n_init=n_init, random_state=args.seed,
                             noise=args.noise, **options,
                             **({"callback": progress} if progress else {}))
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    out = _output(args.output)
    files = _publish(args, out, "run", lambda folder: [
        *result.save(folder, elements=args.elements, scaling=undo.get("poisson")),
        *_save_undo(folder, result, undo)])
    fit = result.result
    params = result.params
    print(f"unmix run: {args.input}: {_describe(image)}")
    if steps:
        print("  preprocessing: " + ", ".join(steps))
    print(f"  noise: {params['noise']}, {params['noise_reason']}"
          + ("; channels weighted by 1/sqrt(mean count)" if params["noise"] == "poisson"
             and params["loss"] != "kl" else ""))
    print("  model: " + _describe_model(result))
    shown = _fmt_options(options) or "defaults"
    print(f"  NMF: k = {args.k}, {shown}; best of {n_init} start{'s' if n_init > 1 else ''}"
          + (f" (seed {args.seed})" if args.seed is not None else ""))
    if params["two_step"]:
        first = min(result.restarts, key=lambda r: r.objective)
        print(f"  two-step fit: endmembers in {first.n_iter} iterations, then the abundances "
              "with the endmembers held")
    print(f"  {fit.n_iter} iterations ({fit.stop_reason}), relative error "
          f"{result.rel_error:.4g}, {seconds:.2f} s")
    numbers = {k: v for k, v in params["weights"].items() if isinstance(v, (int, float))}
    if numbers:
        print("  weights set from the data: " + _fmt_options({k: float(v) for k, v in
                                                             numbers.items()}))
    for event in result.events:
        print(f"  note: {event}")
    if "poisson" in undo:
        print("  W.npy, H.npy are factors of the Poisson-scaled data; W_unscaled.npy, "
              "H_unscaled.npy of the data as read")
    _print_files(out, files)
    return 0


def _describe_model(result: Any) -> str:
    """One line on the model and what its abundances mean."""
    params = result.params
    weights = params["weights"]
    volume = ""
    if params.get("minvol_H"):
        volume = f"; minimum volume, weight {float(params['minvol_H']):.4g}"
        if "excess_share" in weights:
            volume += (f" (set from the data: {100 * weights['excess_share']:.0f} % of the "
                       "residual is structure the noise does not explain)")
    if params["model"] == "plain":
        return f"plain NMF, endmembers scaled to a {params['normalize']} of 1{volume}"
    if params["model"] == "strict":
        return f"fractions summing to one, intensity constant (strict sum-to-one){volume}"
    what = ("of the material: pixel totals follow from composition"
            if params["fractions"] == "material" else
            "of each pixel's signal: its intensity (illumination, thickness) varies "
            f"{float(result.intensity.min()):.2g}-{float(result.intensity.max()):.2g} x the mean")
    return f"fractions summing to one, with a per-pixel intensity; fractions {what}{volume}"


def cmd_rank(args: argparse.Namespace) -> int:
    import numpy as np

    from .rank import select_rank

    options = _nmf_options(args)
    _check_input(args)
    # The rank test scales counts itself, and needs the counts to estimate
    # their noise: --poisson-scale asks for that test rather than for
    # scaled data taken as Gaussian (unless --noise gaussian says so).
    noise = args.noise
    inside = args.poisson_scale and noise != "gaussian"
    if inside:
        noise = "poisson"
        args = argparse.Namespace(**{**vars(args), "poisson_scale": False})
    image, steps, _ = _read(args)
    if inside:
        steps.append("Poisson scaling (in the rank test, as --noise poisson)")
    ks = args.ks
    if max(ks) > min(image.n_pixels, image.n_channels):
        raise CommandError(f"--k: every number of components must be <= min(pixels, "
                           f"channels) = {min(image.n_pixels, image.n_channels)}, got "
                           f"{max(ks)}")
    n_init = args.n_init
    labels = [label for k in sorted(set(ks))
              for label in _fit_labels(f"k={k} ", n_init, options, k)]
    progress = _progress(args, labels, "rank")
    start = time.perf_counter()
    try:
        selection = select_rank(image, ks=ks, n_init=n_init, random_state=args.seed,
                                noise=noise, **options,
                                **({"callback": progress} if progress else {}))
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    out = _output(args.output)
    files = _publish(args, out, "rank", selection.save)
    print(f"unmix rank: {args.input}: {_describe(image)}")
    if steps:
        print("  preprocessing: " + ", ".join(steps))
    model = selection.noise
    floor = ("a simulated noise floor (the local spectrum shape's Poisson variance)"
             if model.model == "poisson" else "the Marchenko-Pastur noise floor")
    print(f"  noise: {model.model}, {model.reason}; the rank from the singular values of the "
          + ("Poisson-scaled " if model.model == "poisson" else "") + f"data against {floor}")
    ratios = [f"s{i + 1}² {v / f:.4g}x" for i, (v, f)
              in enumerate(zip(selection.spectrum, selection.noise_floor)) if np.isfinite(f)]
    if ratios:
        ratios[0] = "spectrum / noise floor: " + ratios[0]
        print(_wrap(ratios + [f"threshold {selection.threshold / selection.noise_level:.4g}x"],
                    "  "))
    tried = ", ".join(str(k) for k in selection.ks)
    print(f"  k = {tried}: {n_init} start{'s' if n_init > 1 else ''} each"
          + (f", {_fmt_options(options)}" if options else "") + f"; {seconds:.2f} s")
    errors = ", ".join(f"{k}: {e:.4g}" for k, e in zip(selection.ks, selection.rel_error))
    print(_wrap([f"relative error {errors}"], "  "))
    reason = str(selection.reason)
    for prefix in (f"k={selection.recommended}: ", f"k={selection.recommended}, "):
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
    print(f"  recommended k = {selection.recommended}: {reason}")
    _print_files(out, files)
    return 0


def cmd_pca(args: argparse.Namespace) -> int:
    from .workflow import pca

    _check_input(args)
    image, steps, _ = _read(args, nonneg=False)
    k = args.k if args.k is not None else min(PCA_DEFAULT_K, image.n_pixels, image.n_channels)
    start = time.perf_counter()
    progress = _PassProgress("PCA", args.quiet)
    try:
        result = pca(image, n_components=k, progress=progress)
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    out = _output(args.output)
    files = _publish(args, out, "pca", result.save)
    print(f"unmix pca: {args.input}: {_describe(image)}")
    if steps:
        print("  preprocessing: " + ", ".join(steps))
    ratio = [float(r) for r in result.explained_variance_ratio]
    print(f"  {len(ratio)} components ({result.method} method), {seconds:.2f} s; explained "
          "variance per component (cumulative):")
    cumulative = 0.0
    parts = []
    for i, r in enumerate(ratio[:10], 1):
        cumulative += r
        parts.append(f"{i}: {100 * r:.2f} % ({100 * cumulative:.2f} %)")
    print(_wrap(parts, "    "))
    if len(ratio) > 10:
        print(f"    ... all {len(ratio)}: {100 * sum(ratio):.2f} %")
    _print_files(out, files)
    return 0


def _demo_scores(data: Any, result: Any) -> dict[str, Any]:
    """Spectral angles and abundance RMSE (rows summing to one) of an
    Unmixing against the ground truth."""
    import numpy as np

    from .metrics import abundance_rmse, spectral_angles

    A = np.asarray(result.abundances).reshape(-1, result.n_components)
    angles = spectral_angles(data.endmembers, result.endmembers)
    return {"spectral_angle_deg": [float(a) for a in angles.angles],
            "mean_spectral_angle_deg": float(angles.mean),
            "abundance_rmse": abundance_rmse(data.abundances, A, angles),
            "zero_abundances": float(np.mean(A <= 0)),
            "n_iter": int(result.result.n_iter), "stop_reason": result.result.stop_reason,
            "rel_error": result.rel_error}


def _write_demo(folder: Path, summary: dict[str, Any], principal: Any, result: Any,
                start: float) -> list[Path]:
    """The demo's reports, and its summary with the files and the time."""
    from .report import _write_bytes

    files = [*principal.save(folder / "pca"), *result.save(folder / "nmf")]
    summary["files"] = sorted([str(f.relative_to(folder)) for f in files] + ["summary.json"])
    summary["seconds"] = time.perf_counter() - start
    text = json.dumps(summary, indent=2) + "\n"
    return [*files, _write_bytes(folder / "summary.json", text.encode())]


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .datasets import tof_sims_like
    from .workflow import pca, unmix as unmix_image

    out = _output(args.output)
    steps = _Steps(["data", "PCA", "plain NMF", "unmixing", "reports"], args.quiet,
                   "unmix demo")
    total = time.perf_counter()
    try:
        steps.start("generating the data")
        data = tof_sims_like(seed=args.seed)
        image = data.image()
        steps.done()

        steps.start("PCA")
        principal = pca(image, n_components=10)
        steps.done()

        common: dict[str, Any] = dict(n_init=args.n_init, random_state=args.seed)
        common.update({name: value for name, value in (("solver", args.solver),
                                                       ("max_iter", args.max_iter))
                       if value is not None})
        steps.start("plain NMF")
        # The baseline: plain NMF, spectra scaled to unit sum as the true ones.
        plain = unmix_image(image, args.k, sum_to_one=False, normalize="sum", **common)
        steps.done()

        steps.start("unmixing")
        t = time.perf_counter()
        result = unmix_image(image, args.k, **common)
        nmf_seconds = time.perf_counter() - t
        steps.done()

        ratio = [float(r) for r in principal.explained_variance_ratio]
        scores = _demo_scores(data, result)
        baseline = _demo_scores(data, plain)
        summary = {
            "version": __version__,
            "data": {"generator": "unmix.datasets.tof_sims_like", "seed": args.seed,
                     "spatial_shape": list(image.spatial_shape), "n_channels": image.n_channels,
                     "n_components_true": int(data.endmembers.shape[0]),
                     "counts_per_pixel": data.scale},
            "pca": {"folder": "pca", "explained_variance_ratio": ratio,
                    "negative_fraction": float(np.mean(principal.components < 0))},
            "nmf": {"folder": "nmf", "n_components": args.k, "n_init": args.n_init,
                    "seed": args.seed, "solver": result.params["solver"],
                    "max_iter": result.params["max_iter"], "model": result.params["model"],
                    "noise": result.params["noise"], "fractions": result.params["fractions"],
                    "seconds": nmf_seconds},
            "scores": scores,
            "unconstrained": baseline,
        }
        steps.start("reports")
        publish(out, "demo", lambda folder: _write_demo(folder, summary, principal, result, total))
        steps.done()
    finally:
        steps.close()

    def scored(s: dict[str, Any]) -> str:
        return (f"spectral angle {s['mean_spectral_angle_deg']:.2f} deg (worst "
                f"{max(s['spectral_angle_deg']):.2f}), abundance RMSE {s['abundance_rmse']:.4f},"
                f" {100 * s['zero_abundances']:.0f} % zeros")

    negative = 100 * summary["pca"]["negative_fraction"]
    spatial = " x ".join(str(n) for n in image.spatial_shape)
    print(f"unmix {__version__} demo: a ToF-SIMS-like image of {spatial} pixels x "
          f"{image.n_channels} masses,")
    print(f"  {data.endmembers.shape[0]} components, Poisson counts ({data.scale:g} per pixel, "
          f"seed {args.seed})")
    print(f"  PCA: {100 * sum(ratio[:args.k]):.2f} % of the variance in {args.k} components; "
          f"{negative:.0f} % of their entries are negative")
    print(f"  unmixing, k = {args.k} ({result.params['noise']} noise, "
          f"{result.params['fractions']} fractions): {scores['n_iter']} iterations "
          f"({scores['stop_reason']}), relative error {scores['rel_error']:.4f}, "
          f"{nmf_seconds:.1f} s")
    print(f"    vs the truth: {scored(scores)}")
    print(f"    plain NMF:    {scored(baseline)}")
    print(f"  wrote {out.resolve()}/: nmf/report.html, pca/pca_report.html, summary.json "
          f"({summary['seconds']:.0f} s in all)")
    return 0


# ---------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------


def _elements(text: str) -> list[str]:
    """--elements Fe,Pt: chemical symbols (a capital, then at most two
    small letters)."""
    import re

    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if not re.fullmatch(r"[A-Z][a-z]{0,2}", n)]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected element symbols separated by commas (Fe,Pt), got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unmix", description=__doc__, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"unmix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")

    p = sub.add_parser(
        "run", help="NMF of an image: factors, maps and a report",
        formatter_class=_Formatter,
        description="Reads INPUT (unmix.io.read), preprocesses it as asked, factors it "
                    "with unmix.unmix (non-negative abundances W and spectra H, X ~ W H) "
                    "and writes W.npy, H.npy, unmixing.h5, figures and report.html to "
                    "OUTPUT.",
        epilog="examples:\n"
               "  unmix run cube.npy -k 4 -o out\n"
               "  unmix run scan.h5 --dataset /data/cube -k 6 --bin 2 --normalize total \\\n"
               "      --l1 0.01 --n-init 3 --seed 0 -o out\n"
               "  unmix run cube.npy -k 4 --option l1_H=0.1 --option init=random -o out\n"
               "  unmix run cube.npy -k 3 --init spa --sum-to-one --minvol-H auto \\\n"
               "      --smooth-W auto -o out")
    _add_input(p)
    p.add_argument("-k", "--n-components", dest="k", type=_positive_int, required=True,
                   help="number of components")
    _add_nmf(p)
    p.add_argument("--elements", type=_elements, default=None, metavar="EL[,EL...]",
                   help="elements whose X-ray lines (EELS: edges) the spectra mark, e.g. "
                        "Fe,Pt (default: those the file lists; needs exspy)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    _add_common(p)
    p.set_defaults(run=cmd_run)

    p = sub.add_parser(
        "rank", help="compare numbers of components and recommend one",
        formatter_class=_Formatter,
        description="Counts the components that stand above the noise in the singular "
                    "values of INPUT (Poisson-scaled when the data are counts; "
                    "unmix.select_rank), fits NMF for every number of components in --k as "
                    "diagnostics, writes the comparison to OUTPUT and prints the recommended "
                    "number with the numbers that decided. The recommendation depends on the "
                    "data only, not on --seed or --n-init.",
        epilog="example:\n  unmix rank cube.npy --k 2:10 --n-init 3 --seed 0 -o rank")
    _add_input(p)
    p.add_argument("--k", dest="ks", type=_k_list, default=_k_list("2:10"),
                   metavar="FIRST:LAST[:STEP]|K1,K2,...",
                   help="numbers of components to try, LAST included (default: 2:10)")
    _add_nmf(p, n_init_default=3)
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    _add_common(p)
    p.set_defaults(run=cmd_rank)

    p = sub.add_parser(
        "pca", help="principal components: the unconstrained baseline",
        formatter_class=_Formatter,
        description="Principal component analysis of INPUT (unmix.pca): explained "
                    "variance, components and score maps, written to OUTPUT.",
        epilog="example:\n  unmix pca cube.npy -k 10 -o pca")
    _add_input(p)
    p.add_argument("-k", "--n-components", dest="k", type=_positive_int, default=None,
                   help=f"number of components to keep (default: {PCA_DEFAULT_K}, or all "
                        "when there are fewer)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    _add_common(p)
    p.set_defaults(run=cmd_pca)

    p = sub.add_parser(
        "demo", help="unmix a built-in ToF-SIMS-like image and score it",
        formatter_class=_Formatter,
        description="Generates a ToF-SIMS-like image (128 x 128 pixels x 512 masses, 4 "
                    "components, Poisson counts; unmix.datasets.tof_sims_like) from a "
                    "seed, runs PCA, plain NMF and the default unmixing (unmix.unmix: "
                    "Poisson weights, fractions, minimum volume), scores both NMFs against "
                    "the ground truth (spectral angles, abundance RMSE) and writes "
                    "OUTPUT/pca/, OUTPUT/nmf/ (reports) and OUTPUT/summary.json.")
    p.add_argument("-o", "--output", default="unmix-demo",
                   help="output folder (default: %(default)s)")
    p.add_argument("-k", "--n-components", dest="k", type=_positive_int, default=4,
                   help="number of components (default: %(default)s)")
    p.add_argument("--solver", choices=SOLVERS, default=None,
                   help="default: unmix.unmix's (bpp)")
    p.add_argument("--max-iter", type=_positive_int, default=None,
                   help="default: unmix.unmix's")
    p.add_argument("--n-init", type=_positive_int, default=1, help="default: %(default)s")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="default: %(default)s")
    _add_common(p)
    p.set_defaults(run=cmd_demo)
    parser.set_defaults(subparsers=sub.choices)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs a command line and returns its exit code: 130 after Ctrl-C, 143
    after SIGTERM, whenever it comes. Called without ``argv`` (as the
    program itself) it returns with both signals ignored, as Python, while
    it shuts down, would let a late one end the process by the signal."""
    prog = "unmix"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the subcommand, whose --help lists its options
            args.subparsers[args.command].error("unrecognized arguments: " + " ".join(extra))
        prog = f"unmix {args.command}"
        _signals.catch()
        code = _run(args, prog)
    except KeyboardInterrupt as err:  # and SIGTERM
        _signals.hold()
        signum = _signals.signal_of(err)
        print(f"{prog}: {_signals.what(signum)}" + (f": {err}" if str(err) else ""),
              file=sys.stderr)
        code = 128 + signum
    try:
        late = _signals.release(ignore=argv is None)
    except KeyboardInterrupt as err:  # came just now, while none was held
        late = _signals.signal_of(err)
        _signals.release(ignore=argv is None)
    if late and code < 128:
        print(f"{prog}: {_signals.what(late)}" + (
            " after the command had finished: its output is complete" if code == 0 else ""),
            file=sys.stderr)
        code = 128 + late
    return code


def _run(args: argparse.Namespace, prog: str) -> int:
    try:
        return int(args.run(args))
    except CommandError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as err:
        if os.environ.get("UNMIX_DEBUG"):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except _USER_ERRORS as err:
        if os.environ.get("UNMIX_DEBUG"):
            raise
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, MemoryError) as err:
        if os.environ.get("UNMIX_DEBUG"):
            raise
        what = "not enough memory" if isinstance(err, MemoryError) else "the fit failed"
        print(f"{prog}: error: {what}: {_one_line(err)}", file=sys.stderr)
        return EXIT_FAILED


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if isinstance(err, FileNotFoundError) and err.filename and err.strerror is not None:
        text = f"{err.strerror}: {err.filename!r}"
    return text or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
