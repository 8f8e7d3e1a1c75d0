"""Keras layers of the model: MLP bodies and heads that return TensorFlow Probability distributions."""
