"""Adapters shared by several components: AWS clients, the S3 result store, the MLflow registry."""
