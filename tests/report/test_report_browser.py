"""Open the report in a real headless Chromium: every embedded image decodes, the tables render, a screenshot is taken.

Chromium is the Debian package (``/usr/bin/chromium``). When it is missing and the tests run as root on a machine with
``apt-get``, one bounded install is attempted; otherwise the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

pytestmark = pytest.mark.chromium

INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 90
_NAMES = ("chromium", "chromium-browser", "/usr/bin/chromium")


def _which() -> str | None:
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


def _try_install() -> str:
    """One bounded ``apt-get install chromium`` (``apt-get update`` first when the package is unknown)."""
    if os.name != "posix" or os.geteuid() != 0:
        return "not root, so no apt-get install was attempted"
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    steps = (
        [apt, "install", "-y", "-q", "chromium"],
        [apt, "update", "-q"],
        [apt, "install", "-y", "-q", "chromium"],
    )
    last = ""
    for step in steps:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"apt-get ran past {INSTALL_TIMEOUT_S} s"
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=left, check=False)
        except subprocess.TimeoutExpired:
            return f"apt-get ran past {INSTALL_TIMEOUT_S} s"
        lines = (done.stderr or done.stdout).strip().splitlines()
        last = lines[-1] if lines else f"exit status {done.returncode}"
        if step[1] == "install" and done.returncode == 0 and _which():
            return ""
    return f"apt-get install chromium failed: {last}"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _which()
    if path is None:
        reason = _try_install()
        path = _which()
        if path is None:
            pytest.skip(f"headless Chromium not available ({reason}); install the Debian package 'chromium'")
    return path


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_every_image_loads_and_tables_render(
    chromium: str, report_path: Path, tmp_path: Path, parse_html
) -> None:
    html = report_path.read_text(encoding="utf-8")
    doc, _ = parse_html(html)
    n_images, n_tables = len(doc.find_all("img")), len(doc.find_all("table"))
    n_charts = len([s for s in doc.find_all("svg") if "chart" in s.classes])
    dom = _run(chromium, tmp_path / "profile", "--dump-dom", report_path.as_uri()).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-images-ok") == f"{n_images}/{n_images}", attrs  # naturalWidth > 0 for every image
    assert attrs.get("data-tables") == str(n_tables) and n_tables == 3
    assert attrs.get("data-charts") == str(n_charts) and n_charts > 0


def test_screenshot_is_a_real_rendering(chromium: str, report_path: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _run(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        report_path.as_uri(),
    )
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2000)
        rgb = image.convert("RGB")
        assert len(rgb.getcolors(maxcolors=1 << 20) or ()) > 1000  # photos, not a blank page
        assert max(ImageStat.Stat(rgb).stddev) > 20
