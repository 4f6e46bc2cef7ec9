"""Open an HTML page in a real browser engine (Chromium, through Qt WebEngine, headless), save a screenshot of
the whole page and check what a reader would notice: images that do not load, and content wider than the
window (a table that runs off the page).

    pip install -e ".[browser]"
    python scripts/screenshot.py tour-out/index.html [--out tour-out/screenshot.png] [--width 1280]

Prints a JSON report and exits with 1 when an image is broken or the page is wider than the window.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# measured in the page once it and its images have loaded
_PROBE = """(() => {
  const doc = document.documentElement;
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const wide = [...document.querySelectorAll('table, img, pre')]
    .filter(e => e.getBoundingClientRect().right > doc.clientWidth + 1)
    .map(e => e.tagName.toLowerCase() + ' ' + (e.getAttribute('src') || e.textContent.slice(0, 40).trim()));
  return JSON.stringify({title: document.title, images: document.images.length, broken_images: broken,
                         page_width: doc.scrollWidth, window_width: doc.clientWidth,
                         page_height: doc.scrollHeight, too_wide: wide});
})()"""


def screenshot(page: Path, out: Path, width: int = 1280, timeout_s: float = 60.0) -> dict:
    """Load ``page``, resize the view to the page's height, save ``out`` (PNG) and return the probe's report."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")
    from PyQt6.QtCore import QSize, QTimer, QUrl
    from PyQt6.QtWebEngineWidgets import QWebEngineView
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    view = QWebEngineView()
    view.resize(QSize(width, 900))
    report: dict = {}

    def probed(result: str) -> None:
        report.update(json.loads(result))
        view.resize(QSize(width, min(int(report["page_height"]), 30_000)))
        QTimer.singleShot(1_500, grab)  # let the taller view paint

    def grab() -> None:
        report["screenshot"] = str(out) if view.grab().save(str(out)) else None
        app.quit()

    def loaded(ok: bool) -> None:
        if not ok:
            report["error"] = f"could not load {page}"
            app.quit()
            return
        QTimer.singleShot(1_000, lambda: view.page().runJavaScript(_PROBE, probed))

    view.loadFinished.connect(loaded)
    view.load(QUrl.fromLocalFile(str(page.resolve())))
    view.show()
    QTimer.singleShot(int(timeout_s * 1000), app.quit)
    app.exec()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--out", type=Path, help="PNG to write (default: beside the page, screenshot.png)")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        parser.error(f"page: no such file: {args.page}")
    report = screenshot(args.page, args.out or args.page.with_name("screenshot.png"), args.width)
    report["ok"] = bool(report) and "error" not in report and not report["broken_images"] \
        and report["page_width"] <= report["window_width"] and not report["too_wide"]
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
