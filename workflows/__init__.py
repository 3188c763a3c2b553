"""Ruckus workflows package."""
