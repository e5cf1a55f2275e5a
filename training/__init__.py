"""Training of the batch model: the first fit, and periodic retraining on what the stream has seen."""
