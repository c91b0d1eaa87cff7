"""Benchmarks (throughput and memory of training steps)."""
