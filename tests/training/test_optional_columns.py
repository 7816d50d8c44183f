"""Every optional column of every table may be absent or hold no value: a ranker trains, and match and the Python
API (the service's scoring) score with it.

Such a column is a feature with no value at all for the boosters, which scikit-learn 1.9's binner failed on
("window shape cannot be larger than input array shape"): the context models, the heads and the selection
classifier all fit on the creators' optional columns. Two trainings cover every path: one with each optional
column of every table dropped (and selection weights on), one with each present and all null. Both on the small
world (`small_world_dir`): what failed is a column with no value at all, whatever the number of rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.tables import TABLES, read_table
from matcher.api import Matcher
from tests.commands import run_in_process
from training.ranker import CreatorRanker
from training.train import train

pytestmark = pytest.mark.slow

FILES = {"creators": "creators", "campaigns": "campaigns", "performance": "performance", "new_campaigns": "campaigns"}


def optional_columns(table: str) -> list[str]:
    """The columns `table` does not require."""
    return [name for name, info in TABLES[table].row_model.model_fields.items() if not info.is_required()]


def without_optional_values(world: Path, out: Path, how: str) -> Path:
    """The world's tables in `out`, each optional column dropped (`how` "absent") or all null ("null")."""
    out.mkdir()
    for file, table in FILES.items():
        arrow = pq.read_table(world / f"{file}.parquet")
        for name in optional_columns(table):
            assert name in arrow.column_names, f"the simulated {file} lacks optional column {name}"
            at = arrow.column_names.index(name)
            nulls = pa.nulls(arrow.num_rows, arrow.schema.field(name).type)
            arrow = arrow.drop_columns([name]) if how == "absent" else arrow.set_column(at, name, nulls)
        pq.write_table(arrow, out / f"{file}.parquet")
    return out


@pytest.mark.parametrize("how", ["absent", "null"])
def test_optional_columns_absent_or_empty_train_and_match(how, small_world_dir, embedder, tracking_uri, tmp_path):
    data = without_optional_values(small_world_dir, tmp_path / how, how)
    # Selection weights fit a classifier of their own on the same columns: on for one of the two trainings. The
    # heads bin every column whatever their number of iterations: a lighter ranker keeps the runs short.
    made = train(
        data,
        model_name=f"optional-{how}",
        embedder=embedder,
        ranker=CreatorRanker(max_iter=20),
        selection_power=0.5 if how == "absent" else 0,
    )
    assert made.n_pairs > 0 and made.rejects == []

    out = tmp_path / "matches.parquet"
    done = run_in_process(
        "match",
        "--campaigns",
        str(data / "new_campaigns.parquet"),
        "--creators",
        str(data / "creators.parquet"),
        "--performance",
        str(data / "performance.parquet"),
        "--model",
        made.model_uri,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    matches = pd.read_parquet(out)
    assert matches["campaign_id"].nunique() == pq.read_metadata(data / "new_campaigns.parquet").num_rows
    assert matches["score"].notna().all()

    # The creators with every optional value filled in, scored by that model as the service scores them.
    creators = read_table(small_world_dir / "creators.parquet", "creators").frame
    campaigns = read_table(small_world_dir / "new_campaigns.parquet", "campaigns").frame
    result = Matcher(creators, model=made.model_uri, embedder=embedder).match_many(campaigns)
    assert result.rejects == [] and len(result.matches) > 0 and result.matches["score"].notna().all()
