"""The demo world: personas with real Replicate histories (in the sandbox) and app rows.

``python -m core.demo [--reset] [--users N]`` seeds it; the dashboard calls
``seed_demo_world`` on its first DEMO start. See ``core.demo.personas`` for who is in it
and which findings each persona must produce.
"""

from core.demo.personas import PERSONAS, Persona
from core.demo.seed import SeedReport, is_seeded, seed_demo_world
from core.demo.synthetic import add_synthetic_users

__all__ = [
    "PERSONAS",
    "Persona",
    "SeedReport",
    "add_synthetic_users",
    "is_seeded",
    "seed_demo_world",
]
