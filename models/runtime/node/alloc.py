"""What allocating costs a Node.js thread, and how much of V8's heap it takes, by object size.

Mechanism (V8 blog, "Trash talk", https://v8.dev/blog/trash-talk; V8
``src/heap/``): a JavaScript object is bump-allocated in the young
generation's nursery by the thread running the code (the event loop or a
worker), which also initialises it; the young generation is collected by a
scavenge each time the nursery fills (:mod:`models.runtime.node.gc`). So
allocation costs the allocating thread CPU that grows with the bytes written
(an array's elements) and with the object count (headers, the allocation
itself), and fills the nursery by the objects' size in the heap, headers
included, not by the payload asked for.

Calibrated (``calibration/harness/node/alloc.js``, harness ``node_alloc``): for
objects of the shape the validation server allocates for ``--alloc-chunk S``
(``new Array(S/8 - 2).fill(i)``, 8-byte elements, and a ``{next, data}``
link), short-lived:

* ``node.alloc.cpu_s_vs_size`` (kind ``table``): the allocating thread's CPU
  per object (its CPU less the collector's pauses, which
  :mod:`models.runtime.node.gc` models apart), by S;
* ``node.alloc.heap_bytes_vs_size`` (kind ``table``): the object's bytes in
  V8's heap (array, backing store and link), by S.

Both are read between measured sizes by linear interpolation and beyond the
largest in proportion to S (:class:`sim.params.Table`). The default S is the
validation server's default ``--alloc-chunk``, 1024 bytes
(``calibration/harness/node/valserver.js``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sim.params import param_table

CPU_PARAM = "node.alloc.cpu_s_vs_size"
HEAP_PARAM = "node.alloc.heap_bytes_vs_size"
VALSERVER_CHUNK_BYTES = 1024
"""valserver.js's default ``--alloc-chunk`` (and ``calibration.validation.experiments``' ``alloc_chunk_bytes``)."""


@dataclass(frozen=True)
class AllocationShape:
    """Objects of ``object_bytes`` each: the CPU of allocating one (``unit_cpu_s``) and its size in the heap
    (``unit_heap_bytes``)."""

    object_bytes: float
    unit_cpu_s: float
    unit_heap_bytes: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.object_bytes) and self.object_bytes > 0):
            raise ValueError(f"handler.alloc_object: must be a positive number of bytes (got {self.object_bytes!r})")

    @classmethod
    def calibrated(cls, object_bytes: float, cpu: bool = True, heap: bool = True) -> AllocationShape:
        """Objects of ``object_bytes`` at their calibrated CPU (0 unless ``cpu``) and heap size (the bytes
        asked for unless ``heap``); a KeyError names a parameter set that is not shipped."""
        shape = cls(float(object_bytes), 0.0, float(object_bytes))  # checks the size
        return replace(shape, unit_cpu_s=param_table(CPU_PARAM).at(shape.object_bytes) if cpu else 0.0,
                       unit_heap_bytes=param_table(HEAP_PARAM).at(shape.object_bytes) if heap else shape.object_bytes)

    def objects(self, nbytes: float) -> float:
        """How many objects ``nbytes`` of payload make."""
        return nbytes / self.object_bytes

    def cpu_s(self, nbytes: float) -> float:
        """CPU seconds the allocating thread spends on ``nbytes`` of payload in these objects."""
        return self.objects(nbytes) * self.unit_cpu_s if nbytes > 0 else 0.0

    def heap_bytes(self, nbytes: float) -> float:
        """Bytes ``nbytes`` of payload in these objects take in V8's heap."""
        return self.objects(nbytes) * self.unit_heap_bytes if nbytes > 0 else 0.0
