"""Tests of the workflows on the real Temporal dev server and the time-skipping server."""
