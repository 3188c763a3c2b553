"""Temporal activities: every call to an agent, every write to storage, every queue signal."""
