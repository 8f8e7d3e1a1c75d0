"""The explorer page's server (web/serve.py) sends its allowlist and nothing else: not the checkout,
not a listing, not a file a link points to outside its folder, not to a page that reached it through
another host name; hostile or broken requests get an answer (or a closed connection), never a
traceback, and the server keeps serving."""

import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "web"))
from serve import allowlist, serving  # noqa: E402

SECRETS = [".git/config", "pyproject.toml", "vae_zoo/core/io.py", "tests/test_serve.py", "web/serve.py",
           "export/edge_demo.py", "export/README.md", "docs/gallery/secret.png", "web/node_modules/x/secret.js"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A checkout-like folder: the page, a bundle of one preset, a gallery image, and files that must
    never be served (a .git/config with credentials among them). Yields (root, base URL)."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "web").mkdir()
    for name in ("index.html", "app.js", "style.css", "test-images.json"):
        shutil.copy(REPO / "web" / name, root / "web" / name)
    runtime = root / "web/node_modules/onnxruntime-web/dist"
    runtime.mkdir(parents=True)
    for name in ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs", "ort.all.js"):
        (runtime / name).write_text(name)
    (root / "export/m").mkdir(parents=True)
    (root / "export/m/decoder.onnx").write_bytes(b"graph")
    outside = tmp_path_factory.mktemp("outside") / "passwd"
    outside.write_text("root:x:0:0")
    (root / "export/m/link.onnx").symlink_to(outside)
    (root / "export/manifest.json").write_text(json.dumps({"presets": {"m": {"artifacts": [
        {"file": "m/decoder.onnx"}, {"file": "m/link.onnx"}, {"file": "../.git/config"},
        {"file": "/etc/passwd"}, {"file": "m/missing.onnx"}]}}}))
    (root / "docs/gallery").mkdir(parents=True)
    (root / "docs/gallery/m-manifold.png").write_bytes(b"png")
    for secret in SECRETS:
        (root / secret).parent.mkdir(parents=True, exist_ok=True)
        (root / secret).write_text("url = https://user:token@example.com/repo.git")
    with serving(root, timeout=2.0) as base:
        yield root, base


def request(base, path, host=None, method="GET"):
    """(status, body) of one request with a raw path and any Host header."""
    address = base.removeprefix("http://")
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", address if host is None else host)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_the_allowlist_is_the_page_its_runtime_the_bundle_and_the_gallery(site):
    root, _ = site
    assert sorted(allowlist(root)) == [
        "/docs/gallery/m-manifold.png", "/export/m/decoder.onnx", "/export/manifest.json",
        "/web/app.js", "/web/index.html",
        "/web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
        "/web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
        "/web/node_modules/onnxruntime-web/dist/ort.wasm.min.js",
        "/web/style.css", "/web/test-images.json"]


def test_allowlisted_files_are_served_and_the_root_leads_to_the_page(site):
    root, base = site
    for path, file in allowlist(root).items():
        assert request(base, path) == (200, file.read_bytes()), path
    assert request(base, "/export/m/decoder.onnx", method="HEAD") == (200, b"")
    for path in ("/", "/web", "/web/"):
        assert request(base, path)[0] == 302


@pytest.mark.parametrize("path", [f"/{s}" for s in SECRETS] + [
    "/export/", "/export/m/", "/docs/", "/web/node_modules/", "/.git/", "/.git/HEAD", "/export/m/link.onnx",
    "/export/../.git/config", "/export/%2e%2e/.git/config", "/web/..%2fpyproject.toml", "/etc/passwd",
    "//etc/passwd", "/export/m/missing.onnx", "/web/index.html/", "/WEB/index.html", "/web\\index.html"])
def test_nothing_else_is_served_and_nothing_is_listed(site, path):
    status, body = request(site[1], path)
    assert status == 404, (path, status)
    assert b"token" not in body and b"<a href" not in body


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1", "localhost:1", "", "127.0.0.2:{port}",
                                  "localhost.evil.example:{port}"])
def test_requests_addressed_to_another_host_are_refused(site, host):
    port = site[1].rsplit(":", 1)[1]
    status, body = request(site[1], "/web/index.html", host=host.format(port=port))
    assert status == 403 and b"localhost" in body
    for name in ("localhost", "127.0.0.1", "LOCALHOST"):
        assert request(site[1], "/web/index.html", host=f"{name}:{port}")[0] == 200


@pytest.mark.parametrize("raw", [b"GET /%00 HTTP/1.1\r\nHost: {host}\r\n\r\n",
                                 b"GET /%ff%fe HTTP/1.1\r\nHost: {host}\r\n\r\n",
                                 b"GET /web/index.html\x00 HTTP/1.1\r\nHost: {host}\r\n\r\n",
                                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                                 b"POST /web/index.html HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n\r\nabc",
                                 b"GET " + b"/a" * 40000 + b" HTTP/1.1\r\n\r\n",
                                 b"GET /web/index.html HTTP/1.1\r\n"])  # and then silence
def test_broken_requests_are_answered_or_closed_and_the_server_keeps_serving(site, raw, capfd):
    base = site[1]
    address = base.removeprefix("http://")
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(raw.replace(b"{host}", address.encode()))
        started = time.monotonic()
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        assert time.monotonic() - started < 8  # a silent client is cut off by the timeout
    assert b" 200 " not in answer.split(b"\n")[0] and b"token" not in answer
    assert request(base, "/web/index.html")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_hangs_up_mid_answer_leaves_no_traceback(site, capfd):
    root, base = site
    (root / "export/m/decoder.onnx").write_bytes(b"x" * (8 << 20))
    host, port = base.removeprefix("http://").rsplit(":", 1)
    for _ in range(5):
        with socket.create_connection((host, int(port))) as connection:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            connection.sendall(f"GET /export/m/decoder.onnx HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            connection.recv(100)
    time.sleep(0.5)
    assert request(base, "/web/index.html")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#?"), max_size=60))
def test_any_path_outside_the_allowlist_is_not_served(site, path):
    root, base = site
    served = allowlist(root)
    status, body = request(base, "/" + path)
    if status == 200:
        from urllib.parse import unquote

        assert unquote("/" + path.lstrip("/")) in served, path  # leading slashes are one (http.server)
    else:
        assert status in (302, 400, 404), (path, status)
        assert b"token" not in body


def test_the_command_binds_to_loopback_and_a_busy_or_invalid_port_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, str(REPO / "web/serve.py"), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--port" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for port in ("70000", "-1", "http"):
        result = subprocess.run([sys.executable, str(REPO / "web/serve.py"), "--port", port],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "port" in result.stderr and "Traceback" not in result.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(REPO / "web/serve.py"), "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/web/" in line and "this machine only" in line
    finally:
        process.kill()
        process.wait()
