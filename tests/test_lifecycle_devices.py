"""The device catalogue and the eligibility rules of smartphone-service.md 3.

The model names below are typed from the section's table and text (ITM-2305, bcnretail), not
read from the CSV, so a row dropped or renamed in ``data/devices.csv`` fails here.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.lifecycle.devices import (
    COLUMNS,
    MIN_APP_VERSION,
    DeviceCatalogueError,
    DeviceError,
    IneligibleDeviceError,
    catalogue_frame,
    check_eligible,
    eligibility,
    load_catalogue,
)

#: smartphone-service.md 3: the 2023 launch list (ITM-2305) and the later additions.
LAUNCH_MODELS = [
    "Galaxy Z Flip4", "Galaxy Z Fold4", "Galaxy A54",  # Samsung
    "Pixel 7", "Pixel 7 Pro",  # Google
    "Xperia 1 IV", "Xperia 5 IV", "Xperia 10 IV",  # Sony
    "AQUOS R7",  # Sharp
]
LATER_MODELS = ["Pixel 4a (5G)", "Galaxy Note20 Ultra 5G"]


@pytest.mark.parametrize("model", LAUNCH_MODELS + LATER_MODELS)
def test_every_named_model_is_eligible_with_current_versions(model: str) -> None:
    check_eligible(model, os_version="14", app_version=MIN_APP_VERSION)
    assert eligibility(model, os_version="14", app_version=60) == (True, "eligible")
    device = load_catalogue()[model]
    assert device.os == "Android" and device.gp_se and device.nfc_type_b and device.eligible
    assert device.min_app_version == 54  # section 3: Mynaportal app version 54 or later
    assert device.source.startswith("smartphone-service.md 3 (")


def test_the_sources_are_cited_per_row() -> None:
    catalogue = load_catalogue()
    assert all("(ITM-2305)" in catalogue[m].source for m in LAUNCH_MODELS + ["Pixel 4a (5G)"])
    assert "(bcnretail)" in catalogue["Galaxy Note20 Ultra 5G"].source
    assert "(bcnretail)" in catalogue["Galaxy M23 5G"].source
    assert catalogue["iPhone 15"].source.startswith("smartphone-service.md 12 ")
    # biometric sensors are not in the sources: every row that lists some says MODEL
    assert all("MODEL" in d.note for d in catalogue.values() if d.os == "Android")


INELIGIBLE = [
    # (model, words the reason must contain)
    ("Galaxy M23 5G", "explicitly excluded"),
    ("Example phone without GP-SE (synthetic)", "no GP-SE"),
    ("Example phone without NFC Type B reader mode (synthetic)", "no NFC Type B"),
    ("iPhone 15", "Apple Wallet"),
]


@pytest.mark.parametrize(("model", "words"), INELIGIBLE, ids=[m for m, _ in INELIGIBLE])
def test_each_ineligible_example_gives_its_reason(model: str, words: str) -> None:
    with pytest.raises(IneligibleDeviceError) as exc:
        check_eligible(model, os_version="14", app_version=60)
    assert words in exc.value.reason
    assert str(exc.value) == exc.value.reason
    assert "\n" not in exc.value.reason
    assert exc.value.model == model
    assert isinstance(exc.value, WorkbenchError)
    assert eligibility(model, os_version="14", app_version=60) == (False, exc.value.reason)
    assert not load_catalogue()[model].eligible


def test_synthetic_rows_are_labelled_as_such() -> None:
    for model in ("Example phone without GP-SE (synthetic)",
                  "Example phone without NFC Type B reader mode (synthetic)"):
        assert "Synthetic example" in load_catalogue()[model].note


def test_unknown_models_and_other_iphones() -> None:
    ok, reason = eligibility("Pixel 9", app_version=60)
    assert not ok and "not in the device catalogue" in reason and "Pixel 7" in reason
    ok, reason = eligibility("iPhone 16 Pro", app_version=60)  # any iPhone: section 12
    assert not ok and "Apple Wallet" in reason
    # names match ignoring case and repeated blanks
    assert eligibility("pixel  7 PRO", app_version=60) == (True, "eligible")


@pytest.mark.parametrize(
    ("os_version", "ok"),
    [
        ("12", False),
        ("12.1.0", False),
        ("13", True),  # MODEL minimum: Android 13
        ("13.0", True),
        ("14", True),
        ("9", False),  # numerically older, although "9" > "13" as text
        ("100", True),
        (None, True),  # not known: not checked (module docstring)
    ],
)
def test_pixel_4a_5g_needs_the_os_update(os_version: str | None, ok: bool) -> None:
    got, reason = eligibility("Pixel 4a (5G)", os_version=os_version, app_version=54)
    assert got is ok
    if not ok:
        assert reason == (
            f"Pixel 4a (5G) needs Android 13 or later (it has {os_version}); update the OS first")
    assert "OS update" in load_catalogue()["Pixel 4a (5G)"].note


@pytest.mark.parametrize(("app_version", "ok"), [(0, False), (53, False), (54, True), (55, True)])
def test_mynaportal_app_54_or_later(app_version: int, ok: bool) -> None:
    got, reason = eligibility("Pixel 7", os_version="13", app_version=app_version)
    assert got is ok
    if not ok:
        assert "version 54 or later" in reason and f"version {app_version} " in reason


def test_bad_versions_are_typed_errors() -> None:
    with pytest.raises(DeviceError, match="not a version number"):
        check_eligible("Pixel 4a (5G)", os_version="thirteen", app_version=54)
    assert eligibility("Pixel 4a (5G)", os_version="13 beta", app_version=54)[0] is False
    with pytest.raises(DeviceError, match="whole number"):
        check_eligible("Pixel 7", app_version="54")  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="whole number"):
        check_eligible("Pixel 7", app_version=True)


def test_biometric_sensors() -> None:
    catalogue = load_catalogue()
    assert catalogue["Xperia 1 IV"].biometrics == ("fingerprint",)
    assert catalogue["Pixel 7"].biometrics == ("fingerprint", "face")
    assert not catalogue["Example phone without NFC Type B reader mode (synthetic)"].has_biometrics


# --- the file ------------------------------------------------------------------------------

def test_the_csv_is_shipped_package_data() -> None:
    shipped = resources.files("workbench") / "data" / "devices.csv"
    text = shipped.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert load_catalogue(Path(str(shipped))) == load_catalogue()
    assert set(LAUNCH_MODELS + LATER_MODELS) <= set(load_catalogue())


def test_the_catalogue_is_frozen_and_a_fresh_dict_each_time() -> None:
    catalogue = load_catalogue()
    catalogue.clear()
    assert "Pixel 7" in load_catalogue()
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_catalogue()["Pixel 7"].gp_se = False  # type: ignore[misc]


def test_catalogue_frame_for_notebooks() -> None:
    frame = catalogue_frame()
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(load_catalogue())
    row = frame.set_index("model").loc["Pixel 4a (5G)"]
    assert row["min_os_version"] == "13" and row["biometrics"] == "fingerprint"


HEADER = ",".join(COLUMNS)
GOOD = "Pixel 7,Google,Android,true,true,fingerprint+face,,54,true,a note,smartphone-service.md 3"

MALFORMED = [
    ("bad boolean", GOOD.replace("true,true", "yes,true"), "gp_se must be true or false"),
    ("unknown os", GOOD.replace("Android", "Symbian"), "os must be Android or iOS"),
    ("bad sensor", GOOD.replace("fingerprint+face", "retina"), "biometrics"),
    ("bad min OS", GOOD.replace(",,54", ",13a,54"), "min_os_version"),
    ("bad app version", GOOD.replace(",54,", ",v54,"), "min_app_version"),
    ("missing field", GOOD.rsplit(",", 1)[0], "needs 11 fields"),
    ("extra field", GOOD + ",extra", "needs 11 fields"),
    ("no source", GOOD.rsplit(",", 1)[0] + ",", "source is empty"),
    ("eligible without GP-SE", GOOD.replace("true,true", "false,true"), "eligible is true"),
]


@pytest.mark.parametrize(("what", "row", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_row_is_refused_naming_it(tmp_path: Path, what: str, row: str,
                                              words: str) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(f"{HEADER}\n{GOOD.replace('Pixel 7', 'Pixel 8')}\n{row}\n", encoding="utf-8")
    with pytest.raises(DeviceCatalogueError) as exc:
        load_catalogue(path=path)
    message = str(exc.value)
    assert "\n" not in message
    assert f"{path} line 3 (Pixel 7)" in message  # names the file, the line and the model
    assert words in message


def test_a_well_formed_file_loads_and_duplicates_or_bad_headers_do_not(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n", encoding="utf-8")
    assert list(load_catalogue(path=path)) == ["Pixel 7"]
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD.replace('Pixel 7', 'PIXEL 7')}\n", encoding="utf-8")
    with pytest.raises(DeviceCatalogueError, match="line 3 .* listed twice"):
        load_catalogue(path=path)
    path.write_text(f"{HEADER.replace('gp_se', 'se')}\n{GOOD}\n", encoding="utf-8")
    with pytest.raises(DeviceCatalogueError, match="header must be"):
        load_catalogue(path=path)
    with pytest.raises(DeviceCatalogueError, match="missing.csv"):
        load_catalogue(path=tmp_path / "missing.csv")


def test_a_custom_catalogue_drives_the_check(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n", encoding="utf-8")
    catalogue = load_catalogue(path=path)
    assert eligibility("Pixel 7", app_version=54, catalogue=catalogue) == (True, "eligible")
    assert eligibility("AQUOS R7", app_version=54, catalogue=catalogue)[0] is False
