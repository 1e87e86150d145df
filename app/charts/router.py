"""Charts of her pregnancy: weight against the band for her BMI group, blood pressure over time,
as SVG and PNG.

Each answer carries a strong ETag (the fingerprint of the data drawn) and ``Cache-Control:
private, no-cache``, made ``private, no-store`` by the security headers as on every /v1
answer (issue 18: her chart is her data, and no browser or shared desk PC may keep it on
disk). The console and the butler app keep the ETag themselves and ask again with
If-None-Match (304, nothing drawn), so a new reading - a 160/110 above all - is never hidden
behind a stale picture. Drawing runs in a worker thread, after the request's transaction has
given its connection back.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Header, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuditDep
from app.charts import render, service
from app.charts.dependencies import ChartMother
from app.charts.domain import ChartFormat, PressureChart, WeightChart
from app.core.deps import SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.etag import none_match
from app.core.routing import SessionDep, make_router
from app.core.settings import Settings
from app.mothers.models import Pregnancy
from app.mothers.repository import MotherRepository

router = make_router(prefix="/v1", tags=["charts"], responses=problem_responses(401, 403, 422))

CACHE_CONTROL = "private, no-cache"  # made "private, no-store" by app.core.headers
# One drawing at a time (the renderer holds a lock): waiting requests wait here, not in threads.
_drawing = anyio.CapacityLimiter(1)

IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="The ETag of the chart you have: 304 if unchanged."),
]
Loader = Callable[[AsyncSession, Pregnancy, Settings], Awaitable[WeightChart | PressureChart]]


def _etag(chart: WeightChart | PressureChart, fmt: ChartFormat) -> str:
    return f'"{chart.fingerprint()}.{fmt.value}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    return none_match(if_none_match, etag)  # weak comparison, lists and "*"


async def _chart(
    *,
    mother_id: uuid.UUID,
    session: AsyncSession,
    settings: Settings,
    audit: AuditDep,
    load: Loader,
    fmt: ChartFormat,
    action: str,
    if_none_match: str | None,
) -> Response:
    pregnancy = await MotherRepository(session).active_pregnancy(mother_id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    chart = await load(session, pregnancy, settings)
    etag = _etag(chart, fmt)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    # The data is read: give the connection back before drawing (the audit row is written at
    # the route's commit, in a transaction of its own).
    await session.rollback()
    audit.record(action, "mother", mother_id, detail={"format": fmt.value})
    if _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    body = await anyio.to_thread.run_sync(render.draw, chart, fmt, limiter=_drawing)
    if fmt is ChartFormat.SVG:
        # An SVG is a document a browser may open: it runs nothing and loads nothing.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(body, media_type=fmt.media_type, headers=headers)


def _responses(fmt: ChartFormat) -> dict[int | str, dict[str, object]]:
    return {
        200: {"content": {fmt.media_type: {}}, "description": f"The chart ({fmt.value.upper()})"},
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(404),
    }


WEIGHT_DESCRIPTION = (
    "体重增长 Weight gain: her weight readings (status colours and shapes: within, below, above) "
    "against the expected band for her pre-pregnancy BMI group (her pre-pregnancy weight plus "
    "the gain range of the table, by gestational week), the table and group named. Without "
    "height or pre-pregnancy weight, or in a pregnancy the table does not cover, the readings "
    "are drawn with a note saying why there is no band."
)
PRESSURE_DESCRIPTION = (
    "血压 Blood pressure: systolic and diastolic over the pregnancy with the 140/90 "
    "(hypertension) and 160/110 (severe) lines; readings at or above a line are ringed."
)


def _add(path: str, fmt: ChartFormat, load: Loader, action: str, summary: str, desc: str) -> None:
    async def read_chart(
        mother: ChartMother,
        session: SessionDep,
        settings: SettingsDep,
        audit: AuditDep,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        return await _chart(
            mother_id=mother.id,
            session=session,
            settings=settings,
            audit=audit,
            load=load,
            fmt=fmt,
            action=action,
            if_none_match=if_none_match,
        )

    read_chart.__name__ = f"{action.replace('.', '_')}_{fmt.value}"
    router.add_api_route(
        f"/mothers/{{mother_id}}/charts/{path}.{fmt.value}",
        read_chart,
        methods=["GET"],
        response_class=Response,
        summary=f"{summary} ({fmt.value.upper()})",
        description=desc,
        responses=_responses(fmt),
    )


for _fmt in ChartFormat:
    _add(
        "weight-gain",
        _fmt,
        service.weight_chart,
        "mother.chart.weight_gain",
        "Her weight against the band for her BMI group",
        WEIGHT_DESCRIPTION,
    )
    _add(
        "blood-pressure",
        _fmt,
        service.pressure_chart,
        "mother.chart.blood_pressure",
        "Her blood pressure over the pregnancy, with the 140/90 and 160/110 lines",
        PRESSURE_DESCRIPTION,
    )
