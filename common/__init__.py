"""What every Ruckus process shares: wire models, settings, storage, the agent client, auth."""
