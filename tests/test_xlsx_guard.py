"""Zip bombs in Excel workbooks are refused before parsing (core and CLI), and the web app parses
workbooks in a worker process with memory and time limits while it keeps answering."""

from __future__ import annotations

import statistics
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest

from hikisig.cohort.readers import read_measurements
from hikisig.cohort.xlsx_guard import XlsxLimits, check_xlsx, sheet_dimensions
from hikisig.errors import HikisigError, InputError

MB = 1024 * 1024
SHEET = "xl/worksheets/sheet1.xml"
ROW = b"<row>" + b'<c t="n"><v>1</v></c>' * 50 + b"</row>"


def _small_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sample", "participant", "glucose", "Orn"])
    ws.append(["S1", "PA", 5.1, 80.0])
    ws.append(["S2", "PB", 4.9, 75.5])
    wb.save(path)
    return path


def _bomb(path: Path, megabytes: int, *, dimension: str | None = "A1:AX3000000") -> Path:
    """A valid workbook whose sheet XML is ``megabytes`` MB of repeated cells, written streaming
    (level 9: ~1 MB per 300 MB); ``dimension`` None leaves the <dimension> out."""
    template = _small_xlsx(path.with_name("template.xlsx"))
    chunk = ROW * (MB // len(ROW))
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                           compresslevel=9) as dst:
        for info in src.infolist():
            if info.filename != SHEET:
                dst.writestr(info, src.read(info))
                continue
            with dst.open(SHEET, "w", force_zip64=True) as fh:
                head = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
                        '.org/spreadsheetml/2006/main">')
                if dimension:
                    head += f'<dimension ref="{dimension}"/>'
                fh.write((head + "<sheetData>").encode())
                written = 0
                while written < megabytes * MB:
                    fh.write(chunk)
                    written += len(chunk)
                fh.write(b"</sheetData></worksheet>")
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bomb(tmp_path_factory.mktemp("bomb") / "labs.xlsx", 300)


def test_the_bomb_is_small_on_disk_and_refused_from_its_directory(bomb: Path) -> None:
    assert bomb.stat().st_size < 3 * MB
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo(SHEET).file_size > 300 * MB
        assert sheet_dimensions(zf, SHEET) == (3_000_000, 50)
    t0 = time.monotonic()
    with pytest.raises(InputError, match="refused before reading"):
        check_xlsx(bomb)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("limits,message", [
    (XlsxLimits(max_ratio=1e9, max_total=100 * MB), "expands to"),
    (XlsxLimits(max_total=10**12), "expands"),  # the ratio
    (XlsxLimits(max_total=10**12, max_ratio=1e9), "declares 3000000 rows"),
    (XlsxLimits(max_total=10**12, max_ratio=1e9, max_rows=10**9), "cells"),
])
def test_each_check_on_its_own(bomb: Path, limits: XlsxLimits, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_xlsx(bomb, limits)


def test_a_bomb_without_dimension_is_caught_by_its_ratio(tmp_path: Path) -> None:
    small = _bomb(tmp_path / "nodim.xlsx", 20, dimension=None)
    with zipfile.ZipFile(small) as zf:
        assert sheet_dimensions(zf, SHEET) is None
    with pytest.raises(InputError, match="times"):
        check_xlsx(small)


def test_the_cli_readers_refuse_it_before_parsing(bomb: Path) -> None:
    for fmt in ("auto", "wide", "cimcb"):
        t0 = time.monotonic()
        with pytest.raises(InputError, match="refused before reading"):
            read_measurements(bomb, fmt)
        assert time.monotonic() - t0 < 2.0


def test_ordinary_workbooks_pass(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "ok.xlsx")
    check_xlsx(path)
    table = read_measurements(path, "wide")
    assert table.values.shape == (2, 2)
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match=r"not a valid \.xlsx"):
        read_measurements(junk, "wide")


def test_worker_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hikisig.web import uploads

    path = _small_xlsx(tmp_path / "ok.xlsx")
    table = uploads.read_isolated(path, "wide")
    assert table.values.shape == (2, 2)
    with pytest.raises(HikisigError, match="took longer than"):
        uploads.read_isolated(path, "wide", seconds=0.05)  # the worker is killed
    with pytest.raises(HikisigError, match="memory"):
        uploads.read_isolated(path, "wide", memory_mb=1)


# -- the web app ---------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str, str, int]]:
    from hikisig.web import WebSettings
    from web.conftest import PASSWORD, make_clinic
    from web.live import ThreadServer

    clinic = make_clinic(tmp_path)
    with (ThreadServer(clinic.db, settings=WebSettings(work_dir=clinic.work_dir)) as srv,
          httpx.Client(base_url=srv.url, timeout=30) as c):
        r = c.post("/api/v1/session", json={"username": "ana", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield srv.url, r.json()["csrf_token"], c.cookies["hikisig_session"], clinic.pid_a
    clinic.store.dispose()


def _clinician_phq9_saves(url: str, pid: int, stop: threading.Event, latencies: list[float]) -> None:
    """docA saves a PHQ-9 at PA's first visit again and again, timing each save."""
    from web.conftest import PASSWORD

    with httpx.Client(base_url=url, timeout=10) as c:
        r = c.post("/api/v1/session", json={"username": "docA", "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"X-CSRF-Token": r.json()["csrf_token"]}
        k = 0
        while not stop.is_set():
            answers = {f"item{i}": (k + i) % 4 for i in range(1, 10)}
            t = time.monotonic()
            r = c.put(f"/api/v1/participants/{pid}/visits/1/assessments/phq9",
                      json={"answers": answers}, headers=headers)
            assert r.status_code == 200, r.text
            latencies.append(time.monotonic() - t)
            k += 1
            time.sleep(0.01)


def test_web_refuses_the_bomb_quickly_and_keeps_answering(live: tuple[str, str, str], bomb: Path) -> None:
    url, csrf, cookie, pid = live
    latencies: list[float] = []
    saves: list[float] = []
    peak = [_rss()]
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop.is_set():
                t = time.monotonic()
                assert c.get("/healthz").status_code == 200
                latencies.append(time.monotonic() - t)
                peak[0] = max(peak[0], _rss())
                time.sleep(0.01)

    base = _rss()
    pollers = [threading.Thread(target=poll),
               threading.Thread(target=_clinician_phq9_saves, args=(url, pid, stop, saves))]
    for t in pollers:
        t.start()
    time.sleep(0.5)
    idle, idle_saves = list(latencies), list(saves)
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            c.cookies.set("hikisig_session", cookie)
            t0 = time.monotonic()
            with bomb.open("rb") as fh:
                r = c.post("/api/v1/labs", headers={"X-CSRF-Token": csrf}, data={"study": "clinic"},
                           files={"file": ("labs.xlsx", fh, "application/octet-stream")})
            took = time.monotonic() - t0
    finally:
        time.sleep(0.2)
        stop.set()
        for t in pollers:
            t.join()
    assert r.status_code == 422, r.text
    assert "refused before reading" in r.json()["problems"][0]["message"]
    # an ordinary workbook goes through the worker process
    ok = _small_xlsx(bomb.with_name("ok.xlsx")).read_bytes()
    with httpx.Client(base_url=url, timeout=60) as c:
        c.cookies.set("hikisig_session", cookie)
        r2 = c.post("/api/v1/labs", headers={"X-CSRF-Token": csrf}, data={"study": "clinic"},
                    files={"file": ("ok.xlsx", ok, "application/octet-stream")})
    assert r2.status_code == 200 and r2.json()["samples"] == 2, r2.text
    assert took < 5.0, took
    assert peak[0] - base < 200 * MB, (peak[0] - base) / MB
    busy = latencies[len(idle):]
    assert busy and max(busy) < 1.0, max(busy)
    busy_saves = saves[len(idle_saves):]
    assert idle_saves and busy_saves, (len(idle_saves), len(busy_saves))
    # the clinician's PHQ-9 saves keep their usual latency while the bomb is refused
    assert statistics.median(busy_saves) < max(0.25, 3 * statistics.median(idle_saves)), (
        statistics.median(idle_saves), statistics.median(busy_saves))
    print(f"\nPHQ-9 save median {statistics.median(idle_saves) * 1000:.1f} ms before, "
          f"{statistics.median(busy_saves) * 1000:.1f} ms during ({len(busy_saves)} saves)")
    print(f"\nbomb refused in {took:.2f} s; RSS growth {(peak[0] - base) / MB:.1f} MB; /healthz median "
          f"{statistics.median(busy) * 1000:.1f} ms, max {max(busy) * 1000:.1f} ms ({len(busy)} requests)")
