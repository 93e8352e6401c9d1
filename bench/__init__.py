"""Benchmarks: run with ``python -m bench.run_all`` from the repository root (see bench/README.md)."""
