"""A column the contract does not name is ignored, but one that looks like a misspelt contract column is said back:
its field would otherwise take its default without a word (a `product_typ` column left every campaign `auto`)."""

from __future__ import annotations

import re
import warnings

import pandas as pd
import pytest

from features.column_names import likely_meant, normalized
from features.tables import InputError, read_table, valid_rows
from tests.commands import run_in_process
from tests.features.test_table_files import CAMPAIGN, creators_rows, write_csv, write_table


def test_names_written_another_way_or_misspelt_are_recognized_and_a_teams_own_columns_are_not():
    assert [normalized(name) for name in ("Commission Rate", "commission-rate", "commissionRate", " in_stock ")] == [
        "commission_rate",
        "commission_rate",
        "commission_rate",
        "in_stock",
    ]
    known = ["campaign_id", "brand", "commission_rate", "product_type", "avg_views", "budget"]
    got = ["campaign_name", "brand_id", "comission_rate", "productType", "avg_view", "owner", "budget_usd"]
    assert likely_meant(got, known) == {
        "comission_rate": "commission_rate",
        "productType": "product_type",
        "avg_view": "avg_views",
    }


def test_a_name_the_file_has_right_is_not_claimed_and_each_name_goes_to_its_likeliest_column():
    assert likely_meant(["product_type", "product_typ"], ["product_type"]) == {}
    assert likely_meant(["comission_rate", "Commission Rate"], ["commission_rate"]) == {
        "Commission Rate": "commission_rate"
    }


def test_a_misspelt_optional_column_is_warned_about_by_file_and_its_field_keeps_its_default(tmp_path):
    path = tmp_path / "campaigns.csv"
    write_csv(path, [dict(CAMPAIGN, product_typ="non_standard", team_reference="Q3-17")])
    with pytest.warns(UserWarning) as said:
        table = read_table(path, "campaigns")
    assert [str(w.message) for w in said] == [
        f"{path}: column 'product_typ' is not in the campaigns table and was ignored; did you mean product_type?"
    ]
    assert table.frame["product_type"].tolist() == ["auto"] and not table.rejects
    assert table.frame["team_reference"].tolist() == ["Q3-17"], "a team's own column is kept, without a word"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_names_with_spaces_around_them_are_read_as_the_columns_they_name(tmp_path, fmt):
    """A spreadsheet's `product_type ` header: the column was ignored with a warning, and 7 of 10 campaigns the
    seller declared standard were resolved non-standard. Values and ids were already read without such spaces."""
    rows = [
        {(f"{key} " if key in ("product_type", "campaign_id") else key): value for key, value in row.items()}
        for row in (dict(CAMPAIGN, campaign_id=f"c{i}", product_type="standard") for i in range(3))
    ]
    path = tmp_path / f"campaigns.{fmt}"
    write_table(path, rows)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = read_table(path, "campaigns")

    assert table.frame["product_type"].tolist() == ["standard"] * 3 and not table.rejects
    assert table.frame["campaign_id"].tolist() == ["c0", "c1", "c2"]


def test_the_command_line_says_it_on_one_line_as_a_warning(tmp_path):
    """It printed `creator-match: UserWarning: <the note>`, Python's class for it, where the docs quote the note:
    its warnings on its stderr as in a process of its own, since pytest records this process's instead."""
    campaigns, creators = tmp_path / "campaigns.csv", tmp_path / "creators.csv"
    write_csv(campaigns, [dict(CAMPAIGN, product_typ="non_standard")])
    write_csv(creators, creators_rows(3))
    done = run_in_process(
        *("match", "--campaigns", str(campaigns), "--creators", str(creators), "--out", str(tmp_path / "m.csv")),
        *("--model", str(tmp_path / "no-model")),  # refused after the tables are read: nothing to load or match
        cwd=tmp_path,
        warnings_on_stderr=True,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"creator-match: warning: {campaigns}: column 'product_typ' is not in the campaigns table and was ignored; "
        "did you mean product_type?"
    )


def test_a_misspelt_copy_beside_the_right_column_is_warned_about_too(tmp_path):
    """A trial's campaign said `product_type: auto` and `product_typ: standard`: the seller's standard was lost."""
    path = tmp_path / "campaigns.csv"
    write_csv(path, [dict(CAMPAIGN, product_type="auto", product_typ="standard")])
    with pytest.warns(UserWarning, match=r"column 'product_typ' is not in the campaigns table .* product_type\?$"):
        table = read_table(path, "campaigns")
    assert table.frame["product_type"].tolist() == ["auto"]


def test_a_file_with_only_contract_columns_reads_without_a_warning(tmp_path):
    path = tmp_path / "campaigns.csv"
    write_csv(path, [dict(CAMPAIGN, product_type="standard")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_table(path, "campaigns").frame["product_type"].tolist() == ["standard"]


def test_a_misspelt_required_column_is_refused_naming_what_it_probably_is(tmp_path):
    path = tmp_path / "campaigns.csv"
    write_csv(path, [{("comission_rate" if k == "commission_rate" else k): v for k, v in CAMPAIGN.items()}])
    with pytest.raises(InputError) as refused:
        read_table(path, "campaigns")
    assert str(refused.value) == (
        f"{path}: no commission_rate column, required in the campaigns table; nothing was read (found "
        "'comission_rate' for commission_rate: column names are exact, lower case and without spaces)"
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_an_optional_column_written_another_way_refuses_the_file_as_a_required_one_does(tmp_path, fmt):
    """A trial's `Product Type` column was ignored with a warning and the batch exited 0, every declared type `auto`,
    where `Commission Rate` was refused. The same name in another case or with spaces is the seller's column, not a
    team's own: the file is refused (exit 2), beside the right column too; a misspelling is still only warned."""
    path = tmp_path / f"campaigns.{fmt}"
    cases = {
        "'Product Type' and 'inStock' are the campaigns table's product_type and in_stock columns written another way, "
        "and their values would be lost": {"Product Type": "standard", "inStock": "false"},
        "'Product Type' (beside product_type itself) is the campaigns table's product_type column written another "
        "way, and its values would be lost": {"product_type": "auto", "Product Type": "standard"},
    }
    for said, columns in cases.items():
        write_table(path, [CAMPAIGN | columns])
        whole = f"{path}: {said}; nothing was read (column names are exact, lower case and without spaces)"
        with pytest.raises(InputError, match=f"^{re.escape(whole)}$"):
            read_table(path, "campaigns")


def test_match_refuses_a_campaigns_file_with_an_optional_column_written_another_way(tmp_path):
    campaigns, creators = tmp_path / "campaigns.csv", tmp_path / "creators.csv"
    write_csv(campaigns, [dict(CAMPAIGN, **{"Product Type": "standard"})])
    write_csv(creators, creators_rows(3))
    done = run_in_process(
        *("match", "--campaigns", str(campaigns), "--creators", str(creators), "--out", str(tmp_path / "m.csv")),
        *("--model", str(tmp_path / "no-model")),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "'Product Type' is the campaigns table's product_type column written another way" in done.stderr
    assert not (tmp_path / "m.csv").exists()


def test_a_frame_given_to_the_python_api_is_warned_about_too():
    frame = pd.DataFrame([dict(CAMPAIGN, **{"In Stock": "false"})])
    with pytest.warns(UserWarning, match=r"^the campaigns given: column 'In Stock' .* did you mean in_stock\?$"):
        table = valid_rows(frame, "campaigns")
    assert table.frame["in_stock"].tolist() == [True]


def test_a_frame_indexed_by_a_column_the_table_reads_is_read_with_that_column():
    """`frame.set_index("campaign_id")` handed to match_many rejected every campaign as "column campaign_id: required
    value is missing", id "?": the pandas way of keying a table by its id lost the id. A named index level the table
    reads, and the frame has no column of, is that column; one beside a column of the same name is left alone."""
    campaigns = pd.DataFrame([CAMPAIGN, dict(CAMPAIGN, campaign_id="c2")])
    keyed = valid_rows(campaigns.set_index("campaign_id"), "campaigns")
    assert keyed.rejects == [] and keyed.frame["campaign_id"].tolist() == ["c1", "c2"]
    creators = pd.DataFrame(creators_rows(3)).set_index(["creator_id", "handle"])
    table = valid_rows(creators, "creators")
    assert table.rejects == [] and table.frame["creator_id"].tolist() == ["u1", "u2", "u3"]
    assert table.frame["handle"].tolist() == ["@glow"] * 3
    beside = campaigns.set_index(pd.Index(["x", "y"], name="campaign_id"))
    assert valid_rows(beside, "campaigns").frame["campaign_id"].tolist() == ["c1", "c2"]
