"""The repository's own docs stay true: every command and option is documented, every link resolves."""

from __future__ import annotations

import json
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


def test_each_command_documents_its_options_in_its_own_section_of_the_cli_doc():
    """Found elsewhere on the page does not count: `match --progress` passed the test above because `index` lists
    `--progress`, while the match table left it out. A match setting counts as documented where the section points
    to every match setting (the table the settings test below keeps in step) or names it."""
    from matcher.commands.tunables import TUNABLES

    text = (DOCS / "cli.md").read_text()
    settings = {tunable.option for tunable in TUNABLES}
    missing = []
    for name, command in _commands():
        heading = f"## creator-match {name}\n"
        assert heading in text, f"docs/cli.md has no section {heading.strip()!r}"
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        every_setting = "every [match setting](#match-settings)" in section
        for param in command.params:
            for opt in param.opts:
                if not opt.startswith("--") or opt == "--help" or (opt in settings and every_setting):
                    continue
                if not re.search(rf"`{re.escape(opt)}[`= \[]", section):
                    missing.append(f"{name} {opt}")
    assert not missing, f"not in their command's section of docs/cli.md: {missing}"


def test_every_option_written_after_a_command_in_readme_and_docs_is_one_of_that_command():
    """The tests above go from the parser to cli.md; this goes from every page to the parser, so that a command a
    reader copies from the README or service.md (`creator-match similar ... --k 20 [--marketplace US]`) names
    only options its command has. A line's command runs to its end, a comment, or the prose around a code span."""
    options = {
        name: {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        for name, command in _commands()
    }
    unknown = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = re.sub(r"\\\n\s*", " ", page.read_text())  # a shell line continued with a backslash is one line
        for name, rest in re.findall(r"creator-match (\w+)([^`#;:()\n]*)", text):
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                if name in options and opt != "--help" and opt not in options[name]:
                    unknown.append(f"{page.relative_to(ROOT)}: creator-match {name} {opt}")
    assert not unknown, f"options that their command does not have: {unknown}"


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


def _cells(row: str) -> int:
    """How many cells a markdown table row has: a `|` inside a code span or escaped does not part cells."""
    row = re.sub(r"`[^`]*`", "code", row).replace("\\|", "")
    return row.strip().strip("|").count("|") + 1


def test_every_row_of_a_table_in_readme_and_docs_has_its_header_s_cells():
    """A row with more cells than its header is cut short where it renders, and one with fewer leaves them empty:
    model-review.md's rows table had the `forecast_*` metrics pasted into the champion's campaigns row, which lost
    `champion_comparison_campaigns` to a row of its own with no meaning."""
    ragged = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        lines, header, fenced = page.read_text().splitlines(), None, False
        for number, line in enumerate(lines, start=1):
            fenced ^= line.startswith("```")
            if fenced or not line.startswith("|"):
                header = None
            elif header is None:
                header = _cells(line)
            elif not re.fullmatch(r"\|( *:?-+:? *\|)+", line.strip()) and _cells(line) != header:
                ragged.append(f"{page.relative_to(ROOT)}:{number}: {_cells(line)} cells, its header {header}")
    assert not ragged, f"table rows whose cells do not match their header's: {ragged}"


def test_python_names_in_readme_and_docs_resolve_as_written():
    """`training.train.train` in docs/model-review.md raised AttributeError: the package's `train` is the function
    (`from training import train`), which `import training.train as tt` gives too. Each dotted name of the project's
    packages quoted as code is looked up attribute by attribute, importing a module only where no attribute is."""
    import importlib

    def resolves(dotted: str) -> bool:
        head, *parts = dotted.split(".")
        found = importlib.import_module(head)
        for at, part in enumerate(parts, start=2):
            if hasattr(found, part):
                found = getattr(found, part)
                continue
            try:
                found = importlib.import_module(".".join(dotted.split(".")[:at]))
            except ImportError:
                return False
        return True

    unresolved = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for code in re.findall(r"`([^`\n]+)`", page.read_text()):
            for name in re.findall(r"(?<![\w./-])((?:features|matcher|training|simulation)(?:\.\w+)+)", code):
                if not resolves(name):
                    unresolved.append(f"{page.relative_to(ROOT)}: {name}")
    assert not unresolved, f"names that do not resolve: {unresolved}"


def test_every_match_setting_is_an_option_of_match_and_serve_and_a_row_of_the_settings_table():
    """One name per tunable: each field of MatchSettings and SlatePolicy is an option of `match` and `serve`, and
    a row of docs/cli.md's settings table naming the Python field and its default; `train --holdout` likewise."""
    from matcher.commands.tunables import TUNABLES
    from training.evaluate import HOLDOUT

    text = (DOCS / "cli.md").read_text()
    table = text.split("## Match settings", 1)[1].splitlines()
    commands = dict(_commands())
    wrong = []
    for tunable in TUNABLES:
        for name in ("match", "serve"):
            if tunable.option not in {opt for param in commands[name].params for opt in param.opts}:
                wrong.append(f"{name} has no {tunable.option}")
        row = next((line for line in table if line.startswith(f"| `{tunable.option}`")), "")
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if isinstance(tunable.default, bool):
            default = "on" if tunable.default else "off"
        else:
            default = f"`{tunable.default}`" if isinstance(tunable.default, str) else str(tunable.default)
        if len(cells) != 4 or cells[1] != f"`{tunable.owner.__name__}.{tunable.name}`" or cells[3] != default:
            wrong.append(f"settings table row of {tunable.option}: {row or 'missing'} (default {default})")
    train = text.split("## creator-match train", 1)[1].split("\n## ", 1)[0].splitlines()
    holdout = next((line for line in train if line.startswith("| `--holdout`")), "")
    if not holdout.endswith(f"| {HOLDOUT} |"):
        wrong.append(f"train --holdout row: {holdout or 'missing'} (default {HOLDOUT})")
    assert not wrong, wrong


def test_what_an_option_left_out_does_is_said_in_the_help_as_in_the_docs():
    """`simulate --new-campaigns` showed no default in --help (None has none to show) while the docs gave one; the
    `--index` help said "built on the fly if absent", yet a path that holds no index is refused, not built."""
    from simulation.world import SimulationConfig
    from simulation.world_alt import AltConfig

    text = (DOCS / "cli.md").read_text()
    commands = dict(_commands())
    new = next(param for param in commands["simulate"].params if param.name == "new_campaigns")
    assert new.help.endswith("default: an eighth of --campaigns, at least 10"), new.help
    assert "| `--new-campaigns` | campaigns to match | an eighth of `--campaigns`, at least 10 (50 for 400) |" in text
    for config in (SimulationConfig, AltConfig):  # what the help says is what both generators do
        assert [config(n_campaigns=n).new_campaigns for n in (10, 80, 87, 400)] == [10, 10, 10, 50]
    for name in ("match", "similar", "serve"):
        index = next(param for param in commands[name].params if param.name == "index")
        assert "leave the option out to build one" in index.help and "if absent" not in index.help, index.help


def test_a_refused_capacity_says_what_to_type_for_no_limit_as_the_docs_do():
    """The settings' `expected at least 1 or None` asked for a value no option takes: on the command line no limit
    is 0, as the settings table says."""
    from tests.commands import run_in_process

    text = (DOCS / "cli.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `--capacity`"))
    assert "0 (`None` in Python) for no limit" in row
    done = run_in_process("match", "--campaigns", "c.csv", "--creators", "cr.csv", "--out", "m.csv", "--capacity", "-1")
    assert done.returncode == 2
    assert done.stderr.strip() == "creator-match: Got capacity=-1; expected at least 1, or --capacity 0 for no limit"


def test_reject_rows_are_numbered_as_the_contract_says(tmp_path):
    """`row` counts data rows: in a CSV with its header, row 19 is line 20 of the file; in JSON Lines blank lines
    are not counted (docs/contract.md, Bad rows)."""
    from features.tables import read_table

    rows = [f"u{i},social_creator,instagram,skincare,{-1 if i == 19 else 1000}" for i in range(1, 21)]
    csv_file = tmp_path / "creators.csv"
    csv_file.write_text("creator_id,creator_type,platforms,interest_tags,followers\n" + "\n".join(rows) + "\n")
    (reject,) = read_table(csv_file, "creators").rejects
    assert (reject.row, reject.id) == (19, "u19")
    assert csv_file.read_text().splitlines()[20 - 1].startswith("u19,")
    profile = {"creator_type": "social_creator", "platforms": ["instagram"], "interest_tags": ["skincare"]}
    records = [{"creator_id": f"u{i}", **profile, "followers": n} for i, n in ((1, 10), (2, -1))]
    jsonl_file = tmp_path / "creators.jsonl"
    jsonl_file.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n")
    (reject,) = read_table(jsonl_file, "creators").rejects
    assert (reject.row, reject.id) == (2, "u2")


def test_every_feature_the_ranker_reads_is_explained_in_the_model_review_doc():
    """A review trial: `expected_market_share` topped the importance plot and no page said what it was. Each
    feature has a row in docs/model-review.md's "What each feature is", and the table names no other."""
    from features.pairwise import FEATURES

    text = (DOCS / "model-review.md").read_text(encoding="utf-8")
    section = text.split("### What each feature is", 1)[1].split("\n### ", 1)[0]
    named = [
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", line.split(" | ")[0])
    ]
    assert sorted(named) == sorted(FEATURES)
