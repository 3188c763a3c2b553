"""The storage contract, run on SQLite files and on PostgreSQL."""
