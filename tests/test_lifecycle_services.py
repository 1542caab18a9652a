"""Relying services and their start dates (smartphone-service.md 11.1).

The expected dates and certificate kinds are typed from the section's table and the choices
documented in workbench/lifecycle/services.py, not read back from SERVICES.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from workbench.errors import WorkbenchError
from workbench.lifecycle.services import (
    SERVICES,
    RelyingService,
    RelyingServiceError,
    available,
    service,
    services_frame,
)

EXPECTED = [
    # (key, starts, MODEL date?, certificate)
    ("mynaportal-login", date(2023, 5, 11), False, "auth"),  # Android launch
    ("moving", date(2023, 7, 1), True, "sign"),  # "from 2023-07": first day is MODEL
    ("ekyc", date(2023, 5, 11), False, "sign"),  # 施行規則 amendment; JPKI method = signing
    ("convenience-store", date(2024, 1, 22), False, "auth"),  # nationwide, not Tokyo 2023-12-20
    ("health-insurance", date(2025, 9, 19), False, "auth"),  # general start, not the pilot
    ("e-gov", date(2024, 6, 1), True, "sign"),  # planned 2024-06, actual [U]
    ("e-tax", date(2025, 1, 6), True, "sign"),  # "around 2025-01"
    ("digital-auth-app", None, False, "auth"),  # no established date
]


@pytest.mark.parametrize(("key", "starts", "model", "certificate"), EXPECTED,
                         ids=[e[0] for e in EXPECTED])
def test_start_dates_and_certificates(key: str, starts: date | None, model: bool,
                                      certificate: str) -> None:
    s = service(key)
    assert s.starts == starts
    assert s.starts_is_model is model
    assert s.certificate == certificate
    assert s.revocation_check == "ocsp"  # MODEL default
    assert s.source.startswith("smartphone-service.md 11.1 (")
    if model:
        assert "MODEL" in s.start_note


def test_every_service_is_listed_here() -> None:
    assert set(SERVICES) == {e[0] for e in EXPECTED}


def test_notes_keep_the_other_dates() -> None:
    assert "2023-12-20" in service("convenience-store").start_note  # Tokyo stores first
    note = service("health-insurance").start_note
    assert "2025-07" in note and "15 facilities" in note
    assert "uncertain" in service("e-gov").start_note


@pytest.mark.parametrize(
    ("key", "starts"), [(e[0], e[1]) for e in EXPECTED if e[1] is not None])
def test_refused_before_accepted_on_and_after_the_start(key: str, starts: date) -> None:
    day = timedelta(days=1)
    ok, reason = available(key, starts - day)
    assert not ok
    assert f"from {starts.isoformat()}" in reason
    assert f"asked on {(starts - day).isoformat()}" in reason
    assert available(key, starts)[0]
    assert available(key, starts + day)[0]
    assert available(service(key), starts + 1000 * day)[0]


def test_the_refusal_reads_as_documented() -> None:
    assert available("e-tax", date(2024, 3, 1)) == (
        False, "e-Tax accepts smartphone certificates from 2025-01-06 (MODEL); asked on 2024-03-01")
    ok, reason = available("convenience-store", date(2023, 12, 20))  # Tokyo only that day
    assert not ok and "2024-01-22" in reason and "(MODEL)" not in reason


def test_a_service_without_a_date_is_never_available() -> None:
    ok, reason = available("digital-auth-app", date(2030, 1, 1))
    assert not ok and "no established start date" in reason


def test_an_aware_datetime_counts_as_its_japanese_day() -> None:
    # 2024-01-21 15:00Z is 2024-01-22 00:00 JST: the nationwide convenience-store start
    assert available("convenience-store", datetime(2024, 1, 21, 15, 0, tzinfo=UTC))[0]
    assert not available("convenience-store", datetime(2024, 1, 21, 14, 59, tzinfo=UTC))[0]
    with pytest.raises(RelyingServiceError, match="no timezone"):
        available("convenience-store", datetime(2024, 1, 22, 12, 0))


def test_unknown_key_lists_the_keys() -> None:
    with pytest.raises(RelyingServiceError) as exc:
        service("passport")
    message = str(exc.value)
    assert "'passport'" in message and "e-tax" in message and "mynaportal-login" in message
    assert "\n" not in message
    assert isinstance(exc.value, WorkbenchError)
    with pytest.raises(RelyingServiceError):
        available("passport", date(2025, 1, 1))


def test_revocation_check_is_configurable_per_instance() -> None:
    crl = dataclasses.replace(service("e-tax"), revocation_check="crl")
    assert crl.revocation_check == "crl"
    assert service("e-tax").revocation_check == "ocsp"  # the shared table is untouched
    with pytest.raises(RelyingServiceError, match="revocation_check"):
        dataclasses.replace(service("e-tax"), revocation_check="ldap")
    with pytest.raises(RelyingServiceError, match="certificate"):
        dataclasses.replace(service("e-tax"), certificate="text")
    with pytest.raises(dataclasses.FrozenInstanceError):
        service("e-tax").starts = None  # type: ignore[misc]


def test_a_custom_service_is_checked_the_same_way() -> None:
    pilot = dataclasses.replace(service("health-insurance"), key="health-insurance-pilot",
                                starts=date(2025, 7, 1), starts_is_model=True)
    assert isinstance(pilot, RelyingService)
    assert available(pilot, date(2025, 7, 1))[0]
    assert available(pilot, date(2025, 6, 30)) == (
        False, "Health insurance (smartphone) accepts smartphone certificates from "
        "2025-07-01 (MODEL); asked on 2025-06-30")


def test_services_frame_for_notebooks() -> None:
    frame = services_frame()
    assert list(frame["key"]) == list(SERVICES)
    assert frame.set_index("key").loc["e-tax", "certificate"] == "sign"
    assert {"name_ja", "start_note", "revocation_check", "source"} <= set(frame.columns)
