"""Ruckus activities package."""
