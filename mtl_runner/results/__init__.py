"""Run directories: where a run writes everything, atomically, and how readers find it."""

from mtl_runner.results.run_dir import RunDirectory, atomic_write, new_run_id

__all__ = ["RunDirectory", "atomic_write", "new_run_id"]
