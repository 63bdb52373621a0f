"""A run's configuration: the RunConfig schema, the options table, validation, TOML read and write."""

from xnet.config.schema import (
    CHOICES,
    DEFAULTS,
    FIELDS,
    LOCAL_KEYS,
    RunConfig,
    parse_batch_size,
    parse_hidden,
    parse_milestones,
    type_ok,
    validate,
)
from xnet.config.toml_io import config_dict_from_mapping, config_dict_from_toml, to_toml
from xnet.config.values import toml_value

__all__ = [
    "CHOICES",
    "DEFAULTS",
    "FIELDS",
    "LOCAL_KEYS",
    "RunConfig",
    "config_dict_from_mapping",
    "config_dict_from_toml",
    "parse_batch_size",
    "parse_hidden",
    "parse_milestones",
    "to_toml",
    "toml_value",
    "type_ok",
    "validate",
]
