"""The simulated population: reproducible, valid on the wire, and with a truth
that names every reason, spares every innocent, and follows the rules file."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from schemas.events import (
    ActivationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    UsageSchema,
)
from schemas.identifiers import normalise_id_number, plmn_country
from simguard.settings import Rules, load_settings
from tooling.simulator.files import write
from tooling.simulator.population import ACTORS, Mix, Scenario, generate
from tooling.simulator.truth import (
    ACTIVATED_THEN_ABROAD,
    BORDER_CELL_DWELL,
    BULK_ACTIVATION_BURST,
    DEVICE_MANY_SIMS,
    HIGH_CALL_VOLUME,
    HIGH_RISK_ROAMING,
    IDENTITY_OVER_LIMIT,
    IMPOSSIBLE_TRAVEL,
    REASON_CODES,
    REGISTRATION_REVOKED,
    SIM_DEVICE_CYCLING,
    STATIC_HIGH_VOLUME,
    UNREGISTERED,
    load_truth,
)
from tooling.simulator.world import FEED_DAYS
from workers import behaviour_hooks
from workers.rules.dealers import DealerActivation, burst_members, group_members
from workers.rules.devices import STRONG_VERIFICATIONS as STRONG

# Just after a UTC midnight: the day boundaries of the roaming and dwell rules
# are as close as they get to the generated patterns.
NOW = datetime(2026, 11, 20, 0, 4, 30, tzinfo=UTC)
SIMS = 2000
TIME_FIELDS = {
    "activations": "activated_at",
    "registrations": "registered_at",
    "network_events": "observed_at",
}
# Actors whose SIMs must all end with exactly these codes.
EXPECTED_BY_ACTOR = {
    "unregistered": {UNREGISTERED},
    "revoked": {REGISTRATION_REVOKED},
    "mule": {ACTIVATED_THEN_ABROAD, HIGH_RISK_ROAMING},
    "unregistered_mule": {UNREGISTERED, ACTIVATED_THEN_ABROAD, HIGH_RISK_ROAMING},
    "courier": {ACTIVATED_THEN_ABROAD},
    "seasoned_mule": {HIGH_RISK_ROAMING},
    "border_dweller": {BORDER_CELL_DWELL},
    "clone": {IMPOSSIBLE_TRAVEL},
    "device_cycler": {SIM_DEVICE_CYCLING},
    "sim_box": {DEVICE_MANY_SIMS, HIGH_CALL_VOLUME, STATIC_HIGH_VOLUME},
    "sim_farm": {STATIC_HIGH_VOLUME},
    "dealer_burst": {BULK_ACTIVATION_BURST},
}
NEVER_FLAGGED = (
    "ordinary",
    "traveller",
    "reinstated",
    "near_miss_dweller",
    "phone_upgrader",
    "shared_handset",
    "call_centre",
    "heavy_caller",
    "slow_dealer",
)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Rules:
    """The packaged rules, untouched by any developer's environment or config."""
    empty = tmp_path_factory.mktemp("config") / "empty.toml"
    empty.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(empty)}).rules


@pytest.fixture(scope="module")
def scenario(rules: Rules) -> Scenario:
    return generate(SIMS, seed=7, now=NOW, rules=rules)


def _schemas() -> dict[str, Schema]:
    def clock() -> datetime:
        return NOW

    return {
        "activations": ActivationSchema(clock=clock),
        "registrations": RegistrationRequestSchema(clock=clock),
        "network_events": NetworkEventSchema(clock=clock),
        "usage": UsageSchema(clock=clock),
    }


@dataclasses.dataclass(frozen=True)
class Loaded:
    """Every event as the worker loads it (times as datetimes), and any that failed."""

    events: dict[str, list[dict[str, Any]]]
    errors: list[tuple[str, dict[str, Any], Any]]


@pytest.fixture(scope="module")
def loaded(scenario: Scenario) -> Loaded:
    schemas = _schemas()
    events: dict[str, list[dict[str, Any]]] = {}
    errors = []
    for kind, raw_events in scenario.events.items():
        events[kind] = []
        for raw in raw_events:
            try:
                events[kind].append(schemas[kind].load(raw))
            except ValidationError as error:
                errors.append((kind, raw, error.messages))
    return Loaded(events, errors)


def _by_imsi(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[event["imsi"]].append(event)
    return grouped


def _actor_of(scenario: Scenario) -> dict[str, str]:
    return {imsi: kind for kind, imsis in scenario.actors.items() for imsi in imsis}


def test_one_seed_and_reference_time_give_the_same_population(
    scenario: Scenario, rules: Rules
) -> None:
    again = generate(SIMS, seed=7, now=NOW, rules=rules)
    assert again.events == scenario.events
    assert again.truth == scenario.truth
    assert again.border_cells == scenario.border_cells


def test_another_seed_gives_another_population(scenario: Scenario, rules: Rules) -> None:
    other = generate(SIMS, seed=8, now=NOW, rules=rules)
    assert other.events != scenario.events
    assert other.truth != scenario.truth


def test_the_population_has_the_requested_number_of_sims_mostly_ordinary(
    scenario: Scenario,
) -> None:
    assert len(scenario.imsis) == SIMS
    assert set(scenario.actors) == {"ordinary", *ACTORS}
    assert 0.7 < len(scenario.actors["ordinary"]) / SIMS < 0.85


def test_every_event_passes_its_wire_schema(loaded: Loaded, scenario: Scenario) -> None:
    assert loaded.errors == []
    assert {kind: len(events) for kind, events in loaded.events.items()} == scenario.counts()


def test_no_event_is_in_the_future_and_observations_stay_in_the_feed_window(
    loaded: Loaded,
) -> None:
    for kind, field in TIME_FIELDS.items():
        assert max(e[field] for e in loaded.events[kind]) <= NOW
    oldest_observation = min(e["observed_at"] for e in loaded.events["network_events"])
    assert oldest_observation >= NOW - timedelta(days=FEED_DAYS)


def test_identifiers_are_unique_and_imsis_belong_to_their_operator(scenario: Scenario) -> None:
    activations = scenario.events["activations"]
    for field in ("imsi", "iccid", "msisdn"):
        values = Counter(e[field] for e in activations)
        assert values.most_common(1)[0][1] == 1, field
    event_ids = [e["event_id"] for events in scenario.events.values() for e in events]
    assert len(event_ids) == len(set(event_ids))
    for events in scenario.events.values():
        assert all(e["imsi"].startswith(e["operator"]) for e in events)
    assert set(scenario.operators) == {"52001", "52003", "52004", "52005"}


def test_the_truth_names_every_reason_and_every_flagging_actor(scenario: Scenario) -> None:
    assert {code for codes in scenario.truth.values() for code in codes} == set(REASON_CODES)
    for actor, expected in EXPECTED_BY_ACTOR.items():
        assert scenario.actors[actor], actor
        assert {scenario.truth.get(imsi) for imsi in scenario.actors[actor]} == {
            frozenset(expected)
        }, actor


def test_innocent_actors_are_in_no_truth_set(scenario: Scenario) -> None:
    for actor in NEVER_FLAGGED:
        assert scenario.actors[actor], actor
        assert not set(scenario.actors[actor]) & set(scenario.truth), actor


def test_travellers_fly_far_cross_into_cambodia_and_into_malaysia(
    scenario: Scenario,
) -> None:
    travellers = set(scenario.actors["traveller"])
    countries = {
        plmn_country(e["visited_plmn"])
        for e in scenario.events["network_events"]
        if e["imsi"] in travellers
    }
    assert {"TH", "KH", "MY"} <= countries
    assert countries & {"JP", "SG", "US", "VN"}


def _holders_of(scenario: Scenario, actor: str) -> dict[str, list[str]]:
    """Each holder's SIMs, in the order their registrations began."""
    members = set(scenario.actors[actor])
    holders: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in scenario.events["registrations"]:
        if event["imsi"] in members:
            holder = event["holder"]
            person = f"{holder['id_type']}:{holder['nationality']}:"
            person += normalise_id_number(holder["id_number"])
            holders[person].append((event["registered_at"], event["imsi"]))
    return {person: [imsi for _, imsi in sorted(sims)] for person, sims in holders.items()}


def test_only_the_sims_beyond_the_limit_of_each_holder_are_over_it(scenario: Scenario) -> None:
    holders = _holders_of(scenario, "over_limit")
    assert holders
    for sims in holders.values():
        assert 6 <= len(sims) <= 8
        assert [IDENTITY_OVER_LIMIT in scenario.truth.get(imsi, ()) for imsi in sims] == [
            position >= 5 for position in range(len(sims))
        ]


def test_a_migrant_workers_sims_past_the_foreign_cap_with_one_operator_are_over_it(
    scenario: Scenario, rules: Rules
) -> None:
    holders = _holders_of(scenario, "foreign_over_limit")
    assert holders
    cap = rules.identity_sim_limit_per_operator_foreign
    for person, sims in holders.items():
        assert person.startswith("passport:") and ":TH:" not in person
        assert len({imsi[:5] for imsi in sims}) == 1
        assert cap < len(sims) <= rules.identity_sim_limit
        assert [IDENTITY_OVER_LIMIT in scenario.truth.get(imsi, ()) for imsi in sims] == [
            position >= cap for position in range(len(sims))
        ]


def test_a_lower_identity_limit_changes_the_truth(scenario: Scenario, rules: Rules) -> None:
    strict = generate(
        SIMS,
        seed=7,
        now=NOW,
        rules=dataclasses.replace(
            rules, identity_sim_limit=3, identity_sim_limit_per_operator_foreign=1
        ),
    )
    holders = _holders_of(strict, "over_limit")
    for sims in holders.values():
        assert 4 <= len(sims) <= 6
        flagged = [imsi for imsi in sims if IDENTITY_OVER_LIMIT in strict.truth.get(imsi, ())]
        assert flagged == sims[3:]
    # Ordinary holders keep within any limit of two or more.
    ordinary_holders = _holders_of(strict, "ordinary")
    assert max(len(sims) for sims in ordinary_holders.values()) == 2
    assert strict.truth != scenario.truth


def test_bursts_and_dwells_are_sized_from_the_rules(rules: Rules) -> None:
    smaller = dataclasses.replace(
        rules,
        bulk_activation_min_sims=20,
        bulk_activation_window_minutes=30,
        border_dwell_min_observations=10,
    )
    population = generate(1000, seed=3, now=NOW, rules=smaller)
    burst = set(population.actors["dealer_burst"])
    by_dealer = Counter(
        e["dealer_id"] for e in population.events["activations"] if e["imsi"] in burst
    )
    assert by_dealer and all(20 <= count <= 30 for count in by_dealer.values())
    assert len(population.actors["slow_dealer"]) % 20 == 0
    dwellers = set(population.actors["border_dweller"])
    seen = Counter(e["imsi"] for e in population.events["network_events"] if e["imsi"] in dwellers)
    assert all(12 <= count <= 22 for count in seen.values())


def test_behaviour_truth_agrees_with_the_pure_rules(
    scenario: Scenario, loaded: Loaded, rules: Rules
) -> None:
    """Replays each SIM's activations and observations through the worker's
    behaviour rules and each dealer's activations through its burst rule."""
    rules = dataclasses.replace(rules, border_cells=frozenset(scenario.border_cells))
    behaviour_codes = {
        ACTIVATED_THEN_ABROAD,
        HIGH_RISK_ROAMING,
        BORDER_CELL_DWELL,
        IMPOSSIBLE_TRAVEL,
        BULK_ACTIVATION_BURST,
        SIM_DEVICE_CYCLING,
        DEVICE_MANY_SIMS,
    }
    found: dict[str, set[str]] = defaultdict(set)
    activations = _by_imsi(loaded.events["activations"])
    observations = _by_imsi(loaded.events["network_events"])
    registrations = _by_imsi(loaded.events["registrations"])
    for imsi in scenario.imsis:
        state: dict[str, Any] = {}
        for activation in activations.get(imsi, []):
            state = behaviour_hooks.apply_activation(state, activation, rules)
        for observation in observations.get(imsi, []):
            state = behaviour_hooks.apply_observation(state, observation, rules)
        found[imsi] |= set(behaviour_hooks.active_reasons(state, NOW, rules))
        latest = max(registrations.get(imsi, []), key=lambda r: r["registered_at"], default=None)
        if latest and latest["status"] == "active" and latest["verification"] in STRONG:
            found[imsi].discard(SIM_DEVICE_CYCLING)
    dealers: dict[tuple[str, str], list[DealerActivation]] = defaultdict(list)
    for event in loaded.events["activations"]:
        if event.get("dealer_id"):
            key = (event["operator"], event["dealer_id"])
            dealers[key].append(DealerActivation(event["activated_at"], event["imsi"]))
    for members in dealers.values():
        for dealt in members:
            for member in burst_members(members, dealt.activated_at, rules):
                found[member.imsi].add(BULK_ACTIVATION_BURST)
    # A handset's SIMs by UTC day, as workers/device_groups.py stores them.
    handsets: dict[str, set[DealerActivation]] = defaultdict(set)
    for kind, field_name in (("activations", "activated_at"), ("network_events", "observed_at")):
        for event in loaded.events[kind]:
            if event.get("imei"):
                day = event[field_name].replace(hour=0, minute=0, second=0, microsecond=0)
                handsets[event["imei"][:14]].add(DealerActivation(day, event["imsi"]))
    width = timedelta(days=rules.device_many_sims_window_days)
    for sightings in handsets.values():
        for sighting in sightings:
            members = group_members(
                list(sightings), sighting.activated_at, rules.device_many_sims_min_imsis, width
            )
            for member in members:
                found[member.imsi].add(DEVICE_MANY_SIMS)
    expected = {
        imsi: set(codes) & behaviour_codes
        for imsi, codes in scenario.truth.items()
        if set(codes) & behaviour_codes
    }
    assert {imsi: codes for imsi, codes in found.items() if codes} == expected


def test_usage_is_reported_for_whole_days_before_the_reference_day(loaded: Loaded) -> None:
    days = {event["day"] for event in loaded.events["usage"]}
    assert days
    assert max(days) < NOW.date().isoformat()
    assert min(days) >= (NOW - timedelta(days=5)).date().isoformat()


def test_heavy_callers_stay_short_of_the_call_limit_or_of_a_static_days_calls(
    scenario: Scenario, loaded: Loaded, rules: Rules
) -> None:
    heavy = set(scenario.actors["heavy_caller"])
    days = [e for e in loaded.events["usage"] if e["imsi"] in heavy]
    assert days
    assert all(e["outgoing_calls"] <= rules.high_call_volume_max_calls for e in days)
    assert all(
        e["outgoing_calls"] < rules.static_high_volume_min_calls
        or e["top_cell_share"] < rules.static_high_volume_min_share
        for e in days
    )
    assert max(e["outgoing_calls"] for e in days) >= rules.static_high_volume_min_calls


def test_a_sim_farms_sims_are_each_in_a_handset_of_their_own(scenario: Scenario) -> None:
    farm = set(scenario.actors["sim_farm"])
    handsets = Counter(
        e["imei"] for e in scenario.events["network_events"] if e["imsi"] in farm and "imei" in e
    )
    assert handsets and set(handsets.values()) <= set(range(1, 6))
    assert len(handsets) == len(farm)


def test_too_few_sims_for_the_groups_of_the_mix_are_refused(rules: Rules) -> None:
    with pytest.raises(ValueError, match="too few"):
        generate(80, seed=1, now=NOW, rules=rules)


@pytest.mark.parametrize(
    "change",
    [
        {"high_risk_roaming_min_days": 1},
        {"border_dwell_window_days": 2},
        {"bulk_activation_min_sims": 1},
        {"high_risk_countries": frozenset({"KH", "MY"})},
        {"adjacent_countries": {}},
        {"static_high_volume_min_calls": 80},
        {"identity_sim_limit_per_operator": 3},
        {"identity_sim_limit_per_operator_foreign": 4},
        {"static_high_volume_min_days": 6, "static_high_volume_window_days": 7},
    ],
)
def test_rules_that_would_blur_the_patterns_are_refused(
    rules: Rules, change: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="unsuitable"):
        generate(2000, seed=1, now=NOW, rules=dataclasses.replace(rules, **change))


def test_a_mix_sets_the_share_of_each_actor(rules: Rules) -> None:
    mix = Mix().with_fractions(mule=0.1, clone=0.0)
    population = generate(SIMS, seed=5, now=NOW, rules=rules, mix=mix)
    assert len(population.actors["mule"]) == 200
    assert "clone" not in population.actors
    with pytest.raises(ValueError, match="unknown actor"):
        Mix().with_fractions(smuggler=0.1)
    with pytest.raises(ValueError, match="more than 1"):
        Mix().with_fractions(mule=0.9)


def test_written_files_hold_the_events_the_truth_and_loadable_border_cells(
    scenario: Scenario, tmp_path: Path
) -> None:
    paths = write(scenario, tmp_path / "sim")
    for kind, events in scenario.events.items():
        assert len(paths[kind].read_text().splitlines()) == len(events)
    truth = load_truth(paths["truth"])
    assert truth.expected == scenario.truth
    assert truth.population == scenario.imsis
    assert truth.details["seed"] == 7
    (tmp_path / "empty.toml").write_text("")
    settings = load_settings(
        environ={
            "SIMGUARD_CONFIG": str(tmp_path / "empty.toml"),
            "SIMGUARD_BORDER_CELLS_CSV": str(paths["border_cells"]),
        }
    )
    assert settings.rules.border_cells == frozenset(scenario.border_cells)


def test_configured_border_cells_are_used_and_change_nothing_else(
    scenario: Scenario, rules: Rules
) -> None:
    same = generate(
        SIMS,
        seed=7,
        now=NOW,
        rules=dataclasses.replace(rules, border_cells=frozenset(scenario.border_cells)),
    )
    assert same.events == scenario.events
    deployed = frozenset({"TH-SAKAEO-0001", "TH-TAK-0002", "TH-NONGKHAI-0003"})
    other = generate(SIMS, seed=7, now=NOW, rules=dataclasses.replace(rules, border_cells=deployed))
    assert other.truth == scenario.truth
    assert set(other.border_cells) == deployed
    dwellers = set(other.actors["border_dweller"])
    cells = {e.get("cell_id") for e in other.events["network_events"] if e["imsi"] in dwellers}
    assert deployed <= cells
