"""The simulated world one population lives in: its clock, its identifiers, its
cells, and the four things a SIM can do (be activated, be registered, be seen,
have its day's usage reported).

Every time is relative to `now`, whole seconds, and never after it: the API
refuses event times more than five minutes ahead, and a generator that stays
at or behind its reference time can be posted a while after generating.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from simguard.settings import Rules
from tooling.simulator.identities import Holder, Identities, event_id
from tooling.simulator.networks import CellPlan, pick_operator

# How far back the simulated feed reaches: every observation, and the
# activations of new subscribers, fall within it. Established SIMs (travellers,
# an older SIM sold to a compound, revoked registrations) were activated or
# registered before it, and those events are older.
FEED_DAYS: Final = 10.0
VERIFIED: Final = ("biometric", "in_person", "ekyc")
VERIFIED_WEIGHTS: Final = (0.5, 0.3, 0.2)
# Where a foreign holder of a Thai SIM comes from (migrant workers, expatriates).
FOREIGN_NATIONALITIES: Final = ("MM", "KH", "LA", "CN", "GB")
FOREIGN_HOLDER_SHARE: Final = 0.08
# Share of home observations that carry a cell id (the rest count for no border rule).
CELL_ID_SHARE: Final = 0.8
# Nothing a simulated SIM does comes closer than this to `now`: a little room
# for the clock of whoever posts the events.
NOW_MARGIN: Final = timedelta(minutes=1)
# Usage is reported for whole days: the days before `now`'s, at most this
# many back (the API takes a day for a week after it ends).
USAGE_DAYS: Final = 5


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimulatedSim:
    """One SIM: who it is, what it did, and what the register must say about it."""

    actor: str
    operator: str
    imsi: str
    iccid: str
    msisdn: str
    imei: str
    expected: set[str] = field(default_factory=set)
    activations: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)


class World:
    def __init__(self, rng: random.Random, now: datetime, rules: Rules) -> None:
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        self.rng = rng
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.rules = rules
        self.ids = Identities(rng)
        self.cells = CellPlan(rng, rules.border_cells)
        self._dealer_in_use: dict[str, tuple[str, int]] = {}

    # --- time -----------------------------------------------------------------------
    def ago(self, *, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        return self.now - timedelta(days=days, hours=hours, minutes=minutes)

    def latest(self) -> datetime:
        """The latest time a simulated event may carry."""
        return self.now - NOW_MARGIN

    def clamp(self, moment: datetime) -> datetime:
        return min(moment, self.latest()).replace(microsecond=0)

    def between(self, start: datetime, end: datetime) -> datetime:
        """A uniformly random moment in [start, end], whole seconds, never after `latest`."""
        end = min(end, self.latest())
        if end <= start:
            return self.clamp(start)
        seconds = (end - start).total_seconds()
        return (start + timedelta(seconds=self.rng.uniform(0, seconds))).replace(microsecond=0)

    def moments(self, start: datetime, end: datetime, count: int) -> list[datetime]:
        return sorted(self.between(start, end) for _ in range(count))

    # --- people and SIMs ------------------------------------------------------------
    def new_sim(self, actor: str, operator: str | None = None) -> SimulatedSim:
        home = operator or pick_operator(self.rng)
        return SimulatedSim(
            actor=actor,
            operator=home,
            imsi=self.ids.imsi(home),
            iccid=self.ids.iccid(home),
            msisdn=self.ids.msisdn(),
            imei=self.ids.imei(),
        )

    def new_holder(self) -> Holder:
        if self.rng.random() < FOREIGN_HOLDER_SHARE:
            return self.ids.foreign_worker(self.rng.choice(FOREIGN_NATIONALITIES))
        return self.ids.thai_citizen()

    def verification(self) -> str:
        return self.rng.choices(VERIFIED, weights=VERIFIED_WEIGHTS)[0]

    def ordinary_dealer(self, operator: str) -> str | None:
        """A dealer for an ordinary dealer-channel activation, or None when the
        rules make any dealer activation a burst.

        Each such dealer activates fewer SIMs in all than a burst needs, so no
        ordinary dealer can form a burst however its activations fall in time.
        """
        cap = self.rules.bulk_activation_min_sims - 1
        if cap < 1:
            return None
        dealer, used = self._dealer_in_use.get(operator, ("", cap))
        if used >= cap:
            dealer, used = self.ids.dealer_id(operator), 0
        self._dealer_in_use[operator] = (dealer, used + 1)
        return dealer

    # --- what a SIM does ----------------------------------------------------------------
    def activate(
        self,
        sim: SimulatedSim,
        at: datetime,
        *,
        channel: str | None = None,
        dealer_id: str | None = None,
    ) -> datetime:
        """A domestic activation (location TH, or none for online sales)."""
        at = self.clamp(at)
        if channel is None:
            channel = self.rng.choices(
                ("retail", "dealer", "online", "kiosk"), weights=(0.45, 0.25, 0.15, 0.15)
            )[0]
        if channel == "dealer" and dealer_id is None:
            dealer_id = self.ordinary_dealer(sim.operator)
            if dealer_id is None:
                channel = "retail"
        event: dict[str, Any] = {
            "event_id": event_id(self.rng),
            "operator": sim.operator,
            "imsi": sim.imsi,
            "iccid": sim.iccid,
            "msisdn": sim.msisdn,
            "activated_at": rfc3339(at),
            "channel": channel,
        }
        if dealer_id is not None:
            event["dealer_id"] = dealer_id
        if channel != "online":
            event["location"] = {
                "country": self.rules.home_country,
                "cell_id": self.cells.ordinary_cell(sim.operator),
            }
        if self.rng.random() < 0.6:
            event["imei"] = sim.imei
        sim.activations.append(event)
        return at

    def register(
        self,
        sim: SimulatedSim,
        holder: Holder,
        at: datetime,
        *,
        verification: str | None = None,
        status: str = "active",
    ) -> datetime:
        at = self.clamp(at)
        sim.registrations.append(
            {
                "event_id": event_id(self.rng),
                "operator": sim.operator,
                "imsi": sim.imsi,
                "iccid": sim.iccid,
                "msisdn": sim.msisdn,
                "holder": holder.as_json(printed=self.rng.random() < 0.3),
                "verification": verification or self.verification(),
                "registered_at": rfc3339(at),
                "status": status,
            }
        )
        return at

    def observe(
        self,
        sim: SimulatedSim,
        at: datetime,
        plmn: str | None = None,
        cell: str | None = None,
        imei: str | None = None,
    ) -> datetime:
        """Seen on `plmn` (default: the home network) in cell `cell`, if any,
        in handset `imei` when the network reports it."""
        at = self.clamp(at)
        event: dict[str, Any] = {
            "event_id": event_id(self.rng),
            "operator": sim.operator,
            "imsi": sim.imsi,
            "observed_at": rfc3339(at),
            "visited_plmn": plmn or sim.operator,
        }
        if cell is not None:
            event["cell_id"] = cell
        if imei is not None:
            event["imei"] = imei
        sim.observations.append(event)
        return at

    def report_usage(
        self, sim: SimulatedSim, days_ago: int, calls: int, top_cell_share: float, cells: int
    ) -> None:
        """The operator's counters for the SIM's UTC day `days_ago` days before `now`'s."""
        if not 1 <= days_ago <= USAGE_DAYS:
            raise ValueError(f"usage is reported for 1 to {USAGE_DAYS} days ago")
        day = (self.now - timedelta(days=days_ago)).date()
        sim.usage.append(
            {
                "event_id": event_id(self.rng),
                "operator": sim.operator,
                "imsi": sim.imsi,
                "day": day.isoformat(),
                "outgoing_calls": calls,
                "distinct_called_numbers": round(calls * self.rng.uniform(0.3, 0.9)),
                "distinct_cells": cells if calls else 0,
                "top_cell_share": round(top_cell_share, 3) if calls else 0.0,
            }
        )

    def at_home(self, sim: SimulatedSim, moments: Iterable[datetime]) -> None:
        """Ordinary life on the home network: away from any border cell."""
        for moment in moments:
            cell = (
                self.cells.ordinary_cell(sim.operator)
                if self.rng.random() < CELL_ID_SHARE
                else None
            )
            self.observe(sim, moment, cell=cell)

    def daily_life(self, sim: SimulatedSim, start: datetime, end: datetime) -> None:
        """About one home observation a day between `start` and `end`, at least one."""
        days = max((end - start).total_seconds() / 86_400, 0.0)
        count = max(1, min(20, round(days * self.rng.uniform(0.6, 1.6))))
        self.at_home(sim, self.moments(start, end, count))
