"""Benchmarks: accuracy and throughput, each printing a results table with the machine it ran on."""
