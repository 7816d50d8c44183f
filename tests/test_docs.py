"""The repository's own docs stay true: every command and option is documented, every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from matcher.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _commands():
    group = typer.main.get_command(app)
    return sorted(group.commands.items())


def test_every_command_and_option_is_in_the_cli_doc():
    text = (DOCS / "cli.md").read_text()
    missing = []
    for name, command in _commands():
        if f"creator-match {name}" not in text:
            missing.append(f"creator-match {name}")
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("--") and opt != "--help" and not re.search(rf"`{re.escape(opt)}[`= \[]", text):
                    missing.append(f"{name} {opt}")
    assert not missing, f"docs/cli.md does not document: {missing}"


def test_links_in_readme_and_docs_resolve_inside_the_repository():
    broken = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists() or ROOT not in resolved.parents:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, f"links that do not resolve inside the repository: {broken}"
