"""The replay producer: the static dataset as a live stream, one record per hour."""
