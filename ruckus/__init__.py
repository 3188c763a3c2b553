"""Ruckus ruckus package."""
