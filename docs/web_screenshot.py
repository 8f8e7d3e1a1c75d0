"""Screenshot of the explorer page (web/) for the README's gallery: the repository served on a
free local port, mnist-z2's float32 decoder at z = (0.8, -0.6) and the path between two test images, in Debian's
headless Chromium.

    npm ci --prefix web && python docs/web_screenshot.py   (docs/make_gallery.sh runs it)
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "web"))
from serve import serving  # noqa: E402

OUT = REPO / "docs" / "gallery" / "web-explorer.png"


def main() -> int:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with serving(REPO) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(f"{base}/web/index.html?preset=mnist-z2")
        page.wait_for_function("window.vaeZoo !== undefined")
        page.evaluate("window.vaeZoo.ready")
        box = page.locator("#pad").bounding_box()  # click the point to z = (0.8, -0.6)
        page.mouse.click(box["x"] + box["width"] * (0.8 / 6 + 0.5), box["y"] + box["height"] * (0.6 / 6 + 0.5))
        page.wait_for_function("window.vaeZoo.state.z[0] > 0.7")
        page.select_option("#to", "3")
        page.click("#interpolate")  # test images 1 and 4, and the path between them
        page.wait_for_function("document.querySelectorAll('#path canvas').length === 8")
        page.screenshot(path=str(OUT), full_page=True)
        browser.close()
    print(f"Wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
