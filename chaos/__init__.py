"""The chaos run: the real local stack under injected faults, and an exact accounting after."""
