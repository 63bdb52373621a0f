"""A run's configuration: the RunConfig schema, the options table, validation, TOML read and write."""

from xnet.config.schema import (
    CHOICES,
    DEFAULTS,
    FIELDS,
    LOCAL_KEYS,
    RunConfig,
    config_dict_from_mapping,
    config_dict_from_toml,
    parse_batch_size,
    parse_hidden,
    parse_milestones,
    to_toml,
    toml_value,
    type_ok,
    validate,
)

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
