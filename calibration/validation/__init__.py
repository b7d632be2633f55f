"""Validation: real end-to-end experiments (``<name>/``) and the simulator's error against them.

:mod:`calibration.validation.experiments` runs the experiments (``cnsim validate
run``); :mod:`calibration.validation.compare` simulates each from calibrated
parameters only and compares (``cnsim validate``).
"""
