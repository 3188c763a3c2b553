"""Tests of `ruckus dev`, the whole local stack."""
