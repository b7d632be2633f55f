"""The packages' layers: cnsim > calibration > models > sim, each importing only those below it.

The contract is ``[tool.importlinter]`` in ``pyproject.toml``; import-linter
reads every import statement, those inside functions too, so a lazy import of
a higher layer breaks it as well.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports not found: install the test extra (pip install -e '.[test]')"
    return found


def test_each_layer_imports_only_the_layers_below_it() -> None:
    # run in the repository, where lint-imports finds pyproject.toml and imports these sources
    result = subprocess.run([lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert "1 kept, 0 broken" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_engine_imports_no_model_and_no_calibration() -> None:
    """Nothing happens at import: the engine's modules reach models and calibration only through
    entry points, when a scenario or a parameter set is asked for."""
    code = (
        "import sys\n"
        "import sim, sim.params, sim.scenario, sim.run, sim.sweep, sim.plots, sim.sources\n"
        "import cnsim\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('models', 'calibration', 'cnsim'))\n"
        "print(' '.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["cnsim"]
