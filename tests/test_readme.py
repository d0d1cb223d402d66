from conftest import ROOT
from vars_table import table


def test_readme_variables_table_matches_argument_specs():
    """The README's table is `scripts/vars_table.py`'s output: regenerate it when a variable changes."""
    assert table() in (ROOT / "README.md").read_text()
