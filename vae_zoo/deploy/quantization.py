"""Post-training quantization of exported float32 graphs, with the tool each runtime provides.

| mode | ONNX (onnxruntime.quantization, onnxconverter-common) | TFLite (LiteRT Quantizer) |
| --- | --- | --- |
| float16 | weights and compute in float16, float32 inputs/outputs | float16 weights, float compute |
| int8-dynamic | uint8 weights per channel, activations quantized when run | int8 weights (per channel), int8 compute |
| int8-static | uint8 weights and activations (QDQ), calibrated | full int8 (static), calibrated |

LiteRT's converter flags for post-training quantization (`converter.optimizations`) are
deprecated; LiteRT recommends its Quantizer (`litert-quantizer`, formerly
ai-edge-quantizer), which quantizes a converted float32 .tflite with a recipe. Both
int8-static tools calibrate activation ranges on the images `calibration` gives (min/max).
Inputs and outputs stay float32 with their names, so a quantized graph replaces a float one.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np

from vae_zoo.core.errors import InvalidArgumentError

MODES = ("none", "float16", "int8-dynamic", "int8-static")
# The quality gate: 1 nat per image is a likelihood ratio of e, 2 to 4.5 standard errors of the
# MNIST cards' test log p(x) (0.22 to 0.48 nats), the resolution at which the zoo's own numbers
# tell models apart; float16 and MNIST's int8 graphs cost far less (export/README.md).
MAX_DROP = 1.0
QUALITY_K = 1000  # importance samples of the log p(x) measurement
QUALITY_POINTS = 1000  # its test images (the first ones)
FORMATS = ("onnx", "tflite")  # the formats with a quantizer; SavedModel stays float32


# (format, mode) -> the (module, package) pairs its tool imports: the quantize extra, not the base install.
TOOLS = {**{("onnx", mode): (("sympy", "sympy"),) for mode in ("int8-dynamic", "int8-static")},
         ("onnx", "float16"): (("onnxconverter_common", "onnxconverter-common"),),
         **{("tflite", mode): (("litert_quantizer", "litert-quantizer"),)
            for mode in ("float16", "int8-dynamic", "int8-static")}}


def check_supported(modes: tuple[str, ...], formats: tuple[str, ...], parts: tuple[str, ...]) -> None:
    """Raises InvalidArgumentError for a quantized mode asked of a format or part without one."""
    if set(modes) == {"none"}:
        return
    unsupported = [f for f in formats if f not in FORMATS]
    if unsupported:
        raise InvalidArgumentError(
            f"{', '.join(unsupported)} cannot be quantized: quantize={[m for m in modes if m != 'none']} "
            f"applies to the formats {', '.join(FORMATS)}. Export {', '.join(unsupported)} in a separate call "
            "with quantize='none'.")
    if any(p not in ("encoder", "decoder") for p in parts):
        raise InvalidArgumentError(f"Quantized exports are of the parts encoder and decoder. Received: parts={parts}")
    missing = sorted({package for fmt in formats for mode in modes if mode != "none"
                      for module, package in TOOLS[fmt, mode] if importlib.util.find_spec(module) is None})
    if missing:
        raise InvalidArgumentError(
            f"Quantized exports need the optional packages of vae-zoo's quantize extra ({', '.join(missing)} "
            "missing here): pip install 'vae-zoo[quantize]'.")



def file_name(part: str, mode: str, suffix: str) -> str:
    """decoder.onnx for float32 graphs, decoder.int8-dynamic.onnx for quantized ones."""
    return f"{part}{suffix}" if mode == "none" else f"{part}.{mode}{suffix}"


def quantize(fmt: str, mode: str, source: Path, target: Path, calibration: dict[str, np.ndarray] | None) -> str:
    """Writes the `mode` quantization of the float32 graph `source` to `target`.

    Args:
        fmt: "onnx" or "tflite".
        mode: "float16", "int8-dynamic" or "int8-static".
        source, target: float32 graph file, quantized graph file.
        calibration: {input name: float32 rows} for int8-static.

    Returns:
        The tool and its settings, for the manifest.
    """
    if mode == "int8-static" and not calibration:
        raise InvalidArgumentError("int8-static needs calibration inputs (rows of the graph's input).")
    return {"onnx": _onnx, "tflite": _tflite}[fmt](mode, Path(source), Path(target), calibration)


def _batches(calibration: dict[str, np.ndarray], size: int = 100) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(calibration.values())))
    return [{k: v[i:i + size] for k, v in calibration.items()} for i in range(0, n, size)]


def _reader(calibration: dict[str, np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(_batches(calibration))

        def get_next(self):
            return next(self.batches, None)

    return Reader()


def _onnx(mode: str, source: Path, target: Path, calibration) -> str:
    from importlib.metadata import version

    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode == "float16":
        from onnxconverter_common import float16

        with warnings.catch_warnings():  # it reports each weight it clamps to float16's smallest normal, 1e-7
            warnings.simplefilter("ignore", UserWarning)
            onnx.save(float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))
        return f"onnxconverter-common {version('onnxconverter-common')} convert_float_to_float16(keep_io_types=True)"
    prepared = target.with_name(f".{target.name}.prepared")
    try:
        quant_pre_process(str(source), str(prepared))  # shape inference and graph optimisation first, as advised
        # uint8 weights and activations (U8U8) in both modes: x86 CPUs without VNNI (AVX2 alone) multiply
        # uint8 activations by int8 weights in pairs summed into saturating int16, which made a decoder's
        # accuracy depend on the CPU (mnist-z2 on an AVX2-only CPU: 11.8 nats lost, dynamic, 11.4 static).
        # U8U8 does not saturate: 0.025 and 8.0 there, as on CPUs with VNNI (7-bit weights cost accuracy).
        if mode == "int8-dynamic":
            quantize_dynamic(prepared, target, weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul", "Gemm"],
                             per_channel=True)
            return (f"onnxruntime {version('onnxruntime')} quantization.quant_pre_process + quantize_dynamic("
                    "weight_type=QUInt8, op_types_to_quantize=[MatMul, Gemm], per_channel=True)")
        quantize_static(prepared, target, _reader(calibration), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, per_channel=True)
    finally:
        prepared.unlink(missing_ok=True)
    return (f"onnxruntime {version('onnxruntime')} quantization.quant_pre_process + quantize_static(QDQ, "
            "activations QUInt8, weights QUInt8 per channel, MinMax calibration)")


def _tflite(mode: str, source: Path, target: Path, calibration) -> str:
    import contextlib
    import io
    from importlib.metadata import version

    from litert_quantizer import quantizer, recipe, recipe_manager

    if mode == "float16":
        manager = recipe_manager.RecipeManager()
        manager.add_weight_only_config(regex=".*", operation_name=recipe.TFLOperationName.ALL_SUPPORTED,
                                       num_bits=16, algorithm_key=recipe.AlgorithmName.FLOAT_CASTING)
        chosen, name = manager.get_quantization_recipe(), "weight_only float16 (FLOAT_CASTING)"
    elif mode == "int8-dynamic":
        chosen, name = recipe.dynamic_wi8_afp32(), "recipe.dynamic_wi8_afp32()"
    else:  # recipe.static_wi8_ai8(), but the graph's inputs and outputs stay float32
        manager = recipe_manager.RecipeManager()
        manager.add_static_config(regex=".*", operation_name=recipe.TFLOperationName.ALL_SUPPORTED,
                                  activation_num_bits=8, weight_num_bits=8)
        for end in (recipe.TFLOperationName.INPUT, recipe.TFLOperationName.OUTPUT):
            manager.add_quantization_config(".*", end, algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
        chosen = manager.get_quantization_recipe()
        name = "static int8 weights and activations (static_wi8_ai8, float32 inputs/outputs), min/max calibration"
    tool = quantizer.Quantizer(str(source), chosen)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its report
        result = None
        if mode == "int8-static":
            result = tool.calibrate({"serving_default": _batches(calibration)})
        tool.quantize(result).export_model(str(target), overwrite=True)
    target.chmod(0o644)  # the quantizer writes it executable
    return f"litert-quantizer {version('litert-quantizer')} {name}"
