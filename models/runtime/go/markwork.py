"""The work of one mark as the pacer counts it (scan bytes) and as the CPU pays it, in the order it is met.

Mechanism (``runtime/mgcmark.go``, ``mgcpacer.go``): the pacer, the mark
assists and the background credit count scan work in *bytes*: ``scanobject``
credits a small object with the bytes up to and including its last pointer
word (``scanSize``), a large pointer array with the 128 KiB oblets it scans
(``maxObletBytes``), a stack with its used bytes (``stackScanWork``); an
assist owes ``assistWorkPerByte`` of those bytes per byte allocated. The CPU
of marking follows something else: every object greyed (``greyobject``: its
mark bit, a work-buffer slot) and every pointer word scanned. Greying an
object is paid by whoever scans the pointer that reaches it first. So a byte
of credit costs different CPU in different parts of the heap, and the order
matters: the collector starts from the roots (stacks, globals), and a heap
whose objects are reached through a pointer array, an index or a cache
(``[]*T``, map values), has all its greying charged to the array's 8-byte
slots, which it reaches before the objects; the objects then credit their own
scan bytes at the cost of their own pointer words only. (The runtime's work
buffers interleave the two; the model takes the array first, whole.) The first
part of the credit is then several times dearer than the average, and the
mutators that assist at the start of a mark, before the workers have banked
any credit, pay for it. The harnesses' heap (a node graph indexed by a slice,
``internal/nodegraph``) is that case: beside it, a busy mutator's
allocations cost about four times the cycle's average assist per byte in the
first 20 ms of a mark and almost nothing after, and the validation server's
latency rises from the start of a mark (calibration/validation/README.md,
"The generalization grid").

A :class:`MarkProfile` is the mark's work as ordered segments of
(credit bytes, CPU-seconds): :meth:`MarkProfile.cpu` is the CPU of some credit
from a position, :meth:`MarkProfile.credit` the credit some CPU buys. A
segment with CPU but no credit (pointer-free objects greyed, never scanned), or
credit but no CPU, is merged into the next segment (the previous one, last).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

LiveLayout = Literal["graph", "indexed"]


def live_segments(
    objects: float, pointers: float, layout: LiveLayout, per_object_s: float, per_pointer_s: float, word_bytes: int,
) -> list[tuple[float, float]]:
    """(credit bytes, CPU-seconds) of a long-lived heap of ``objects`` objects with ``pointers`` pointer words
    each (packed first, so each object's scan size is its pointer words), in mark order.

    ``graph``: objects reached from each other; each carries its greying and its pointer words, one segment.
    ``indexed``: reached through a pointer array whose slot is one of each object's ``pointers``: the array
    (8 bytes of credit a slot, the greying of every object and the slot's word) comes first, then the objects
    (their other pointer words)."""
    if layout == "graph":
        return [(objects * pointers * word_bytes, objects * (per_object_s + pointers * per_pointer_s))]
    if pointers < 1:
        raise ValueError(f"gc.live_layout indexed needs gc.live_pointers >= 1 (the index slot), got {pointers}")
    own = pointers - 1
    return [(objects * word_bytes, objects * (per_object_s + per_pointer_s)),
            (objects * own * word_bytes, objects * own * per_pointer_s)]


class MarkProfile:
    """Ordered segments of (credit bytes, CPU-seconds) of one mark (see the module docstring)."""

    __slots__ = ("_credit", "_cpu", "total_credit", "total_cpu")

    def __init__(self, segments: Iterable[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        carry = [0.0, 0.0]
        for credit, cpu in segments:
            if credit < 0 or cpu < 0:
                raise ValueError(f"mark work segment ({credit}, {cpu}): credit and CPU must be >= 0")
            carry[0] += credit
            carry[1] += cpu
            if carry[0] > 0 and carry[1] > 0:
                merged.append(carry)
                carry = [0.0, 0.0]
        if merged:
            merged[-1][0] += carry[0]
            merged[-1][1] += carry[1]
        self._credit = [credit for credit, _ in merged]
        self._cpu = [cpu for _, cpu in merged]
        self.total_credit = sum(self._credit) if merged else carry[0]
        self.total_cpu = sum(self._cpu) if merged else carry[1]

    def cpu(self, done: float, credit: float) -> float:
        """CPU-seconds of ``credit`` bytes of work starting ``done`` bytes into the mark."""
        total, position = 0.0, 0.0
        end = done + credit
        for size, cpu in zip(self._credit, self._cpu):
            low, high = max(done, position), min(end, position + size)
            if high > low:
                total += (high - low) * cpu / size
            position += size
            if position >= end:
                break
        return total

    def credit(self, done: float, cpu: float) -> float:
        """Bytes of work ``cpu`` CPU-seconds do starting ``done`` bytes into the mark (at most what is left)."""
        gained, position = 0.0, 0.0
        for size, segment_cpu in zip(self._credit, self._cpu):
            start = max(done, position)
            if start < position + size:
                room = position + size - start
                need = room * segment_cpu / size
                if cpu <= need:
                    return gained + cpu * size / segment_cpu
                gained += room
                cpu -= need
            position += size
        return gained

    def credit_per_cpu_s(self, done: float) -> float:
        """Bytes of credit a CPU-second buys at ``done``, the last segment's rate from its end on (infinite
        only when the mark costs nothing at all)."""
        if not self._credit:
            return float("inf")
        index, position = 0, self._credit[0]
        while done >= position and index + 1 < len(self._credit):
            index += 1
            position += self._credit[index]
        cpu = self._cpu[index]
        return self._credit[index] / cpu if cpu > 0 else float("inf")
