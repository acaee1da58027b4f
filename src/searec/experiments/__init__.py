"""Experiments over many runs: declared grids with multi-seed summaries."""

from searec.experiments.grid import run_experiment

__all__ = ["run_experiment"]
