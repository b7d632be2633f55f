"""The seam between Kubernetes clients and the API server.

A client component (a reflector, the scheduler, a kubelet) is given its calls as plain generator
functions that a SimPy process runs with ``yield from``: whatever path the model wires behind them
(priority and fairness, the watch cache, etcd, or a fixed delay in a test) takes its time there and
returns the call's result. The components never see the server itself.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

ApiCall = Callable[..., Generator[simpy.Event, Any, Any]]
"""An API call: called with the client's arguments, run by the caller's process with ``yield from``."""
