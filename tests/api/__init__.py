"""Tests of the server's HTTP API, in process and as a real uvicorn process, and of the CLI."""
