"""Tests of what ships: the compose file, the image, the examples, the README's commands."""
