"""Serves the explorer page and the bundle it shows, and nothing else, on this machine only.

    python web/serve.py [--port 8000] [--bind 127.0.0.1]   then open http://localhost:8000/web/

What it serves (an allowlist, read again on every request; everything else is 404, with no
folder listings): the page (`web/index.html`, `app.js`, `style.css`, `test-images.json`), its
pinned runtime (`web/node_modules/onnxruntime-web/dist/`: `ort.wasm.min.js` and the `ort-wasm*`
files it loads), the bundle's `export/manifest.json` and the files it lists, and the 2-D presets'
manifold images in `docs/gallery/`. A file whose real path leaves its folder (a symbolic link out)
is refused. It binds to the loopback address unless `--bind` says otherwise, and answers only
requests addressed to localhost, 127.0.0.1, [::1] or the bound address, with its port (a page
elsewhere cannot reach it by DNS rebinding). Only GET and HEAD.

`serving(root)` is the same server on a free port, for the page's tests, screenshot and benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import http.server
import ipaddress
import json
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = ("index.html", "app.js", "style.css", "test-images.json")
RUNTIME = "web/node_modules/onnxruntime-web/dist"
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm*.wasm", "ort-wasm*.mjs")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
         ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream", ".png": "image/png"}
TIMEOUT = 30.0  # seconds a connection may stay silent before it is closed


def _inside(folder: Path, name: str) -> Path | None:
    """`folder/name` if it is a regular file whose real path stays inside the real `folder`."""
    if not name or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    try:
        base = folder.resolve()
        path = (base / name).resolve()
        return path if path.is_relative_to(base) and path.is_file() else None
    except (OSError, ValueError):  # a name the file system cannot hold (NUL, too long)
        return None


def allowlist(root: Path) -> dict[str, Path]:
    """URL path -> file: everything the server may send, as the folders are now."""
    web, runtime, bundle, gallery = root / "web", root / RUNTIME, root / "export", root / "docs" / "gallery"
    wanted = [(web, name) for name in PAGE] + [(bundle, "manifest.json")]
    if runtime.is_dir():
        wanted += [(runtime, p.name) for p in runtime.iterdir()
                   if any(fnmatch.fnmatchcase(p.name, pattern) for pattern in RUNTIME_FILES)]
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
        for name, entry in json.loads((bundle / "manifest.json").read_text())["presets"].items():
            wanted += [(bundle, str(artifact["file"])) for artifact in entry["artifacts"]]
            wanted.append((gallery, f"{name}-manifold.png"))
    files = {}
    for folder, name in wanted:
        real = _inside(folder, name)
        if real is not None:
            files["/" + (folder.relative_to(root) / name).as_posix()] = real
    return files


class PageHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of allowlisted files, for requests addressed to this server; no listings, no logs."""

    root: Path = REPO
    hosts: frozenset[str] = frozenset()
    timeout = TIMEOUT
    server_version = "vae-zoo-page"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        if self.headers.get("Host", "").lower() not in self.hosts:
            return self._refuse(403, "This server answers only requests addressed to localhost.")
        path = self.path.split("?", 1)[0]  # no normalisation: a path means itself or nothing
        try:
            path = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return self._refuse(400, "Bad request path.")
        if "\x00" in path:
            return self._refuse(400, "Bad request path.")
        if path in ("/", "/web", "/web/"):
            self.send_response(302)
            self.send_header("Location", "/web/index.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = allowlist(self.root).get(path)
        if file is None:
            return self._refuse(404, "Not found.")
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _refuse(self, code: int, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up or stays silent is its own business: no traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError, socket.timeout)):
            super().handle_error(request, client_address)


def _hosts(bind: str, port: int) -> frozenset[str]:
    names = {"localhost", "127.0.0.1", "[::1]", f"[{bind}]" if ":" in bind else bind}
    return frozenset({f"{name}:{port}" for name in names} | ({*names} if port == 80 else set()))


def is_loopback(bind: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(bind).is_loopback
    return bind == "localhost"


@contextlib.contextmanager
def serving(root: Path = REPO, port: int = 0, bind: str = "127.0.0.1",
            timeout: float = TIMEOUT) -> Iterator[str]:
    """The server of `root` on `bind` (`port` 0: a free one) in a thread; yields its base URL.

    Raises:
        OSError: the port is taken or the address is not this machine's.
    """
    server_class = type("Server", (PageServer,), {"address_family": socket.AF_INET6 if ":" in bind
                                                  else socket.AF_INET})
    server = server_class((bind, port), PageHandler)
    actual = server.server_address[1]
    handler = type("Handler", (PageHandler,), {"root": Path(root), "hosts": _hosts(bind, actual),
                                               "timeout": timeout})
    server.RequestHandlerClass = handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{f'[{bind}]' if ':' in bind else bind}:{actual}"
    finally:
        server.shutdown()
        server.server_close()


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535; received {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    args = parser.parse_args(argv)
    try:
        with serving(REPO, args.port, args.bind) as base:
            where = ("this machine only" if is_loopback(args.bind)
                     else f"{args.bind}: other machines can reach it, but it answers only requests addressed to it")
            print(f"Serving the explorer page on {base}/web/ ({where}; Ctrl-C stops it)", flush=True)
            threading.Event().wait()
    except OSError as error:
        print(f"serve.py: cannot listen on {args.bind}:{args.port} ({error.strerror or error}): choose another "
              "--port, or a --bind address of this machine.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
