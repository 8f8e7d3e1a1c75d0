"""Deployment: exported graphs (SavedModel, ONNX, TFLite), their runtimes, quantization, parity and the edge
bundle. Named so as not to shadow the public function `vae_zoo.export`."""
