"""The bad-input cases of docs/reliability.rst, run for real.

    python docs/reliability_cases.py           # prints the tables (reST)
    python docs/reliability_cases.py --write   # updates docs/reliability.rst

Every case hands a malformed input to the program or function that reads
it — the ``unmix-nmf`` executable (the C++ readers and checks), or
:func:`unmix.io.read` and :func:`unmix.nmf` in Python — and records the
message it gives. The page shows these tables between its
``.. cases: <group>`` and ``.. /cases`` markers; ``tests/python/test_fuzz.py``
checks that the page shows what the code says now, so after changing a
message, rerun with ``--write``.

``unmix-nmf`` is looked for as the CLI tests do: ``$UNMIX_NMF``, on PATH,
else the newest ``build/*/cpp/apps/unmix-nmf``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGE = HERE / "reliability.rst"

# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def npy_bytes(descr: str, shape: str, data: bytes = b"", fortran: bool = False,
              version: int = 1) -> bytes:
    """A .npy file with a hand-written header, padded as numpy pads it."""
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    pre = 10 if version == 1 else 12
    header += " " * (-(pre + len(header) + 1) % 64) + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def f8(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


GOOD = npy_bytes("<f8", "(3, 4)", f8(*np.arange(1.0, 13.0)))
BANNER = "%%MatrixMarket matrix coordinate real general\n"


def mtx(text: str) -> bytes:
    return text.encode()


# --------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------


def find_unmix_nmf() -> Optional[str]:
    env = os.environ.get("UNMIX_NMF")
    if env:
        return str(Path(env).resolve()) if os.sep in env else env
    found = shutil.which("unmix-nmf")
    if found:
        return found
    built = sorted(ROOT.glob("build/*/cpp/apps/unmix-nmf"), key=lambda p: -p.stat().st_mtime)
    return str(built[0]) if built else None


class Case:
    """One input, where it goes, and (once run) what came back."""

    def __init__(self, what: str, run: Callable[[Path], str]) -> None:
        self.what = what
        self.run = run
        self.message = ""
        self.in_process = getattr(run, "in_process", False)


def cli(files: dict[str, bytes], *args: str) -> Callable[[Path], str]:
    """unmix-nmf with the files written to a scratch folder (run there, so
    the messages show the bare file names)."""

    def run(folder: Path) -> str:
        exe = find_unmix_nmf()
        if exe is None:
            raise RuntimeError("unmix-nmf not found: set UNMIX_NMF or build it")
        for name, data in files.items():
            (folder / name).write_bytes(data)
        # A singleton MPI process need not start OpenMPI's daemon; its session
        # files go to its own folder, apart from the runs beside it.
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_ess_singleton_isolated="1", OMPI_MCA_orte_tmpdir_base=str(folder),
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        res = subprocess.run([exe, *args, "-o", "out", "--quiet"], cwd=folder, env=env,
                             capture_output=True, text=True, timeout=120)
        errors = [line for line in res.stderr.splitlines() if line.startswith("unmix-nmf: error:")]
        if res.returncode != 2 or len(errors) != 1:
            raise RuntimeError(f"unmix-nmf {' '.join(args)}: exit {res.returncode}, expected 2 "
                               f"with one error line; stderr:\n{res.stderr}")
        return errors[0][len("unmix-nmf: error: "):]

    return run


def python(call: Callable[[Path], object]) -> Callable[[Path], str]:
    """A Python call that must raise; the message, after the exception's type."""

    def run(folder: Path) -> str:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            call(folder)
        except (ValueError, TypeError, OSError) as err:
            return f"{type(err).__name__}: {err}"
        finally:
            os.chdir(cwd)
        raise RuntimeError("the call did not raise")

    run.in_process = True  # type: ignore[attr-defined]  # changes the working folder
    return run


def read(name: str, data: bytes, **kwargs: object) -> Callable[[Path], str]:
    import unmix.io

    def call(folder: Path) -> object:
        (folder / name).write_bytes(data)
        return unmix.io.read(name, **kwargs)

    return python(call)


def nmf(X: object, k: object = 2, **kwargs: object) -> Callable[[Path], str]:
    import unmix

    return python(lambda folder: unmix.nmf(X, k, max_iter=5, **kwargs))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def huge_npz() -> bytes:
    """An .npz whose member's header declares a 200 GB array."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.npy", npy_bytes("<f8", "(5000000, 5000000)", f8(1.0)))
    return buf.getvalue()


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

X_GOOD = np.arange(1.0, 13.0).reshape(3, 4)


def _with(value: float, where: tuple[int, int] = (1, 2)) -> np.ndarray:
    X = X_GOOD.copy()
    X[where] = value
    return X


def cases() -> dict[str, list[Case]]:
    return {
        "npy": [
            Case("truncated data (one value cut)", cli({"cut.npy": GOOD[:-8]}, "-k", "2", "cut.npy")),
            Case("truncated inside the header", cli({"cut.npy": GOOD[:30]}, "-k", "2", "cut.npy")),
            Case("not a .npy file (text)", cli({"x.npy": b"1,2,3\n4,5,6\n"}, "-k", "2", "x.npy")),
            Case("format version 9.0", cli({"v9.npy": GOOD[:6] + b"\x09" + GOOD[7:]},
                                           "-k", "2", "v9.npy")),
            Case("header length field corrupted (v2, 4 GB)",
                 cli({"len.npy": GOOD[:6] + b"\x02\x00\xff\xff\xff\xff" + GOOD[10:]},
                     "-k", "2", "len.npy")),
            Case("binary junk in the header",
                 cli({"junk.npy": GOOD[:20] + b"\x00\xff\x07" + GOOD[23:]}, "-k", "2", "junk.npy")),
            Case("integer dtype", cli({"int.npy": npy_bytes("<i8", "(3, 4)", bytes(96))},
                                      "-k", "2", "int.npy")),
            Case("big-endian float64", cli({"be.npy": npy_bytes(">f8", "(3, 4)", bytes(96))},
                                           "-k", "2", "be.npy")),
            Case("3-D array", cli({"cube.npy": npy_bytes("<f8", "(2, 3, 2)", bytes(96))},
                                  "-k", "2", "cube.npy")),
            Case("200 GB declared in a 136-byte file",
                 cli({"huge.npy": npy_bytes("<f8", "(5000000, 5000000)", f8(1.0))},
                     "-k", "2", "huge.npy")),
            Case("declared size overflows 64 bits",
                 cli({"wrap.npy": npy_bytes("<f8", "(2305843009213693951, 1)", f8(1.0))},
                     "-k", "2", "wrap.npy")),
            Case("zero rows", cli({"empty.npy": npy_bytes("<f8", "(0, 4)")}, "-k", "2", "empty.npy")),
            Case("a NaN", cli({"nan.npy": npy_bytes("<f8", "(3, 4)", f8(*_with(np.nan).ravel()))},
                              "-k", "2", "nan.npy")),
            Case("an infinity", cli({"inf.npy": npy_bytes("<f8", "(3, 4)",
                                                          f8(*_with(np.inf).ravel()))},
                                    "-k", "2", "inf.npy")),
            Case("a negative value", cli({"neg.npy": npy_bytes("<f8", "(3, 4)",
                                                               f8(*_with(-2.0).ravel()))},
                                         "-k", "2", "neg.npy")),
            Case("1e300 read as float32", cli({"big.npy": npy_bytes("<f8", "(3, 4)",
                                                                    f8(*_with(1e300).ravel()))},
                                              "-k", "2", "--dtype", "float32", "big.npy")),
        ],
        "mtx": [
            Case("wrong banner", cli({"a.mtx": mtx("%MatrixMarket matrix coordinate real general\n"
                                                   "2 2 1\n1 1 1\n")}, "-k", "1", "a.mtx")),
            Case("dense (array) format", cli({"a.mtx": mtx("%%MatrixMarket matrix array real "
                                                           "general\n2 2\n1\n2\n3\n4\n")},
                                             "-k", "1", "a.mtx")),
            Case("complex field", cli({"a.mtx": mtx("%%MatrixMarket matrix coordinate complex "
                                                    "general\n2 2 1\n1 1 1 0\n")}, "-k", "1", "a.mtx")),
            Case("row index out of range", cli({"a.mtx": mtx(BANNER + "3 2 2\n1 1 1\n4 1 1\n")},
                                               "-k", "1", "a.mtx")),
            Case("column index 0", cli({"a.mtx": mtx(BANNER + "3 2 1\n1 0 1\n")}, "-k", "1", "a.mtx")),
            Case("negative index", cli({"a.mtx": mtx(BANNER + "3 2 1\n-1 1 1\n")}, "-k", "1", "a.mtx")),
            Case("fewer entries than declared (truncated)",
                 cli({"a.mtx": mtx(BANNER + "3 2 3\n1 1 1\n2 2 1\n")}, "-k", "1", "a.mtx")),
            Case("more entries than declared",
                 cli({"a.mtx": mtx(BANNER + "3 2 1\n1 1 1\n2 2 1\n")}, "-k", "1", "a.mtx")),
            Case("10^12 entries declared in a 60-byte file",
                 cli({"a.mtx": mtx(BANNER + "3 2 1000000000000\n1 1 1\n")}, "-k", "1", "a.mtx")),
            Case("10^10 x 10^10 declared", cli({"a.mtx": mtx(BANNER + "10000000000 10000000000 1\n"
                                                             "1 1 1\n")}, "-k", "1", "a.mtx")),
            Case("a value that overflows float64", cli({"a.mtx": mtx(BANNER + "3 2 1\n1 1 1e999\n")},
                                                       "-k", "1", "a.mtx")),
            Case("text after an entry", cli({"a.mtx": mtx(BANNER + "3 2 1\n1 1 1 x\n")},
                                            "-k", "1", "a.mtx")),
            Case("a NUL byte (binary data)", cli({"a.mtx": mtx(BANNER + "3 2 1\n1 1 1\x00\n")},
                                                 "-k", "1", "a.mtx")),
            Case("a NaN", cli({"a.mtx": mtx(BANNER + "3 2 2\n1 1 nan\n2 2 1\n")}, "-k", "1", "a.mtx")),
            Case("a negative value", cli({"a.mtx": mtx(BANNER + "3 2 2\n1 1 -1\n2 2 1\n")},
                                         "-k", "1", "a.mtx")),
            Case("an empty matrix", cli({"a.mtx": mtx(BANNER + "0 0 0\n")}, "-k", "1", "a.mtx")),
        ],
        "cli": [
            Case("k larger than the data (NNDSVD start)",
                 cli({"x.npy": GOOD}, "-k", "10", "--init", "nndsvda", "x.npy")),
            Case("k = 0", cli({"x.npy": GOOD}, "-k", "0", "x.npy")),
            Case("non-finite penalty", cli({"x.npy": GOOD}, "-k", "2", "--l1-W", "nan", "x.npy")),
            Case("negative penalty", cli({"x.npy": GOOD}, "-k", "2", "--l2-H", "-1", "x.npy")),
            Case("a file that does not exist", cli({}, "-k", "2", "none.npy")),
            Case("a negative value in the --fixed-H file",
                 cli({"x.npy": GOOD, "E.npy": npy_bytes("<f8", "(1, 4)", f8(1.0, -1.0, 1.0, 1.0))},
                     "-k", "2", "--fixed-H", "E.npy", "x.npy")),
        ],
        "read": [
            Case("truncated .npy", read("cut.npy", GOOD[:-8])),
            Case("random bytes as .h5", read("x.h5", bytes(range(256)) * 4)),
            Case("random bytes as .npz", read("x.npz", b"PK\x03\x04" + bytes(200))),
            Case(".npz member declaring 200 GB", read("huge.npz", huge_npz())),
            Case("empty array", read("e.npz", npz_bytes(data=np.zeros((0, 5))))),
            Case("unknown extension", read("x.csv", b"1,2\n")),
        ],
        "nmf": [
            Case("a NaN in X", nmf(_with(np.nan))),
            Case("an infinity in X", nmf(_with(np.inf))),
            Case("a negative value in X", nmf(_with(-1.0))),
            Case("zero rows", nmf(np.zeros((0, 4)))),
            Case("3-D X", nmf(np.ones((2, 3, 4)))),
            Case("complex X", nmf(X_GOOD + 1j)),
            Case("k = 0", nmf(X_GOOD, 0)),
            Case("k larger than the data (NNDSVD start)", nmf(X_GOOD, 5, init="nndsvda")),
            Case("W of the wrong shape", nmf(X_GOOD, 2, init="custom", W=np.ones((4, 2)),
                                             H=np.ones((2, 4)))),
            Case("H of the wrong dtype", nmf(X_GOOD, 2, init="custom", W=np.ones((3, 2)),
                                             H=np.ones((2, 4), np.float32))),
            Case("non-finite penalty", nmf(X_GOOD, 2, l1_W=float("nan"))),
            Case("infinite penalty", nmf(X_GOOD, 2, l2_H=float("inf"))),
            Case("negative penalty", nmf(X_GOOD, 2, l1_H=-0.5)),
        ],
    }


def run_all() -> dict[str, list[Case]]:
    """Runs every case: the unmix-nmf ones side by side (each mostly waits
    for MPI to start), the in-process ones one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    groups = cases()
    every = [case for group in groups.values() for case in group]
    with tempfile.TemporaryDirectory(prefix="unmix-cases-") as tmp:
        folders = []
        for i, case in enumerate(every):
            folders.append(Path(tmp) / str(i))
            folders[-1].mkdir()

        def run(i: int) -> None:
            every[i].message = every[i].run(folders[i])

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(run, [i for i, c in enumerate(every) if not c.in_process]))
        for i, case in enumerate(every):
            if case.in_process:
                run(i)
    return groups


# --------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------


def _literal(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return f"``{text}``" if "``" not in text else text


def table(group: list[Case]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 75", "",
             "   * - Input", "     - Message"]
    for case in group:
        lines += [f"   * - {case.what}", f"     - {_literal(case.message)}"]
    return "\n".join(lines) + "\n"


def render(page: str, groups: dict[str, list[Case]]) -> str:
    """The page with each ``.. cases: <group>`` ... ``.. /cases`` block
    replaced by the current table."""

    def block(match: re.Match) -> str:
        name = match.group(1)
        if name not in groups:
            raise KeyError(f"{PAGE.name}: unknown case group {name!r}")
        return f".. cases: {name}\n\n{table(groups[name])}\n.. /cases"

    return re.sub(r"^\.\. cases: (\w+)\n.*?^\.\. /cases", block, page, flags=re.M | re.S)


def main(argv: list[str]) -> int:
    groups = run_all()
    if "--write" in argv:
        PAGE.write_text(render(PAGE.read_text(encoding="utf-8"), groups), encoding="utf-8")
        print(f"updated {PAGE}")
    else:
        for name, group in groups.items():
            print(f".. cases: {name}\n\n{table(group)}\n.. /cases\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
