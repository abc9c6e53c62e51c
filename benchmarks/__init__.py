"""Benchmark helpers: synthetic LLaVA-665K-shaped workloads (see benchmarks/workload.py)."""
