"""Operator commands of Pregnancy Butler. `python -m app.cli --help` lists them all;
`python -m app.cli <command> --help` gives a command's options."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

from app import all_models  # noqa: F401 - every mapper configured in a process of its own
from app.core.clock import SystemClock
from app.core.database import create_engine, protect_sqlite_file
from app.core.settings import Environment, Settings, get_settings
from app.main import create_app
from app.wiring import session_factory


def _migrate(_args: argparse.Namespace) -> int:
    from app.core.migrations import upgrade

    settings = get_settings()
    if settings.is_sqlite:
        protect_sqlite_file(settings.database_url)  # 0700 folder, 0600 file, before SQLite
    upgrade(settings.database_url)
    print("database schema is at the latest migration")
    return 0


async def _create_admin(username: str, display_name: str, password: str) -> None:
    from app.auth import service
    from app.auth.models import Role
    from app.auth.repository import AuthRepository

    settings = get_settings()
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            await service.create_user(
                AuthRepository(session),
                username=username,
                display_name=display_name,
                role=Role.ADMIN,
                password=password,
                now=SystemClock().now(),
            )
            await session.commit()
    finally:
        await engine.dispose()


def _create_admin_cmd(args: argparse.Namespace) -> int:
    password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Password (12+ chars): ")
    if len(password) < 12:
        print("the password needs at least 12 characters", file=sys.stderr)
        return 2
    asyncio.run(_create_admin(args.username, args.display_name or args.username, password))
    print(f"admin {args.username!r} created")
    return 0


def _seed_cmd(args: argparse.Namespace) -> int:
    from app.demo.seed import seed_demo

    settings = get_settings()
    if settings.environment is Environment.PRODUCTION:
        print("refusing to seed demo data in production (ENVIRONMENT=production)", file=sys.stderr)
        return 2
    # The demo day is played through the API in process, on the app a server would run.
    app_factory = None if args.no_day else create_app
    return asyncio.run(seed_demo(settings, only_if_empty=args.if_empty, app_factory=app_factory))


async def seal_secrets(settings: Settings, *, now: datetime | None = None) -> int:
    """Seal under the first key every live signing secret kept as given or sealed under
    another key, and drop the retired ones: run when SECRETS_KEYS is first set or a new key
    is put first. A live secret that no key opens stops it, naming the client. On SQLite run
    it with the server stopped (its row lock is PostgreSQL's); the image runs it before the
    server starts."""
    from sqlalchemy import select

    from app.auth.models import ApiClient
    from app.core.secretbox import SecretBox, SecretUnreadable

    box = SecretBox.from_setting(settings.secrets_keys)
    if not box.seals:
        required = settings.environment is Environment.PRODUCTION
        raise ValueError(
            "SECRETS_KEYS is required in production" if required else "SECRETS_KEYS is not set"
        )
    engine = create_engine(settings)
    changed = 0
    now = now or SystemClock().now()
    try:
        async with session_factory(engine)() as session:
            clients = await session.scalars(select(ApiClient).with_for_update())
            for client in clients:
                live = client.live_signing_secrets(now)
                try:
                    kept = [box.reseal(s, owner=client.id) for s in live]
                except SecretUnreadable as exc:
                    raise SecretUnreadable(f"client {client.name!r}: {exc}") from exc
                if kept != client.signing_secrets:
                    changed += sum(a != b for a, b in zip(kept, live, strict=True))
                    changed += len(client.signing_secrets) - len(live)
                    client.signing_secrets = kept
                    if len(kept) == 1:
                        client.signing_secrets_retire_at = None
            await session.commit()
    finally:
        await engine.dispose()
    return changed


def _seal_cmd(_args: argparse.Namespace) -> int:
    from app.core.secretbox import SecretUnreadable

    try:
        changed = asyncio.run(seal_secrets(get_settings()))
    except (ValueError, SecretUnreadable) as exc:
        print(f"seal-secrets: {exc}", file=sys.stderr)
        return 2
    print(f"sealed or dropped {changed} signing secret(s); all live ones are under the first key")
    return 0


def _new_key_cmd(_args: argparse.Namespace) -> int:
    from app.core.secretbox import new_key

    print(new_key())
    return 0


async def _purge() -> int:
    from datetime import timedelta

    from sqlalchemy import delete

    from app.auth.models import AuthToken
    from app.core import ratelimit
    from app.core.idempotency import purge_expired

    settings = get_settings()
    engine = create_engine(settings)
    now = SystemClock().now()
    try:
        async with session_factory(engine)() as session:
            keys = await purge_expired(session, now)
            result = await session.execute(delete(AuthToken).where(AuthToken.expires_at <= now))
            counters = await ratelimit.purge(session, before=now - timedelta(days=2))
            await session.commit()
    finally:
        await engine.dispose()
    tokens = int(getattr(result, "rowcount", 0) or 0)
    print(
        f"purged {keys} expired idempotency keys, {tokens} expired tokens and {counters} old"
        " rate-limit counters"
    )
    return 0


async def _sweep(day: str | None) -> int:
    from datetime import date

    from app.careplan.registry import load_guidelines
    from app.core.principal import Principal, PrincipalKind
    from app.core.settings import get_settings
    from app.visits import service
    from app.visits.repository import VisitRepository

    settings = get_settings()
    engine = create_engine(settings)
    clinic = service.Clinic(
        now=SystemClock().now(), tz=settings.tz, guidelines=load_guidelines(settings.care_plan_dir)
    )
    system = Principal(
        kind=PrincipalKind.CLIENT, id=uuid.UUID(int=0), name="no-show sweep", role="system"
    )
    try:
        async with session_factory(engine)() as session:
            marked = await service.sweep_no_shows(
                VisitRepository(session),
                day=date.fromisoformat(day) if day else clinic.today,
                actor=system,
                clinic=clinic,
            )
            await session.commit()
    finally:
        await engine.dispose()
    print(f"marked {len(marked)} booked visits as no-show")
    return 0


async def _dispatch(once: bool, heartbeat: str | None = None) -> int:
    import signal

    from app.notifications import dispatcher, preparation

    settings = get_settings()
    engine = create_engine(settings)
    factory = session_factory(engine)
    clock = SystemClock()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        dispatcher.sms_from(settings)
    except ValueError as exc:
        print(f"cannot dispatch: {exc}", file=sys.stderr)
        await engine.dispose()
        return 2
    try:
        if once:
            sms = dispatcher.sms_from(settings)
            sent = 0
            while await dispatcher.dispatch_one(
                factory, sms=sms, now=clock.now(), max_attempts=settings.outbox_max_attempts
            ):
                sent += 1
            await dispatcher.maintenance(factory, settings, clock.now())
            prepared = await preparation.send_due(factory, settings, clock.now())
            print(f"processed {sent} outbox messages; {prepared} preparation texts queued")
        else:
            print("dispatcher running; Ctrl-C to stop", flush=True)
            await dispatcher.run(
                factory,
                settings,
                now=clock.now,
                stop=stop,
                heartbeat=Path(heartbeat) if heartbeat else None,
            )
    finally:
        await engine.dispose()
    return 0


async def _mllp(host: str, port: int, client_name: str) -> int:

    from sqlalchemy import select

    from app.auth.models import ApiClient
    from app.reports import mllp
    from app.reports.intake import IntakeContext

    settings = get_settings()
    engine = create_engine(settings)
    factory = session_factory(engine)
    async with factory() as session:
        client = await session.scalar(select(ApiClient).where(ApiClient.name == client_name))
    if client is None or not client.is_active:
        print(f"no active API client named {client_name!r}", file=sys.stderr)
        await engine.dispose()
        return 2
    context = IntakeContext.from_settings(settings)  # the same caps as over HTTP
    server = await mllp.serve(
        host=host,
        port=port,
        factory=factory,
        client_id=client.id,
        client_name=client.name,
        context=context,
        now=SystemClock().now,
    )
    print(f"MLLP listener on {host}:{port} for {client.name}", flush=True)
    try:
        async with server:
            await server.serve_forever()
    finally:
        await engine.dispose()
    return 0


def _dispatch_health(heartbeat: str, max_age: float) -> int:
    """The worker's health check: its loop set the heartbeat file's time recently."""
    try:
        age = time.time() - os.stat(heartbeat).st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {heartbeat} (has the worker started?)", file=sys.stderr)
        return 1
    if age > max_age:
        print(f"unhealthy: the last tick was {age:.0f} s ago (> {max_age:.0f} s)", file=sys.stderr)
        return 1
    print(f"healthy: the last tick was {age:.0f} s ago")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from app.ops.serving import serve

    serve(
        get_settings(),
        host=args.host,
        port=args.port,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    return 0


def _reset_demo(args: argparse.Namespace) -> int:
    """Back to the freshly seeded demo clinic: the embedded database's file is deleted, then
    migrated and seeded again. Only SQLite, never in production, only when asked twice."""
    from app.core.database import SQLITE_COMPANIONS, sqlite_path

    settings = get_settings()
    if settings.environment is Environment.PRODUCTION:
        print("refusing to reset in production (ENVIRONMENT=production)", file=sys.stderr)
        return 2
    path = sqlite_path(settings.database_url) if settings.is_sqlite else None
    if path is None:
        print(
            "reset-demo resets the embedded SQLite demo only; DATABASE_URL is not a SQLite "
            "file: drop and re-create that database yourself",
            file=sys.stderr,
        )
        return 2
    if not args.yes:
        print(f"this deletes {path} and everything in it; add --yes", file=sys.stderr)
        return 2
    for suffix in SQLITE_COMPANIONS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    print(f"deleted {path}")
    if _migrate(args) != 0:
        return 1
    args.if_empty = False
    return _seed_cmd(args)


class _OneLineHelp(argparse.RawDescriptionHelpFormatter):
    """Each command's name and help on one line, whatever the terminal's width."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=120)
        self._action_max_length = 22  # the longest name, indented, fits before the help


def build_parser() -> argparse.ArgumentParser:
    """Every command with a line of help (``--help`` lists them; tests/test_cli.py checks)."""
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description=__doc__, formatter_class=_OneLineHelp
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    sub.add_parser("migrate", help="upgrade the database to the latest migration").set_defaults(
        func=_migrate
    )

    admin = sub.add_parser("create-admin", help="create an admin (password from ADMIN_PASSWORD)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--display-name")
    admin.set_defaults(func=_create_admin_cmd)

    seed = sub.add_parser("seed-demo", help="seed a small demo clinic (never in production)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing if users exist")
    seed.add_argument(
        "--no-day",
        action="store_true",
        help="only the clinic: no check-ins, queues, reports or alerts today (walk-throughs)",
    )
    seed.set_defaults(func=_seed_cmd)

    sub.add_parser("purge-expired", help="delete expired tokens and idempotency keys").set_defaults(
        func=lambda _a: asyncio.run(_purge())
    )

    sub.add_parser(
        "seal-secrets", help="seal the lab's signing secrets under the first of SECRETS_KEYS"
    ).set_defaults(func=_seal_cmd)
    sub.add_parser("new-secrets-key", help="print a fresh key for SECRETS_KEYS").set_defaults(
        func=_new_key_cmd
    )

    sweep = sub.add_parser("sweep-no-shows", help="end of day: booked, not checked in -> no-show")
    sweep.add_argument("--date", help="the clinic day (YYYY-MM-DD); today when left out")
    sweep.set_defaults(func=lambda a: asyncio.run(_sweep(a.date)))

    dispatch = sub.add_parser("dispatch", help="deliver the outbox (the production worker)")
    dispatch.add_argument("--once", action="store_true", help="drain what is due, then exit")
    dispatch.add_argument(
        "--heartbeat", help="a file whose time is set after every tick (for dispatch-health)"
    )
    dispatch.set_defaults(func=lambda a: asyncio.run(_dispatch(a.once, a.heartbeat)))

    health = sub.add_parser(
        "dispatch-health", help="the worker's health check: exit 0 if its loop ticked lately"
    )
    health.add_argument("--heartbeat", required=True, help="the file given to dispatch")
    health.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    health.set_defaults(func=lambda a: _dispatch_health(a.heartbeat, a.max_age))

    serve = sub.add_parser(
        "serve", help="serve the API and the console (uvicorn, its log lines as JSON)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="take the client address from X-Forwarded-For, from FORWARDED_ALLOW_IPS only",
    )
    serve.add_argument("--forwarded-allow-ips", help="the proxies trusted (uvicorn's option)")
    serve.set_defaults(func=_serve)

    reset = sub.add_parser(
        "reset-demo", help="delete the embedded demo database, migrate and seed it again"
    )
    reset.add_argument("--yes", action="store_true", help="yes, delete it")
    reset.add_argument("--no-day", action="store_true", help="as seed-demo --no-day")
    reset.set_defaults(func=_reset_demo)

    listener = sub.add_parser("mllp", help="listen for HL7 v2 over MLLP (trusted network only)")
    listener.add_argument("--host", default="127.0.0.1")
    listener.add_argument("--port", type=int, default=2575)
    listener.add_argument("--client", default="Hospital LIS", help="the sending API client's name")
    listener.set_defaults(func=lambda a: asyncio.run(_mllp(a.host, a.port, a.client)))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
