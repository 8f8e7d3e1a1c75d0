"""Serves the repository (the explorer page in web/, the bundle in export/) on a local port.

    python web/serve.py [--port 8000]   then open http://localhost:8000/web/

`serving(root)` is the same server on a free port, for the page's tests, screenshot and benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without a log line per request."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(root: Path = REPO, port: int = 0) -> Iterator[str]:
    """A server of `root` on 127.0.0.1 (`port` 0: a free one) in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    with serving(REPO, port) as base:
        print(f"Open {base}/web/ (Ctrl-C stops the server)", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
