"""The lowest layer: errors, argument and data checks, atomic files, summaries, the card text, cluster
settings and the preset folder format. No model code, no TensorFlow."""
