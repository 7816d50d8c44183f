"""Whole input files and the rejects file: a file missing a required column is refused in one line, a malformed
CSV line is one reject among valid rows, and a user's own file where the rejects would go is never replaced.

The commands are called through `creator-match`'s own `main` (tests/commands.py) on real files: a file refused
as a whole stops the run before any model is loaded; the runs that get further use the session's ranker.
"""

from __future__ import annotations

import contextlib
import csv
import json
import threading
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.safe_write import OutputRefused
from features.tables import (
    REJECTS_COLUMNS,
    InputError,
    Reject,
    check_rejects_path,
    read_table,
    rejects_path,
    rejects_turn,
    settle_rejects,
    write_rejects,
)
from matcher.schema import MATCH_SCHEMA
from matcher.similar import LOOKALIKE_SCHEMA
from tests.commands import held_by_another_process, run_in_process
from tests.real_fixtures import FIXTURES

CAMPAIGN = {
    "campaign_id": "c1",
    "brand": "Lumora",
    "brief": "A hydrating serum for dry skin; looking for skincare creators.",
    "category": "beauty",
    "asins": "B0ABCDEFGH|B012345678",
    "price": "24.5",
    "commission_rate": "0.15",
    "budget": "500",
    "start_date": "2026-01-01",
    "end_date": "2026-02-01",
    "marketplaces": "US|CA",
}
CREATOR = {
    "creator_id": "u1",
    "handle": "@glow",
    "creator_type": "social_creator",
    "platforms": "instagram|tiktok",
    "interest_tags": "skincare|k-beauty",
    "followers": "12000",
}
NO_MODEL = "models:/no-such-ranker@champion"  # never loaded: each run below stops before the model


def write_csv(path, rows: list[dict], header: list[str] | None = None) -> None:
    header = header or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([row.get(name, "") for name in header] for row in rows)


def write_table(path: Path, rows: list[dict]) -> None:
    """`rows` (text values) as a table file in the format its suffix names."""
    if path.suffix == ".csv":
        write_csv(path, rows)
    elif path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def campaigns_rows(n: int) -> list[dict]:
    return [CAMPAIGN | {"campaign_id": f"c{i}"} for i in range(1, n + 1)]


def creators_rows(n: int) -> list[dict]:
    return [CREATOR | {"creator_id": f"u{i}"} for i in range(1, n + 1)]


def match(tmp_path, campaigns, creators, out) -> tuple[int, list[str]]:
    done = run_in_process(
        "match",
        "--campaigns",
        str(campaigns),
        "--creators",
        str(creators),
        "--out",
        str(out),
        "--model",
        NO_MODEL,
        cwd=tmp_path,
    )
    return done.returncode, done.stderr.strip().splitlines()


# --- 1. a required column absent from the whole file -------------------------------------------------------------


def test_match_with_a_campaigns_file_without_a_required_column_is_one_line_exit_2_and_writes_nothing(
    tmp_path, tracking_uri
):
    """No row of a file without `budget` can be valid: the file is refused in one line, not rejected row by row."""
    campaigns, creators, out = tmp_path / "camps.csv", tmp_path / "creators.csv", tmp_path / "out" / "m.csv"
    write_csv(campaigns, campaigns_rows(5), header=[name for name in CAMPAIGN if name != "budget"])
    write_csv(creators, creators_rows(3))

    code, lines = match(tmp_path, campaigns, creators, out)

    assert code == 2
    assert len(lines) == 1, lines
    assert str(campaigns) in lines[0] and "budget" in lines[0] and "campaigns" in lines[0]
    assert not out.parent.exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_read_table_names_every_required_column_the_file_lacks(tmp_path, fmt):
    rows = [{k: v for k, v in row.items() if k not in {"followers", "platforms"}} for row in creators_rows(3)]
    path = tmp_path / f"creators.{fmt}"
    if fmt == "csv":
        write_csv(path, rows)
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    with pytest.raises(InputError) as raised:
        read_table(path, "creators")

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert "platforms" in message and "followers" in message and "creators" in message
    assert "creator_id" not in message  # present columns are not named


def test_a_header_almost_right_is_refused_with_what_it_got_wrong(tmp_path):
    """A spreadsheet's header with a capital or a space inside a name, or a file separated by semicolons: the
    refusal said only which columns were missing. Spaces around a name are no fault (`creator_id `)."""
    rows = creators_rows(2)
    spaced = tmp_path / "spaced.csv"
    write_csv(spaced, rows)
    spaced.write_text(
        spaced.read_text()
        .replace("creator_id,", "creator_id ,", 1)
        .replace(",followers", ",Followers", 1)
        .replace(",creator_type", ",creator type", 1)
    )
    with pytest.raises(InputError) as refused:
        read_table(spaced, "creators")
    assert str(refused.value) == (
        f"{spaced}: no creator_type, followers columns, required in the creators table; nothing was read (found "
        "'creator type' for creator_type, 'Followers' for followers: column names are exact, lower case and "
        "without spaces)"
    )
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("creator_id;creator_type;platforms;interest_tags;followers\nu1;blog;website;diy;10\n")
    with pytest.raises(InputError, match="its header is one column: fields separated by ';' or tabs; expected commas"):
        read_table(semicolons, "creators")


def test_a_csv_that_opens_with_comment_lines_is_refused_saying_so():
    """A new-seller trial handed `creator-match index` the repository's real creators file as it is, whose source
    notes are `#` lines above the header: the refusal named five missing columns and not the comment it had read
    as the header."""
    path = FIXTURES / "real_creators_2.csv"
    with pytest.raises(InputError) as refused:
        read_table(path, "creators")
    assert str(refused.value).endswith(
        "(its first line, '# Real Instagram creator profiles with fine interest cat..., is a comment: the header "
        "must be the first line; remove the lines above it)"
    )


def test_a_header_only_csv_without_a_required_column_is_refused_too(tmp_path):
    path = tmp_path / "camps.csv"
    path.write_text(",".join(name for name in CAMPAIGN if name != "price") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="price"):
        read_table(path, "campaigns")


def test_match_with_a_column_named_twice_is_refused_in_one_line_before_any_model(tmp_path, tracking_uri):
    """A second `price` was read as `price.1` and ignored, exit 0: which of the two the seller meant is a guess."""
    campaigns, creators, out = tmp_path / "camps.csv", tmp_path / "creators.csv", tmp_path / "out" / "m.csv"
    write_csv(campaigns, campaigns_rows(2), header=[*CAMPAIGN, "price"])
    write_csv(creators, creators_rows(3))

    code, lines = match(tmp_path, campaigns, creators, out)

    assert code == 2
    assert lines == [
        f"creator-match: {campaigns}: 2 'price' columns, where the campaigns table reads one: which holds its "
        "values is unclear; nothing was read"
    ]
    assert not out.parent.exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_column_named_twice_once_spaces_around_it_are_dropped_is_refused_naming_both(tmp_path, fmt):
    """Names are read without the spaces around them: `price` and `price ` are then one name, and which holds
    the price is a guess. A team's own `notes` and ` notes` are kept as written."""
    row = CAMPAIGN | {"price ": "99", "notes": "a", " notes": "b"}
    path = tmp_path / f"camps.{fmt}"
    write_table(path, [row])

    with pytest.raises(InputError) as refused:
        read_table(path, "campaigns")

    assert str(refused.value) == (
        f"{path}: 2 'price' columns ('price' and 'price '), where the campaigns table reads one: which holds its "
        "values is unclear; nothing was read"
    )
    del row["price "]
    write_table(path, [row])
    assert read_table(path, "campaigns").frame.loc[0, ["price", "notes", " notes"]].tolist() == [24.5, "a", "b"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_naming_a_column_the_table_reads_twice_is_refused_naming_each(tmp_path, fmt):
    """A second `in_stock` saying False was ignored; a blank first `budget` before the filled one rejected every
    row as missing its budget. Either order, every format: the file is refused, naming the columns."""
    header = [*(name for name in CAMPAIGN if name != "budget"), "budget", "in_stock", "budget", "in_stock"]
    values = [*(CAMPAIGN[name] for name in header[:-4]), "", "true", "500", "false"]
    path = tmp_path / f"camps.{fmt}"
    if fmt == "csv":
        path.write_text(",".join(header) + "\n" + ",".join(values) + "\n", encoding="utf-8")
    else:
        pq.write_table(pa.table([pa.array([value]) for value in values], names=header), path)

    with pytest.raises(InputError) as refused:
        read_table(path, "campaigns")

    assert str(refused.value) == (
        f"{path}: 2 'budget' columns and 2 'in_stock' columns, where the campaigns table reads one: which holds its "
        "values is unclear; nothing was read"
    )


def test_a_teams_own_column_named_twice_or_named_like_a_renamed_one_is_read_as_before(tmp_path):
    """Only the columns the table reads make a repeat ambiguous: a team's `notes` twice harms nothing, and its
    own `price.1` is no second `price` (pandas' name for one, which the header itself tells apart)."""
    path = tmp_path / "camps.csv"
    header = [*CAMPAIGN, "price.1", "notes", "notes"]
    path.write_text(",".join(header) + "\n" + ",".join([*CAMPAIGN.values(), "99", "a", "b"]) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.rejects == []
    assert result.frame.loc[0, ["price", "price.1", "notes", "notes.1"]].tolist() == [24.5, "99", "a", "b"]


def test_absent_optional_columns_are_accepted_and_empty_required_cells_still_reject_their_row(tmp_path):
    """`product_type` and `in_stock` have defaults, so a file without them is fine; an empty `budget` cell in a
    file that has the column is that row's reject, as before."""
    path = tmp_path / "camps.csv"
    rows = campaigns_rows(3)
    rows[1]["budget"] = ""
    write_csv(path, rows)

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1", "c3"]
    assert result.frame["product_type"].tolist() == ["auto", "auto"]
    assert result.frame["in_stock"].tolist() == [True, True]
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (2, "c2", "budget", "required value is missing")
    ]


def test_yes_no_cells_padded_with_spaces_are_read_as_numbers_are(tmp_path):
    """A price written ' 10.79 ' was read, but an in_stock or accepts_campaigns written ' false' or 'False '
    rejected its row."""
    campaigns, creators = tmp_path / "camps.csv", tmp_path / "creators.csv"
    flags = [" false", "False ", " TRUE ", "\tno"]
    write_csv(
        campaigns,
        [row | {"in_stock": flag, "price": " 10.79 "} for row, flag in zip(campaigns_rows(4), flags, strict=True)],
    )
    write_csv(creators, [row | {"accepts_campaigns": flag} for row, flag in zip(creators_rows(4), flags, strict=True)])

    read = read_table(campaigns, "campaigns"), read_table(creators, "creators")

    assert [table.rejects for table in read] == [[], []]
    assert read[0].frame["in_stock"].tolist() == [False, False, True, False]
    assert read[0].frame["price"].tolist() == [10.79] * 4
    assert read[1].frame["accepts_campaigns"].tolist() == [False, False, True, False]


def test_vocabulary_words_in_another_case_or_with_spaces_are_read_as_the_contracts_word(tmp_path):
    """`Instagram`, `Standard`, `Settled` and `review_site ` rejected their rows, as a price written ' 10.79 '
    did not; each is read, and the contract's word kept."""
    creators, campaigns, performance = tmp_path / "creators.csv", tmp_path / "camps.csv", tmp_path / "perf.csv"
    write_csv(creators, [CREATOR | {"creator_type": "review_site ", "platforms": "Instagram| TikTok"}])
    write_csv(campaigns, [CAMPAIGN | {"product_type": "Standard"}, CAMPAIGN | {"campaign_id": "c2"}])
    write_csv(
        performance,
        [
            {
                "campaign_id": "c1",
                "creator_id": "u1",
                "impressions": "10",
                "clicks": "2",
                "orders": "1",
                "sales": "9.5",
                "status": " Settled",
            }
        ],
    )

    read = [
        read_table(path, table)
        for path, table in ((creators, "creators"), (campaigns, "campaigns"), (performance, "performance"))
    ]

    assert [table.rejects for table in read] == [[], [], []]
    assert read[0].frame.loc[0, ["creator_type", "platforms"]].tolist() == ["review_site", ["instagram", "tiktok"]]
    assert read[1].frame["product_type"].tolist() == ["standard", "auto"]
    assert read[2].frame["status"].tolist() == ["settled"]


def test_whole_counts_in_scientific_notation_are_read_and_fractional_ones_still_refused(tmp_path):
    """A spreadsheet exports a large count as 1.23E+05: it was refused while 90998.0 was read."""
    path = tmp_path / "creators.csv"
    counts = [("1.23E+05", "7.7e2"), ("90998.0", " 1e1 "), ("1.5e0", "12")]
    write_csv(
        path, [row | {"followers": f, "avg_views": v} for row, (f, v) in zip(creators_rows(3), counts, strict=True)]
    )

    result = read_table(path, "creators")

    assert result.frame[["followers", "avg_views"]].values.tolist() == [[123000, 770], [90998, 10]]
    assert [(r.row, r.column, r.reason) for r in result.rejects] == [
        (3, "followers", "got '1.5e0'; input should be a valid integer, unable to parse string as an integer")
    ]


def test_a_share_written_as_a_percentage_is_refused_with_the_fraction_it_probably_means(tmp_path):
    """`15` was refused with "written as a percentage? write 0.15", and `15%` with no hint at all. Neither is
    read as 0.15: which was meant is the seller's to say. A price is no share: `15%` there gets no such advice."""
    campaigns, creators = tmp_path / "camps.csv", tmp_path / "creators.csv"
    write_csv(campaigns, [CAMPAIGN | {"commission_rate": " 15% "}, CAMPAIGN | {"campaign_id": "c2", "price": "15%"}])
    write_csv(creators, [CREATOR | {"audience_mobile_share": "62%", "audience_marketplaces": '{"US": "0.5%"}'}])

    read = read_table(campaigns, "campaigns"), read_table(creators, "creators")

    unparsed = "input should be a valid number, unable to parse string as a number"
    assert [(r.column, r.reason) for table in read for r in table.rejects] == [
        ("commission_rate", f"got ' 15% '; {unparsed} (written as a percentage? write 0.15 for 15%)"),
        ("price", f"got '15%'; {unparsed}"),
        ("audience_marketplaces", f"['US']: got '0.5%'; {unparsed} (written as a percentage? write 0.005 for 0.5%)"),
        ("audience_mobile_share", f"got '62%'; {unparsed} (written as a percentage? write 0.62 for 62%)"),
    ]


def test_a_number_written_with_commas_is_refused_with_what_it_is_without_them(tmp_path):
    """`1,299.00` was only "unable to parse string as a number", where `15%` got a hint. It is not read: a comma
    groups thousands in some locales and is the decimal point in others, so `12,000` is given both readings (a
    count only the one), and a mere separator or a word gets no hint."""
    campaigns, creators = tmp_path / "camps.csv", tmp_path / "creators.csv"
    rows = campaigns_rows(4)
    rows[0] |= {"price": " 1,299.00 "}
    rows[1] |= {"budget": "12,000"}
    rows[2] |= {"price": "12,99"}
    rows[3] |= {"price": "1,2,3"}
    write_csv(campaigns, rows)
    write_csv(creators, [CREATOR | {"followers": "1,234", "avg_views": "-1,234,567"}])

    read = read_table(campaigns, "campaigns"), read_table(creators, "creators")

    number = "input should be a valid number, unable to parse string as a number"
    integer = "input should be a valid integer, unable to parse string as an integer"
    assert [(r.column, r.reason) for table in read for r in table.rejects] == [
        (
            "price",
            f"got ' 1,299.00 '; {number} (a thousands separator? write 1299.00 for 1,299.00: numbers are "
            "written without one)",
        ),
        (
            "budget",
            f"got '12,000'; {number} (a thousands separator or a decimal comma? write 12000 or 12.000 for 12,000)",
        ),
        ("price", f"got '12,99'; {number} (a decimal comma? write 12.99 for 12,99: numbers take a decimal point)"),
        ("price", f"got '1,2,3'; {number}"),
        (
            "avg_views",
            f"got '-1,234,567'; {integer} (a thousands separator? write -1234567 for -1,234,567: numbers "
            "are written without one)",
        ),
        (
            "followers",
            f"got '1,234'; {integer} (a thousands separator? write 1234 for 1,234: numbers are written without one)",
        ),
    ]


def test_an_amount_written_with_its_currency_is_refused_with_what_it_is_without_it(tmp_path):
    """A price copied from a listing, `$39.99`, `€12.99` or `12.99 USD`, was only "unable to parse string as a
    number". It is still refused (the currency is the seller's to check), now with the plain number when there is
    one; a word gets no hint."""
    path = tmp_path / "camps.csv"
    rows = campaigns_rows(7)
    rows[0] |= {"price": "$39.99"}
    rows[1] |= {"price": "€ 12.99"}
    rows[2] |= {"price": "12.99 USD"}
    rows[3] |= {"budget": "$1,500"}
    rows[4] |= {"budget": "lots"}
    # amazon.in lists prices as `₹999`, and Indian sheets write `Rs. 999` or `Rs 999` (a new-seller trial's
    # `Rs. 1,299` got no hint where `₹999` did).
    rows[5] |= {"price": "Rs. 999"}
    rows[6] |= {"budget": "Rs 1,299"}
    write_csv(path, rows)

    result = read_table(path, "campaigns")

    number = "input should be a valid number, unable to parse string as a number"
    assert [(r.column, r.reason) for r in result.rejects] == [
        (
            "price",
            f"got '$39.99'; {number} (a currency sign or code? write 39.99 for $39.99: amounts are plain numbers)",
        ),
        (
            "price",
            f"got '€ 12.99'; {number} (a currency sign or code? write 12.99 for € 12.99: amounts are plain numbers)",
        ),
        (
            "price",
            f"got '12.99 USD'; {number} (a currency sign or code? write 12.99 for 12.99 USD: amounts are plain "
            "numbers)",
        ),
        ("budget", f"got '$1,500'; {number} (a currency sign or code? amounts are plain numbers, such as 1299.00)"),
        ("budget", f"got 'lots'; {number}"),
        (
            "price",
            f"got 'Rs. 999'; {number} (a currency sign or code? write 999 for Rs. 999: amounts are plain numbers)",
        ),
        ("budget", f"got 'Rs 1,299'; {number} (a currency sign or code? amounts are plain numbers, such as 1299.00)"),
    ]


def test_a_date_of_no_day_and_a_rate_written_as_a_percentage_are_said_as_such(tmp_path):
    """2026-02-30 was "should be a date as YYYY-MM-DD", which it is written as; a commission rate of 15 was only
    "should be less than or equal to 1"."""
    path = tmp_path / "camps.csv"
    rows = campaigns_rows(6)
    rows[1] |= {"start_date": "2026-02-30"}
    rows[2] |= {"end_date": "2026-13-01"}
    rows[3] |= {"commission_rate": "15"}
    rows[4] |= {"commission_rate": "150"}  # no percentage either
    rows[5] |= {"start_date": "01/02/2026"}
    write_csv(path, rows)

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1"]
    assert [(r.row, r.column, r.reason) for r in result.rejects] == [
        (2, "start_date", "got '2026-02-30'; no such day (February has 28 days in 2026)"),
        (3, "end_date", "got '2026-13-01'; no such month (months are 01 to 12)"),
        (
            4,
            "commission_rate",
            "got '15'; input should be less than or equal to 1 (written as a percentage? write 0.15 for 15%)",
        ),
        (5, "commission_rate", "got '150'; input should be less than or equal to 1"),
        (6, "start_date", "got '01/02/2026'; input should be a date as YYYY-MM-DD"),
    ]


# --- 2. a malformed CSV line -------------------------------------------------------------------------------------


def test_a_csv_line_with_too_many_fields_is_one_reject_and_the_valid_rows_are_read(tmp_path):
    """An unquoted comma makes one line too wide: that line is rejected (row counted as every reject's row is,
    a quoted line break inside a cell not counting), and every other row is read with its own row number."""
    header = [*CREATOR, "bio", "notes"]
    lines = [",".join(header)]
    lines.append("u1,@glow,social_creator,instagram,skincare,10,plain,n1")
    lines.append('u2,@two,review_site,website,trail running,20,"two\nline bio",n2')
    lines.append("u3,@Smith, Jones,social_creator,instagram,skincare,30,bio,n3")  # the unquoted comma
    lines.append("u4,NA,deals_site,website,deals,40,N/A,None")  # words pandas calls missing stay values
    lines.append("u5,@five,social_creator,instagram,skincare,-5,bio,n5")  # an ordinary bad row
    path = tmp_path / "creators.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == ["u1", "u2", "u4"]
    assert result.frame["row"].tolist() == [1, 2, 4]
    assert result.frame["notes"].tolist() == ["n1", "n2", "None"]  # extra columns stay aligned
    assert result.frame.loc[2, "handle"] == "NA" and result.frame.loc[2, "bio"] == "N/A"
    assert result.frame.loc[1, "bio"] == "two\nline bio"
    assert [(r.table, r.row, r.id, r.column) for r in result.rejects] == [
        ("creators", 3, "u3", "?"),
        ("creators", 5, "u5", "followers"),
    ]
    # Said of the row, not of a column "?": its line (row 2's bio took two) and its width against the header's.
    assert result.rejects[0].line() == (
        "creators row 3 (id u3): line 5 has 9 fields where the header has 8 (a comma in a value not quoted?)"
    )


def test_a_json_lines_line_that_is_not_an_object_is_one_reject_and_the_rest_are_read(tmp_path):
    """A hand-edited JSON Lines file with a missing comma on one line: that line is rejected, naming its line;
    it refused the whole file, naming a position inside the record."""
    rows = creators_rows(4)
    lines = [json.dumps(row) for row in rows]
    lines[1] = lines[1].replace(", ", " ", 1)  # a missing comma
    lines[2] = "[1, 2]"  # JSON, but not an object
    path = tmp_path / "creators.jsonl"
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == [rows[0]["creator_id"], rows[3]["creator_id"]]
    assert result.frame["row"].tolist() == [1, 4]
    assert [(r.row, r.column, r.reason) for r in result.rejects] == [
        (2, "?", "line 2 is not JSON (Expecting ',' delimiter)"),
        (3, "?", "line 4 is not a JSON object"),  # the blank line 3 is no row
    ]


def test_a_json_lines_object_followed_by_a_comma_is_rejected_saying_so_and_its_id_counts_as_seen(tmp_path):
    """A JSON array of objects cut into lines leaves a comma after each object: the line was rejected as "is not
    JSON (Extra data)" with id `?`, though its object and id read. It now says what follows the object and names
    the id, which counts as seen, as a line repeating a key's does; the rows around it are read as usual."""
    rows = creators_rows(3)
    lines = [json.dumps(row) for row in rows]
    lines[1] += ","
    lines.append(json.dumps(rows[1]))  # the same creator again, written properly
    path = tmp_path / "creators.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == [rows[0]["creator_id"], rows[2]["creator_id"]]
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (
            2,
            rows[1]["creator_id"],
            "?",
            "line 2 is not JSON: its object is followed by ','; expected one object a line",
        ),
        (4, rows[1]["creator_id"], "creator_id", "duplicate id; first seen at row 2, which was rejected"),
    ]


def test_a_json_lines_line_repeating_a_key_the_table_reads_is_one_reject_and_the_rest_are_read(tmp_path):
    """A line with "price" twice was read with the last value, without a word. It is rejected, naming the key;
    its id is still taken, so a later line of that id is not matched in its place; a team's own key repeated,
    as a CSV's own column may be, harms nothing; prices keep every digit as before."""
    rows = campaigns_rows(5)
    lines = [json.dumps(row | {"price": 9.87654321e-05}) for row in rows]
    lines[0] = lines[0][:-1] + ', "price": 99}'
    lines[1] = lines[1][:-1] + ', "note": "a", "note": "b"}'
    lines[2] = lines[2].replace('"marketplaces": "US|CA"', '"marketplaces": ["US"], "marketplaces": ["CA"]')
    lines[3] = json.dumps(rows[0] | {"brand": "Another"})  # c1 again
    lines[4] = lines[4][:-1] + ', "brief": "y", "brief": "z"}'
    path = tmp_path / "camps.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c2"]
    assert result.frame["price"].tolist() == [9.87654321e-05]
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (1, "c1", "price", "key 'price' appears twice in this line; expected each key once"),
        (3, "c3", "marketplaces", "key 'marketplaces' appears twice in this line; expected each key once"),
        (4, "c1", "campaign_id", "duplicate id; first seen at row 1, which was rejected"),
        (5, "c5", "brief", "key 'brief' appears 3 times in this line; expected each key once"),
    ]


def test_a_key_repeated_in_a_json_lines_map_rejects_its_row_naming_the_column(tmp_path):
    rows = creators_rows(2)
    lines = [json.dumps(row | {"audience_marketplaces": {"US": 0.5, "CA": 0.1}}) for row in rows]
    lines[1] = lines[1].replace('"CA": 0.1', '"US": 0.1')
    path = tmp_path / "creators.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "creators")

    assert result.frame["creator_id"].tolist() == ["u1"]
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (
            2,
            "u2",
            "audience_marketplaces",
            "key 'US' appears twice in this line's audience_marketplaces; expected each key once",
        ),
    ]
    path.write_text(lines[1] + "\n", encoding="utf-8")  # that line alone: a reject, not a file lacking columns
    alone = read_table(path, "creators")
    assert len(alone.frame) == 0 and [r.column for r in alone.rejects] == ["audience_marketplaces"]


def test_a_spreadsheets_empty_rows_are_skipped_in_one_warning_and_rows_keep_their_numbers(tmp_path):
    """Rows whose every cell is blank (`,,,,`, left below the data by a spreadsheet) gave a reject per required
    column each and exit status 2 for a clean file."""
    rows = creators_rows(3)
    write_csv(tmp_path / "creators.csv", rows)
    text = (tmp_path / "creators.csv").read_text().splitlines()
    blank = "," * (len(text[0].split(",")) - 1)
    path = tmp_path / "creators.csv"
    path.write_text("\n".join([*text[:2], blank, *text[2:], blank, blank]) + "\n", encoding="utf-8")

    with pytest.warns(UserWarning, match=r"creators\.csv: 3 empty rows \(every cell blank\) skipped"):
        result = read_table(path, "creators")

    assert result.rejects == []
    assert result.frame["row"].tolist() == [1, 3, 4]


def test_list_cells_written_with_commas_are_read_as_one_item_and_said_once(tmp_path):
    """A seller's "nail art, gel nails, beauty" in a CSV: lists there are a|b|c, so it is one tag; said in one
    warning naming how many rows and the first (it was silent)."""
    rows = creators_rows(3)
    rows[1]["interest_tags"] = "nail art, gel nails, beauty"
    rows[2]["interest_tags"] = "diy; woodworking"
    write_csv(tmp_path / "creators.csv", rows)

    with pytest.warns(UserWarning, match=r"2 rows' interest_tags hold a comma or semicolon \(row 2: 'nail art, gel"):
        result = read_table(tmp_path / "creators.csv", "creators")

    assert result.frame.loc[1, "interest_tags"] == ["nail art, gel nails, beauty"]


def test_codes_written_as_a_comma_list_are_refused_with_how_a_list_is_written(tmp_path):
    """A seller's `US, CA`, `B0ABCDEFGH; B0BCDEFGHI` and `Instagram, TikTok` in a CSV: each is one item there, and
    was refused as "not a marketplace code" (or not an ASIN, or not a platform) without a word on why two good
    codes were not read as two. The reason now says how a list is written; the row is still refused."""
    campaigns = campaigns_rows(2)
    campaigns[0]["marketplaces"] = "US, CA"
    campaigns[1]["asins"] = "B0ABCDEFGH; B0BCDEFGHI"
    write_csv(tmp_path / "campaigns.csv", campaigns)
    creators = creators_rows(1)
    creators[0]["platforms"] = "Instagram, TikTok"
    write_csv(tmp_path / "creators.csv", creators)

    refused = [
        (reject.column, reject.reason)
        for table in ("campaigns", "creators")
        for reject in read_table(tmp_path / f"{table}.csv", table).rejects
    ]

    assert refused == [
        (
            "marketplaces",
            "[0]: 'US, CA' is not a marketplace code (two upper-case letters; several in one item? a CSV list is "
            "written a|b|c: 'US|CA')",
        ),
        (
            "asins",
            "[0]: 'B0ABCDEFGH; B0BCDEFGHI' is not an ASIN (10 upper-case letters or digits; several in one item? a "
            "CSV list is written a|b|c: 'B0ABCDEFGH|B0BCDEFGHI')",
        ),
        (
            "platforms",
            "[0]: got 'instagram, tiktok'; input should be 'instagram', 'youtube', 'tiktok', 'facebook', 'x', "
            "'pinterest', 'blog', 'podcast' or 'website' (several in one item? a CSV list is written a|b|c: "
            "'instagram|tiktok')",
        ),
    ]


def test_one_empty_row_or_one_comma_list_is_said_in_the_singular(tmp_path):
    """The warnings counted one row as "1 empty rows" and "1 rows' interest_tags"."""
    rows = creators_rows(2)
    rows[1]["interest_tags"] = "nail art, gel nails"
    path = tmp_path / "creators.csv"
    write_csv(path, [*rows, {}])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_table(path, "creators")

    said = sorted(str(warning.message).removeprefix(f"{path}: ") for warning in caught)
    assert said == [
        "1 empty row (every cell blank) skipped",
        "1 row's interest_tags hold a comma or semicolon (row 2: 'nail art, gel nails'); lists in CSV are written "
        "a|b|c, so it was read as one item",
    ]
    assert result.rejects == [] and result.frame["row"].tolist() == [1, 2]


def test_a_too_wide_first_data_line_is_a_reject_not_an_index(tmp_path):
    """pandas would take the first column of a file whose first data line is one field too wide for an index,
    shifting every value one column left; that line is a reject like any other too-wide line."""
    path = tmp_path / "camps.csv"
    rows = campaigns_rows(3)
    write_csv(path, rows)
    text = path.read_text(encoding="utf-8").splitlines()
    text[1] = text[1].replace("Lumora", "Lumora, Inc.")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c2", "c3"]
    assert result.frame["brand"].tolist() == ["Lumora", "Lumora"]
    assert [(r.row, r.id, r.reason) for r in result.rejects] == [
        (1, "c1", "line 2 has 12 fields where the header has 11 (a comma in a value not quoted?)")
    ]


def test_a_line_with_too_few_fields_is_still_read_with_the_rest_missing(tmp_path):
    """A short line is padded with missing values as before: here only optional columns are missing."""
    path = tmp_path / "creators.csv"
    path.write_text(
        ",".join([*CREATOR, "bio"]) + "\n"
        "u1,@glow,social_creator,instagram,skincare,10,a bio\n"
        "u2,@two,social_creator,instagram,skincare,20\n",
        encoding="utf-8",
    )
    result = read_table(path, "creators")
    assert result.frame["creator_id"].tolist() == ["u1", "u2"] and result.rejects == []


def campaigns_lines(path: Path, n: int) -> list[str]:
    """The lines of a campaigns CSV of `n` rows, written at `path`."""
    write_csv(path, campaigns_rows(n))
    return path.read_text(encoding="utf-8").splitlines()


def test_a_quote_never_closed_is_one_reject_naming_its_line_and_every_later_row_is_read(tmp_path):
    """A brief starting with an unmatched quote: pandas' C parser stopped ("EOF inside string") and its Python
    parser then dropped that record and every one after it without a word ("matched 1 of 2 campaigns")."""
    path = tmp_path / "camps.csv"
    lines = campaigns_lines(path, 6)
    lines[3] = lines[3].replace(",A hydrating", ',"A hydrating', 1)  # row 3, line 4
    lines[6] = lines[6].replace("c6,", "c3,", 1)  # its id still counts as seen
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1", "c2", "c4", "c5"]
    assert result.frame["row"].tolist() == [1, 2, 4, 5]
    assert result.frame["brief"].tolist() == [CAMPAIGN["brief"]] * 4
    assert [(r.row, r.id, r.column, r.reason) for r in result.rejects] == [
        (
            3,
            "c3",
            "brief",
            "a quote opened in this cell on line 4 is never closed; the lines after it were read as rows",
        ),
        (6, "c3", "campaign_id", "duplicate id; first seen at row 3, which was rejected"),
    ]

    lines = campaigns_lines(path, 2)
    lines[2] = lines[2].replace(",A hydrating", ',"A hydrating', 1)  # on the last line
    path.write_text("\n".join(lines), encoding="utf-8")
    result = read_table(path, "campaigns")
    assert result.frame["campaign_id"].tolist() == ["c1"]
    assert [(r.row, r.reason) for r in result.rejects] == [(2, "a quote opened in this cell on line 3 is never closed")]


@pytest.mark.parametrize(
    ("inch", "how"),
    [
        ('12" screen', " with text after it"),  # the quote closes with text after it
        ('screen 12"', ", taking in lines that are rows of their own"),  # it closes as a cell would
    ],
)
def test_a_stray_quote_closed_lines_later_by_an_inch_mark_costs_only_its_own_row(tmp_path, inch, how):
    """A stray quote closed three lines later by an inch mark: the first campaign's brief took in the lines
    between and its other fields came from the later line, and three campaigns vanished (exit 0). A real brief of
    two lines still reads, though its second line holds as many commas as fields precede the brief (a row's worth
    of fields alone): its first line, its quote read as a character, is not a row."""
    path = tmp_path / "camps.csv"
    rows = campaigns_rows(7)
    rows[6]["brief"] = "Our serum for dry skin.\nWe want creators, bloggers, and reviewers."
    write_csv(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",A hydrating", ',"A hydrating', 1)  # row 2, line 3
    lines[5] = lines[5].replace("creators.,", f"creators. {inch},", 1)  # row 5, line 6
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = read_table(path, "campaigns")

    assert result.frame["campaign_id"].tolist() == ["c1", "c3", "c4", "c5", "c6", "c7"]
    assert result.frame["row"].tolist() == [1, 3, 4, 5, 6, 7]
    assert result.frame.loc[3, "brief"] == f"{CAMPAIGN['brief']} {inch}"
    assert result.frame.loc[5, "brief"] == rows[6]["brief"]
    assert [(r.row, r.id, r.column) for r in result.rejects] == [(2, "c2", "brief")]
    opened = "a quote opened in this cell on line 3 closes on line 6"
    assert result.rejects[0].reason == f"{opened}{how}; lines 4-6 were read as rows"


def match_in_process(campaigns: Path, out: Path, world_dir: Path, world_index: Path, trained):
    """`creator-match match` of `campaigns` on the session's world, index and ranker, writing `out`."""
    return run_in_process(
        "match",
        "--campaigns",
        str(campaigns),
        "--creators",
        str(world_dir / "creators.parquet"),
        "--out",
        str(out),
        "--index",
        str(world_index),
        "--model",
        trained.model_uri,
    )


# --- 3. a user's file where the rejects file would go --------------------------------------------------------------


@pytest.mark.slow
def test_match_with_bad_rows_never_replaces_a_users_file_at_the_rejects_path(tmp_path, world_dir, trained, world_index):
    """A run that has rejects to write refuses before writing anything, in one line naming the path, rather than
    replace the user's `mine.rejects.csv`; a run without rejects leaves it alone (tests/features/test_safe_write.py)."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0  # a bad row: this run has a rejects file to write
    path = tmp_path / "camps.parquet"
    campaigns.to_parquet(path)
    out = tmp_path / "out" / "mine.csv"
    out.parent.mkdir()
    theirs = out.with_name("mine.rejects.csv")
    theirs.write_text("my,own\n", encoding="utf-8")

    done = match_in_process(path, out, world_dir, world_index, trained)

    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1 and str(theirs) in lines[0] and "refusing to replace" in lines[0], lines
    assert theirs.read_text(encoding="utf-8") == "my,own\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine.rejects.csv"], "refused before writing anything"


@pytest.mark.slow
def test_a_users_file_put_at_the_rejects_path_during_the_run_stops_it_before_scoring(
    tmp_path, world_dir, trained, world_index, monkeypatch
):
    """With no rejects lock file yet, the rejects path was checked before the lock was held and not again until
    the matches were written: a user's file put there in between let the run write its matches and then be refused
    with no rejects file. Now it is checked again under the lock, before scoring: nothing is written."""
    import matcher.batch as batch

    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0
    path = tmp_path / "camps.parquet"
    campaigns.to_parquet(path)
    out = tmp_path / "out" / "mine.csv"
    out.parent.mkdir()
    theirs = out.with_name("mine.rejects.csv")
    load = batch.load_for_matching

    def load_then_a_user_writes(*args, **kwargs):
        theirs.write_text("my,own\n", encoding="utf-8")  # after the first check, before the locks are taken
        return load(*args, **kwargs)

    monkeypatch.setattr(batch, "load_for_matching", load_then_a_user_writes)
    done = match_in_process(path, out, world_dir, world_index, trained)

    assert done.returncode == 2 and "refusing to replace" in done.stderr and str(theirs) in done.stderr
    assert theirs.read_text(encoding="utf-8") == "my,own\n"
    assert not out.exists(), "the matches were written before the rejects path was checked again"


def test_write_rejects_replaces_its_own_earlier_file_but_refuses_anything_else(tmp_path):
    out = tmp_path / "matches.parquet"
    first = write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], out)
    second = write_rejects([Reject("creators", 7, "u7", "followers", "must be >= 0")], out)
    assert first == second == rejects_path(out) == check_rejects_path(out)
    assert pd.read_csv(second)["id"].tolist() == ["u7"]

    for foreign in ("my,own\n", "", "table,row,id,column,reason,extra\n1,2,3,4,5,6\n"):
        second.write_text(foreign, encoding="utf-8")
        with pytest.raises(OutputRefused) as raised:
            write_rejects([Reject("creators", 7, "u7", "followers", "must be >= 0")], out)
        with pytest.raises(OutputRefused):
            check_rejects_path(out)
        assert str(second) in str(raised.value) and "\n" not in str(raised.value)
        assert second.read_text(encoding="utf-8") == foreign
        assert sorted(p.name for p in tmp_path.iterdir()) == ["matches.rejects.csv"]


@pytest.mark.slow
def test_a_clean_run_of_another_output_leaves_the_rejects_file_it_shares(tmp_path, world_dir, trained, world_index):
    """`m.parquet` and `m.csv` share `m.rejects.csv`. The trial's clean `--out m.csv` removed the rejects of the run
    that wrote `m.parquet`; then a run of `m.csv` with one bad row was refused outright because that file held
    `m.parquet`'s rejects, leaving every valid campaign unmatched. Now the file records each row's output: a run
    with rejects keeps the other output's rows and replaces its own, a clean run drops only its own rows and the
    file goes once none remains; a rejects file written before the column (no output recorded) is still removed by
    a clean run, as before."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0
    bad, clean = tmp_path / "bad.parquet", world_dir / "new_campaigns.parquet"
    campaigns.to_parquet(bad)
    out = tmp_path / "out"
    shared = out / "m.rejects.csv"

    done = match_in_process(bad, out / "m.parquet", world_dir, world_index, trained)
    assert done.returncode == 2, done.stderr
    kept = shared.read_bytes()

    done = match_in_process(clean, out / "m.csv", world_dir, world_index, trained)
    assert done.returncode == 0, done.stderr
    assert shared.exists() and shared.read_bytes() == kept, "a clean run of m.csv removed the rejects of m.parquet"
    rejects = pd.read_csv(shared, dtype=str)
    assert rejects["output"].tolist() == ["m.parquet"] and rejects["column"].tolist() == ["price"]
    clean_matches = pd.read_csv(out / "m.csv")

    done = match_in_process(bad, out / "m.csv", world_dir, world_index, trained)
    assert done.returncode == 2, done.stderr
    assert "refusing" not in done.stderr, "one bad row of m.csv stopped its valid rows"
    assert f"1 row rejected; see {shared}" in done.stderr.splitlines()
    matched = set(pd.read_csv(out / "m.csv")["campaign_id"])
    assert matched and campaigns.loc[1, "campaign_id"] not in matched
    assert matched == set(clean_matches["campaign_id"]) - {campaigns.loc[1, "campaign_id"]}
    rejects = pd.read_csv(shared, dtype=str)
    assert rejects["output"].tolist() == ["m.csv", "m.parquet"] and set(rejects["row"]) == {"2"}

    done = match_in_process(bad, out / "m.csv", world_dir, world_index, trained)  # a rerun replaces its own rows
    assert done.returncode == 2, done.stderr
    assert pd.read_csv(shared, dtype=str)["output"].tolist() == ["m.csv", "m.parquet"]

    done = match_in_process(clean, out / "m.parquet", world_dir, world_index, trained)
    assert done.returncode == 0, done.stderr
    rejects = pd.read_csv(shared, dtype=str)
    assert rejects["output"].tolist() == ["m.csv"], "a clean rerun of m.parquet drops its own rows, and only those"

    done = match_in_process(clean, out / "m.csv", world_dir, world_index, trained)
    assert done.returncode == 0, done.stderr
    assert not shared.exists(), "the file goes once no output's rows remain"

    shared.write_text("table,row,id,column,reason\ncampaigns,2,c2,price,from before outputs were recorded\n")
    done = match_in_process(clean, out / "m.csv", world_dir, world_index, trained)
    assert done.returncode == 0, done.stderr
    assert not shared.exists(), "a rejects file that records no output is removed by a clean run, as before"


def test_rejects_of_two_outputs_share_one_file_and_each_settles_only_its_own(tmp_path):
    """write_rejects keeps another output's rows and replaces its own; a clean settle drops only its own rows,
    removing the file once none remains; a user's file there is still refused and left as it is."""
    parquet, csv_out = tmp_path / "m.parquet", tmp_path / "m.csv"
    shared = write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], parquet)
    write_rejects([Reject("campaigns", 3, "c3", "price", "must be positive")], csv_out)
    write_rejects([Reject("campaigns", 4, "c4", "price", "must be positive")], csv_out)
    rejects = pd.read_csv(shared, dtype=str)
    assert list(zip(rejects["output"], rejects["id"], strict=True)) == [("m.csv", "c4"), ("m.parquet", "c2")]

    settle_rejects([], parquet)
    assert pd.read_csv(shared, dtype=str)["output"].tolist() == ["m.csv"]
    settle_rejects([], parquet)  # nothing of its own left: the file is not touched
    assert pd.read_csv(shared, dtype=str)["id"].tolist() == ["c4"]
    settle_rejects([], csv_out)
    assert not shared.exists()

    shared.write_text("my,own\n", encoding="utf-8")
    with pytest.raises(OutputRefused, match="it is not a rejects file of creator-match"):
        write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], csv_out)
    assert settle_rejects([], csv_out) is None and shared.read_text(encoding="utf-8") == "my,own\n"


def test_a_clean_settle_reports_a_rejects_lock_it_cannot_make(tmp_path, monkeypatch):
    """A clean run swallowed every refusal of the rejects lock, so one that could not be created (a read-only
    folder) left stale rejects beside a fresh output with nothing said; now that refusal surfaces. (A lock another
    process holds is still left to it: `test_the_rejects_file_is_locked_against_another_run_sharing_it`, with a
    real holder.) The refusal is injected: this suite runs as root, whom a read-only folder does not stop."""
    import features.tables as tables

    out = tmp_path / "m.parquet"
    stale = write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], out)

    @contextlib.contextmanager
    def cannot_create(target, wait=0.0):
        raise OutputRefused(f"{stale} cannot be written: {stale.parent}/.m.rejects.csv.lock cannot be created there")
        yield  # pragma: no cover

    monkeypatch.setattr(tables, "output_lock", cannot_create)
    with pytest.raises(OutputRefused, match="cannot be created there"):
        settle_rejects([], out)
    assert stale.exists()


def test_the_rejects_file_is_locked_only_while_it_is_written_and_each_run_waits_for_the_others_write(
    tmp_path, monkeypatch
):
    """A run with rejects held the shared rejects file's lock for its whole run: the other output's run was then
    refused at once if it had rejects to write, and if it had none it skipped dropping its own rows, which the
    first run's write then kept, leaving stale rejects beside a fresh output. Now the lock is held for the write
    alone and each run waits for the other's (REJECTS_LOCK_WAIT); a lock held past that is refused in one line."""
    import features.tables as tables

    parquet, csv_out = tmp_path / "m.parquet", tmp_path / "m.csv"
    shared = write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], csv_out)
    write_rejects([Reject("campaigns", 5, "c5", "budget", "must be positive")], parquet)
    before = shared.read_bytes()

    with held_by_another_process(shared) as release:
        monkeypatch.setattr(tables, "REJECTS_LOCK_WAIT", 0.5)
        for rejects in ([], [Reject("campaigns", 3, "c3", "price", "must be positive")]):
            with pytest.raises(OutputRefused, match="being written by another process") as refused:
                settle_rejects(rejects, csv_out)
            assert "\n" not in str(refused.value) and shared.read_bytes() == before
        monkeypatch.setattr(tables, "REJECTS_LOCK_WAIT", 60.0)
        threading.Timer(1.0, release).start()
        assert settle_rejects([], csv_out) is None  # waits for the holder, then drops its own rows
    rejects = pd.read_csv(shared, dtype=str)
    assert list(zip(rejects["output"], rejects["id"], strict=True)) == [("m.parquet", "c5")]

    with held_by_another_process(shared) as release:
        threading.Timer(1.0, release).start()
        settle_rejects([Reject("campaigns", 3, "c3", "price", "must be positive")], csv_out)
    rejects = pd.read_csv(shared, dtype=str)
    assert list(zip(rejects["output"], rejects["id"], strict=True)) == [("m.csv", "c3"), ("m.parquet", "c5")]


@pytest.mark.slow
def test_one_outputs_run_with_bad_rows_is_not_stopped_by_the_other_writing_the_rejects_file_they_share(
    tmp_path, world_dir, trained, world_index
):
    """While another process holds `m.rejects.csv`'s lock (a run of `m.parquet` writing its rejects), a run of
    `m.csv` with one bad row was refused at once and matched nothing. Now it matches, waits for the other's write
    and adds its own row beside the other's."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0
    bad = tmp_path / "bad.parquet"
    campaigns.to_parquet(bad)
    out = tmp_path / "out" / "m.csv"
    out.parent.mkdir()
    shared = write_rejects([Reject("campaigns", 5, "c5", "budget", "must be positive")], out.with_suffix(".parquet"))

    with held_by_another_process(shared) as release:
        threading.Timer(3.0, release).start()
        done = match_in_process(bad, out, world_dir, world_index, trained)

    assert done.returncode == 2 and f"1 row rejected; see {shared}" in done.stderr.splitlines(), done.stderr
    assert "being written by another process" not in done.stderr
    assert campaigns.loc[1, "campaign_id"] not in set(pd.read_csv(out)["campaign_id"])
    assert pd.read_csv(shared, dtype=str)["output"].tolist() == ["m.csv", "m.parquet"]


@pytest.mark.slow
def test_a_run_refused_the_shared_rejects_file_leaves_its_outputs_as_they_were(
    tmp_path, world_dir, trained, world_index, monkeypatch
):
    """The rejects file was claimed only after the matches were written, so a run refused it (its lock held past
    the wait, or a file that cannot be read back) had already replaced its output: with rejects, they were then
    recorded nowhere; without, the old rejects stayed beside fresh matches. It is claimed before any output now."""
    import features.tables as tables

    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    campaigns.loc[1, "price"] = -1.0
    bad, clean = tmp_path / "bad.parquet", world_dir / "new_campaigns.parquet"
    campaigns.to_parquet(bad)
    out = tmp_path / "out" / "m.csv"
    assert match_in_process(bad, out, world_dir, world_index, trained).returncode == 2
    shared, matches = rejects_path(out), out.read_bytes()
    rejects = shared.read_bytes()

    monkeypatch.setattr(tables, "REJECTS_LOCK_WAIT", 1.0)
    with held_by_another_process(shared):
        for campaigns_file in (bad, clean):  # with rejects to write, and clean with its own rows to drop
            done = match_in_process(campaigns_file, out, world_dir, world_index, trained)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and "being written by another process" in lines[-1], done.stderr
            assert out.read_bytes() == matches and shared.read_bytes() == rejects

    shared.write_bytes(rejects + b"campaigns,9,c9,price,\xff,m.parquet\n")
    done = match_in_process(clean, out, world_dir, world_index, trained)
    assert done.returncode == 2 and "cannot be read back as a rejects file" in done.stderr, done.stderr
    assert out.read_bytes() == matches


def test_the_rejects_file_reads_back_any_field_it_wrote_and_refuses_one_it_cannot_read(tmp_path):
    """A rejected id of 140,000 characters passed csv's 128 KiB field limit when the file was read back: it was
    taken for a file that records no output and replaced whole, losing the other output's rows (or removed by a
    clean run). Now long fields are read; a file with the rejects header that cannot be read at all is refused
    and left as it is, not replaced."""
    parquet, csv_out = tmp_path / "m.parquet", tmp_path / "m.csv"
    long_id = "x" * 140_000
    shared = write_rejects([Reject("campaigns", 2, long_id, "campaign_id", "too long")], parquet)
    write_rejects([Reject("campaigns", 3, "c3", "price", "must be positive")], csv_out)
    settle_rejects([], csv_out)
    rejects = pd.read_csv(shared, dtype=str)
    assert rejects["output"].tolist() == ["m.parquet"] and rejects["id"].tolist() == [long_id]

    header = ",".join(REJECTS_COLUMNS).encode() + b"\n"
    # Cut after its first 8 KiB, and short enough to be read in one buffer with its header (whose check decoded
    # the whole buffer, calling such a file "not a rejects file of creator-match").
    for broken in (shared.read_bytes() + b"campaigns,4,\xff\xfe,price,not UTF-8,m.csv\n", header + b"c,4,\xff,p,r,m\n"):
        shared.write_bytes(broken)
        for rejects in ([], [Reject("campaigns", 4, "c4", "price", "must be positive")]):
            with pytest.raises(OutputRefused, match="cannot be read back as a rejects file"):
                settle_rejects(rejects, csv_out)
            assert shared.read_bytes() == broken


def test_what_a_killed_rejects_write_left_is_cleared_by_the_next_run_unless_one_is_writing(tmp_path):
    """A run killed while writing the rejects file leaves its temporary beside it; a later run that changes nothing
    in the file (clean, no rows of its own there) left it for good. It clears it now, unless another process holds
    the file's lock (then the temporary may be that run's, alive)."""
    shared = write_rejects([Reject("campaigns", 2, "c2", "price", "must be positive")], tmp_path / "m.parquet")
    killed = shared.with_name(f".{shared.name}.creator-match-partial-0123456789abcdef.tmp")
    killed.write_text("table,row,id,column,reason,output\ncamp", encoding="utf-8")

    with held_by_another_process(shared), rejects_turn([], tmp_path / "m.csv"):
        pass
    assert killed.exists()
    with rejects_turn([], tmp_path / "m.csv"):
        pass
    assert not killed.exists() and pd.read_csv(shared, dtype=str)["output"].tolist() == ["m.parquet"]


def test_the_rejects_files_bytes_do_not_depend_on_which_output_ran_last(tmp_path):
    """Rows are kept by output, each output's in its own order, whichever run wrote the file last."""
    files = []
    for order in (("m.parquet", "m.csv"), ("m.csv", "m.parquet")):
        folder = tmp_path / "-".join(order)
        for i, name in enumerate(order):
            write_rejects([Reject("campaigns", 2 + i, f"{name}-c", "price", "must be positive")], folder / name)
        files.append(pd.read_csv(folder / "m.rejects.csv", dtype=str).drop(columns="row"))
    pd.testing.assert_frame_equal(files[0], files[1])


@pytest.mark.slow
@pytest.mark.parametrize("flaw", ["unquoted comma", "stray quote"])
def test_match_rejects_a_malformed_campaigns_line_and_matches_the_rest(tmp_path, world_dir, trained, world_index, flaw):
    """End to end: one unquoted comma, or one brief opening with a stray quote, costs one campaign, reported
    like any bad row (exit 2); an earlier rejects file of the tool at the rejects path is replaced. The stray
    quote cost every later campaign, silently ("matched 1 of 2 campaigns", exit 0)."""
    campaigns = pd.read_parquet(world_dir / "new_campaigns.parquet")
    for name in ("asins", "marketplaces"):
        campaigns[name] = campaigns[name].map("|".join)
    path = tmp_path / "camps.csv"
    campaigns.to_csv(path, index=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    bad_id = campaigns["campaign_id"].iloc[2]
    brand = campaigns["brand"].iloc[2]
    assert list(campaigns.columns[1:3]) == ["brand", "brief"]
    flawed = f",{brand}, Inc.," if flaw == "unquoted comma" else f',{brand},"'
    lines[3] = lines[3].replace(f",{brand},", flawed, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "matches.csv"
    write_rejects([Reject("campaigns", 9, "old", "price", "from an earlier run")], out)

    done = match_in_process(path, out, world_dir, world_index, trained)

    assert done.returncode == 2, done.stderr
    width = len(campaigns.columns)
    column, reason = (
        ("?", f"line 4 has {width + 1} fields where the header has {width} (a comma in a value not quoted?)")
        if flaw == "unquoted comma"
        # The quote closes where the next line's quoted brief opens, as pandas quotes a brief with a comma.
        else (
            "brief",
            "column brief: a quote opened in this cell on line 4 closes on line 5 with text after it; line 5 was "
            "read as a row",
        )
    )
    assert f"campaigns row 3 (id {bad_id}): {reason}" in done.stderr.splitlines()
    rejects = pd.read_csv(rejects_path(out), dtype=str)
    assert rejects[["table", "row", "id", "column"]].values.tolist() == [["campaigns", "3", bad_id, column]]
    matched = set(pd.read_csv(out)["campaign_id"])
    assert bad_id not in matched
    assert len(matched) >= len(campaigns) - 1 - 2  # out-of-stock campaigns may be summarised instead


# --- 4. a table with no valid row ----------------------------------------------------------------------------------


def creators_file(tmp_path: Path, kind: str) -> Path:
    """A creators CSV with no valid row: only its header, or three rows each rejected for its followers."""
    path = tmp_path / f"creators-{kind}.csv"
    rows = [] if kind == "header-only" else [row | {"followers": "-5"} for row in creators_rows(3)]
    write_csv(path, rows, header=list(CREATOR))
    return path


@pytest.mark.parametrize("kind", ["header-only", "all-invalid"])
@pytest.mark.parametrize("command", ["match", "index", "similar", "serve"])
def test_a_creators_table_without_a_valid_row_is_refused_and_nothing_is_replaced(tmp_path, tracking_uri, command, kind):
    """No command has anything to do without a creator: `index` failed with "Got vectors of shape (0, 384)" (exit
    1), as did `match` without an index. Now the rejected rows are reported as for any table (one line each and, for
    a command with an output, the rejects file), then one line says there is no valid creator row (exit 2), before
    any model is loaded; an output already there (yesterday's) is left as it was."""
    creators = creators_file(tmp_path, kind)
    campaigns = tmp_path / "camps.csv"
    write_csv(campaigns, campaigns_rows(2))
    out = {"match": "m.parquet", "index": "idx", "similar": "l.csv", "serve": None}[command]
    args = {
        "match": ["--campaigns", str(campaigns), "--model", NO_MODEL],
        "index": [],
        "similar": ["--like", "u1", "--model", NO_MODEL],
        "serve": ["--model", str(tmp_path / "no-model-dir"), "--port", "0"],
    }[command]
    if out == "idx":
        (tmp_path / "idx").mkdir()  # an empty folder: the index command's own kind of --out, left as it is
    elif out == "m.parquet":  # yesterday's matches (a user's own file there is refused, not replaced)
        pq.write_table(MATCH_SCHEMA.empty_table(), tmp_path / out)
    elif out:
        (tmp_path / out).write_text(",".join(LOOKALIKE_SCHEMA.names) + "\nu9,u8\n")  # yesterday's lookalikes
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    outputs = ["--out", str(tmp_path / out)] if out else []

    done = run_in_process(command, "--creators", str(creators), *args, *outputs, cwd=tmp_path)

    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    held = "it holds none" if kind == "header-only" else "3 rows, all rejected"
    assert lines[-1].startswith(f"creator-match: no valid creator rows in {creators}: {held}; "), lines
    assert "Traceback" not in done.stderr
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    if kind == "header-only":
        assert after == before and len(lines) == 1, (after.keys(), lines)
    else:
        assert [line.split(":")[0] for line in lines[:3]] == [f"creators row {n} (id u{n})" for n in (1, 2, 3)]
        assert len(lines) == (5 if out else 4), lines
    if kind == "all-invalid" and out:
        written = rejects_path(tmp_path / out)
        assert lines[3] == f"3 rows rejected; see {written}"
        assert pd.read_csv(written)["row"].tolist() == [1, 2, 3]
        # Written, as any run's rejects, holding its lock (another output of the same stem may share the file).
        assert {name: data for name, data in after.items() if written.name not in name} == before
    assert out != "idx" or not any((tmp_path / "idx").iterdir())


def test_the_python_api_refuses_a_matcher_without_a_valid_creator(tmp_path):
    """`Matcher` with no valid creator raises a ValueError saying so, with the first reject, before loading a model
    (it failed later with "Got vectors of shape (0, 384)", or matched nothing with an index)."""
    from matcher.api import Matcher

    table = read_table(creators_file(tmp_path, "all-invalid"), "creators")
    with pytest.raises(
        ValueError, match=r"^Got no valid creator row \(3 rejected; the first: creators row 1 \(id u1\)"
    ):
        Matcher(table, model=NO_MODEL)
    with pytest.raises(ValueError, match=r"^Got no valid creator row \(0 rejected\)"):
        Matcher(read_table(creators_file(tmp_path, "header-only"), "creators"), model=NO_MODEL)


def test_the_python_api_names_the_required_columns_a_creators_frame_lacks():
    """A frame without a required column said "0 rejected" when it had no row (pd.DataFrame()), and gave a reject
    per row otherwise; like a file read, one line names the columns, and what a misspelt header probably meant."""
    from matcher.api import Matcher

    with pytest.raises(ValueError) as refused:
        Matcher(pd.DataFrame(), model=NO_MODEL)
    assert str(refused.value) == (
        "Got no valid creator row: no creator_id, creator_type, platforms, interest_tags, followers columns, "
        "required in the creators table; a matcher needs at least one"
    )
    misspelt = pd.DataFrame(creators_rows(2)).rename(columns={"followers": "Followers"})
    with warnings.catch_warnings(), pytest.raises(ValueError) as refused:
        warnings.simplefilter("ignore")  # the rows left out, each for its followers
        Matcher(misspelt, model=NO_MODEL)
    assert str(refused.value) == (
        "Got no valid creator row: no followers column, required in the creators table; a matcher needs at least "
        "one (found 'Followers' for followers: column names are exact, lower case and without spaces)"
    )


@pytest.mark.slow
def test_a_match_with_no_valid_creator_or_campaign_leaves_yesterdays_matches(tmp_path, world_dir, trained, world_index):
    """With an index, a creators table of only its header exited 0 ("matched 0 of 12 campaigns") and replaced the
    matches written before with an empty table: it is refused in one line (exit 2), the matches and summaries stay
    as they were. Campaigns are another matter: a campaigns table of only its header is an empty batch, matched
    into empty matches and summaries (exit 0); one whose every row is rejected writes empty matches beside its
    rejects file (exit 2), so that the two always describe the same run (they were refused, leaving yesterday's
    matches beside today's rejects)."""
    out, summaries = tmp_path / "out" / "m.parquet", tmp_path / "out" / "s.csv"
    extra = ["--index", str(world_index), "--model", trained.model_uri, "--summaries-out", str(summaries)]
    creators = world_dir / "creators.parquet"
    new = world_dir / "new_campaigns.parquet"

    def match(campaigns: Path, creators: Path = creators):
        return run_in_process(
            "match", "--campaigns", str(campaigns), "--creators", str(creators), "--out", str(out), *extra
        )

    assert match(new).returncode == 0
    yesterday = out.read_bytes(), summaries.read_bytes()
    no_creators = tmp_path / "creators.parquet"
    pq.write_table(pq.read_table(creators).slice(0, 0), no_creators)
    done = match(new, no_creators)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"creator-match: no valid creator rows in {no_creators}: it holds none; nothing was matched, "
        f"and {out} was left as it was"
    )
    assert (out.read_bytes(), summaries.read_bytes()) == yesterday

    no_campaigns, bad_campaigns = tmp_path / "none.parquet", tmp_path / "bad.parquet"
    pq.write_table(pq.read_table(new).slice(0, 0), no_campaigns)
    done = match(no_campaigns)
    assert done.returncode == 0, done.stderr
    assert f"matched 0 of 0 campaigns into {out}" in done.stdout
    assert len(pd.read_parquet(out)) == 0 and len(pd.read_csv(summaries)) == 0
    assert not rejects_path(out).exists()

    every_bad = pd.read_parquet(new).assign(price=-1.0)
    every_bad.to_parquet(bad_campaigns)
    done = match(bad_campaigns)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert f"matched 0 of {len(every_bad)} campaigns into {out}" in done.stdout
    assert len(pd.read_parquet(out)) == 0 and len(pd.read_csv(summaries)) == 0
    rejects = pd.read_csv(rejects_path(out))
    assert rejects["row"].tolist() == list(range(1, len(every_bad) + 1)) and set(rejects["column"]) == {"price"}
    assert lines[-1] == f"{len(every_bad)} rows rejected; see {rejects_path(out)}"


@pytest.mark.parametrize("campaigns_kind", ["header-only", "all-invalid"])
@pytest.mark.parametrize("model_kind", ["no such directory", "unreadable directory", "no such registered model"])
def test_a_match_of_no_valid_campaign_writes_its_empty_outputs_without_loading_the_model(
    tmp_path, tracking_uri, campaigns_kind, model_kind
):
    """A batch with no valid campaign has nothing to score: its empty matches, summaries and candidates (and its
    rejects file) are written without the model, whose MLflow load took seconds, so a model that cannot be loaded
    does not fail the run (it did, exit 2, before anything was written)."""
    creators, campaigns = tmp_path / "creators.csv", tmp_path / "camps.csv"
    write_csv(creators, creators_rows(3))
    rows = [] if campaigns_kind == "header-only" else [row | {"price": "-1"} for row in campaigns_rows(2)]
    write_csv(campaigns, rows, header=list(CAMPAIGN))
    model = {
        "no such directory": str(tmp_path / "no-model"),
        "unreadable directory": str(tmp_path / "model"),
        "no such registered model": NO_MODEL,
    }[model_kind]
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("not: [a model\n")
    out = tmp_path / "out"
    outputs = {"--out": out / "m.parquet", "--summaries-out": out / "s.csv", "--candidates-out": out / "c.jsonl"}

    done = run_in_process(
        "match",
        "--campaigns",
        str(campaigns),
        "--creators",
        str(creators),
        "--model",
        model,
        *(str(part) for option, path in outputs.items() for part in (option, path)),
        cwd=tmp_path,
    )

    from matcher.schema import MATCH_COLUMNS, SUMMARY_SCHEMA

    assert done.returncode == (0 if campaigns_kind == "header-only" else 2), done.stderr
    assert f"matched 0 of {len(rows)} campaigns into {out / 'm.parquet'}" in done.stdout
    matches = pd.read_parquet(out / "m.parquet")
    assert list(matches.columns) == MATCH_COLUMNS and len(matches) == 0
    summaries = pd.read_csv(out / "s.csv")
    assert list(summaries.columns) == SUMMARY_SCHEMA.names and len(summaries) == 0
    assert (out / "c.jsonl").read_bytes() == b""
    if campaigns_kind == "header-only":
        assert not rejects_path(out / "m.parquet").exists() and not done.stderr, done.stderr
    else:
        rejects = pd.read_csv(rejects_path(out / "m.parquet"))
        assert rejects[["row", "column"]].values.tolist() == [[1, "price"], [2, "price"]]
        assert done.stderr.strip().splitlines()[-1] == f"2 rows rejected; see {rejects_path(out / 'm.parquet')}"
