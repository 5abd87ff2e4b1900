"""Personal data: never in clear in the event store, exported on request, erased for good
while the ledger stays whole and replayable."""

from __future__ import annotations

import base64
import secrets
from datetime import date
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from loyalty.adapters.keystore import KeyStore, master_keys
from loyalty.bootstrap import Services, build_services
from loyalty.cli import main
from loyalty.commands.apply import ClusterSpec
from loyalty.commands.customers import complete_profile, record_consent, register
from loyalty.commands.privacy import erase, export
from loyalty.commands.replay import replay
from loyalty.domain.cluster import Age, ClusterTerms
from loyalty.domain.consent import Channel, Consent, ConsentSource, Purpose
from loyalty.domain.customer import Profile
from loyalty.domain.errors import CustomerErased
from loyalty.projections.models import followers
from loyalty.settings import Settings
from tests.builders import Clock, base_points, line, program, purchase
from tests.projections.reading import caught_up
from tests.streams import published
from tests.test_cli import use_database

ZENOBIA = Profile(
    first_name="Zenobia",
    last_name="Quaglierini",
    email="zenobia.q@example.org",
    phone="+39 347 555 0199",
    birth_date=date(1961, 3, 17),
    street="Via dei Gelsomini 41",
    city="Civitavecchia",
    postal_code="00053",
    notes="allergica ai crostacei",
)
PERSONAL_VALUES = [
    "Zenobia",
    "Quaglierini",
    "zenobia.q@example.org",
    "347 555 0199",
    "1961-03-17",
    "Gelsomini",
    "Civitavecchia",
    "allergica",
]


def occurrences(settings: Settings, *schemas: str) -> list[str]:
    """Every table row of ``schemas`` (read as the administrator) holding a personal
    value, in clear text or as the hex of its bytes."""
    found = []
    wanted = [(v, v.encode().hex()) for v in PERSONAL_VALUES]
    with psycopg.connect(settings.admin_conninfo()) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = ANY(%s)",
            (list(schemas),),
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
            for (row,) in conn.execute(query):
                text = row.lower()
                found += [f"{table}: {v}" for v, h in wanted if v.lower() in text or h in text]
    return found


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    seniors = ClusterTerms(name="Over 60", criteria=Age(min=60))
    services.applier.apply(
        program(
            clusters=(ClusterSpec(code="seniors", terms=seniors),),
            promotions=(
                base_points(),
                base_points(code="silver", name="Silver", cluster="seniors", priority=-5),
            ),
        )
    )
    clock.advance(hours=2)
    register(services.ledger, "C1", ZENOBIA, date(2026, 5, 1))
    complete_profile(
        services.ledger, "C1", msgspec.structs.replace(ZENOBIA, phone="+39 347 555 0199")
    )
    record_consent(
        services.ledger,
        "C1",
        Consent(
            purpose=Purpose.MARKETING,
            channel=Channel.EMAIL,
            granted=True,
            at=clock.now,
            source=ConsentSource.CUSTOMER_APP,
            source_id="client:app",
        ),
    )
    services.desk.post([purchase("p1", line("TV", "40.00")), purchase("p2", line("WINE", "9.00"))])
    return services


def test_no_personal_value_is_stored_in_clear(chain: Services, settings: Settings) -> None:
    assert occurrences(settings, settings.pg_schema, settings.keystore_schema) == []
    assert export(chain.ledger, "C1", []).profile == ZENOBIA


def test_the_export_holds_everything_on_the_customer(chain: Services) -> None:
    campaigns = list(chain.desk.program.current().campaigns.values())

    found = export(chain.ledger, "C1", campaigns)

    assert (found.profile, found.erased, [c.code for c in found.cards]) == (ZENOBIA, False, ["C1"])
    assert [c.purpose for c in found.consents] == ["marketing"]
    assert [m.movement_id for m in found.movements] == ["p1", "p2"]
    assert {t.promotion for t in found.movements[0].transactions} == {"base", "silver"}


def test_erasure_leaves_the_ledger_and_nothing_of_the_person(
    chain: Services, settings: Settings
) -> None:
    campaigns = list(chain.desk.program.current().campaigns.values())
    before = chain.desk.card_view("C1", "t1").balance

    erase(chain.ledger, "C1", "operator:dpo", "request 2026-117")
    again = erase(chain.ledger, "C1", "operator:dpo", "request 2026-117")

    after = export(chain.ledger, "C1", campaigns)
    assert again.erased and after.erased and after.profile == Profile()
    assert [m.movement_id for m in after.movements] == ["p1", "p2"]
    assert chain.desk.card_view("C1", "t1").balance == before
    assert occurrences(settings, settings.pg_schema, settings.keystore_schema) == []
    with pytest.raises(CustomerErased):
        complete_profile(chain.ledger, "C1", ZENOBIA)


def test_neither_the_read_models_nor_the_event_stream_hold_the_person(
    chain: Services, settings: Settings
) -> None:
    erase(chain.ledger, "C1", "operator:dpo", "request 2026-117")

    with caught_up(settings, list(followers(settings).values())):
        messages = published(settings)

    assert occurrences(settings, *read_schemas(settings)) == []
    assert len(read_schemas(settings)) > 1  # the tables' schema and the documents' ones
    wanted = [(v.lower(), v.encode().hex()) for v in PERSONAL_VALUES]
    payloads = [payload.decode().lower() for _, _, payload in messages]
    assert any("erased" in payload for payload in payloads)
    assert [v for v, h in wanted for text in payloads if v in text or h in text] == []


def read_schemas(settings: Settings) -> list[str]:
    """The read side's schemas: its tables', and each document read model generation's."""
    with psycopg.connect(settings.admin_conninfo()) as conn:
        return [
            name
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                (settings.read_schema,),
            )
        ]


def test_an_erased_customer_is_not_known_again_by_a_new_process(
    chain: Services, settings: Settings, clock: Clock
) -> None:
    erase(chain.ledger, "C1", "operator:dpo", "request 2026-117")
    fresh = build_services(settings, clock)
    try:
        assert export(fresh.ledger, "C1", []).profile == Profile()
        assert fresh.desk.card_view("C1", "t1").registered is False
    finally:
        fresh.close()


def test_a_replay_after_erasure_is_still_identical(chain: Services) -> None:
    """The movements earned with a cluster of personal facts (age) that no longer open."""
    erase(chain.ledger, "C1", "operator:dpo", "request 2026-117")

    report = replay(chain.ledger)

    assert report.identical and (report.movements, report.withheld) == (2, 2)


def test_the_master_key_rotates_and_every_data_key_still_opens(
    chain: Services, settings: Settings
) -> None:
    register(
        chain.ledger, "C2", msgspec.structs.replace(ZENOBIA, first_name="Ada"), date(2026, 5, 2)
    )
    new_master = base64.b64encode(secrets.token_bytes(32)).decode()
    rotating = msgspec.structs.replace(
        settings, master_key=new_master, previous_master_key=settings.master_key
    )

    keys = KeyStore(rotating, *master_keys(rotating))
    assert keys.rotate() == 2
    keys.close()

    rotated = build_services(msgspec.structs.replace(rotating, previous_master_key=""))
    try:
        assert export(rotated.ledger, "C1", []).profile == ZENOBIA
        assert export(rotated.ledger, "C2", []).profile.first_name == "Ada"
    finally:
        rotated.close()


def test_personal_data_under_a_master_key_not_configured_is_refused_with_its_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    chain: Services,
    settings: Settings,
) -> None:
    """As after ``var/master.key`` was lost or replaced: a clear error, nothing changed."""
    use_database(monkeypatch, settings)
    monkeypatch.setenv("LOYALTY_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())

    assert main(["privacy", "export", "C1"]) == 2

    assert "error [unknown_master_key]: the data key of customer" in capsys.readouterr().err
    assert export(chain.ledger, "C1", []).profile == ZENOBIA


def test_privacy_commands_export_and_erase(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    chain: Services,
    settings: Settings,
) -> None:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("LOYALTY_MASTER_KEY", settings.master_key)

    assert main(["privacy", "export", "C1"]) == 0
    exported: dict[str, Any] = msgspec.json.decode(capsys.readouterr().out)
    assert exported["profile"]["last_name"] == "Quaglierini"
    assert main(["privacy", "erase", "C1", "--reason", "request 2026-117"]) == 0
    assert main(["privacy", "export", "C1"]) == 0
    out = capsys.readouterr().out
    assert "Quaglierini" not in out and '"erased": true' in out
