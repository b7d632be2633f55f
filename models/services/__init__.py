"""Service model kinds: a Poisson-fed HTTP service on a runtime (:mod:`models.services.base`), on Go
(``go.service``), on Node.js or native threads (``node.service``, ``native.service``), and the CPU-bound
comparison of goroutines and worker threads (``cpubound.compare``)."""
