"""Tests of hostile input, secrets, auth, fuzzing and payload encryption."""
