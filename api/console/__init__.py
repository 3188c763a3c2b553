"""The web console: pages served at `/` that use the API, and their session."""
