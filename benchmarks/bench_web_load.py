"""Benchmark: 50 clinicians submitting questionnaires to the web app at once for 60 s.

A fresh SQLite store in a temporary folder gets 50 clinician users (5 sites,
one participant each); ``hikisig serve`` runs in a subprocess on a free
loopback port. Each virtual clinician (an ``httpx.AsyncClient`` with its own
session) signs in once through the JSON API, then until the time is up
records a new visit (``POST /api/v1/participants/{pid}/visits``) and submits a
questionnaire to it (``PUT .../visits/{vi}/assessments/{phq9|hq25}``, with
``X-CSRF-Token``), one after the other, without pause.

Measured: submissions sent, errors (any non-2xx answer or exception), the
assessment rows in the store afterwards (must equal the successful
submissions: nothing lost), latency percentiles of the submission and visit
requests, throughput. The audit hash chain is verified afterwards. The
machine's 1-minute load average at the start is recorded (the machine may be
shared). Exit status 1 on any error or lost submission.

Run: make bench   (or .venv/bin/python benchmarks/bench_web_load.py [--duration S] [--users N]
[--out FILE])
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "web_load.json"
PASSWORD = "load-test password 1"
N_SITES = 5
sys.path.insert(0, str(ROOT / "tests"))
from web.live import ProcessServer  # noqa: E402 - the live-server helper of the web tests


@dataclass
class Stats:
    """What one run saw, summed over the virtual clinicians."""

    sent: int = 0
    ok: int = 0
    visits_ok: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    submit_s: list[float] = field(default_factory=list)
    visit_s: list[float] = field(default_factory=list)
    login_s: list[float] = field(default_factory=list)
    wrong_scores: int = 0
    ready: int = 0


def answers_for(instrument: str, k: int) -> tuple[dict[str, int], int]:
    """Answers that vary with ``k`` and the total they must score to."""
    if instrument == "phq9":
        a = {f"item{i}": (i + k) % 4 for i in range(1, 10)}
        return a, sum(a.values())
    a = {f"item{i}": (i * 3 + k) % 5 for i in range(1, 26)}
    rev = (4, 7, 10, 15, 21, 25)
    return a, sum(4 - v if int(c[4:]) in rev else v for c, v in a.items())


def setup_store(db: Path, users: int) -> dict[str, int]:
    """Create the store, 50 clinicians over 5 sites and one participant each; returns name -> pid."""
    from hikisig.cohort import schema
    from hikisig.cohort.store import Store
    from hikisig.cohort.users import add_user

    store = Store(db)
    store.init()
    pids: dict[str, int] = {}
    with store.session() as s:
        study = store.study(s, "load", create=True)
        sites = [schema.Site(study_id=study.id, code=f"S{j + 1:02d}") for j in range(N_SITES)]
        s.add_all(sites)
        s.flush()
        for u in range(users):
            p = schema.Participant(study_id=study.id, site_id=sites[u % N_SITES].id, code=f"P{u + 1:03d}",
                                   attributes={})
            s.add(p)
            s.flush()
            pids[f"doc{u + 1:03d}"] = p.id
    for u, name in enumerate(pids):
        add_user(store, name, "clinician", PASSWORD, site=f"S{u % N_SITES + 1:02d}")
    store.dispose()
    return pids


async def clinician(url: str, name: str, pid: int, stats: Stats, go: asyncio.Event,
                    stop_at: list[float], k0: int) -> None:
    """One virtual clinician: sign in, then visit + questionnaire until the time is up."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as c:
        t0 = time.perf_counter()
        try:
            r = await c.post("/api/v1/session", json={"username": name, "password": PASSWORD})
        except httpx.HTTPError as exc:
            stats.errors[f"sign-in: {type(exc).__name__}"] += 1
            return
        stats.login_s.append(time.perf_counter() - t0)
        if r.status_code != 200:
            stats.errors[f"sign-in: HTTP {r.status_code}"] += 1
            return
        headers = {"X-CSRF-Token": r.json()["csrf_token"]}
        stats.ready += 1
        await go.wait()
        k = k0
        while time.perf_counter() < stop_at[0]:
            k += 1
            t0 = time.perf_counter()
            try:
                r = await c.post(f"/api/v1/participants/{pid}/visits", json={}, headers=headers)
            except httpx.HTTPError as exc:
                stats.errors[f"visit: {type(exc).__name__}: {exc}"[:200]] += 1
                continue
            stats.visit_s.append(time.perf_counter() - t0)
            if r.status_code != 201:
                stats.errors[f"visit: HTTP {r.status_code}: {r.text[:120]}"] += 1
                continue
            stats.visits_ok += 1
            vi = r.json()["visit"]
            instrument = "phq9" if k % 2 else "hq25"
            answers, total = answers_for(instrument, k)
            stats.sent += 1
            t0 = time.perf_counter()
            try:
                r = await c.put(f"/api/v1/participants/{pid}/visits/{vi}/assessments/{instrument}",
                                json={"answers": answers}, headers=headers)
            except httpx.HTTPError as exc:
                stats.errors[f"submit: {type(exc).__name__}: {exc}"[:200]] += 1
                continue
            stats.submit_s.append(time.perf_counter() - t0)
            if r.status_code != 200:
                stats.errors[f"submit: HTTP {r.status_code}: {r.text[:120]}"] += 1
                continue
            stats.ok += 1
            if r.json()["scores"].get("total") != total:
                stats.wrong_scores += 1


async def drive(url: str, pids: dict[str, int], duration: float) -> tuple[Stats, float, float]:
    """Run every clinician; returns the stats, the load phase's wall time and the sign-in phase's."""
    stats, go = Stats(), asyncio.Event()
    stop_at = [float("inf")]
    t_login = time.perf_counter()
    tasks = [asyncio.create_task(clinician(url, name, pid, stats, go, stop_at, 1000 * u))
             for u, (name, pid) in enumerate(pids.items())]
    while stats.ready + sum(t.done() for t in tasks) < len(tasks):  # signed in, or gave up
        await asyncio.sleep(0.05)
    login_wall = time.perf_counter() - t_login
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    go.set()
    await asyncio.gather(*tasks)
    return stats, time.perf_counter() - t0, login_wall


def pct(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def store_counts(db: Path) -> dict[str, Any]:
    """Assessment and visit rows, and the audit chain's state, read after the server stopped."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from hikisig.cohort import schema
    from hikisig.cohort.audit import verify_chain
    from hikisig.cohort.store import Store

    store = Store(db)
    with Session(store.engine) as s:
        out = {"assessments": int(s.scalar(select(func.count()).select_from(schema.Assessment)) or 0),
               "visits": int(s.scalar(select(func.count()).select_from(schema.Visit)) or 0)}
        rep = verify_chain(s)
        out.update(audit_entries=rep.n_entries, audit_chain_ok=bool(rep.ok))
    store.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    ap.add_argument("--users", type=int, default=50, help="concurrent clinicians (default 50)")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help=f"result JSON (default {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hikisig-bench-web-") as tmp:
        work = Path(tmp)
        db = work / "load.db"
        t0 = time.perf_counter()
        pids = setup_store(db, args.users)
        setup_s = time.perf_counter() - t0
        log = work / "server.log"
        srv = ProcessServer(db, work_dir=work / "web", log=log)
        srv.start()
        try:
            stats, wall, login_wall = asyncio.run(drive(srv.url, pids, args.duration))
        finally:
            srv.stop()
        server_log = log.read_text(errors="replace")
        counts = store_counts(db)
    n_errors = sum(stats.errors.values())
    lost = stats.ok - counts["assessments"]
    locked = server_log.count("database is locked")
    result = {
        "benchmark": "web app: concurrent clinicians submitting questionnaires (JSON API, SQLite)",
        "parameters": {"users": args.users, "duration_s": args.duration, "sites": N_SITES,
                       "server": "hikisig serve (uvicorn, 1 process) on 127.0.0.1",
                       "client": "httpx.AsyncClient per clinician, one request at a time",
                       "loop": "POST visit, then PUT assessment (phq9/hq25 alternately)"},
        "sign_in": {"wall_s": round(login_wall, 2), **pct(stats.login_s)},
        "submissions_sent": stats.sent,
        "submissions_ok": stats.ok,
        "visits_ok": stats.visits_ok,
        "errors": n_errors,
        "error_kinds": dict(stats.errors.most_common(10)),
        "wrong_scores": stats.wrong_scores,
        "db_assessments": counts["assessments"],
        "db_visits": counts["visits"],
        "lost_submissions": lost,
        "audit_entries": counts["audit_entries"],
        "audit_chain_ok": counts["audit_chain_ok"],
        "server_log_database_locked": locked,
        "submit_latency": pct(stats.submit_s),
        "visit_latency": pct(stats.visit_s),
        "load_wall_s": round(wall, 2),
        "throughput_submissions_per_s": round(stats.ok / wall, 1) if wall > 0 else None,
        "throughput_requests_per_s": round((stats.ok + stats.visits_ok) / wall, 1) if wall > 0 else None,
        "setup_s": round(setup_s, 1),
        "server_exit_code": srv.exit_code,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "loadavg_1m_start": round(load_start, 2),
                    "loadavg_1m_end": round(os.getloadavg()[0], 2)},
        "date": time.strftime("%Y-%m-%d"),
    }
    # the participant of every clinician got exactly the visits that were acknowledged (+0 at start)
    result["pass"] = (n_errors == 0 and lost == 0 and stats.wrong_scores == 0 and stats.sent == stats.ok
                      and counts["visits"] == stats.visits_ok and counts["audit_chain_ok"] and stats.ok > 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("submissions_sent", "errors", "db_assessments", "lost_submissions", "submit_latency",
            "throughput_submissions_per_s", "pass")
    print(json.dumps({k: result[k] for k in keys}))
    if not result["pass"]:
        print(f"FAIL: {n_errors} error(s), {lost} lost submission(s); see {args.out}", file=sys.stderr)
        if n_errors:
            print(server_log[-3000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
