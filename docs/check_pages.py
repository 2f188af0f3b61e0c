"""Look at the built site as a reader does: screenshot its main pages in headless Chromium.

    python docs/check_pages.py [--build] [--out DIR]

``--build`` builds the site first (``python -m sphinx -W -b html docs docs/_build/html``).
Every page listed below, and every gallery example's page, must exist; every image it
shows must be a file of the build; and its screenshot (``DIR/<page>.png``, default
``docs/_build/screenshots``) must not be blank. Exits non-zero, naming the page, when one
is not so. Needs Chromium (Debian: ``apt-get install chromium``) and matplotlib (to read
the screenshots).
"""

import argparse
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

DOCS = Path(__file__).resolve().parent
HTML = DOCS / "_build" / "html"
PAGES = ["index", "getting_started", "user_guide/index", "user_guide/model",
         "user_guide/sequences", "user_guide/pipelines", "user_guide/capsules",
         "user_guide/maps", "user_guide/forecasting", "user_guide/sprites",
         "user_guide/networks", "user_guide/training", "user_guide/promises",
         "reproducing", "learned", "scaling", "api",
         "changelog", "generated/sktvae.TopographicVAE", "generated/sktvae.VAE",
         "generated/sktvae.SequenceTransformer",
         "generated/sktvae.metrics.equivariance_error", "generated/sktvae.metrics.forecast_error",
         "generated/sktvae.datasets.make_sprite_sequences",
         "generated/sktvae.plotting.plot_forecast", "generated/sktvae.FreshSequences",
         "generated/sktvae.load", "generated/sktvae.metrics.log_likelihood_per_frame",
         "generated/sktvae.datasets.sprite_grid_sequences", "auto_examples/index"]


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


def missing_images(page):
    """The images ``page`` shows that are not files of the build."""
    parser = _Images()
    parser.feed(page.read_text(encoding="utf-8"))
    missing = []
    for src in parser.sources:
        url = urlparse(src)
        if url.scheme in ("http", "https", "data"):
            continue  # not ours to check offline
        if not (page.parent / unquote(url.path)).is_file():
            missing.append(src)
    return missing


def screenshot(chromium, page, out):
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1280,2400",
                    f"--screenshot={out}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)


def is_blank(png):
    """Whether a screenshot is one colour, or nothing but the page's frame: the
    text area (the middle of the window) has almost no ink."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    middle = pixels[200:2000, 250:1030]
    return float(middle.std()) < 0.02 or float((middle.mean(-1) < 0.6).mean()) < 0.002


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="build the site first")
    parser.add_argument("--out", type=Path, default=DOCS / "_build" / "screenshots")
    args = parser.parse_args(argv)
    if args.build:
        subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
                        str(DOCS), str(HTML)], check=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is needed: apt-get install chromium")
    examples = sorted(p.relative_to(HTML).with_suffix("").as_posix()
                      for p in (HTML / "auto_examples").glob("plot_*.html"))
    if not examples:
        sys.exit("no gallery example pages in the build")
    args.out.mkdir(parents=True, exist_ok=True)
    problems = []
    for name in PAGES + examples:
        page = HTML / f"{name}.html"
        if not page.is_file():
            problems.append(f"{name}: no such page")
            continue
        problems += [f"{name}: image {src} is missing" for src in missing_images(page)]
        png = args.out / f"{name.replace('/', '__')}.png"
        screenshot(chromium, page, png)
        if is_blank(png):
            problems.append(f"{name}: the screenshot {png} is blank")
        print(f"{name}: {png}")
    if problems:
        sys.exit("\n".join(["Pages that fail:"] + problems))
    print(f"{len(PAGES) + len(examples)} pages look whole; screenshots in {args.out}")


if __name__ == "__main__":
    main()
