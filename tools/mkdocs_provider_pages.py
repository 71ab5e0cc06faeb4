"""mkdocs hook: provider pages are found, not named in mkdocs.yml.

A provider's page lives in its own folder, ``providers/<folder>/docs/<name>.md``, or
in ``docs/providers/<name>.md``; either way it is served as ``providers/<name>.md``
(the link the capability matrix uses), and every such page is listed in the nav's
"Providers" section after the matrix, by file name. Adding a platform therefore
never touches mkdocs.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import File, Files

SECTION = "Providers"
FOLDER_PAGES = "providers/*/docs/*.md"


def _root(config: MkDocsConfig) -> Path:
    # Provider folders sit next to mkdocs.yml.
    return Path(config.config_file_path).resolve().parent


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = _root(config)
    for page in sorted(root.glob(FOLDER_PAGES)):
        uri = f"providers/{page.name}"
        if files.get_file_from_path(uri) is not None:
            # Two pages for one address: refuse rather than silently serve one.
            raise PluginError(f"{uri} exists both in docs/ and as {page.relative_to(root)}")
        files.append(File.generated(config, uri, abs_src_path=str(page)))
    _list_in_nav(files, config)
    return files


def _list_in_nav(files: Files, config: MkDocsConfig) -> None:
    section = _section(config.nav or [])
    named = {
        target
        for entry in section
        for target in ([entry] if isinstance(entry, str) else list(entry.values()))
        if isinstance(target, str)  # a nested section under Providers names no page itself
    }
    found = sorted(
        f.src_uri
        for f in files.documentation_pages()
        if f.src_uri.startswith("providers/") and f.src_uri.count("/") == 1
    )
    # No title: mkdocs takes each page's first heading, so the page names itself.
    section.extend(uri for uri in found if uri not in named)


def _section(nav: list[Any]) -> list[Any]:
    for entry in nav:
        if isinstance(entry, dict) and isinstance(entry.get(SECTION), list):
            found: list[Any] = entry[SECTION]
            return found
    raise PluginError(f"mkdocs.yml's nav has no {SECTION!r} section to list provider pages in")


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: Any) -> LiveReloadServer:
    for folder in sorted({page.parent for page in _root(config).glob(FOLDER_PAGES)}):
        server.watch(str(folder))
    return server
