"""Runtimes a request's steps run on: the protocol they share (:mod:`models.runtime.protocol`), Go in two
fidelities (:mod:`models.runtime.go`), Node.js and V8 (:mod:`models.runtime.node`) and native threads
(:mod:`models.runtime.native`)."""
