"""``loa policy check``: plan a day and put it, and the emergency replays, through the guard.

Nothing is built or sent: it says which programs and replay schedules the broadcast rules
(``pipeline/broadcast/guard.py``) would refuse, and which communes miss a required language.
"""

from __future__ import annotations

import datetime as dt

from pipeline.broadcast.guard import Violation, check_plans, check_replays, policy_for
from pipeline.broadcast.replay import bulletin_replays
from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.produce import Producer
from pipeline.store import Database


def check_day(day: dt.date, *, settings: Settings, deployment: Deployment, db: Database) -> list[Violation]:
    """The violations of ``day``'s plan and of the replays of emergency bulletins valid that day."""
    planned = Producer(settings=settings, deployment=deployment, db=db).plan_day(day)
    plans, bulletins = planned.plans, planned.bulletins
    found = check_plans(plans, deployment, tz=settings.tz)
    for b in bulletins:
        if b.priority != "emergency" or b.id is None:
            continue
        issued = (b.approved_at or dt.datetime.combine(day, dt.time(0), tzinfo=settings.tz)).astimezone(settings.tz)
        times = [t for t in bulletin_replays(b, issued, tz=settings.tz) if t.date() == day]
        for commune in deployment.targeted(b.targets):
            found.extend(
                check_replays(
                    times, policy_for(commune, deployment), commune=commune.code, bulletin_id=b.id, tz=settings.tz
                )
            )
    return found
