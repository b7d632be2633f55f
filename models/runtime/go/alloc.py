"""What allocating costs the goroutine that allocates: ``mallocgc``'s CPU by object size and kind.

Mechanism (``runtime/malloc.go``, ``mcache.go``, ``mcentral.go``, ``mgcsweep.go``):
every object goes through ``mallocgc`` on the allocating goroutine. A small
object (at most 32 KiB, ``maxSmallSize``) takes the next free slot of its size
class's span in the P's ``mcache``; when the span is full the P refills it
from ``mcentral``, which sweeps spans on the way; the memory is zeroed unless
the span is fresh. A large object gets whole pages from the page heap, zeroed
(fresh pages fault in from the kernel). Sweeping the spans the last cycle
freed is paid by allocation (proportional sweep, ``deductSweepCredit``). An
object with pointers also sets its heap bits. All of that is CPU of the
goroutine, so here it is added to the CPU of the step that allocates.

Calibrated (``allocgc -mode alloc``, :mod:`calibration.measure_go`): the
mutator's CPU per object (``runtime/metrics`` ``/cpu/classes/user``, at
GOMAXPROCS 1 beside a 4 MiB live heap, GOGC 100) from 16 B to 1 MiB, for three
kinds of object, each a parameter set of kind ``table`` (per-object CPU
against object size, read between measured sizes by linear interpolation and
beyond 1 MiB in proportion to size; :class:`sim.params.Table`):

* ``pointers``: objects made of pointer words (``[]unsafe.Pointer``): heap
  bits set, scanned by the collector (``go.alloc.pointers_cpu_s_vs_size``);
* ``bytes``: pointer-free objects (``[]byte``: ``noscan`` spans, never
  scanned; ``go.alloc.bytes_cpu_s_vs_size``);
* ``buffers``: a 32-byte header holding a pointer and a ``[]byte`` of the rest
  (two objects; the validation servers' request objects, and the shape of
  ``bytes.Buffer``-like data; ``go.alloc.buffers_cpu_s_vs_size``).

The default object size is the mean object of ``encoding/json`` decoding and
encoding an 8 KiB document (bytes per operation over allocations per
operation, ``go.alloc.object_bytes``), a typical service's allocation.

What the collector marks of an allocation (:meth:`AllocationShape.objects`,
:meth:`AllocationShape.pointers`) follows the same kinds: one object per
``pointers`` or ``bytes`` object, two per ``buffers`` unit; pointer words:
all of a ``pointers`` object, none of a ``bytes`` one, the header's two of a
``buffers`` unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from sim.params import param_table, param_value

AllocKind = Literal["pointers", "bytes", "buffers"]
ALLOC_COST_PARAMS: dict[str, str] = {
    "pointers": "go.alloc.pointers_cpu_s_vs_size",
    "bytes": "go.alloc.bytes_cpu_s_vs_size",
    "buffers": "go.alloc.buffers_cpu_s_vs_size",
}
"""The calibrated per-object CPU against object size, by kind of object."""
OBJECT_BYTES_PARAM = "go.alloc.object_bytes"
WORD_BYTES = 8
BUFFER_HEADER_BYTES = 32
"""``struct{ next *T; data []byte }`` on a 64-bit machine: a pointer and a slice header."""


def default_object_bytes() -> float:
    """The calibrated mean object size (``go.alloc.object_bytes``)."""
    return param_value(OBJECT_BYTES_PARAM)


@dataclass(frozen=True)
class AllocationShape:
    """How a service's allocation is cut into objects: their size and kind, and the CPU of one
    (``unit_cpu_s``; :meth:`calibrated` reads it from the kind's parameter set)."""

    object_bytes: float
    kind: AllocKind
    unit_cpu_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.object_bytes) and self.object_bytes > 0):
            raise ValueError(f"object size must be a positive number of bytes (got {self.object_bytes!r})")
        if self.kind not in ALLOC_COST_PARAMS:
            raise ValueError(f"allocation kind must be one of {', '.join(ALLOC_COST_PARAMS)} (got {self.kind!r})")

    @classmethod
    def calibrated(cls, object_bytes: float | None = None, kind: AllocKind = "pointers") -> AllocationShape:
        """Objects of ``object_bytes`` (default ``go.alloc.object_bytes``) and ``kind``, at their calibrated cost."""
        size = default_object_bytes() if object_bytes is None else float(object_bytes)
        shape = cls(size, kind, 0.0)  # checks the size and the kind
        return replace(shape, unit_cpu_s=param_table(ALLOC_COST_PARAMS[kind]).at(size))

    def units(self, nbytes: float) -> float:
        """How many objects (``buffers``: header and payload pairs) ``nbytes`` make."""
        return nbytes / self.object_bytes

    def cpu_s(self, nbytes: float) -> float:
        """CPU seconds ``mallocgc`` spends allocating ``nbytes`` in objects of this shape."""
        if nbytes <= 0:
            return 0.0
        return self.units(nbytes) * self.unit_cpu_s

    def objects(self, nbytes: float) -> float:
        """Heap objects ``nbytes`` make, as the collector counts them."""
        return self.units(nbytes) * (2 if self.kind == "buffers" else 1)

    def pointers(self, nbytes: float) -> float:
        """Pointer words the collector scans in ``nbytes`` of this shape."""
        if self.kind == "bytes":
            return 0.0
        if self.kind == "buffers":
            return self.units(nbytes) * 2
        return nbytes / WORD_BYTES
