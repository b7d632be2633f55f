"""A sweep's run files as bytes, to hold executors to byte-identical results.

:func:`run_rows` gives each run file's table, every column with its type and
the file's schema metadata (the resolved scenario, the point, the simulated
time, the worker's cnsim version and parameter digest), as one Arrow IPC
stream: two stores give equal bytes only if every row, every value to the
last bit, every type and every recorded input are the same, and a difference
reads as a difference of tables. :func:`run_files` gives the Parquet files
themselves: the store keeps nothing of the machine in them (the wall times
are in ``timings.jsonl``), so the same runs must give the same files.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def run_rows(out: Path) -> dict[str, bytes]:
    """``key -> bytes`` of every run file's table (all columns, their types, the metadata) under ``out/runs``."""
    rows = {}
    for path in sorted((out / "runs").glob("*.parquet")):
        table = pq.read_table(path)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        rows[path.stem] = sink.getvalue().to_pybytes()
    return rows


def run_files(out: Path) -> dict[str, bytes]:
    """``key -> bytes`` of every Parquet file under ``out/runs``, as written."""
    return {path.stem: path.read_bytes() for path in sorted((out / "runs").glob("*.parquet"))}
