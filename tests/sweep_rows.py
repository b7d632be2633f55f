"""The rows of a sweep's run files as bytes, to hold executors to byte-identical results.

Every column but ``wall_s`` (the wall time of the run: a measurement of the
machine, not a result) is written to one Arrow IPC stream per run file,
together with the file's schema metadata (the resolved scenario, the point,
the simulated time, the worker's cnsim version and parameter digest), so
two stores give equal bytes only if every row, every value to the last bit,
and every recorded input are the same.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def run_rows(out: Path) -> dict[str, bytes]:
    """``key -> bytes`` of every run file under ``out/runs``."""
    rows = {}
    for path in sorted((out / "runs").glob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns(["wall_s"]).replace_schema_metadata(table.schema.metadata)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        rows[path.stem] = sink.getvalue().to_pybytes()
    return rows
