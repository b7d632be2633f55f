"""Test-session set-up shared by tests/ and notebooks/: notebooks run at smoke size."""

import os

os.environ.setdefault("CNSIM_SMOKE", "1")
