"""What every benchmark does with its numbers: print its table, and write them as JSON if asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(numbers: dict[str, Any], table: str, json_path: Path | None) -> int:
    """Print ``table``; write ``numbers`` to ``json_path`` (indented JSON) unless it is None. Exit status 0."""
    print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0
