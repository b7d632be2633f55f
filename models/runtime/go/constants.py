"""The Go runtime's own constants, the parameter sets its models load, and what a P's CPU does.

One module that both fidelities, calibration and validation import, so that a
number of ``runtime/proc.go`` is written once. Each constant names its source
(Go 1.21+, ``src/runtime/``); the collector's pacing constants are in
:mod:`models.runtime.go.gc`, beside the pacer that uses them.
"""

from __future__ import annotations

from enum import Enum

# ------------------------------------------------------------------ scheduler
LOCAL_RUNQ_SLOTS = 256
"""``len(p.runq)`` (runtime2.go)."""
GLOBAL_QUEUE_EVERY = 61
"""``schedule`` checks the global queue when ``schedtick % 61 == 0`` (proc.go)."""
GLOBAL_BATCH_MAX = LOCAL_RUNQ_SLOTS // 2
"""``globrunqget`` takes at most half a local queue (proc.go)."""
STACK_MIN_BYTES = 2048
"""``_StackMin`` (runtime/stack.go): the smallest stack a goroutine starts with."""
DRAIN_CHECK_BYTES = 100_000
"""``drainCheckThreshold`` (mgcmark.go): a fractional worker checks its share every 100,000 bytes of work."""
FRACTIONAL_OVERSHOOT = 1.2
"""A fractional mark worker runs until its share of mark time exceeds 1.2 times the goal
(``pollFractionalWorkerExit``, mgc.go)."""

# --------------------------------------------------------------------- sysmon
FORCE_PREEMPT_S = 10e-3
"""``forcePreemptNS`` (proc.go)."""
SYSMON_MIN_DELAY_S = 20e-6
"""sysmon's sleep while busy: ``delay = 20`` µs (proc.go ``sysmon``)."""
SYSMON_PERIOD_S = 10e-3
"""sysmon's sleep once backed off: at most 10 ms (proc.go ``sysmon``)."""
SYSMON_IDLE_ROUNDS = 50
"""sysmon starts doubling its sleep after more than 50 idle rounds (``idle > 50``, proc.go)."""
SYSMON_DEEP_SLEEP_S = 60.0
"""The longest deep sleep: ``forcegcperiod / 2`` (2 min / 2, proc.go)."""
NETPOLL_STALE_S = 10e-3
"""sysmon polls the network if nobody has for 10 ms (proc.go ``sysmon``)."""

# ------------------------------------------------------------- the kernel's
CFS_PERIOD_S = 0.1
"""Linux CFS bandwidth control default period, ``cpu.cfs_period_us`` = 100 ms (kernel docs, sched-bwc)."""

# ------------------------------------------------------- calibrated parameters
SPAWN_PARAM = "go.goroutine.spawn_s"
STACK_PARAM = "go.goroutine.stack_bytes"
WAKEUP_LATE_PARAM = "go.sched.wakeup_late_s"
SYSMON_CPU_PARAM = "machine.sysmon_off_s"
SYSMON_LATE_PARAM = "machine.sysmon_late_s"
SYSMON_CORES_PARAMS = (SYSMON_CPU_PARAM, SYSMON_LATE_PARAM)
"""The parameter sets of sysmon's thread on placed cores."""


class CpuKind(Enum):
    """What a P (or a fast-fidelity server) runs on its CPU; a P with no kind runs nothing.

    The mark workers are ``gcMarkWorkerDedicatedMode``, ``gcMarkWorkerFractionalMode`` and
    ``gcMarkWorkerIdleMode`` (mgc.go); ``marks`` is true for them.
    """

    RUN = ("run", False)
    """A goroutine's own work."""
    ASSIST = ("assist", False)
    """A goroutine's mark assist, charged to it (``gcAssistAlloc``)."""
    DEDICATED = ("dedicated", True)
    FRACTIONAL = ("fractional", True)
    IDLE_MARK = ("idle_mark", True)

    def __init__(self, label: str, marks: bool) -> None:
        self.label = label
        self.marks = marks


RUN, ASSIST, DEDICATED, FRACTIONAL, IDLE_MARK = CpuKind
"""The members by their names, for the schedulers' hot paths (a module global is read faster than a class
attribute)."""
