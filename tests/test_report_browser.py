"""The report opens in a real headless Chromium without console errors, every figure loaded."""

from __future__ import annotations

import shutil

import pytest

from helpers import render_in_chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="NOTICE: Chromium not installed "
                                "(make test installs it under CI): browser test skipped")


def test_report_in_headless_chromium(tmp_path, demo_run):
    shot = tmp_path / "report.png"
    seen = render_in_chromium(demo_run / "results" / "report.html", str(CHROMIUM), shot)
    assert seen.errors == []
    assert [u for u in seen.requests if not u.startswith(("file:", "data:"))] == []
    assert len(seen.images) >= 10 and all(ok for _, ok in seen.images), seen.images
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "setoyama2021-like-synthetic" in seen.title or "hikisig" in seen.title.lower()
    shot.unlink()
