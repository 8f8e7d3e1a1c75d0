"""The model: `VAE`, its checked Keras base, the baselines (wake-sleep, MCEM), recipes, saving and inference."""
