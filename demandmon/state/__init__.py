"""Demand state in Redis: key layout, the atomic apply script, and readers."""
