"""Helpers for tests: reading source files independently of hikisig's readers."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset


def sacurine_source(path: Path) -> pd.DataFrame:
    """samples x variables from the W4M dataMatrix, parsed with csv + float()."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    samples = rows[0][1:]
    data = {r[0]: [float(v) if v not in ("", "NA") else math.nan for v in r[1:]] for r in rows[1:]}
    return pd.DataFrame(data, index=samples)


def gastric_source(path: Path) -> pd.DataFrame:
    """samples x peaks from the CIMCB Data sheet, read with openpyxl directly."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        it = wb["Data"].iter_rows(values_only=True)
        header = [str(h) for h in next(it)]
        recs = [list(r) for r in it]
    df = pd.DataFrame(recs, columns=header)
    df = df[df["SampleID"].notna()]
    peaks = [h for h in header if h.startswith("M") and h[1:].isdigit()]
    out = df[peaks].apply(pd.to_numeric)
    out.index = df["SampleID"].astype(str)
    return out


def by_source_name(ds: Dataset) -> pd.DataFrame:
    """The dataset's values with columns renamed to the source column names."""
    return ds.X.rename(columns=dict(zip(ds.var.index, ds.var["source_name"], strict=True)))


def assert_same_values(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Identical labels and identical float64 values (NaN where NaN)."""
    assert list(a.index) == list(b.index)
    assert sorted(a.columns) == sorted(b.columns)
    b = b[a.columns]
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    assert np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)])


@dataclass
class Ran:
    """What a command printed and its exit code (like ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


def hikisig(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
    """Run the ``hikisig`` command line in this process (as the console script does: one
    line per error on stderr and exit code 2), with ``env`` set and in ``cwd``."""
    from hikisig.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    saved_cwd = Path.cwd()
    try:
        for k, v in (env or {}).items():
            os.environ[k] = v
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Ran(code, out.getvalue(), err.getvalue())


@dataclass
class RenderedReport:
    """What a headless Chromium saw when it opened a report file."""

    errors: list[str]
    requests: list[str]
    images: list[tuple[str, bool]]
    text: str
    title: str


def render_in_chromium(path: Path, chromium: str, screenshot: Path | None = None) -> RenderedReport:
    """Open ``path`` in headless Chromium: console errors, requested URLs, each image's alt
    text and whether it loaded, the body text and the title (and a full-page screenshot)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        images = [(str(a), bool(ok)) for a, ok in page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete && e.naturalWidth > 0])")]
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        text, title = page.inner_text("body"), page.title()
        browser.close()
    return RenderedReport(errors, requests, images, text, title)
