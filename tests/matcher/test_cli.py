"""`creator-match` end to end, as a scheduler runs it: files, exit codes and stderr.

On the session's world and its registered ranker (tests/conftest.py), the match with bad rows runs as a real
process (the console script, the exit status 2 a scheduler sees); the rest call the same `main` in this process
(tests/commands.py), which is what they check. A match that exits 0 through the console script, and its bytes
against a run made in another process, are tests/matcher/test_crash_safety.py's; `simulate`, `train` and `index`
run through the console script in tests/simulation/test_simulation.py, tests/training/test_tracking_server.py and
tests/matcher/test_concurrent_runs.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.environment import EMBEDDING_BACKEND_ENV
from matcher.api import MATCH_COLUMNS
from matcher.schema import CANDIDATE_COLUMNS, SUMMARY_SCHEMA
from tests.commands import CLI, match_args, run_process
from tests.commands import run_in_process as run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow(tmp_path_factory, world_dir, trained, world_index):
    """The session's world (`w`) and its champion ranker, and its candidate index built by the command (`idx`, the
    session's: tests/conftest.py)."""
    work = tmp_path_factory.mktemp("cli")
    (work / "w").symlink_to(world_dir, target_is_directory=True)
    (work / "idx").symlink_to(world_index, target_is_directory=True)
    return work


def flow_inputs(flow) -> list[str]:
    """`match`'s input options for the session's world: its new campaigns and its creators."""
    return [
        "--campaigns",
        str(flow / "w" / "new_campaigns.parquet"),
        "--creators",
        str(flow / "w" / "creators.parquet"),
    ]


def test_match_writes_the_contract_table(flow, capfd):
    out = flow / "out" / "matches.parquet"
    out.parent.mkdir()
    killed = out.parent / ".matches.parquet.creator-match-partial-0123456789abcdef.tmp"  # a killed write's
    killed.write_bytes(b"half a table")
    capfd.readouterr()  # from here on: what the match writes at the file descriptors, the solver's C++ included
    done = run("match", *flow_inputs(flow), "--out", str(out), "--index", str(flow / "idx"))
    assert done.returncode == 0, done.stderr
    beneath = capfd.readouterr()
    assert "HiGHS" not in done.stdout + beneath.out + beneath.err, "the solver's banner reached the console"
    matches = pd.read_parquet(out)
    assert list(matches.columns) == MATCH_COLUMNS
    assert matches["campaign_id"].nunique() >= 0.9 * len(pd.read_parquet(flow / "w" / "new_campaigns.parquet"))
    # Only the (empty) lock file that keeps two runs off this output stays beside it: the killed run's is gone.
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == [".matches.parquet.lock"]
    assert not (flow / "out" / "matches.rejects.csv").exists()
    again = flow / "out" / "again.parquet"
    assert run("match", *flow_inputs(flow), "--out", str(again), "--index", str(flow / "idx")).returncode == 0
    assert again.read_bytes() == out.read_bytes(), "a rerun must give the same bytes"


def test_match_settings_are_options_that_reach_the_slates(flow, tmp_path):
    """Slate sizes and capacity given on the command line shape the matches; a value the settings refuse is one
    line, exit 2, before any work."""
    common = [*flow_inputs(flow), "--index", str(flow / "idx")]
    out = tmp_path / "small.parquet"
    sizes = ["--standard-size", "2", "--non-standard-size", "2", "--min-size", "1", "--min-non-standard-size", "1"]
    done = run("match", *common, "--out", str(out), *sizes, "--capacity", "1", "--assignment", "greedy")
    assert done.returncode == 0, done.stderr
    matches = pd.read_parquet(out)
    assert len(matches) and matches.groupby("campaign_id").size().max() <= 2
    assert matches["creator_id"].value_counts().max() == 1
    done = run("match", *common, "--out", str(tmp_path / "bad.parquet"), "--min-market-share", "1.5")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "creator-match: Got min_market_share=1.5; expected a value in [0, 1]"
    ]
    assert not (tmp_path / "bad.parquet").exists()


def test_candidates_out_holds_every_scored_pair_and_the_slates_among_them(flow, tmp_path):
    """`--candidates-out` writes each scored pair once, best first per campaign: the slates' rows with their rank
    and score, the rest with no rank, so a reviewer sees what a creator left off a slate scored and why. The
    matches file is the same bytes as without it. A candidates path that would overwrite the matches, their
    rejects or an input, a directory, or an unknown format is refused in one line, exit 2, before any work; so are
    matches that would overwrite an input."""
    common = [*flow_inputs(flow), "--index", str(flow / "idx")]
    plain, out, pairs = tmp_path / "plain.parquet", tmp_path / "matches.parquet", tmp_path / "candidates.csv"
    assert run("match", *common, "--out", str(plain)).returncode == 0
    done = run("match", *common, "--out", str(out), "--candidates-out", str(pairs))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == plain.read_bytes()
    matches, candidates = pd.read_parquet(out), pd.read_csv(pairs, dtype={"rank": "Int64"})
    assert list(candidates.columns) == CANDIDATE_COLUMNS
    assert not candidates.duplicated(["campaign_id", "creator_id"]).any()
    assert candidates["rank"].isna().sum() > len(matches)  # most candidates are left off
    on_slates = candidates.dropna(subset=["rank"]).merge(matches, on=["campaign_id", "creator_id"], suffixes=("", "_m"))
    assert len(on_slates) == len(matches) == candidates["rank"].notna().sum()
    assert (on_slates["rank"] == on_slates["rank_m"]).all()
    pd.testing.assert_series_equal(on_slates["score"], on_slates["score_m"], check_names=False, rtol=1e-9)
    best_first = candidates.groupby("campaign_id", sort=False)["score"].apply(lambda s: s.is_monotonic_decreasing)
    assert best_first.all()
    # As JSON Lines too, the pairs off a slate with a null rank: the missing rank stopped the write with a TypeError.
    as_lines = tmp_path / "candidates.jsonl"
    done = run("match", *common, "--out", str(tmp_path / "m2.parquet"), "--candidates-out", str(as_lines))
    assert done.returncode == 0, done.stderr
    lines = pd.read_json(as_lines, lines=True, precise_float=True, dtype={"rank": "Int64"})
    # The CSV's floats to 15 significant digits (half a unit of the last at most), the JSON Lines' exact: the
    # slates' scores are the matches' to the bit.
    pd.testing.assert_frame_equal(lines, candidates, check_dtype=False, check_exact=False, rtol=5e-15, atol=0)
    exact = lines.dropna(subset=["rank"]).merge(matches, on=["campaign_id", "creator_id"], suffixes=("", "_m"))
    assert len(exact) == len(matches) and exact["score"].eq(exact["score_m"]).all()
    (tmp_path / "a-directory.parquet").mkdir()
    (tmp_path / "a-folder").mkdir()
    refused = {
        str(tmp_path / "x.parquet"): "cannot be written over the matches file",
        str(tmp_path / "x.rejects.csv"): "cannot be written over the rejects file",
        str(flow / "w" / "creators.parquet"): "cannot be written over the creators file",
        str(tmp_path / "a-directory.parquet"): "is a directory",
        str(tmp_path / "a-folder"): "is a directory",
        str(tmp_path / "pairs.txt"): "unknown output format",
    }
    for candidates_out, reason in refused.items():
        done = run("match", *common, "--out", str(tmp_path / "x.parquet"), "--candidates-out", candidates_out)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and reason in lines[0], (candidates_out, done.stderr)
        assert not (tmp_path / "x.parquet").exists()
    over_input = run("match", *common, "--out", str(flow / "w" / "creators.parquet"))
    assert over_input.returncode == 2 and "the matches cannot be written over the creators file" in over_input.stderr
    assert len(pd.read_parquet(flow / "w" / "creators.parquet")) > 0


def test_summaries_out_says_per_campaign_what_the_slate_is_and_why(flow, tmp_path):
    """`--summaries-out` writes one row per campaign of the file, in its order: what a nightly job's reader needs
    beside the matches (product type and why, slate size and why, expected commission against the budget), the
    same in Parquet and JSON Lines, and consistent with the matches written in the same run."""
    common = [*flow_inputs(flow), "--index", str(flow / "idx")]
    out, summaries = tmp_path / "matches.parquet", tmp_path / "summaries.parquet"
    done = run("match", *common, "--out", str(out), "--summaries-out", str(summaries))
    assert done.returncode == 0, done.stderr
    assert f"one summary per campaign written to {summaries}" in done.stdout
    table, matches = pd.read_parquet(summaries), pd.read_parquet(out)
    assert pq.read_schema(summaries).names == SUMMARY_SCHEMA.names
    campaigns = pd.read_parquet(flow / "w" / "new_campaigns.parquet")
    assert table["campaign_id"].tolist() == campaigns["campaign_id"].tolist()
    sizes = matches.groupby("campaign_id").size().reindex(table["campaign_id"], fill_value=0).to_numpy()
    assert (table["slate_size"].to_numpy() == sizes).all()
    assert ((table["status"] == "matched") == (sizes > 0)).all()
    typed = matches.groupby("campaign_id")["product_type"].first()
    matched = table[table["status"] == "matched"].set_index("campaign_id")
    assert (matched["product_type"] == typed.reindex(matched.index)).all()
    assert matched["size_reason"].str.len().min() > 0 and matched["product_type_reason"].str.len().min() > 0
    assert matched["product_type_probability"].between(0, 1).all()
    # The ranker held out 12 campaigns, enough for a range of each slate's orders, and commission moves with orders.
    for what in ("orders", "commission"):
        low, point, high = (matched[f"expected_{what}{end}"] for end in ("_low", "", "_high"))
        assert (low >= 0).all() and (low <= point).all() and (point < high).all(), what
    np.testing.assert_allclose(
        matched["expected_commission_high"] / matched["expected_commission"],
        matched["expected_orders_high"] / matched["expected_orders"],
    )
    as_lines = tmp_path / "summaries.jsonl"
    done = run("match", *common, "--out", str(tmp_path / "m2.parquet"), "--summaries-out", str(as_lines))
    assert done.returncode == 0, done.stderr
    # Every number as the Parquet file has it (pandas' own JSON writer kept 10 significant digits).
    lines = pd.read_json(as_lines, lines=True, precise_float=True)
    pd.testing.assert_frame_equal(lines, table, check_dtype=False, check_exact=True)
    same = str(tmp_path / "m3.parquet")
    clash = run("match", *common, "--out", same, "--summaries-out", same)
    assert clash.returncode == 2 and "the summaries cannot be written over the matches file" in clash.stderr


def test_an_output_over_the_performance_or_its_past_campaigns_is_refused_and_both_kept(flow, tmp_path):
    """The trial's runs: `--summaries-out` naming the `--performance` file, and `--out` naming the past campaigns
    read by default beside it, each replaced that input and exited 0. Now each is refused in one line naming both
    files, exit 2, before any work, and every file is kept as it was; a run with distinct outputs goes ahead."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("performance", "campaigns"):
        shutil.copy(flow / "w" / f"{name}.parquet", data)
    kept = {path.name: path.read_bytes() for path in data.iterdir()}
    performance = data / "performance.parquet"
    common = [*flow_inputs(flow), "--index", str(flow / "idx"), "--performance", str(performance)]
    for args, line in (
        (
            ["--out", str(tmp_path / "m.parquet"), "--summaries-out", str(performance)],
            f"creator-match: {performance}: the summaries cannot be written over the performance file {performance}",
        ),
        (
            ["--out", str(data / "campaigns.parquet")],
            f"creator-match: {data / 'campaigns.parquet'}: the matches cannot be written over the default "
            f"--past-campaigns file {data / 'campaigns.parquet'}",
        ),
    ):
        done = run("match", *common, *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [line]
        assert {path.name: path.read_bytes() for path in data.iterdir()} == kept
        assert not (tmp_path / "m.parquet").exists()
    done = run("match", *common, "--out", str(tmp_path / "m.parquet"), "--summaries-out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert {path.name: path.read_bytes() for path in data.iterdir()} == kept


def test_bad_rows_are_named_rejected_and_the_rest_matched(flow):
    campaigns = pd.read_parquet(flow / "w" / "new_campaigns.parquet")
    campaigns["asins"] = campaigns["asins"].map(lambda a: "|".join(a))
    campaigns["marketplaces"] = campaigns["marketplaces"].map(lambda a: "|".join(a))
    campaigns.loc[2, "commission_rate"] = 1.7
    campaigns.loc[4, "end_date"] = pd.Timestamp("2020-01-01").date()
    bad = flow / "bad.csv"
    campaigns.to_csv(bad, index=False)
    out = flow / "bad-out" / "matches.csv"
    done = run_process(
        "match",
        "--campaigns",
        str(bad),
        "--creators",
        str(flow / "w" / "creators.parquet"),
        "--out",
        str(out),
        "--index",
        str(flow / "idx"),
    )
    assert done.returncode == 2
    bad_ids = campaigns["campaign_id"].iloc[[2, 4]].tolist()
    assert f"campaigns row 3 (id {bad_ids[0]}): column commission_rate" in done.stderr
    assert f"campaigns row 5 (id {bad_ids[1]}): column end_date" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("2 rows rejected; see ")
    assert "Traceback" not in done.stderr
    rejects = pd.read_csv(out.with_name("matches.rejects.csv"))
    assert list(rejects.columns) == ["table", "row", "id", "column", "reason", "output"]
    assert set(rejects["id"]) == set(bad_ids) and set(rejects["output"]) == {"matches.csv"}
    matched = set(pd.read_csv(out)["campaign_id"])
    assert not matched & set(bad_ids)
    assert len(matched) >= len(campaigns) - 2 - 2  # out-of-stock campaigns may be summarised instead


def with_bad_creator_rows(world: Path, folder: Path) -> Path:
    """A copy of the world's tables whose creators table has two bad rows (negative followers): a data directory
    for `train`, and a creators file for `index` and `match`."""
    shutil.copytree(world, folder, ignore=shutil.ignore_patterns("creators.parquet"))
    creators = pq.read_table(world / "creators.parquet")
    followers = creators.column("followers").to_pylist()
    followers[1], followers[4] = -5, -6
    column = creators.schema.get_field_index("followers")
    typed = pa.array(followers, type=creators.schema.field("followers").type)
    pq.write_table(creators.set_column(column, "followers", typed), folder / "creators.parquet")
    return folder


@pytest.mark.parametrize("command", ["train", "index", "match"])
def test_rejected_rows_are_named_once_as_soon_as_the_tables_are_read_before_the_work_that_may_fail(
    flow, tmp_path, command
):
    """A new-user trial: `train` named its 7 bad rows only after 6 minutes of training, and a run that then failed
    never named them. Each command names them as soon as its tables are read, once: here the work after that fails
    at once (an embedding model or ranker that is not there), and the rows are named before its one-line refusal."""
    data = with_bad_creator_rows(flow / "w", tmp_path / "data")
    creators = str(data / "creators.parquet")
    args = {
        "train": ["train", "--data", str(data), "--embedding-model", "no-such-model"],
        "index": ["index", "--creators", creators, "--out", str(tmp_path / "idx"), "--embedding-model", "nope"],
        "match": [
            "match", "--campaigns", str(data / "new_campaigns.parquet"), "--creators", creators,
            "--index", str(flow / "idx"), "--out", str(tmp_path / "m.parquet"), "--model", str(tmp_path / "nope"),
        ],
    }[command]  # fmt: skip
    done = run(*args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    ids = pd.read_parquet(data / "creators.parquet")["creator_id"]
    assert done.returncode == 2, done.stderr
    named = [line for line in lines if line.startswith("creators row ")]
    assert [line.split(":")[0] for line in named] == [f"creators row 2 (id {ids[1]})", f"creators row 5 (id {ids[4]})"]
    assert lines[-1].startswith("creator-match: ") and "nope" in lines[-1].replace("no-such-model", "nope"), lines
    assert lines.index(named[-1]) < len(lines) - 1, "named before the refusal, which ends the output"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["match", "--campaigns", "nope.parquet", "--creators", "nope.parquet", "--out", "m.parquet"],
            "no such file",
        ),
        (
            ["match", "--campaigns", "c.txt", "--creators", "c.txt", "--out", "m.parquet"],
            "unknown table format",
        ),
        (["train", "--data", "no-such-dir"], "no such directory"),
        (
            ["train", "--data", "no-such-dir", "--members", "0"],
            "Invalid value for '--members': Input should be greater than or equal to 1 (got '0')",
        ),
        (
            ["train", "--data", "no-such-dir", "--max-features", "1.5"],
            "Invalid value for '--max-features': Input should be less than or equal to 1 (got '1.5')",
        ),
        (
            ["train", "--data", "no-such-dir", "--threads", "0"],
            "Invalid value for '--threads': Input should be greater than or equal to 1 (got '0')",
        ),
        (["match", "--bogus"], "No such option"),
        (["promote", "--model-name", "creator-ranker", "--version", "99"], "cannot promote"),
        # MLflow's own "Parameter 'version' must be an integer" was passed on.
        (["promote", "--version", "abc"], "Got --version 'abc'; expected a version number (1, 2, ...)"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(flow, tmp_path, args, message):
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "m.parquet").exists()


def test_a_table_in_two_formats_is_refused_in_one_line_naming_both(flow, tmp_path):
    """An updated CSV dropped beside the old Parquet of the same table: `train` (its data directory) and `match`
    (the campaigns beside --performance) refuse, exit 2, in one line naming both files; neither picks one."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("creators", "campaigns", "performance"):
        shutil.copy(flow / "w" / f"{name}.parquet", data)
    pd.read_parquet(data / "creators.parquet").to_csv(data / "creators.csv", index=False)
    pd.read_parquet(data / "campaigns.parquet").to_csv(data / "campaigns.csv", index=False)

    done = run("train", "--data", str(data), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"creator-match: {data}: both creators.parquet and creators.csv; keep one of them"
    ]

    out = tmp_path / "m.parquet"
    done = run("match", *flow_inputs(flow), "--out", str(out), "--performance", str(data / "performance.parquet"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"creator-match: {data}: both campaigns.parquet and campaigns.csv; keep one of them"
    ]
    assert not out.exists()
    assert sorted(path.name for path in data.iterdir()) == [
        "campaigns.csv",
        "campaigns.parquet",
        "creators.csv",
        "creators.parquet",
        "performance.parquet",
    ]


def test_unresolvable_model_and_mismatched_index_are_refused(flow, tmp_path):
    common = [*flow_inputs(flow), "--out", str(tmp_path / "m.parquet")]
    done = run("match", *common, "--model", "models:/nobody@champion")
    assert done.returncode == 2 and "models:/nobody@champion" in done.stderr and "Traceback" not in done.stderr
    idx = tmp_path / "idx"
    shutil.copytree(flow / "idx", idx)
    meta = (idx / "meta.json").read_text().replace("all-MiniLM-L6-v2", "another-model")
    (idx / "meta.json").write_text(meta)
    done = run("match", *common, "--index", str(idx))
    assert done.returncode == 2 and "another-model" in done.stderr and "all-MiniLM-L6-v2" in done.stderr
    assert not (tmp_path / "m.parquet").exists()


def test_a_damaged_index_is_refused_in_one_line_naming_it_and_what_is_wrong(flow, tmp_path):
    """An index whose files cannot be read or disagree (a copy cut short, the ids of another build) gave exit 1
    with faiss's RuntimeError, or numpy's "allowed mask of shape (159,)" from deep inside a search. Now `match` and
    `similar` refuse it when it is loaded: one line naming the directory and what is wrong, exit 2, nothing written.

    The line's fix works when followed. Every message said "rebuild it with `creator-match index`", but `index
    --out` refuses a directory whose meta.json does not describe an index (so that it never deletes another tool's
    files): for those the message says to move it away, and `index` indeed refuses it; the others are rebuilt in
    place by `index`, after which `match` reads them.
    """
    out = tmp_path / "m.parquet"
    truncated, short_ids = tmp_path / "truncated", tmp_path / "short-ids"
    cut_meta, no_model = tmp_path / "cut-meta", tmp_path / "no-model"
    for copy in (truncated, short_ids, cut_meta, no_model):
        shutil.copytree(flow / "idx", copy)
    faiss_file = truncated / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])
    ids = pq.read_table(short_ids / "creator_ids.parquet")
    pq.write_table(ids.slice(0, 159), short_ids / "creator_ids.parquet")
    (cut_meta / "meta.json").write_text((cut_meta / "meta.json").read_text()[:-20])
    meta = json.loads((no_model / "meta.json").read_text())
    (no_model / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "embedding_model"}))
    rebuild = "; rebuild it with `creator-match index`"
    move = (
        "; `creator-match index` will not replace it, as it is not a candidate index (no meta.json describing one): "
        "move it away (or give another --out) and rebuild it with `creator-match index`"
    )
    cases = {
        truncated: ("index.faiss (", rebuild),
        short_ids: (f"creator_ids.parquet holds 159 creator ids for the {len(ids)} vectors of index.faiss", rebuild),
        cut_meta: ("meta.json cannot be read", move),
        no_model: ("meta.json does not name the embedding model and dimension", move),
    }
    for index, (wrong, fix) in cases.items():
        done = run("match", *flow_inputs(flow), "--out", str(out), "--index", str(index))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (index, done.stderr)
        assert lines[0].startswith(f"creator-match: index {index} is damaged: {wrong}"), lines[0]
        assert lines[0].endswith(fix), lines[0]
        assert not out.exists() and not (tmp_path / ".m.parquet.lock").exists()
    like = ["--creators", str(flow / "w" / "creators.parquet"), "--like", ids.column("creator_id")[0].as_py()]
    done = run("similar", *like, "--index", str(short_ids), "--out", str(tmp_path / "l.csv"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"creator-match: index {short_ids} is damaged: {cases[short_ids][0]}{rebuild}"
    ]

    # Following each message: the ones `index` may replace are rebuilt where they are and then match...
    creators = str(flow / "w" / "creators.parquet")
    for index in (truncated, short_ids):
        done = run("index", "--creators", creators, "--out", str(index))
        assert done.returncode == 0, (index, done.stderr)
        matched = tmp_path / f"{index.name}.parquet"
        done = run("match", *flow_inputs(flow), "--out", str(matched), "--index", str(index))
        assert done.returncode == 0 and matched.exists(), (index, done.stderr)
    # ...and the ones it may not are refused, left as they were (which is why the message says to move them away).
    for index in (cut_meta, no_model):
        before = {path.name: path.read_bytes() for path in index.iterdir()}
        done = run("index", "--creators", creators, "--out", str(index))
        assert done.returncode == 2 and f"refusing to replace {index}" in done.stderr, (index, done.stderr)
        assert {path.name: path.read_bytes() for path in index.iterdir()} == before
    cut_meta.rename(tmp_path / "moved-away")
    assert run("index", "--creators", creators, "--out", str(cut_meta)).returncode == 0


def test_an_index_on_the_other_embedding_backend_is_refused_in_one_line(flow, tmp_path, monkeypatch):
    """The ranker records the backend it was trained on: an index built on the other one, or a match told to
    use it, exits 2 with one line naming both and the fix; an unknown backend in the environment is refused."""
    from features.embeddings import resolve_backend

    used = resolve_backend()
    other = "torch" if used == "onnx" else "onnx"
    creators = str(flow / "w" / "creators.parquet")
    # An index of a few of the creators: it is refused for its backend when loaded, before its rows are read.
    few = tmp_path / "few.parquet"
    pq.write_table(pq.read_table(creators).slice(0, 20), few)
    done = run("index", "--creators", str(few), "--out", str(tmp_path / "idx"), "--embedding-backend", other)
    assert done.returncode == 0 and f"on {other}" in done.stdout, done.stderr
    common = [*flow_inputs(flow), "--out", str(tmp_path / "m.parquet")]

    done = run("match", *common, "--index", str(tmp_path / "idx"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"'{other}'" in lines[0] and f"--embedding-backend {used}" in lines[0]
    done = run("match", *common, "--index", str(flow / "idx"), "--embedding-backend", other)
    assert done.returncode == 2 and f"on {other}" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.setenv(EMBEDDING_BACKEND_ENV, "tensorflow")
    done = run("index", "--creators", creators, "--out", str(tmp_path / "idx2"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "creator-match: Got embedding backend 'tensorflow'; expected one of torch, onnx"
    ]
    assert not (tmp_path / "m.parquet").exists() and not (tmp_path / "idx2").exists()


def test_help_and_a_usage_error_load_none_of_the_work_libraries():
    """`--help` and a mistyped option answer without loading pandas, scikit-learn, MLflow, ONNX Runtime or torch:
    in a fresh process, since this one has them all loaded."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys; from matcher.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    codes = main(['--help']), main(['match', '--no-such-option'])\n"
        "heavy = ('pandas', 'sklearn', 'mlflow', 'onnxruntime', 'torch', 'sentence_transformers', 'ray')\n"
        "print(*codes, *sorted(name for name in heavy if name in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "2"]


def test_index_and_similar_write_their_rejects_beside_the_output(flow, tmp_path):
    """Like match, the commands with an output put the invalid rows in `<out stem>.rejects.csv` beside it (exit 2,
    the valid rows used), and a clean rerun removes that file."""
    table = pq.read_table(flow / "w" / "creators.parquet").slice(0, 30)
    bad = table.slice(0, 2)
    for name, values in (("creator_id", ["bad-1", "bad-2"]), ("followers", [-5, -6])):
        column = bad.schema.get_field_index(name)
        bad = bad.set_column(column, name, pa.array(values, type=bad.schema.field(name).type))
    pq.write_table(pa.concat_tables([table, bad]), tmp_path / "creators.parquet")
    creators = table.to_pandas()
    index = run("index", "--creators", str(tmp_path / "creators.parquet"), "--out", str(tmp_path / "idx"))
    assert index.returncode == 2 and f"2 rows rejected; see {tmp_path / 'idx.rejects.csv'}" in index.stderr
    assert pd.read_csv(tmp_path / "idx.rejects.csv")["id"].tolist() == ["bad-1", "bad-2"]
    assert "indexed 30 creators" in index.stdout

    like = [*("--creators", str(tmp_path / "creators.parquet"), "--index", str(tmp_path / "idx"))]
    like += ["--like", creators.at[0, "creator_id"], "--k", "3", "--out", str(tmp_path / "like.csv")]
    found = run("similar", *like)
    assert found.returncode == 2 and "2 rows rejected; see" in found.stderr
    assert pd.read_csv(tmp_path / "like.rejects.csv")["column"].tolist() == ["followers", "followers"]
    assert len(pd.read_csv(tmp_path / "like.csv")) == 3

    pq.write_table(table, tmp_path / "creators.parquet")
    again = run("index", "--creators", str(tmp_path / "creators.parquet"), "--out", str(tmp_path / "idx"))
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "idx.rejects.csv").exists(), "a clean rerun leaves no old rejects beside the index"


def test_serve_on_a_port_another_process_holds_is_one_line_exit_2_before_anything_loads(tmp_path):
    """A trial's `serve` on a busy port printed "serving on ..." and exited 3 once everything had loaded."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # No creators file there: the address is checked before anything is read.
        done = run("serve", "--creators", str(tmp_path / "creators.parquet"), "--port", str(port))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"creator-match: cannot listen on 127.0.0.1:{port}: Address already in use; stop what holds it, or choose "
        "another --port"
    ], done.stderr


def test_serve_on_an_address_not_of_this_machine_says_to_choose_another_host(tmp_path):
    """A trial's `--host 10.255.255.1` was told to stop what holds the port, or choose another --port."""
    # 192.0.2.1 is reserved for documentation (RFC 5737): no machine's own address.
    done = run("serve", "--creators", str(tmp_path / "creators.parquet"), "--host", "192.0.2.1", "--port", "8000")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "creator-match: cannot listen on 192.0.2.1:8000: Cannot assign requested address; 192.0.2.1 is not an "
        "address of this machine: choose another --host (127.0.0.1, or 0.0.0.0 for all)"
    ], done.stderr


def test_similar_help_says_the_market_share_is_of_the_asked_marketplaces_and_its_minimum():
    """A trial read `similar --help`: --min-market-share spoke of "the campaign's marketplaces", which lookalikes
    have none of, and --marketplace left out the minimum share it filters on (docs/cli.md states both)."""
    import typer

    from matcher.cli import app

    helps = {p.name: p.help for p in typer.main.get_command(app).commands["similar"].params}
    assert "asked --marketplace codes" in helps["min_market_share"]
    assert "campaign" not in helps["min_market_share"]
    assert "at least --min-market-share (5% by default)" in helps["marketplace"]
    match = {p.name: p.help for p in typer.main.get_command(app).commands["match"].params}
    assert "the campaign's marketplaces" in match["min_market_share"]


def _takes_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM now (Linux: the caught-signals mask in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the caught signals from /proc")
@pytest.mark.parametrize("after", [0.0, 0.5], ids=["as-soon-as-it-can", "half-a-second-in"])
@pytest.mark.parametrize("command", ["match", "index"])
def test_sigterm_in_the_first_moments_of_a_command_is_exit_143_one_line_and_nothing_written(
    world_dir, tmp_path, command, after
):
    """A scheduler's SIGTERM while the command still loads its libraries (before any model or index is read) ends
    it with status 143 and one line saying it was stopped, and leaves no output, lock or folder: it killed the
    process silently (-15) until the handler came after the model load. Sent as soon as the process takes the
    signal (the first lines of `main`), or half a second in, whichever is later."""
    import subprocess
    import time

    out = tmp_path / "out"
    if command == "match":
        args = match_args(world_dir, out / "m.parquet")
        line = "creator-match: match stopped by SIGTERM before it went ahead; nothing was written"
    else:
        args = [CLI, "index", "--creators", str(world_dir / "creators.parquet"), "--out", str(out / "index")]
        line = "creator-match: index stopped by SIGTERM"
    started = time.monotonic()
    job = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        while not _takes_sigterm(job.pid) or time.monotonic() < started + after:
            assert job.poll() is None, f"the command ended (status {job.returncode}) before it took SIGTERM"
            time.sleep(0.005)
        job.send_signal(signal.SIGTERM)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 143, stderr
    assert stderr.splitlines() == [line]
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []  # not even the folder above --out


# Where the command's libraries lose the SystemExit of a SIGTERM taken while they load (the handler runs at whatever
# code is running): Cython's modules register their memoryview types inside `try: ... except: pass`, and importlib
# frees each module's lock in a weakref callback, whose exceptions Python only reports. `raise_signal` runs the
# handler before it returns, so the signal is taken exactly there.
_EXIT_LOST_IN_A_BARE_EXCEPT = "    try:\n        signal.raise_signal(signal.SIGTERM)\n    except:\n        pass\n"
_EXIT_LOST_IN_A_WEAKREF_CALLBACK = (
    "    class Lock:\n"
    "        pass\n"
    "    lock = Lock()\n"
    "    freed = weakref.ref(lock, lambda ref: signal.raise_signal(signal.SIGTERM))\n"
    "    del lock\n"
)


def test_sigterm_whose_exit_a_library_lost_still_stops_the_command_as_143_one_line_nothing_written(world_dir, tmp_path):
    """A SIGTERM half a second into a match once ended in exit 0 and a full run: its SystemExit was raised where a
    library swallowed it. The signal is remembered and its exit raised again before the run goes ahead.

    One command takes it both ways, one after the other (each a process's imports): in a bare `except`, which
    drops it silently (without the memory of it, the command would run and exit 0), then in a weakref callback,
    which Python reports (without the command's own hook, a traceback would stand beside its one line)."""
    import subprocess

    child = (
        "import signal, sys, weakref\n"
        "import matcher.cli as cli\n"
        "quiet = cli._quiet_libraries\n"
        "def taken_where_its_exit_is_lost():\n"  # in `main`'s block, before the commands' libraries load
        "    quiet()\n"
        f"{_EXIT_LOST_IN_A_BARE_EXCEPT}"
        f"{_EXIT_LOST_IN_A_WEAKREF_CALLBACK}"
        "cli._quiet_libraries = taken_where_its_exit_is_lost\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    args = match_args(world_dir, tmp_path / "out" / "m.parquet")[1:]
    done = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=dict(os.environ), timeout=600
    )
    assert done.returncode == 143, done.stderr[-500:]
    assert done.stderr.splitlines() == [
        "creator-match: match stopped by SIGTERM before it went ahead; nothing was written"
    ]
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_sigterm_once_the_outputs_are_written_says_they_are_complete(flow):
    """A SIGTERM in the moment between the run's last write and its report lines leaves whole outputs: the line
    says so (and how to check), not "nothing was written". The signal is sent by the command's own process as its
    report begins, the one moment a scheduler's signal cannot be timed to from outside."""
    import subprocess

    out = flow / "late-sigterm" / "matches.parquet"
    child = (
        "import os, signal, sys\n"
        "import matcher.commands.match as command\n"
        "report = command._echo_report\n"
        "def stopped_first(*args):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    report(*args)\n"
        "command._echo_report = stopped_first\n"
        "from matcher.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["match", *flow_inputs(flow), "--out", str(out), "--index", str(flow / "idx")]
    done = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=dict(os.environ), timeout=600
    )
    assert done.returncode == 143, done.stderr[-500:]
    assert done.stderr.strip().splitlines()[-1] == (
        "creator-match: match stopped by SIGTERM after its outputs were written; they are complete "
        f"(`creator-match verify --out {out}` checks them)"
    )
    assert "nothing was written" not in done.stderr
    assert run("verify", "--out", str(out)).returncode == 0
