"""Provisioning: stream, buckets, checkpoint table and least-privilege IAM, idempotently."""
