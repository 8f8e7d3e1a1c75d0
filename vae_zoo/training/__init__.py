"""Training: fit with checkpoints and exact resume, presets and the user's data, multi-worker training."""
