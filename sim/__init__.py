"""A deterministic simulator of the whole system (terminals, hub, network, clocks,
crashes) in one process, in the style of TigerBeetle's VOPR: one seed drives every
choice, an auditor checks what must be true after every step, and a failing seed
replays exactly. `python -m sim --help`; README "Simulation"."""

from sim.core import SimResult, Simulation, run_seed

__all__ = ["SimResult", "Simulation", "run_seed"]
