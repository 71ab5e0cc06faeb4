"""Provider pages are found by the mkdocs hook: mkdocs.yml names none of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import get_files
from mkdocs.structure.nav import Navigation, Section, get_navigation

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "tools" / "mkdocs_provider_pages.py"
NAV = f"""site_name: t
docs_dir: docs
hooks:
  - {HOOK}
nav:
  - Home: index.md
  - Providers:
      - Capability matrix: providers/index.md
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def site(tmp_path: Path) -> MkDocsConfig:
    write(tmp_path / "mkdocs.yml", NAV)
    write(tmp_path / "docs" / "index.md", "# Home\n")
    write(tmp_path / "docs" / "providers" / "index.md", "# Matrix\n")
    return load_config(config_file=str(tmp_path / "mkdocs.yml"))


def navigation(config: MkDocsConfig) -> Navigation:
    files = config.plugins.on_files(get_files(config), config=config)
    return get_navigation(files, config)


def provider_titles(nav: Navigation) -> list[tuple[str | None, str]]:
    (section,) = [item for item in nav.items if isinstance(item, Section)]
    return [(page.title, page.file.src_uri) for page in section.children if page.is_page]  # type: ignore[attr-defined]


def test_pages_in_provider_folders_and_in_docs_are_both_listed(
    tmp_path: Path,
) -> None:
    config = site(tmp_path)
    write(tmp_path / "providers" / "zeta" / "docs" / "zeta.md", "# Zeta Mail\n")
    write(tmp_path / "docs" / "providers" / "alpha.md", "# Alpha\n")

    nav = navigation(config)
    for page in nav.pages:
        page.read_source(config)
        page.render(config, get_files(config))  # the title comes from the first heading

    assert provider_titles(nav) == [
        ("Capability matrix", "providers/index.md"),
        ("Alpha", "providers/alpha.md"),
        ("Zeta Mail", "providers/zeta.md"),
    ]


def test_one_page_in_both_places_is_refused(
    tmp_path: Path,
) -> None:
    config = site(tmp_path)
    write(tmp_path / "providers" / "zeta" / "docs" / "zeta.md", "# Zeta\n")
    write(tmp_path / "docs" / "providers" / "zeta.md", "# Zeta again\n")

    with pytest.raises(PluginError, match=r"providers/zeta\.md"):
        navigation(config)


def test_every_provider_folder_page_of_this_repository_is_in_the_nav() -> None:
    nav = navigation(load_config(config_file=str(ROOT / "mkdocs.yml")))
    listed = {uri for _, uri in provider_titles(nav)}
    folder_pages = {f"providers/{p.name}" for p in ROOT.glob("providers/*/docs/*.md")}
    assert folder_pages
    assert folder_pages <= listed


def test_the_template_folders_page_is_listed_once_the_folder_is_copied(tmp_path: Path) -> None:
    config = site(tmp_path)
    page = ROOT / "examples" / "provider-template" / "docs" / "template.md"
    write(tmp_path / "providers" / "template" / "docs" / "template.md", page.read_text("utf-8"))

    nav = navigation(config)

    assert [uri for _, uri in provider_titles(nav)] == [
        "providers/index.md",
        "providers/template.md",
    ]


def test_a_page_the_nav_already_names_is_not_listed_twice(tmp_path: Path) -> None:
    write(
        tmp_path / "mkdocs.yml",
        NAV + "      - Zeta by hand: providers/zeta.md\n      - More:\n          - index.md\n",
    )
    write(tmp_path / "docs" / "index.md", "# Home\n")
    write(tmp_path / "docs" / "providers" / "index.md", "# Matrix\n")
    write(tmp_path / "providers" / "zeta" / "docs" / "zeta.md", "# Zeta\n")
    config = load_config(config_file=str(tmp_path / "mkdocs.yml"))

    nav = navigation(config)

    assert [uri for _, uri in provider_titles(nav)] == ["providers/index.md", "providers/zeta.md"]
    assert [title for title, _ in provider_titles(nav)][1] == "Zeta by hand"
