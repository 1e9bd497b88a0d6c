"""Open every page of the built docs site in headless Chromium: a screenshot per page, and a failure for a
missing image or for content wider than the main column (a table that needs sideways scrolling, anything
that sticks out). ``make docs-check``; where Chromium is not installed it says so and exits 0.

    python docs/check_site.py [--site DIR] [--shots DIR] [--width 1280]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "docs-check-result"
#: Runs in the page after load: the problems it finds go into a <pre id=MARK> that --dump-dom prints.
PROBE = (
    """<script>
window.addEventListener("load", () => setTimeout(() => {
  const problems = [];
  const main = document.querySelector("article.md-content__inner") || document.querySelector("article");
  for (const img of document.querySelectorAll("article img")) {
    if (!img.complete || img.naturalWidth === 0) problems.push("missing image: " + img.getAttribute("src"));
  }
  const right = main.getBoundingClientRect().right + 1;
  for (const el of main.querySelectorAll("img, svg, div.highlight, .xf-diff, p, h1, h2, h3, ul, ol")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > right) {
      problems.push(`${el.tagName.toLowerCase()} sticks out of the column by ${Math.round(box.right - right)}px: `
                    + el.textContent.trim().replace(/\\s+/g, " ").slice(0, 60));
    }
  }
  const column = main.clientWidth;  // material scrolls a wide table inside the column: measure the table itself
  for (const table of main.querySelectorAll("table")) {
    if (table.scrollWidth > column + 1) {
      problems.push(`table wider than the column (${table.scrollWidth}px in ${column}px): `
                    + table.rows[0].textContent.trim().replace(/\\s+/g, " ").slice(0, 60));
    }
  }
  const out = document.createElement("pre");
  out.id = "MARK";
  out.textContent = JSON.stringify({problems: problems, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
}, 300));
</script>"""
).replace("MARK", MARK)


def chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def build(site: Path) -> None:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"mkdocs build failed:\n{res.stderr[-3000:]}")


def pages(site: Path) -> list[Path]:
    """The site's pages (index.html of each folder), without search and 404."""
    found = sorted(site.glob("**/index.html"))
    return [p for p in found if not ({"search", "assets"} & set(p.relative_to(site).parts))]


def browse(browser: str, url: str, width: int, *args: str, height: int = 1000) -> str:
    profile = tempfile.mkdtemp(prefix="docs-check-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", "--virtual-time-budget=8000"]  # fmt: skip
    try:
        res = subprocess.run([browser, *flags, *args, url], capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return res.stdout


def check(site: Path, shots: Path, width: int, browser: str) -> dict[str, list[str]]:
    """{page: problems} for every page; a whole-page screenshot of each under ``shots``."""
    for page in pages(site):  # the probe goes into a copy of each page only
        page.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    shots.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[str]] = {}
    try:
        for page in pages(site):
            rel = page.parent.relative_to(site).as_posix()
            name = rel if rel != "." else "index"
            url = base + ("" if rel == "." else rel + "/")
            dom = browse(browser, url, width, "--dump-dom")
            found = re.search(rf'<pre id="{MARK}">(.*?)</pre>', dom, re.S)
            probe = json.loads(_unescape(found.group(1))) if found else {"problems": ["the page did not load"]}
            results[name] = probe["problems"]
            shot = f"--screenshot={shots / (name.replace('/', '_') + '.png')}"
            browse(browser, url, width, shot, height=min(int(probe.get("height", 1000)), 16000))  # the whole page
    finally:
        server.shutdown()
    return results


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", default=None, help="an already built site (default: build one in a temp folder)")
    p.add_argument("--shots", default=str(ROOT / "site-shots"), help="where the screenshots go")
    p.add_argument("--width", type=int, default=1280, help="browser window width in pixels")
    args = p.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("docs-check skipped: Chromium is not installed (Debian: apt install chromium)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        if args.site:
            shutil.copytree(args.site, site)
        else:
            build(site)
        results = check(site, Path(args.shots), args.width, browser)
    bad = {page: problems for page, problems in results.items() if problems}
    for page, problems in results.items():
        print(f"{'FAIL' if problems else 'ok  '} {page}")
        for problem in problems:
            print(f"     {problem}")
    print(f"{len(results)} pages, {len(bad)} with problems; screenshots in {args.shots}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
