"""The tamper-evident log: every stored event is a link of a hash chain, and signed
checkpoints pin it. Each test tampers with the real table by SQL, as an intruder would."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from loyalty.bootstrap import Services
from loyalty.cli import main
from loyalty.commands.audit import Auditor
from loyalty.commands.periodic import Periodic
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase
from tests.test_cli import use_database


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase(f"r{n}", line("BREAD", f"{n}.00")) for n in range(1, 6)])
    return services


def tamper(settings: Settings, statement: str, *params: object) -> None:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(settings.pg_schema)))
        conn.execute(statement, params)  # type: ignore[arg-type]


def ids(settings: Settings) -> list[int]:
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT notification_id FROM {}.ledger_events ORDER BY 1").format(
            sql.Identifier(settings.pg_schema)
        )
        return [row[0] for row in conn.execute(query)]


def first_broken(services: Services) -> int | None:
    report = services.auditor.verify()
    return report.broken[0].notification_id if report.broken else None


def test_an_untouched_log_verifies_from_the_first_event_to_the_last(
    chain: Services, settings: Settings
) -> None:
    report = chain.auditor.verify()

    assert report.intact and report.broken == ()
    assert (report.events, report.head) == (len(ids(settings)), ids(settings)[-1])


def test_an_altered_event_breaks_the_chain_at_that_event(
    chain: Services, settings: Settings
) -> None:
    victim = ids(settings)[-3]

    tamper(
        settings,
        "UPDATE ledger_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        victim,
    )

    assert first_broken(chain) == victim


def test_a_deleted_event_breaks_the_chain_at_the_next_one(
    chain: Services, settings: Settings
) -> None:
    events = ids(settings)

    tamper(settings, "DELETE FROM ledger_events WHERE notification_id = %s", events[4])

    assert first_broken(chain) == events[5]


def test_reordered_events_break_the_chain(chain: Services, settings: Settings) -> None:
    first, second = ids(settings)[2:4]

    tamper(
        settings,
        "UPDATE ledger_events SET notification_id = CASE notification_id"
        " WHEN %s THEN -1 ELSE notification_id END WHERE notification_id = %s",
        first,
        first,
    )
    tamper(
        settings,
        "UPDATE ledger_events SET notification_id = %s WHERE notification_id = %s",
        first,
        second,
    )
    tamper(
        settings, "UPDATE ledger_events SET notification_id = %s WHERE notification_id = -1", second
    )

    assert first_broken(chain) == first


def test_a_chain_rewritten_by_sql_no_longer_reaches_its_signed_checkpoint(
    chain: Services, settings: Settings, clock: Clock
) -> None:
    made = chain.auditor.checkpoint(clock.now)
    assert made is not None and chain.auditor.verify().checkpoints == 1
    victim = ids(settings)[1]

    tamper(
        settings,
        "UPDATE ledger_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        victim,
    )
    tamper(
        settings,
        """DO $$ DECLARE r record; previous bytea := '\\x' || repeat('00', 32);
        BEGIN FOR r IN SELECT * FROM ledger_events ORDER BY notification_id LOOP
            previous := sha256(previous || event_hash(r.notification_id, r.originator_id,
                r.originator_version, r.topic, r.state));
            UPDATE ledger_events SET link = previous WHERE notification_id = r.notification_id;
        END LOOP; END $$""",
    )

    report = chain.auditor.verify()
    assert [(b.notification_id, b.reason) for b in report.broken] == [
        (made.notification_id, "the chain no longer reaches this signed checkpoint")
    ]


def test_a_cut_tail_is_seen_by_the_checkpoint_that_signed_it(
    chain: Services, settings: Settings, clock: Clock
) -> None:
    made = chain.auditor.checkpoint(clock.now)
    assert made is not None

    tamper(settings, "DELETE FROM ledger_events WHERE notification_id >= %s", ids(settings)[-2])

    assert [b.reason for b in chain.auditor.verify().broken] == [
        "a signed checkpoint names an event that is gone"
    ]


def test_a_forged_checkpoint_is_refused(chain: Services, settings: Settings, clock: Clock) -> None:
    head = ids(settings)[-1]

    tamper(
        settings,
        "INSERT INTO chain_checkpoints SELECT notification_id, link, now(), '\\x00'::bytea"
        " FROM ledger_events WHERE notification_id = %s",
        head,
    )

    assert [b.reason for b in chain.auditor.verify().broken] == ["checkpoint not signed by our key"]


def test_the_server_signs_the_head_when_it_moves(chain: Services, clock: Clock) -> None:
    periodic = Periodic("checkpoints", 0.05, lambda: chain.auditor.sign_head(clock.now))
    periodic.start()
    try:
        deadline = time.monotonic() + 30
        while not chain.auditor.checkpoints():
            assert time.monotonic() < deadline, "no checkpoint was made"
            time.sleep(0.05)
    finally:
        periodic.stop()

    (made,) = chain.auditor.checkpoints()
    assert made.notification_id == chain.auditor.head()
    assert chain.auditor.sign_head(clock.now) is None
    assert chain.auditor.is_signed(made)


def test_another_deployment_key_does_not_verify_our_checkpoints(
    chain: Services, clock: Clock
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    chain.auditor.checkpoint(clock.now - timedelta(seconds=1))
    stranger = Auditor(chain.ledger, Ed25519PrivateKey.generate())

    assert not stranger.verify().intact


def test_audit_verify_exits_1_when_the_log_was_tampered_with(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    chain: Services,
    settings: Settings,
) -> None:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("LOYALTY_SECRET_KEY", settings.secret_key)

    assert main(["audit", "checkpoint"]) == 0
    assert main(["audit", "verify"]) == 0
    tamper(settings, "DELETE FROM ledger_events WHERE notification_id = %s", ids(settings)[0])
    assert main(["audit", "verify"]) == 1

    out = capsys.readouterr().out
    assert '"intact": false' in out
