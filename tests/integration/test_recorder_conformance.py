"""The eventsourcing library's own conformance suites, run against our real stores.

* SQLite as esup configures it: ``PERSISTENCE_MODULE=eventsourcing.sqlite`` with
  ``SQLITE_DBNAME`` a file path (so WAL), one database file per application.
* PostgreSQL: a real server (the embedded one from ``tests/conftest.py``'s ``pg_server``
  fixture, or the one named by ``ESUP_TEST_POSTGRES_*``), a fresh empty database per test.

Recorders are built through the infrastructure factory from env settings, as an
Application would build them, not by constructing datastores by hand.  The library's
``ExampleApplicationTestCase`` runs with ``TRANSCODER_TOPIC`` set to our OrjsonTranscoder,
plus cross-reading tests between OrjsonTranscoder and JSONTranscoder applications on the
same stored data.

Suites come from ``eventsourcing.tests.persistence`` / ``eventsourcing.tests.application``
(9.5.6).  They are referenced through the module, never imported by name, so that pytest
does not collect the abstract base classes themselves.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
from decimal import Decimal
from typing import Any, ClassVar
from unittest import TestCase

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    JSONTranscoder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests import application as lib_app
from eventsourcing.tests import persistence as lib
from eventsourcing.utils import Environment

from infra.transcoder import TRANSCODER_TOPIC, OrjsonTranscoder

# A pinned application name, as esup's applications have: it prefixes env keys and
# names the PostgreSQL tables (``conformance_events``, ``conformance_tracking``).
APP_NAME = "Conformance"


# ======================================================================================
# Store mixins: each gives ``store_env()`` (fresh, empty store) and ``factory()``.
# ======================================================================================


class _StoreMixin(TestCase):
    def setUp(self) -> None:
        self._open_store()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._close_store()

    def _open_store(self) -> None:
        self._factories: list[InfrastructureFactory[Any]] = []
        self._threads_before = set(threading.enumerate())

    def _close_store(self) -> None:
        # The library's test_concurrent_no_conflicts sets a stop event for its two reader
        # threads but never joins them.  Closing an SQLite pool while a reader is still
        # inside a query crashes the interpreter (SIGSEGV in CPython's sqlite3, eventsourcing
        # 9.5.6, Python 3.11), so wait for threads started by the test first.  Daemon
        # threads (psycopg pool workers) end when their pool is closed, below.
        for thread in set(threading.enumerate()) - self._threads_before:
            if not thread.daemon and thread is not threading.current_thread():
                thread.join(timeout=30)
        for factory in self._factories:
            factory.close()
        self._factories.clear()
        gc.collect()  # close the pools of applications that library tests leave open

    def store_env(self) -> dict[str, str]:
        raise NotImplementedError

    def factory(self) -> InfrastructureFactory[Any]:
        factory = InfrastructureFactory.construct(Environment(APP_NAME, self.store_env()))
        self._factories.append(factory)
        return factory


class SQLiteFileStore(_StoreMixin):
    """A new SQLite database file (WAL) in a temporary directory per ``store_env()``."""

    def _open_store(self) -> None:
        super()._open_store()
        self._tmpdir = tempfile.mkdtemp(prefix="esup-sqlite-")
        self._db_count = 0

    def _close_store(self) -> None:
        super()._close_store()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def store_env(self) -> dict[str, str]:
        self._db_count += 1
        path = os.path.join(self._tmpdir, f"{APP_NAME.lower()}-{self._db_count}.db")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}


class PostgresStore(_StoreMixin):
    """A fresh, empty database on the test PostgreSQL server per ``store_env()``."""

    pg_server: Any

    @pytest.fixture(autouse=True)
    def _use_pg_server(self, pg_server: Any) -> None:
        # pytest runs autouse fixtures of unittest classes before setUp, with self bound.
        self.pg_server = pg_server

    def store_env(self) -> dict[str, str]:
        env = self.pg_server.env(self.pg_server.create_database())
        return {"PERSISTENCE_MODULE": "eventsourcing.postgres", **env}


# ======================================================================================
# Recorder suites.
# ======================================================================================


# --- SQLite --------------------------------------------------------------------------


class TestSQLiteAggregateRecorder(SQLiteFileStore, lib.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        recorder = self.factory().aggregate_recorder()
        assert type(recorder) is SQLiteAggregateRecorder
        return recorder


class TestSQLiteApplicationRecorder(SQLiteFileStore, lib.ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = self.factory().application_recorder()
        assert type(recorder) is SQLiteApplicationRecorder
        return recorder

    def test_file_database_uses_wal(self) -> None:
        factory = self.factory()
        assert isinstance(factory, SQLiteFactory)
        factory.application_recorder().max_notification_id()
        assert factory.datastore.pool.is_journal_mode_wal
        assert not factory.datastore.pool.is_sqlite_memory_mode

    def test_subscribe_not_implemented(self) -> None:
        # Why esup polls select_notifications() on SQLite instead of subscribing.
        with pytest.raises(NotImplementedError):
            self.create_recorder().subscribe(gt=None)


class TestSQLiteNonInterleavingNotificationIDs(SQLiteFileStore, lib.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()


class GuardedRecorderSpec:
    """The ledger's own recorder (``TOPIC``), put through the library's application-recorder
    suite, and: a batch answers with its own rows' notification ids."""

    TOPIC: str

    def store_env(self) -> dict[str, str]:
        return {**super().store_env(), "APPLICATION_RECORDER_TOPIC": self.TOPIC}  # type: ignore[misc]

    def create_recorder(self) -> ApplicationRecorder:
        from eventsourcing.utils import resolve_topic

        recorder = self.factory().application_recorder()  # type: ignore[attr-defined]
        assert type(recorder) is resolve_topic(self.TOPIC)
        return recorder

    def test_a_batch_returns_its_rows_ids(self) -> None:
        from uuid import uuid4

        from eventsourcing.persistence import StoredEvent

        recorder = self.create_recorder()
        assert recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"a")]) == [1]
        ids = recorder.insert_events([StoredEvent(uuid4(), v, "t", bytes([v])) for v in range(1, 6)])
        assert ids == [2, 3, 4, 5, 6]
        stored = recorder.select_notifications(start=1, limit=10)
        assert [n.id for n in stored] == [1, 2, 3, 4, 5, 6] and [n.state for n in stored[1:]] == [bytes([v]) for v in range(1, 6)]


class TestGuardedSQLiteApplicationRecorder(GuardedRecorderSpec, SQLiteFileStore,
                                           lib.ApplicationRecorderTestCase[ApplicationRecorder]):
    """The ledger's SQLite recorder (one ``executemany`` a batch, its rows' ids worked out)."""

    TOPIC = "infra.recorders:GuardedSQLiteRecorder"


class TestSQLiteTrackingRecorder(SQLiteFileStore, lib.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder = self.factory().tracking_recorder()
        assert type(recorder) is SQLiteTrackingRecorder
        return recorder


class TestSQLiteProcessRecorder(SQLiteFileStore, lib.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory().process_recorder()
        assert type(recorder) is SQLiteProcessRecorder
        return recorder


class TestSQLiteInfrastructureFactory(SQLiteFileStore, lib.InfrastructureFactoryTestCase[SQLiteFactory]):
    class SQLiteTrackingRecorderSubclass(SQLiteTrackingRecorder):
        pass

    def setUp(self) -> None:
        self._open_store()  # first: the library's setUp builds the factory from self.env
        self.env = Environment(APP_NAME, self.store_env())
        lib.InfrastructureFactoryTestCase.setUp(self)
        self.transcoder = OrjsonTranscoder()  # the mapper tests then run with ours

    def tearDown(self) -> None:
        lib.InfrastructureFactoryTestCase.tearDown(self)
        self._close_store()

    def expected_factory_class(self) -> type[SQLiteFactory]:
        return SQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return SQLiteApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return self.SQLiteTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return SQLiteProcessRecorder


# --- PostgreSQL ----------------------------------------------------------------------


@pytest.mark.postgres
class TestPostgresAggregateRecorder(PostgresStore, lib.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        recorder = self.factory().aggregate_recorder()
        assert type(recorder) is PostgresAggregateRecorder
        return recorder


@pytest.mark.postgres
class TestPostgresApplicationRecorder(PostgresStore, lib.ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = self.factory().application_recorder()
        assert type(recorder) is PostgresApplicationRecorder
        return recorder

    def test_insert_subscribe(self) -> None:
        # LISTEN/NOTIFY subscriptions (ApplicationSubscription, projections). The library
        # marks this suite method "optional"; its own PostgreSQL tests run it.
        self.optional_test_insert_subscribe()

    def test_connected_the_way_esup_connects(self) -> None:
        factory = self.factory()
        assert isinstance(factory, PostgresFactory)
        recorder = factory.application_recorder()
        assert recorder.max_notification_id() is None
        assert recorder.events_table_name == f"{APP_NAME.lower()}_events"
        assert factory.datastore.enable_db_functions is False  # POSTGRES_ENABLE_DB_FUNCTIONS off


@pytest.mark.postgres
class TestGuardedPostgresApplicationRecorder(GuardedRecorderSpec, PostgresStore,
                                             lib.ApplicationRecorderTestCase[ApplicationRecorder]):
    """The ledger's PostgreSQL recorder (rows as four binary arrays, the ids read as tuples)."""

    TOPIC = "infra.recorders:GuardedPostgresRecorder"

    def test_a_batchs_reads_probe_the_index_per_aggregate_in_a_large_log(self) -> None:
        """A batch's three reads (its cases' events, which aggregates exist, the guard's newest
        versions) touch rows in proportion to the batch, not to the log: as plain joins or
        ``= ANY`` the planner scanned the whole primary-key index of a large log (2 to 5 s a
        batch in the district-year run, ingest ten times slower within 250,000 steps)."""
        from uuid import uuid4

        from psycopg.sql import SQL

        recorder = self.create_recorder()
        table = recorder.events_table_name
        with recorder.datastore.transaction(commit=True) as curs:  # 50,000 aggregates of 4 events
            curs.execute(SQL("INSERT INTO {0} (originator_id, originator_version, topic, state) "
                             "SELECT g.id, v, 't', '\\x00' FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 50000)) g "
                             "CROSS JOIN generate_series(1, 4) v").format(SQL(table)))
            # What ANALYZE's sample made of the district-year's log: about 1,000 rows an
            # aggregate (there are 5), which is what turns the planner to whole-index scans.
            curs.execute(SQL("ALTER TABLE {0} ALTER COLUMN originator_id SET (n_distinct = 200)").format(SQL(table)))
            curs.execute(SQL("ANALYZE {0}").format(SQL(table)))
            curs.execute(SQL("SELECT DISTINCT originator_id FROM {0} LIMIT 250").format(SQL(table)))
            known = [r["originator_id"] for r in curs.fetchall()]
        ids = known + [uuid4() for _ in range(250)]

        def rows_read(statement: Any, params: tuple[Any, ...]) -> int:
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + statement, params)
                plan = curs.fetchone()
            plan = plan[next(iter(plan))] if isinstance(plan, dict) else plan[0]
            total, nodes = 0, [plan[0]["Plan"]]
            while nodes:
                node = nodes.pop()
                nodes.extend(node.get("Plans", ()))
                if node.get("Relation Name") == table or str(node.get("Index Name", "")).startswith(table):
                    total += int(node["Actual Rows"] * node["Actual Loops"])
            return total

        assert rows_read(recorder.select_events_from_statement(), (ids, [2] * len(ids))) <= 5 * len(ids)
        assert rows_read(recorder.existing_statement(), (ids,)) <= 5 * len(ids)
        assert rows_read(recorder.newest_versions_statement(), (ids,)) <= 5 * len(ids)
        # And they answer as before.
        assert recorder.existing(ids) == set(known)
        loaded = recorder.select_events_from([(i, 3) for i in ids])
        assert len(loaded) == 2 * len(known) and {e.originator_version for e in loaded} == {3, 4}
        assert [(e.originator_id, e.originator_version) for e in loaded] == sorted(
            (e.originator_id, e.originator_version) for e in loaded)


@pytest.mark.postgres
class TestPostgresNonInterleavingNotificationIDs(PostgresStore, lib.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()


@pytest.mark.postgres
class TestPostgresTrackingRecorder(PostgresStore, lib.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder = self.factory().tracking_recorder()
        assert type(recorder) is PostgresTrackingRecorder
        return recorder


@pytest.mark.postgres
class TestPostgresProcessRecorder(PostgresStore, lib.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory().process_recorder()
        assert type(recorder) is PostgresProcessRecorder
        return recorder


@pytest.mark.postgres
class TestPostgresInfrastructureFactory(PostgresStore, lib.InfrastructureFactoryTestCase[PostgresFactory]):
    class PostgresTrackingRecorderSubclass(PostgresTrackingRecorder):
        pass

    def setUp(self) -> None:
        self._open_store()
        self.env = Environment(APP_NAME, self.store_env())
        lib.InfrastructureFactoryTestCase.setUp(self)
        self.transcoder = OrjsonTranscoder()

    def tearDown(self) -> None:
        lib.InfrastructureFactoryTestCase.tearDown(self)
        self._close_store()

    def expected_factory_class(self) -> type[PostgresFactory]:
        return PostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return PostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return self.PostgresTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PostgresProcessRecorder


# ======================================================================================
# The library's example application, with OrjsonTranscoder, on both stores.
# ======================================================================================


class _ExampleApplicationWithOrjson(lib_app.ExampleApplicationTestCase):
    """``ExampleApplicationTestCase`` reads settings from ``os.environ`` (it constructs
    ``BankAccounts(env={"IS_SNAPSHOTTING_ENABLED": "y"})``), so they are set there for the
    duration of each test and restored afterwards."""

    _saved_environ: dict[str, str]
    _env_keys: ClassVar[tuple[str, ...]] = (
        "PERSISTENCE_MODULE", "SQLITE_DBNAME", "TRANSCODER_TOPIC", "POSTGRES_HOST",
        "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DBNAME",
    )  # fmt: skip

    def setUp(self) -> None:
        super().setUp()
        self._saved_environ = {k: os.environ[k] for k in self._env_keys if k in os.environ}
        self.env = self.store_env()  # type: ignore[attr-defined]
        self._set_environ({**self.env, "TRANSCODER_TOPIC": TRANSCODER_TOPIC})

    def tearDown(self) -> None:
        self._set_environ(self._saved_environ)
        super().tearDown()

    def _set_environ(self, values: dict[str, str]) -> None:
        for key in self._env_keys:
            os.environ.pop(key, None)
        os.environ.update(values)

    def _app(self, *, orjson: bool) -> lib_app.BankAccounts:
        env = {**self.env, "IS_SNAPSHOTTING_ENABLED": "y"}
        env["TRANSCODER_TOPIC"] = TRANSCODER_TOPIC if orjson else "eventsourcing.persistence:JSONTranscoder"
        app = lib_app.BankAccounts(env=env)
        assert type(app.mapper.transcoder) is (OrjsonTranscoder if orjson else JSONTranscoder)
        return app

    def test_environment_selects_orjson_transcoder(self) -> None:
        app = lib_app.BankAccounts()
        try:
            assert type(app.mapper.transcoder) is OrjsonTranscoder
            assert type(app.factory).__module__ == os.environ["PERSISTENCE_MODULE"]
        finally:
            app.close()

    def test_stored_data_is_readable_by_either_transcoder(self) -> None:
        # Write with each transcoder, read everything back with both: events and snapshots.
        writer = self._app(orjson=True)
        a1 = writer.open_account("Alice", "alice@example.com")
        writer.credit_account(a1, Decimal("10.00"))
        writer.take_snapshot(a1)
        writer.credit_account(a1, Decimal("0.05"))
        writer.close()

        writer = self._app(orjson=False)
        a2 = writer.open_account("Bob", "bob@example.com")
        writer.credit_account(a2, Decimal("7.50"))
        writer.take_snapshot(a2)
        writer.credit_account(a2, Decimal("1.00"))
        writer.close()

        for orjson in (True, False):
            reader = self._app(orjson=orjson)
            try:
                for account_id, name, balance in ((a1, "Alice", "10.05"), (a2, "Bob", "8.50")):
                    account = reader.get_account(account_id)
                    assert account.full_name == name
                    assert account.balance == Decimal(balance)
                    assert type(account.email_address) is lib_app.EmailAddress
                    assert account.id == account_id
                    # Reconstructed from the snapshot written by the other transcoder.
                    assert reader.repository.get(account_id, version=2).balance == account.balance - (
                        Decimal("0.05") if name == "Alice" else Decimal("1.00")
                    )
                notifications = reader.notification_log["1,10"].items
                assert len(notifications) == 6
                for notification in notifications:
                    reader.mapper.to_domain_event(notification)
            finally:
                reader.close()


class TestSQLiteExampleApplicationWithOrjson(SQLiteFileStore, _ExampleApplicationWithOrjson):
    expected_factory_topic = "eventsourcing.sqlite:SQLiteFactory"


@pytest.mark.postgres
class TestPostgresExampleApplicationWithOrjson(PostgresStore, _ExampleApplicationWithOrjson):
    expected_factory_topic = "eventsourcing.postgres:PostgresFactory"


# Abstract: keep pytest from collecting it on its own (TestCase subclasses are collected
# whatever their name), as the library does with its own base cases.
del _ExampleApplicationWithOrjson
