"""The explorer page's speed in headless Chromium (onnxruntime-web, WASM, one thread) next to
onnxruntime in Python on the same graphs, in one run: time from page load to the first decoded
image, and decode time per frame (batch 1) for the float32 and int8 decoders of a preset.

    npm ci --prefix web && python benchmarks/browser.py [--preset mnist-z20] [--frames 300]

Prints a markdown table. Measure on an otherwise idle machine.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "web"))
from serve import serving  # noqa: E402

VARIANTS = ("decoder.onnx", "decoder.int8-dynamic.onnx")


def python_ms(path: Path, latent_dim: int, frames: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the page runs: one thread
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((frames, 1, latent_dim)).astype(np.float32)
    for row in z[:20]:
        session.run(["x_mean"], {"z": row})
    start = time.perf_counter()
    for row in z:
        session.run(["x_mean"], {"z": row})
    return (time.perf_counter() - start) / frames * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-z20")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    rows = []
    with serving(REPO) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        for variant in VARIANTS:
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(f"{base}/web/index.html?preset={args.preset}")
            page.wait_for_function("window.vaeZoo !== undefined")
            if variant != "decoder.onnx":
                page.evaluate("window.vaeZoo.ready")
                page.select_option("#variant", f"{args.preset}/{variant}")
                start = time.perf_counter()
            page.wait_for_function(f"window.vaeZoo.state.file === '{args.preset}/{variant}' && "
                                   "window.vaeZoo.state.times.length > 0")
            first = (time.perf_counter() - start) * 1000
            latent_dim = page.evaluate("window.vaeZoo.state.z.length")
            per_frame = page.evaluate("""async ([frames, d]) => {
                const z = Array.from({length: d}, () => 0.5);
                for (let i = 0; i < 20; i++) await window.vaeZoo.decode(z);
                const t0 = performance.now();
                for (let i = 0; i < frames; i++) await window.vaeZoo.decode(z);
                return (performance.now() - t0) / frames;
            }""", [args.frames, latent_dim])
            size = (REPO / "export" / args.preset / variant).stat().st_size
            rows.append((variant, size, first, per_frame,
                         python_ms(REPO / "export" / args.preset / variant, latent_dim, args.frames)))
            page.close()
        version = browser.version
        browser.close()
    print(f"{args.preset}, batch 1, {args.frames} frames; Chromium {version} (WASM, 1 thread), "
          f"onnxruntime {ort.__version__} in Python (1 thread)\n")
    print("| decoder | size | page load (or switch) to first image | per frame, browser | per frame, Python |")
    print("| --- | --- | --- | --- | --- |")
    for variant, size, first, browser_ms, py_ms in rows:
        print(f"| {variant} | {size / 1024:.0f} KB | {first:.0f} ms | {browser_ms:.3f} ms | {py_ms:.3f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
