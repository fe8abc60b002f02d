"""Reproducible benchmarks; each writes JSON under bench/results with the command behind it."""
