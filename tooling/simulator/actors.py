"""The people behind the SIMs that should not be flagged, and the registration
cases that should: ordinary subscribers, travellers, unregistered SIMs,
holders over the limit, revoked and reinstated registrations.

Each actor returns its SIMs with the reason codes the register must end with
(`expected`). An actor's events are built so that no other rule can fire on
them: ordinary cells are never border cells, flights take longer than the
impossible-travel limit, and every holder is one person per actor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from tooling.simulator.identities import Holder
from tooling.simulator.networks import (
    FLIGHT_NETWORKS,
    HIGH_RISK_NETWORKS,
    MALAYSIAN_NETWORKS,
    country,
    networks_in,
    pick_operator,
)
from tooling.simulator.truth import IDENTITY_OVER_LIMIT, REGISTRATION_REVOKED, UNREGISTERED
from tooling.simulator.world import FEED_DAYS, USAGE_DAYS, SimulatedSim, World

# Share of ordinary holders who carry a second SIM (within any limit).
SECOND_SIM_SHARE: Final = 0.1
# Flight times from Bangkok, in hours, by destination network's country.
FLIGHT_HOURS: Final = {"SG": 2.5, "JP": 6.0, "US": 20.0, "VN": 1.75}


# Share of ordinary SIMs whose usage the simulated operators report (all of
# them would multiply the events; a sample shows the ordinary day).
USAGE_REPORTED_SHARE: Final = 0.1


def ordinary(world: World, index: int) -> list[SimulatedSim]:
    """A new subscriber (sometimes with a second SIM) who stays at home."""
    second = world.rules.identity_sim_limit >= 2 and world.rng.random() < SECOND_SIM_SHARE
    holder = world.new_holder()
    sims = []
    for _ in range(2 if second else 1):
        sim = world.new_sim("ordinary")
        activated = world.activate(sim, world.between(world.ago(days=FEED_DAYS), world.latest()))
        # Registered at the counter just before activation, or online just after.
        world.register(sim, holder, activated + timedelta(minutes=world.rng.uniform(-30, 10)))
        world.daily_life(sim, activated, world.latest())
        if world.rng.random() < USAGE_REPORTED_SHARE:
            _ordinary_days(world, sim)
        sims.append(sim)
    return sims


def _ordinary_days(world: World, sim: SimulatedSim) -> None:
    for days_ago in range(1, world.rng.randint(1, 2) + 1):
        calls = world.rng.randint(0, 15)
        world.report_usage(sim, days_ago, calls, world.rng.uniform(0.2, 0.7), cells=4)


def heavy_caller(world: World, index: int) -> list[SimulatedSim]:
    """Heavy but legitimate: a sales rep on the road, calling all day short of
    the daily limit from cell after cell; or a shopkeeper calling from the
    shop all day, short of the calls a static day needs."""
    rules = world.rules
    sim = world.new_sim("heavy_caller")
    activated = world.activate(sim, world.ago(days=world.rng.uniform(6, FEED_DAYS)))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5))
    world.daily_life(sim, activated, world.latest())
    limit, static_calls = rules.high_call_volume_max_calls, rules.static_high_volume_min_calls
    for days_ago in range(1, USAGE_DAYS + 1):
        if index % 2 == 0:
            calls = world.rng.randint(round(limit * 0.6), round(limit * 0.9))
            share = world.rng.uniform(0.1, rules.static_high_volume_min_share * 0.66)
            world.report_usage(sim, days_ago, calls, share, cells=world.rng.randint(8, 25))
        else:
            calls = world.rng.randint(round(static_calls * 0.5), round(static_calls * 0.8))
            world.report_usage(sim, days_ago, calls, 1.0, cells=1)
    return [sim]


def traveller(world: World, index: int) -> list[SimulatedSim]:
    """A week abroad by air, a day trip to Cambodia, or a Malaysian border crossing."""
    variant = ("flight", "cambodia_day_trip", "malaysia_crossing")[index % 3]
    sim = world.new_sim("traveller")
    if variant == "cambodia_day_trip":
        _cambodia_day_trip(world, sim)
    else:
        _settled_subscriber(world, sim, days_ago=world.rng.uniform(12, 28))
        if variant == "flight":
            _week_abroad(world, sim)
        else:
            _malaysia_crossing(world, sim)
    return [sim]


def _settled_subscriber(world: World, sim: SimulatedSim, days_ago: float) -> None:
    """Activated before the feed's window; seen only within it, like everyone."""
    activated = world.activate(sim, world.ago(days=days_ago))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5))


def _week_abroad(world: World, sim: SimulatedSim) -> None:
    plmn = world.rng.choice(FLIGHT_NETWORKS)
    country_hours = FLIGHT_HOURS[country(plmn)]
    # Landing is always well over the impossible-travel limit after the last
    # sighting at home, whatever that limit is configured to.
    limit_hours = world.rules.impossible_travel_max_minutes / 60
    flight = timedelta(hours=max(country_hours, 2 * limit_hours) + world.rng.uniform(0.5, 3))
    departed = world.ago(days=world.rng.uniform(8.5, 9.5))
    world.at_home(sim, world.moments(world.ago(days=FEED_DAYS), departed, 3))
    world.observe(sim, departed)
    landed = departed + flight
    # Home a day before `now` at the latest: a return squeezed against `now`
    # would put the last sighting abroad and the first at home at one moment.
    room = world.ago(days=1) - landed - flight
    stay = min(timedelta(days=world.rng.uniform(5, 7.5)), room)
    for moment in world.moments(landed, landed + stay, 8):
        world.observe(sim, moment, plmn=plmn)
    last_abroad = landed + stay
    world.observe(sim, last_abroad, plmn=plmn)
    home = last_abroad + flight
    world.observe(sim, home)
    world.daily_life(sim, home + timedelta(hours=1), world.latest())


def _cambodia_day_trip(world: World, sim: SimulatedSim) -> None:
    """Nine to five on one UTC day in Cambodia, long after activation."""
    rules = world.rules
    trip_day = world.ago(days=world.rng.uniform(1.5, 8)).replace(hour=0, minute=0, second=0)
    crossing = trip_day + timedelta(hours=2, minutes=world.rng.uniform(0, 60))
    activated_days_before = rules.activated_then_abroad_window_hours / 24 + world.rng.uniform(7, 20)
    _settled_subscriber(world, sim, days_ago=(world.now - crossing).days + activated_days_before)
    world.at_home(sim, world.moments(world.ago(days=FEED_DAYS), crossing - timedelta(hours=3), 3))
    world.at_home(sim, [crossing - timedelta(minutes=40)])
    plmn = world.rng.choice(networks_in({"KH"}, HIGH_RISK_NETWORKS))
    for moment in world.moments(crossing, trip_day + timedelta(hours=10), 3):
        world.observe(sim, moment, plmn=plmn)
    back = trip_day + timedelta(hours=11, minutes=world.rng.uniform(0, 60))
    world.observe(sim, back, cell=world.cells.ordinary_cell(sim.operator))
    world.daily_life(sim, back + timedelta(hours=2), world.latest())


def _malaysia_crossing(world: World, sim: SimulatedSim) -> None:
    """Sadao to Bukit Kayu Hitam: minutes between countries, which share a border."""
    plmn = world.rng.choice(MALAYSIAN_NETWORKS)
    crossed = world.ago(days=world.rng.uniform(4, 8))
    world.at_home(sim, world.moments(world.ago(days=FEED_DAYS), crossed, 3))
    world.observe(sim, crossed)
    over = crossed + timedelta(minutes=world.rng.uniform(10, 40))
    stay = timedelta(days=world.rng.uniform(1, 3))
    for moment in world.moments(over, over + stay, 4):
        world.observe(sim, moment, plmn=plmn)
    world.observe(sim, over + stay, plmn=plmn)
    back = over + stay + timedelta(minutes=world.rng.uniform(10, 40))
    world.daily_life(sim, back, world.latest())


def unregistered(world: World, index: int) -> list[SimulatedSim]:
    """Activated and never registered, or registered without any verification."""
    sim = world.new_sim("unregistered")
    activated = world.activate(sim, world.between(world.ago(days=FEED_DAYS), world.ago(hours=1)))
    if index % 2:
        world.register(sim, world.new_holder(), activated, verification="none")
    world.daily_life(sim, activated, world.latest())
    sim.expected.add(UNREGISTERED)
    return [sim]


def over_limit(world: World, index: int) -> list[SimulatedSim]:
    """One person registering SIMs at several operators' shops, past the cap.

    The SIMs beyond the first `identity_sim_limit`, by when each registration
    began, carry the reason.
    """
    limit = world.rules.identity_sim_limit
    count = limit + world.rng.randint(1, 3)
    return _registering_past(world, "over_limit", world.ids.thai_citizen(), count, limit)


def foreign_over_limit(world: World, index: int) -> list[SimulatedSim]:
    """A migrant worker registering SIMs at one operator's shops with a passport,
    past a foreign national's cap with one operator though within the cap
    across operators. The SIMs beyond the first
    `identity_sim_limit_per_operator_foreign` carry the reason."""
    cap = world.rules.identity_sim_limit_per_operator_foreign
    count = cap + world.rng.randint(1, 2)
    holder = world.ids.foreign_worker(world.rng.choice(("MM", "KH", "LA")))
    operator = pick_operator(world.rng)
    return _registering_past(world, "foreign_over_limit", holder, count, cap, operator)


def _registering_past(
    world: World,
    actor: str,
    holder: Holder,
    count: int,
    cap: int,
    operator: str | None = None,
) -> list[SimulatedSim]:
    """`count` SIMs registered to `holder` one after another over the feed,
    with `operator` (or each at a shop of its own); those past `cap` carry
    IDENTITY_OVER_LIMIT."""
    step_days = (FEED_DAYS - 0.5) / count
    registered = world.ago(days=FEED_DAYS)
    sims = []
    for position in range(count):
        sim = world.new_sim(actor, operator or pick_operator(world.rng))
        registered += timedelta(days=step_days * world.rng.uniform(0.5, 1.0))
        activated = world.activate(sim, registered - timedelta(minutes=world.rng.uniform(1, 20)))
        world.register(sim, holder, registered)
        world.daily_life(sim, activated, world.latest())
        if position >= cap:
            sim.expected.add(IDENTITY_OVER_LIMIT)
        sims.append(sim)
    return sims


def revoked(world: World, index: int) -> list[SimulatedSim]:
    """An established SIM whose registration was suspended or cancelled, still in use.

    It was activated before the feed began, so no activation of it is sent:
    UNREGISTERED judges activations only, and stays out of this case.
    """
    sim = world.new_sim("revoked")
    holder = world.new_holder()
    world.register(sim, holder, world.ago(days=world.rng.uniform(20, 120)))
    revoked_at = world.ago(days=world.rng.uniform(2, 7))
    world.at_home(sim, world.moments(world.ago(days=FEED_DAYS), revoked_at, 3))
    status = "suspended" if index % 3 else "deregistered"
    world.register(sim, holder, revoked_at, status=status)
    after = world.moments(
        revoked_at + timedelta(minutes=5), world.latest(), world.rng.randint(1, 4)
    )
    world.at_home(sim, after)
    sim.expected.add(REGISTRATION_REVOKED)
    return [sim]


def reinstated(world: World, index: int) -> list[SimulatedSim]:
    """Suspended, used while suspended, then reinstated: nothing at the end."""
    sim = world.new_sim("reinstated")
    holder = world.new_holder()
    world.register(sim, holder, world.ago(days=world.rng.uniform(20, 120)))
    suspended = world.ago(days=world.rng.uniform(4, 8))
    world.register(sim, holder, suspended, status="suspended")
    world.at_home(sim, [suspended + timedelta(hours=world.rng.uniform(1, 20))])
    reinstated_at = suspended + timedelta(days=world.rng.uniform(1, 2))
    world.register(sim, holder, reinstated_at)
    world.daily_life(sim, reinstated_at + timedelta(minutes=10), world.latest())
    return [sim]
