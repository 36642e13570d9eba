"""REST handlers for scheduled workflows: register one (a run request with a cron
expression), list them, read or remove one. The loop that fires them is
:mod:`jupyter_orch.engine.schedules`."""

from __future__ import annotations

from ..core.errors import OrchError
from ..engine.schedules import Schedules
from .base import OrchAPIHandler
from .submissions import check_run_request


class _Base(OrchAPIHandler):
    async def schedules(self) -> Schedules:
        await self.engine()  # started (or its start failed: that error)
        schedules = self.orch.schedules
        if schedules is None:
            raise OrchError("the schedule loop is not running")
        return schedules


class SchedulesHandler(_Base):
    async def get(self) -> None:
        schedules = await self.schedules()
        self.write_json(
            {
                "schedules": await schedules.views(
                    self.identity.listed_owner(self.get_query_argument("owner", None))
                )
            }
        )

    async def post(self) -> None:
        schedules = await self.schedules()
        body = check_run_request(self.json_body(), shared=self.orch.owner_from == "identity")
        self.write_json(await schedules.add(body, self.owner), status=201)


class ScheduleHandler(_Base):
    async def get(self, schedule_id: str) -> None:
        schedules = await self.schedules()
        self.write_json(schedules.view(await schedules.get(schedule_id, self.identity.read_filter())))

    async def delete(self, schedule_id: str) -> None:
        schedules = await self.schedules()
        self.write_json(await schedules.remove(schedule_id, self.identity.change_filter()))
