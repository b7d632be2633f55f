"""How busy this machine is, how much of it other processes took while ours ran, and its memory made ready.

The validation experiments need a quiet machine: :func:`wait_until_quiet`
waits for one (busy cores read from ``/proc/stat`` over a second), and
:class:`ForeignLoad` measures, over a ``with`` block, the cores that processes
other than this one's children kept busy (the machine's busy CPU time less the
children's ``getrusage`` time). :func:`process_counters` reads a process's
user and system CPU and its minor page faults (``/proc/PID/stat``), so that a
run shows what the kernel did for the server. Linux only; elsewhere they
report ``None``.

**What touching fresh memory costs** (:func:`touch_costs`). In a virtual
machine whose host backs the guest's memory lazily and takes back what the
guest frees (this project's VM: a balloon device with free page reporting,
``/sys/module/page_reporting``), the first touch of a page costs a fault on the
host as well: measured here, 10.5-12.7 us a 4 KiB page of system time against
1.8-3.0 us for a page still backed (``mmap`` and touch, a GiB at a time). Pages
a process frees are reported back within seconds: beyond the first 1-2 GiB,
every new server process pays the dear faults again, and a heap that grows past
that inside the measured window shows bursts no long-running machine would
(a GOGC 400 server at 60 %: a 1 s latency burst at 0.7 cores of system time;
the same run right after another process had touched 6 GiB: none). A
campaign records this probe (``memory_touch``) and each run the server's
system CPU and minor faults (:func:`process_counters`), so that the artefact
shows where it happens.
"""

from __future__ import annotations

import mmap
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GIB = 2**30


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


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo``, bytes, or None where unavailable."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def touch_costs(nbytes: int, say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Touch ``nbytes`` of anonymous memory (at most half of what is available), a GiB at a time, all held
    until the last is touched, then release it; what it cost: per GiB, the system CPU and wall seconds and
    the system microseconds per page (some GiBs several times dearer than others: a host backing the
    guest's memory lazily)."""
    available = available_memory_bytes()
    target = int(min(nbytes, available // 2)) if available is not None else int(nbytes)
    page = mmap.PAGESIZE
    report: dict[str, Any] = {"requested_bytes": int(nbytes), "available_bytes": available, "bytes": 0,
                              "page_bytes": page, "by_gib": [],
                              "method": "mmap anonymous, one byte written per page, a GiB at a time, held until "
                              "all were touched; system CPU from getrusage"}
    held: list[mmap.mmap] = []
    try:
        while report["bytes"] < target:
            size = min(GIB, target - report["bytes"])
            size -= size % page
            if size <= 0:
                break
            usage, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            for offset in range(0, size, page):
                area[offset] = 1
            held.append(area)
            after = resource.getrusage(resource.RUSAGE_SELF)
            system = after.ru_stime - usage.ru_stime
            report["by_gib"].append({"bytes": size, "wall_s": round(time.monotonic() - started, 4),
                                     "system_s": round(system, 4),
                                     "system_us_per_page": round(system / (size / page) * 1e6, 3)})
            report["bytes"] += size
            say(f"touching memory: {report['bytes'] / GIB:.0f} of {target / GIB:.0f} GiB")
    finally:
        for area in held:
            area.close()
    return report


def process_counters(pid: int) -> dict[str, float] | None:
    """User and system CPU seconds and minor page faults of process ``pid`` so far (``/proc/PID/stat``),
    or None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # After the command's closing parenthesis: state is field 3 of proc(5), so field N is fields[N - 3].
    return {"minor_faults": float(fields[10 - 3]), "user_s": int(fields[14 - 3]) / ticks,
            "system_s": int(fields[15 - 3]) / ticks}
