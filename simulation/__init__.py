"""Synthetic worlds in the contract's format, with the truth that evaluation needs."""

from __future__ import annotations

from simulation.world import WORLD_TABLES, SimulationConfig, World, pair_truth, simulate, write_table, write_world

__all__ = ["WORLD_TABLES", "SimulationConfig", "World", "pair_truth", "simulate", "write_table", "write_world"]
