"""Temporal workflows: JobWorkflow, AgentQueueWorkflow, and the worker that runs them."""
