"""The output folder of ``unmix run`` under faults: Ctrl-C or SIGTERM while
the result is written, a full disk, the leftovers of a killed run, a folder
holding other files. The new result replaces the old one whole, or not at
all."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import test_cli
from test_cli import run_main
from unmix import cli, report

files, small = test_cli.files, test_cli.small  # the fixtures: a small image as .npy

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")


def tree(folder):
    """Every file under folder (hidden ones too), by relative name, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def siblings(out):
    """The other entries of ``out``'s folder that bear its name (leftovers)."""
    return sorted(p.name for p in out.parent.iterdir() if out.name in p.name and p != out)


def run_args(files, out, k=3):
    return ["run", files / "cube.npy", "-k", k, "--seed", 0, "--quiet", "-o", out]


@pytest.fixture(scope="module")
def old(files, tmp_path_factory):
    """The result of an earlier run (k = 2), to be replaced."""
    out = tmp_path_factory.mktemp("old") / "out"
    assert cli.main([str(a) for a in run_args(files, out, k=2)]) == 0
    return tree(out)


def earlier_result(old, folder):
    for name, data in old.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def guard():
    """A SIGTERM that the command does not handle fails the test instead of
    ending pytest."""
    def reached(signum, frame):
        raise AssertionError("SIGTERM reached the test: the command did not handle it")

    previous = signal.signal(signal.SIGTERM, reached)
    yield reached
    signal.signal(signal.SIGTERM, previous)


def write_hook(monkeypatch, name, action):
    """Runs ``action()`` when the writer of the result starts on the file ``name``."""
    real = report.atomic_write

    def atomic_write(path, write):
        if path.name == name:
            action()
        return real(path, write)

    monkeypatch.setattr(report, "atomic_write", atomic_write)


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "W.npy"),
                                           (signal.SIGTERM, "unmixing.h5"),
                                           (signal.SIGINT, "report.html")])
def test_a_signal_while_writing_leaves_the_earlier_result(files, old, tmp_path, monkeypatch,
                                                          capsys, guard, signum, name):
    out = earlier_result(old, tmp_path / "out")
    write_hook(monkeypatch, name, lambda: os.kill(os.getpid(), signum))
    code, _, err = run_main(capsys, *run_args(files, out))
    assert code == 128 + signum
    what = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert err.strip().splitlines() == [
        f"unmix run: {what}: the output folder {str(out)!r} was left as it was"]
    assert tree(out) == old
    assert siblings(out) == []
    assert signal.getsignal(signal.SIGTERM) is guard  # put back


def test_sigterm_stops_the_fit_as_ctrl_c_does(files, tmp_path, monkeypatch, capsys, guard):
    from unmix import workflow

    real = workflow.nmf

    def nmf(*args, **kwargs):  # SIGTERM as the fit starts
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "nmf", nmf)
    code, _, err = run_main(capsys, *run_args(files, tmp_path / "out"))
    assert code == 143 and err.strip() == "unmix run: terminated (SIGTERM)"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_writing_a_first_result_creates_nothing(files, tmp_path, monkeypatch,
                                                             capsys):
    out = tmp_path / "out"
    write_hook(monkeypatch, "spectra.png", lambda: os.kill(os.getpid(), signal.SIGINT))
    code, _, err = run_main(capsys, *run_args(files, out))
    assert code == cli.EXIT_INTERRUPTED and "was not created" in err
    assert not out.exists() and siblings(out) == []


def test_ctrl_c_once_the_result_is_in_place_keeps_it(files, old, tmp_path, monkeypatch,
                                                     capsys):
    """After the swap Ctrl-C is noted, not raised: the summary is still
    printed, the exit code is 130, and the folder holds the new result."""
    out = earlier_result(old, tmp_path / "out")
    real = cli._print_files

    def print_files(*args):
        os.kill(os.getpid(), signal.SIGINT)
        real(*args)

    monkeypatch.setattr(cli, "_print_files", print_files)
    code, printed, err = run_main(capsys, *run_args(files, out))
    assert code == cli.EXIT_INTERRUPTED
    assert err.strip() == ("unmix run: interrupted after the command had finished: its output "
                           "is complete")
    shown = [name for name in old if not name.startswith(".")]  # the same files as before
    assert f"wrote {len(shown)} files" in printed
    new = tree(out)
    assert new != old and sorted(new) == sorted(old)  # k = 3 instead of 2, the same files
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_full_disk_names_the_file_and_leaves_the_earlier_result(files, old, tmp_path,
                                                                  monkeypatch, capsys):
    out = earlier_result(old, tmp_path / "out")
    real = report.atomic_write

    def atomic_write(path, write):
        def full(tmp):  # as h5py reports it: an errno, no file name
            tmp.write_bytes(b"\x89HDF\r\n")
            raise OSError(errno.ENOSPC, "Unable to synchronously create file (file write failed)")

        return real(path, full if path.name == "unmixing.h5" else write)

    monkeypatch.setattr(report, "atomic_write", atomic_write)
    code, _, err = run_main(capsys, *run_args(files, out))
    assert code == cli.EXIT_FAILED
    assert err.strip().splitlines() == [
        f"unmix run: error: cannot write unmixing.h5 to the output folder "
        f"{str(out)!r}: the disk is full (No space left on device); the folder was "
        "left as it was"]
    assert tree(out) == old
    assert siblings(out) == []


def test_a_folder_with_other_files_is_refused_before_the_fit(files, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run_main(capsys, *run_args(files, out))
    assert code == cli.EXIT_USAGE
    assert "holds files no unmix command wrote ('notes.txt')" in err
    assert tree(out) == {"notes.txt": b"keep me"}


# A child that runs ``unmix run`` and stops in the middle of writing
# unmixing.h5, until it is killed.
PAUSED_CHILD = textwrap.dedent("""
    import sys, time
    from unmix import cli, report
    real = report.atomic_write
    def atomic_write(path, write):
        if path.name == "unmixing.h5":
            print("writing", flush=True)
            time.sleep(60)
        return real(path, write)
    report.atomic_write = atomic_write
    cli.main(sys.argv[1:])
""")


def test_kill_9_while_writing_then_the_next_run_clears_up(files, old, tmp_path):
    out = earlier_result(old, tmp_path / "out")
    child = subprocess.Popen([sys.executable, "-c", PAUSED_CHILD,
                              *map(str, run_args(files, out))], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
    finally:
        child.kill()
        child.communicate()
    assert tree(out) == old
    assert len(siblings(out)) == 1  # the new result, half written
    assert cli.main([str(a) for a in run_args(files, out)]) == 0
    assert siblings(out) == []
    assert sorted(tree(out)) == sorted(old) and tree(out) != old


def test_an_earlier_result_moved_aside_by_a_killed_run_comes_back(old, tmp_path):
    """Killed between its two renames, a run leaves the output folder
    missing and the earlier result beside it: it is put back."""
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    earlier_result(old, tmp_path / f".out.old-{dead}-0123abcd")
    earlier_result(old, tmp_path / f".out.new-{dead}-4567cdef")
    assert cli._output(out) == out
    assert tree(out) == old and siblings(out) == []


def test_a_signal_after_the_command_returned_does_not_kill_the_process(files, tmp_path):
    """Python restores the default action of SIGINT while it shuts down: a
    Ctrl-C then would end the process by the signal (exit status -2), a
    SIGTERM too (-15)."""
    code = textwrap.dedent("""
        import os, signal, sys
        from unmix import cli
        code = cli.main()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        sys.exit(code)
    """)
    argv = ["pca", files / "cube.npy", "-k", 3, "--quiet", "-o", tmp_path / "o"]
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "wrote 9 files" in proc.stdout

