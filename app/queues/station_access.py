"""A station account works at its own station only (issue 17): an account for the ultrasound
room cannot run the blood draw. Each alias here is a route's role check with the station check
after it: for a station account, the station of the path (or of the ticket acted on) must be
the one it is bound to, else a 403 naming it (audited). Other roles pass as before (the admin
anywhere; the nutritionist is kept to the nutrition station by the routes themselves).

The role check runs first, so a caller of the wrong role still gets its 403 before any lookup,
and an unknown station or ticket is a 404 as before.
"""

from __future__ import annotations

import uuid
from typing import Annotated, NoReturn

from fastapi import Depends
from sqlalchemy import exists, select

from app.audit.service import AuditTrail
from app.auth.dependencies import (
    AdminOrStation,
    AuditDep,
    ClinicStaffStationOrNutritionist,
    CurrentPrincipal,
    DeskOrStation,
    StationOrNutritionist,
)
from app.auth.models import Role
from app.core.errors import Forbidden
from app.core.principal import Principal
from app.core.routing import SessionDep
from app.measurements.service import STATION_KINDS
from app.queues import operations
from app.queues.dependencies import EntryDep
from app.queues.domain import Catalogue
from app.queues.models import ExamStep, QueueEntry, Station, StepState
from app.queues.repository import QueueRepository
from app.visits.models import ExamOrder


class WrongStation(Forbidden):
    slug = "wrong-station"
    title = "This account works at another station"


def check_station(
    principal: Principal,
    code: str,
    audit: AuditTrail,
    action: str,
    ref: uuid.UUID,
    mother_id: uuid.UUID | None = None,
) -> None:
    """A station account acts at its own station only: elsewhere a 403, audited."""
    if principal.role != Role.STATION.value or principal.station_code == code:
        return
    audit.record_denied(
        action, "station", ref, reason="not the account's station", mother_id=mother_id
    )
    bound = principal.station_code
    raise WrongStation(
        f"This account is bound to station {bound}; it cannot act at {code}."
        if bound
        else "This station account is bound to no station; an admin must bind it.",
        extra={"station_code": bound, "station": code},
    )


async def _at_path_station(
    code: str, principal: Principal, session: SessionDep, audit: AuditDep, action: str
) -> None:
    """For /stations/{code}/...: the station of the path (an unknown one is a 404)."""
    if principal.role == Role.STATION.value:
        station = await operations.station_by_code(session, code)
        check_station(principal, station.code, audit, action, station.id)


async def _at_entry_station(
    principal: Principal, entry: QueueEntry, session: SessionDep, audit: AuditDep
) -> None:
    """For /queue-entries/{entry_id}/...: the station the ticket waits or is served at."""
    if principal.role == Role.STATION.value:
        station = await operations.station_of(session, entry)
        check_station(principal, station.code, audit, "queue.act", entry.id, entry.mother_id)


async def _queue_reader(
    code: str, principal: ClinicStaffStationOrNutritionist, session: SessionDep, audit: AuditDep
) -> Principal:
    await _at_path_station(code, principal, session, audit, "queue.read")
    return principal


async def _caller(
    code: str, principal: StationOrNutritionist, session: SessionDep, audit: AuditDep
) -> Principal:
    await _at_path_station(code, principal, session, audit, "queue.call")
    return principal


async def _server(
    principal: StationOrNutritionist, entry: EntryDep, session: SessionDep, audit: AuditDep
) -> Principal:
    await _at_entry_station(principal, entry, session, audit)
    return principal


async def _station_op(
    principal: AdminOrStation, entry: EntryDep, session: SessionDep, audit: AuditDep
) -> Principal:
    await _at_entry_station(principal, entry, session, audit)
    return principal


async def _mover(
    principal: DeskOrStation, entry: EntryDep, session: SessionDep, audit: AuditDep
) -> Principal:
    await _at_entry_station(principal, entry, session, audit)
    return principal


# GET /stations/{code}/queue: the clinic's staff and the nutritionist; a station its own.
QueueReaderHere = Annotated[Principal, Depends(_queue_reader)]
# POST /stations/{code}/call-next.
CallerHere = Annotated[Principal, Depends(_caller)]
# recall, start, finish: at the ticket's station.
ServerHere = Annotated[Principal, Depends(_server)]
# no-show, glucose-drink: the admin, or the ticket's own station.
StationOpHere = Annotated[Principal, Depends(_station_op)]
# transfer: the desk, the admin, or the station she waits at.
MoverHere = Annotated[Principal, Depends(_mover)]


async def station_may_measure(
    principal: CurrentPrincipal, session: SessionDep, audit: AuditDep
) -> None:
    """POST /mothers/{id}/measurements: a station account records readings only when its
    station takes them (vitals, NST). The role check of the route comes after this one and
    is unchanged for every other role."""
    if principal.role != Role.STATION.value:
        return
    code = principal.station_code
    station = await QueueRepository(session).station_by_code(code) if code else None
    if station is None or station.station_type not in STATION_KINDS:
        audit.record_denied(
            "mother.measurements.create",
            "station",
            station.id if station is not None else None,
            reason="the account's station takes no readings",
        )
        raise WrongStation(
            f"This account is bound to station {code}, which takes no readings; the vitals "
            "station records them.",
            extra={"station_code": code},
        )


MeasuringStation = Depends(station_may_measure)


async def _own_station(session: SessionDep, principal: Principal) -> Station | None:
    code = principal.station_code
    return await QueueRepository(session).station_by_code(code) if code else None


async def _refuse(
    session: SessionDep,
    principal: Principal,
    audit: AuditTrail,
    action: str,
    kind: str,
    ref: uuid.UUID,
    visit_id: uuid.UUID,
    why: str,
) -> NoReturn:
    mother = await QueueRepository(session).mother_of_visit(visit_id)
    audit.record_denied(action, kind, ref, reason="not the account's station", mother_id=mother)
    bound = principal.station_code
    raise WrongStation(
        f"This account is bound to station {bound}; {why}",
        extra={"station_code": bound},
    )


async def check_order_station(
    session: SessionDep,
    principal: Principal,
    order: ExamOrder,
    catalogue: Catalogue,
    audit: AuditTrail,
) -> None:
    """POST /exam-orders/{id}/cancel: a station account drops only an exam done at its own
    station (its station's type is the exam's); other roles as before."""
    if principal.role != Role.STATION.value:
        return
    station = await _own_station(session, principal)
    rule = catalogue.rule(order.exam_code)
    if station is None or rule is None or rule.station_type != station.station_type:
        await _refuse(
            session,
            principal,
            audit,
            "exam_order.cancel",
            "exam_order",
            order.id,
            order.visit_id,
            f"the exam {order.exam_code} is not done there.",
        )


async def check_visit_station(
    session: SessionDep, principal: Principal, visit_id: uuid.UUID, audit: AuditTrail, action: str
) -> None:
    """A station account acts on (or reads the queues of) a visit only when she has a place
    at its station today, or an exam still to do there (the doctor's, queued last); other roles
    as before."""
    if principal.role != Role.STATION.value:
        return
    station = await _own_station(session, principal)
    if station is not None:
        placed = select(QueueEntry.id).where(
            QueueEntry.visit_id == visit_id, QueueEntry.station_id == station.id
        )
        pending = select(ExamStep.id).where(
            ExamStep.visit_id == visit_id,
            ExamStep.station_type == station.station_type,
            ExamStep.state == StepState.PENDING,
        )
        found = await session.scalar(select(exists(placed) | exists(pending)))
        if found:
            return
    why = "she has no place at it in this visit."
    await _refuse(session, principal, audit, action, "visit", visit_id, visit_id, why)
