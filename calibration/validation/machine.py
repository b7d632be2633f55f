"""How busy this machine is, and how much of it other processes took while ours ran.

The validation experiments need a quiet machine: :func:`wait_until_quiet`
waits for one (busy cores read from ``/proc/stat`` over a second), and
:class:`ForeignLoad` measures, over a ``with`` block, the cores that processes
other than this one's children kept busy (the machine's busy CPU time less the
children's ``getrusage`` time). Linux only; elsewhere both report ``None``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path


def cpu_busy_s() -> float | None:
    """CPU-seconds the whole machine has been busy since boot (``/proc/stat``), or None where unavailable."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU-seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_cores(seconds: float = 1.0) -> float | None:
    """Cores the machine keeps busy, averaged over ``seconds`` (``/proc/stat``), or None where unavailable."""
    before = cpu_busy_s()
    if before is None:
        return None
    time.sleep(seconds)
    after = cpu_busy_s()
    return None if after is None else (after - before) / seconds


def wait_until_quiet(max_busy_cores: float, max_wait_s: float, say: Callable[[str], None]) -> float | None:
    """Wait (at most ``max_wait_s``) until other processes keep under ``max_busy_cores`` busy; the last reading."""
    deadline = time.monotonic() + max_wait_s
    busy = busy_cores()
    while busy is not None and busy > max_busy_cores and time.monotonic() < deadline:
        say(f"waiting for a quiet machine ({busy:.2f} cores busy)")
        busy = busy_cores(2.0)
    return busy


class ForeignLoad:
    """Cores other processes kept busy during a ``with`` block: the machine's busy CPU time less our
    children's (the server and the load generator, waited for inside the block), over the wall time."""

    cores: float | None = None

    def __enter__(self) -> ForeignLoad:
        self._busy, self._children, self._started = cpu_busy_s(), children_cpu_s(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, wall = cpu_busy_s(), time.monotonic() - self._started
        if busy is not None and self._busy is not None and wall > 0:
            ours = children_cpu_s() - self._children
            self.cores = max(0.0, (busy - self._busy - ours) / wall)
