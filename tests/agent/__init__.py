"""Tests of the agent service over real HTTP."""
