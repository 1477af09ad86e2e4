import json
from dataclasses import dataclass
from typing import Literal

import pytest

from bench.config import build_config, load_tuned, parse_sets, tuned_path
from bench.errors import UsageError


@dataclass
class Cfg:
    hidden: int = 64
    lr: float = 1e-3
    constrained: bool = True
    placement: Literal["self", "self+cross"] = "self+cross"
    backbone: str | None = None


def test_overrides_are_converted_to_field_types():
    cfg = build_config(Cfg, parse_sets(["hidden=32", "lr=5e-4", "constrained=false", "placement=self", "backbone=/x"]))
    assert cfg == Cfg(32, 5e-4, False, "self", "/x")


def test_optional_accepts_none():
    assert build_config(Cfg, {"backbone": "none"}).backbone is None


@pytest.mark.parametrize("pair,needle", [
    ("hidden=abc", "expected int"), ("constrained=maybe", "boolean"),
    ("placement=cross", r"one of self, self\+cross"), ("hidden=1.5", "expected int"),
])
def test_bad_values_name_the_key(pair, needle):
    with pytest.raises(UsageError, match=needle) as e:
        build_config(Cfg, parse_sets([pair]))
    assert pair.split("=")[0] in str(e.value)


def test_unknown_key_lists_known_keys():
    with pytest.raises(UsageError, match="unknown config key.*hiden.*known: backbone, constrained, hidden"):
        build_config(Cfg, {"hiden": "3"})


def test_set_needs_equals():
    with pytest.raises(UsageError, match="key=value"):
        parse_sets(["hidden"])


def _write_tuned(results, best: dict):
    path = tuned_path(results, "tiny", "direct", "m")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"best": best}))
    return path


def test_tuned_values_load_as_strings(tmp_path):
    _write_tuned(tmp_path, {"hidden": 32, "lr": 0.01})
    assert load_tuned(tmp_path, "tiny", "direct", "m", Cfg) == {"hidden": "32", "lr": "0.01"}
    assert load_tuned(tmp_path, "tiny", "other", "m", Cfg) == {}  # never tuned: nothing to apply


def test_tuned_file_with_an_unknown_key_names_the_file_the_key_and_the_fix(tmp_path):
    path = _write_tuned(tmp_path, {"hidden": 32, "hiden": 16})
    with pytest.raises(UsageError) as e:
        load_tuned(tmp_path, "tiny", "direct", "m", Cfg)
    msg = str(e.value)
    assert str(path) in msg and "unknown config key(s) hiden for m" in msg
    assert "known: backbone, constrained, hidden, lr, placement" in msg
    assert "fix: tune again with python -m bench tune --model m --task direct --dataset tiny" in msg


def _register_bad(cls):
    from bench import registry

    with pytest.raises(ValueError) as e:
        registry.register_model("badmodel", tasks={"direct"}, config=Cfg)(cls)
    assert "badmodel" not in registry._REGISTRY  # refused before it is registered
    return str(e.value)


def test_registration_refuses_dataset_defaults_keys_that_are_not_config_fields():
    class Bad:
        DATASET_DEFAULTS = {"synthetic": {"hidden": 8, "hiden": 3}}

    msg = _register_bad(Bad)
    assert ("model 'badmodel': DATASET_DEFAULTS['synthetic'] has unknown config key(s) hiden "
            "(not fields of Cfg)") in msg
    assert "known: backbone, constrained, hidden, lr, placement" in msg


def test_registration_refuses_a_misspelt_hook_attribute():
    class Typo:
        TUNEGRID = {"hidden": [8, 16]}  # would silently mean "no grid"

    assert "TUNEGRID is not a model hook; did you mean TUNE_GRID?" in _register_bad(Typo)
