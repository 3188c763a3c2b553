"""The `ruckus` command: each process, the whole local stack, and the client commands."""
