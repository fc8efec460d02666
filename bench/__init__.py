"""Benchmarks: numbers for speed and size targets (make bench), never pass/fail tests."""
