"""Modelled time of traced exchanges: air + card + host (+ WTX), with the host timeout.

A trace records *what* was exchanged; this module says how long each exchange would take on a
phone talking to the card over RF, or to its SE over OMAPI, so a trace entry can carry the
modelled air / card / host time and a plot can stack them (nfc-timing.md 16 item 3). Nothing here
reads a clock: modelled time is computed from bytes and profiles only and stays apart from the
simulation's wall-clock time (16 item 3).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from workbench.timing.air import DEFAULT_AIR, AirParameters, AirTiming, activation_time
from workbench.timing.air import apdu_air_time as _apdu_air_time
from workbench.timing.errors import TimingParameterError
from workbench.timing.profiles import (
    ANDROID_TYPICAL,
    NETWORK_PROFILES,
    TYPICAL,
    HostProfile,
    NetworkProfile,
    Operation,
    ProcessingProfile,
    classify,
)

__all__ = [
    "ANDROID_ISO_DEP_TIMEOUT_MS",
    "ANDROID_TIMEOUTS_MS",
    "ExchangeTiming",
    "Link",
    "TimingModel",
    "android_iso_dep_timeout_ms",
]

#: AOSP ``NfcTag::resetAllTransceiveTimeouts`` defaults in ms, by tag technology (13).
ANDROID_TIMEOUTS_MS = MappingProxyType(
    {
        "NfcA": 618.0,
        "NfcB": 1000.0,
        "IsoDep": 618.0,
        "NfcF": 255.0,
        "NfcV": 1000.0,
        "MifareClassic": 618.0,
    }
)
#: 13: the card is reached through IsoDep over Type B, where 618 ms stays unless the app sets it.
ANDROID_ISO_DEP_TIMEOUT_MS = ANDROID_TIMEOUTS_MS["IsoDep"]
_ANDROID_TYPE_A_REFERENCE_FWI = 11  # 13: 618 ms ~ FWT at FWI 11


def android_iso_dep_timeout_ms(type_a_fwi: int | None = None) -> float:
    """Android's default IsoDep transceive timeout in ms (nfc-timing.md 13).

    Over Type B (the My Number Card) it is 618 ms whatever the FWI, which is why a slow
    signature or a key generation fails unless the app calls ``IsoDep.setTimeout()``. Over
    Type A the stack rescales it from the ATS: ``618 * 2^(FWI - 11)``; pass ``type_a_fwi``.
    """
    if type_a_fwi is None:
        return ANDROID_ISO_DEP_TIMEOUT_MS
    if isinstance(type_a_fwi, bool) or not isinstance(type_a_fwi, int) or not 0 <= type_a_fwi <= 14:
        raise TimingParameterError(
            f"FWI must be an int 0..14 (nfc-timing.md 11), got {type_a_fwi!r}"
        )
    return ANDROID_ISO_DEP_TIMEOUT_MS * 2.0 ** (type_a_fwi - _ANDROID_TYPE_A_REFERENCE_FWI)


class Link(StrEnum):
    """How the APDUs travel, which decides whether RF air time exists (nfc-timing.md 12.6)."""

    CONTACTLESS = "contactless"  # ISO/IEC 14443-B + ISO-DEP: frames, turnaround, WTX (2-12)
    OMAPI = "omapi"  # app -> phone SE over the controller's wired link: card + host only


@dataclass(frozen=True)
class ExchangeTiming:
    """Modelled time of one command/response exchange, in stackable parts (16 item 3).

    The four components are what the exchange *needs*: ``air_ms`` (frames and turnaround,
    12.4), ``card_ms`` (processing, 15; over RF floored at TR0, see
    :class:`~workbench.timing.air.AirTiming`), ``host_ms`` (per-transceive overhead, 13) and
    ``wtx_ms`` (S(WTX) rounds, 12.3). MODEL (12.3, 13): the host timeout covers all of them;
    a transceive that needs more fails with "tag lost" *at the timeout instant*, so
    :attr:`total_ms` - the time until the host gets its answer or its error - is then the
    timeout, and the components add up to more than it.
    """

    operation: Operation
    link: Link
    air_ms: float
    card_ms: float
    host_ms: float
    wtx_ms: float
    timeout_ms: float | None
    air: AirTiming | None = None  # block-level detail; None over OMAPI

    @property
    def required_ms(self) -> float:
        """air + card + host + WTX: the transceive's duration if nothing times it out."""
        return self.air_ms + self.card_ms + self.host_ms + self.wtx_ms

    @property
    def timed_out(self) -> bool:
        """True when the transceive needs longer than the host timeout (13 MODEL)."""
        return self.timeout_ms is not None and self.required_ms > self.timeout_ms

    @property
    def total_ms(self) -> float:
        """Elapsed modelled time until the host sees the response or the timeout error."""
        if self.timed_out:
            return float(self.timeout_ms)  # type: ignore[arg-type]
        return self.required_ms


def _check_timeout(value: float | None) -> None:
    if value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise TimingParameterError(
            f"host_timeout_ms must be a finite number > 0 or None (no timeout), got {value!r}"
        )


@dataclass(frozen=True)
class TimingModel:
    """Air, card and host parameters together: the modelled time of every exchange.

    The defaults are the spec's middle case: the card's MODEL RF parameters (106 kbit/s,
    FSC = FSD = 256, FWI 10), the ``typical`` card and Android host profiles and Android's
    618 ms IsoDep timeout (nfc-timing.md 13, 15). ``host_timeout_ms=None`` models a host
    without a timeout (PC/SC, or an app that raised it far enough).
    """

    air: AirParameters = DEFAULT_AIR
    card: ProcessingProfile = TYPICAL
    host: HostProfile = ANDROID_TYPICAL
    host_timeout_ms: float | None = ANDROID_ISO_DEP_TIMEOUT_MS
    link: Link = Link.CONTACTLESS
    network: NetworkProfile = NETWORK_PROFILES["typical"]

    def __post_init__(self) -> None:
        for name, kind in (
            ("air", AirParameters),
            ("card", ProcessingProfile),
            ("host", HostProfile),
            ("network", NetworkProfile),
        ):
            if not isinstance(getattr(self, name), kind):
                raise TimingParameterError(f"{name} must be a {kind.__name__}")
        _check_timeout(self.host_timeout_ms)
        try:
            object.__setattr__(self, "link", Link(self.link))
        except ValueError:
            raise TimingParameterError(
                f"link must be one of {', '.join(Link)}, got {self.link!r}"
            ) from None

    @classmethod
    def omapi(
        cls,
        card: ProcessingProfile = TYPICAL,
        host: HostProfile = ANDROID_TYPICAL,
        *,
        host_timeout_ms: float | None = None,
        network: NetworkProfile = NETWORK_PROFILES["typical"],
    ) -> TimingModel:
        """SE personalisation through OMAPI: card + host time per APDU, no air time (12.6, 16.5).

        No source gives an OMAPI transmit timeout, so there is none by default (ASSUMPTION).
        """
        return cls(
            card=card,
            host=host,
            host_timeout_ms=host_timeout_ms,
            link=Link.OMAPI,
            network=network,
        )

    @property
    def label(self) -> str:
        """One line naming the link, bit rate and profiles, for plot legends (15)."""
        if self.link is Link.OMAPI:
            link = "OMAPI (no air time)"
        else:
            down, up = self.air.bit_rates_kbps
            link = f"ISO 14443-B {down:.0f}/{up:.0f} kbit/s, FWI {self.air.fwi}"
        timeout = "none" if self.host_timeout_ms is None else f"{self.host_timeout_ms:g} ms"
        return f"{link}; {self.card.label}; {self.host.label}; timeout {timeout}"

    def exchange(
        self,
        command: bytes,
        response: bytes,
        *,
        operation: Operation | None = None,
        t_card_ms: float | None = None,
        rng: random.Random | None = None,
    ) -> ExchangeTiming:
        """Modelled time of ``command`` answered by ``response`` (12.4, 12.6, 13).

        The card time comes from the card profile for the classified operation unless
        ``t_card_ms`` gives it; ``operation`` overrides the classification (e.g. a key
        generation hidden in an encrypted STORE DATA). ``rng`` draws random card times.
        """
        command, response = bytes(command), bytes(response)
        kind = classify(command) if operation is None else Operation(operation)
        if t_card_ms is None:
            card = self.card.command_time_ms(command, response, operation=kind, rng=rng)
        else:
            card = t_card_ms
        if self.link is Link.OMAPI:
            if len(command) < 4 or len(response) < 2:
                raise TimingParameterError(
                    "an OMAPI transmit carries a command APDU (>= 4 bytes) and a response "
                    "(>= 2 bytes, ISO 7816-4 5.1)"
                )
            if isinstance(card, bool) or not isinstance(card, int | float) or not card >= 0:
                raise TimingParameterError(f"t_card_ms must be a number >= 0, got {card!r}")
            return ExchangeTiming(
                operation=kind,
                link=self.link,
                air_ms=0.0,
                card_ms=float(card),
                host_ms=self.host.transceive_overhead_ms,
                wtx_ms=0.0,  # no FWT on the wired link, hence no S(WTX)
                timeout_ms=self.host_timeout_ms,
            )
        detail = _apdu_air_time(len(command), len(response), card, self.air)
        return ExchangeTiming(
            operation=kind,
            link=self.link,
            air_ms=detail.air_ms,
            card_ms=detail.card_ms,
            host_ms=self.host.transceive_overhead_ms,
            wtx_ms=detail.wtx_ms,
            timeout_ms=self.host_timeout_ms,
            air=detail,
        )

    def sequence(
        self,
        pairs: Iterable[tuple[bytes, bytes]],
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> list[ExchangeTiming]:
        """:meth:`exchange` for each (command, response) pair, in order (12.5).

        One random generator serves the whole sequence, made from ``seed`` (or passed as
        ``rng``), so a seeded sequence is reproducible (16.4); with neither, random card times
        take their median. Every pair is timed even after a timeout: what a lost tag means for
        the following APDUs is the caller's business (13 MODEL).
        """
        if seed is not None and rng is not None:
            raise TimingParameterError("pass either seed or rng, not both")
        if seed is not None:
            rng = random.Random(seed)
        return [self.exchange(command, response, rng=rng) for command, response in pairs]

    def activation_ms(self) -> float:
        """Field-on to ISO-DEP ready (7.5) over RF; 0 over OMAPI, where there is no field."""
        if self.link is Link.OMAPI:
            return 0.0
        return activation_time(self.air).total_ms

    def network_ms(self, round_trips: int = 1) -> float:
        """Server round trips, a component of its own in stacked plots (15, 16 item 3)."""
        return self.network.time_ms(round_trips)
