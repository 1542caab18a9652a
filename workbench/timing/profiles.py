"""Card-processing, host and network time profiles (nfc-timing.md 13-15), all ASSUMPTIONS.

No public per-APDU measurement of a real My Number Card exists (nfc-timing.md 14.1), so the
card's processing time comes from named profiles ``fast`` / ``typical`` / ``slow`` built from
the table of nfc-timing.md 15, itself synthesised from Java Card and USB-token benchmarks
(14.2, 14.3). Every number below is an ASSUMPTION, labelled with the row it comes from; plots
SHOULD say which profile they used (15), hence :attr:`ProcessingProfile.label`. Random
components (key generation) draw from a caller-supplied :class:`random.Random`, so runs are
reproducible from a seed (16.4).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from types import MappingProxyType

from workbench.apdu import CommandAPDU
from workbench.errors import APDUError
from workbench.timing.errors import TimingParameterError

__all__ = [
    "ANDROID_FAST",
    "ANDROID_SLOW",
    "ANDROID_TYPICAL",
    "FAST",
    "HOST_PROFILES",
    "NETWORK_PROFILES",
    "PROFILES",
    "SLOW",
    "TYPICAL",
    "HostProfile",
    "NetworkProfile",
    "Operation",
    "ProcessingProfile",
    "classify",
    "get_profile",
    "has_secure_messaging",
]

_SOURCE = "nfc-timing.md 15 (ASSUMPTION, synthesised from 14)"
_BYTES_PER_UNIT = 256  # 15: READ BINARY and NVM write times are given per 256 bytes


class Operation(StrEnum):
    """Kinds of card work with their own row in nfc-timing.md 15."""

    SELECT = "select"  # SELECT AP / EF
    READ_BINARY = "read_binary"  # READ BINARY (per 256 B)
    VERIFY = "verify"  # VERIFY PIN incl. retry-counter update in NVM
    SIGNATURE = "signature"  # RSA-2048 private-key operation
    KEY_GENERATION = "key_generation"  # RSA-2048 key pair, random duration
    SECURE_CHANNEL = "secure_channel"  # SCP03 INITIALIZE UPDATE / EXTERNAL AUTHENTICATE
    NVM_WRITE = "nvm_write"  # STORE DATA, PUT KEY, INSTALL, ... (per 256 B)
    OTHER = "other"  # anything without crypto or a notable NVM write


# --- classification ---------------------------------------------------------------------------

_CLA_PROPRIETARY = 0x80  # ISO 7816-4 5.4.1: CLA b8 = 1
_CLA_INVALID = 0xFF  # ISO 7816-4 5.4.1
_CLA_FURTHER_INTERINDUSTRY = 0x40  # ISO 7816-4 5.4.1: CLA 40..7F
_CLA_SM_FIRST = 0x0C  # ISO 7816-4 5.4.1: b4-b3 secure messaging (first interindustry)
_CLA_SM_FURTHER = 0x20  # ISO 7816-4 5.4.1: b6 secure messaging (further interindustry)
_CLA_SM_GP = 0x04  # globalplatform.md 6.5: CLA 84 = C-MAC (proprietary class)

# Interindustry instructions (ISO 7816-4 11; jpki-card.md 2.2, 4.1, 4.3, 4.4).
_ISO_OPERATIONS: dict[int, Operation] = {
    0xA4: Operation.SELECT,
    0xB0: Operation.READ_BINARY,  # READ BINARY
    0xB1: Operation.READ_BINARY,  # READ BINARY, offset in data
    0xB2: Operation.READ_BINARY,  # READ RECORD: ASSUMPTION, costs like a binary read
    0xB3: Operation.READ_BINARY,
    0x20: Operation.VERIFY,
    0x21: Operation.VERIFY,
    0x24: Operation.VERIFY,  # CHANGE REFERENCE DATA: PIN compare + NVM update (ASSUMPTION)
    0x25: Operation.VERIFY,
    0x2C: Operation.VERIFY,  # RESET RETRY COUNTER (smartphone-service.md 15.2 C11)
    0x2D: Operation.VERIFY,
    0x2A: Operation.SIGNATURE,  # PERFORM SECURITY OPERATION (signature / decipher)
    0x46: Operation.KEY_GENERATION,  # GENERATE ASYMMETRIC KEY PAIR (ISO 7816-8)
    0x47: Operation.KEY_GENERATION,
    0xD0: Operation.NVM_WRITE,  # WRITE BINARY
    0xD6: Operation.NVM_WRITE,  # UPDATE BINARY
    0xD7: Operation.NVM_WRITE,
    0xDC: Operation.NVM_WRITE,  # UPDATE RECORD
    0xE2: Operation.NVM_WRITE,  # APPEND RECORD
    0xDA: Operation.NVM_WRITE,  # PUT DATA
    0xDB: Operation.NVM_WRITE,
    0xE0: Operation.NVM_WRITE,  # CREATE FILE
    0xE4: Operation.NVM_WRITE,  # DELETE FILE
}

# Proprietary class: JICSAP commands of the card (jpki-card.md 3.3, 3.5, 4.5) and
# GlobalPlatform card management (globalplatform.md 5, 6).
_PROPRIETARY_OPERATIONS: dict[int, Operation] = {
    0x2A: Operation.SIGNATURE,  # COMPUTE DIGITAL SIGNATURE (jpki-card.md 4.5)
    0xAE: Operation.SIGNATURE,  # SET SESSION KEY: RSA decryption of the key (jpki-card.md 3.3)
    0x32: Operation.VERIFY,  # CHANGE KEY: new PIN into NVM (jpki-card.md 3.5)
    0x50: Operation.SECURE_CHANNEL,  # INITIALIZE UPDATE (globalplatform.md 6)
    0x82: Operation.SECURE_CHANNEL,  # EXTERNAL AUTHENTICATE (globalplatform.md 6.5)
    0xE2: Operation.NVM_WRITE,  # STORE DATA (globalplatform.md 5.5)
    0xD8: Operation.NVM_WRITE,  # PUT KEY (globalplatform.md 5.7)
    0xE6: Operation.NVM_WRITE,  # INSTALL
    0xE8: Operation.NVM_WRITE,  # LOAD (globalplatform.md 5.4)
    0xE4: Operation.NVM_WRITE,  # DELETE (globalplatform.md 5.6)
    0xF0: Operation.NVM_WRITE,  # SET STATUS: life-cycle byte in NVM
}

_INS_STORE_DATA = 0xE2
_P1_STORE_DATA_ENCRYPTED = 0x60  # globalplatform.md 5.5: P1 b7-b6 = 11, data encrypted
_P1_STORE_DATA_DGI = 0x08  # globalplatform.md 5.5: P1 b5-b4 = 01, DGI format
# smartphone-service.md 15.2 C6 / C7 (MODEL DGIs): "generate an RSA-2048 key pair" in 0017 / 001A.
_KEY_GENERATION_DGIS = frozenset({bytes.fromhex("A017"), bytes.fromhex("A01A")})
_INS_VERIFY = 0x20


def has_secure_messaging(cla: int) -> bool:
    """True when CLA announces secure messaging, i.e. an SCP03 / SM-wrapped command.

    ISO 7816-4 5.4.1: first interindustry class b4-b3, further interindustry b6; in the
    proprietary class the GlobalPlatform convention ``84`` = C-MAC (globalplatform.md 6.5).
    Such a command costs the card an extra AES/CMAC step (nfc-timing.md 15).
    """
    if cla == _CLA_INVALID:
        return False
    if cla & _CLA_PROPRIETARY:
        return bool(cla & _CLA_SM_GP)
    if cla & _CLA_FURTHER_INTERINDUSTRY:
        return bool(cla & _CLA_SM_FURTHER)
    return bool(cla & _CLA_SM_FIRST)


def classify(command: bytes) -> Operation:
    """The kind of card work a command APDU asks for, from CLA and INS (nfc-timing.md 15).

    The class bit decides between the ISO table and the JICSAP/GlobalPlatform table, because
    the same INS means different things there (``E2`` APPEND RECORD vs STORE DATA). A STORE
    DATA in DGI format whose visible DGI is one of the key-generation DGIs of
    smartphone-service.md 15.2 (C6, C7) is key generation; when that data is encrypted
    (security level 33) the DGI is hidden and the caller must say so (``operation=`` in
    :meth:`workbench.timing.TimingModel.exchange`). A VERIFY without data only reads the retry
    counter, so it is OTHER. Unknown or malformed commands are OTHER: a card still spends time
    rejecting them.
    """
    raw = bytes(command)
    if len(raw) < 2:
        return Operation.OTHER
    cla, ins = raw[0], raw[1]
    if cla == _CLA_INVALID:
        return Operation.OTHER
    data = _data_field(raw)
    if cla & _CLA_PROPRIETARY:
        operation = _PROPRIETARY_OPERATIONS.get(ins, Operation.OTHER)
        if ins == _INS_STORE_DATA and _is_key_generation_store_data(raw[2], data):
            return Operation.KEY_GENERATION
        return operation
    operation = _ISO_OPERATIONS.get(ins, Operation.OTHER)
    if ins == _INS_VERIFY and not data:
        return Operation.OTHER  # jpki-card.md 4.3: retry-counter query, no NVM update
    return operation


def _data_field(raw: bytes) -> bytes:
    """The data field of a command APDU; for a malformed APDU, everything after 5 bytes."""
    try:
        return CommandAPDU.from_bytes(raw).data
    except APDUError:
        return raw[5:]


def _is_key_generation_store_data(p1: int, data: bytes) -> bool:
    if p1 & _P1_STORE_DATA_ENCRYPTED == _P1_STORE_DATA_ENCRYPTED:
        return False
    return bool(p1 & _P1_STORE_DATA_DGI) and data[:2] in _KEY_GENERATION_DGIS


def _response_data_len(response: bytes) -> int:
    return max(0, len(response) - 2)  # data without SW1 SW2


# --- profiles ---------------------------------------------------------------------------------


def _check_ms(value: object, name: str, *, positive: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):  # type: ignore[operator]
        bound = "> 0" if positive else ">= 0"
        raise TimingParameterError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class ProcessingProfile:
    """Card processing times in ms per operation, one column of nfc-timing.md 15.

    READ BINARY and NVM writes scale with the bytes moved, in units of 256 bytes, with one
    unit as the floor: a short read still costs a whole command's fixed work (ASSUMPTION).
    Key generation is log-normal with the table value as median (14.2: "a wide spread");
    without a random generator the median is used so untouched runs stay deterministic.
    """

    name: str
    select_ms: float
    read_binary_per_256_ms: float
    verify_ms: float
    signature_ms: float
    key_generation_median_ms: float
    key_generation_sigma: float  # of ln(t); 0.5 puts ~68 % of draws within x/÷ 1.65
    aes_cmac_per_apdu_ms: float  # SCP03 wrapping/unwrapping of one APDU
    nvm_write_per_256_ms: float
    other_ms: float  # ASSUMPTION: as SELECT, no crypto and no NVM write
    overrides: tuple[str, ...] = ()
    source: str = _SOURCE

    def __post_init__(self) -> None:
        for name in _TIME_FIELDS:
            _check_ms(
                getattr(self, name), f"{self.name}.{name}", positive=name.startswith("key_gen")
            )

    @property
    def label(self) -> str:
        """Plot label: profile name, overridden fields and the ASSUMPTION marker (15)."""
        changed = f", overrides: {', '.join(self.overrides)}" if self.overrides else ""
        return f"card {self.name} ({self.source}{changed})"

    def with_overrides(self, **values: float) -> ProcessingProfile:
        """A copy with some times replaced, e.g. ``TYPICAL.with_overrides(signature_ms=120)``.

        The overridden names are kept in :attr:`overrides` so that plots still say which
        numbers are not the table's.
        """
        unknown = sorted(set(values) - set(_TIME_FIELDS))
        if unknown:
            raise TimingParameterError(
                f"unknown card-time field(s) {', '.join(unknown)}; use {', '.join(_TIME_FIELDS)}"
            )
        changed = tuple(dict.fromkeys((*self.overrides, *sorted(values))))
        return replace(self, overrides=changed, **values)

    def time_ms(
        self,
        operation: Operation,
        *,
        data_bytes: int = 0,
        secure_messaging: bool = False,
        rng: random.Random | None = None,
    ) -> float:
        """Processing time of one APDU of kind ``operation`` (nfc-timing.md 15).

        ``data_bytes`` is what the card reads (READ BINARY: response data) or writes (NVM
        write: command data); other kinds ignore it. ``secure_messaging`` adds one AES/CMAC
        step for an SCP03-wrapped APDU. ``rng`` draws key-generation times.
        """
        operation = Operation(operation)
        if isinstance(data_bytes, bool) or not isinstance(data_bytes, int) or data_bytes < 0:
            raise TimingParameterError(f"data_bytes must be an int >= 0, got {data_bytes!r}")
        units = max(1.0, data_bytes / _BYTES_PER_UNIT)
        if operation is Operation.SELECT:
            base = self.select_ms
        elif operation is Operation.READ_BINARY:
            base = self.read_binary_per_256_ms * units
        elif operation is Operation.VERIFY:
            base = self.verify_ms
        elif operation is Operation.SIGNATURE:
            base = self.signature_ms
        elif operation is Operation.KEY_GENERATION:
            base = self.key_generation_ms(rng)
        elif operation is Operation.SECURE_CHANNEL:
            base = self.aes_cmac_per_apdu_ms
        elif operation is Operation.NVM_WRITE:
            base = self.nvm_write_per_256_ms * units
        else:
            base = self.other_ms
        return base + (self.aes_cmac_per_apdu_ms if secure_messaging else 0.0)

    def key_generation_ms(self, rng: random.Random | None = None) -> float:
        """One RSA-2048 key generation: log-normal around the median, or the median (14.2)."""
        if rng is None:
            return self.key_generation_median_ms
        return rng.lognormvariate(
            math.log(self.key_generation_median_ms), self.key_generation_sigma
        )

    def command_time_ms(
        self,
        command: bytes,
        response: bytes = b"\x90\x00",
        *,
        operation: Operation | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Processing time of ``command`` answered by ``response``; classifies unless told."""
        command = bytes(command)
        kind = classify(command) if operation is None else Operation(operation)
        if kind is Operation.READ_BINARY:
            moved = _response_data_len(bytes(response))
        elif kind is Operation.NVM_WRITE:
            moved = len(_data_field(command))
        else:
            moved = 0
        sm = bool(command) and has_secure_messaging(command[0])
        return self.time_ms(kind, data_bytes=moved, secure_messaging=sm, rng=rng)


_TIME_FIELDS = tuple(
    f.name for f in fields(ProcessingProfile) if f.name not in ("name", "overrides", "source")
)
_KEY_GENERATION_SIGMA = 0.5  # ASSUMPTION: 14.2 asks for "a wide spread", gives no number

# nfc-timing.md 15, one column each. Every value is an ASSUMPTION; the row is named per field.
FAST = ProcessingProfile(
    name="fast",
    select_ms=1.0,  # 15 SELECT AP / EF
    read_binary_per_256_ms=2.0,  # 15 READ BINARY, 256 B
    verify_ms=10.0,  # 15 VERIFY PIN
    signature_ms=60.0,  # 15 COMPUTE DIGITAL SIGNATURE, RSA-2048 (14.2: current gen 53-66)
    key_generation_median_ms=2_000.0,  # 15 GENERATE KEY PAIR (14.2: current gen 2.1-5.2 s)
    key_generation_sigma=_KEY_GENERATION_SIGMA,
    aes_cmac_per_apdu_ms=0.5,  # 15 AES / CMAC: "< 1 ms", taken as 0.5 ms
    nvm_write_per_256_ms=5.0,  # 15 NVM write per 256 B
    other_ms=1.0,  # as SELECT
)
TYPICAL = ProcessingProfile(
    name="typical",
    select_ms=5.0,
    read_binary_per_256_ms=5.0,
    verify_ms=30.0,
    signature_ms=200.0,  # 14.2: the contactless SECORA ID X row (200 ms)
    key_generation_median_ms=5_000.0,
    key_generation_sigma=_KEY_GENERATION_SIGMA,
    aes_cmac_per_apdu_ms=1.0,
    nvm_write_per_256_ms=15.0,
    other_ms=5.0,
)
SLOW = ProcessingProfile(
    name="slow",
    select_ms=10.0,
    read_binary_per_256_ms=15.0,
    verify_ms=60.0,
    signature_ms=450.0,  # 14.2/14.3: older cards and tokens, 430-871 ms
    key_generation_median_ms=15_000.0,  # 15: "15 s (random)"
    key_generation_sigma=_KEY_GENERATION_SIGMA,
    aes_cmac_per_apdu_ms=2.0,
    nvm_write_per_256_ms=40.0,
    other_ms=10.0,
)

#: Card-processing profiles by name (nfc-timing.md 15).
PROFILES: MappingProxyType[str, ProcessingProfile] = MappingProxyType(
    {p.name: p for p in (FAST, TYPICAL, SLOW)}
)


def get_profile(name: str) -> ProcessingProfile:
    """The card profile called ``name``; an unknown name lists the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise TimingParameterError(
            f"unknown card profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True)
class HostProfile:
    """Host (phone) overhead per transceive, outside the card and the air (nfc-timing.md 13).

    Android app -> NFC service -> controller and back costs "a few ms up to ~15 ms" per
    ``transceive()`` (13, ASSUMPTION); 15 turns that into 2 / 5 / 15 ms. The same figures are
    used for an OMAPI ``transmit()`` to the SE, for which no source gives a number (ASSUMPTION).
    """

    name: str
    transceive_overhead_ms: float
    source: str = "nfc-timing.md 13, 15 (ASSUMPTION)"

    def __post_init__(self) -> None:
        _check_ms(self.transceive_overhead_ms, f"{self.name}.transceive_overhead_ms")

    @property
    def label(self) -> str:
        """Plot label with the ASSUMPTION marker (15)."""
        return f"host {self.name} ({self.source})"


ANDROID_FAST = HostProfile("android-fast", 2.0)  # 15
ANDROID_TYPICAL = HostProfile("android-typical", 5.0)  # 15
ANDROID_SLOW = HostProfile("android-slow", 15.0)  # 15

#: Host profiles by name; ``fast`` / ``typical`` / ``slow`` match the card profiles' names.
HOST_PROFILES: MappingProxyType[str, HostProfile] = MappingProxyType(
    {"fast": ANDROID_FAST, "typical": ANDROID_TYPICAL, "slow": ANDROID_SLOW}
)


@dataclass(frozen=True)
class NetworkProfile:
    """One round trip to a server (JPKI, TSM), a separate stackable component (16 item 3)."""

    name: str
    round_trip_ms: float
    source: str = "nfc-timing.md 15 (MODEL)"

    def __post_init__(self) -> None:
        _check_ms(self.round_trip_ms, f"{self.name}.round_trip_ms")

    def time_ms(self, round_trips: int = 1) -> float:
        """``round_trips`` round trips, e.g. a TSM batch exchange (smartphone-service.md 15.2)."""
        if isinstance(round_trips, bool) or not isinstance(round_trips, int) or round_trips < 0:
            raise TimingParameterError(f"round_trips must be an int >= 0, got {round_trips!r}")
        return round_trips * self.round_trip_ms


#: Network profiles by name: 50 / 150 / 500 ms per round trip (nfc-timing.md 15, MODEL).
NETWORK_PROFILES: MappingProxyType[str, NetworkProfile] = MappingProxyType(
    {
        "fast": NetworkProfile("fast", 50.0),
        "typical": NetworkProfile("typical", 150.0),
        "slow": NetworkProfile("slow", 500.0),
    }
)
