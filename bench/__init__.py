"""The benchmark: Ruckus jobs measured beside the engine's floor on the same Temporal server."""
