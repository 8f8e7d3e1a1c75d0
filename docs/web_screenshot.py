"""Screenshot of the explorer page (web/) for the README's gallery: the repository served on a
free local port, mnist-z2's float32 decoder at z = (0.8, -0.6), in Debian's headless Chromium.

    npm ci --prefix web && python docs/web_screenshot.py   (docs/make_gallery.sh runs it)
"""

import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without a log line per request."""

    def log_message(self, *args):
        pass
OUT = REPO / "docs" / "gallery" / "web-explorer.png"


def main() -> int:
    handler = functools.partial(QuietHandler, directory=str(REPO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 640})
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/web/index.html?preset=mnist-z2")
            page.wait_for_function("window.vaeZoo !== undefined")
            page.evaluate("window.vaeZoo.ready")
            box = page.locator("#pad").bounding_box()  # drag the point to z = (0.8, -0.6)
            page.mouse.click(box["x"] + box["width"] * (0.8 / 6 + 0.5), box["y"] + box["height"] * (0.6 / 6 + 0.5))
            page.wait_for_function("window.vaeZoo.state.z[0] > 0.7")
            page.screenshot(path=str(OUT))
            browser.close()
    finally:
        server.shutdown()
    print(f"Wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
