"""Order credit from touches and purchases: hand-computed cases where the models and windows disagree."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.attribution import attribute
from training.dataset import read_training_tables, relabel

DAY = dt.timedelta(hours=24)
FORTNIGHT = dt.timedelta(hours=336)
T1 = pd.Timestamp("2026-03-10 12:00")  # shopper s1 buys for 100.00 (2 units)
T2 = pd.Timestamp("2026-03-12 09:00")  # shopper s2 buys for 40.00 (1 unit)


@pytest.fixture
def events() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two purchases in campaign c1 and the clicks before (and around) them.

    s1 clicked A 10 days, B 30 hours, C 5 hours and D 1 hour before buying: a 24-hour window sees C and D,
    a 14-day window all four. s2 clicked A 3 hours and E 2 hours before buying, and E again an hour after
    (a click after the purchase earns nothing); s2's click on D in campaign c2 is another campaign's.
    """
    touches = pd.DataFrame(
        [
            ("s1", "c1", "A", T1 - pd.Timedelta(days=10)),
            ("s1", "c1", "B", T1 - pd.Timedelta(hours=30)),
            ("s1", "c1", "C", T1 - pd.Timedelta(hours=5)),
            ("s1", "c1", "D", T1 - pd.Timedelta(hours=1)),
            ("s2", "c1", "E", T2 + pd.Timedelta(hours=1)),
            ("s2", "c1", "A", T2 - pd.Timedelta(hours=3)),
            ("s2", "c1", "E", T2 - pd.Timedelta(hours=2)),
            ("s2", "c2", "D", T2 - pd.Timedelta(hours=1)),
        ],
        columns=["shopper_id", "campaign_id", "creator_id", "ts"],
    )
    purchases = pd.DataFrame(
        [("s1", "c1", T1, 100.0, 2), ("s2", "c1", T2, 40.0, 1)],
        columns=["shopper_id", "campaign_id", "ts", "sales", "units"],
    )
    return touches, purchases


def credit(touches, purchases, model, window) -> dict[str, tuple[float, float, float]]:
    """creator -> (orders, units, sales) credited in campaign c1 (a click that earned nothing is left out)."""
    table = attribute(touches, purchases, model, window)
    assert set(table["campaign_id"]) <= {"c1"}
    table = table[table["orders"] > 0]
    return {row.creator_id: (row.orders, row.units, row.sales) for row in table.sort_values("creator_id").itertuples()}


# Expected credit, worked by hand. P1 = s1's purchase (100.00, 2 units), P2 = s2's (40.00, 1 unit).
EXPECTED = {
    # Last click, 24 h: P1 -> D (its last click, 1 h before); P2 -> E (2 h before; the later click is after it).
    ("last_click", DAY): {"D": (1.0, 2.0, 100.0), "E": (1.0, 1.0, 40.0)},
    # Last click does not care how far back the window reaches: the last click is the same.
    ("last_click", FORTNIGHT): {"D": (1.0, 2.0, 100.0), "E": (1.0, 1.0, 40.0)},
    # Linear, 24 h: P1 halves between C and D (0.5 x 100 = 50, 0.5 x 2 = 1 unit);
    # P2 halves between A and E (0.5 x 40 = 20, 0.5 x 1 = 0.5 unit).
    ("linear", DAY): {
        "A": (0.5, 0.5, 20.0),
        "C": (0.5, 1.0, 50.0),
        "D": (0.5, 1.0, 50.0),
        "E": (0.5, 0.5, 20.0),
    },
    # Linear, 14 days: P1 quarters between A, B, C, D (0.25 x 100 = 25, 0.25 x 2 = 0.5 unit);
    # P2 halves between A and E. A: 0.25 + 0.5 = 0.75 orders, 25 + 20 = 45, 0.5 + 0.5 = 1 unit.
    ("linear", FORTNIGHT): {
        "A": (0.75, 1.0, 45.0),
        "B": (0.25, 0.5, 25.0),
        "C": (0.25, 0.5, 25.0),
        "D": (0.25, 0.5, 25.0),
        "E": (0.5, 0.5, 20.0),
    },
    # Position-based, 24 h: two clicks each split evenly, so here it agrees with linear.
    ("position_based", DAY): {
        "A": (0.5, 0.5, 20.0),
        "C": (0.5, 1.0, 50.0),
        "D": (0.5, 1.0, 50.0),
        "E": (0.5, 0.5, 20.0),
    },
    # Position-based, 14 days: P1's first (A) and last (D) take 0.4 each (40, 0.8 unit); the middle two
    # share 0.2, 0.1 each (10, 0.2 unit). P2 still splits A/E evenly.
    # A: 0.4 + 0.5 = 0.9 orders, 40 + 20 = 60, 0.8 + 0.5 = 1.3 units.
    ("position_based", FORTNIGHT): {
        "A": (0.9, 1.3, 60.0),
        "B": (0.1, 0.2, 10.0),
        "C": (0.1, 0.2, 10.0),
        "D": (0.4, 0.8, 40.0),
        "E": (0.5, 0.5, 20.0),
    },
}


@pytest.mark.parametrize(("model", "window"), list(EXPECTED), ids=[f"{m}-{w.days}d" for m, w in EXPECTED])
def test_credit_matches_the_hand_computed_case(events, model, window):
    got = credit(*events, model, window)

    expected = EXPECTED[model, window]
    assert list(got) == list(expected)
    for creator in expected:
        np.testing.assert_allclose(got[creator], expected[creator], err_msg=creator)
    # Every purchase that has a click in the window is credited exactly once, whatever the model.
    assert sum(orders for orders, _, _ in got.values()) == pytest.approx(2.0)


def test_three_clicks_under_position_based_give_40_20_40(events):
    """A single middle click takes the whole middle 20%."""
    touches, purchases = events
    three = touches[touches["creator_id"] != "B"]  # P1 within 14 days: A (first), C (middle), D (last)

    got = credit(three, purchases.iloc[:1], "position_based", FORTNIGHT)

    # 0.4 x 100 = 40, 0.2 x 100 = 20, 0.4 x 100 = 40.
    assert {c: round(sales, 9) for c, (_, _, sales) in got.items()} == {"A": 40.0, "C": 20.0, "D": 40.0}


def test_the_window_is_inclusive_to_the_second():
    """A click exactly 24 hours before the purchase counts; one a second earlier does not."""
    touches = pd.DataFrame(
        [("s", "c1", "F", T1 - DAY), ("s", "c1", "G", T1 - DAY - pd.Timedelta(seconds=1))],
        columns=["shopper_id", "campaign_id", "creator_id", "ts"],
    )
    purchases = pd.DataFrame([("s", "c1", T1, 10.0, 1)], columns=["shopper_id", "campaign_id", "ts", "sales", "units"])

    assert credit(touches, purchases, "linear", DAY) == {"F": (1.0, 1.0, 10.0)}
    # Two days back both count: G first, F last.
    assert credit(touches, purchases, "linear", 2 * DAY) == {"F": (0.5, 0.5, 5.0), "G": (0.5, 0.5, 5.0)}


@pytest.mark.parametrize(
    ("model", "window", "message"),
    [
        ("first_click", DAY, "Got attribution model 'first_click'; expected one of last_click"),
        ("linear", dt.timedelta(0), "Got window=0:00:00; expected a positive duration"),
    ],
)
def test_unknown_model_or_empty_window_is_refused_by_name(events, model, window, message):
    with pytest.raises(ValueError, match=message):
        attribute(*events, model, window)


# --- relabelling: the performance table rebuilt from the events --------------------------------------------


def performance_rows() -> pd.DataFrame:
    """The dashboard's rows: c1 has event logs (A has no recorded click), c9 has none."""
    return pd.DataFrame(
        [
            ("c1", "A", 100, 0, 0, 0.0),
            ("c1", "B", 100, 3, 0, 0.0),
            ("c1", "C", 100, 3, 0, 0.0),
            ("c1", "D", 100, 3, 1, 100.0),
            ("c1", "E", 100, 3, 1, 40.0),
            ("c1", "F", 100, 5, 2, 70.0),
            ("c9", "A", 100, 5, 2, 55.5),
        ],
        columns=["campaign_id", "creator_id", "impressions", "clicks", "orders", "sales"],
    )


def test_relabel_recredits_campaigns_with_events_and_keeps_the_rest(events):
    rows = performance_rows()

    got = relabel(rows, *events, "position_based", FORTNIGHT)

    # c1 from the 14-day position-based credit above; orders never exceed the row's clicks (A: min(0.9, 0) = 0)
    # while its sales stay the credited 60; F, whose orders no event supports, drops to 0. c9 keeps its row.
    assert got["orders"].tolist() == pytest.approx([0.0, 0.1, 0.1, 0.4, 0.5, 0.0, 2.0])
    assert got["sales"].tolist() == pytest.approx([60.0, 10.0, 10.0, 40.0, 20.0, 0.0, 55.5])
    pd.testing.assert_frame_equal(got.drop(columns=["orders", "sales"]), rows.drop(columns=["orders", "sales"]))
    assert rows["orders"].tolist() == [0, 0, 0, 1, 1, 2, 2], "the input is not changed in place"


def test_relabel_under_a_shorter_window_and_linear_credit(events):
    got = relabel(performance_rows(), *events, "linear", DAY)

    # Linear 24 h: A min(0.5, 0) = 0 orders but 20 in sales; B no click in 24 h; C, D 0.5 and 50; E 0.5 and 20.
    assert got["orders"].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 2.0])
    assert got["sales"].tolist() == pytest.approx([20.0, 0.0, 50.0, 50.0, 20.0, 0.0, 55.5])


def test_the_default_labels_are_the_performance_table_as_exported(events):
    """24-hour last click is the dashboard's own view: the table is used as it is, events or not."""
    rows = performance_rows()

    assert relabel(rows, *events, "last_click", DAY) is rows
    assert relabel(rows, None, None, "position_based", FORTNIGHT) is rows


def test_the_simulated_dashboard_is_last_click_over_24_hours_of_its_events(world_dir):
    """On a generated world with event logs, 24-hour last-click credit rebuilds the performance table's orders
    and sales of every settled row of those campaigns; a 14-day window only adds credit."""
    tables = read_training_tables(world_dir)
    assert tables.touches is not None and len(tables.purchases) > 0
    performance = tables.performance
    covered = performance[
        performance["campaign_id"].isin(set(tables.touches["campaign_id"])) & (performance["status"] == "settled")
    ]
    keys = pd.MultiIndex.from_frame(covered[["campaign_id", "creator_id"]])

    day = attribute(tables.touches, tables.purchases, "last_click", DAY).set_index(["campaign_id", "creator_id"])
    fortnight = attribute(tables.touches, tables.purchases, "last_click", FORTNIGHT).set_index(
        ["campaign_id", "creator_id"]
    )

    assert set(day.index) <= set(keys)
    rebuilt = day.reindex(keys).fillna(0.0)
    np.testing.assert_array_equal(rebuilt["orders"].to_numpy(), covered["orders"].to_numpy())
    np.testing.assert_allclose(rebuilt["sales"].to_numpy(), covered["sales"].to_numpy(), atol=0.005)
    longer = fortnight.reindex(keys).fillna(0.0)
    assert (longer["orders"].to_numpy() >= rebuilt["orders"].to_numpy()).all()
    assert longer["orders"].sum() > rebuilt["orders"].sum()
