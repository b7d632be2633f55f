"""Calibration: harnesses that measure real systems here, their raw data, and fitted parameters.

``params/*.json`` are package data that models load by name through
:mod:`sim.params`; ``data/<host>/`` holds the raw samples each fit names.
"""
