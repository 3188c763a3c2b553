"""Tests, mirroring the folders of the project, plus end-to-end and chaos tests."""
