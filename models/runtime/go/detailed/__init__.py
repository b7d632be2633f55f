"""The Go runtime, detailed fidelity: every goroutine simulated
(:class:`~models.runtime.go.detailed.runtime.GoRuntime`)."""
