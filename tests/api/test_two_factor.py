"""Two-factor sign-in over HTTP: enrolment, challenges, single-use codes, recovery codes,
and the restricted session of a role that requires a second factor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from litestar.testing import TestClient

from loyalty.api.app import create_app
from loyalty.bootstrap import Services
from loyalty.commands.operators import add_operator
from loyalty.domain import ids
from loyalty.domain.operator import Operator, Role
from loyalty.settings import Settings
from tests.builders import Clock, program

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient[Any]]:
    services.applier.apply(program())
    add_operator(services.ledger, "root", PASSWORD, Role.ADMIN, (), by="test")
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def sign_in(client: TestClient[Any]) -> Any:
    response = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def code_at(secret: str, clock: Clock, offset: timedelta = timedelta(0)) -> str:
    return pyotp.TOTP(secret).at(clock.now + offset)


def enrol(client: TestClient[Any], clock: Clock) -> tuple[str, list[str]]:
    """Enrols root's authenticator; its secret and recovery codes."""
    access = sign_in(client)["access_token"]
    enrolment = client.post("/api/v1/auth/two-factor", headers=bearer(access)).json()
    confirmed = client.post(
        "/api/v1/auth/two-factor/confirm",
        json={"code": code_at(enrolment["secret"], clock)},
        headers=bearer(access),
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(seconds=90)  # past the steps the confirmation could have used
    return enrolment["secret"], confirmed.json()["recovery_codes"]


def answer(client: TestClient[Any], challenge: str, **factor: str) -> Any:
    return client.post("/api/v1/auth/login/second-factor", json={"challenge": challenge, **factor})


def test_an_admin_without_a_second_factor_gets_a_restricted_session(
    client: TestClient[Any],
) -> None:
    access = sign_in(client)["access_token"]

    identity = client.get("/api/v1/auth/me", headers=bearer(access)).json()

    assert (identity["restricted"], identity["two_factor"]) == (True, False)


def test_enrolment_answers_a_provisioning_uri_and_the_secret_once(
    client: TestClient[Any], services: Services
) -> None:
    access = sign_in(client)["access_token"]

    enrolment = client.post("/api/v1/auth/two-factor", headers=bearer(access)).json()

    uri = urlparse(enrolment["provisioning_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrolment["secret"]]
    operator = services.ledger.repository.get(ids.operator_id("root"))
    assert isinstance(operator, Operator) and operator.pending_secret is not None
    assert enrolment["secret"].encode() not in operator.pending_secret


def test_confirming_lifts_the_restriction_and_gives_ten_recovery_codes(
    client: TestClient[Any], clock: Clock
) -> None:
    access = sign_in(client)["access_token"]
    enrolment = client.post("/api/v1/auth/two-factor", headers=bearer(access)).json()

    wrong = client.post(
        "/api/v1/auth/two-factor/confirm", json={"code": "000000"}, headers=bearer(access)
    )
    confirmed = client.post(
        "/api/v1/auth/two-factor/confirm",
        json={"code": code_at(enrolment["secret"], clock)},
        headers=bearer(access),
    )

    assert wrong.status_code == 401
    assert len(set(confirmed.json()["recovery_codes"])) == 10
    identity = client.get("/api/v1/auth/me", headers=bearer(access)).json()
    assert (identity["restricted"], identity["two_factor"]) == (False, True)


def test_once_enrolled_the_password_gets_a_challenge_answered_with_a_code(
    client: TestClient[Any], clock: Clock
) -> None:
    secret, _ = enrol(client, clock)

    challenge = sign_in(client)

    assert challenge["second_factor_required"] is True and "access_token" not in challenge
    tokens = answer(client, challenge["challenge"], code=code_at(secret, clock))
    assert tokens.status_code == 200
    me = client.get("/api/v1/auth/me", headers=bearer(tokens.json()["access_token"]))
    assert me.json()["restricted"] is False


def test_a_code_is_accepted_once_even_within_its_window(
    client: TestClient[Any], clock: Clock
) -> None:
    secret, _ = enrol(client, clock)
    code = code_at(secret, clock)
    assert answer(client, sign_in(client)["challenge"], code=code).status_code == 200

    replayed = answer(client, sign_in(client)["challenge"], code=code)

    assert replayed.status_code == 401


def test_a_code_of_the_neighbouring_step_is_accepted_for_clock_drift(
    client: TestClient[Any], clock: Clock
) -> None:
    secret, _ = enrol(client, clock)

    late = answer(
        client, sign_in(client)["challenge"], code=code_at(secret, clock, timedelta(seconds=-30))
    )

    assert late.status_code == 200


def test_a_challenge_is_good_once_and_a_wrong_code_spends_it(
    client: TestClient[Any], clock: Clock
) -> None:
    secret, _ = enrol(client, clock)
    challenge = sign_in(client)["challenge"]

    wrong = answer(client, challenge, code="000000")
    right_too_late = answer(client, challenge, code=code_at(secret, clock))

    assert wrong.status_code == right_too_late.status_code == 401


def test_a_challenge_expires_after_five_minutes(client: TestClient[Any], clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    challenge = sign_in(client)["challenge"]

    clock.advance(minutes=6)

    assert answer(client, challenge, code=code_at(secret, clock)).status_code == 401


def test_a_recovery_code_works_once(client: TestClient[Any], clock: Clock) -> None:
    _, recovery = enrol(client, clock)

    first = answer(client, sign_in(client)["challenge"], recovery_code=recovery[0].lower())
    again = answer(client, sign_in(client)["challenge"], recovery_code=recovery[0])

    assert (first.status_code, again.status_code) == (200, 401)


def test_an_answer_gives_a_code_or_a_recovery_code_not_both(
    client: TestClient[Any], clock: Clock
) -> None:
    secret, recovery = enrol(client, clock)
    challenge = sign_in(client)["challenge"]

    both = answer(client, challenge, code=code_at(secret, clock), recovery_code=recovery[0])

    assert both.status_code == 422 and both.json()["code"] == "invalid_field"


def test_enrolling_twice_is_refused(client: TestClient[Any], clock: Clock) -> None:
    secret, _ = enrol(client, clock)
    tokens = answer(client, sign_in(client)["challenge"], code=code_at(secret, clock)).json()

    again = client.post("/api/v1/auth/two-factor", headers=bearer(tokens["access_token"]))

    assert again.status_code == 409 and again.json()["code"] == "already_enrolled"
