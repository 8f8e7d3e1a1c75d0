"""The latent-space explorer page (web/) in a real headless Chromium: the pixels it decodes equal
onnxruntime's in Python, dragging the pad changes the image, a tampered graph is refused with a
visible message, and the page asks nothing of any server but the local one.

Needs Chromium (`apt-get install chromium`; .ci/run installs it) and the page's runtime
(`npm ci --prefix web`)."""

import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytestmark = pytest.mark.slow  # starts a browser

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "web"))
from serve import serving  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local server of a folder holding the page (web/), the bundle (export/) and the manifold
    images (docs/gallery/): (root, base URL)."""
    root = tmp_path_factory.mktemp("site")
    for folder in ("web", "export", "docs"):
        (root / folder).symlink_to(REPO / folder)
    with serving(root) as base:
        yield root, base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, url, viewport=None):
    page = browser.new_page(**({"viewport": viewport} if viewport else {}))
    page.set_default_timeout(120_000)  # a loaded CI machine compiles the WASM runtime slowly
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_function("window.vaeZoo !== undefined")
    page.evaluate("window.vaeZoo.ready")
    return page, requests


def canvas_pixels(page):
    return page.evaluate("""() => {
        const c = document.getElementById('image');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""")


def recorded_difference(variant):
    """The manifest's max abs difference of a quantized decoder from the float32 one."""
    import json

    manifest = json.loads((REPO / "export" / "manifest.json").read_text())
    artifact = next(a for a in manifest["presets"]["mnist-z2"]["artifacts"] if a["file"] == f"mnist-z2/{variant}")
    return artifact["difference_from_float32"]["max_abs"]


@pytest.mark.parametrize("variant", ["decoder.onnx", "decoder.float16.onnx", "decoder.int8-dynamic.onnx"])
def test_the_page_decodes_what_onnxruntime_decodes_in_python(site, browser, variant):
    """float32: within 1e-5 of onnxruntime in Python; a quantized decoder: its WASM kernels and
    Python's differ by less than the difference from float32 its manifest records."""
    tolerance = 1e-5 if variant == "decoder.onnx" else recorded_difference(variant)
    _, base = site
    page, requests = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")
    if variant != "decoder.onnx":
        page.select_option("#variant", f"mnist-z2/{variant}")
        page.wait_for_function(f"window.vaeZoo.state.file === 'mnist-z2/{variant}'")
    z = [0.7, -1.2]
    in_browser = np.array(page.evaluate("z => window.vaeZoo.decode(z)", z), np.float32)
    session = ort.InferenceSession(str(REPO / "export" / "mnist-z2" / variant))
    (in_python,) = session.run(["x_mean"], {"z": np.array([z], np.float32)})
    np.testing.assert_allclose(in_browser, in_python[0], atol=tolerance)
    assert "sha256 verified" in page.inner_text("#status")
    assert all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]
    page.close()


def test_dragging_the_pad_and_the_keys_change_the_image(site, browser):
    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")
    before = canvas_pixels(page)
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.15, steps=5)
    page.mouse.up()
    page.wait_for_function("window.vaeZoo.state.z[0] > 1.2")  # Phi^-1(0.9) = 1.28: the manifold's coordinates
    dragged = canvas_pixels(page)
    assert dragged != before
    z0 = page.evaluate("window.vaeZoo.state.z[0]")
    page.locator("#pad").press("ArrowLeft")  # focuses the pad, then the key: z1 - 0.1
    page.wait_for_function(f"window.vaeZoo.state.z[0] < {z0 - 0.05}")
    page.select_option("#preset", "mnist-z20")  # sliders and the prior button for a 20-D latent space
    page.wait_for_function("window.vaeZoo.state.z.length === 20 && window.vaeZoo.state.session !== null")
    assert page.locator("#sliders input").count() == 8 and page.is_hidden("#pad-box")
    page.click("#sample")
    page.wait_for_function("Array.from(window.vaeZoo.state.z).some(v => v !== 0)")
    page.close()


def test_a_tampered_graph_is_refused_with_a_visible_message(tmp_path, browser):
    root = tmp_path / "site"
    root.mkdir()
    (root / "web").symlink_to(REPO / "web")
    shutil.copytree(REPO / "export", root / "export", ignore=shutil.ignore_patterns("*.py"))
    decoder = root / "export" / "mnist-z2" / "decoder.onnx"
    payload = bytearray(decoder.read_bytes())
    payload[-100] ^= 0xFF
    decoder.write_bytes(bytes(payload))
    with serving(root) as base:
        page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")
        status = page.inner_text("#status")
        assert "decoder.onnx does not match its sha256 in manifest.json" in status and "refused" in status
        assert page.evaluate("window.vaeZoo.state.session") is None
        page.close()


def test_interpolation_ends_reconstruct_the_two_images_as_python_does(site, browser):
    import json

    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")
    rows = np.array(json.loads((REPO / "web" / "test-images.json").read_text())["784"]["rows"], np.float32) / 255
    path = np.array(page.evaluate("async () => { const x = window.vaeZoo.testImages(); "
                                  "return await window.vaeZoo.interpolate(x[0], x[3], 6); }"), np.float32)
    encoder = ort.InferenceSession(str(REPO / "export" / "mnist-z2" / "encoder.onnx"))
    decoder = ort.InferenceSession(str(REPO / "export" / "mnist-z2" / "decoder.onnx"))
    z_mean, _ = encoder.run(["z_mean", "z_log_var"], {"x": rows[[0, 3]]})
    (ends,) = decoder.run(["x_mean"], {"z": z_mean})
    assert path.shape == (6, 784)
    np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-5)
    page.select_option("#to", "3")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#path canvas').length === 8")
    page.close()


def test_the_pad_lies_on_the_manifold_the_point_decodes_its_tile(site, browser):
    """The pad's background is the preset's manifold (paper Figure 4: decoder means at quantiles of
    N(0, 1)); a click at the centre of a tile sets that tile's z and the image shows that tile."""
    from PIL import Image
    from scipy.stats import norm

    _, base = site
    for preset, n in (("mnist-z2", 20), ("frey-z2", 12)):  # the grids of docs/make_gallery.sh
        page, _ = open_page(browser, f"{base}/web/index.html?preset={preset}")
        assert f"{preset}-manifold.png" in page.evaluate("getComputedStyle(document.getElementById('pad'))"
                                                         ".backgroundImage")
        manifold = np.asarray(Image.open(REPO / "docs" / "gallery" / f"{preset}-manifold.png"), np.int16)[::3, ::3]
        h, w = (28, 28) if preset == "mnist-z2" else (28, 20)
        box = page.locator("#pad").bounding_box()
        assert abs(box["width"] / box["height"] - manifold.shape[1] / manifold.shape[0]) < 0.02
        for i, j in ((2, 3), (n - 4, n // 2)):  # column i from the left, row j from the top
            page.mouse.click(box["x"] + (i + 0.5) / n * box["width"], box["y"] + (j + 0.5) / n * box["height"])
            expected = norm.ppf([(i + 0.5) / n, 1 - (j + 0.5) / n])
            page.wait_for_function(f"Math.abs(window.vaeZoo.state.z[0] - {expected[0]}) < 0.02")
            np.testing.assert_allclose(page.evaluate("Array.from(window.vaeZoo.state.z)"), expected, atol=0.02)
            page.evaluate(f"window.vaeZoo.state.z.set([{expected[0]}, {expected[1]}])")  # exactly the tile's z
            pixels = np.array(page.evaluate("(async () => Array.from(await window.vaeZoo.decode("
                                            "window.vaeZoo.state.z)))()"))
            tile = manifold[j * h:(j + 1) * h, i * w:(i + 1) * w]
            assert np.abs(np.round(np.clip(pixels, 0, 1) * 255).reshape(h, w) - tile).max() <= 2
        page.close()


def test_z_wraps_between_numbers_and_the_path_shows_its_two_images(site, browser):
    import json

    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z200", {"width": 375, "height": 740})
    page.click("#sample")
    page.wait_for_function("document.querySelectorAll('#z .zv').length === 200")
    lines = page.evaluate("Array.from(document.querySelectorAll('#z .zv'), s => s.getClientRects().length)")
    assert set(lines) == {1}  # no number is split across lines
    assert page.evaluate("document.getElementById('z').getClientRects()[0].height") > 40  # it does wrap
    rows = json.loads((REPO / "web" / "test-images.json").read_text())["784"]["rows"]
    page.select_option("#to", "5")
    for menu, index in (("from", 0), ("to", 5)):
        thumb = page.evaluate(f"""(() => {{ const c = document.getElementById('{menu}-thumb');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }})()""")
        assert thumb[0::4] == rows[index]  # the grey level of every pixel of the chosen test image
    page.close()


def test_readable_at_phone_width_and_operable_by_keyboard(site, browser):
    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2", {"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    focusable = page.evaluate("""() => Array.from(document.querySelectorAll('select, button, input, [tabindex]'))
        .filter(e => !e.closest('[hidden]')).map(e => e.id)""")
    assert {"preset", "variant", "pad", "sample", "from", "to", "interpolate"} <= set(focusable)
    page.keyboard.press("Tab")  # the first control takes the focus from the keyboard
    assert page.evaluate("document.activeElement.id") == "preset"
    page.close()


def _site_with_manifest(root, manifest, swapped=False):
    """A site whose bundle is the real one (symlinked files) with `manifest` as its manifest.json;
    `swapped`: mnist-z2's decoder.onnx is frey-z2's."""
    import json

    (root / "web").symlink_to(REPO / "web")
    bundle = root / "export"
    bundle.mkdir()
    for item in (REPO / "export").iterdir():
        if item.name != "manifest.json" and not (swapped and item.name == "mnist-z2"):
            (bundle / item.name).symlink_to(item)
    if swapped:
        shutil.copytree(REPO / "export" / "mnist-z2", bundle / "mnist-z2")
        shutil.copy(REPO / "export" / "frey-z2" / "decoder.onnx", bundle / "mnist-z2" / "decoder.onnx")
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _manifest_cases():
    import copy
    import json

    real = json.loads((REPO / "export" / "manifest.json").read_text())
    one = {"presets": {"mnist-z2": real["presets"]["mnist-z2"]}}

    def changed(change):
        manifest = copy.deepcopy(one)
        change(manifest["presets"]["mnist-z2"])
        return manifest

    frey_decoder = next(a for a in real["presets"]["frey-z2"]["artifacts"] if a["file"] == "frey-z2/decoder.onnx")

    def swap(entry):  # the manifest verifies frey-z2's decoder bytes as mnist-z2's decoder.onnx
        entry["artifacts"] = [{**a, "sha256": frey_decoder["sha256"]} if a["file"] == "mnist-z2/decoder.onnx" else a
                              for a in entry["artifacts"]]
    return {
        "empty": ({}, "no \"presets\" object"),
        "no presets": ({"presets": {}}, "lists no presets"),
        "unknown input_dim": (changed(lambda e: e.update(input_dim=1000)), "input_dim 1000"),
        "huge latent_dim": (changed(lambda e: e.update(latent_dim=10**9)), "latent_dim 1000000000"),
        "no artifacts": (changed(lambda e: e.update(artifacts=[])), "lists no ONNX decoder"),
        "file outside the bundle": (changed(lambda e: e["artifacts"][1].update(file="../../.git/config")),
                                    "outside its bundle folder"),
        # frey-z2's decoder (560 pixels) listed as mnist-z2's (784): verified bytes, wrong shape
        "decoder of the wrong width": (changed(swap), "gives 560 pixels"),
    }


@pytest.mark.parametrize("case", list(_manifest_cases()))
def test_a_manifest_the_page_cannot_use_is_refused_in_a_sentence(case, tmp_path, browser):
    manifest, words = _manifest_cases()[case]
    _site_with_manifest(tmp_path, manifest, swapped=case == "decoder of the wrong width")
    with serving(tmp_path) as base:
        page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")
        status = page.inner_text("#status")
        assert words in status and page.evaluate("document.getElementById('status').classList.contains('error')"), \
            status
        assert page.evaluate("window.vaeZoo.state.session") is None
        page.close()


def test_a_bundle_of_another_origin_is_not_run(site, browser):
    _, base = site
    page, requests = open_page(browser, f"{base}/web/index.html?bundle=http://example.invalid/export/")
    assert "its own server only" in page.inner_text("#status")
    from urllib.parse import urlparse

    assert not any(urlparse(url).hostname == "example.invalid" for url in requests)
    page.close()


def test_frey_faces_keep_their_aspect_ratio(site, browser):
    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=frey-z2")
    box = page.evaluate("(() => { const r = document.getElementById('image').getBoundingClientRect();"
                        " return [r.width, r.height]; })()")
    assert abs(box[0] / box[1] - 20 / 28) < 0.03, box  # 20 wide, 28 high
    page.close()


def _usable(manifest) -> bool:
    """What the page may use, stated independently of web/app.js: a "presets" object of entries
    with a known image size, a latent size of 1..4096, artifact files inside the bundle with a
    sha256 each, and an ONNX decoder. JSON numbers have no int/float distinction: 784.0 is 784."""
    import re

    def whole(v, low, high):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and low <= v <= high

    presets = manifest.get("presets") if isinstance(manifest, dict) else None
    if not isinstance(presets, dict) or not presets:
        return False
    for entry in presets.values():
        if not isinstance(entry, dict) or not (whole(entry.get("input_dim"), 0, 10**6)
                                               and entry["input_dim"] in (784, 560)):
            return False
        if not whole(entry.get("latent_dim"), 1, 4096):
            return False
        artifacts = entry.get("artifacts") if isinstance(entry.get("artifacts"), list) else []
        for a in artifacts:
            file = a.get("file") if isinstance(a, dict) else None
            if not isinstance(file, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", file) \
                    or ".." in file.split("/"):
                return False
            if not isinstance(a.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", a["sha256"]):
                return False
        if not any(isinstance(a, dict) and a.get("part") == "decoder" and a.get("format") == "onnx"
                   for a in artifacts):
            return False
    return True


def _manifests():
    """Manifests the page could be given: usable ones with up to two fields replaced by odd or
    hostile values (strings for numbers, inherited property names, paths out of the bundle), and
    arbitrary JSON."""
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-10**10, 10**10) | st.floats(allow_nan=False,
                                                                                   allow_infinity=False) | st.text()
    anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                            st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
    odd = {
        "input_dim": st.sampled_from([784, 560, 784.0, "784", [784], [560], 0, 1000, True, None, "constructor",
                                      "toString", "__proto__", {"784": 1}]),
        "latent_dim": st.sampled_from([1, 2, 4096, 4097, 0, -1, 2.5, 2.0, 10**9, "2", [2], True, None]),
        "file": st.sampled_from(["m/decoder.onnx", "decoder.onnx", "m/../x", "../x", "/etc/passwd", "a//b", "", ".",
                                 "..", "m/./d.onnx", "m\\d.onnx", "d\u00e9.onnx", "m/d.onnx?x", "m/d.onnx/", 3, None,
                                 ["m/decoder.onnx"]]),
        "sha256": st.sampled_from(["0" * 64, "a" * 64, "A" * 64, "0" * 63, "0" * 65, "", None, 5, ["0" * 64]]),
        "part": st.sampled_from(["decoder", "encoder", "Decoder", None, ["decoder"]]),
        "format": st.sampled_from(["onnx", "tflite", "ONNX", None]),
        "artifacts": st.sampled_from([[], None, {}, "decoder.onnx", [None], [[]], [1]]),
        "entry": st.sampled_from([None, [], "mnist-z2", 0, {}]),
        "presets": st.sampled_from([None, [], {}, "x", [{"input_dim": 784}]]),
    }

    @st.composite
    def changed(draw):
        name = draw(st.sampled_from(["mnist-z2", "__proto__", "constructor", "", "x\"y", "\u00e9"])
                    | st.text(max_size=6))
        artifacts = [{"file": "m/decoder.onnx", "sha256": "0" * 64, "part": "decoder", "format": "onnx"},
                     {"file": "m/encoder.onnx", "sha256": "1" * 64, "part": "encoder", "format": "onnx"}]
        entry = {"input_dim": draw(st.sampled_from([784, 560])), "latent_dim": draw(st.integers(1, 4096)),
                 "artifacts": artifacts[:draw(st.integers(1, 2))]}
        manifest = {"presets": {name: entry}}
        for field in draw(st.lists(st.sampled_from(sorted(odd)), max_size=2)):
            value = draw(odd[field] | anything)
            items = entry.get("artifacts") if isinstance(entry.get("artifacts"), list) else []
            items = [a for a in items if isinstance(a, dict)]
            if field in ("input_dim", "latent_dim", "artifacts"):
                entry[field] = value
            elif field in ("file", "sha256", "part", "format") and items:
                items[draw(st.integers(0, len(items) - 1))][field] = value
            elif field == "entry" and isinstance(manifest["presets"], dict):
                manifest["presets"][name] = value
            elif field == "presets":
                manifest["presets"] = value
        return manifest

    return changed() | anything


def test_any_manifest_is_used_only_if_it_is_usable_and_never_throws(site, browser):
    """A generated search of manifests (JSON parsed as the page parses it): the page's check never
    throws, answers sentences, and accepts exactly the manifests `_usable` accepts."""
    import json

    from hypothesis import HealthCheck, given, settings

    _, base = site
    page, _ = open_page(browser, f"{base}/web/index.html?preset=mnist-z2")

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(manifest=_manifests())
    def check(manifest):
        answer = page.evaluate("""text => { try { return window.vaeZoo.manifestProblems(JSON.parse(text)); }
                                            catch (error) { return 'threw ' + error; } }""", json.dumps(manifest))
        assert isinstance(answer, list) and all(isinstance(p, str) and p for p in answer), answer
        assert (answer == []) == _usable(manifest), (manifest, answer)

    check()
    page.close()
