"""`generate()`: a seeded population of operators' events, with its ground truth.

The same seed, reference time and rules give the same events, byte for byte.
The mix of actors is a set of fractions of the SIMs (`Mix`); ordinary
subscribers fill the rest. Actors that come in groups (a holder's SIMs, a
dealer's box) take whole groups, so a fraction is met as closely as groups allow
and any actor given a fraction appears at least once.

Truth and overlaps: each actor states the codes its SIMs must end with, and
actors are kept apart (one holder per actor, dealers of their own, cells of
their own), so a SIM's truth is its actor's. The one deliberate overlap, the
unregistered mule, joins two rule families that read disjoint facts
(registrations; observations), so its truth is the union of both.
"""

from __future__ import annotations

import dataclasses
import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from simguard.settings import Rules
from tooling.simulator import actors, suspects
from tooling.simulator.networks import FLIGHT_NETWORKS, MALAYSIAN_NETWORKS, country
from tooling.simulator.suspects import COMPOUND_COUNTRY_WEIGHTS
from tooling.simulator.world import USAGE_DAYS, SimulatedSim, World

Actor = Callable[[World, int], list[SimulatedSim]]

# Every actor kind but `ordinary`, in the order they are generated.
ACTORS: Final[dict[str, Actor]] = {
    "traveller": actors.traveller,
    "unregistered": actors.unregistered,
    "over_limit": actors.over_limit,
    "foreign_over_limit": actors.foreign_over_limit,
    "revoked": actors.revoked,
    "reinstated": actors.reinstated,
    "mule": suspects.mule,
    "unregistered_mule": suspects.unregistered_mule,
    "courier": suspects.courier,
    "seasoned_mule": suspects.seasoned_mule,
    "border_dweller": suspects.border_dweller,
    "near_miss_dweller": suspects.near_miss_dweller,
    "clone": suspects.clone,
    "device_cycler": suspects.device_cycler,
    "phone_upgrader": suspects.phone_upgrader,
    "call_centre": suspects.call_centre,
    "sim_box": suspects.sim_box,
    "sim_farm": suspects.sim_farm,
    "heavy_caller": actors.heavy_caller,
    "shared_handset": suspects.shared_handset,
    "dealer_burst": suspects.dealer_burst,
    "slow_dealer": suspects.slow_dealer,
}
EVENT_KINDS: Final = ("activations", "registrations", "network_events", "usage")
# Where the innocent go: never high-risk, or travellers would be suspects.
TRAVEL_COUNTRIES: Final = frozenset(country(p) for p in (*FLIGHT_NETWORKS, *MALAYSIAN_NETWORKS))


@dataclass(frozen=True)
class Mix:
    """Fractions of the SIMs per actor kind; ordinary subscribers are the rest."""

    traveller: float = 0.05
    unregistered: float = 0.02
    over_limit: float = 0.012
    foreign_over_limit: float = 0.004
    revoked: float = 0.01
    reinstated: float = 0.005
    mule: float = 0.015
    unregistered_mule: float = 0.005
    courier: float = 0.005
    seasoned_mule: float = 0.005
    border_dweller: float = 0.01
    near_miss_dweller: float = 0.01
    clone: float = 0.01
    device_cycler: float = 0.005
    phone_upgrader: float = 0.005
    call_centre: float = 0.0075
    sim_box: float = 0.02
    sim_farm: float = 0.01
    heavy_caller: float = 0.01
    shared_handset: float = 0.015
    dealer_burst: float = 0.03
    slow_dealer: float = 0.025

    def __post_init__(self) -> None:
        fractions = dataclasses.asdict(self)
        bad = [kind for kind, share in fractions.items() if not 0 <= share <= 1]
        if bad:
            raise ValueError(f"fractions must be between 0 and 1: {', '.join(bad)}")
        if sum(fractions.values()) > 1:
            raise ValueError("the fractions add up to more than 1")

    @property
    def ordinary(self) -> float:
        return 1.0 - float(sum(dataclasses.asdict(self).values()))

    def with_fractions(self, **fractions: float) -> Mix:
        unknown = sorted(set(fractions) - set(ACTORS))
        if unknown:
            raise ValueError(
                f"unknown actor kinds: {', '.join(unknown)} (known: {', '.join(ACTORS)})"
            )
        return dataclasses.replace(self, **fractions)


@dataclass(frozen=True)
class Scenario:
    seed: int
    now: datetime
    # HTTP request bodies' events, by kind, each list in event-time order.
    events: dict[str, list[dict[str, Any]]]
    # IMSI -> the reason codes that must be active at the end; absent: unflagged.
    truth: dict[str, frozenset[str]]
    operators: list[str]
    border_cells: list[str]
    # Actor kind -> its SIMs' IMSIs, for reports and for tests of the mix.
    actors: dict[str, list[str]]
    rules_version: str

    @property
    def imsis(self) -> frozenset[str]:
        return frozenset(imsi for imsis in self.actors.values() for imsi in imsis)

    def counts(self) -> dict[str, int]:
        return {kind: len(events) for kind, events in self.events.items()}


def generate(sims: int, seed: int, now: datetime, rules: Rules, mix: Mix | None = None) -> Scenario:
    """`sims` SIMs' events in the past ~10 days before `now`, and the truth."""
    check_rules(rules)
    mix = mix or Mix()
    world = World(random.Random(seed), now, rules)
    population: list[SimulatedSim] = []
    fractions = dataclasses.asdict(mix)
    for kind, actor in ACTORS.items():
        target = round(fractions[kind] * sims)
        if fractions[kind] > 0:
            target = max(target, 1)
        made = index = 0
        while target > 0:
            group = actor(world, index)
            population.extend(group)
            made += len(group)
            index += 1
            # Another group only if it brings the count nearer the target.
            if target - made < len(group) / 2:
                break
    if len(population) > sims:
        raise ValueError(
            f"{sims} SIMs are too few for this mix: its groups alone take {len(population)} "
            "(a dealer burst needs bulk_activation_min_sims SIMs); raise --sims or lower fractions"
        )
    index = 0
    while len(population) < sims:
        group = actors.ordinary(world, index)
        population.extend(group[: sims - len(population)])
        index += 1
    return _scenario(seed, world, population)


def check_rules(rules: Rules) -> None:
    """Refuse configurations under which the simulator cannot keep its patterns apart."""
    problems = []
    if rules.high_risk_roaming_min_days < 2:
        problems.append("high_risk_roaming_min_days must be at least 2 (day trips must not count)")
    if rules.high_risk_roaming_window_days < rules.high_risk_roaming_min_days:
        problems.append("high_risk_roaming_window_days must be at least its min_days")
    if rules.border_dwell_window_days < 3:
        problems.append("border_dwell_window_days must be at least 3")
    if rules.bulk_activation_min_sims < 2:
        problems.append("bulk_activation_min_sims must be at least 2")
    if rules.device_many_sims_min_imsis < 2:
        problems.append("device_many_sims_min_imsis must be at least 2")
    if rules.static_high_volume_min_calls * 1.5 > rules.high_call_volume_max_calls * 0.9:
        problems.append(
            "static_high_volume_min_calls must be well under high_call_volume_max_calls "
            "(a SIM farm's day lies between them)"
        )
    if rules.static_high_volume_min_days > USAGE_DAYS:
        problems.append(f"static_high_volume_min_days must be at most {USAGE_DAYS}")
    if rules.static_high_volume_min_share < 0.5:
        problems.append("static_high_volume_min_share must be at least 0.5")
    per_operator = rules.identity_sim_limit_per_operator
    if 0 < per_operator < rules.identity_sim_limit:
        problems.append(
            "identity_sim_limit_per_operator must be 0 or at least identity_sim_limit "
            "(an over-limit holder's SIMs are spread over operators at random)"
        )
    foreign = rules.identity_sim_limit_per_operator_foreign
    if not 0 < foreign <= rules.identity_sim_limit - 2:
        problems.append(
            "identity_sim_limit_per_operator_foreign must be at least 1 and at least 2 under "
            "identity_sim_limit (a migrant worker's SIMs pass it with one operator only)"
        )
    if rules.identity_sim_limit < 1:
        problems.append("identity_sim_limit must be at least 1")
    if rules.home_country != "TH":
        problems.append("the simulated operators are Thai: home_country must be TH")
    if not set(COMPOUND_COUNTRY_WEIGHTS) & rules.high_risk_countries:
        problems.append(
            f"high_risk_countries must include one of {sorted(COMPOUND_COUNTRY_WEIGHTS)}"
        )
    if TRAVEL_COUNTRIES & rules.high_risk_countries:
        problems.append(f"travellers visit {sorted(TRAVEL_COUNTRIES)}: none may be high-risk")
    # Crossings by land take minutes; they must not read as impossible travel.
    by_land = [c for c in ("MY", *COMPOUND_COUNTRY_WEIGHTS) if not rules.adjacent("TH", c)]
    if by_land:
        problems.append(f"adjacent_countries must give TH a land border with {by_land}")
    if problems:
        raise ValueError("rules unsuitable for simulation: " + "; ".join(problems))


def _scenario(seed: int, world: World, population: list[SimulatedSim]) -> Scenario:
    events: dict[str, list[dict[str, Any]]] = {kind: [] for kind in EVENT_KINDS}
    grouped: dict[str, list[str]] = {}
    truth: dict[str, frozenset[str]] = {}
    for sim in population:
        events["activations"].extend(sim.activations)
        events["registrations"].extend(sim.registrations)
        events["network_events"].extend(sim.observations)
        events["usage"].extend(sim.usage)
        grouped.setdefault(sim.actor, []).append(sim.imsi)
        if sim.expected:
            truth[sim.imsi] = frozenset(sim.expected)
    for kind, field_name in _TIME_FIELDS.items():
        events[kind].sort(key=operator.itemgetter(field_name, "imsi"))
    return Scenario(
        seed=seed,
        now=world.now,
        events=events,
        truth=truth,
        operators=sorted({sim.operator for sim in population}),
        border_cells=world.cells.border_cells,
        actors=grouped,
        rules_version=world.rules.rules_version,
    )


_TIME_FIELDS: Final[Mapping[str, str]] = {
    "activations": "activated_at",
    "registrations": "registered_at",
    "network_events": "observed_at",
    "usage": "day",
}
