"""docs/configuration.md is what the code generates: the reference cannot drift from the settings."""

from pathlib import Path

from textclf.reference import configuration_reference

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_the_configuration_reference_is_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == configuration_reference(), (
        "docs/configuration.md is out of date: run python -m textclf.reference > docs/configuration.md")


def test_every_setting_is_described():
    lines = [line for line in configuration_reference().splitlines() if line.startswith("| `")]
    assert lines and all(not line.rstrip().endswith("|  |") for line in lines), [
        line for line in lines if line.rstrip().endswith("|  |")]
