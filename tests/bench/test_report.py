"""`bench report`: one self-contained HTML page (tables as HTML, figures as base64 PNG)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from fakes import fake_record, paper_like_records, placement_records, write_records

from bench.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _ablation_records():
    return [fake_record("vip5", "direct", 1, strength=0.2 + 0.1 * k, prompt="B-8", tag=f"image-tokens-{k}")
            for k in (1, 2, 3, 5)]


@pytest.fixture
def report(tmp_path):
    results = write_records(tmp_path / "results", paper_like_records() + placement_records() + _ablation_records())
    out = tmp_path / "report.html"
    assert main(["report", "--results-dir", str(results), "--out", str(out)]) == 0
    return out


def test_report_is_one_self_contained_page_with_tables_and_figures(report):
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for title in (
        "Table 2: sequential recommendation",
        "Table 3: direct recommendation",
        "Table 4: explanation generation",
        "Table 5: training strategies of VIP5",
        "Ablation: Number of image tokens per item (Figure 6)",
        "Ablation: Adapter placement vs full fine-tuning (Figure 4)",
    ):
        assert title in page
    assert page.count("<table>") >= 6 and "<b>" in page and "&dagger;" in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) == 3, "overview figure, the placement study (Table 5's runs) and the image-tokens study"
    assert all(base64.b64decode(b).startswith(PNG) for b in images)
    # nothing is fetched from elsewhere: no external scripts, styles or images
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page and "<link" not in page


def test_report_html_is_well_formed(report):
    """Every opened element is closed in order (a browser would not complain, but a broken table would show)."""
    void = {"meta", "img", "br", "hr", "link", "input"}

    class Balance(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.errors = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if self.stack and self.stack[-1] == tag:
                self.stack.pop()
            else:
                self.errors.append((tag, self.stack[-3:]))

    p = Balance()
    p.feed(report.read_text())
    assert p.stack == [] and p.errors == []


def test_report_rejects_a_non_html_path_and_empty_results(tmp_path, capsys):
    assert main(["report", "--results-dir", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) == 2
    assert "expected an .html file" in capsys.readouterr().err
    assert main(["report", "--results-dir", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "no run records" in capsys.readouterr().err


def _browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless chromium on this machine (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(report, tmp_path):
    """Chromium opens the page: its DOM after load has every table and figure, and the
    screenshot is a page with content (many colours, little blank), not an error page."""
    from PIL import Image

    browser = _browser()
    flags = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars"]
    dom = subprocess.run(flags + ["--dump-dom", report.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    source = report.read_text()
    assert dom.count("<table") == source.count("<table") >= 5  # Tables 2-5 and the study table
    assert dom.count("<img") == source.count("<img") >= 2
    assert "Table 2" in dom and "Table 5" in dom
    shot = tmp_path / "report.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri()], check=True,
                   capture_output=True, timeout=120)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2400)
    pixels = np.asarray(img.resize((320, 600))).reshape(-1, 3)  # [N, 3]
    non_white = float((pixels.min(axis=1) < 230).mean())
    assert non_white > 0.05, f"page looks blank ({non_white:.1%} non-white)"
    assert len(np.unique(pixels, axis=0)) > 200, "no figure colours: the images did not render"
