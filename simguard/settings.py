"""One immutable, validated configuration object, read once at start-up.

Sources, later ones winning: the packaged default rules, the rules file named by
`rules_file`, the TOML file (`SIMGUARD_CONFIG`, default `simguard.toml`), and the
environment (`SIMGUARD_<KEY>`). The HMAC secret never comes from the TOML file
in the repository: only from `SIMGUARD_HMAC_SECRET` or `hmac_secret_file`; the
same holds for `attestation_secret`, `operator_signing_secret` and
`kafka_sasl_password`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from schemas.events import USAGE_MAX_AGE_DAYS
from schemas.reason_codes import ReasonCode

ENV_PREFIX = "SIMGUARD_"
# Secrets that come from the environment or a `<name>_file`, never the TOML.
HMAC_SECRETS = (
    "hmac_secret",
    "attestation_secret",
    "operator_signing_secret",
    "partner_pseudonym_secret",
)
FILE_SECRETS = (*HMAC_SECRETS, "kafka_sasl_password")
SECRET_KEYS = frozenset({*FILE_SECRETS, "database_url"})
MIN_SECRET_BYTES = 32
# TLS in both, SCRAM credentials only inside it: a password is never on the wire in clear.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


PARTNER_SUBJECTS = ("imsi", "pseudonym")


@dataclass(frozen=True)
class PartnerPolicy:
    """What a bilateral agreement lets simguard tell one partner regulator
    about flagged SIMs (`[partners.<country>]` in the rules file)."""

    # The reason codes that may be shared; a case with none of them is not.
    reasons: frozenset[str]
    # The least risk, counted on the shared reasons' weights, worth sharing.
    min_risk: int = 0
    # "imsi", or "pseudonym": HMAC-SHA256 of the IMSI under the partner's key.
    subject: str = "pseudonym"


@dataclass(frozen=True)
class Rules:
    rules_version: str = "th-2026.11.1"
    home_country: str = "TH"
    high_risk_countries: frozenset[str] = frozenset({"KH", "MM", "LA"})
    border_cells_csv: str = ""
    border_cells: frozenset[str] = frozenset()
    unregistered_grace_seconds: int = 900
    unregistered_weight: int = 40
    identity_sim_limit: int = 5
    # With one operator; 0: no cap beyond identity_sim_limit.
    identity_sim_limit_per_operator: int = 5
    identity_sim_limit_per_operator_foreign: int = 3
    identity_over_limit_weight: int = 30
    registration_revoked_weight: int = 50
    activated_then_abroad_window_hours: int = 72
    activated_then_abroad_weight: int = 35
    high_risk_roaming_min_days: int = 3
    high_risk_roaming_window_days: int = 7
    high_risk_roaming_weight: int = 30
    border_dwell_window_days: int = 7
    border_dwell_min_observations: int = 20
    border_dwell_min_share: float = 0.8
    border_dwell_weight: int = 15
    impossible_travel_max_minutes: int = 60
    impossible_travel_weight: int = 45
    bulk_activation_min_sims: int = 50
    bulk_activation_window_minutes: int = 60
    bulk_activation_weight: int = 25
    sim_device_cycling_min_imeis: int = 5
    sim_device_cycling_window_hours: int = 24
    sim_device_cycling_weight: int = 30
    device_many_sims_min_imsis: int = 8
    device_many_sims_window_days: int = 7
    device_many_sims_weight: int = 35
    high_call_volume_max_calls: int = 100
    high_call_volume_window_days: int = 7
    high_call_volume_weight: int = 25
    static_high_volume_min_calls: int = 30
    static_high_volume_min_share: float = 0.9
    static_high_volume_min_days: int = 3
    static_high_volume_window_days: int = 7
    static_high_volume_weight: int = 30
    adjacent_countries: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Enforcement: what a SIM's operator must do about each reason
    # (NOTICE_ACTIONS; a code left out asks for nothing), and within how many
    # hours of the notice, per reason or else the default.
    notice_actions: Mapping[str, str] = field(default_factory=dict)
    notice_deadline_hours: float = 24.0
    notice_deadline_hours_by_reason: Mapping[str, float] = field(default_factory=dict)
    # Early warning: partner regulator (ISO country) -> what it may be told.
    partners: Mapping[str, PartnerPolicy] = field(default_factory=dict)

    def adjacent(self, country_a: str, country_b: str) -> bool:
        """Same country, or a land border in either direction of the table."""
        if country_a == country_b:
            return True
        return country_b in self.adjacent_countries.get(
            country_a, frozenset()
        ) or country_a in self.adjacent_countries.get(country_b, frozenset())


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Every simguard client (API, worker, admin commands) connects this way.
    # PLAINTEXT is for a broker on loopback only; deployments use SASL_SSL.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_sasl_password_file: str = ""
    # The CA that signed the brokers' certificates (PEM); empty: the system's.
    kafka_ssl_cafile: str = ""
    # A client certificate and its key (PEM), for brokers that require mTLS.
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    topic_activations: str = "sim.activations.v1"
    topic_registrations: str = "sim.registrations.v1"
    topic_network_events: str = "sim.network-events.v1"
    topic_usage: str = "sim.usage.v1"
    topic_flagged: str = "regulator.flagged-sims.v1"
    topic_dead_letter: str = "simguard.dead-letter.v1"
    # Internal, keyed by IMSI and co-partitioned with the inputs: carries
    # cross-SIM effects (a holder's count) to the worker that owns the SIM.
    topic_rechecks: str = "simguard.sim-rechecks.v1"
    # Internal, keyed by IMSI and co-partitioned with the inputs: a regulator's
    # decision, from the API to the worker that owns the SIM.
    topic_decisions: str = "simguard.case-decisions.v1"
    # Output: every decision and what came of it, kept for good (the audit).
    topic_decisions_audit: str = "regulator.case-decisions.v1"
    # Output, one compacted topic per operator PLMN id: `<prefix><PLMN id>`.
    topic_notices_prefix: str = "simguard.notices.v1."
    # Output, one compacted topic per partner regulator: `<prefix><country>`,
    # replicated to the partner's cluster by MirrorMaker 2.
    topic_indicators_prefix: str = "ew.indicators.v1."
    # Input from each partner regulator's cluster, replicated by MirrorMaker 2
    # under the partner's alias: `<country>.<topic_sightings>`; and where what
    # a partner sent that cannot be applied goes: `<prefix><country>`.
    topic_sightings: str = "ew.sightings.v1"
    topic_partner_dead_letter_prefix: str = "ew.dead-letter.v1."
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    consumer_group: str = "simguard-worker"
    database_url: str = "sqlite:///var/simguard.db"
    hmac_secret: str = ""
    hmac_secret_file: str = ""
    # Input trust: the API's validation attestation, and operators' record-signing keys.
    attestation_secret: str = ""
    attestation_secret_file: str = ""
    operator_signing_secret: str = ""
    operator_signing_secret_file: str = ""
    # Keys each partner's pseudonyms of IMSIs (one key per partner, derived).
    partner_pseudonym_secret: str = ""
    partner_pseudonym_secret_file: str = ""
    rules_file: str = ""
    api_max_batch_events: int = 1000
    api_max_body_bytes: int = 4 * 1024 * 1024
    # How long the API waits for Kafka's acknowledgement before answering 503.
    api_kafka_ack_timeout_seconds: float = 5.0
    api_retry_after_seconds: int = 5
    # Per operator and API instance; 0 turns it off (README, Security and privacy).
    api_rate_limit_per_second: float = 5000.0
    api_rate_limit_burst: int = 0
    # How long an API process trusts its cached answer for a key: a revoked
    # key keeps working for up to this long (0: ask the store every request).
    api_key_cache_seconds: float = 30.0
    worker_metrics_port: int = 9464
    # Where the worker's /metrics and /healthz listen (kubernetes and compose: 0.0.0.0).
    worker_metrics_host: str = "127.0.0.1"
    worker_max_batch_records: int = 2000
    worker_poll_timeout_ms: int = 200
    # How many days (of the worker's clock) after its application a resent
    # event_id is still recognised; older ledger days and dealers' activations
    # are pruned so the store does not grow forever (README, "Resends").
    ledger_retention_days: int = 7
    # How long the days of abnormal usage are kept for the weekly report
    # (`simguard report abnormal-usage`): a quarter.
    usage_report_retention_days: int = 91
    log_level: str = "INFO"
    rules: Rules = field(default_factory=Rules)

    def topics(self) -> dict[str, str]:
        return {
            "activations": self.topic_activations,
            "registrations": self.topic_registrations,
            "network_events": self.topic_network_events,
            "usage": self.topic_usage,
            "flagged": self.topic_flagged,
            "dead_letter": self.topic_dead_letter,
            "rechecks": self.topic_rechecks,
            "decisions": self.topic_decisions,
            "decisions_audit": self.topic_decisions_audit,
            **{
                f"partner_dead_letter_{partner}": self.partner_dead_letter_topic(partner)
                for partner in self.rules.partners
            },
            **{
                f"sightings_{partner}": topic
                for topic, partner in self.partner_sighting_topics().items()
            },
        }

    def notice_topic(self, operator: str) -> str:
        """The compacted topic of operator `operator`'s (a PLMN id) notices."""
        return f"{self.topic_notices_prefix}{operator}"

    def indicator_topic(self, partner: str) -> str:
        """The compacted topic of what partner regulator `partner` is told."""
        return f"{self.topic_indicators_prefix}{partner}"

    def partner_sighting_topics(self) -> dict[str, str]:
        """Topic on our cluster -> the partner whose sightings it replicates."""
        return {f"{partner}.{self.topic_sightings}": partner for partner in self.rules.partners}

    def foreign_indicator_topics(self) -> dict[str, str]:
        """Topic on our cluster -> the partner whose indicators about its own
        SIMs roaming here it replicates (the partner's topic for us)."""
        ours = self.indicator_topic(self.rules.home_country)
        return {f"{partner}.{ours}": partner for partner in self.rules.partners}

    def partner_dead_letter_topic(self, partner: str) -> str:
        return f"{self.topic_partner_dead_letter_prefix}{partner}"

    def input_topics(self) -> list[str]:
        return [
            self.topic_activations,
            self.topic_registrations,
            self.topic_network_events,
            self.topic_usage,
            self.topic_rechecks,
            self.topic_decisions,
            *self.partner_sighting_topics(),
            *self.foreign_indicator_topics(),
        ]

    def broker_time_topics(self) -> list[str]:
        """The input topics whose records' arrival the rules read: stamped by
        the broker (LogAppendTime). A partner's indicators carry their own
        times, and MirrorMaker 2 keeps the partner's settings on their topic."""
        foreign = self.foreign_indicator_topics()
        return [topic for topic in self.input_topics() if topic not in foreign]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def topics_suffixed(self, suffix: str) -> dict[str, str]:
        """`topic_*` setting -> its topic name + "." + suffix: own topics for
        one test or benchmark on a shared broker (`replace(**...)`)."""
        return {
            # A prefix keeps its trailing dot: `<prefix><suffix>.<PLMN id>`.
            f.name: f"{getattr(self, f.name)}{suffix}."
            if f.name.endswith("_prefix")
            else f"{getattr(self, f.name)}.{suffix}"
            for f in dataclasses.fields(self)
            if f.name.startswith("topic_") and isinstance(getattr(self, f.name), str)
        }

    def masked(self) -> dict[str, Any]:
        """Effective values for display, secrets masked."""
        shown: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "rules":
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_KEYS and value:
                value = _mask(f.name, value)
            shown[f.name] = value
        for f in dataclasses.fields(self.rules):
            value = getattr(self.rules, f.name)
            if isinstance(value, frozenset):
                value = sorted(value) if f.name != "border_cells" else f"{len(value)} cells"
            elif isinstance(value, Mapping):
                value = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in value.items()}
            shown[f.name] = value
        return shown


def _mask(name: str, value: str) -> str:
    if name == "database_url" and "@" in value:
        scheme, _, rest = value.partition("://")
        _, _, host = rest.rpartition("@")
        return f"{scheme}://***@{host}"
    if name == "database_url":
        return value
    return "***"


_SETTINGS_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "rules"}
_RULES_FIELDS = {f.name: f for f in dataclasses.fields(Rules) if f.name not in {"border_cells"}}


def load_settings(
    environ: Mapping[str, str] | None = None, config_path: str | None = None
) -> Settings:
    """Read every source once and validate; raises ConfigError naming the bad key."""
    env = dict(os.environ if environ is None else environ)
    path = config_path or env.get(f"{ENV_PREFIX}CONFIG", "simguard.toml")
    file_values: dict[str, Any] = {}
    if Path(path).is_file():
        file_values = _read_toml(Path(path))
    elif config_path or f"{ENV_PREFIX}CONFIG" in env:
        raise ConfigError(f"config file not found: {path}")
    for secret in FILE_SECRETS:
        if secret in file_values:
            raise ConfigError(f"{secret} must not be in the TOML file; use the environment")

    raw: dict[str, Any] = {}
    raw.update(_read_toml_resource())
    env_values = _from_environment(env)
    rules_file = env_values.get("rules_file", file_values.get("rules_file", ""))
    if rules_file:
        if not Path(rules_file).is_file():
            raise ConfigError(f"rules_file not found: {rules_file}")
        raw.update(_read_toml(Path(rules_file)))
    raw.update(file_values)
    raw.update(env_values)

    unknown = sorted(set(raw) - set(_SETTINGS_FIELDS) - set(_RULES_FIELDS))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")

    settings_kwargs = {
        k: _coerce(k, _SETTINGS_FIELDS[k].type, v) for k, v in raw.items() if k in _SETTINGS_FIELDS
    }
    rules_kwargs = {
        k: _coerce(k, _RULES_FIELDS[k].type, v) for k, v in raw.items() if k in _RULES_FIELDS
    }
    for secret in FILE_SECRETS:
        secret_file = settings_kwargs.get(f"{secret}_file", "")
        if secret_file and not settings_kwargs.get(secret):
            try:
                settings_kwargs[secret] = Path(secret_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{secret}_file unreadable: {exc}") from exc
    rules = Rules(**rules_kwargs)
    if rules.border_cells_csv:
        rules = dataclasses.replace(rules, border_cells=_read_border_cells(rules.border_cells_csv))
    settings = Settings(**settings_kwargs, rules=rules)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _read_toml_resource() -> dict[str, Any]:
    text = resources.files("simguard").joinpath("default_rules.toml").read_text()
    return tomllib.loads(text)


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in (*_SETTINGS_FIELDS, *_RULES_FIELDS):
        name = f"{ENV_PREFIX}{key.upper()}"
        if name in env:
            values[key] = env[name]
    return values


def _coerce(key: str, declared: Any, value: Any) -> Any:
    kind = str(declared)
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
        if kind.startswith("frozenset"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return frozenset(str(i).strip().upper() for i in items if str(i).strip())
        if kind.startswith("Mapping"):
            if isinstance(value, str):
                value = tomllib.loads(value)
            if kind == "Mapping[str, str]":
                return {str(k).upper(): _text_value(v) for k, v in value.items()}
            if kind == "Mapping[str, float]":
                return {str(k).upper(): _number_value(v) for k, v in value.items()}
            if kind == "Mapping[str, PartnerPolicy]":
                return {str(k).upper(): _partner_policy(k, v) for k, v in value.items()}
            return {str(k).upper(): frozenset(str(c).upper() for c in v) for k, v in value.items()}
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: expected {kind}, got {value!r}") from exc
    raise ConfigError(f"{key}: unsupported type {kind}")


def _partner_toml(country: str, policy: PartnerPolicy) -> str:
    """One partner as an inline TOML table, as `_partner_policy` reads it."""
    reasons = orjson.dumps(sorted(policy.reasons)).decode()
    return (
        f"{country} = {{ reasons = {reasons}, min_risk = {policy.min_risk}, "
        f'subject = "{policy.subject}" }}'
    )


def _partner_policy(country: str, table: Any) -> PartnerPolicy:
    if not isinstance(table, Mapping) or set(table) - {"reasons", "min_risk", "subject"}:
        raise ConfigError(f"partners.{country}: takes reasons, min_risk and subject only")
    reasons = table.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ConfigError(f"partners.{country}.reasons: a list of reason codes")
    min_risk = table.get("min_risk", 0)
    if isinstance(min_risk, bool) or not isinstance(min_risk, int):
        raise ConfigError(f"partners.{country}.min_risk: an integer")
    subject = table.get("subject", "pseudonym")
    if subject not in PARTNER_SUBJECTS:
        raise ConfigError(f"partners.{country}.subject: one of {', '.join(PARTNER_SUBJECTS)}")
    return PartnerPolicy(frozenset(r.upper() for r in reasons), min_risk, subject)


def _text_value(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _number_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    return float(value)


def _read_border_cells(path: str) -> frozenset[str]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "cell_id" not in reader.fieldnames:
                raise ConfigError(f"border_cells_csv {path}: needs a cell_id header")
            return frozenset(row["cell_id"].strip() for row in reader if row["cell_id"].strip())
    except OSError as exc:
        raise ConfigError(f"border_cells_csv unreadable: {exc}") from exc


def _validate(settings: Settings) -> None:
    rules = settings.rules
    for country in (rules.home_country, *rules.high_risk_countries):
        if len(country) != 2 or not country.isalpha():
            raise ConfigError(f"not an ISO 3166-1 alpha-2 country: {country!r}")
    if rules.home_country in rules.high_risk_countries:
        raise ConfigError("home_country cannot be a high-risk country")
    _validate_notices(rules)
    _validate_partners(settings)
    if rules.sim_device_cycling_min_imeis < 2 or rules.sim_device_cycling_window_hours <= 0:
        raise ConfigError(
            "sim_device_cycling_min_imeis must be at least 2 and "
            "sim_device_cycling_window_hours positive"
        )
    if rules.device_many_sims_min_imsis < 2 or rules.device_many_sims_window_days <= 0:
        raise ConfigError(
            "device_many_sims_min_imsis must be at least 2 and "
            "device_many_sims_window_days positive"
        )
    if (
        rules.identity_sim_limit < 1
        or min(rules.identity_sim_limit_per_operator, rules.identity_sim_limit_per_operator_foreign)
        < 0
    ):
        raise ConfigError(
            "identity_sim_limit must be at least 1 and the per-operator caps not negative"
        )
    if not 0 < rules.static_high_volume_min_share <= 1:
        raise ConfigError("static_high_volume_min_share must be in (0, 1]")
    if not 1 <= rules.static_high_volume_min_days <= rules.static_high_volume_window_days:
        raise ConfigError(
            "static_high_volume_min_days must be at least 1 and at most "
            "static_high_volume_window_days"
        )
    if rules.high_call_volume_max_calls < 0 or rules.high_call_volume_window_days <= 0:
        raise ConfigError(
            "high_call_volume_max_calls must not be negative and "
            "high_call_volume_window_days positive"
        )
    if not 0 < rules.border_dwell_min_share <= 1:
        raise ConfigError("border_dwell_min_share must be in (0, 1]")
    for name in ("api_max_batch_events", "api_max_body_bytes", "topic_partitions"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    # A resend the ledger no longer recognises is applied again; only the
    # border rule counts repeats, and its window must have passed the event.
    if settings.ledger_retention_days < rules.border_dwell_window_days:
        raise ConfigError(
            f"ledger_retention_days ({settings.ledger_retention_days}) must be at least "
            f"border_dwell_window_days ({rules.border_dwell_window_days})"
        )
    # Housekeeping prunes handsets' sightings with the ledger's days.
    if settings.ledger_retention_days < rules.device_many_sims_window_days:
        raise ConfigError(
            f"ledger_retention_days ({settings.ledger_retention_days}) must be at least "
            f"device_many_sims_window_days ({rules.device_many_sims_window_days})"
        )
    # A usage day is accepted up to 7 days after it (schemas/events.py); the
    # ledger must still know its first report when a second one comes.
    if settings.ledger_retention_days < USAGE_MAX_AGE_DAYS:
        raise ConfigError(
            f"ledger_retention_days ({settings.ledger_retention_days}) must be at least "
            f"{USAGE_MAX_AGE_DAYS}, the age of the oldest usage day accepted"
        )
    if settings.usage_report_retention_days < 7:
        raise ConfigError("usage_report_retention_days must be at least 7 (a week's report)")
    if settings.api_key_cache_seconds < 0:
        raise ConfigError("api_key_cache_seconds must not be negative")
    _refuse_shared_secrets(settings)
    _validate_kafka_security(settings)
    if not settings.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("database_url must be sqlite:///PATH or postgresql://...")


def _validate_notices(rules: Rules) -> None:
    # Imported here: codes and actions are the wire contract's, settings are plumbing.
    from schemas.notice import NOTICE_ACTIONS
    from schemas.reason_codes import ReasonCode

    codes = {code.value for code in ReasonCode}
    for name in ("notice_actions", "notice_deadline_hours_by_reason"):
        unknown = sorted(set(getattr(rules, name)) - codes)
        if unknown:
            raise ConfigError(f"{name}: not a reason code: {', '.join(unknown)}")
    for code, action in rules.notice_actions.items():
        if action not in NOTICE_ACTIONS:
            raise ConfigError(f"notice_actions.{code}: one of {', '.join(NOTICE_ACTIONS)}")
    hours = [rules.notice_deadline_hours, *rules.notice_deadline_hours_by_reason.values()]
    if any(h <= 0 for h in hours):
        raise ConfigError("notice deadlines must be a positive number of hours")


def _validate_partners(settings: Settings) -> None:
    rules = settings.rules
    for country, policy in rules.partners.items():
        if len(country) != 2 or not country.isalpha() or country == rules.home_country:
            raise ConfigError(f"partners.{country}: a partner is another ISO 3166-1 country")
        unknown = sorted(policy.reasons - set(ReasonCode))
        if unknown:
            raise ConfigError(f"partners.{country}.reasons: unknown codes {', '.join(unknown)}")
        if policy.subject == "pseudonym" and not settings.partner_pseudonym_secret:
            raise ConfigError(
                f"partners.{country} shares pseudonyms: set partner_pseudonym_secret "
                "(environment or partner_pseudonym_secret_file)"
            )


def _refuse_shared_secrets(settings: Settings) -> None:
    """Each secret keys one thing: whoever can make holder references must not
    be able to attest a record as validated, nor sign as an operator. Each is
    an HMAC-SHA256 key: shorter than its 32-byte output, it is the weak link
    (and a short one is likely a word someone typed)."""
    for name in HMAC_SECRETS:
        value = getattr(settings, name)
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"{name} is {len(value.encode())} bytes; at least {MIN_SECRET_BYTES} are needed "
                "(e.g. `openssl rand -hex 32`)"
            )
    for index, first in enumerate(HMAC_SECRETS):
        for second in HMAC_SECRETS[index + 1 :]:
            value = getattr(settings, first)
            if value and value == getattr(settings, second):
                raise ConfigError(f"{first} and {second} must differ")


def _validate_kafka_security(settings: Settings) -> None:
    protocol = settings.kafka_security_protocol
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(
            f"kafka_security_protocol must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)} "
            f"(SASL only inside TLS), not {protocol!r}"
        )
    if protocol == "SASL_SSL":
        if settings.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(
                f"kafka_sasl_mechanism must be one of {', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise ConfigError(
                "kafka_security_protocol SASL_SSL needs kafka_sasl_username and "
                "kafka_sasl_password (or kafka_sasl_password_file)"
            )
    if bool(settings.kafka_ssl_certfile) != bool(settings.kafka_ssl_keyfile):
        raise ConfigError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, name)
        if path and protocol == "PLAINTEXT":
            raise ConfigError(f"{name} is set but kafka_security_protocol is PLAINTEXT")
        if path and not Path(path).is_file():
            raise ConfigError(f"{name} not found: {path}")


def settings_to_env(settings: Settings) -> dict[str, str]:
    """SIMGUARD_* variables that make another simguard process use `settings`
    (the border cells travel as their CSV path, the land borders as TOML)."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(settings):
        if f.name == "rules":
            continue
        env[f"{ENV_PREFIX}{f.name.upper()}"] = str(getattr(settings, f.name))
    for f in dataclasses.fields(settings.rules):
        value = getattr(settings.rules, f.name)
        if f.name == "border_cells":
            continue
        if f.name == "adjacent_countries":
            value = "\n".join(f"{k} = {sorted(v)!r}" for k, v in value.items()).replace("'", '"')
        elif f.name == "partners":
            value = "\n".join(_partner_toml(k, v) for k, v in value.items())
        elif isinstance(value, Mapping):
            value = "\n".join(f"{k} = {orjson.dumps(v).decode()}" for k, v in value.items())
        elif isinstance(value, frozenset):
            value = ",".join(sorted(value))
        env[f"{ENV_PREFIX}{f.name.upper()}"] = str(value)
    return env
