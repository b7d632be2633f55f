"""The Go runtime, fast fidelity: GOMAXPROCS servers and one calendar
(:class:`~models.runtime.go.fast.runtime.FastGoRuntime`)."""
