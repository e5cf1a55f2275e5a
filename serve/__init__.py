"""The prediction API (``python -m serve``): forecasts, predictions and explanations on demand."""
