"""report.html opens in a real headless Chromium with no console errors, every chart drawn, and a screenshot
that shows them. Skipped only where Chromium is not installed (.ci/run installs Debian's chromium)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import splink_er

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_errors(stderr: str) -> list[str]:
    # Chromium logs page console messages as `... CONSOLE(line)] "message", source: ...`
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "rror" in line)]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = splink_er.run(
        splink_er.demo_settings_path(),
        quiet=True,
        overrides=[f"output_dir={out}", f"labels.path={out / 'labels.jsonl'}"],
    )
    return result.output_dir / "report.html"


def test_report_is_self_contained(demo_report):
    text = demo_report.read_text()
    assert not re.search(r"""(src|href)=["']https?://""", text)  # nothing fetched from a network
    for section in ("summary", "accuracy", "model", "rounds", "distribution", "pairs", "entities"):
        assert f'id="{section}"' in text
    assert "SIMULATED" in text and "F1 <b>0.9" in text


@pytest.mark.e2e
@needs_chromium
def test_report_loads_in_headless_chromium_with_every_chart_drawn(demo_report, tmp_path):
    run = chromium(tmp_path, demo_report, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_errors(run.stderr) == []
    svgs = re.findall(r"<svg.*?</svg>", run.stdout, flags=re.S)
    # match weights, m/u, rounds, distribution, and one waterfall per listed pair
    assert len(svgs) >= 6
    assert all(len(re.findall(r"<(path|rect|line)\b", s)) >= 5 for s in svgs)  # every chart has drawn marks


@pytest.mark.e2e
@needs_chromium
def test_report_screenshot_shows_the_charts(demo_report, tmp_path):
    shot = tmp_path / "report.png"
    run = chromium(tmp_path, demo_report, "--window-size=1300,2600", f"--screenshot={shot}")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    img = Image.open(shot).convert("RGB").resize((260, 520))
    pixels = list(img.get_flattened_data())
    non_white = sum(1 for p in pixels if sum(p) < 720) / len(pixels)
    colours = {(r // 32, g // 32, b // 32) for r, g, b in pixels}
    # Text and tables alone give a few greys; the charts add green, red and blue areas.
    assert non_white > 0.05 and len(colours) >= 12
    greens = sum(1 for r, g, b in pixels if g > r + 40 and g > b + 20)
    assert greens > 50  # match-weight bars are drawn


@pytest.mark.e2e
@needs_chromium
def test_the_console_check_catches_a_broken_page(tmp_path):
    # The check above can fail: a page that throws is reported.
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>throw new Error('boom')</script></body></html>")
    assert console_errors(chromium(tmp_path, page, "--dump-dom").stderr)
