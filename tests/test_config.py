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


def test_duplicate_key_is_an_error_naming_file_line_and_key(tmp_path):
    """PyYAML keeps the last of two equal keys silently; a repeated table row would vanish unnoticed."""
    f = tmp_path / "ablation.yaml"
    f.write_text("tables:\n  table_6_5:\n    rows:\n      a: {system: osvos}\n      b: {system: stm}\n"
                 "      a: {system: stm}\n")
    with pytest.raises(ConfigError) as err:
        cfgmod.load_yaml(f)
    msg = str(err.value)
    assert str(f) in msg and "line 6" in msg and "'a'" in msg and "line 4" in msg


def test_merge_keys_may_be_overridden_and_equal_keys_in_sibling_maps_are_fine(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  x: 3\nother: {x: 1}\n")
    data = cfgmod.load_yaml(f)
    assert data["derived"] == {"x": 3, "y": 2} and data["other"] == {"x": 1}


def test_no_shipped_yaml_file_repeats_a_key():
    import subprocess

    files = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=cfgmod.REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert "config.yaml" in files
    for rel in files:
        cfgmod.load_yaml(cfgmod.REPO_ROOT / rel)  # raises ConfigError on a duplicate key


def test_workflow_rejects_a_configfile_with_a_duplicate_key(tmp_path):
    from workflow_dryrun import snakemake_dry

    f = tmp_path / "dup.yaml"
    f.write_text("seeds: [0]\nseeds: [1]\n")
    proc = snakemake_dry("table_6_5", "--configfile", str(f))
    assert proc.returncode != 0
    assert "duplicate key 'seeds'" in proc.stdout + proc.stderr and str(f) in proc.stdout + proc.stderr
