"""Synthetic worlds in the contract's format, with the truth that evaluation needs.

Two generators with the same tables and different mechanisms: `main` (`simulation.world`) and `alt`
(`simulation.world_alt`), written to disagree with it, so that quality measured on both does not hang on one.
"""

from __future__ import annotations

from simulation.world import WORLD_TABLES, SimulationConfig, World, pair_truth, simulate, write_table, write_world
from simulation.world_alt import AltConfig, simulate_alt

# Each generator by the name `creator-match simulate --world` and the benchmarks take.
WORLDS = {"main": simulate, "alt": simulate_alt}

__all__ = [
    "WORLDS",
    "WORLD_TABLES",
    "AltConfig",
    "SimulationConfig",
    "World",
    "pair_truth",
    "simulate",
    "simulate_alt",
    "write_table",
    "write_world",
]
