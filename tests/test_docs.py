"""Documentation that must track the code."""

import re
import subprocess
from pathlib import Path

import pytest

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


# References to the protocol and the architecture note: they live in docs/, and
# nothing tracked points outside the repository (users only have the checkout).
DOCS = REPO / "docs"
OUTSIDE_PATH = re.compile(r"\.\./" + r"(shared|reference)\b|/work/" + r"shared\b")
OLD_NAME = re.compile(r"\b(PROTOCOL|ARCHITECTURE)\b")
PROTOCOL_SECTION = re.compile(r"docs/protocol\.md,? sections? (\d+)")
DOC_LINK = re.compile(r"docs/[\w-]+\.md")
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()


def tracked_text_files():
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = {}
    for name in listed.decode().split("\0"):
        path = REPO / name
        if not name or name == THIS_FILE or not path.is_file():
            continue
        try:
            files[name] = path.read_text()
        except UnicodeDecodeError:
            continue
    assert "README.md" in files and "src/wmrobust/claims.py" in files
    return files


def protocol_sections() -> list[int]:
    return [int(n) for n in re.findall(r"^## (\d+)\. ", (DOCS / "protocol.md").read_text(), re.M)]


def test_no_tracked_file_refers_outside_the_repository():
    hits = [f"{name}:{i}: {line.strip()}"
            for name, text in tracked_text_files().items()
            for i, line in enumerate(text.splitlines(), 1) if OUTSIDE_PATH.search(line)]
    assert not hits, "paths outside the repository:\n" + "\n".join(hits)


def test_protocol_references_name_docs_protocol_and_existing_sections():
    sections = protocol_sections()
    assert sections == list(range(1, 9)), f"docs/protocol.md sections renumbered: {sections}"
    old, missing, broken, cited = [], [], [], set()
    for name, text in tracked_text_files().items():
        for i, line in enumerate(text.splitlines(), 1):
            if OLD_NAME.search(line):
                old.append(f"{name}:{i}: {line.strip()}")
            for n in PROTOCOL_SECTION.findall(line):
                cited.add(int(n))
                if int(n) not in sections:
                    missing.append(f"{name}:{i}: section {n}")
            for link in DOC_LINK.findall(line):
                if not (REPO / link).is_file():
                    broken.append(f"{name}:{i}: {link}")
    assert not old, "references by the old names (use docs/protocol.md, docs/architecture.md):\n" + "\n".join(old)
    assert not missing, "docs/protocol.md has no such section:\n" + "\n".join(missing)
    assert not broken, "no such file:\n" + "\n".join(broken)
    assert {1, 3, 4, 5, 7} <= cited  # the code does cite the protocol by section


def test_protocol_states_each_claim_and_marks_its_sources():
    text = (DOCS / "protocol.md").read_text()
    claims = text.split("\n## 1. ")[1].split("\n## 2. ")[0]
    for claim in ("C1", "C2", "C3", "C4"):
        assert f"| {claim} |" in claims, claim
    for verdict in ("supported", "contradicted", "inconclusive"):
        assert verdict in claims
    assert "**[paper]**" in text and "**[ours]**" in text
