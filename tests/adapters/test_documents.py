"""The document views' contract, run against both adapters over real connections: PostgreSQL
(a schema per view in the session's throw-away database) and a MongoDB server (a database
per view; SecantusDB unless ``LOYALTY_TEST_MONGO_URL`` names a real MongoDB)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from threading import Event, Thread
from typing import Any, Protocol

import msgspec
import pytest
from eventsourcing.persistence import IntegrityError, Tracking, WaitInterruptedError
from eventsourcing.postgres import PostgresDatastore

from loyalty.adapters.documents import (
    DocumentChange,
    DocumentQuery,
    DocumentView,
    MongoDocumentView,
    PostgresDocumentView,
    Scalar,
    document_view,
)
from loyalty.settings import Settings
from tests.adapters.mongo import mongo_url as mongo_url

APP = "ledger"


class NewView(Protocol):
    def __call__(self, *, indexed: bool = True) -> DocumentView: ...


@pytest.fixture(params=["postgres", "mongodb"])
def new_view(request: pytest.FixtureRequest) -> Iterator[NewView]:
    """Makes fresh, empty views of one kind; each is dropped (MongoDB) or left to the
    session's database (PostgreSQL) and closed at the end of the test."""
    kind: str = request.param
    made: list[DocumentView] = []

    def make(*, indexed: bool = True) -> DocumentView:
        name = f"view_{secrets.token_hex(6)}"
        if kind == "postgres":
            database: Settings = request.getfixturevalue("database")
            datastore = PostgresDatastore(
                database.pg_db,
                database.pg_host,
                database.pg_port,
                database.pg_admin_user,
                database.pg_admin_password,
                schema=name,
                max_overflow=3,
            )
            view = document_view(kind, postgres=datastore, mongo_url=None, name=name)
        else:
            url: str = request.getfixturevalue("mongo_url")
            view = document_view(kind, postgres=None, mongo_url=url, name=name)
        view.create_table(indexed=indexed)
        made.append(view)
        return view

    yield make
    for view in made:
        if isinstance(view, MongoDocumentView):
            view.client.drop_database(view.database.name)
        view.close()


@pytest.fixture
def view(new_view: NewView) -> DocumentView:
    return new_view()


def put(collection: str, key: str, **body: Any) -> DocumentChange:
    return DocumentChange(collection=collection, key=key, body=body)


def delete(collection: str, key: str) -> DocumentChange:
    return DocumentChange(collection=collection, key=key, body=None)


def at(position: int) -> Tracking:
    return Tracking(application_name=APP, notification_id=position)


def keys(view: DocumentView, collection: str, query: DocumentQuery) -> list[str]:
    return [item["key"] for item in view.find(collection, query).items]


CUSTOMERS = [
    put("customers", "c1", segment="champions", store="s1", spend="120.50", visits=9),
    put("customers", "c2", segment="lost", store="s1", spend="3.00", visits=1),
    put("customers", "c3", segment="champions", store="s2", spend="99.90", visits=9),
    put("customers", "c4", segment="loyal", store="s1", spend="40.00", visits=5),
]


def test_a_written_document_reads_back_by_key_with_its_key(view: DocumentView) -> None:
    view.write([put("customers", "c1", name_initial="A", tags=["vip"], spend="1.50")], at(1))

    assert view.get("customers", "c1") == {
        "key": "c1",
        "name_initial": "A",
        "tags": ["vip"],
        "spend": "1.50",
    }
    assert view.get("customers", "c2") is None
    assert view.get("segments", "c1") is None


def test_several_documents_read_back_in_one_call_and_missing_ones_are_left_out(
    view: DocumentView,
) -> None:
    view.write([put("c", "a", n=1), put("c", "b", n=2), put("d", "a", n=3)], at(1))

    found = view.get_many("c", ["a", "b", "zz"])

    assert found == {"a": {"key": "a", "n": 1}, "b": {"key": "b", "n": 2}}
    assert view.get_many("c", []) == {}


def test_a_body_replaces_the_document_whole(view: DocumentView) -> None:
    view.write([put("customers", "c1", segment="new", visits=1)], at(1))

    view.write([put("customers", "c1", segment="loyal")], at(2))

    assert view.get("customers", "c1") == {"key": "c1", "segment": "loyal"}


def test_a_change_without_body_deletes_the_document(view: DocumentView) -> None:
    view.write([put("customers", "c1", segment="new"), put("customers", "c2")], at(1))

    view.write([delete("customers", "c1"), delete("customers", "never-written")], at(2))

    assert view.get("customers", "c1") is None
    assert view.get("customers", "c2") == {"key": "c2"}


def test_the_last_change_to_a_document_in_a_batch_wins(view: DocumentView) -> None:
    view.write(
        [
            put("customers", "c1", visits=1),
            put("customers", "c2", visits=1),
            put("customers", "c1", visits=2),
            delete("customers", "c2"),
            put("customers", "c3", visits=1),
            delete("customers", "c3"),
            put("customers", "c3", visits=3),
        ],
        at(1),
    )

    assert view.get("customers", "c1") == {"key": "c1", "visits": 2}
    assert view.get("customers", "c2") is None
    assert view.get("customers", "c3") == {"key": "c3", "visits": 3}


def test_find_keeps_documents_equal_on_every_given_field(view: DocumentView) -> None:
    view.write(CUSTOMERS, at(1))

    assert keys(view, "customers", DocumentQuery(equals={"segment": "champions"})) == [
        "c1",
        "c3",
    ]
    both = DocumentQuery(equals={"segment": "champions", "visits": 9})
    assert keys(view, "customers", both) == ["c1", "c3"]
    assert keys(
        view, "customers", DocumentQuery(equals={"segment": "champions", "store": "s2"})
    ) == ["c3"]
    assert keys(view, "customers", DocumentQuery(equals={"key": "c4"})) == ["c4"]
    assert keys(view, "customers", DocumentQuery(equals={"visits": "9"})) == []


def test_find_matches_none_to_null_or_missing_and_a_value_to_a_list_holding_it(
    view: DocumentView,
) -> None:
    view.write(
        [
            put("customers", "c1", city=None, tags=["vip", "new"]),
            put("customers", "c2", tags=["new"]),
            put("customers", "c3", city="Roma", tags="vip"),
            put("customers", "c4", city="Roma", tags=[["vip"]], flag=True),
            put("customers", "c5", flag=1),
        ],
        at(1),
    )

    assert keys(view, "customers", DocumentQuery(equals={"city": None})) == ["c1", "c2", "c5"]
    assert keys(view, "customers", DocumentQuery(equals={"tags": "vip"})) == ["c1", "c3"]
    assert keys(view, "customers", DocumentQuery(equals={"flag": True})) == ["c4"]
    assert keys(view, "customers", DocumentQuery(equals={"flag": 1})) == ["c5"]


def test_find_sorts_descending_and_ascending_with_ties_broken_by_key(view: DocumentView) -> None:
    view.write(CUSTOMERS, at(1))

    by_visits = DocumentQuery(sort=(("visits", True),))
    by_store_then_visits = DocumentQuery(sort=(("store", False), ("visits", True)))
    by_key = DocumentQuery(sort=(("key", True),))

    assert keys(view, "customers", by_visits) == ["c1", "c3", "c4", "c2"]
    assert keys(view, "customers", by_store_then_visits) == ["c1", "c4", "c2", "c3"]
    assert keys(view, "customers", by_key) == ["c4", "c3", "c2", "c1"]


def test_find_orders_scalars_as_mongodb_does(view: DocumentView) -> None:
    view.write(
        [
            put("values", "true", value=True),
            put("values", "ten", value=10),
            put("values", "a", value="a"),
            put("values", "B", value="B"),
            put("values", "e-acute", value="é"),
            put("values", "missing"),
            put("values", "null", value=None),
            put("values", "minus", value=-2),
            put("values", "false", value=False),
        ],
        at(1),
    )

    ascending = keys(view, "values", DocumentQuery(sort=(("value", False),)))
    descending = keys(view, "values", DocumentQuery(sort=(("value", True),)))

    assert ascending == ["missing", "null", "minus", "ten", "B", "a", "e-acute", "false", "true"]
    assert descending == ["true", "false", "e-acute", "a", "B", "ten", "minus", "missing", "null"]


def test_find_pages_by_limit_and_offset_and_counts_every_match(view: DocumentView) -> None:
    view.write([put("customers", f"c{n:02}", store="s1") for n in range(12)], at(1))
    view.write([put("customers", "other", store="s2")], at(2))
    in_s1: dict[str, Scalar] = {"store": "s1"}

    first = view.find("customers", DocumentQuery(equals=in_s1, limit=5))
    last = view.find("customers", DocumentQuery(equals=in_s1, limit=5, offset=10))
    beyond = view.find("customers", DocumentQuery(equals=in_s1, limit=5, offset=20))

    assert [item["key"] for item in first.items] == ["c00", "c01", "c02", "c03", "c04"]
    assert [item["key"] for item in last.items] == ["c10", "c11"]
    assert beyond.items == []
    assert first.total == last.total == beyond.total == 12


def test_count_by_counts_the_matching_documents_per_value(view: DocumentView) -> None:
    view.write([*CUSTOMERS, put("customers", "c5", store="s2", segment=None)], at(1))
    view.write([put("customers", "c6", store="s2")], at(2))

    assert view.count_by("customers", "segment") == {
        "champions": 2,
        "lost": 1,
        "loyal": 1,
        None: 2,
    }
    assert view.count_by("customers", "segment", {"store": "s1"}) == {
        "champions": 1,
        "lost": 1,
        "loyal": 1,
    }
    assert view.count_by("customers", "visits", {"store": "s2"}) == {9: 1, None: 2}
    assert view.count_by("segments", "segment") == {}


def test_the_tracking_position_is_recorded_with_the_writes(view: DocumentView) -> None:
    assert view.max_tracking_id(APP) is None

    view.write([put("customers", "c1")], at(3))
    view.write([], at(7))

    assert view.max_tracking_id(APP) == 7
    assert view.max_tracking_id("another") is None
    assert view.has_tracking_id(APP, 7)
    assert view.has_tracking_id(APP, 2)
    assert not view.has_tracking_id(APP, 8)
    assert view.has_tracking_id("another", None)


def test_a_replayed_batch_raises_integrity_error_and_is_not_applied_again(
    view: DocumentView,
) -> None:
    batch = [put("customers", "c1", visits=1), delete("customers", "c2")]
    view.write([put("customers", "c2", visits=4)], at(4))
    view.write(batch, at(5))
    view.write([put("customers", "c1", visits=2), put("customers", "c2", visits=5)], at(6))

    with pytest.raises(IntegrityError):
        view.write(batch, at(5))
    with pytest.raises(IntegrityError):
        view.write(batch, at(6))

    assert view.get("customers", "c1") == {"key": "c1", "visits": 2}
    assert view.get("customers", "c2") == {"key": "c2", "visits": 5}
    assert view.max_tracking_id(APP) == 6


def test_a_batch_failing_midway_leaves_no_partial_write(view: DocumentView) -> None:
    """The position is recorded after the documents are written, so a stale one fails the
    transaction after its writes."""
    view.write(CUSTOMERS, at(5))
    failing = [
        put("customers", "c1", segment="lost"),
        put("customers", "c9", segment="new"),
        delete("customers", "c2"),
        put("segments", "lost", customers=2),
    ]

    with pytest.raises(IntegrityError):
        view.write(failing, at(4))

    assert view.find("customers", DocumentQuery()).items == [
        {**change.body, "key": change.key} for change in CUSTOMERS if change.body is not None
    ]
    assert view.get("segments", "lost") is None
    assert view.max_tracking_id(APP) == 5


def test_racing_writers_apply_each_position_exactly_once(view: DocumentView) -> None:
    applied: list[tuple[int, int]] = []

    def write_every_position(writer: int) -> None:
        for position in range(1, 21):
            change = put("counters", "k", writer=writer, position=position)
            try:
                view.write([change], at(position))
            except IntegrityError:
                continue
            applied.append((writer, position))

    writers = [Thread(target=write_every_position, args=(writer,)) for writer in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()

    assert sorted(position for _, position in applied) == list(range(1, 21))
    last_writer = next(writer for writer, position in applied if position == 20)
    assert view.get("counters", "k") == {"key": "k", "writer": last_writer, "position": 20}
    assert view.max_tracking_id(APP) == 20


def test_creating_an_existing_view_keeps_its_documents_and_position(view: DocumentView) -> None:
    view.write([put("customers", "c1", visits=1)], at(3))

    view.create_table()

    assert view.get("customers", "c1") == {"key": "c1", "visits": 1}
    assert view.max_tracking_id(APP) == 3


def test_insert_tracking_records_only_a_position_above_the_recorded_one(
    view: DocumentView,
) -> None:
    view.insert_tracking(at(3))

    with pytest.raises(IntegrityError):
        view.insert_tracking(at(3))
    with pytest.raises(IntegrityError):
        view.insert_tracking(at(2))
    view.insert_tracking(at(4))

    assert view.max_tracking_id(APP) == 4


def test_wait_returns_once_the_position_is_recorded(view: DocumentView) -> None:
    view.write([put("customers", "c1")], at(5))

    view.wait(APP, 5, timeout=0.1)
    view.wait(APP, 4, timeout=0.1)


def test_waiting_for_a_position_not_recorded_times_out(view: DocumentView) -> None:
    view.write([put("customers", "c1")], at(5))

    with pytest.raises(TimeoutError):
        view.wait(APP, 6, timeout=0.1)


def test_waiting_stops_when_interrupted(view: DocumentView) -> None:
    interrupt = Event()
    interrupt.set()

    with pytest.raises(WaitInterruptedError):
        view.wait(APP, 1, timeout=5, interrupt=interrupt)


def test_clear_empties_the_view(view: DocumentView) -> None:
    view.write(CUSTOMERS, at(5))
    view.write([put("segments", "champions", customers=2)], at(6))
    view.create_index("customers", ["segment", "visits"])

    view.clear()

    assert view.find("customers", DocumentQuery()).total == 0
    assert view.get("segments", "champions") is None
    assert view.max_tracking_id(APP) is None
    view.create_table()
    view.write([put("customers", "c1", segment="new")], at(1))
    assert keys(view, "customers", DocumentQuery(equals={"segment": "new"})) == ["c1"]


def test_two_views_are_independent(new_view: NewView) -> None:
    first, second = new_view(), new_view()

    first.write([put("customers", "c1", view="first")], at(5))
    second.write([put("customers", "c1", view="second")], at(2))
    second.clear()

    assert first.get("customers", "c1") == {"key": "c1", "view": "first"}
    assert first.max_tracking_id(APP) == 5
    assert second.get("customers", "c1") is None
    assert second.max_tracking_id(APP) is None


def test_an_index_leaves_the_results_of_find_unchanged(view: DocumentView) -> None:
    view.write(CUSTOMERS, at(1))
    query = DocumentQuery(equals={"store": "s1"}, sort=(("visits", True),), limit=2)
    before = view.find("customers", query)

    view.create_index("customers", ["store", "visits"])
    view.create_index("customers", ["store", "visits"])

    assert view.find("customers", query) == before
    assert [item["key"] for item in before.items] == ["c1", "c4"]


def test_loaded_documents_read_back_as_written_ones_do(new_view: NewView) -> None:
    written, loaded = new_view(), new_view()
    written.write(CUSTOMERS, at(1))

    assert loaded.load(iter(CUSTOMERS)) == len(CUSTOMERS)

    champions = DocumentQuery(equals={"segment": "champions"}, sort=(("visits", True),))
    for view in (written, loaded):
        assert view.get("customers", "c1") == written.get("customers", "c1")
        assert view.get_many("customers", ["c2", "c4"]) == written.get_many(
            "customers", ["c2", "c4"]
        )
        assert view.find("customers", champions) == written.find("customers", champions)
        assert view.count_by("customers", "store") == written.count_by("customers", "store")


def test_a_loaded_value_encoded_already_reads_back_decoded(view: DocumentView) -> None:
    recent = [{"movement_id": "m2", "amount": "9.90"}, {"movement_id": "m1", "amount": "1"}]
    raw = msgspec.Raw(msgspec.json.encode(recent))

    view.load([put("customers", "c1", recent=raw, visits=2)])

    assert view.get("customers", "c1") == {"key": "c1", "recent": recent, "visits": 2}


def test_a_load_keeps_text_that_copy_escapes(view: DocumentView) -> None:
    text = 'tab\there, line\nbreak, back\\slash, "quoted", caf\u00e9 \U0001f600'
    key = "k\t1\\"

    view.load([put("notes", key, text=text, raw=msgspec.Raw(msgspec.json.encode([text])))])

    assert view.get("notes", key) == {"key": key, "text": text, "raw": [text]}
    assert view.get_many("notes", [key]) == {key: {"key": key, "text": text, "raw": [text]}}


def test_a_load_records_no_position_which_a_later_write_does(view: DocumentView) -> None:
    view.load(CUSTOMERS)

    assert view.max_tracking_id(APP) is None
    view.write([put("customers", "c1", segment="lost")], at(9))
    assert view.max_tracking_id(APP) == 9
    assert view.get("customers", "c1") == {"key": "c1", "segment": "lost"}
    assert view.get("customers", "c2") == {
        "key": "c2",
        "segment": "lost",
        "store": "s1",
        "spend": "3.00",
        "visits": 1,
    }


def test_a_load_of_many_documents_stores_them_all(view: DocumentView) -> None:
    """More than two of the chunks a load reads at a time, from a generator (read once)."""
    count = 50_001
    documents = (
        put("evens" if n % 2 == 0 else "odds", f"k{n:05}", n=n, tens=n // 10 % 10)
        for n in range(count)
    )

    assert view.load(documents) == count

    assert view.find("evens", DocumentQuery()).total == 25_001
    assert view.find("odds", DocumentQuery()).total == 25_000
    assert sum(view.count_by("odds", "tens").values()) == 25_000
    assert view.get("odds", "k50000") is None
    assert view.get("evens", "k50000") == {"key": "k50000", "n": 50_000, "tens": 0}


def test_loading_a_key_that_exists_raises_integrity_error(view: DocumentView) -> None:
    view.write([put("customers", "c1", visits=1)], at(1))

    with pytest.raises(IntegrityError):
        view.load([put("customers", "c2"), put("customers", "c1", visits=2)])

    assert view.get("customers", "c1") == {"key": "c1", "visits": 1}


def test_loading_a_key_twice_raises_integrity_error(view: DocumentView) -> None:
    with pytest.raises(IntegrityError):
        view.load([put("customers", "c1", visits=1), put("customers", "c1", visits=2)])


def test_a_load_refuses_a_change_without_body(view: DocumentView) -> None:
    with pytest.raises(ValueError, match="no body"):
        view.load([put("customers", "c1"), delete("customers", "c2")])


def test_indexes_built_after_a_load_leave_the_results_of_find_unchanged(
    new_view: NewView,
) -> None:
    view = new_view(indexed=False)
    view.load(CUSTOMERS)
    query = DocumentQuery(equals={"store": "s1"}, sort=(("visits", True),))
    before = view.find("customers", query)

    view.create_indexes()
    view.create_indexes()

    assert view.find("customers", query) == before
    assert [item["key"] for item in before.items] == ["c1", "c4", "c2"]


@pytest.mark.parametrize("new_view", ["postgres"], indirect=True)
def test_postgres_builds_the_body_index_unless_told_to_wait(new_view: NewView) -> None:
    indexed, unindexed = new_view(), new_view(indexed=False)

    assert _has_body_index(indexed)
    assert not _has_body_index(unindexed)
    unindexed.create_indexes()
    assert _has_body_index(unindexed)


def _has_body_index(view: DocumentView) -> bool:
    assert isinstance(view, PostgresDocumentView)
    with view.datastore.get_connection() as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'documents_body'",
            (view.datastore.schema,),
        ).fetchone()
    return found is not None


def test_a_body_may_not_carry_its_own_key() -> None:
    for own_key in ("key", "_id"):
        with pytest.raises(ValueError, match="its own"):
            DocumentChange(collection="customers", key="c1", body={own_key: "c2"})


@pytest.mark.parametrize(
    "query",
    [
        {"equals": {"address.city": "Roma"}},
        {"equals": {"$where": "1"}},
        {"equals": {"key": 1}},
        {"sort": (("visits", True), ("visits", False))},
        {"limit": 0},
        {"offset": -1},
    ],
)
def test_a_query_names_top_level_fields_and_a_page_that_exists(query: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DocumentQuery(**query)


def test_the_factory_names_the_store_it_cannot_build() -> None:
    datastore = PostgresDatastore("db", "127.0.0.1", 5432, "u", "", schema="other")

    with pytest.raises(ValueError, match="schema 'documents'"):
        document_view("postgres", postgres=datastore, mongo_url=None, name="documents")
    with pytest.raises(ValueError, match="MongoDB URL"):
        document_view("mongodb", postgres=None, mongo_url="", name="documents")
    with pytest.raises(ValueError, match="'postgres' or 'mongodb'"):
        document_view("sqlite", postgres=None, mongo_url=None, name="documents")
