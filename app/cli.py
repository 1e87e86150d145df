"""Operator commands: python -m app.cli {migrate,create-admin,seed-demo,purge-expired}."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid

from app.core.clock import SystemClock
from app.core.database import create_engine, create_session_factory
from app.core.settings import Environment, get_settings


def _migrate(_args: argparse.Namespace) -> int:
    from app.core.migrations import upgrade

    settings = get_settings()
    if settings.is_sqlite:
        os.makedirs(os.path.dirname(settings.database_url.split("///", 1)[1]) or ".", exist_ok=True)
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
        async with create_session_factory(engine)() as session:
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
    return asyncio.run(seed_demo(settings, only_if_empty=args.if_empty))


async def _purge() -> int:
    from sqlalchemy import delete

    from app.auth.models import AuthToken
    from app.core.idempotency import purge_expired

    settings = get_settings()
    engine = create_engine(settings)
    now = SystemClock().now()
    try:
        async with create_session_factory(engine)() as session:
            keys = await purge_expired(session, now)
            result = await session.execute(delete(AuthToken).where(AuthToken.expires_at <= now))
            await session.commit()
    finally:
        await engine.dispose()
    tokens = int(getattr(result, "rowcount", 0) or 0)
    print(f"purged {keys} expired idempotency keys and {tokens} expired tokens")
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
        async with create_session_factory(engine)() as session:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pregnancy-butler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="upgrade the database to the latest migration").set_defaults(
        func=_migrate
    )

    admin = sub.add_parser("create-admin", help="create an admin (password from ADMIN_PASSWORD)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--display-name")
    admin.set_defaults(func=_create_admin_cmd)

    seed = sub.add_parser("seed-demo", help="seed a small demo clinic (never in production)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing if users exist")
    seed.set_defaults(func=_seed_cmd)

    sub.add_parser("purge-expired", help="delete expired tokens and idempotency keys").set_defaults(
        func=lambda _a: asyncio.run(_purge())
    )

    sweep = sub.add_parser("sweep-no-shows", help="end of day: booked, not checked in -> no-show")
    sweep.add_argument("--date", help="the clinic day (YYYY-MM-DD); today when left out")
    sweep.set_defaults(func=lambda a: asyncio.run(_sweep(a.date)))

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
