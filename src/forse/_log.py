"""What the command line prints on stderr: its own messages and progress, not TensorFlow's.

TensorFlow 2.21 writes start-up lines (absl, oneDNN, "failed call to cuInit" on a CPU machine)
from C++ straight to file descriptor 2, several of them whatever ``TF_CPP_MIN_LOG_LEVEL`` says,
so ``quiet_native_stderr`` points descriptor 2 at a temporary file for the length of a command
while Python's ``sys.stderr`` keeps the terminal; at the end the native lines that are not
TensorFlow's are passed on (a hard crash's native message would stay in the file). ``--verbose`` or
``FORSE_LOG_LEVEL=INFO`` (or ``DEBUG``) lets everything through.

``LineBar`` is the progress bar for logs: when stderr is not a terminal it prints one plain line
every ``STEP_PERCENT`` instead of a carriage-return animation.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import time

from tqdm import tqdm

LEVEL_VAR = "FORSE_LOG_LEVEL"
STEP_PERCENT = 5

# absl/glog lines ("E0000 00:00:1796299873.484479   17539 cuda_platform.cc:52] ..."), the
# banner absl prints before its logging is initialised, the CPU-features line's continuation
_NATIVE_NOISE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
                           rb"|WARNING: All log messages before absl::InitializeLog\(\)"
                           rb"|To enable the following instructions: .*TensorFlow)")


def verbose_requested(flag=False) -> bool:
    return bool(flag) or os.environ.get(LEVEL_VAR, "").strip().upper() in ("INFO", "DEBUG")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold native (C/C++) writes to stderr until the block ends, then pass on the lines that
    are not TensorFlow's. A temporary file, not a pipe: a writer can never block on it."""
    sys.stderr.flush()
    saved = os.dup(2)
    old = sys.stderr
    try:  # Python's own stderr keeps the terminal; one that is not fd 2 (pytest, Jupyter) stays
        own = open(saved, "w", buffering=1, encoding=old.encoding or "utf-8",
                   errors="backslashreplace", closefd=False) if old.fileno() == 2 else old
    except (AttributeError, OSError, ValueError):
        own = old
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        sys.stderr = own
        try:
            yield
        finally:
            own.flush()
            sys.stderr = old
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held if not _NATIVE_NOISE.match(line)]
            if kept:
                old.flush()
                os.write(2, b"".join(kept))


@contextlib.contextmanager
def cli_output(verbose=False):
    """The command line's stderr policy for one command (see the module docstring)."""
    if verbose_requested(verbose):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        with line_progress():
            yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("absl", "tensorflow", "keras"):  # their Python-side loggers
        logging.getLogger(name).setLevel(logging.ERROR)
    with quiet_native_stderr(), line_progress():
        yield


class LineBar(tqdm):
    """A tqdm bar that, on a stream that is not a terminal, prints a plain line (no bar, no
    carriage return) each time it passes another ``STEP_PERCENT`` of its total, and at the end."""

    def __init__(self, *args, **kwargs):
        stream = kwargs.get("file") or sys.stderr
        self._lines = not (hasattr(stream, "isatty") and stream.isatty())
        self._printed = None  # the last step printed
        if self._lines:  # look at every update: display() prints only when a step is passed
            kwargs.setdefault("mininterval", 0)
            kwargs.setdefault("miniters", 1)
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if not self._lines:
            return super().display(msg, pos)
        if msg == "":  # tqdm clearing its bar: nothing to clear in a log
            return False
        step = int(100 * self.n / self.total) // STEP_PERCENT if self.total else self.n
        if step != self._printed:
            self._printed = step
            self.fp.write(self.format_meter(**{**self.format_dict, "ncols": 0}).strip() + "\n")
            self.fp.flush()
        return True

    def close(self):
        if self._lines and not self.disable:
            self.display()  # the last line, unless its step was printed already
            self.leave = False  # tqdm would add an empty line
        super().close()


@contextlib.contextmanager
def line_progress():
    """Bars made with ``tqdm.auto.tqdm`` during the block are ``LineBar``s when stderr is not a
    terminal (the package's bars all come from there, so the CLI sets this in one place)."""
    import tqdm.auto

    if sys.stderr.isatty():
        yield
        return
    old = tqdm.auto.tqdm
    tqdm.auto.tqdm = LineBar
    try:
        yield
    finally:
        tqdm.auto.tqdm = old


def peak_rss_gb():
    """The process's peak resident memory so far (Linux VmHWM), GB; NaN where unknown."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 2**20
    except (OSError, StopIteration, ValueError):
        return float("nan")


class Timings(dict):
    """Seconds spent per stage, accumulated; ``with timings("infer"): ...``. ``peaks`` holds,
    for each stage during which the process's peak memory rose, the peak it rose to (GB): the
    stage holding the run's peak is the one with the largest."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.peaks = {}
        self._tick = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, stage):
        t0, m0 = time.perf_counter(), peak_rss_gb()
        try:
            yield
        finally:
            self[stage] = self.get(stage, 0.0) + time.perf_counter() - t0
            m1 = peak_rss_gb()
            if m1 > m0:
                self.peaks[stage] = max(self.peaks.get(stage, 0.0), m1)

    def lap(self, stage):
        """Add the time since the previous lap (or since this clock was made) to ``stage``: for
        code whose phases follow one another without a block to wrap."""
        now = time.perf_counter()
        self[stage] = self.get(stage, 0.0) + now - self._tick
        self._tick = now

    def table(self) -> str:
        total = sum(self.values())
        rows = [f"  {k:<12s}{v:8.2f} s" + (f"   peak {self.peaks[k]:5.2f} GB" if k in self.peaks
                                          else "") for k, v in self.items()]
        return "\n".join(rows + [f"  {'total':<12s}{total:8.2f} s"])
