"""`[partners.<country>]` in the rules file: what each partner regulator may be told."""

from __future__ import annotations

from pathlib import Path

import pytest

from simguard.settings import (
    ConfigError,
    PartnerPolicy,
    Settings,
    load_settings,
    settings_to_env,
)

SECRET = "s" * 40


def load(tmp_path: Path, rules: str, **environ: str) -> Settings:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules)
    config = tmp_path / "simguard.toml"
    config.write_text("")
    return load_settings(
        environ={
            "SIMGUARD_CONFIG": str(config),
            "SIMGUARD_RULES_FILE": str(rules_file),
            **environ,
        }
    )


KH = """
[partners.KH]
reasons = ["HIGH_RISK_ROAMING", "ACTIVATED_THEN_ABROAD"]
min_risk = 30
"""


def test_a_partner_loads_with_its_reasons_minimum_risk_and_pseudonyms(tmp_path: Path) -> None:
    settings = load(tmp_path, KH, SIMGUARD_PARTNER_PSEUDONYM_SECRET=SECRET)
    assert settings.rules.partners == {
        "KH": PartnerPolicy(frozenset({"HIGH_RISK_ROAMING", "ACTIVATED_THEN_ABROAD"}), 30)
    }


def test_the_partners_travel_to_another_process_through_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, KH, SIMGUARD_PARTNER_PSEUDONYM_SECRET=SECRET)
    config = tmp_path / "empty.toml"
    config.write_text("")
    again = load_settings(environ={**settings_to_env(settings), "SIMGUARD_CONFIG": str(config)})
    assert again.rules.partners == settings.rules.partners


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[partners.KH]\nreasons = ["SMUGGLING"]', "unknown codes SMUGGLING"),
        ('[partners.TH]\nreasons = ["HIGH_RISK_ROAMING"]', "another ISO 3166-1 country"),
        ('[partners.KH]\nreasons = ["HIGH_RISK_ROAMING"]\nsubject = "msisdn"', "subject"),
        ('[partners.KH]\nreasons = "HIGH_RISK_ROAMING"', "a list of reason codes"),
        ("[partners.KH]\nholders = true", "takes reasons, min_risk and subject only"),
    ],
)
def test_a_partner_the_agreement_could_not_mean_is_refused(
    tmp_path: Path, rules: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, rules, SIMGUARD_PARTNER_PSEUDONYM_SECRET=SECRET)


def test_pseudonyms_need_their_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="partner_pseudonym_secret"):
        load(tmp_path, KH)
