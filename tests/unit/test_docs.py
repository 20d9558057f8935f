"""The project's own documents: the contract's example is a valid step, and nothing in the
repository points to files outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from prs_runner.step.validation import step_from_document

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = ("../" + "shared", "DESIGN" + ".md")  # spelt in two parts: this file is checked too


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_the_contracts_example_step_is_valid_and_spells_out_the_defaults() -> None:
    document = yaml.safe_load(yaml_blocks(REPO / "docs" / "contract.md")[0])
    step = step_from_document(document)
    assert step.name == "predict-digits"
    assert step.spec["appendRowFileName"] == "parallel_run_step.txt"
    assert (step.spec["runInvocationTimeout"], step.spec["runMaxTry"]) == (60, 3)


def test_the_readme_example_step_is_valid() -> None:
    document = yaml.safe_load(yaml_blocks(REPO / "README.md")[0])
    assert step_from_document(document).spec["nodeCount"] == 2


def test_nothing_in_the_repository_points_outside_it() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    outside = []
    for name in tracked:
        path = REPO / name
        if path.suffix in {".png", ".lock"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if any(needle in text for needle in OUTSIDE):
            outside.append(name)
    assert outside == [], "the project's own docs carry its contract"


def nav_pages(entries: list[object]) -> list[str]:
    """The page files of mkdocs.yml's nav, however deep its sections go."""
    found: list[str] = []
    for entry in entries:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            found.extend(nav_pages(value) if isinstance(value, list) else [str(value)])
    return found


def test_every_page_under_docs_is_in_the_sites_nav_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    docs = REPO / config["docs_dir"]
    in_nav = nav_pages(config["nav"])
    pages = sorted(str(path.relative_to(docs)) for path in docs.rglob("*.md"))
    assert sorted(set(in_nav)) == sorted(in_nav), "a page is twice in the nav"
    assert [page for page in pages if page not in in_nav] == [], "add these pages to mkdocs.yml"
    assert [page for page in in_nav if page not in pages] == [], "the nav names missing pages"
    assert config["site_dir"].startswith("build/"), "the built site stays out of git (build/)"
