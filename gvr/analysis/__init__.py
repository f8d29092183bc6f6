"""Analyses of trained models (the detail-aware timestep analysis)."""
