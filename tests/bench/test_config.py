from dataclasses import dataclass
from typing import Literal

import pytest

from bench.config import build_config, parse_sets
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


@pytest.mark.parametrize("pair,needle", [("hidden=abc", "expected int"), ("constrained=maybe", "boolean"),
                                         ("placement=cross", r"one of self, self\+cross"), ("hidden=1.5", "expected int")])
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
