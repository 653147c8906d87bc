"""Runs the hypothesis properties of tests/python/test_fuzz.py for a fixed
time with fresh random examples (the pytest run replays a fixed, small set).

    python tests/fuzz/fuzz_python.py SECONDS [TARGET...]

Targets: nmf, estimator, read (default: all), each for SECONDS. Prints one
line per target — ``<target>: <N> inputs, <C> crashes`` — and the
falsifying example of a failure (hypothesis shrinks it first); the exit
status is 1 when any target failed. A crash of the interpreter itself
(a segfault in compiled code) ends the process with that signal, which
tools/fuzz reports; the input that caused it is left pickled in
build/fuzz-runs/artifacts/python_<target>/last-input.pickle (a failing
property's shrunk input in failing-input.pickle). A file input worth
keeping goes to tests/fuzz/corpus/python_read/, which the tests replay.
"""

from __future__ import annotations

import faulthandler
import pickle
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import test_fuzz  # noqa: E402


ARTIFACTS = Path("build/fuzz-runs/artifacts")


def keep_input(target: str, case: dict, tried: int, name: str = "last-input") -> None:
    """The input about to run (and how many ran before), kept until the next
    one replaces it: when the interpreter crashes (a segfault in compiled
    code), it is the culprit."""
    folder = ARTIFACTS / f"python_{target}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.pickle", "wb") as f:
        pickle.dump({"case": case, "inputs": tried}, f)


def run(target: str, seconds: float) -> tuple[int, int]:
    if target in ("nmf", "estimator"):
        strategy = test_fuzz.nmf_cases()
        prop = test_fuzz.nmf_property if target == "nmf" else test_fuzz.estimator_property
    elif target == "read":
        strategy = test_fuzz.file_cases()
        folder = Path(tempfile.mkdtemp(prefix="unmix-fuzz-"))

        def prop(case: dict) -> str:
            return test_fuzz.read_property(case, folder)
    else:
        raise SystemExit(f"unknown target {target!r}: expected nmf, estimator or read")

    tried = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:

        @settings(max_examples=100, database=None, deadline=None, derandomize=False,
                  phases=[Phase.generate, Phase.shrink], print_blob=True,
                  suppress_health_check=list(HealthCheck))
        @seed(random.getrandbits(64))
        @given(strategy)
        def batch(case: dict) -> None:
            nonlocal tried
            tried += 1
            keep_input(target, case, tried)
            try:
                prop(case)
            except Exception:  # the last one kept is hypothesis' shrunk example
                keep_input(target, case, tried, "failing-input")
                raise

        # A batch that does not finish is a hang: print every stack and exit.
        faulthandler.dump_traceback_later(300, exit=True)
        try:
            batch()
        except Exception:  # a property failed: hypothesis has shrunk and printed it
            traceback.print_exc()
            return tried, 1
        finally:
            faulthandler.cancel_dump_traceback_later()
    return tried, 0


def main() -> int:
    faulthandler.enable()  # a segfault prints the Python stack
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    seconds = float(sys.argv[1])
    targets = sys.argv[2:] or ["nmf", "estimator", "read"]
    failed = False
    for target in targets:
        (ARTIFACTS / f"python_{target}" / "last-input.pickle").unlink(missing_ok=True)
        tried, crashes = run(target, seconds)
        print(f"python_{target}: {tried} inputs, {crashes} crashes", flush=True)
        failed |= crashes > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
