"""The end-to-end demo on whatever AWS the environment points at (the embedded emulator by default)."""
