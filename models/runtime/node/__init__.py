"""Node.js: the event loop (:mod:`~models.runtime.node.loop`), ``worker_threads`` and the cores they share
(:mod:`~models.runtime.node.workers`), Node-specific steps (:mod:`~models.runtime.node.steps`), V8's start-up
(:mod:`~models.runtime.node.startup`) and V8's collector (:mod:`~models.runtime.node.gc`)."""
