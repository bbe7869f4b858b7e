"""The actors whose behaviour the rules look for (mules, border dwellers,
clones, dealers in a hurry), and their near misses.

Every pattern is sized from the rules configuration, comfortably past its
threshold or short of it, never on the edge: a test of the rules' edges
belongs to the rules' own tests, and a population must give one answer.
Patterns that the worker's clock can age (high-risk roaming, border dwell)
end recently enough to hold for the day after generation.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final

from tooling.simulator.networks import FLIGHT_NETWORKS, HIGH_RISK_NETWORKS, country
from tooling.simulator.truth import (
    ACTIVATED_THEN_ABROAD,
    BORDER_CELL_DWELL,
    BULK_ACTIVATION_BURST,
    DEVICE_MANY_SIMS,
    HIGH_CALL_VOLUME,
    HIGH_RISK_ROAMING,
    IMPOSSIBLE_TRAVEL,
    SIM_DEVICE_CYCLING,
    STATIC_HIGH_VOLUME,
    UNREGISTERED,
)
from tooling.simulator.world import FEED_DAYS, USAGE_DAYS, SimulatedSim, World

# Where scam compounds take Thai SIMs: Cambodia most, then Myanmar, then Laos.
COMPOUND_COUNTRY_WEIGHTS: Final = {"KH": 0.5, "MM": 0.35, "LA": 0.15}
DAY: Final = timedelta(days=1)


def _compound_networks(world: World) -> list[str]:
    """The networks of one high-risk country, chosen as mules are distributed."""
    countries = [c for c in COMPOUND_COUNTRY_WEIGHTS if c in world.rules.high_risk_countries]
    weights = [COMPOUND_COUNTRY_WEIGHTS[c] for c in countries]
    chosen = world.rng.choices(countries, weights=weights)[0]
    return [plmn for plmn in HIGH_RISK_NETWORKS if country(plmn) == chosen]


def _in_compound(world: World, sim: SimulatedSim, first_seen: datetime) -> None:
    """Seen every UTC day from `first_seen` to today, on one country's networks."""
    networks = _compound_networks(world)
    world.observe(sim, first_seen, plmn=networks[0])
    day_start = first_seen.replace(hour=0, minute=0, second=0)
    while day_start <= world.latest():
        start = max(first_seen, day_start)
        end = min(day_start + DAY - timedelta(seconds=1), world.latest())
        if end > start:
            for moment in world.moments(start, end, world.rng.randint(1, 4)):
                world.observe(sim, moment, plmn=world.rng.choice(networks))
        day_start += DAY


def _days_in_compound(world: World) -> float:
    """Long enough for the roaming rule's day count, with a day to spare for a
    today that has only just begun; short enough to stay within its window."""
    rules = world.rules
    days = world.rng.randint(
        rules.high_risk_roaming_min_days + 1, rules.high_risk_roaming_min_days + 3
    )
    return min(days, rules.high_risk_roaming_window_days + 2) + world.rng.uniform(0, 0.5)


def mule(world: World, index: int, *, registered: bool = True) -> list[SimulatedSim]:
    """Activated at home, carried to a compound within the window, used there daily."""
    rules = world.rules
    sim = world.new_sim("unregistered_mule" if not registered else "mule")
    first_seen = world.ago(days=_days_in_compound(world))
    hours_before = rules.activated_then_abroad_window_hours * world.rng.uniform(0.15, 0.85)
    activated = world.activate(sim, first_seen - timedelta(hours=hours_before))
    if registered:
        world.register(sim, world.new_holder(), activated + timedelta(minutes=5))
    else:
        sim.expected.add(UNREGISTERED)
    world.at_home(sim, world.moments(activated, first_seen - timedelta(hours=1), 2))
    _in_compound(world, sim, first_seen)
    sim.expected |= {ACTIVATED_THEN_ABROAD, HIGH_RISK_ROAMING}
    return [sim]


def unregistered_mule(world: World, index: int) -> list[SimulatedSim]:
    """A mule SIM nobody registered: both rule families fire, independently."""
    return mule(world, index, registered=False)


def courier(world: World, index: int) -> list[SimulatedSim]:
    """Taken across the border within the window for one day, then back home."""
    rules = world.rules
    sim = world.new_sim("courier")
    activated = world.activate(sim, world.ago(days=world.rng.uniform(3, 9)))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5))
    hours_after = rules.activated_then_abroad_window_hours * world.rng.uniform(0.15, 0.85)
    crossed = min(activated + timedelta(hours=hours_after), world.ago(days=1))
    # All of the trip on one UTC day: fewer days than HIGH_RISK_ROAMING needs.
    day_end = crossed.replace(hour=23, minute=59, second=0)
    back = min(crossed + timedelta(hours=world.rng.uniform(2, 8)), day_end)
    world.at_home(sim, world.moments(activated, crossed - timedelta(hours=1), 2))
    networks = _compound_networks(world)
    world.observe(sim, crossed, plmn=networks[0])
    for moment in world.moments(crossed, back, 2):
        world.observe(sim, moment, plmn=networks[0])
    world.daily_life(sim, back + timedelta(hours=2), world.latest())
    sim.expected.add(ACTIVATED_THEN_ABROAD)
    return [sim]


def seasoned_mule(world: World, index: int) -> list[SimulatedSim]:
    """An older SIM sold on to a compound: roaming there, but not fresh from activation."""
    rules = world.rules
    sim = world.new_sim("seasoned_mule")
    first_seen = world.ago(days=_days_in_compound(world))
    window = timedelta(hours=rules.activated_then_abroad_window_hours)
    activated = world.activate(sim, first_seen - window - timedelta(days=world.rng.uniform(5, 20)))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5))
    world.daily_life(sim, max(activated, world.ago(days=FEED_DAYS)), first_seen - DAY)
    _in_compound(world, sim, first_seen)
    sim.expected.add(HIGH_RISK_ROAMING)
    return [sim]


def _dwelling(world: World, sim: SimulatedSim, count: int, on_border: int) -> None:
    """`count` home observations, `on_border` of them on border cells, all of
    them recent enough to stay in the dwell window through tomorrow."""
    span_days = max(world.rules.border_dwell_window_days - 2, 1)
    moments = world.moments(world.ago(days=span_days) + timedelta(hours=1), world.latest(), count)
    border_positions = set(world.rng.sample(range(count), on_border))
    for position, moment in enumerate(moments):
        if position in border_positions:
            cell = world.cells.border_cell(sim.operator)
        else:
            cell = world.cells.ordinary_cell(sim.operator)
        world.observe(sim, moment, cell=cell)


def _settled(world: World, sim: SimulatedSim) -> None:
    activated = world.activate(sim, world.ago(days=world.rng.uniform(6, FEED_DAYS)))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5))


def border_dweller(world: World, index: int) -> list[SimulatedSim]:
    """Lives on the cells that reach across the border."""
    rules = world.rules
    sim = world.new_sim("border_dweller")
    _settled(world, sim)
    count = rules.border_dwell_min_observations + world.rng.randint(2, 12)
    least = math.ceil(Fraction(str(rules.border_dwell_min_share)) * count)
    _dwelling(world, sim, count, world.rng.randint(least, count))
    sim.expected.add(BORDER_CELL_DWELL)
    return [sim]


def near_miss_dweller(world: World, index: int) -> list[SimulatedSim]:
    """Near the border, but too little of the time, or too rarely seen."""
    rules = world.rules
    sim = world.new_sim("near_miss_dweller")
    _settled(world, sim)
    if index % 2 == 0 or rules.border_dwell_min_observations <= 1:
        count = rules.border_dwell_min_observations + world.rng.randint(5, 12)
        share = max(Fraction(str(rules.border_dwell_min_share)) - Fraction(1, 10), Fraction(0))
        _dwelling(world, sim, count, math.floor(share * count))
    else:
        fewer = rules.border_dwell_min_observations - 1
        _dwelling(world, sim, fewer, fewer)
    return [sim]


def clone(world: World, index: int) -> list[SimulatedSim]:
    """A cloned SIM: seen at home and, minutes later, in a country far away."""
    rules = world.rules
    sim = world.new_sim("clone")
    _settled(world, sim)
    at_home = world.ago(days=world.rng.uniform(1, 5))
    world.at_home(sim, world.moments(world.ago(days=FEED_DAYS), at_home - timedelta(hours=3), 3))
    world.observe(sim, at_home, cell=world.cells.ordinary_cell(sim.operator))
    far = world.rng.choice(
        [p for p in FLIGHT_NETWORKS if not rules.adjacent(rules.home_country, country(p))]
    )
    gap = max(rules.impossible_travel_max_minutes * world.rng.uniform(0.2, 0.6), 1.0)
    elsewhere = world.observe(sim, at_home + timedelta(minutes=gap), plmn=far)
    world.daily_life(sim, elsewhere + timedelta(minutes=gap + 5), world.latest())
    sim.expected.add(IMPOSSIBLE_TRAVEL)
    return [sim]


def _handsets(
    world: World, sim: SimulatedSim, count: int, start: datetime, step: timedelta
) -> None:
    """The SIM seen in `count` new handsets, one after another, `step` apart."""
    for position in range(count):
        world.observe(
            sim,
            start + step * position,
            cell=world.cells.ordinary_cell(sim.operator),
            imei=world.ids.imei(),
        )


def device_cycler(world: World, index: int) -> list[SimulatedSim]:
    """A mule SIM passed from phone to phone: more handsets in a day than
    anyone changes phones, in well under the window."""
    rules = world.rules
    sim = world.new_sim("device_cycler")
    # Registered at a distance (e-KYC), as borrowed identities are: a SIM
    # verified in person may change handsets at will (`call_centre`).
    activated = world.activate(sim, world.ago(days=world.rng.uniform(6, FEED_DAYS)))
    world.register(sim, world.new_holder(), activated + timedelta(minutes=5), verification="ekyc")
    count = rules.sim_device_cycling_min_imeis + world.rng.randint(0, 3)
    window = timedelta(hours=rules.sim_device_cycling_window_hours)
    start = world.ago(days=world.rng.uniform(1, 4))
    _handsets(world, sim, count, start, window * (0.7 / count))
    world.daily_life(sim, start + window, world.latest())
    sim.expected.add(SIM_DEVICE_CYCLING)
    return [sim]


def call_centre(world: World, index: int) -> list[SimulatedSim]:
    """A business's SIMs, registered in person to it, each used on every hot
    desk's handset within a day: device changes that verification covers."""
    rules = world.rules
    business = world.new_holder()
    desks = [world.ids.imei() for _ in range(rules.sim_device_cycling_min_imeis + 2)]
    start = world.ago(days=world.rng.uniform(1, 4))
    window = timedelta(hours=rules.sim_device_cycling_window_hours)
    sims = []
    for _ in range(min(3, rules.identity_sim_limit)):
        sim = world.new_sim("call_centre")
        activated = world.activate(sim, world.ago(days=world.rng.uniform(6, FEED_DAYS)))
        world.register(sim, business, activated + timedelta(minutes=5), verification="in_person")
        step = window * (0.7 / len(desks))
        for position, desk in enumerate(world.rng.sample(desks, len(desks))):
            world.observe(
                sim,
                start + step * position,
                cell=world.cells.ordinary_cell(sim.operator),
                imei=desk,
            )
        sims.append(sim)
    return sims


def phone_upgrader(world: World, index: int) -> list[SimulatedSim]:
    """New phones, but never the threshold's worth within one window: one
    handset short of it in a day, or as many as the threshold spread so wide
    that no window holds them all. Days after the activation's handset."""
    rules = world.rules
    sim = world.new_sim("phone_upgrader")
    _settled(world, sim)
    window = timedelta(hours=rules.sim_device_cycling_window_hours)
    start = world.ago(days=world.rng.uniform(1.5, 3))
    if index % 2 == 0 or rules.sim_device_cycling_min_imeis < 3:
        count = rules.sim_device_cycling_min_imeis - 1
        step = window * (0.7 / count)
    else:
        count = rules.sim_device_cycling_min_imeis
        step = window * (1.25 / (count - 1))
    _handsets(world, sim, count, start, step)
    return [sim]


def _rig(world: World, actor: str, count: int, days: float) -> list[SimulatedSim]:
    """`count` properly registered SIMs, each seen a few times in one handset
    within `days` days from a common start."""
    handset = world.ids.imei()
    start = world.ago(days=world.rng.uniform(days + 1, days + 3))
    sims = []
    for _ in range(count):
        sim = world.new_sim(actor)
        _settled(world, sim)
        for moment in world.moments(start, start + timedelta(days=days), world.rng.randint(1, 4)):
            world.observe(sim, moment, cell=world.cells.ordinary_cell(sim.operator), imei=handset)
        sims.append(sim)
    return sims


def sim_box(world: World, index: int) -> list[SimulatedSim]:
    """A SIM box: one handset's slots cycling through more SIMs than any
    dual-SIM phone or shared family phone holds, within days."""
    rules = world.rules
    count = rules.device_many_sims_min_imsis + world.rng.randint(0, 6)
    days = rules.device_many_sims_window_days * world.rng.uniform(0.2, 0.7)
    sims = _rig(world, "sim_box", count, days)
    limit = max(rules.high_call_volume_max_calls, rules.static_high_volume_min_calls)
    for sim in sims:
        # Its SIMs call all day and from one place: both usage rules, every day.
        for days_ago in _static_days(world):
            calls = world.rng.randint(round(limit * 1.5), round(limit * 3))
            world.report_usage(sim, days_ago, calls, 1.0, cells=1)
        sim.expected.update({DEVICE_MANY_SIMS, HIGH_CALL_VOLUME, STATIC_HIGH_VOLUME})
    return sims


def _static_days(world: World) -> list[int]:
    """Consecutive days ago, ending yesterday: the static days' minimum and up to two more."""
    count = min(USAGE_DAYS, world.rules.static_high_volume_min_days + world.rng.randint(0, 2))
    return list(range(1, count + 1))


def sim_farm(world: World, index: int) -> list[SimulatedSim]:
    """A SIM farm's rack: SIMs each in a modem of its own (so no handset holds
    many), properly registered, calling dozens of times a day from one cell,
    never over the daily limit."""
    rules = world.rules
    cell = world.cells.ordinary_cell("52003")
    share_floor = rules.static_high_volume_min_share + (1 - rules.static_high_volume_min_share) / 2
    sims = []
    for _ in range(world.rng.randint(4, 10)):
        sim = world.new_sim("sim_farm", "52003")
        _settled(world, sim)
        for days_ago in _static_days(world):
            calls = world.rng.randint(
                round(rules.static_high_volume_min_calls * 1.5),
                round(rules.high_call_volume_max_calls * 0.9),
            )
            world.report_usage(sim, days_ago, calls, world.rng.uniform(share_floor, 1.0), cells=2)
            world.observe(sim, world.ago(days=days_ago, hours=-2), cell=cell, imei=sim.imei)
        sim.expected.add(STATIC_HIGH_VOLUME)
        sims.append(sim)
    return sims


def shared_handset(world: World, index: int) -> list[SimulatedSim]:
    """A phone a shop or a family passes SIMs through: one SIM short of the threshold."""
    rules = world.rules
    days = rules.device_many_sims_window_days * world.rng.uniform(0.2, 0.7)
    return _rig(world, "shared_handset", rules.device_many_sims_min_imsis - 1, days)


def _dealer_run(world: World, actor: str, count: int, spacing: timedelta) -> list[SimulatedSim]:
    """`count` SIMs activated by one new dealer, `spacing` apart (with some
    jitter, under a quarter of it), each registered properly on the spot."""
    operator = world.rng.choice(["52003", "52004", "52005"])
    dealer_id = world.ids.dealer_id(operator)
    start = world.ago(days=world.rng.uniform(1, 9))
    sims = []
    for position in range(count):
        sim = world.new_sim(actor, operator)
        jitter = spacing * world.rng.uniform(0, 0.24)
        activated = world.activate(
            sim, start + spacing * position + jitter, channel="dealer", dealer_id=dealer_id
        )
        world.register(
            sim, world.new_holder(), activated + timedelta(minutes=world.rng.uniform(1, 15))
        )
        world.daily_life(sim, activated + timedelta(hours=1), world.latest())
        sims.append(sim)
    return sims


def dealer_burst(world: World, index: int) -> list[SimulatedSim]:
    """A dealer activating a box of SIMs in well under the window."""
    rules = world.rules
    count = rules.bulk_activation_min_sims + world.rng.randint(0, 10)
    # All of them within two thirds of the window, jitter included.
    spacing = timedelta(minutes=rules.bulk_activation_window_minutes) * (0.66 / count)
    sims = _dealer_run(world, "dealer_burst", count, spacing)
    for sim in sims:
        sim.expected.add(BULK_ACTIVATION_BURST)
    return sims


def slow_dealer(world: World, index: int) -> list[SimulatedSim]:
    """As many SIMs as a burst, spread over three windows: at most about a third
    of them (plus jitter) in any one window, never a burst."""
    rules = world.rules
    count = rules.bulk_activation_min_sims
    spacing = timedelta(minutes=rules.bulk_activation_window_minutes) * (3 / count)
    return _dealer_run(world, "slow_dealer", count, spacing)
