"""What every bench script records and how it times: one machine description and one timer, so
results files compare (CPU model, cores this process may use, load average at start)."""
from __future__ import annotations

import os
import platform
import time


def machine() -> dict:
    """CPU model, logical CPUs, the CPUs this process may use, Python, load average now."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh
                          if ln.startswith("model name")), model)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {"cpu": model, "cores": os.cpu_count(), "affinity": usable,
            "python": platform.python_version(), "platform": platform.platform(),
            "host": platform.node(), "loadavg_start": os.getloadavg()}


def timed(fn, repeats: int = 1, warmup: bool = False):
    """``(best wall s, CPU s of that run, result)`` of ``repeats`` calls of ``fn()`` (after one
    untimed call with ``warmup``). On a shared machine the CPU time shows the cost when the
    cores are not all ours."""
    if warmup:
        fn()
    best = None
    for _ in range(max(1, int(repeats))):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        run = (time.perf_counter() - t, time.process_time() - c)
        if best is None or run[0] < best[0]:
            best = run
    return best[0], best[1], out


def peak_rss() -> int:
    """Peak resident memory of this process image in bytes (Linux VmHWM; ru_maxrss would
    include a parent's), 0 where unknown."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
