"""Ruckus api package."""
