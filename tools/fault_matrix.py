#!/usr/bin/env python3
"""The fault-injection matrix: runs killed at random moments, then resumed.

    python tools/fault_matrix.py                       # every front and signal, 4 trials each
    python tools/fault_matrix.py --fronts exe,mpi --signals SIGTERM --trials 10
    python tools/fault_matrix.py --plot docs/fault_matrix.json   # only redraw the figure

For every front — the Python API (a script calling ``unmix.nmf`` with a
checkpoint and ``resume=True``, SIGTERM handled like Ctrl-C), the command
line (``unmix run`` into a folder holding an older result), ``unmix-nmf``
serially and ``unmix-nmf`` under ``mpirun -np 4`` — it makes two
uninterrupted reference runs, then, for every signal, trials that start the
same run, send the signal at a random moment of it (under MPI to ``mpirun``
or to one rank; SIGKILL to ``mpirun`` goes to the whole job, as from a
scheduler), rerun it (``resume=True``, ``--resume`` when a checkpoint
exists, the same ``unmix run`` command) and check:

- the killed run's exit status: 0 when it completed first, 130 after
  SIGINT and 143 after SIGTERM, death by SIGKILL (137 through ``mpirun``,
  which also turns a rank's death by SIGTERM into 143: its message tells;
  signalled itself, mpirun exits with 1, and the ranks' messages tell);
- after 130/143, a checkpoint at least as recent as the last iteration the
  run printed;
- ``unmix run``'s folder after the kill: all of it the old result or all of
  it the new one, never a mixture or a part;
- the rerun: exit status 0, factors equal to the reference's (relative
  difference <= 1e-12; checkpoints are exact), the same files as the
  reference run left and nothing else (no ``*.tmp*``, no older checkpoint
  generation), and no process of the run alive afterwards;
- no hang: every run ends within its timeout.

Every trial goes to ``--out`` (JSON, by default ``docs/fault_matrix.json``,
which ``docs/make_figures.py`` draws and tabulates for
``docs/reliability.rst``), the table to the console, the figure to
``--figure``. Exits with status 1 when a trial failed, naming why.
Standard library, numpy and matplotlib only; the runs are subprocesses.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "fault_matrix.json"
DEFAULT_FIGURE = ROOT / "docs" / "_generated" / "fault_matrix.png"

SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT")
RANKS = 4
RTOL = 1e-12

# Every outcome but FAILED includes a second run that gave the
# uninterrupted run's result. Completed: the run wrote its results before
# the signal took effect (unmix-nmf finishes its outputs when the signal
# comes after the fit), though it may have died in its teardown.
COMPLETED = "completed (results written)"
KILLED = "killed"
INTERRUPTED = "interrupted (130/143)"
FAILED = "FAILED"
OUTCOMES = (COMPLETED, KILLED, INTERRUPTED, FAILED)
COLOURS = {COMPLETED: "0.5", KILLED: "C0", INTERRUPTED: "C2", FAILED: "C3"}

# One thread per process: the results must not depend on the load, and
# the engineers sharing the machine keep their cores.
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           PYTHONUNBUFFERED="1")

_DRIVER = '''\
import signal, sys
got = []
def stop(signum, frame):
    got.append(signum)
    raise KeyboardInterrupt
# A batch script's usual handling: SIGTERM (the scheduler's) stops the fit
# like Ctrl-C, which makes unmix.nmf save its checkpoint.
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
print("ready", file=sys.stderr, flush=True)
try:
    import numpy as np
    import unmix
    checkpoint, out, max_iter = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(1)
    X = rng.random((600, 8)) @ rng.random((8, 500)) + 0.01 * rng.random((600, 500))
    r = unmix.nmf(X, 8, solver="hals", tol=0, max_iter=max_iter, random_state=2,
                  checkpoint=checkpoint, checkpoint_every=max(1, max_iter // 6), resume=True,
                  callback=lambda info: print("iteration", info.iteration, flush=True))
    np.savez(out, W=r.W, H=r.H)
    print("done", file=sys.stderr, flush=True)
except KeyboardInterrupt:
    sys.exit(128 + (got[0] if got else signal.SIGINT))
'''


# ---------------------------------------------------------------------------
# Files and processes
# ---------------------------------------------------------------------------


def _tail(path: Path, size: int = 4096) -> str:
    """The end of a log that may still be growing."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _entries(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _snapshot(folder: Path) -> dict[str, int]:
    """Names and modification times, read while a run may be renaming
    them (os.walk skips a folder that vanishes)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            try:
                out[os.path.relpath(path, folder)] = os.stat(path).st_mtime_ns
            except OSError:
                pass
    return out


def _processes_naming(marker: str) -> dict[int, bytes]:
    """The processes whose command line contains ``marker`` (the trial's
    folder): the run and, under MPI, its ranks."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline and int(pid) != os.getpid():
            found[int(pid)] = cmdline
    return found


def _rank_pid(marker: str, rank: int) -> Optional[int]:
    for pid in _processes_naming(marker):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                    return pid
        except OSError:
            pass
    return None


def _kill_survivors(marker: str, grace: float) -> list[int]:
    """Waits ``grace`` seconds for the run's processes to end, then kills
    the ones left; returns those."""
    deadline = time.monotonic() + grace
    while _processes_naming(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sorted(_processes_naming(marker))
    _signal_all(left, signal.SIGKILL)
    return left


def _signal_all(pids: Any, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # it ended meanwhile
            pass


def _marker(folder: Path) -> str:
    """What names a trial's processes: its folder, as an argument's prefix."""
    return f"{folder}{os.sep}"


def _short(text: str, folder: Path) -> str:
    """The last error line of a log (else its last line), the trial's
    folder elided, for a table."""
    lines = [line.strip() for line in text.replace(str(folder), "DIR").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines
    return errors[-1][:160] if errors else "(no output)"


class Broken(Exception):
    """A front that cannot be tested: its uninterrupted runs fail."""


class Run:
    """One process of a front, logged to files outside the trial's folder."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.out, self.err = Path(f"{log}.out"), Path(f"{log}.err")
        self.start = time.monotonic()
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # A session of its own: a signal for it reaches nothing else, and
            # a hung run is removed with its whole group.
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV,
                                         start_new_session=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def wait(self, timeout: float) -> Optional[int]:
        """The exit status, or None after killing a run that hung."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            return None

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


# ---------------------------------------------------------------------------
# The fronts
# ---------------------------------------------------------------------------


class Front:
    """How one way of running unmix is started, resumed and judged."""

    name = ""
    label = ""
    checkpoints = True
    iterations = True  # prints a line per iteration
    progress = re.compile(r"^iteration (\d+)$", re.M)
    finished_line = r"^done$"

    def __init__(self, base: Path, max_iter: int) -> None:
        self.base = base / self.name
        self.base.mkdir(parents=True)
        self.max_iter = max_iter
        # Set by the reference run.
        self.reference = self.base / "reference"
        self.expected: dict[str, np.ndarray] = {}
        self.files: set[str] = set()

    def prepare(self) -> None:
        """Inputs shared by every run of the front."""

    def setup(self, folder: Path) -> None:
        """What the trial's folder holds before the run starts."""

    def command(self, folder: Path, rerun: bool) -> list[str]:
        raise NotImplementedError

    def factors(self, folder: Path) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def checkpoint_iteration(self, folder: Path) -> Optional[int]:
        return None

    def phase(self, run: Run, folder: Path, before: dict[str, int]) -> str:
        """Where the run is: "start" (nothing computed yet), "fit" or
        "output" (the last iteration done)."""
        done = self.progress.findall(_tail(run.out)) or self.progress.findall(run.stdout())
        if not done:
            return "start"
        return "output" if int(done[-1]) >= self.max_iter else "fit"

    def last_iteration(self, run: Run, tail: bool = False) -> int:
        text = _tail(run.out) if tail else run.stdout()
        return max((int(i) for i in self.progress.findall(text)), default=0)

    def folder_problem(self, folder: Path, completed: bool) -> Optional[tuple[str, str]]:
        """What is wrong with the output folder after a run, if anything:
        the reason and its detail."""
        return None

    def died_of(self, run: Run, status: Optional[int]) -> Optional[int]:
        """The signal that ended the run, if it died of one."""
        return -status if status is not None and status < 0 else None

    def interrupted(self, run: Run, status: int, target: Optional[str], sig: int) -> bool:
        """Whether the run stopped as documented for SIGINT and SIGTERM."""
        return status == 128 + sig

    def finished(self, run: Run) -> bool:
        """Whether the run said it had written its results."""
        return re.search(self.finished_line, run.stdout() + run.stderr(), re.M) is not None

    def signalled(self, status: int, target: Optional[str]) -> bool:
        """Whether the status is the launcher's own after it got the signal."""
        return False

    def before_handlers(self, run: Run) -> bool:
        """Whether the signal came before the run could install handlers."""
        return False

    def send(self, run: Run, folder: Path, signame: str, rng: random.Random) -> Optional[str]:
        """Sends the signal; returns what it was sent to when that is not
        simply the process started."""
        os.kill(run.proc.pid, getattr(signal, signame))
        return None


class PythonFront(Front):
    name = "python"
    label = "Python API"

    def prepare(self) -> None:
        (self.base / "driver.py").write_text(_DRIVER)

    def command(self, folder: Path, rerun: bool) -> list[str]:
        return [sys.executable, str(self.base / "driver.py"), str(folder / "run.npz"),
                str(folder / "result.npz"), str(self.max_iter)]

    def factors(self, folder: Path) -> dict[str, np.ndarray]:
        with np.load(folder / "result.npz") as z:
            return {"W": z["W"], "H": z["H"]}

    def checkpoint_iteration(self, folder: Path) -> Optional[int]:
        try:
            with np.load(folder / "run.npz", allow_pickle=False) as z:
                return int(json.loads(str(z["meta"]))["iteration"])
        except (OSError, ValueError, KeyError):
            return None

    def before_handlers(self, run: Run) -> bool:
        return "ready" not in run.stderr()


class ExeFront(Front):
    name = "exe"
    label = "unmix-nmf, serial"
    progress = re.compile(r"^\s+(\d+)\s+\S+e[-+]\d+\s+\S+e[-+]\d+\s+[\d.]+\s*$", re.M)
    finished_line = r"^wrote \S+_W\.npy"

    def __init__(self, base: Path, max_iter: int, exe: str) -> None:
        super().__init__(base, max_iter)
        self.exe = exe

    def prefix(self) -> list[str]:
        return []

    def command(self, folder: Path, rerun: bool) -> list[str]:
        resume = ["--resume"] if rerun and (folder / "run.ckpt" / "state").exists() else []
        return [*self.prefix(), self.exe, "--generate", "600x500", "-k", "8", "--solver", "hals",
                "--tol", "0", "--max-iter", str(self.max_iter),
                "--checkpoint-every", str(max(1, self.max_iter // 6)), "--print-every", "1",
                "-o", str(folder / "run"), *resume]

    def factors(self, folder: Path) -> dict[str, np.ndarray]:
        return {f: np.load(folder / f"run_{f}.npy") for f in ("W", "H")}

    def checkpoint_iteration(self, folder: Path) -> Optional[int]:
        try:
            found = re.search(r"^iteration (\d+)$", (folder / "run.ckpt" / "state").read_text(), re.M)
        except OSError:
            return None
        return int(found.group(1)) if found else None


class MpiFront(ExeFront):
    name = "mpi"
    label = f"unmix-nmf, mpirun -np {RANKS}"

    def __init__(self, base: Path, max_iter: int, exe: str, mpirun: str) -> None:
        super().__init__(base, max_iter, exe)
        self.mpirun = mpirun

    def prefix(self) -> list[str]:
        # Open MPI's default odls_base_sigkill_timeout (1 s) on purpose: a
        # larger one also delays the SIGTERM mpirun passes on to the ranks
        # (Open MPI 4.1: by the timeout; with 30 s the runs here just finish).
        return [self.mpirun, "-np", str(RANKS), "--oversubscribe"]

    def signalled(self, status: int, target: Optional[str]) -> bool:
        # Signalled itself, mpirun exits with 1 whatever the ranks did.
        return target == "mpirun" and status == 1

    def interrupted(self, run: Run, status: int, target: Optional[str], sig: int) -> bool:
        # mpirun passes SIGINT on as SIGTERM; the ranks' message says that
        # they stopped as documented.
        return super().interrupted(run, status, target, sig) or (
            self.signalled(status, target)
            and re.search(r"^unmix-nmf: interrupted by SIG\w+ after iteration \d+; its state is saved",
                          run.stderr(), re.M) is not None)

    def died_of(self, run: Run, status: Optional[int]) -> Optional[int]:
        # mpirun exits with 128 + N when a rank dies of signal N, which looks
        # like a clean exit after SIGTERM or SIGINT; its message tells. 137
        # can only be a death: SIGKILL cannot be caught.
        found = re.search(r"exited on signal (\d+)", run.stderr())
        if found:
            return int(found.group(1))
        return signal.SIGKILL if status == 128 + signal.SIGKILL else super().died_of(run, status)

    def send(self, run: Run, folder: Path, signame: str, rng: random.Random) -> str:
        """To mpirun (which forwards SIGINT and SIGTERM; SIGKILL, as a
        scheduler sends it, goes to every process of the job) or to one
        rank."""
        sig = getattr(signal, signame)
        if rng.random() < 0.5:
            rank = rng.randrange(RANKS)
            pid = _rank_pid(_marker(folder), rank)
            if pid is not None:
                os.kill(pid, sig)
                return f"rank {rank}"
        if signame == "SIGKILL":
            _signal_all(_processes_naming(_marker(folder)), sig)
            return "job"
        os.kill(run.proc.pid, sig)
        return "mpirun"


class CliFront(Front):
    """``unmix run`` into a folder that holds the result of an older run
    (k = 3): after a kill the folder must be wholly old or wholly new."""

    name = "cli"
    label = "unmix run"
    checkpoints = False
    iterations = False
    finished_line = r"^\s+wrote \d+ files to "

    def prepare(self) -> None:
        rng = np.random.default_rng(0)
        fractions = rng.dirichlet(np.full(4, 0.5), size=(64, 64))
        spectra = 50 * rng.random((4, 128)) ** 3
        np.save(self.base / "cube.npy", rng.poisson(fractions @ spectra).astype(np.float64))
        old = Run(self._args(self.base / "old", 3), self.base / "old")
        if old.wait(300) != 0:
            raise Broken(f"the older run failed (status {old.proc.returncode}): "
                         f"{_short(old.stderr(), self.base)}")

    def _args(self, out: Path, k: int) -> list[str]:
        return [sys.executable, "-m", "unmix", "run", str(self.base / "cube.npy"), "-k", str(k),
                "--seed", "0", "-o", str(out)]

    def setup(self, folder: Path) -> None:
        shutil.copytree(self.base / "old", folder / "out")

    def command(self, folder: Path, rerun: bool) -> list[str]:
        return self._args(folder / "out", 4)

    def factors(self, folder: Path) -> dict[str, np.ndarray]:
        return {f: np.load(folder / "out" / f"{f}.npy") for f in ("W", "H")}

    def phase(self, run: Run, folder: Path, before: dict[str, int]) -> str:
        if _snapshot(folder) != before:
            return "output"
        return "fit" if run.err.stat().st_size else "start"  # the progress bar started

    def folder_problem(self, folder: Path, completed: bool) -> Optional[tuple[str, str]]:
        which = self.whose(folder / "out")
        if which == "new" or (which == "old" and not completed):
            return None
        if which == "old":
            return "the old folder after exit status 0", "the new result was not written"
        reason, _, detail = which.partition(": ")
        return reason, detail

    def whose(self, out: Path) -> str:
        """"old", "new", or what is wrong: every file must be one run's
        (the HDF5 file and the report, which hold times, by their contents)."""
        refs = {"old": self.base / "old", "new": self.reference / "out"}
        names = _entries(out) if out.is_dir() else set()
        match = {which: {n for n in names if (ref / n).is_file() and self._same(out / n, ref)}
                 for which, ref in refs.items()}
        for which, ref in refs.items():
            if names == _entries(ref) == match[which]:
                return which
        old, new = match["old"] - match["new"], match["new"] - match["old"]
        if old and new:
            return (f"mixed output folder: {', '.join(sorted(new))} of the new run, "
                    f"{', '.join(sorted(old))} of the old")
        neither = names - match["old"] - match["new"]
        return (f"incomplete output folder: {len(names)} files"
                + (f", {', '.join(sorted(neither))} of neither run" if neither else ""))

    @staticmethod
    def _same(path: Path, ref: Path) -> bool:
        data = path.read_bytes()
        if data == (ref / path.name).read_bytes():
            return True
        if path.suffix == ".h5":
            return np.load(ref / "H.npy").tobytes() in data
        if path.suffix == ".html":
            return base64.b64encode((ref / "spectra.png").read_bytes()) in data
        return False


# ---------------------------------------------------------------------------
# Reference runs and trials
# ---------------------------------------------------------------------------


def reference(front: Front, timeout: float) -> dict[str, Any]:
    """Two uninterrupted runs, which must give the same factors (else no
    comparison would mean anything). The last gives the result and its
    files; the faster (the first also warms the caches; the machine may be
    shared) gives the duration and when the phases began, the distribution
    of the kill times."""
    timings = []
    for folder in (front.base / "warm-up", front.reference):
        folder.mkdir()
        before = _snapshot(folder)
        run = Run(front.command(folder, rerun=False), folder)
        began: dict[str, float] = {}
        while run.proc.poll() is None and run.elapsed() < timeout:
            began.setdefault(front.phase(run, folder, before), run.elapsed())
            time.sleep(0.005)
        status = run.wait(timeout)
        if status != 0:
            raise Broken(f"the reference run failed (status {status}): "
                         f"{_short(run.stderr(), folder)}")
        timings.append((run.elapsed(), began))
    front.expected = front.factors(front.reference)
    front.files = _entries(front.reference)
    if _difference(front.factors(front.base / "warm-up"), front.expected) > RTOL:
        raise Broken("two uninterrupted runs gave different factors")
    seconds, began = min(timings, key=lambda t: t[0])
    fit = began.get("fit", began.get("output", seconds)) / seconds
    output = began.get("output", seconds) / seconds
    command = [arg.replace(str(front.base.parent), "WORK")
               for arg in front.command(front.reference, rerun=False)]
    return {"command": command, "seconds": round(seconds, 3),
            "phases": {"start": [0.0, fit], "fit": [fit, output], "output": [output, 1.0]}}


def the_moment(rng: random.Random, ref: dict[str, Any]) -> float:
    """Where in the run the signal goes, as a fraction of the reference run:
    half the trials anywhere (or a little after the end), half in the
    output phase, which is short but where files are replaced."""
    if rng.random() < 0.5:
        return rng.uniform(0.0, 1.05)
    lo, hi = ref["phases"]["output"]
    return rng.uniform(lo, hi + 0.1 * (hi - lo))


def wait_for_the_moment(front: Front, run: Run, folder: Path, before: dict[str, int],
                        moment: float, ref: dict[str, Any]) -> None:
    """Waits for that point of this run, located by the run's own progress
    where it can be (runs on a shared machine vary in speed): in the fit by
    the iteration printed, in the output phase by the time since the last
    iteration; in the start-up, and for unmix run's fit, by the clock."""
    seconds, (fit, output) = ref["seconds"], ref["phases"]["fit"]

    def wait(until: Any) -> None:
        while run.proc.poll() is None and not until():
            time.sleep(0.002)

    if moment >= output:
        wait(lambda: front.phase(run, folder, before) == "output")
        since = run.elapsed()
        wait(lambda: run.elapsed() >= since + (moment - output) * seconds)
    elif moment >= fit and front.iterations:
        iteration = max(1, round((moment - fit) / (output - fit) * front.max_iter))
        wait(lambda: front.last_iteration(run, tail=True) >= iteration)
    else:
        wait(lambda: run.elapsed() >= moment * seconds)


def _difference(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    worst = 0.0
    for name, ref in expected.items():
        if got[name].shape != ref.shape:
            return float("inf")
        scale = float(np.max(np.abs(ref))) or 1.0
        worst = max(worst, float(np.max(np.abs(got[name] - ref))) / scale)
    return worst


def judge(front: Front, run: Run, status: Optional[int], signame: str,
          target: Optional[str]) -> tuple[str, Optional[str]]:
    """How the signalled run ended, and what is wrong with that, if anything."""
    sig = getattr(signal, signame)
    died = front.died_of(run, status)
    if status is None:  # hung: already a failure
        return FAILED, None
    if status == 0:
        return COMPLETED, None
    if front.finished(run) and (died == sig or front.signalled(status, target)):
        # The results were written; the signal only cut the teardown (Python
        # restores the default handlers as it exits; mpirun, signalled, exits 1).
        return COMPLETED, None
    if died is not None:
        if died == sig and (signame == "SIGKILL" or front.before_handlers(run)):
            return KILLED, None
        return FAILED, (f"died of {signal.Signals(died).name} after {signame} "
                        f"(expected exit status {128 + sig})")
    if front.interrupted(run, status, target, sig):
        return INTERRUPTED, None
    return FAILED, f"exit status {status} after {signame} (expected {128 + sig})"


def trial(front: Front, signame: str, index: int, rng: random.Random, ref: dict[str, Any],
          timeout: float, keep: bool) -> dict[str, Any]:
    folder = front.base / f"{signame}-{index}"
    folder.mkdir()
    front.setup(folder)
    record: dict[str, Any] = {"front": front.name, "signal": signame, "trial": index}
    failures: list[dict[str, str]] = []

    def fail(reason: str, detail: str) -> None:
        failures.append({"reason": reason, "detail": detail})

    def finish(run: Run, what: str) -> Optional[int]:
        """The exit status; a hang or a process left behind is a failure."""
        status = run.wait(timeout)
        left = _kill_survivors(_marker(folder), grace=5.0)
        if status is None:
            fail(f"{what} hung", f"no exit within {timeout:.0f} s of its start")
        elif left:
            fail(f"processes outlived {what}", f"pids {left} still running 5 s after its exit")
        return status

    # The run, and the signal at its moment.
    before = _snapshot(folder)
    run = Run(front.command(folder, rerun=False), folder.with_name(f"{folder.name}.first"))
    record["kill_fraction"] = round(the_moment(rng, ref), 4)
    wait_for_the_moment(front, run, folder, before, record["kill_fraction"], ref)
    record["seconds"] = round(run.elapsed(), 3)
    if run.proc.poll() is None:
        # The signal first: the output phase may last only milliseconds.
        target = front.send(run, folder, signame, rng)
        record["phase"] = front.phase(run, folder, before)
        if target:
            record["target"] = target
    else:
        record["phase"] = "after the run"
    status = record["status"] = finish(run, "the run")
    outcome, problem = judge(front, run, status, signame, record.get("target"))
    if problem:
        fail(problem, _short(run.stderr(), folder))
    interrupted = outcome == INTERRUPTED
    if front.checkpoints:
        done, saved = front.last_iteration(run), front.checkpoint_iteration(folder)
        record["last_iteration"], record["checkpoint_iteration"] = done, saved
        if interrupted and done and (saved is None or saved < done):
            fail("the checkpoint was not saved at the interrupt",
                 f"it holds iteration {saved}; the run had printed iteration {done}")
    problem = front.folder_problem(folder, completed=outcome == COMPLETED)
    if problem:
        fail(f"{problem[0]} after the kill", problem[1])

    # The rerun: it resumes where a checkpoint allows.
    rerun = Run(front.command(folder, rerun=True), folder.with_name(f"{folder.name}.rerun"))
    again = record["rerun_status"] = finish(rerun, "the rerun")
    if again is not None and again != 0:
        fail(f"the rerun exited {again}", _short(rerun.stderr(), folder))
    elif again == 0:
        try:
            diff = record["max_rel_diff"] = _difference(front.factors(folder), front.expected)
        except (OSError, ValueError, KeyError) as err:
            fail("no result after the rerun", f"{type(err).__name__}: {err}")
        else:
            if not diff <= RTOL:
                fail("the result differs from the uninterrupted run",
                     f"largest difference {diff:.3g} of the largest entry")
        extra, missing = _entries(folder) - front.files, front.files - _entries(folder)
        if extra:
            what = "temporary files" if any(".tmp" in n for n in extra) else "files"
            fail(f"stale {what} left after the rerun", ", ".join(sorted(extra)[:6]))
        if missing:
            fail("files missing after the rerun", ", ".join(sorted(missing)[:6]))
        problem = front.folder_problem(folder, completed=True)
        if problem:
            fail(f"{problem[0]} after the rerun", problem[1])

    record["failures"] = failures
    record["outcome"] = FAILED if failures else outcome
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return record


# ---------------------------------------------------------------------------
# The table and the figure (docs/make_figures.py draws them from the JSON)
# ---------------------------------------------------------------------------


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    """Front, signal, the count of each outcome, and the failures' reasons."""
    rows = [["Front", "Signal", "Completed", "Killed", "Interrupted", "Failed",
             "Why it failed (trials)"]]
    labels = {name: spec["label"] for name, spec in data["fronts"].items()}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for t in data["trials"]:
        cells[t["front"], t["signal"]].append(t)
    for (front, signame), trials in cells.items():
        counts = collections.Counter(t["outcome"] for t in trials)
        reasons = collections.Counter(f["reason"] for t in trials for f in t["failures"])
        why = "; ".join(f"{reason} ({n})" for reason, n in reasons.most_common())
        rows.append([labels[front], signame, *(str(counts[o]) for o in OUTCOMES), why or "none"])
    for front in data.get("broken", {}).values():
        rows.append([front["label"], "all", "", "", "", "", front["reason"]])
    return rows


def table_text(data: dict[str, Any]) -> str:
    rows = table_rows(data)
    width = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join(("  ".join(cell.ljust(w) for cell, w in zip(row, width))
                      + ("" if row[6] == "none" else "  " + row[6])).rstrip() for row in rows)


def table_rst(data: dict[str, Any]) -> str:
    """The table as an RST list-table, for docs/reliability.rst."""
    rows = table_rows(data)
    git = data["git"]
    changed = f" with {git['changed_files']} files changed" if git["changed_files"] else ""
    skipped = "".join(f" The {name} front was skipped: {why}." for name, why in data["skipped"].items())
    out = [".. Generated by docs/make_figures.py from docs/fault_matrix.json.", "",
           f"Run of {data['date'][:10]} (unmix {data['unmix']}, commit {git['commit']}{changed}; "
           f"{data['cpus']} cores): ``{' '.join(data['command'])}``, {len(data['trials'])} trials "
           f"in {data['seconds']:.0f} s.{skipped}", "",
           ".. list-table::", "   :header-rows: 1", "   :widths: 18 9 9 9 9 9 37", ""]
    for row in rows:
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(out) + "\n"


def draw(data: dict[str, Any], fig: Any) -> None:
    """Stacked bars of the outcomes against the moment of the signal, one
    panel per front and signal, over the reference run's phases."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fronts = list(data["fronts"])
    signals = [s for s in SIGNALS if any(t["signal"] == s for t in data["trials"])]
    axes = np.atleast_2d(fig.subplots(len(fronts), len(signals), sharex=True, sharey=True,
                                      squeeze=False))
    edges = np.linspace(0.0, 1.1, 23)
    shade = {"start": "0.93", "fit": "white", "output": "#fbe9c9"}
    for i, front in enumerate(fronts):
        spec = data["fronts"][front]
        for j, signame in enumerate(signals):
            ax = axes[i, j]
            for phase, (lo, hi) in spec["reference"]["phases"].items():
                ax.axvspan(lo, hi, color=shade[phase], zorder=0, lw=0)
            trials = [t for t in data["trials"] if t["front"] == front and t["signal"] == signame]
            bottom = np.zeros(len(edges) - 1)
            for outcome in OUTCOMES:
                x = [min(t["kill_fraction"], 1.099) for t in trials if t["outcome"] == outcome]
                counts, _ = np.histogram(x, bins=edges)
                ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", bottom=bottom,
                       color=COLOURS[outcome], edgecolor="white", lw=0.5, label=outcome)
                bottom += counts
            failed = sum(t["outcome"] == FAILED for t in trials)
            ax.set_title(f"{spec['label']}, {signame}: {failed} of {len(trials)} failed",
                         fontsize="small")
            if i == len(fronts) - 1:
                ax.set_xlabel("moment of the signal (fraction of the reference run)", fontsize="small")
            if j == 0:
                ax.set_ylabel("trials", fontsize="small")
            ax.tick_params(labelsize="small")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, _ = axes[0, 0].get_legend_handles_labels()
    handles += [Patch(color=shade["start"], label="startup"),
                Patch(color=shade["output"], label="output phase (reference run)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize="small")


def figure_size(data: dict[str, Any]) -> tuple[float, float]:
    return 11.0, 1.0 + 2.1 * len(data["fronts"])


def save_figure(data: dict[str, Any], path: Path, dpi: int = 90) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figure_size(data), layout="constrained")
    draw(data, fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def _find_executable() -> Optional[str]:
    """$UNMIX_NMF, else the newest unmix-nmf built with MPI among the one
    beside this Python, on PATH and in build/*/cpp/apps (not a sanitizer
    build): the one the engineers last rebuilt."""
    if os.environ.get("UNMIX_NMF"):
        return os.environ["UNMIX_NMF"]
    found = [Path(sys.executable).with_name("unmix-nmf"), *ROOT.glob("build/*/cpp/apps/unmix-nmf")]
    if shutil.which("unmix-nmf"):
        found.append(Path(shutil.which("unmix-nmf")))
    found = [p for p in found if p.is_file() and "asan" not in str(p)]
    found.sort(key=lambda p: -p.stat().st_mtime)
    for exe in found:
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=ENV)
        if "with MPI" in version.stdout:
            return str(exe)
    return str(found[0]) if found else None


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return res.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "changed_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines())}


def _version() -> str:
    res = subprocess.run([sys.executable, "-c", "import unmix; print(unmix.__version__)"],
                         capture_output=True, text=True, env=ENV)
    return res.stdout.strip() or "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="\n\n".join(__doc__.split("\n\n")[:2]),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    p.add_argument("--fronts", default="python,cli,exe,mpi",
                   help="comma-separated: python, cli, exe, mpi (default: all)")
    p.add_argument("--signals", default=",".join(SIGNALS),
                   help="comma-separated: SIGKILL, SIGTERM, SIGINT (default: all)")
    p.add_argument("--trials", type=int, default=4, help="trials per front and signal (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default: 0)")
    p.add_argument("--max-iter", type=int, default=3000,
                   help="iterations of the python, exe and mpi runs (default 3000: 1-2 s each); "
                        "unmix run fits to convergence")
    p.add_argument("--exe", default=None, help="the unmix-nmf to test (default: $UNMIX_NMF, "
                   "else the newest built with MPI)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="the JSON of every trial (default: docs/fault_matrix.json)")
    p.add_argument("--figure", type=Path, default=DEFAULT_FIGURE,
                   help="the PNG (default: docs/_generated/fault_matrix.png)")
    p.add_argument("--keep", action="store_true", help="keep the runs' folders and logs")
    p.add_argument("--plot", type=Path, metavar="JSON",
                   help="only draw the figure and print the table of an earlier run")
    return p


def _fronts(args: argparse.Namespace, base: Path) -> tuple[list[Front], dict[str, str]]:
    exe = args.exe or _find_executable()
    mpirun = shutil.which("mpirun")
    has_mpi = exe is not None and "with MPI" in subprocess.run(
        [exe, "--version"], capture_output=True, text=True, env=ENV).stdout
    makers = {"python": lambda: PythonFront(base, args.max_iter),
              "cli": lambda: CliFront(base, args.max_iter),
              "exe": lambda: ExeFront(base, args.max_iter, exe),
              "mpi": lambda: MpiFront(base, args.max_iter, exe, mpirun)}
    missing = {"exe": None if exe else "unmix-nmf not found (set UNMIX_NMF or --exe)",
               "mpi": (None if exe and mpirun and has_mpi else
                       "unmix-nmf not found" if not exe else "mpirun not found" if not mpirun
                       else f"{exe} was built without MPI")}
    fronts, skipped = [], {}
    for name in args.fronts.split(","):
        if name not in makers:
            raise SystemExit(f"fault_matrix: unknown front {name!r}: expected one of {sorted(makers)}")
        if missing.get(name):
            skipped[name] = missing[name]
            print(f"fault_matrix: skipping {name}: {missing[name]}", file=sys.stderr)
        else:
            fronts.append(makers[name]())
    return fronts, skipped


def _report(data: dict[str, Any], figure: Path) -> int:
    save_figure(data, figure)
    print(table_text(data))
    print(f"\nfigure: {figure}")
    failed = [t for t in data["trials"] if t["outcome"] == FAILED]
    for t in failed:
        for f in t["failures"]:
            print(f"FAILED {t['front']} {t['signal']} #{t['trial']} (signal at "
                  f"{t['kill_fraction']:.2f} of the run, {t['phase']}"
                  f"{', to ' + t['target'] if t.get('target') else ''}): {f['reason']}: {f['detail']}")
    for front in data.get("broken", {}).values():
        print(f"FAILED {front['label']}: {front['reason']}")
    return 1 if failed or data.get("broken") else 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.plot:
        return _report(json.loads(args.plot.read_text()), args.figure)
    signals = args.signals.split(",")
    unknown = set(signals) - set(SIGNALS)
    if unknown:
        raise SystemExit(f"fault_matrix: unknown signals {sorted(unknown)}: expected {SIGNALS}")
    base = Path(tempfile.mkdtemp(prefix="fault_matrix-"))
    rng = random.Random(args.seed)
    data: dict[str, Any] = {
        "command": ["tools/fault_matrix.py", *(argv if argv is not None else sys.argv[1:])],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "unmix": _version(), "git": _git(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "fronts": {}, "skipped": {}, "broken": {},
        "trials": []}
    started = time.monotonic()
    try:
        fronts, data["skipped"] = _fronts(args, base)
        built = {f.exe: os.stat(f.exe).st_mtime for f in fronts if isinstance(f, ExeFront)}
        for front in fronts:
            try:
                front.prepare()
                ref = reference(front, timeout=300)
            except Broken as err:
                data["broken"][front.name] = {"label": front.label, "reason": str(err)}
                print(f"{front.label}: {err}", file=sys.stderr)
                continue
            timeout = max(30.0, 10 * ref["seconds"])
            data["fronts"][front.name] = {"label": front.label, "reference": ref}
            if isinstance(front, ExeFront):
                data["fronts"][front.name]["executable"] = front.exe
            print(f"{front.label}: reference run {ref['seconds']:.2f} s", file=sys.stderr)
            for signame in signals:
                for i in range(args.trials):
                    changed = [exe for exe, mtime in built.items() if os.stat(exe).st_mtime != mtime]
                    if changed:  # rebuilt under us: the trials would not test what the reference ran
                        raise SystemExit(f"fault_matrix: {changed[0]} changed during the run")
                    t = trial(front, signame, i, rng, ref, timeout, args.keep)
                    data["trials"].append(t)
                    why = "; ".join(f["reason"] for f in t["failures"])
                    print(f"  {signame} #{i} at {t['kill_fraction']:.2f} ({t['phase']}): "
                          f"{t['outcome']}{': ' + why if why else ''}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"fault_matrix: runs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    data["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"results: {args.out} ({len(data['trials'])} trials in {data['seconds']:.0f} s)")
    return _report(data, args.figure)


if __name__ == "__main__":
    sys.exit(main())
