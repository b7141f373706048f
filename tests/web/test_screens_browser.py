"""The clinician screens in a real headless Chromium (Debian's, driven by Playwright): the HQ-25
and PHQ-9 forms (item text or the licence note, response labels), the participant list (alert,
criteria and last-visit columns; sorting by the column headings), blood values with units on
the participant page, and the audit page (filters, pages, changed fields).

Set ``HIKISIG_SCREENS_DIR`` to a folder to keep a full-page screenshot of each screen.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORD, Clinic
from .test_screens import PHQ9_ITEM9, seed

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="NOTICE: Chromium not installed at "
                                "/usr/bin/chromium (make test installs it under CI): browser test skipped")




def _page(browser: Any, base: str, name: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    # Chromium may probe /favicon.ico on its own, whatever the page's icon link says: not a page error
    page.on("console", lambda m: errors.append(f"{m.text} {m.location}")
            if m.type == "error" and not str(m.location.get("url", "")).endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto("/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")
    page.wait_for_url("**/participants")
    return context, page, errors


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("HIKISIG_SCREENS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _codes(page: Any) -> list[str]:
    return page.locator("#participant-list tbody tr td:first-child a").all_inner_texts()


def test_clinician_screens(browser: Any, live_clinic: tuple[Clinic, str]) -> None:
    clinic, base = live_clinic
    seed(clinic)
    context, page, errors = _page(browser, base, "docA")

    # participant list: the new columns and sorting by the headings
    assert _codes(page) == ["PA", "PC"]
    row = page.locator(f"#participant-{clinic.pid_a}")
    assert "Item 9 (self-harm) alert" in row.inner_text()
    assert "Pre-hikikomori" in row.inner_text() and "visit 2 · 2026-03-02" in row.inner_text()
    assert page.locator("#col-code").get_attribute("aria-sort") == "ascending"
    page.click("#col-last_visit a")
    page.wait_for_url("**/participants?sort=last_visit*")
    assert _codes(page) == ["PC", "PA"]
    assert page.locator("#col-last_visit").get_attribute("aria-sort") == "ascending"
    page.click("#col-last_visit a")
    page.wait_for_url("**/participants?sort=-last_visit*")
    assert _codes(page) == ["PA", "PC"]
    assert page.locator("#col-last_visit").get_attribute("aria-sort") == "descending"
    page.click("#col-criteria a")
    assert _codes(page) == ["PA", "PC"]
    _shot(page, "participants")

    # participant page: blood values with units
    page.click(f"#participant-{clinic.pid_a} td:first-child a")
    page.wait_for_url(f"**/participants/{clinic.pid_a}")
    blood = page.locator("#blood-2")
    assert blood.is_visible()
    rows = blood.locator("tbody tr").all_inner_texts()
    assert any(re.search(r"Glucose\s+5\.4\s+mmol/L\s+no reference range", r) for r in rows), rows
    assert any(re.search(r"Creatinine\s+71\s+umol/L", r) for r in rows), rows
    assert page.locator("#blood-1").count() == 0
    assert "Item 9 (self-harm) alert" in page.locator("#visit-2").inner_text()
    page.locator("#visit-2").scroll_into_view_if_needed()
    _shot(page, "participant_blood")

    # PHQ-9 form: item text and response labels
    page.goto(f"/participants/{clinic.pid_a}/visits/1/assess/phq9")
    assert page.locator("h1").inner_text() == "PHQ-9 · visit 1"
    assert PHQ9_ITEM9 in page.locator("#f-item9 legend").inner_text()
    labels = page.locator("#f-item1 .choice-label").all_inner_texts()
    assert labels == ["Not at all", "Several days", "More than half the days", "Nearly every day"]
    page.check("#f-item1 input[value='2']")
    assert page.locator("#f-item1 input[value='2']").is_checked()
    _shot(page, "phq9_form")
    for i in range(2, 10):
        page.check(f"#f-item{i} input[value='{1 if i == 9 else 0}']")
    page.click("#save")
    page.wait_for_url("**saved=1")
    assert "Item 9 (self-harm) alert" in page.locator("#alert-item9_alert").inner_text()
    assert page.locator("#total").inner_text() == "3"

    # HQ-25 form: the licence note instead of the wording
    page.goto(f"/participants/{clinic.pid_a}/visits/1/assess/hq25")
    assert page.locator("h1").inner_text() == "HQ-25 · visit 1"
    note = page.locator("#licence-note").inner_text()
    assert "Item text not reproduced: see the licence." in note and "10.1111/pcn.12691" in note
    assert "not verified" in page.locator("#labels-note").inner_text()
    assert page.locator("fieldset").count() == 25
    assert page.locator(".item-text").count() == 0
    _shot(page, "hq25_form")
    assert errors == [], errors
    context.close()

    # auditor: the audit page filters and pages
    context, page, errors = _page(browser, base, "aud")
    for _ in range(50):
        page.goto(f"/participants/{clinic.pid_a}")
    page.goto("/audit")
    assert page.locator("#audit-list > tbody > tr").count() == 50
    assert "page 1 of 2" in page.locator("#audit-count").inner_text()
    first_page = page.locator("#audit-list > tbody > tr").first.get_attribute("id")
    page.click("#page-older")
    page.wait_for_url("**/audit?page=2")
    assert page.locator("#audit-list > tbody > tr").first.get_attribute("id") != first_page
    assert page.locator("#page-newer").is_visible()
    page.select_option("select[name=actor]", "docA")
    page.click("#audit-filter")
    page.wait_for_url("**/audit?actor=docA*")
    whos = page.locator("#audit-list > tbody > tr > td:nth-child(3)").all_inner_texts()
    assert whos and all(w.startswith("docA") for w in whos), whos
    page.goto("/audit")
    page.fill("input[name=participant]", "PA")
    page.select_option("select[name=action]", "create")
    page.click("#audit-filter")
    page.wait_for_url("**/audit?*participant=PA*")
    rows = page.locator("#audit-list > tbody > tr")
    assert rows.count() == 1 and "Assessment" in rows.first.inner_text()
    changed = rows.first.locator("table.audit-diff tr.changed").all_inner_texts()
    assert any(re.search(r"scores\.item9_alert\s+–\s+→\s+yes", c) for c in changed), changed
    assert any(re.search(r"instrument\s+–\s+→\s+phq9", c) for c in changed), changed
    _shot(page, "audit_filtered")
    page.goto("/audit")
    _shot(page, "audit")
    assert errors == [], errors
    context.close()
