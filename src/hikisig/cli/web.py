"""``hikisig serve``, ``hikisig user ...`` and ``hikisig audit ...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, open_store, options, out
from hikisig.errors import HikisigError

__all__ = ["audit_verify", "serve_cmd", "user_add"]

user_app = typer.Typer(help="Users of the web app (the first admin is created here).\n\n"
                       "Example: hikisig --db clinic.db user add alice --role admin", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.\n\nExample: hikisig --db clinic.db audit verify",
                        no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", help="The store (same as the global --db).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only; "
                                      "put a TLS proxy in front for a network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    idle_minutes: Annotated[int, typer.Option(help="Sign out after this many idle minutes.")] = 30,
    work_dir: Annotated[Path | None, typer.Option(help="Uploads and analysis outputs "
                                                  "(default: hikisig-web next to the store).")] = None,
    jobs: Annotated[int, typer.Option(help="Analyses run at the same time.")] = 1,
    proxy_headers: Annotated[bool, typer.Option(help="Trust X-Forwarded-Proto/For from a local "
                                                "TLS proxy (cookies become Secure over https).")] = False,
    forwarded_allow_ips: Annotated[str, typer.Option(
        help="With --proxy-headers: the proxies whose X-Forwarded-* headers are trusted (comma-separated "
             "addresses or networks). A request from any other address keeps its own address, "
             "whatever it claims; the sign-in throttle counts per resulting address.")] = "127.0.0.1",
    key_file: KeyFileOpt = None,
) -> None:
    """Run the clinic web app (pages, JSON API at /api/v1, OpenAPI at /openapi.json).

    With an audit key file (--key-file or HIKISIG_AUDIT_KEY_FILE) every audit entry is signed
    (HMAC-SHA256) from start-up on; see docs/web.md.

    Example: hikisig --db clinic.db serve --port 8000 --key-file /etc/hikisig/audit.key
    """
    import uvicorn
    from sqlalchemy.orm import Session

    from hikisig.cohort.audit import ensure_key_entry, key_fingerprint
    from hikisig.web import WebSettings, create_app

    if not 1 <= port <= 65535:
        raise HikisigError(f"--port {port}: expected 1 to 65535")
    trusted = _trusted_proxies(forwarded_allow_ips) if proxy_headers else None
    keys = _use_key_file(key_file)
    application = create_app(db or options(ctx).db, WebSettings(idle_minutes=idle_minutes, work_dir=work_dir,
                                                   job_workers=max(1, jobs)))
    if not keys:
        from hikisig.cohort.audit import require_key_if_signed

        with Session(application.state.store.engine) as s:
            require_key_if_signed(s, keys)
    if keys:
        with Session(application.state.store.engine) as s, s.begin():
            ensure_key_entry(s, keys, actor="hikisig serve")
        err.print(f"audit entries are signed with the key {key_fingerprint(keys[0])}",
                  markup=False)
    err.print(f"hikisig web app on http://{host}:{port}  (store {application.state.store.display_url}; "
              "Ctrl+C stops)", markup=False)
    uvicorn.run(application, host=host, port=port, proxy_headers=proxy_headers,
                forwarded_allow_ips=trusted,
                log_level="warning" if options(ctx).quiet else "info", server_header=False)


def _trusted_proxies(value: str) -> str:
    """The ``--forwarded-allow-ips`` list, checked: addresses or networks, no ``*`` (trusting every
    client would let anyone choose the address the sign-in throttle counts)."""
    import ipaddress

    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise HikisigError("--forwarded-allow-ips: give at least one proxy address (e.g. 127.0.0.1)")
    for item in items:
        if item == "*":
            raise HikisigError("--forwarded-allow-ips '*' would trust X-Forwarded-For from any client: "
                               "name the proxy's address")
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not item.startswith("unix:"):
                raise HikisigError(f"--forwarded-allow-ips: {item!r} is not an address or network") from None
    return ",".join(items)


KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="Audit key file (one key per line, current first; default: "
                       "$HIKISIG_AUDIT_KEY_FILE). Keep it outside the database.")]


def _use_key_file(key_file: Path | None) -> list[bytes]:
    """Read the audit keys (checked now, not at the first write) and export the file's path,
    so every writer in this process and its workers signs with it."""
    import os

    from hikisig.cohort.audit import KEY_ENV, load_audit_keys

    keys = load_audit_keys(key_file)  # None: the file the environment names, if any
    if key_file is not None:
        os.environ[KEY_ENV] = str(key_file.resolve())
    return keys


def _tsv(*fields: str) -> None:
    r"""Write one tab-separated line to stdout (not through Rich, which expands tabs to spaces).

    Backslashes, tabs and line breaks inside a field are written as ``\\``, ``\t``, ``\n`` and
    ``\r``, so text from a client (a name typed at sign-in) cannot forge columns or lines.
    """
    table = {ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}
    sys.stdout.write("\t".join(str(f).translate(table) for f in fields) + "\n")


def _read_password(password_stdin: bool, confirm: bool = True) -> str:
    if password_stdin:
        value = sys.stdin.readline().rstrip("\n")
        if not value:
            raise HikisigError("no password on standard input")
        return value
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option(help="admin|clinician|analyst|auditor")],
    site: Annotated[str | None, typer.Option(
        help="Site code (clinicians see only its participants).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from standard input.")] = False,
) -> None:
    """Create a user; the password is asked for (hidden) unless --password-stdin.

    Example: hikisig --db clinic.db user add kato --role clinician --site fukuoka
    """
    from hikisig.cohort.users import add_user

    store = open_store(ctx)
    store.require_ready()
    password = _read_password(password_stdin)
    user = add_user(store, name, role, password, site=site, actor="cli")
    out.print(f"added {user.name} ({user.role}{f', site {user.site}' if user.site else ''})", markup=False)


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """List users (name, role, site, active, locked until, last sign-in).

    Example: hikisig --db clinic.db user list
    """
    from sqlalchemy.orm import Session

    from hikisig.web.admin import user_dicts

    store = open_store(ctx)
    store.require_ready()
    with Session(store.engine) as s:
        rows = user_dicts(s)
    for u in rows:
        _tsv(u["name"], u["role"], u["site"] or "-", "active" if u["active"] else "disabled",
             u["locked_until"] or "-", u["last_login"] or "-")


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Set a new password (ends the user's sessions and clears a lock-out).

    Example: hikisig --db clinic.db user passwd kato
    """
    from hikisig.cohort.users import set_password

    store = open_store(ctx)
    store.require_ready()
    set_password(store, name, _read_password(password_stdin))
    out.print(f"password of {name} changed", markup=False)


@user_app.command("unlock")
def user_unlock(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Clear a lock-out after repeated failed sign-ins.

    Example: hikisig --db clinic.db user unlock kato
    """
    from hikisig.cohort.users import unlock_user

    store = open_store(ctx)
    store.require_ready()
    unlock_user(store, name)
    out.print(f"{name} unlocked", markup=False)


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")],
                 enable: Annotated[bool, typer.Option("--enable", help="Enable instead.")] = False) -> None:
    """Disable (or with --enable, enable) an account; disabling ends its sessions.

    Example: hikisig --db clinic.db user disable kato
    """
    from hikisig.cohort.users import unlock_user

    store = open_store(ctx)
    store.require_ready()
    unlock_user(store, name, active=enable)
    out.print(f"{name} {'enabled' if enable else 'disabled'}", markup=False)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    expect_head: Annotated[str | None, typer.Option(
        help="ID:HASH of a head printed earlier; detects entries deleted at the end.")] = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Recompute the audit trail's hash chain; exit 1 if any entry was edited, removed or inserted.

    Signed entries (a server run with an audit key) are checked with the key file
    (--key-file or HIKISIG_AUDIT_KEY_FILE); given a key, a trail with nothing signed by it
    is an error.

    Example: hikisig --db clinic.db audit verify --key-file /etc/hikisig/audit.key
    """
    from sqlalchemy.orm import Session

    from hikisig.cohort.audit import load_audit_keys, verify_chain

    store = open_store(ctx)
    store.require_ready()
    keys = load_audit_keys(key_file)
    with Session(store.engine) as s:
        try:
            rep = verify_chain(s, expect_head=expect_head, keys=keys)
        except ValueError as exc:
            raise HikisigError(str(exc)) from exc
    if rep.ok:
        signed = (f"; signed from entry {rep.signed_from} on" if rep.signed_from is not None
                  else "; plain SHA-256 (no audit key)")
        out.print(f"audit trail intact: {rep.n_entries} entries{signed}; head "
                  f"{rep.head_id}:{rep.head_hash}", markup=False)
        return
    for p in rep.problems:
        err.print(f"TAMPERED: {p}", markup=False)
    err.print(f"audit trail BROKEN: {len(rep.problems)} problem(s) in {rep.n_entries} entries", markup=False)
    raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Newest entries to show.")] = 50,
    entity: Annotated[str | None, typer.Option(help="Only this entity (participant, user, ...).")] = None,
) -> None:
    """Print the newest audit entries (tab-separated).

    Example: hikisig --db clinic.db audit list --limit 20
    """
    from sqlalchemy.orm import Session

    from hikisig.web.admin import audit_rows

    store = open_store(ctx)
    store.require_ready()
    with Session(store.engine) as s:
        rows = audit_rows(s, limit=limit, entity=entity)
    keys = ("id", "at", "actor", "role", "action", "entity", "entity_id", "study", "site", "before", "after")
    _tsv(*keys)
    for e in rows:
        _tsv(*("" if e[k] is None else str(e[k]) for k in keys))
