"""cnsim's top layer: the ``cnsim`` command line (:mod:`cnsim.cli`).

The packages form layers, each importing only those below it (checked by
import-linter, see ``[tool.importlinter]`` in ``pyproject.toml``):

* ``cnsim``: the command line; may import everything below;
* ``calibration``: harnesses, raw data, fits, parameter sets and the validation;
* ``models``: the SimPy models of queues, networks, runtimes and services;
* ``sim``: the engine, which imports none of the others and finds their
  model kinds, parameter sets and built-in scenarios through entry points.

Importing this package imports nothing else.
"""
