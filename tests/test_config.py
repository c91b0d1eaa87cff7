"""The configuration is validated at start-up; unknown keys are named in the error."""
import copy

import pytest

import gan_core.config as cfgmod
from gan_core.errors import ConfigError


@pytest.fixture(scope="module")
def raw():
    return cfgmod.load_yaml(cfgmod.REPO_ROOT / "config.yaml")


def test_shipped_config_resolves_for_every_preset(raw):
    for preset in ("tiny", "quick", "paper"):
        eff = cfgmod.resolve({**raw, "preset": preset})
        assert eff["preset"] == preset
        assert "presets" not in eff


def test_tiny_preset_overrides_are_merged_not_replaced(raw):
    eff = cfgmod.resolve({**raw, "preset": "tiny"})
    paper = cfgmod.resolve({**raw, "preset": "paper"})
    assert eff["datasets"]["davis"]["source"] == "embedded"
    assert paper["datasets"]["davis"]["source"] == "download"
    # a key the preset does not touch survives the merge
    assert eff["datasets"]["davis"]["fetch"] == paper["datasets"]["davis"]["fetch"]
    assert eff["models"]["osmis"]["iterations"] < paper["models"]["osmis"]["iterations"]
    assert paper["sampling"]["n"] == 100  # thesis l.1835


def test_unknown_top_level_key_is_named(raw):
    bad = {**raw, "preset_typo": 1}
    with pytest.raises(ConfigError, match="preset_typo"):
        cfgmod.resolve(bad)


def test_misspelled_nested_key_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["sampling"]["nn"] = 5
    with pytest.raises(ConfigError, match=r"sampling.*nn"):
        cfgmod.resolve(bad)


def test_unknown_preset_rejected(raw):
    with pytest.raises(ConfigError, match="preset"):
        cfgmod.resolve({**raw, "preset": "huge"})


def test_unknown_selection_in_table_row_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["tables"]["table_6_5"]["rows"]["osvos_both"]["selection"] = "nope"
    with pytest.raises(ConfigError, match="nope"):
        cfgmod.resolve(bad)


def test_unknown_model_parameter_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["models"]["osmis"]["params"]["lambda_drr"] = 0.1
    with pytest.raises(ConfigError, match="lambda_drr"):
        cfgmod.resolve(bad)


def test_deep_merge_semantics():
    base = {"a": {"b": 1, "c": {"d": 2}}, "x": [1, 2]}
    out = cfgmod.deep_merge(base, {"a": {"c": {"e": 3}}, "x": [3]})
    assert out == {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "x": [3]}
    assert base["a"]["c"] == {"d": 2}  # input untouched


def test_collection_params_are_validated_and_coco_fits_its_own_resolution(raw):
    eff = cfgmod.resolve({**raw, "preset": "paper"})
    osmis = eff["models"]["osmis"]
    assert osmis["params"]["image_size"] == [384, 640]                 # DAVIS: fixed 640x384 (thesis l.1835)
    assert osmis["collection_params"]["coco20i"]["image_size"] is None  # COCO: the pair's own size
    bad = copy.deepcopy(raw)
    bad["models"]["osmis"]["collection_params"] = {"coco20i": {"image_sise": None}}
    with pytest.raises(ConfigError, match="image_sise"):
        cfgmod.resolve(bad)
