"""`vae-zoo export`: encoder and decoder graphs for edge runtimes, parity-checked against Keras."""

from __future__ import annotations

import time
from pathlib import Path

from vae_zoo.cli.arguments import NON_NEGATIVE_FLOAT, POSITIVE_INT, SEED, add_command


def cmd_export(args) -> int:
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.core.summaries import plus_minus
    from vae_zoo.deploy.exporters import build_bundle, export
    from vae_zoo.deploy.quantization import MAX_DROP, QUALITY_K, QUALITY_POINTS

    if args.all_presets:
        ignored = [flag for flag, value, default in (
            ("--format", args.format, None), ("--part", args.part, ["encoder", "decoder"]),
            ("--max-drop", args.max_drop, MAX_DROP), ("--data", args.data, None), ("--seed", args.seed, 0),
            ("--quality-k", args.quality_k, QUALITY_K), ("--quality-points", args.quality_points, QUALITY_POINTS),
            ("a model", args.model, None)) if value != default]
        if ignored:
            raise InvalidArgumentError(f"--all-presets writes the bundle's fixed contents (ONNX encoders and decoders, "
                                       f"quantized decoders gated at {MAX_DROP:g} nat); it does not take "
                                       f"{', '.join(ignored)}. Export one preset to choose them.")
        bundle = build_bundle(args.output, quantize=args.quantize, overwrite=args.overwrite)
        for name, manifest in bundle["presets"].items():
            errors = ", ".join(f"{a['part']} {a['max_abs_error']:.1e}" for a in manifest["artifacts"]
                               if "quantize" not in a)
            print(f"{name:<11} ONNX max abs error vs Keras: {errors}")
            if "quality" in manifest:
                results = manifest["quality"]["results"]["onnx"]
                shipped = {a["quantize"] for a in manifest["artifacts"] if "quantize" in a}
                for mode in (m for m in results if m != "float32"):
                    drop = results[mode]["pair"]["log_px_drop"]
                    print(f"{'':<11} decoder.{mode}.onnx: test log p(x) drop {plus_minus(drop)} nats, "
                          f"{'shipped' if mode in shipped else 'not shipped'}")
        print(f"Wrote the ONNX bundle of {len(bundle['presets'])} presets and manifest.json to {args.output}")
        return 0
    if not args.model:
        raise InvalidArgumentError("Name a preset or folder to export, or pass --all-presets.")
    started = time.time()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.time() - started:6.1f} s] {message}", flush=True)

    manifest = export(args.model, args.output, formats=args.format, parts=args.part, overwrite=args.overwrite,
                      quantize=args.quantize, data=args.data, max_drop=args.max_drop, seed=args.seed,
                      quality_k=args.quality_k, quality_points=args.quality_points, progress=progress)
    for a in manifest["artifacts"]:
        if "quantize" not in a:
            print(f"{a['file']:<28} {a['format']:<12} max abs error vs Keras {a['max_abs_error']:.2e}")
            continue
        pair = manifest["quality"]["results"][a["format"]][a["quantize"]]["pair"]
        print(f"{a['file']:<28} {a['format']:<12} {a['size_bytes']:>9,} bytes ({a['smaller_by']:.1f}x smaller), "
              f"max abs diff {a['difference_from_float32']['max_abs']:.2e}, test log p(x) drop "
              f"{plus_minus(pair['log_px_drop'])} nats")
    print(f"Wrote {len(manifest['artifacts'])} artifacts and manifest.json to {args.output}")
    if "none" not in args.quantize:
        print("The float32 graphs were measured but not written: list none in --quantize to write them too.")
    return 0


def add_parsers(sub) -> None:
    from vae_zoo.deploy.quantization import MAX_DROP, QUALITY_K, QUALITY_POINTS

    p = add_command(sub, "export", cmd_export, "export encoder/decoder graphs, parity-checked against Keras")
    p.add_argument("model", nargs="?", help="preset name or preset folder")
    p.add_argument("--all-presets", action="store_true",
                   help="write the ONNX encoder and decoder of every shipped preset (the edge bundle) to OUTPUT, and "
                        "with --quantize the quantized decoders that pass the quality gate")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to create")
    p.add_argument("--format", nargs="+",
                   help="any of saved_model, onnx, tflite (default: all; with --quantize: onnx tflite)")
    p.add_argument("--part", nargs="+", default=["encoder", "decoder"],
                   help="any of encoder, decoder, sampling_encoder (default: encoder decoder)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--quantize", nargs="+", default=["none"], metavar="MODE",
                   help="the graphs to write: none (float32; the default) and any of float16, int8-dynamic, "
                        "int8-static (onnx and tflite), e.g. none int8-dynamic for both; quantized graphs are "
                        "measured (size, speed, test ELBO and log p(x) through the graphs) in manifest.json")
    p.add_argument("--data", type=Path, help="images to calibrate (int8-static) and measure quantized graphs on "
                   "(default: the zoo data set of the model's input size)")
    p.add_argument("--max-drop", type=NON_NEGATIVE_FLOAT, default=MAX_DROP,
                   help=f"refuse quantized graphs losing more test log p(x), nats per image (default {MAX_DROP:g})")
    p.add_argument("--seed", type=SEED, default=0, help="seed of calibration and measurement")
    p.add_argument("--quality-k", type=POSITIVE_INT, default=QUALITY_K,
                   help=f"importance samples of the log p(x) measurement (default {QUALITY_K})")
    p.add_argument("--quality-points", type=POSITIVE_INT, default=QUALITY_POINTS,
                   help=f"test images of the log p(x) measurement (default {QUALITY_POINTS})")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
