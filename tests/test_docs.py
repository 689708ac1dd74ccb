"""Documentation that must track the code."""

from pathlib import Path

from wmrobust.config import reference_markdown

REPO = Path(__file__).resolve().parents[1]


def test_config_readme_lists_every_run_key_with_its_default():
    text = (REPO / "config" / "README.md").read_text()
    block = text.split("<!-- reference:start -->\n")[1].split("\n<!-- reference:end -->")[0]
    assert block == reference_markdown(), "regenerate with: python -m wmrobust.config"


def test_config_readme_documents_every_experiment_key():
    import yaml

    text = (REPO / "config" / "README.md").read_text()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key in config:
        assert f"`{key}" in text, key
    for scale in config["scales"].values():
        for key in scale:
            assert f"`scales.<scale>.{key}" in text, key
