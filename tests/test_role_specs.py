"""meta/argument_specs.yml and defaults/main.yml say the same: ansible-core does not apply the spec's defaults, so
nothing else keeps them equal."""

from __future__ import annotations

import yaml

from conftest import ROOT

ROLE = ROOT / "roles/quickjh"


def test_every_variable_has_the_same_default_in_defaults_and_argument_specs():
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert {name: spec.get("default") for name, spec in specs.items()} == defaults
