"""The agent service: its HTTP API, the one-job-at-a-time runner, its job records, the tasks."""
