"""Loading, validating and resolving the workflow configuration.

``resolve(raw)`` validates ``config.yaml`` (plus command-line overrides) against
the JSON schema, deep-merges the selected preset over the thesis sections, and
checks cross references (variants, selections, dataclass parameter keys). The
result is a plain dict: the *effective* configuration used by every rule.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
THESIS_TABLES_PATH = REPO_ROOT / "workflow" / "thesis_tables.yaml"
MERGED_SECTIONS = ("datasets", "models", "sampling", "filtering", "metrics", "downstream", "seeds",
                   "device", "threads", "bf16", "channels_last")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, other values replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate mapping keys: in a table declaration a repeated row id
    would silently replace the earlier row."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: SafeLoader reports it
                    break
                if first is not None:
                    raise DuplicateKeyError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                                            f"(first defined on line {first})")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file safely; a duplicate key, a syntax error or a missing file is a ConfigError naming
    the file (and the line)."""
    path = Path(path)
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc


def check_config_files(paths) -> None:
    """Re-read the config files Snakemake loaded (config.yaml and every ``--configfile``) with the
    duplicate-key check; Snakemake's own loader keeps the last of two equal keys without a word."""
    for path in paths:
        if str(path).endswith((".yaml", ".yml")):
            load_yaml(path)


def validate(raw: Mapping[str, Any], schema_path: Path = SCHEMA_PATH) -> None:
    """Validate against the JSON schema; the error names the offending key path."""
    schema = load_yaml(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            where = "/".join(str(p) for p in err.absolute_path) or "<top level>"
            msg = err.message
            if err.validator == "additionalProperties":
                msg = f"unknown key: {msg}"
            lines.append(f"  config.yaml: {where}: {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))


def resolve(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` and return the effective configuration for ``raw['preset']``."""
    validate(raw)
    preset = raw["preset"]
    effective = {k: copy.deepcopy(v) for k, v in raw.items() if k != "presets"}
    overrides = raw["presets"].get(preset, {})
    for key in MERGED_SECTIONS:
        if key in overrides:
            if isinstance(overrides[key], Mapping):
                effective[key] = deep_merge(effective.get(key, {}), overrides[key])
            else:
                effective[key] = overrides[key]
    _check_references(effective)
    return effective


def _check_references(cfg: Mapping[str, Any]) -> None:
    selections = cfg["filtering"]["selections"]
    if cfg["filtering"]["default"] not in selections:
        raise ConfigError(f"filtering.default: unknown selection {cfg['filtering']['default']!r}")
    variants = cfg["models"]["osmis"].get("variants", {})
    for name in cfg["models"]["osmis"].get("mask_free_variants", []):
        if name not in variants:
            raise ConfigError(f"models.osmis.mask_free_variants names {name!r}, which is not a declared variant; "
                              f"known: {sorted(variants)}")
    for table_id, table in cfg["tables"].items():
        for row_id, row in table["rows"].items():
            if "selection" in row and row["selection"] not in selections:
                raise ConfigError(f"tables.{table_id}.rows.{row_id}.selection: unknown selection {row['selection']!r}; "
                                  f"known: {sorted(selections)}")
            if "osmis_variant" in row and row["osmis_variant"] not in variants:
                raise ConfigError(f"tables.{table_id}.rows.{row_id}.osmis_variant: unknown variant "
                                  f"{row['osmis_variant']!r}; known: {sorted(variants)}")
    _check_dataclass_params(cfg)


def _check_dataclass_params(cfg: Mapping[str, Any]) -> None:
    """Check parameter dicts against the configuration dataclasses (unknown keys -> ConfigError)."""
    from .utils.dataclass_config import from_dict

    checks = []
    try:
        from .nets.osmis_config import OSMISConfig

        osmis = cfg["models"]["osmis"]
        checks.append((OSMISConfig, osmis.get("params", {}), "models.osmis.params"))
        for name, overrides in osmis.get("variants", {}).items():
            checks.append((OSMISConfig, deep_merge(osmis.get("params", {}), overrides),
                           f"models.osmis.variants.{name}"))
        for name, overrides in osmis.get("collection_params", {}).items():
            checks.append((OSMISConfig, deep_merge(osmis.get("params", {}), overrides),
                           f"models.osmis.collection_params.{name}"))
    except ImportError:  # pragma: no cover - only while the package is incomplete
        pass
    try:
        from downstream.osvos.config import OSVOSConfig

        osvos = cfg["downstream"]["osvos"]
        checks.append((OSVOSConfig, osvos.get("params", {}), "downstream.osvos.params"))
        checks.append((OSVOSConfig, osvos.get("parent_params", {}), "downstream.osvos.parent_params"))
    except ImportError:  # pragma: no cover
        pass
    try:
        from downstream.stm.config import STMConfig

        stm = cfg["downstream"].get("stm", {})
        checks.append((STMConfig, stm.get("params", {}), "downstream.stm.params"))
        checks.append((STMConfig, stm.get("train_params", {}), "downstream.stm.train_params"))
    except ImportError:  # pragma: no cover
        pass
    try:
        from .metrics.mask_alignment import MaskAlignmentConfig

        checks.append((MaskAlignmentConfig, cfg["metrics"].get("mask_alignment_params", {}),
                       "metrics.mask_alignment_params"))
    except ImportError:  # pragma: no cover
        pass
    for cls, params, where in checks:
        from_dict(cls, params, where=where)


def load(path: str | Path = REPO_ROOT / "config.yaml", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load config.yaml, apply top-level overrides (e.g. from ``--config``) and resolve."""
    raw = load_yaml(path)
    if overrides:
        raw = deep_merge(raw, overrides)
    return resolve(raw)


def thesis_tables(path: str | Path = THESIS_TABLES_PATH) -> dict[str, Any]:
    """The transcribed thesis tables (values as printed, with line numbers)."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of table ids")
    return data
