"""Benchmarks: each writes bench/results/<name>.json {name, ratio, goal, ok, figures, command}."""
