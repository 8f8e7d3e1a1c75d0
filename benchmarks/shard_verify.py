"""What verifying a shard folder costs when it is opened: every file's sha256, streamed.

Writes a shard folder of `--megabytes` of random uint8 images into a temporary folder, then
times `vae_zoo.data.shards.Shards(folder)` (the sha256 of every file is checked before use) and
prints the rate and the time it implies for 8 GB. Run it on an otherwise idle machine.

    python benchmarks/shard_verify.py [--megabytes 512]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vae_zoo.data import shards  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=512)
    args = parser.parse_args()
    rows = args.megabytes * 2**20 // 784
    pixels = np.random.default_rng(0).integers(0, 256, (rows, 784), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shards"
        shards.write(pixels, folder, (28, 28), shard_size=100_000)
        size = sum(f.stat().st_size for f in folder.iterdir())
        shards.Shards(folder)  # warm the page cache: the rate below is hashing, not the disk
        start = time.perf_counter()
        shards.Shards(folder)
        seconds = time.perf_counter() - start
    rate = size / seconds / 2**20
    print(f"opened {size / 2**20:.0f} MiB of shards in {seconds:.2f} s: {rate:.0f} MiB/s, "
          f"{8 * 2**30 / (rate * 2**20):.0f} s for 8 GiB (plus the disk's read time when not cached)")


if __name__ == "__main__":
    main()
