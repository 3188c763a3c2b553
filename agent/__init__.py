"""Ruckus agent package."""
