"""Declared tables and keyed writes: re-running a write never duplicates a row; bad rows are named precisely."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco.data.catalogue import Catalogue
from fashion_reco.errors import IdentifierError, SnowflakeError
from fashion_reco.snowflake import tables
from fashion_reco.snowflake.backend import AccountBackend, table_ddl
from fashion_reco.snowflake.tables import (
    TABLES,
    catalogue_rows,
    clickstream_rows,
    customers_rows,
    embedding_rows,
    image_rows,
    recommendation_rows,
    table_name,
    write_table,
)


@pytest.fixture(scope="module")
def catalogue(few_photos: list[Path]) -> Catalogue:
    photos = few_photos[:12]
    return Catalogue.from_frame(
        pd.DataFrame(
            {
                "item_id": [p.stem for p in photos],
                "image_path": [str(p) for p in photos],
                "label": [p.parent.name for p in photos],
                "colour": ["red", None, "blue"] * 4,
                "price": np.linspace(5, 60, 12),
            }
        )
    )


@pytest.fixture(params=["merge", "rebuild"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both local write paths: Table.merge (as on an account) and the large-table rebuild of local testing."""
    monkeypatch.setattr(tables, "LOCAL_MERGE_MAX_PAIRS", 10**12 if request.param == "merge" else 0)
    return "TM_" if request.param == "merge" else "TR_"


def test_declared_schemas_and_names() -> None:
    assert set(TABLES) == {
        "CATALOGUE",
        "IMAGES",
        "PHOTOS",
        "IMAGE_EMBEDDINGS",
        "CUSTOMERS",
        "CUSTOMER_PROFILES",
        "CLICKSTREAM",
        "RECOMMENDATIONS",
    }
    assert TABLES["RECOMMENDATIONS"].columns == [
        "CUSTOMER_ID",
        "ITEM_ID",
        "SCORE",
        "RANK",
        "REASON",
        "GENERATED_AT",
    ]
    assert table_name("CATALOGUE") == "FASHION_RECO_CATALOGUE"
    assert table_name("images", "acme.reco.fr_") == "ACME.RECO.FR_IMAGES"
    with pytest.raises(IdentifierError):
        table_name("CATALOGUE", "x;drop ")
    ddl = table_ddl(table_name("IMAGE_EMBEDDINGS"), TABLES["IMAGE_EMBEDDINGS"].schema)
    assert '"EMBEDDING" VECTOR(FLOAT, 512) NOT NULL' in ddl


def test_catalogue_and_images_upsert_by_item_id(local_session, catalogue: Catalogue, mode: str) -> None:
    rows = catalogue_rows(catalogue)
    assert json.loads(json.dumps(rows.loc[0, "ATTRIBUTES"])) == {
        "colour": "red"
    }  # a numeric price is a column
    assert rows.loc[1, "ATTRIBUTES"] is None and rows["PRICE"].tolist() == np.linspace(5, 60, 12).tolist()
    first = write_table(local_session, f"{mode}CATALOGUE", rows)
    assert (first.inserted, first.updated, first.rows) == (12, 0, 12)
    again = write_table(local_session, f"{mode}CATALOGUE", rows)
    assert (again.inserted, again.updated, again.rows) == (0, 12, 12)

    changed = rows.copy()
    changed.loc[0, "LABEL"] = "relabelled"
    write_table(local_session, f"{mode}CATALOGUE", changed.iloc[:3])
    table = local_session.table(f"{mode}CATALOGUE").to_pandas().set_index("ITEM_ID")
    assert len(table) == 12 and table.loc[rows.loc[0, "ITEM_ID"], "LABEL"] == "relabelled"
    for _, row in rows.iterrows():  # VARIANT values survive every rewrite unchanged
        stored_attributes = table.loc[row["ITEM_ID"], "ATTRIBUTES"]
        assert (json.loads(stored_attributes) if stored_attributes is not None else None) == row["ATTRIBUTES"]

    images = image_rows(catalogue)
    assert images["IMAGE_SHA256"].tolist() == [
        hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in catalogue.items["image_path"]
    ]
    write_table(local_session, f"{mode}IMAGES", images)
    write_table(local_session, f"{mode}IMAGES", images)
    stored = local_session.table(f"{mode}IMAGES").sort("ITEM_ID").collect()
    assert len(stored) == 12
    by_id = dict(zip(images["ITEM_ID"], images["IMAGE"], strict=True))
    assert all(bytes(r["IMAGE"]) == by_id[r["ITEM_ID"]] for r in stored)


def test_embeddings_round_trip_and_validation(local_session, catalogue: Catalogue, mode: str) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(12, 512)).astype(np.float32)
    rows = embedding_rows(catalogue.item_ids, vectors, model_sha="abc123")
    write_table(local_session, f"{mode}IMAGE_EMBEDDINGS", rows)
    result = write_table(local_session, f"{mode}IMAGE_EMBEDDINGS", rows)
    assert result.rows == 12 and result.inserted == 0
    back = {r["ITEM_ID"]: r["EMBEDDING"] for r in local_session.table(f"{mode}IMAGE_EMBEDDINGS").collect()}
    got = np.array([json.loads(back[i]) if isinstance(back[i], str) else back[i] for i in catalogue.item_ids])
    np.testing.assert_array_equal(got.astype(np.float32), vectors)

    with pytest.raises(SnowflakeError, match=r"shape \[N, 512\]"):
        embedding_rows(catalogue.item_ids, vectors[:, :10])
    with pytest.raises(SnowflakeError, match="11 embeddings for 12 items"):
        embedding_rows(catalogue.item_ids, vectors[:11])
    bad = vectors.copy()
    bad[4, 7] = np.nan
    with pytest.raises(SnowflakeError) as info:
        embedding_rows(catalogue.item_ids, bad)
    assert info.value.row == 5 and info.value.item_id == catalogue.item_ids[4]


def test_clickstream_event_ids_are_stable_and_keep_genuine_repeats(local_session, mode: str) -> None:
    t0 = pd.Timestamp("2024-03-01 10:00:00")
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2"],
            "item_id": ["i1", "i1", "i2", "i1"],
            "event_type": ["view", "view", "purchase", "add_to_cart"],
            "timestamp": [t0, t0, t0 + pd.Timedelta(minutes=5), t0],
            "quantity": [None, None, 2, None],
        }
    )
    rows = clickstream_rows(frame)
    assert rows["EVENT_ID"].nunique() == 4  # the two identical views are two events
    assert clickstream_rows(frame)["EVENT_ID"].tolist() == rows["EVENT_ID"].tolist()
    write_table(local_session, f"{mode}CLICKSTREAM", rows)
    write_table(local_session, f"{mode}CLICKSTREAM", clickstream_rows(frame))
    stored = local_session.table(f"{mode}CLICKSTREAM").to_pandas()
    assert len(stored) == 4
    assert stored.loc[stored["EVENT_TYPE"] == "purchase", "QUANTITY"].item() == 2.0
    assert pd.Timestamp(stored["TIMESTAMP"].min()) == t0


def test_customers_upsert(local_session, mode: str) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "age_band": ["25-34", None],
            "gender": ["f", "m"],
            "preferred_labels": ["dress;skirt", None],
            "signup_date": [pd.Timestamp("2023-05-01"), pd.NaT],
            "loyalty_tier": ["gold", "silver"],
        }
    )
    rows = customers_rows(frame)
    assert rows.loc[0, "SIGNUP_DATE"] == dt.date(2023, 5, 1) and rows.loc[1, "SIGNUP_DATE"] is None
    assert rows.loc[0, "ATTRIBUTES"] == {"loyalty_tier": "gold"}
    write_table(local_session, f"{mode}CUSTOMERS", rows)
    assert write_table(local_session, f"{mode}CUSTOMERS", rows).rows == 2
    stored = {r["CUSTOMER_ID"]: r for r in local_session.table(f"{mode}CUSTOMERS").collect()}
    assert stored["c1"]["SIGNUP_DATE"] == dt.date(2023, 5, 1) and stored["c2"]["SIGNUP_DATE"] is None
    assert json.loads(stored["c1"]["ATTRIBUTES"]) == {"loyalty_tier": "gold"}


def test_recommendations_are_replaced_per_customer(local_session, mode: str) -> None:
    recs = pd.DataFrame(
        {
            "customer_id": ["c1"] * 3 + ["c2"] * 2,
            "item_id": ["a", "b", "c", "a", "d"],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5],
            "rank": [1, 2, 3, 1, 2],
            "reason": "similar style",
        }
    )
    stamp = dt.datetime(2024, 1, 1, 12)
    write_table(local_session, f"{mode}RECOMMENDATIONS", recommendation_rows(recs, stamp))
    result = write_table(local_session, f"{mode}RECOMMENDATIONS", recommendation_rows(recs, stamp))
    assert (result.deleted, result.inserted, result.rows) == (5, 5, 5)
    shorter = recs[recs["customer_id"] == "c1"].iloc[:2].assign(item_id=["x", "y"])
    result = write_table(local_session, f"{mode}RECOMMENDATIONS", recommendation_rows(shorter, stamp))
    stored = local_session.table(f"{mode}RECOMMENDATIONS").sort("CUSTOMER_ID", "RANK").to_pandas()
    assert result.rows == 4
    assert stored[["CUSTOMER_ID", "ITEM_ID", "RANK"]].values.tolist() == [
        ["c1", "x", 1],
        ["c1", "y", 2],
        ["c2", "a", 1],
        ["c2", "d", 2],
    ]


def test_bad_rows_are_named(local_session, catalogue: Catalogue) -> None:
    rows = catalogue_rows(catalogue)
    duplicated = pd.concat([rows, rows.iloc[[3]]], ignore_index=True)
    with pytest.raises(SnowflakeError, match="duplicate key") as info:
        write_table(local_session, "T_BAD_CATALOGUE", duplicated)
    assert info.value.row == 13 and info.value.column == "ITEM_ID"
    with pytest.raises(SnowflakeError, match="not in the declared schema") as info:
        write_table(local_session, "T_BAD_CATALOGUE", rows.assign(EXTRA=1))
    assert info.value.column == "EXTRA"
    with pytest.raises(SnowflakeError, match="required column missing") as info:
        write_table(local_session, "T_BAD_CATALOGUE", rows.drop(columns="ITEM_ID"))
    assert info.value.column == "ITEM_ID"
    with pytest.raises(SnowflakeError, match="no declared schema"):
        write_table(local_session, "SOMETHING_ELSE", rows)
    with pytest.raises(IdentifierError):
        write_table(local_session, "T_CATALOGUE; DROP TABLE X", rows)
    with pytest.raises(SnowflakeError, match="cannot read image") as info:
        image_rows(pd.DataFrame({"item_id": ["gone"], "image_path": ["/nonexistent/photo.jpg"]}))
    assert info.value.item_id == "gone" and info.value.row == 1


def test_account_backend_creates_declared_tables_with_ddl(recording_session) -> None:
    session = recording_session
    AccountBackend(session).create_table("FASHION_RECO_IMAGES", TABLES["IMAGES"].schema)
    assert session.statements == [
        'CREATE TABLE IF NOT EXISTS "FASHION_RECO_IMAGES" ("ITEM_ID" VARCHAR NOT NULL, "IMAGE" BINARY NOT NULL, '
        '"IMAGE_SHA256" VARCHAR NOT NULL)'
    ]


def test_attributes_are_built_column_wise_with_json_friendly_values() -> None:
    """Every extra column becomes a JSON-friendly value (numpy → Python, times → ISO text, other objects → str);
    missing values are left out, and a row with nothing extra has ATTRIBUTES NULL."""
    from fashion_reco.snowflake.tables import customers_rows

    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "visits": pd.array([3, None, 7], dtype="Int64"),
            "spend": [1.5, np.nan, 2.0],
            "vip": pd.array([True, None, True], dtype="boolean"),
            "last_seen": pd.to_datetime(["2024-05-01 10:30", None, "2024-05-03 00:00"]),
            "tags": [["a", "b"], None, "x"],
        }
    )
    rows = customers_rows(frame)["ATTRIBUTES"].tolist()
    assert rows[0] == {
        "visits": 3,
        "spend": 1.5,
        "vip": True,
        "last_seen": "2024-05-01T10:30:00",
        "tags": "['a', 'b']",
    }
    assert rows[1] is None
    assert rows[2] == {
        "visits": 7,
        "spend": 2.0,
        "vip": True,
        "last_seen": "2024-05-03T00:00:00",
        "tags": "x",
    }
    assert all(type(v) in (int, float, bool, str) for row in (rows[0], rows[2]) for v in row.values())
    json.dumps(rows)  # JSON-serialisable as they are
