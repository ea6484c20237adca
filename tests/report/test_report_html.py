"""report.html: self-contained (inline PNGs, nothing external), its sections, and the summary's figures."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from capacity.core.errors import CapacityError
from capacity.report import write_report
from capacity.report.html_page import SECTIONS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects what the test checks: section ids, img sources, every URL-ish attribute, figure cells."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.urls: list[str] = []
        self.figures: dict[str, str] = {}
        self.tags: list[str] = []
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        if tag == "img":
            self.images.append(a)
        self.urls += [a[k] for k in ("src", "href", "data", "action") if k in a]
        self._key = a.get("data-key")

    def handle_data(self, data: str) -> None:
        if self._key:
            self.figures[self._key] = data.strip()
            self._key = None


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


@pytest.fixture
def run_dir(tmp_path: Path, synthetic_run: Callable[..., Path]) -> Path:
    return synthetic_run(tmp_path, 120.0)


def test_report_is_self_contained_and_shows_the_summary(run_dir: Path) -> None:
    html_path = write_report(run_dir)
    assert html_path == run_dir / "report.html"
    text = html_path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert page.sections == [sid for sid, _ in SECTIONS]
    assert "script" not in page.tags and "link" not in page.tags  # no JS, no external CSS
    # five plots, each a data URI that decodes to a real, non-trivial PNG
    assert {i["data-plot"] for i in page.images} == {
        "goodput",
        "latency",
        "resources",
        "timeline",
        "search-path",
    }
    for img in page.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        w, h = png_size(png)
        assert w >= 600 and h >= 300 and len(png) > 10_000
        assert img["alt"]
    # nothing on the page reaches the network
    assert not [u for u in page.urls if not u.startswith(("data:", "#"))]
    assert not re.search(r"url\(\s*['\"]?https?:", text) and "@import" not in text
    # the capacity figures are the summary's
    summary = json.loads((run_dir / "summary.json").read_text())
    assert float(page.figures["slo_capacity"]) == pytest.approx(summary["slo_capacity_rps"], abs=0.05)
    assert float(page.figures["saturation"]) == pytest.approx(summary["saturation_rps"], abs=0.05)
    assert float(page.figures["knee"]) == pytest.approx(summary["knee_rps"], abs=0.05)
    lo, hi = summary["capacity_interval"]
    assert f"{lo:.1f} – {hi:.1f}" in text
    # which signal set each, the recommendation with its inputs, every stage with its verdict
    assert "p95_ms" in text and "goodput" in text
    assert "15 app tasks, 3 Sidekiq tasks (binding: app threads)" in text
    assert "inputs.per_task_rps" in text and "inputs.zones" in text
    assert text.count('class="v-fail">fail<') >= 2  # stage table and search-path table
    assert summary["run_id"] in text
    # the PNGs are on disk too, identical to the inlined ones
    assert sorted(p.name for p in (run_dir / "plots").glob("*.png")) == [
        "goodput.png",
        "latency.png",
        "resources.png",
        "search-path.png",
        "timeline.png",
    ]


def test_summary_md_states_the_figures_and_the_recommendation(run_dir: Path) -> None:
    write_report(run_dir)
    md = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert "| SLO capacity | 120.0 req/s [114.0, 126.0] | p95_ms |" in md
    assert "| Saturation throughput | 126.0 req/s [120.0, 132.0] | goodput |" in md
    assert "**Production:** 15 app tasks, 3 Sidekiq tasks" in md
    assert "stopped: guard:p95; 5 stage(s)" in md


def test_unfinished_run_still_gets_a_report(tmp_path: Path, synthetic_run: Callable[..., Path]) -> None:
    run = synthetic_run(tmp_path, 80.0, with_summary=False)
    text = write_report(run).read_text(encoding="utf-8")
    assert "did not finish" in text
    page = Page()
    page.feed(text)
    assert page.figures["slo_capacity"] == "80.0"  # from analysis.json when the summary is missing
    assert len(page.images) == 5
    (run / "analysis.json").unlink()
    page = Page()
    page.feed(write_report(run).read_text(encoding="utf-8"))
    assert page.figures["slo_capacity"] == "—"
    assert "not determined" in (run / "summary.md").read_text()


def test_not_a_run_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CapacityError, match="not a run folder"):
        write_report(tmp_path)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.slow
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    html = write_report(run_dir)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    data = shot.read_bytes()
    assert png_size(data) == (1200, 2400)
    assert len(data) > 50_000  # a blank page compresses to a few kB; text and plots do not
