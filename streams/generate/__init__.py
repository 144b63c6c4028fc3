"""Synthetic CAD event streams built exactly to the RCRP briefing's figures.

``generate_events(profile, seed)`` returns contract-v1 event dicts in time order;
``demandmon generate`` (``streams.generate.cli.main``) writes them to a file.
"""

from streams.generate.build import generate_events, generate_stream
from streams.generate.profiles import PROFILES

__all__ = ["PROFILES", "generate_events", "generate_stream"]
