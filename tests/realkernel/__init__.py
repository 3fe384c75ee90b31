"""Measure the real kernel's page faults (see harness.py)."""
