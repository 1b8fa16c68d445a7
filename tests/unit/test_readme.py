"""The README's variable reference is generated from the config metadata and must not drift."""

from pipeline.config import markdown_table
from tests.helpers import REPO


def test_readme_variable_table_is_current():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, (
        "README.md's variable table is stale: regenerate it with `ds-pipeline config --markdown` "
        "(or `make readme-vars`)")


def test_readme_gives_the_two_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
