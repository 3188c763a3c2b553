"""The server: the HTTP API, its routers, the Job and Agent managers, and the app's lifespan."""
