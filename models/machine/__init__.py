"""The machine under a runtime: its cores and where Linux places threads on them (:mod:`models.machine.cores`),
and the scenario's ``machine`` settings (work stretch, wake-up from idle, the load generator's CPU:
:mod:`models.machine.config`)."""
