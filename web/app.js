// The vae-zoo latent-space explorer: the bundle's ONNX decoders in onnxruntime-web (WASM), each
// verified against the sha256 of the bundle's manifest.json before it runs. No framework.
"use strict";

const params = new URLSearchParams(location.search);
const BUNDLE = params.get("bundle") || "../export/";  // the folder `vae-zoo export --all-presets` writes
const MAX_LATENT_DIM = 4096;  // a manifest asking for more is refused before anything is allocated
const IMAGE_SHAPES = {784: [28, 28], 560: [28, 20]};  // (height, width) of the zoo's data sets
const SLIDERS = 8;  // latent dimensions offered as sliders when there are more than two
const RANGE = 3;  // z in [-3, 3] on the pad and the sliders
const PAD_HEIGHT = 240;  // CSS pixels; the pad's width follows the manifold's aspect ratio

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
    if (!Number.isInteger(entry.input_dim) || !Object.hasOwn(IMAGE_SHAPES, entry.input_dim)) {  // not "784", [784]
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
  showZ();
  drawPad();
}

// The pad and the manifold behind it share one coordinate system, the paper's Figure 4: a point
// at fractions (u, v) of the pad's width and height is z = (Phi^-1(u), Phi^-1(1 - v)), so it lies
// on the manifold's tile decoded at that z.
function normalCdf(z) {  // Abramowitz and Stegun 7.1.26, |error| < 1.5e-7
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
    Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

function normalQuantile(p) {  // Acklam's rational approximation, relative error < 1.2e-9
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716,
             2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
             2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const clampZ = (z) => Math.max(-RANGE, Math.min(RANGE, z));

function drawPad() {
  const pad = $("pad");
  const context = pad.getContext("2d");
  context.clearRect(0, 0, pad.width, pad.height);
  const x = normalCdf(state.z[0]) * pad.width;
  const y = (1 - normalCdf(state.z[1])) * pad.height;
  context.lineWidth = 2;
  context.strokeStyle = "#fff";
  context.fillStyle = "#0b63c5";
  context.beginPath();
  context.arc(x, y, 6, 0, 2 * Math.PI);
  context.fill();
  context.stroke();
}

function padToZ(event) {
  const rect = $("pad").getBoundingClientRect();
  const u = (event.clientX - rect.left) / rect.width, v = (event.clientY - rect.top) / rect.height;
  state.z[0] = clampZ(normalQuantile(Math.min(1 - 1e-9, Math.max(1e-9, u))));
  state.z[1] = clampZ(normalQuantile(Math.min(1 - 1e-9, Math.max(1e-9, 1 - v))));
  show();
}

// z as text that wraps between numbers, never inside one.
function showZ() {
  const numbers = Array.from(state.z, (v, i) => {
    const span = document.createElement("span");
    span.className = "zv";
    span.textContent = v.toFixed(2) + (i < state.z.length - 1 ? "," : "");
    return span;
  });
  $("z").replaceChildren("z = [", ...numbers.flatMap((s) => [s, " "]).slice(0, -1), "]");
}

function buildLatentControls(latentDim, name) {
  state.z = new Float32Array(latentDim);
  $("pad-box").hidden = latentDim !== 2;
  if (latentDim === 2) {
    const [h, w] = state.shape, pad = $("pad");
    pad.height = PAD_HEIGHT;
    pad.width = Math.round(PAD_HEIGHT * w / h);  // the manifold's tiles are images of the data's shape
    pad.style.width = `${pad.width}px`;
    pad.style.backgroundImage = `url("../docs/gallery/${name}-manifold.png")`;
  }
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

// Each chosen test image, small, beside its menu.
function showThumbnails() {
  const images = testImages();
  for (const id of ["from", "to"]) {
    const canvas = $(`${id}-thumb`);
    canvas.hidden = !images.length;
    if (images.length) paint(canvas, images[$(id).value]);
  }
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
  buildLatentControls(entry.latent_dim, name);
  const count = testImages().length;
  for (const id of ["from", "to"]) {
    $(id).replaceChildren(...Array.from({length: count}, (_, i) => new Option(`test image ${i + 1}`, i)));
  }
  $("to").value = Math.min(1, count - 1);
  showThumbnails();
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
  for (const id of ["from", "to"]) $(id).addEventListener("change", showThumbnails);
  $("sample").addEventListener("click", () => { state.z = state.z.map(standardNormal); syncSliders(); show(); });
  const pad = $("pad");
  pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); padToZ(e); });
  pad.addEventListener("pointermove", (e) => { if (e.buttons) padToZ(e); });
  pad.addEventListener("keydown", (e) => {
    const step = {ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1]}[e.key];
    if (!step) return;
    e.preventDefault();
    state.z[0] = clampZ(state.z[0] + step[0]);
    state.z[1] = clampZ(state.z[1] + step[1]);
    show();
  });
  await choosePreset($("preset").value);
}

function syncSliders() {
  state.z.forEach((v, i) => { const s = $(`z${i}`); if (s) s.value = v; });
}

// For scripts and tests: decode a given z with the loaded decoder.
window.vaeZoo = {ready, state, interpolate, testImages, manifestProblems, normalQuantile, normalCdf,
                 decode: async (z) => Array.from(await decode(z))};
main();
