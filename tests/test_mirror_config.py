"""MirrorMaker 2's configuration: the one simguard writes for a link, and the
deployed Thai-Cambodian one, agree with the topics simguard uses."""

from __future__ import annotations

import re
from pathlib import Path

from simguard.mirror import Cluster, Flow, properties
from simguard.settings import Settings

DEPLOYED = Path(__file__).resolve().parents[1] / "deploy" / "mirror" / "mm2-TH-KH.properties"


def parse(text: str) -> dict[str, str]:
    """key -> value as Java reads a properties file (a doubled backslash is one)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip().replace("\\\\", "\\") for key, value in pairs}


def test_a_links_config_names_both_clusters_each_flow_and_reads_committed_records() -> None:
    config = parse(
        properties(
            [Cluster("TH", "th:9092"), Cluster("KH", "kh:9092", {"security.protocol": "SSL"})],
            [Flow("TH", "KH", r"ew\.indicators\.v1\.KH")],
            replication_factor=3,
        )
    )
    assert config["clusters"] == "TH, KH"
    assert config["KH.bootstrap.servers"] == "kh:9092"
    assert config["KH.security.protocol"] == "SSL"
    assert config["TH->KH.enabled"] == "true"
    assert config["TH->KH.topics"] == r"ew\.indicators\.v1\.KH"
    assert "KH->TH.enabled" not in config
    assert config["TH.consumer.isolation.level"] == "read_committed"
    assert config["offset.storage.replication.factor"] == "3"
    assert config["sync.topic.acls.enabled"] == "false"


def test_the_deployed_link_carries_the_indicators_for_cambodia_out_and_its_sightings_in() -> None:
    config = parse(DEPLOYED.read_text())
    defaults = Settings()
    assert re.fullmatch(config["TH->KH.topics"], defaults.indicator_topic("KH"))
    assert not re.fullmatch(config["TH->KH.topics"], defaults.indicator_topic("PH"))
    assert re.fullmatch(config["KH->TH.topics"], defaults.topic_sightings)
    assert re.fullmatch(config["KH->TH.topics"], defaults.indicator_topic("TH"))
    assert not re.fullmatch(config["KH->TH.topics"], "ewXsightingsXv1")
    excluded = config["config.properties.exclude"].split(", ")
    assert any(re.fullmatch(pattern, "message.timestamp.type") for pattern in excluded)
    assert config["TH->KH.enabled"] == config["KH->TH.enabled"] == "true"
    for side in ("TH", "KH"):
        assert config[f"{side}.security.protocol"] == "SASL_SSL"
        assert config[f"{side}.consumer.isolation.level"] == "read_committed"
    assert "password=" not in DEPLOYED.read_text().replace('password="${file:', "")
