"""Configuration from BOTYARD_* variables: converted and checked by pydantic, every problem
reported at once under the variable at fault."""

from pathlib import Path

import pytest

from botyard.ops.config import Config
from botyard.ops.errors import ConfigError


def test_defaults_conversions_and_overrides():
    config = Config.from_mapping({})
    assert config == Config(node_id=config.node_id) and config.snapshots_path == Path(".botyard/snapshots")
    config = Config.from_mapping(
        {"BOTYARD_DATA_DIR": "/tmp/x", "BOTYARD_COPIES": "3", "BOTYARD_CAPACITY": "2.5", "BOTYARD_SNAPSHOT_DIR": "",
         "BOTYARD_NATS_URL": "", "BOTYARD_HTTP_PORT": "-1", "BOTYARD_LOG_FORMAT": "json"},
        copies="4", node_id="n1",
    )
    assert (config.data_dir, config.copies, config.capacity, config.snapshot_dir) == (Path("/tmp/x"), 4, 2.5, None)
    assert (config.nats_url, config.http_port, config.log_format, config.node_id) == ("", -1, "json", "n1")
    assert config.with_(copies=5).copies == 5


@pytest.mark.parametrize("variable, value", [
    ("BOTYARD_MAX_TEXT_BYTES", "0"),
    ("BOTYARD_MAX_TEXT_BYTES", "many"),
    ("BOTYARD_CONVERSATION_SHARDS", "0"),
    ("BOTYARD_INTENT_WORKERS", "0"),  # was reported as BOTYARD_CONVERSATION_SHARDS
    ("BOTYARD_MODEL_CACHE_BYTES", "0"),
    ("BOTYARD_CAPACITY", "0"),
    ("BOTYARD_COPIES", "1.5"),
    ("BOTYARD_SNAPSHOT_STORE", "s3"),
    ("BOTYARD_HEARTBEAT_SECONDS", "-1"),
    ("BOTYARD_NODE_TIMEOUT", "0.5"),  # not longer than a heartbeat
    ("BOTYARD_IDLE_SECONDS", "0"),
    ("BOTYARD_CONVERSATION_SNAPSHOT_EVERY", "-1"),
    ("BOTYARD_GATE_TURNS", "0"),
    ("BOTYARD_CONVERSATION_SPREAD", "some"),
    ("BOTYARD_LOG_FORMAT", "xml"),
    ("BOTYARD_GATE_MAX_CHANGED", "1.5"),
    ("BOTYARD_GATE_MAX_FALLBACK_RISE", "-0.1"),
])
def test_a_wrong_value_names_its_variable(variable, value):
    with pytest.raises(ConfigError) as err:
        Config.from_mapping({variable: value})
    assert err.value.code == "invalid_config"
    assert err.value.fields["variable"] == variable and list(err.value.fields["problems"]) == [variable]
    assert err.value.message.startswith(f"{variable}: ")


def test_every_wrong_value_is_reported_at_once():
    wrong = {"BOTYARD_INTENT_WORKERS": "0", "BOTYARD_COPIES": "x", "BOTYARD_SNAPSHOT_STORE": "s3",
             "BOTYARD_GATE_MAX_CHANGED": "2", "BOTYARD_HEARTBEAT_SECONDS": "3"}  # the node timeout (3) is now too short
    with pytest.raises(ConfigError) as err:
        Config.from_mapping(wrong)
    problems = err.value.fields["problems"]
    assert set(problems) == set(wrong) - {"BOTYARD_HEARTBEAT_SECONDS"} | {"BOTYARD_NODE_TIMEOUT"}
    assert "'s3'" in problems["BOTYARD_SNAPSHOT_STORE"] and "BOTYARD_HEARTBEAT_SECONDS" in problems["BOTYARD_NODE_TIMEOUT"]
    assert all(f"{v}: " in err.value.message for v in problems)
    with pytest.raises(ConfigError) as err:  # a flag's override too, and a changed copy
        Config.from_mapping({}, intent_workers="0")
    assert err.value.fields["variable"] == "BOTYARD_INTENT_WORKERS"
    with pytest.raises(ConfigError) as err:
        Config.from_mapping({}).with_(copies=0)
    assert err.value.fields["variable"] == "BOTYARD_COPIES"
