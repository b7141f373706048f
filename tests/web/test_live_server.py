"""The app in a real server: concurrent clinicians submit questionnaires and none is lost."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import verify_chain

from .conftest import PASSWORD, Clinic, make_clinic
from .live import ThreadServer

CLIENTS, ROUNDS = 10, 3


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Clinic, ThreadServer]]:
    """One clinic store and one live server for the module (building a store hashes 5 passwords)."""
    with tempfile.TemporaryDirectory(prefix="hikisig-live-") as tmp:
        clinic = make_clinic(Path(tmp))
        with ThreadServer(clinic.db, work_dir=clinic.work_dir) as srv:
            yield clinic, srv
        clinic.store.dispose()


def _count(clinic: Clinic, table: type[schema.Base]) -> int:
    with Session(clinic.store.engine) as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _phq9(k: int) -> dict[str, int]:
    """PHQ-9 answers that differ between submissions (item 9 stays 0)."""
    return {f"item{i}": (i + k) % 4 for i in range(1, 9)} | {"item9": 0}


def test_concurrent_submissions_are_all_stored(shared: tuple[Clinic, ThreadServer]) -> None:
    clinic, url = shared[0], shared[1].url
    before = _count(clinic, schema.Assessment)
    with Session(clinic.store.engine) as s:
        last = s.scalar(select(func.max(schema.Visit.visit_index))
                        .where(schema.Visit.participant_id == clinic.pid_a)) or 0
    sent: list[int] = []
    failures: list[str] = []
    totals: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    with httpx.Client(base_url=url, timeout=30.0) as c:
        r = c.post("/api/v1/session", json={"username": "docA", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookies, headers = dict(c.cookies), {"X-CSRF-Token": r.json()["csrf_token"]}

    def clinician(k: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=30.0, cookies=cookies, headers=headers) as c:
                start.wait(timeout=30)
                for j in range(ROUNDS):
                    v = c.post(f"/api/v1/participants/{clinic.pid_a}/visits", json={})
                    v.raise_for_status()
                    vi = v.json()["visit"]
                    answers = _phq9(k * ROUNDS + j)
                    with lock:
                        sent.append(k)
                    a = c.put(f"/api/v1/participants/{clinic.pid_a}/visits/{vi}/assessments/phq9",
                              json={"answers": answers})
                    a.raise_for_status()
                    with lock:
                        totals.append((a.json()["scores"]["total"], sum(answers.values())))
        except Exception as exc:  # every failure is reported below
            with lock:
                failures.append(f"client {k}: {exc!r}")

    threads = [threading.Thread(target=clinician, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(sent) == CLIENTS * ROUNDS
    assert _count(clinic, schema.Assessment) - before == len(sent)
    assert len(totals) == len(sent) and all(got == want for got, want in totals), totals
    # every client added ROUNDS visits, numbered one after the other without a gap or a repeat
    with Session(clinic.store.engine) as s:
        idx = list(s.scalars(select(schema.Visit.visit_index)
                             .where(schema.Visit.participant_id == clinic.pid_a,
                                    schema.Visit.visit_index > last)))
        assert sorted(idx) == list(range(last + 1, last + CLIENTS * ROUNDS + 1))
        assert verify_chain(s).ok  # concurrent writers kept the audit hash chain intact


def test_thread_server_stops_cleanly(shared: tuple[Clinic, ThreadServer]) -> None:
    clinic = shared[0]
    srv = ThreadServer(clinic.db, work_dir=clinic.work_dir).start()
    assert httpx.get(srv.url + "/healthz").json()["status"] == "ok"
    srv.stop()
    try:
        httpx.get(srv.url + "/healthz", timeout=2.0)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_form_writes_wait_for_the_lock_without_freezing_the_server(shared: tuple[Clinic, ThreadServer],
                                                                   ) -> None:
    """While one writer holds the SQLite write lock (a big lab import takes many seconds), a form
    submission waits for it in a worker thread: the server keeps answering everyone else."""
    clinic, srv = shared
    before = _count(clinic, schema.Assessment)
    with httpx.Client(base_url=srv.url, timeout=30.0) as c:
        tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert tok is not None
        r = c.post("/login", data={"username": "docA", "password": PASSWORD, "csrf_token": tok.group(1)})
        assert r.status_code == 303
        csrf = c.get("/api/v1/me").json()["csrf_token"]
        form = {"csrf_token": csrf, **{f"item{i}": "1" for i in range(1, 10)}}
        done: list[int] = []
        with srv.app.state.write_lock:  # a long write in progress
            t = threading.Thread(target=lambda: done.append(
                c.post(f"/participants/{clinic.pid_a}/visits/1/assess/phq9", data=form).status_code))
            t.start()
            time.sleep(0.5)  # the submission is now waiting for the lock
            assert done == []
            t0 = time.perf_counter()
            assert httpx.get(srv.url + "/healthz", timeout=5.0).status_code == 200
            assert time.perf_counter() - t0 < 2.0
        t.join(timeout=30)
        assert done == [303]
    assert _count(clinic, schema.Assessment) == before + 1
    with Session(clinic.store.engine) as s:
        stored = s.scalar(select(schema.Assessment.answers).join(schema.Visit)
                          .where(schema.Visit.participant_id == clinic.pid_a, schema.Visit.visit_index == 1,
                                 schema.Assessment.instrument == "phq9"))
    assert stored == {f"item{i}": 1.0 for i in range(1, 10)}
