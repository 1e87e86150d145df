"""What a queue operation runs under: the clinic's queue policy, its moment and actor, and the
conflict it answers when the queue has moved on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.core.clock import ClinicTime
from app.core.errors import Conflict
from app.core.principal import Principal
from app.core.settings import Routing, Settings
from app.queues.domain import REST, BetweenDraws


class QueueConflict(Conflict):
    slug = "queue-conflict"
    title = "The queue has moved on"


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    routing: Routing = Routing.PARALLEL
    ageing: timedelta = timedelta(minutes=30)
    no_show_delay: timedelta = timedelta(minutes=10)
    between: BetweenDraws = REST  # what she may do between the OGTT's draws

    @classmethod
    def from_settings(cls, settings: Settings) -> QueuePolicy:
        return cls(
            routing=settings.queue_routing,
            ageing=timedelta(minutes=settings.queue_ageing_minutes),
            no_show_delay=timedelta(minutes=settings.queue_no_show_delay_minutes),
            between=BetweenDraws.parse(
                settings.ogtt_between_draws, settings.ogtt_between_draws_exams
            ),
        )


@dataclass(frozen=True, slots=True)
class Ctx(ClinicTime):
    """The moment and place a queue operation happens in."""

    now: datetime
    tz: ZoneInfo
    actor: Principal
    policy: QueuePolicy
