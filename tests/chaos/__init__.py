"""The chaos run as a test: the local stack under faults, accounted for exactly."""
