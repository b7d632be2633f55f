"""The Go runtime: the scheduler's constants and CPU kinds (:mod:`~models.runtime.go.constants`), the policy both
fidelities share (:mod:`~models.runtime.go.policy`), the collector and its pacer (:mod:`~models.runtime.go.gc`),
Go-specific steps (:mod:`~models.runtime.go.steps`), the detailed fidelity (:mod:`~models.runtime.go.detailed`)
and the fast one (:mod:`~models.runtime.go.fast`)."""
