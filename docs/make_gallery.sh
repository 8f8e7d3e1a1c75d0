#!/usr/bin/env bash
# Regenerates the README gallery (docs/gallery/*.png) from the shipped presets.
# Usage: VAE_ZOO_DATA=../shared/data bash docs/make_gallery.sh   (with vae-zoo installed)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/gallery
mkdir -p "$out"
vae-zoo sample mnist-z20 -n 100 -o "$out/mnist-z20-samples.png" --overwrite
vae-zoo reconstruct mnist-z20 -n 32 -o "$out/mnist-z20-reconstructions.png" --overwrite
vae-zoo sample frey-z20 -n 100 -o "$out/frey-z20-samples.png" --overwrite
vae-zoo sample mnist-z2 mnist-z5 mnist-z10 mnist-z20 -n 100 -o "$out/mnist-figure5.png" --overwrite  # Figure 5
vae-zoo reconstruct frey-z20 -n 32 -o "$out/frey-z20-reconstructions.png" --overwrite
vae-zoo manifold mnist-z2 --grid 20 -o "$out/mnist-z2-manifold.png" --overwrite
vae-zoo manifold frey-z2 --grid 12 -o "$out/frey-z2-manifold.png" --overwrite
mnist=(); frey=()
for name in mnist-z2 mnist-z3 mnist-z5 mnist-z10 mnist-z20 mnist-z200; do
  [ -f "saved_models/$name/card.json" ] && mnist+=("$name")
done
for name in frey-z2 frey-z5 frey-z10 frey-z20; do
  [ -f "saved_models/$name/card.json" ] && frey+=("$name")
done
vae-zoo curves "${mnist[@]}" -o "$out/mnist-curves.png" --overwrite
vae-zoo curves "${frey[@]}" -o "$out/frey-curves.png" --overwrite
python docs/web_screenshot.py  # the explorer page (needs npm ci --prefix web and chromium)
