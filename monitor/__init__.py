"""Watching the output bucket, comparing the two models, reconciling what was produced."""
