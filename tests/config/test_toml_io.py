"""config.toml as written reads back as TOML, whatever characters a string option holds."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xnet.config import RunConfig, config_dict_from_mapping, to_toml, toml_value


@pytest.mark.parametrize(
    "text", ["line\nbreak", "tab\tand\rreturn", "nul\x00bell\x07esc\x1b", "del\x7f", 'quote " and \\ back', "ünï ✓"]
)
def test_a_string_with_control_characters_reads_back_unchanged(text):
    assert tomllib.loads(f"v = {toml_value(text)}")["v"] == text


@given(st.text())
def test_any_string_round_trips(text):
    assert tomllib.loads(f"v = {toml_value(text)}")["v"] == text


def test_a_config_whose_dataset_path_holds_a_newline_writes_a_readable_config_toml():
    cfg = RunConfig(dataset="data/odd\nname.csv", init="normal(std=0.1)\t")
    back = config_dict_from_mapping(tomllib.loads(to_toml(cfg)))
    assert back["dataset"] == cfg.dataset and back["init"] == cfg.init


def test_the_escapes_are_the_short_ones_toml_defines():
    assert toml_value("a\nb") == '"a\\nb"' and toml_value("\x01") == '"\\u0001"'
