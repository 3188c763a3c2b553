"""Ruckus common package."""
