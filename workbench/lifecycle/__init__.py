"""The smartphone certificate service (スマホ用電子証明書搭載サービス) and the card certificate
lifecycle: actors, rules, states and the simulated world they live in.

- :mod:`~workbench.lifecycle.issuance`: the one place that puts an authority's keys and
  certificates onto a card or into a phone token (``create_card``, ``issue_card``).
- :mod:`~workbench.lifecycle.states`: the phone certificate pair's state machine and the
  event → revocation reason table (smartphone-service.md 15.8), as data.
- :mod:`~workbench.lifecycle.authority`: the J-LIS-like service side: application API (RA),
  issuance, TSM, hotline and card events, stored beside the revocation registry.
- :mod:`~workbench.lifecycle.actors`: people, phones and the Mynaportal app.
- :mod:`~workbench.lifecycle.relying`: relying services (challenge, signature, OCSP/CRL) and
  external readers.
- :mod:`~workbench.lifecycle.calendar`, :mod:`~workbench.lifecycle.devices`,
  :mod:`~workbench.lifecycle.services`: hotline schedules and national holidays, the device
  catalogue, the relying services and their start dates.
- :mod:`~workbench.lifecycle.simulation`: one world on a controllable calendar.
- :mod:`~workbench.lifecycle.wire`: what crosses between actors, recorded with its timing.

Layering (ARCHITECTURE): ``lifecycle`` sits above ``card``, ``client``, ``pki``, ``se`` and
``timing`` and may import all of them; nothing below imports it.
"""

from workbench.lifecycle.actors import (
    AppError,
    MynaportalApp,
    Person,
    Phone,
    Result,
    Secret,
)
from workbench.lifecycle.authority import API, ServiceAuthority, ServiceError
from workbench.lifecycle.calendar import SCHEDULES, HotlineSchedule, is_national_holiday, schedule
from workbench.lifecycle.devices import (
    DeviceModel,
    IneligibleDeviceError,
    catalogue_frame,
    check_eligible,
    eligibility,
    find_model,
    load_catalogue,
)
from workbench.lifecycle.issuance import (
    DEFAULT_AUTH_PIN,
    DEFAULT_SIGN_PASSWORD,
    create_card,
    issue_card,
    load_token,
)
from workbench.lifecycle.relying import Reader, RelyingParty, Verdict
from workbench.lifecycle.services import SERVICES, RelyingService, available, services_frame
from workbench.lifecycle.simulation import DEFAULT_START, HotlineCall, Simulation, SimulationError
from workbench.lifecycle.states import (
    EVENTS,
    LIVE_STATES,
    TRANSITIONS,
    Event,
    PairState,
    StateError,
    next_state,
)
from workbench.lifecycle.wire import ReplayWire, Wire

__all__ = [
    "API",
    "DEFAULT_AUTH_PIN",
    "DEFAULT_SIGN_PASSWORD",
    "DEFAULT_START",
    "EVENTS",
    "LIVE_STATES",
    "SCHEDULES",
    "SERVICES",
    "TRANSITIONS",
    "AppError",
    "DeviceModel",
    "Event",
    "HotlineCall",
    "HotlineSchedule",
    "IneligibleDeviceError",
    "MynaportalApp",
    "PairState",
    "Person",
    "Phone",
    "Reader",
    "RelyingParty",
    "RelyingService",
    "ReplayWire",
    "Result",
    "Secret",
    "ServiceAuthority",
    "ServiceError",
    "Simulation",
    "SimulationError",
    "StateError",
    "Verdict",
    "Wire",
    "available",
    "catalogue_frame",
    "check_eligible",
    "create_card",
    "eligibility",
    "find_model",
    "is_national_holiday",
    "issue_card",
    "load_catalogue",
    "load_token",
    "next_state",
    "schedule",
    "services_frame",
]
