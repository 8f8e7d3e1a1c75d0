// The vae-zoo latent-space explorer: the bundle's ONNX decoders in onnxruntime-web (WASM), each
// verified against the sha256 of the bundle's manifest.json before it runs. No framework.
"use strict";

const params = new URLSearchParams(location.search);
const BUNDLE = params.get("bundle") || "../export/";  // the folder `vae-zoo export --all-presets` writes
const MAX_LATENT_DIM = 4096;  // a manifest asking for more is refused before anything is allocated
const IMAGE_SHAPES = {784: [28, 28], 560: [28, 20]};  // (height, width) of the zoo's data sets
const SLIDERS = 8;  // latent dimensions offered as sliders when there are more than two
const RANGE = 3;  // z in [-3, 3] on the pad and the sliders

ort.env.wasm.wasmPaths = new URL("node_modules/onnxruntime-web/dist/", location.href).href;
ort.env.wasm.numThreads = 1;  // no cross-origin isolation needed

const $ = (id) => document.getElementById(id);
const state = {manifest: null, preset: null, session: null, encoder: null, z: null, shape: null, times: [], file: null,
               testImages: {}};
let resolveReady;
const ready = new Promise((resolve) => { resolveReady = resolve; });

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function sha256(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The decoder files of a preset: float32 first, then the quantized ones the bundle ships.
function decoders(entry) {
  return entry.artifacts.filter((a) => a.part === "decoder" && a.format === "onnx");
}

// Every reason the page will not use a manifest, as plain sentences (empty: the manifest is usable).
function manifestProblems(manifest) {
  if (!manifest || typeof manifest !== "object" || !manifest.presets || typeof manifest.presets !== "object" ||
      Array.isArray(manifest.presets)) {
    return ["it has no \"presets\" object (is it the manifest.json that `vae-zoo export` writes?)"];
  }
  const names = Object.keys(manifest.presets);
  if (!names.length) return ["it lists no presets"];
  const problems = [];
  for (const name of names) {
    const entry = manifest.presets[name];
    const where = `preset ${JSON.stringify(name)}`;
    if (!entry || typeof entry !== "object") { problems.push(`${where} is not an object`); continue; }
    if (!(entry.input_dim in IMAGE_SHAPES)) {
      problems.push(`${where} has input_dim ${JSON.stringify(entry.input_dim)}; this page shows ` +
                    `${Object.keys(IMAGE_SHAPES).join(" or ")} pixels (MNIST 28 x 28, Frey Face 28 x 20)`);
    }
    if (!Number.isInteger(entry.latent_dim) || entry.latent_dim < 1 || entry.latent_dim > MAX_LATENT_DIM) {
      problems.push(`${where} has latent_dim ${JSON.stringify(entry.latent_dim)}; expected a whole number ` +
                    `from 1 to ${MAX_LATENT_DIM}`);
    }
    const artifacts = Array.isArray(entry.artifacts) ? entry.artifacts : [];
    for (const a of artifacts) {
      if (!a || typeof a.file !== "string" || !/^[\w.-]+(\/[\w.-]+)*$/.test(a.file) || a.file.split("/").includes("..")) {
        problems.push(`${where} names a file ${JSON.stringify(a && a.file)} outside its bundle folder`);
      } else if (typeof a.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(a.sha256)) {
        problems.push(`${where}: ${a.file} has no sha256 to verify it against`);
      }
    }
    if (!artifacts.some((a) => a && a.part === "decoder" && a.format === "onnx")) {
      problems.push(`${where} lists no ONNX decoder`);
    }
  }
  return problems;
}

// The graph must have the shapes its manifest entry states: z (n, latent_dim) in, x_mean (n, input_dim) out.
async function checkDecoderShape(session, entry, file) {
  if (!session.inputNames.includes("z") || !session.outputNames.includes("x_mean")) {
    throw new Error(`${file} takes ${session.inputNames.join(", ")} and gives ${session.outputNames.join(", ")}; ` +
                    "a decoder takes z and gives x_mean: refused, not run.");
  }
  let output;
  try {
    output = await session.run({z: new ort.Tensor("float32", new Float32Array(entry.latent_dim), [1, entry.latent_dim])});
  } catch (error) {
    throw new Error(`${file} does not take the manifest's latent_dim ${entry.latent_dim}: refused, not run.`);
  }
  if (output.x_mean.data.length !== entry.input_dim) {
    throw new Error(`${file} gives ${output.x_mean.data.length} pixels, the manifest's input_dim is ` +
                    `${entry.input_dim}: refused, not run.`);
  }
}

async function verifiedBytes(artifact) {
  const response = await fetch(BUNDLE + artifact.file);
  if (!response.ok) throw new Error(`${artifact.file}: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  const digest = await sha256(bytes);
  if (digest !== artifact.sha256) {
    throw new Error(`${artifact.file} does not match its sha256 in manifest.json (expected ` +
                    `${artifact.sha256.slice(0, 12)}..., got ${digest.slice(0, 12)}...): refused, not run.`);
  }
  return bytes;
}

async function loadDecoder(name, artifact) {
  state.session = null;
  setStatus(`Verifying ${artifact.file}...`);
  const bytes = await verifiedBytes(artifact);
  const session = await ort.InferenceSession.create(bytes, {executionProviders: ["wasm"]});
  await checkDecoderShape(session, state.manifest.presets[name], artifact.file);
  state.session = session;
  state.file = artifact.file;
  state.times = [];
  const size = (bytes.byteLength / 1024).toFixed(0);
  setStatus(`${artifact.file}: ${size} KB, sha256 verified against manifest.json.`);
}

async function decode(z) {
  const input = new ort.Tensor("float32", Float32Array.from(z), [1, z.length]);
  const start = performance.now();
  const output = await state.session.run({z: input});
  state.times.push(performance.now() - start);
  return output.x_mean.data;
}

function paint(canvas, pixels) {
  const [h, w] = state.shape;
  canvas.width = w;
  canvas.height = h;
  canvas.style.aspectRatio = `${w} / ${h}`;  // faces 20 wide by 28 high stay so
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
    image.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function draw(pixels) {
  paint($("image"), pixels);
  const mean = state.times.reduce((a, b) => a + b, 0) / state.times.length;
  $("timing").textContent = `decode ${state.times[state.times.length - 1].toFixed(2)} ms ` +
    `(mean ${mean.toFixed(2)} ms over ${state.times.length} frames, batch 1)`;
}

async function show() {
  if (!state.session) return;
  draw(await decode(state.z));
  $("z").textContent = "z = [" + Array.from(state.z, (v) => v.toFixed(2)).join(", ") + "]";
  drawPad();
}

function drawPad() {
  const pad = $("pad");
  const context = pad.getContext("2d");
  context.clearRect(0, 0, pad.width, pad.height);
  context.strokeStyle = "#ccc";
  context.beginPath();
  context.moveTo(pad.width / 2, 0); context.lineTo(pad.width / 2, pad.height);
  context.moveTo(0, pad.height / 2); context.lineTo(pad.width, pad.height / 2);
  context.stroke();
  const x = (state.z[0] / RANGE + 1) / 2 * pad.width;
  const y = (1 - (state.z[1] / RANGE + 1) / 2) * pad.height;
  context.fillStyle = "#0b63c5";
  context.beginPath();
  context.arc(x, y, 6, 0, 2 * Math.PI);
  context.fill();
}

function padToZ(event) {
  const rect = $("pad").getBoundingClientRect();
  const u = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
  const v = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
  state.z[0] = (2 * u - 1) * RANGE;
  state.z[1] = (1 - 2 * v) * RANGE;
  show();
}

function buildLatentControls(latentDim) {
  state.z = new Float32Array(latentDim);
  $("pad-box").hidden = latentDim !== 2;
  const sliders = $("sliders");
  sliders.replaceChildren();
  if (latentDim === 2) return;
  for (let i = 0; i < Math.min(SLIDERS, latentDim); i++) {
    const label = document.createElement("label");
    label.textContent = `z${i + 1} `;
    const slider = document.createElement("input");
    Object.assign(slider, {type: "range", min: -RANGE, max: RANGE, step: 0.05, value: 0, id: `z${i}`});
    slider.addEventListener("input", () => { state.z[i] = Number(slider.value); show(); });
    label.append(slider);
    sliders.append(label);
  }
}

function standardNormal() {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

// The interpolation panel: the encoder (verified like the decoders), then the decoded path.
async function interpolate(a, b, steps = 8) {
  const entry = state.manifest.presets[state.preset];
  if (!state.encoder) {
    const artifact = entry.artifacts.find((x) => x.part === "encoder" && x.format === "onnx" && !x.quantize);
    state.encoder = await ort.InferenceSession.create(await verifiedBytes(artifact), {executionProviders: ["wasm"]});
  }
  const d = entry.input_dim;
  const x = new Float32Array(2 * d);
  x.set(a, 0);
  x.set(b, d);
  const encoded = await state.encoder.run({x: new ort.Tensor("float32", x, [2, d])});
  const means = encoded.z_mean.data, k = entry.latent_dim;
  const z = new Float32Array(steps * k);
  for (let s = 0; s < steps; s++) {
    const t = s / (steps - 1);
    for (let j = 0; j < k; j++) z[s * k + j] = (1 - t) * means[j] + t * means[k + j];
  }
  const output = await state.session.run({z: new ort.Tensor("float32", z, [steps, k])});
  return Array.from({length: steps}, (_, s) => Array.from(output.x_mean.data.slice(s * d, (s + 1) * d)));
}

function testImages() {
  const set = state.testImages[state.manifest.presets[state.preset].input_dim];
  return set ? set.rows.map((row) => row.map((v) => v / 255)) : [];
}

async function showPath() {
  const images = testImages();
  try {
    const path = await interpolate(images[$("from").value], images[$("to").value]);
    $("path").replaceChildren(...path.map((pixels, i) => {
      const canvas = document.createElement("canvas");
      canvas.setAttribute("aria-label", `step ${i + 1} of ${path.length}`);
      paint(canvas, pixels);
      return canvas;
    }));
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function choosePreset(name) {
  const entry = state.manifest.presets[name];
  state.preset = name;
  state.encoder = null;
  state.shape = IMAGE_SHAPES[entry.input_dim];
  buildLatentControls(entry.latent_dim);
  $("manifold-box").hidden = entry.latent_dim !== 2;
  if (entry.latent_dim === 2) $("manifold").src = `../docs/gallery/${name}-manifold.png`;
  const count = testImages().length;
  for (const id of ["from", "to"]) {
    $(id).replaceChildren(...Array.from({length: count}, (_, i) => new Option(`test image ${i + 1}`, i)));
  }
  $("to").value = Math.min(1, count - 1);
  $("path").replaceChildren();
  const variant = $("variant");
  variant.replaceChildren(...decoders(entry).map((a) => {
    const mode = a.quantize || "float32";
    return new Option(`${mode}${a.size_bytes ? ` (${(a.size_bytes / 1024).toFixed(0)} KB)` : ""}`, a.file);
  }));
  await chooseVariant();
}

async function chooseVariant() {
  const entry = state.manifest.presets[state.preset];
  const artifact = decoders(entry).find((a) => a.file === $("variant").value);
  try {
    await loadDecoder(state.preset, artifact);
    await show();
  } catch (error) {
    setStatus(error.message, true);
  }
  resolveReady();
}

function refuse(text) {
  setStatus(text, true);
  resolveReady();
}

async function main() {
  const bundle = new URL(BUNDLE, location.href);
  if (bundle.origin !== location.origin) {
    refuse(`The page runs bundles from its own server only; ${bundle.origin} is another. Copy the bundle next to ` +
           "the page and give ?bundle=FOLDER/.");
    return;
  }
  try {
    const response = await fetch(BUNDLE + "manifest.json");
    if (!response.ok) throw new Error(`${BUNDLE}manifest.json: HTTP ${response.status}`);
    state.manifest = await response.json();
    state.testImages = await (await fetch("test-images.json")).json();
  } catch (error) {
    refuse(`Cannot read the bundle's manifest (${error.message}). Serve the repository's root and open ` +
           "/web/index.html, or give ?bundle=FOLDER/.");
    return;
  }
  const problems = manifestProblems(state.manifest);
  if (problems.length) {
    refuse(`The bundle's manifest.json cannot be used: ${problems.slice(0, 3).join("; ")}` +
           `${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ""}.`);
    state.manifest = null;
    return;
  }
  const names = Object.keys(state.manifest.presets);
  $("preset").replaceChildren(...names.map((n) => new Option(n, n)));
  $("preset").value = names.includes(params.get("preset")) ? params.get("preset") : names[0];
  $("preset").addEventListener("change", () => choosePreset($("preset").value));
  $("variant").addEventListener("change", chooseVariant);
  $("interpolate").addEventListener("click", showPath);
  $("sample").addEventListener("click", () => { state.z = state.z.map(standardNormal); syncSliders(); show(); });
  const pad = $("pad");
  pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); padToZ(e); });
  pad.addEventListener("pointermove", (e) => { if (e.buttons) padToZ(e); });
  pad.addEventListener("keydown", (e) => {
    const step = {ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1]}[e.key];
    if (!step) return;
    e.preventDefault();
    state.z[0] = Math.max(-RANGE, Math.min(RANGE, state.z[0] + step[0]));
    state.z[1] = Math.max(-RANGE, Math.min(RANGE, state.z[1] + step[1]));
    show();
  });
  await choosePreset($("preset").value);
}

function syncSliders() {
  state.z.forEach((v, i) => { const s = $(`z${i}`); if (s) s.value = v; });
}

// For scripts and tests: decode a given z with the loaded decoder.
window.vaeZoo = {ready, state, interpolate, testImages, decode: async (z) => Array.from(await decode(z))};
main();
