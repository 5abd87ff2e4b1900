"""Document read models: JSON documents by collection and key, stored with the position of
the events applied to them, in PostgreSQL (the default) or in MongoDB (by configuration).

The customer 360 view, segment snapshots and the analytics dashboards' revenue documents are
whole documents read by key or by a simple query, which both stores serve well; the port,
:class:`DocumentView`, keeps to what both do identically:

- ``write`` applies a batch of changes (a body replaces a document whole, ``None`` deletes
  it) and records the tracking position in one transaction, the position last, so any
  failure, a stale position included, leaves no partial write. A position not above the one
  recorded raises :class:`~eventsourcing.persistence.IntegrityError`: a replayed batch is
  never applied twice, and a crash before the commit loses nothing the log cannot deliver
  again (exactly-once effect).
- ``find`` filters by equality of top-level fields with MongoDB's meaning: ``None`` matches a
  null or missing field, and a field holding a list matches when the list holds the value.
  It sorts as MongoDB sorts scalars (null and missing first, then numbers, strings by code
  point, booleans), ties broken by key ascending; fields holding lists or objects have no
  common order, so sort only by scalar fields. ``total`` counts every match, read in the same
  snapshot as the page.
- ``load`` stores many new documents at once in a fresh generation being filled in bulk, and
  records no position: the caller records it afterwards with a ``write``, so a load cut short
  leaves a generation that claims no event (a rebuild clears it again). A key that exists,
  or comes twice, raises :class:`~eventsourcing.persistence.IntegrityError`. A loaded body's
  top-level values may be JSON already encoded, as ``msgspec.Raw``: a bulk fill that holds a
  part of a document as JSON hands it over without decoding it only to have it encoded again.
- A document comes back as its body plus the field ``key``; a body may hold neither ``key``
  nor MongoDB's ``_id``. Bodies are JSON values (money as decimal strings), never logged.

Read models are disposable and rebuilt from the log, so each view creates its own storage
(``create_table``) rather than through the numbered migrations, and ``clear`` discards a
generation. A generation filled by ``load`` is created without its indexes
(``create_table(indexed=False)``), which ``create_indexes`` builds once the documents are in:
one index build over every row is far cheaper than keeping the index up row by row.
Layouts:

- PostgreSQL: the view's own schema (the datastore's) holds ``documents(collection, key,
  body jsonb)`` and eventsourcing's single-row ``notification_tracking`` table. A GIN index
  on the bodies serves every equality filter, so ``create_index`` does nothing there.
- MongoDB: one database per view, one collection ``documents_<collection>`` per collection
  (``_id`` is the key) and ``tracking`` (``_id`` the application name). It relies on
  replica-set transactions (MongoDB 4.4+, which also creates collections inside them) and
  snapshot reads (5.0+); ``create_index`` builds the indexes ``find`` should use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from itertools import islice
from queue import Full, Queue
from typing import Any, TypeAlias

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Composable, Identifier, Literal
from psycopg.types.json import Jsonb
from pymongo import ASCENDING, DESCENDING, DeleteOne, MongoClient, ReplaceOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from loyalty.adapters.copy_text import copy_field

Scalar: TypeAlias = str | int | bool | None
Body: TypeAlias = dict[str, Any]
KEY = "key"
"""The field that carries a document's key when it is read."""
LOAD_CHUNK = 20_000
"""How many documents a load reads and sends at a time: memory stays bounded however many."""
LOAD_STREAMS = 2
"""The ``COPY`` streams of a PostgreSQL load (the document views' connection pool's size)."""


def _check_field(field: str) -> None:
    """Only plain top-level names mean the same in SQL and in MongoDB (where ``a.b`` is a
    path and ``$a`` an operator)."""
    if not field or "." in field or field.startswith("$") or field == "_id":
        msg = f"not a top-level field name: {field!r}"
        raise ValueError(msg)


def _check_equals(equals: Mapping[str, Scalar]) -> None:
    for field, value in equals.items():
        _check_field(field)
        if field == KEY and not isinstance(value, str):
            msg = f"keys are strings, not {value!r}"
            raise ValueError(msg)


class DocumentChange(msgspec.Struct, frozen=True, kw_only=True):
    """The new state of one document: ``body`` replaces it whole, ``None`` deletes it."""

    collection: str
    key: str
    body: Body | None

    def __post_init__(self) -> None:
        if self.body is not None and not {KEY, "_id"}.isdisjoint(self.body):
            msg = "a body holds neither 'key' nor '_id': the document's key is its own"
            raise ValueError(msg)


class DocumentQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Documents whose top-level fields equal ``equals`` (all of them), ordered by ``sort``
    (``(field, descending)`` pairs, then by key), ``limit`` of them after ``offset``."""

    equals: dict[str, Scalar] = {}
    sort: tuple[tuple[str, bool], ...] = ()
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        _check_equals(self.equals)
        fields = [field for field, _ in self.sort]
        for field in fields:
            _check_field(field)
        if len(set(fields)) != len(fields):
            msg = f"a field is sorted on once: {fields}"
            raise ValueError(msg)
        if self.limit < 1 or self.offset < 0:
            msg = f"limit must be positive and offset not negative: {self.limit}, {self.offset}"
            raise ValueError(msg)


class DocumentPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Body]
    total: int
    """How many documents match, on every page."""


class DocumentView(TrackingRecorder, ABC):
    """Documents by collection and key, and the position of the events applied to them."""

    @abstractmethod
    def create_table(self, indexed: bool = True) -> None:
        """Creates the view's storage if it does not exist yet; without its indexes when not
        ``indexed``, for a generation to be filled by :meth:`load` first."""

    @abstractmethod
    def create_indexes(self) -> None:
        """Builds the indexes ``create_table(indexed=False)`` left out, if not built yet."""

    @abstractmethod
    def write(self, changes: Sequence[DocumentChange], tracking: Tracking) -> None:
        """Applies every change (the last one, where several touch a document) and records
        ``tracking`` in one transaction.

        Raises:
            IntegrityError: the position is not above the one recorded for its application;
                nothing is written.
        """

    @abstractmethod
    def load(self, documents: Iterable[DocumentChange]) -> int:
        """Stores new documents, read as they are sent (millions fit in bounded memory), and
        returns how many; records no position, which the caller ``write``s once it is done.

        PostgreSQL loads in a transaction per stream, MongoDB a chunk at a time: a load that
        fails may leave part of it (a load fills a fresh generation, cleared after a
        failure).

        Raises:
            IntegrityError: a key exists already, or comes twice.
            ValueError: a change has no body (a load only adds documents).
        """

    @abstractmethod
    def get(self, collection: str, key: str) -> Body | None: ...

    @abstractmethod
    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Body]:
        """The documents of ``keys`` that exist, by key (one round trip)."""

    @abstractmethod
    def find(self, collection: str, query: DocumentQuery) -> DocumentPage: ...

    @abstractmethod
    def count_by(
        self, collection: str, field: str, equals: Mapping[str, Scalar] | None = None
    ) -> dict[Scalar, int]:
        """How many documents (among those matching ``equals``) hold each value of a scalar
        ``field``; null and missing count together under ``None``."""

    @abstractmethod
    def create_index(self, collection: str, fields: Sequence[str]) -> None:
        """Lets ``find`` filter and sort by ``fields`` (in this order) without a scan."""

    @abstractmethod
    def clear(self) -> None:
        """Removes every document and position of this view (a discarded generation)."""

    @abstractmethod
    def close(self) -> None:
        """Releases the view's connections."""


def document_view(
    kind: str, *, postgres: PostgresDatastore | None, mongo_url: str | None, name: str
) -> DocumentView:
    """The view called ``name`` in the configured store: ``"postgres"`` (``postgres`` is
    the view's own datastore, whose schema is ``name``) or ``"mongodb"`` (the database
    ``name`` at ``mongo_url``)."""
    if kind == "postgres":
        if postgres is None or postgres.schema != name:
            msg = f"the PostgreSQL document view {name!r} needs a datastore of schema {name!r}"
            raise ValueError(msg)
        return PostgresDocumentView(postgres)
    if kind == "mongodb":
        if not mongo_url:
            msg = f"the MongoDB document view {name!r} needs a MongoDB URL"
            raise ValueError(msg)
        return MongoDocumentView(mongo_url, name)
    msg = f"unknown document store {kind!r}: 'postgres' or 'mongodb'"
    raise ValueError(msg)


def _dumps(body: Any) -> str:
    return msgspec.json.encode(body).decode()


def _loads(text: str) -> Body:
    """A body read as text and decoded by msgspec (faster than the json module)."""
    found: Body = msgspec.json.decode(text)
    return found


def _loaded_body(change: DocumentChange) -> Body:
    if change.body is None:
        msg = f"a load only adds documents: {change.collection!r} {change.key!r} has no body"
        raise ValueError(msg)
    return change.body


def _decoded_body(body: Body) -> Body:
    """A loaded body with its values encoded already (``msgspec.Raw``) decoded."""
    return {
        field: msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value
        for field, value in body.items()
    }


def _copy_row(change: DocumentChange) -> bytes:
    """A loaded document as a row of ``COPY``'s text format (UTF-8): its body is encoded
    JSON, which holds no tab nor line break (JSON escapes them in strings), so only its
    backslashes need escaping."""
    collection = copy_field(change.collection)
    key = copy_field(change.key)
    body = msgspec.json.encode(_loaded_body(change)).replace(b"\\", b"\\\\")
    return b"%s\t%s\t%s\n" % (collection.encode(), key.encode(), body)


def _chunks(documents: Iterable[DocumentChange]) -> Iterator[list[DocumentChange]]:
    iterator = iter(documents)
    while chunk := list(islice(iterator, LOAD_CHUNK)):
        yield chunk


class _LoadAbandoned(Exception):
    """Rolls a load's stream back: the documents sent failed."""


def _hand_over(chunks: Queue[Any], rows: bytes, streams: list[Future[None]]) -> None:
    """Puts ``rows`` for the load's streams, unless one of them has failed (then raises
    its error)."""
    while True:
        for done in streams:
            if done.done():
                done.result()
        with suppress(Full):
            chunks.put(rows, timeout=0.1)
            return


def _end(chunks: Queue[Any], streams: list[Future[None]], commit: bool) -> None:
    """Tells every stream still running to commit, or to roll back."""
    for _ in streams:
        while not all(done.done() for done in streams):
            with suppress(Full):
                chunks.put(commit, timeout=0.1)
                break


def _final_states(changes: Sequence[DocumentChange]) -> dict[tuple[str, str], Body | None]:
    """Each document's last change: one write per document, as if applied in order."""
    return {(change.collection, change.key): change.body for change in changes}


class PostgresDocumentView(PostgresTrackingRecorder, DocumentView):
    """Documents as ``jsonb`` rows in the datastore's schema, beside eventsourcing's tracking
    table (single-row, its default), written in one transaction through its cursor."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore)
        schema = Identifier(datastore.schema)
        self.documents = SQL("{}.documents").format(schema)
        self.tracking_table = SQL("{}.{}").format(schema, Identifier(self.tracking_table_name))
        self.sql_create_statements.insert(0, SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        self.sql_create_statements.append(
            # "C": keys and strings order by code point, as MongoDB orders them.
            SQL(
                'CREATE TABLE IF NOT EXISTS {} (collection text, key text COLLATE "C", '
                "body jsonb NOT NULL, PRIMARY KEY (collection, key))"
            ).format(self.documents)
        )
        self.sql_create_index = SQL(
            "CREATE INDEX IF NOT EXISTS documents_body ON {} USING gin (body jsonb_path_ops)"
        ).format(self.documents)

    def create_table(self, indexed: bool = True) -> None:
        super().create_table()
        if indexed:
            self.create_indexes()

    def create_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.sql_create_index)

    def load(self, documents: Iterable[DocumentChange]) -> int:
        """Streams the rows through ``COPY``, PostgreSQL's fastest way in, as text made
        here (:func:`_copy_row`), on
        :data:`LOAD_STREAMS` connections side by side (one stream leaves both this process
        and its server process half idle, each waiting on the other); chunks are handed
        to whichever stream is free. Each stream commits only when every document was
        sent without error (documents that fail to encode roll every stream back); the
        primary key refuses a key twice and the datastore raises that as
        ``IntegrityError``."""
        copy_in = SQL("COPY {} (collection, key, body) FROM STDIN").format(self.documents)
        chunks: Queue[bytes | bool] = Queue(maxsize=2 * LOAD_STREAMS)

        def stream() -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute("SET LOCAL client_encoding = 'UTF8'")
                with curs.copy(copy_in) as copy:
                    while (chunk := chunks.get()) is not True:
                        if chunk is False:
                            raise _LoadAbandoned
                        copy.write(chunk)

        with ThreadPoolExecutor(LOAD_STREAMS, thread_name_prefix="load") as pool:
            streams = [pool.submit(stream) for _ in range(LOAD_STREAMS)]
            loaded = 0
            try:
                for chunk in _chunks(documents):
                    _hand_over(chunks, b"".join([_copy_row(c) for c in chunk]), streams)
                    loaded += len(chunk)
            except BaseException:
                _end(chunks, streams, commit=False)
                raise
            _end(chunks, streams, commit=True)
        for done in streams:
            if not isinstance(done.exception(), _LoadAbandoned):
                done.result()
        return loaded

    def write(self, changes: Sequence[DocumentChange], tracking: Tracking) -> None:
        replaced: list[tuple[str, str, Jsonb]] = []
        deleted: list[tuple[str, str]] = []
        for (collection, key), body in _final_states(changes).items():
            if body is None:
                deleted.append((collection, key))
            else:
                replaced.append((collection, key, Jsonb(body, dumps=_dumps)))
        with self.datastore.transaction(commit=True) as curs:
            if replaced:
                collections, keys, bodies = zip(*replaced, strict=True)
                curs.execute(
                    SQL(
                        "INSERT INTO {} (collection, key, body) "
                        "SELECT * FROM unnest(%b::text[], %b::text[], %b::jsonb[]) "
                        "ON CONFLICT (collection, key) DO UPDATE SET body = excluded.body"
                    ).format(self.documents),
                    (list(collections), list(keys), list(bodies)),
                )
            if deleted:
                collections, keys = zip(*deleted, strict=True)
                curs.execute(
                    SQL(
                        "DELETE FROM {} d USING unnest(%b::text[], %b::text[]) AS gone(c, k) "
                        "WHERE d.collection = gone.c AND d.key = gone.k"
                    ).format(self.documents),
                    (list(collections), list(keys)),
                )
            self._insert_tracking(curs, tracking)

    def get(self, collection: str, key: str) -> Body | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                SQL("SELECT body::text AS body FROM {} WHERE collection = %s AND key = %s").format(
                    self.documents
                ),
                (collection, key),
            ).fetchone()
        return None if row is None else {**_loads(row["body"]), KEY: key}

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Body]:
        if not keys:
            return {}
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                SQL(
                    "SELECT key, body::text AS body FROM {} WHERE collection = %s AND key = ANY(%s)"
                ).format(self.documents),
                (collection, list(keys)),
            ).fetchall()
        return {row["key"]: {**_loads(row["body"]), KEY: row["key"]} for row in rows}

    def find(self, collection: str, query: DocumentQuery) -> DocumentPage:
        where, params = _where(collection, query.equals)
        order = [
            _sort_key(field, SQL("DESC" if descending else "ASC"))
            for field, descending in query.sort
        ]
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counted = conn.execute(
                SQL("SELECT count(*) AS total FROM {} WHERE {}").format(self.documents, where),
                params,
            ).fetchone()
            rows = conn.execute(
                SQL(
                    "SELECT key, body::text AS body FROM {} WHERE {} ORDER BY {} LIMIT %s OFFSET %s"
                ).format(self.documents, where, SQL(", ").join([*order, SQL("key")])),
                [*params, query.limit, query.offset],
            ).fetchall()
        assert counted is not None  # count(*) always answers one row
        items = [{**_loads(row["body"]), KEY: row["key"]} for row in rows]
        return DocumentPage(items=items, total=counted["total"])

    def count_by(
        self, collection: str, field: str, equals: Mapping[str, Scalar] | None = None
    ) -> dict[Scalar, int]:
        _check_field(field)
        _check_equals(equals or {})
        where, params = _where(collection, equals or {})
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                SQL("SELECT {} AS value, count(*) AS n FROM {} WHERE {} GROUP BY 1").format(
                    _value(field), self.documents, where
                ),
                params,
            ).fetchall()
        return {row["value"]: row["n"] for row in rows}

    def create_index(self, collection: str, fields: Sequence[str]) -> None:
        """Nothing to build: the GIN index on bodies serves every equality filter."""
        for field in fields:
            _check_field(field)

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("TRUNCATE {}").format(self.documents))
            # The row eventsourcing keeps for its own table migration stays.
            curs.execute(
                SQL("DELETE FROM {} WHERE application_name <> %s").format(self.tracking_table),
                (self.table_migration_identifier,),
            )

    def close(self) -> None:
        self.datastore.close()


def _where(collection: str, equals: Mapping[str, Scalar]) -> tuple[Composable, list[Any]]:
    """Containment (``@>``) of ``{field: value}`` or ``{field: [value]}``, which the GIN
    index answers, gives MongoDB's equality: the value, or a list holding it."""
    clauses: list[Composable] = [SQL("collection = %s")]
    params: list[Any] = [collection]
    for field, value in equals.items():
        if field == KEY:
            clauses.append(SQL("key = %s"))
            params.append(value)
            continue
        contains = SQL("body @> %s OR body @> %s")
        params += [Jsonb({field: value}), Jsonb({field: [value]})]
        if value is None:
            clauses.append(SQL("({} OR NOT body ? %s)").format(contains))
            params.append(field)
        else:
            clauses.append(SQL("({})").format(contains))
    return SQL(" AND ").join(clauses), params


def _value(field: str) -> Composable:
    """The field's JSON value, JSON null when missing (as MongoDB treats it)."""
    if field == KEY:
        return SQL("to_jsonb(key)")
    return SQL("coalesce(body -> {}, 'null')").format(Literal(field))


def _sort_key(field: str, direction: Composable) -> Composable:
    """MongoDB's order of scalars: null, numbers, strings by code point, booleans (jsonb's
    own order puts strings before numbers and strings follow the database's collation)."""
    return SQL(
        "array_position(array['null', 'number', 'string', 'object', 'array', 'boolean'], "
        "jsonb_typeof({value})) {direction}, "
        "CASE jsonb_typeof({value}) WHEN 'number' THEN ({value})::numeric END {direction}, "
        "(CASE jsonb_typeof({value}) WHEN 'string' THEN {value} #>> '{{}}' END) "
        'COLLATE "C" {direction}, '
        "CASE jsonb_typeof({value}) WHEN 'boolean' THEN ({value})::boolean END {direction}"
    ).format(value=_value(field), direction=direction)


COLLECTION_PREFIX = "documents_"
DUPLICATE_KEY = 11000
"""MongoDB's error code for a key already taken."""


class MongoDocumentView(DocumentView):
    """Documents in the MongoDB database ``name``: ``documents_<collection>`` collections
    keyed by ``_id``, and a ``tracking`` collection of one document per application."""

    def __init__(self, url: str, name: str) -> None:
        self.client: MongoClient[Body] = MongoClient(url)
        self.database = self.client[name]
        self.tracking = self.database["tracking"]

    def _documents(self, collection: str) -> Collection[Body]:
        return self.database[COLLECTION_PREFIX + collection]

    def create_table(self, indexed: bool = True) -> None:
        """Nothing to do: MongoDB creates collections on their first write."""

    def create_indexes(self) -> None:
        """Nothing to do: MongoDB's indexes are those ``create_index`` builds."""

    def load(self, documents: Iterable[DocumentChange]) -> int:
        """Inserts each chunk with one unordered ``insert_many`` per collection, outside any
        transaction (one of millions of documents is beyond MongoDB's)."""
        loaded = 0
        for chunk in _chunks(documents):
            batches: dict[str, list[Body]] = defaultdict(list)
            for change in chunk:
                body = _decoded_body(_loaded_body(change))
                batches[change.collection].append({**body, "_id": change.key})
            for collection, batch in batches.items():
                self._insert(collection, batch)
            loaded += len(chunk)
        return loaded

    def _insert(self, collection: str, batch: list[Body]) -> None:
        try:
            self._documents(collection).insert_many(batch, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if not any(found.get("code") == DUPLICATE_KEY for found in errors):
                raise
            msg = f"a loaded key of {collection!r} exists already or comes twice"
            raise IntegrityError(msg) from None

    def write(self, changes: Sequence[DocumentChange], tracking: Tracking) -> None:
        requests: dict[str, list[ReplaceOne[Body] | DeleteOne]] = defaultdict(list)
        for (collection, key), body in _final_states(changes).items():
            requests[collection].append(
                DeleteOne({"_id": key})
                if body is None
                else ReplaceOne({"_id": key}, {**body, "_id": key}, upsert=True)
            )

        def apply(session: ClientSession) -> None:
            for collection, batch in requests.items():
                self._documents(collection).bulk_write(batch, ordered=False, session=session)
            self._record(tracking, session)

        # with_transaction retries transient errors (a write conflict with another writer, an
        # unknown commit result); the recorded position keeps a retry from applying twice.
        with self.client.start_session() as session:
            session.with_transaction(apply)

    def _record(self, tracking: Tracking, session: ClientSession | None) -> None:
        """Raises the position, or fails: when the recorded one is not below, the filter
        matches nothing and the upsert collides with the application's document."""
        try:
            self.tracking.update_one(
                {
                    "_id": tracking.application_name,
                    "notification_id": {"$lt": tracking.notification_id},
                },
                {"$set": {"notification_id": tracking.notification_id}},
                upsert=True,
                session=session,
            )
        except DuplicateKeyError:
            msg = (
                "Failed to record tracking for "
                f"{tracking.application_name} {tracking.notification_id}"
            )
            raise IntegrityError(msg) from None

    def insert_tracking(self, tracking: Tracking) -> None:
        self._record(tracking, None)

    def max_tracking_id(self, application_name: str) -> int | None:
        recorded = self.tracking.find_one({"_id": application_name})
        return None if recorded is None else int(recorded["notification_id"])

    def get(self, collection: str, key: str) -> Body | None:
        found = self._documents(collection).find_one({"_id": key})
        return None if found is None else _from_mongo(found)

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Body]:
        if not keys:
            return {}
        found = self._documents(collection).find({"_id": {"$in": list(keys)}})
        return {document["_id"]: _from_mongo(document) for document in found}

    def find(self, collection: str, query: DocumentQuery) -> DocumentPage:
        where = _mongo_filter(query.equals)
        sort = [
            (_mongo_field(field), DESCENDING if desc else ASCENDING) for field, desc in query.sort
        ]
        if KEY not in dict(query.sort):
            sort.append(("_id", ASCENDING))
        documents = self._documents(collection)
        with self.client.start_session(snapshot=True) as session:
            total = documents.count_documents(where, session=session)
            found = documents.find(
                where, sort=sort, skip=query.offset, limit=query.limit, session=session
            )
            items = [_from_mongo(document) for document in found]
        return DocumentPage(items=items, total=total)

    def count_by(
        self, collection: str, field: str, equals: Mapping[str, Scalar] | None = None
    ) -> dict[Scalar, int]:
        _check_field(field)
        _check_equals(equals or {})
        groups = self._documents(collection).aggregate(
            [
                {"$match": _mongo_filter(equals or {})},
                {"$group": {"_id": "$" + _mongo_field(field), "n": {"$sum": 1}}},
            ]
        )
        return {group["_id"]: group["n"] for group in groups}

    def create_index(self, collection: str, fields: Sequence[str]) -> None:
        for field in fields:
            _check_field(field)
        self._documents(collection).create_index(
            [(_mongo_field(field), ASCENDING) for field in fields]
        )

    def clear(self) -> None:
        """Forgets the positions first: MongoDB cannot clear collections in one transaction
        of any size, and an interrupted clear must leave a view that claims no event (a
        rebuild clears it again). Documents are deleted, collections and indexes kept."""
        self.tracking.delete_many({})
        for name in self.database.list_collection_names():
            if name.startswith(COLLECTION_PREFIX):
                self.database[name].delete_many({})

    def close(self) -> None:
        self.client.close()


def _mongo_field(field: str) -> str:
    return "_id" if field == KEY else field


def _mongo_filter(equals: Mapping[str, Scalar]) -> dict[str, Scalar]:
    return {_mongo_field(field): value for field, value in equals.items()}


def _from_mongo(document: Body) -> Body:
    document[KEY] = document.pop("_id")
    return document
