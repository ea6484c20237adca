"""Storing: the results folder (one run per folder), written stage by stage, read by everything else."""

from capacity.store.atomic import atomic_write_bytes, atomic_write_text
from capacity.store.reader import LoadedRun, find_run_dir, list_runs, load_run, stage_results
from capacity.store.run_store import RunStore, new_run_id

__all__ = [
    "LoadedRun",
    "RunStore",
    "atomic_write_bytes",
    "atomic_write_text",
    "find_run_dir",
    "list_runs",
    "load_run",
    "new_run_id",
    "stage_results",
]
