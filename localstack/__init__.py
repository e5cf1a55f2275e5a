"""LocalStack for traffic-stream: its healthcheck for Docker, and native.py to run it without Docker."""
