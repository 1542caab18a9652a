"""Which phones can hold the smartphone certificates: the device catalogue.

The Android service writes its certificates into the **GP-SE** of the phone's NFC chip, so only
recent Osaifu-Keitai models qualify; the phone must also read the plastic card (ISO/IEC 14443
Type B) during issuance, and the Mynaportal app must be version 54 or later
(smartphone-service.md 3). iPhones are a different service, the card in Apple Wallet
(smartphone-service.md 12). J-LIS keeps the official model list; ``data/devices.csv`` holds the
models the public sources name plus clearly labelled synthetic counter-examples, each row
citing its source. It is data you can read in a notebook, not rules hidden in code
(CONVENTIONS.md, certomancer).

The refusal reasons are checked in a fixed order, the order in which a user would fix them:
unknown model, iPhone, no GP-SE, no NFC Type B, excluded by the maker, OS too old, app too old.

MODEL (smartphone-service.md 3 names no more): ``os_version=None`` means "not known" and skips
the OS check; OS versions compare numerically part by part (``"13" < "13.1" < "14"``); model
names match ignoring case and repeated blanks.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "MIN_APP_VERSION",
    "DeviceCatalogueError",
    "DeviceError",
    "DeviceModel",
    "IneligibleDeviceError",
    "catalogue_frame",
    "check_eligible",
    "find_model",
    "eligibility",
    "load_catalogue",
]

#: The Mynaportal app version from which the certificate menu is offered (smartphone-service.md 3).
MIN_APP_VERSION = 54

#: The columns of ``data/devices.csv``, in order.
COLUMNS = (
    "model", "maker", "os", "gp_se", "nfc_type_b", "biometrics", "min_os_version",
    "min_app_version", "eligible", "note", "source",
)

#: Biometric sensors a row may list (joined with ``+``), or ``none``.
SENSORS = ("fingerprint", "face", "iris")

OperatingSystem = Literal["Android", "iOS"]


class DeviceError(WorkbenchError, ValueError):
    """A device question that cannot be answered: a malformed version string, for example."""


class DeviceCatalogueError(DeviceError):
    """The device catalogue file is missing or has a malformed row (the message names it)."""


class IneligibleDeviceError(DeviceError):
    """This phone cannot hold the smartphone certificates; ``reason`` says why, for the user."""

    def __init__(self, reason: str, *, model: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.model = model


@dataclass(frozen=True)
class DeviceModel:
    """One row of the catalogue (smartphone-service.md 3; MODEL record of that section)."""

    model: str
    maker: str
    os: OperatingSystem
    gp_se: bool
    nfc_type_b: bool
    biometrics: tuple[str, ...]
    min_os_version: str | None
    min_app_version: int | None
    eligible: bool
    note: str
    source: str

    @property
    def has_biometrics(self) -> bool:
        """Whether the app can offer biometric unlock instead of the PIN (smartphone-service.md 7)."""
        return bool(self.biometrics)

    @property
    def hardware_ok(self) -> bool:
        """An Android phone with a GP-SE and NFC Type B reader mode."""
        return self.os == "Android" and self.gp_se and self.nfc_type_b


def _version(text: str, what: str) -> tuple[int, ...]:
    parts = text.strip().split(".")
    if not text.strip() or not all(p.isdigit() for p in parts):
        raise DeviceError(f"{what} {text!r} is not a version number like 13 or 12.1")
    return tuple(int(p) for p in parts)


def _older(have: str, need: str) -> bool:
    a, b = _version(have, "OS version"), _version(need, "minimum OS version")
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) < b + (0,) * (width - len(b))


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _bool(value: str, column: str) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError(f"{column} must be true or false, got {value!r}")


def _row(raw: dict[str, str]) -> DeviceModel:
    model = raw["model"].strip()
    if not model:
        raise ValueError("model is empty")
    os_name = raw["os"]
    if os_name not in ("Android", "iOS"):
        raise ValueError(f"os must be Android or iOS, got {os_name!r}")
    sensors = raw["biometrics"].strip()
    biometrics = () if sensors == "none" else tuple(sensors.split("+"))
    if any(s not in SENSORS for s in biometrics):
        raise ValueError(f"biometrics must be 'none' or {'+'.join(SENSORS)} parts, got {sensors!r}")
    min_os = raw["min_os_version"].strip() or None
    if min_os is not None:
        _version(min_os, "min_os_version")
    app = raw["min_app_version"].strip()
    if app and not app.isdigit():
        raise ValueError(f"min_app_version must be a whole number, got {app!r}")
    for column in ("maker", "note", "source"):
        if not raw[column].strip():
            raise ValueError(f"{column} is empty")
    device = DeviceModel(
        model=model,
        maker=raw["maker"].strip(),
        os=os_name,  # type: ignore[arg-type]  # checked above
        gp_se=_bool(raw["gp_se"], "gp_se"),
        nfc_type_b=_bool(raw["nfc_type_b"], "nfc_type_b"),
        biometrics=biometrics,
        min_os_version=min_os,
        min_app_version=int(app) if app else None,
        eligible=_bool(raw["eligible"], "eligible"),
        note=raw["note"].strip(),
        source=raw["source"].strip(),
    )
    if device.eligible and not device.hardware_ok:
        raise ValueError("eligible is true but the phone lacks Android, gp_se or nfc_type_b")
    if device.os == "Android" and device.min_app_version is None:
        raise ValueError(f"an Android row needs min_app_version (at least {MIN_APP_VERSION})")
    return device


def _parse(text: str, where: str) -> dict[str, DeviceModel]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise DeviceCatalogueError(
            f"{where}: header must be {','.join(COLUMNS)}, got {','.join(reader.fieldnames or [])}")
    devices: dict[str, DeviceModel] = {}
    seen: set[str] = set()
    for raw in reader:
        line = reader.line_num
        name = (raw.get("model") or "").strip()
        try:
            if None in raw or any(v is None for v in raw.values()):
                raise ValueError(f"needs {len(COLUMNS)} fields")
            device = _row(raw)
            if _key(device.model) in seen:
                raise ValueError("the model is listed twice")
        except ValueError as exc:
            raise DeviceCatalogueError(f"{where} line {line} ({name or 'no model'}): {exc}") from None
        seen.add(_key(device.model))
        devices[device.model] = device
    return devices


@cache
def _shipped() -> dict[str, DeviceModel]:
    data = resources.files("workbench") / "data" / "devices.csv"
    try:
        text = data.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeviceCatalogueError(f"shipped device catalogue unreadable: {exc}") from None
    return _parse(text, "devices.csv")


def load_catalogue(path: str | os.PathLike[str] | None = None) -> dict[str, DeviceModel]:
    """The catalogue by model name: the shipped ``data/devices.csv`` (found through
    :mod:`importlib.resources`, so it works from an installed package and from a notebook
    copied anywhere) or the CSV at ``path``. Every row is validated; the first malformed one
    raises a one-line :class:`DeviceCatalogueError` naming its line and model."""
    if path is None:
        return dict(_shipped())
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeviceCatalogueError(f"device catalogue {file}: {exc.strerror or exc}") from None
    return _parse(text, str(file))


def catalogue_frame(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The catalogue as a pandas DataFrame, one row per model, in file order (for notebooks)."""
    import pandas as pd

    rows = []
    for d in load_catalogue(path).values():
        rows.append({
            "model": d.model, "maker": d.maker, "os": d.os, "gp_se": d.gp_se,
            "nfc_type_b": d.nfc_type_b, "biometrics": "+".join(d.biometrics) or "none",
            "min_os_version": d.min_os_version, "min_app_version": d.min_app_version,
            "eligible": d.eligible, "note": d.note, "source": d.source,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _iphone(model: str) -> IneligibleDeviceError:
    return IneligibleDeviceError(
        f"{model} is an iPhone: iPhones use the My Number Card in Apple Wallet "
        "(from 2025-06-24), not the Android smartphone certificate", model=model)


def _find(model: str, catalogue: dict[str, DeviceModel]) -> DeviceModel:
    wanted = _key(model)
    for device in catalogue.values():
        if _key(device.model) == wanted:
            return device
    if wanted.startswith("iphone"):
        raise _iphone(model)
    raise IneligibleDeviceError(
        f"{model!r} is not in the device catalogue (J-LIS keeps the full list); known models: "
        + ", ".join(catalogue), model=model)


def find_model(model: str, catalogue: dict[str, DeviceModel] | None = None) -> DeviceModel:
    """The catalogue row of ``model`` (case and repeated spaces ignored);
    :class:`IneligibleDeviceError` for an unknown model or an iPhone."""
    return _find(model, load_catalogue() if catalogue is None else catalogue)


def check_eligible(
    model: str,
    *,
    os_version: str | None = None,
    app_version: int,
    catalogue: dict[str, DeviceModel] | None = None,
) -> None:
    """Refuse a phone that cannot hold the smartphone certificates (smartphone-service.md 3).

    Raises :class:`IneligibleDeviceError` with a one-line reason a user can act on; returns
    ``None`` for an eligible phone. ``os_version`` is the Android version (``"13"``,
    ``"12.1"``); ``None`` skips the OS check. ``app_version`` is the Mynaportal app's major
    version. ``catalogue`` defaults to the shipped one.
    """
    if isinstance(app_version, bool) or not isinstance(app_version, int) or app_version < 0:
        raise DeviceError(f"app_version must be a whole number like 54, got {app_version!r}")
    device = _find(model, load_catalogue() if catalogue is None else catalogue)
    name = device.model
    if device.os == "iOS":
        raise _iphone(name)
    if not device.gp_se:
        raise IneligibleDeviceError(
            f"{name} has no GP-SE (the Osaifu-Keitai secure element) to hold the certificates",
            model=name)
    if not device.nfc_type_b:
        raise IneligibleDeviceError(
            f"{name} cannot read the My Number Card: it has no NFC Type B reader mode", model=name)
    if not device.eligible:
        raise IneligibleDeviceError(
            f"{name} is explicitly excluded from the service by {device.maker}", model=name)
    if os_version is not None and device.min_os_version and _older(
        os_version, device.min_os_version
    ):
        raise IneligibleDeviceError(
            f"{name} needs Android {device.min_os_version} or later (it has {os_version}); "
            "update the OS first", model=name)
    need = device.min_app_version or MIN_APP_VERSION
    if app_version < need:
        raise IneligibleDeviceError(
            f"Mynaportal app version {app_version} is too old; update it to version {need} "
            "or later", model=name)


def eligibility(
    model: str,
    *,
    os_version: str | None = None,
    app_version: int,
    catalogue: dict[str, DeviceModel] | None = None,
) -> tuple[bool, str]:
    """``(True, "eligible")`` or ``(False, reason)``: :func:`check_eligible` for widgets.

    A malformed version string is answered as ``(False, message)`` too; a broken catalogue
    still raises, because no user input can fix it.
    """
    try:
        check_eligible(model, os_version=os_version, app_version=app_version, catalogue=catalogue)
    except DeviceCatalogueError:
        raise
    except DeviceError as exc:
        return False, str(exc)
    return True, "eligible"
