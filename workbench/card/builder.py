"""Issuing a virtual card: the file system of each application, filled for a synthetic holder.

Layouts: jpki-card.md 3.1 (JPKI AP), 3.2 (token info), 3.3 (text AP), 3.4 (surface AP),
3.5 (共通AP, 住基AP), 3.6 (MF GET DATA), 8 (the Android token's differences).
"""

from __future__ import annotations

import hashlib
import os
import random
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from workbench import tlv
from workbench.card import constants as c
from workbench.card.atr import resolve_atr
from workbench.card.images import pattern_png, synthetic_photo
from workbench.card.model import Application, BinaryEF, KeyRef, Node, PinRef, RecordEF
from workbench.card.pin import (
    AUTH_PIN,
    SIGN_PASSWORD,
    TEXT_PIN,
    PinPolicy,
    blocked_policy,
    collation_policy,
    pin_digest,
)
from workbench.card.virtual_card import VirtualCard, holder_to_json
from workbench.errors import WorkbenchError
from workbench.pki import Authority, Holder, derive_seed, generate_rsa_key, synthetic_holder
from workbench.pki.clock import jst_date

PROFILES = ("icc", "gpse")
DEFAULT_AUTH_PIN = "1234"
DEFAULT_SIGN_PASSWORD = "ABC123"
#: MODEL (jpki-card.md 3.4): retry limit of 照合番号A/B and the birth-date key is not public.
DEFAULT_COLLATION_TRIES = 10
#: The certificate EFs of the JPKI AP, by the names the client and CLI use.
JPKI_CERT_EFS = {
    "sign": c.EF_SIGN_CERT,
    "sign_ca": c.EF_SIGN_CA_CERT,
    "auth": c.EF_AUTH_CERT,
    "auth_ca": c.EF_AUTH_CA_CERT,
}
JUKI_PIN = PinPolicy("juki", "住基 PIN (住民基本台帳用暗証番号)", 4, 4, TEXT_PIN.charset, 3)
COMMON_PIN = PinPolicy("common", "共通AP PIN (個人番号カード用暗証番号)", 4, 4, TEXT_PIN.charset, 3)
_SIGN_MIN_AGE = 15  # holders under 15 get no signing certificate (jpki-card.md 3.1, EF 0008)


def _pad(data: bytes, capacity: str | int) -> bytes:
    """EF capacity (jpki-card.md 4.1 MODEL): ``"round256"`` (next multiple of 256, FF filler),
    ``"exact"`` (no filler) or a fixed byte count."""
    if capacity == "exact":
        return data
    size = -(-len(data) // 256) * 256 if capacity == "round256" else int(capacity)
    if size < len(data):
        raise WorkbenchError(f"EF capacity {size} is smaller than its content ({len(data)} bytes)")
    return data + b"\xff" * (size - len(data))


def token_info(label: str, serial: str) -> bytes:
    """EF 0006: CK_TOKEN_INFO with 4-byte big-endian CK_ULONGs, 160 bytes (jpki-card.md 3.2).
    MODEL: unknown fields carry the sample values of the spec and zeros."""

    def text(value: str, n: int) -> bytes:
        return value.encode("ascii")[:n].ljust(n, b" ")

    def ulong(v: int) -> bytes:
        return v.to_bytes(4, "big")

    out = (
        text(label, 32)
        + text("JPKI-WORKBENCH SIMULATED", 32)
        + text("E16R01NJ", 16)
        + text(serial, 16)
        + ulong(0x0000040D)
        + ulong(0) * 4
        + ulong(16)
        + ulong(6)
        + ulong(0) * 4
        + b"03"
        + b"01"
        + b"\x00" * 16
    )
    assert len(out) == 160
    return out


def _rsa_public_tlv(key: rsa.RSAPublicKey, tag: int | None = None) -> bytes:
    """Public key as ``90`` exponent + ``91`` modulus (jpki-card.md 3.3 EF 0004/0006)."""
    nums = key.public_numbers()
    body = tlv.encode(0x90, nums.e.to_bytes(3, "big")) + tlv.encode(
        0x91, nums.n.to_bytes((key.key_size + 7) // 8, "big")
    )
    return body if tag is None else tlv.encode(tag, body)


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def cv_certificate(issuer_key: rsa.RSAPrivateKey, issuer_id: bytes, subject_id: bytes, subject: rsa.RSAPublicKey) -> bytes:
    """Card-verifiable certificate ``7F 21`` {``5F 4E`` body, ``5F 37`` signature}
    (jpki-card.md 3.3 EF 0004). MODEL: the signature is sha256WithRSA (PKCS#1 v1.5) over the
    DER of the ``5F 4E`` object."""
    body = tlv.encode(0x5F4E, issuer_id + subject_id + _rsa_public_tlv(subject))
    return tlv.encode(0x7F21, body + tlv.encode(0x5F37, _sign(issuer_key, body)))


def _offset_table_object(tag: int, table_tag: int, items: list[tuple[int, bytes]]) -> bytes:
    """A constructed object whose first child is a table of 2-byte offsets, measured from the
    start of the EF, of the children that follow (text AP 0002, surface AP 0002)."""
    children = [tlv.encode(t, v) for t, v in items]
    table_tlv_len = len(tlv.encode(table_tag, b"\x00" * (2 * len(children))))
    inner_len = table_tlv_len + sum(map(len, children))
    pos = len(tlv.encode_tag(tag)) + len(tlv.encode_length(inner_len)) + table_tlv_len
    offsets = b""
    for child in children:
        offsets += pos.to_bytes(2, "big")
        pos += len(child)
    return tlv.encode(tag, tlv.encode(table_tag, offsets) + b"".join(children))


def _sex_code(holder: Holder) -> bytes:
    return holder.sex.text_ap_code().encode("ascii")


def _text_ap(holder: Holder, keys: dict[str, rsa.RSAPrivateKey], authority: Authority,
             digests: dict[str, bytes], tries: int, capacity: str | int) -> Application:
    """券面事項入力補助AP (jpki-card.md 3.3)."""
    number_ef = b"\xff\x10\x0c" + holder.individual_number.encode("ascii") + b"\xff\xff"
    basic = _offset_table_object(
        0xFF20,
        0xDF21,
        [
            (0xDF22, holder.name.encode("utf-8")),
            (0xDF23, holder.address.encode("utf-8")),
            (0xDF24, holder.birth_date.strftime("%Y%m%d").encode("ascii")),
            (0xDF25, _sex_code(holder)),
        ],
    )
    first_value = tlv.decode_one(basic)[0].children
    basic_value = b"".join(t.encode() for t in first_value[1:])  # from DF22 to the end of DF25
    issuer_id, issuer_key = authority.cv_issuer("text")
    root_id, root_key = authority.cv_issuer("root")
    hashes_part = tlv.encode(0xDF31, hashlib.sha256(number_ef).digest()) + tlv.encode(
        0xDF32, hashlib.sha256(basic_value).digest()
    )
    integrity = tlv.encode(0xFF30, hashes_part + tlv.encode(0xDF33, _sign(issuer_key, hashes_part)))
    card_key = keys["text"]
    key_id = hashlib.sha256(card_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()[:16]
    ap_info = tlv.encode(
        0xFF40,
        tlv.encode(0xDF41, bytes.fromhex("01030E01"))
        + tlv.encode(0xDF42, key_id)
        + tlv.encode(0xDF43, key_id * 2 + b"\xff" * 96),
    )
    session_pub = _rsa_public_tlv(card_key.public_key(), 0xA1)
    signed_pub_body = _rsa_public_tlv(card_key.public_key(), 0xDF51)
    signed_pub = tlv.encode(0xFF50, signed_pub_body + tlv.encode(0xDF52, _sign(issuer_key, signed_pub_body)))
    any_cred = (c.PIN_TEXT, c.PIN_TEXT_NUMBER_A, c.PIN_TEXT_NUMBER_B)
    nodes: dict[int, Node] = {
        c.EF_TEXT_MY_NUMBER: BinaryEF(number_ef, (c.PIN_TEXT, c.PIN_TEXT_NUMBER_A), "個人番号"),
        c.EF_TEXT_BASIC_FOUR: BinaryEF(_pad(basic, capacity), (c.PIN_TEXT, c.PIN_TEXT_NUMBER_B), "基本4情報"),
        c.EF_TEXT_SIGNATURE: BinaryEF(integrity, any_cred, "integrity record"),
        c.EF_TEXT_CV_CERT: BinaryEF(cv_certificate(root_key, root_id, issuer_id, issuer_key.public_key()), None, "CV certificate"),
        c.EF_TEXT_AP_INFO: BinaryEF(ap_info, None, "AP basic info"),
        c.EF_TEXT_SESSION_KEY: BinaryEF(session_pub, any_cred, "session-key public key"),
        c.EF_TEXT_SIGNED_KEY: BinaryEF(signed_pub, any_cred, "signed public key"),
        c.EF_TEXT_0008: BinaryEF(b"\xff" * 16, any_cred, "unknown (16 x FF)"),
        c.PIN_TEXT: PinRef(TEXT_PIN, digests["text"], TEXT_PIN.max_tries, "券面事項入力補助用暗証番号"),
        c.PIN_TEXT_BLOCKED: PinRef(blocked_policy("text-0012", "text AP key 0012"), b"", 0, "blocked key 0012"),
        c.PIN_TEXT_NUMBER_A: _collation("text-number-a", "照合番号A (text AP)", digests["number_a"], 12, 12, tries),
        c.PIN_TEXT_NUMBER_B: _collation("text-number-b", "照合番号B (text AP)", digests["number_b"], 14, 14, tries),
    }
    return Application(c.TEXT_AP_AID, c.AP_NAMES[c.TEXT_AP_AID], nodes, card_key, 0x6985)


def _collation(name: str, label: str, digest: bytes, lo: int, hi: int, tries: int) -> PinRef:
    return PinRef(collation_policy(name, label, lo, hi, tries), digest, tries, label)


def _surface_ap(holder: Holder, keys: dict[str, rsa.RSAPrivateKey], authority: Authority,
                digests: dict[str, bytes], tries: int, expiry: date) -> Application:
    """券面AP (jpki-card.md 3.4) with synthetic images."""
    card_key = keys["surface"]
    pub = _rsa_public_tlv(card_key.public_key())
    issuer_id, issuer_key = authority.cv_issuer("surface")
    root_id, root_key = authority.cv_issuer("root")
    dob = holder.birth_date.strftime("%Y%m%d").encode("ascii")
    age_body = tlv.encode(0xDF11, dob) + tlv.encode(0xDF12, pub)
    age = tlv.encode(0xFF10, age_body + tlv.encode(0xDF13, _sign(card_key, age_body)))
    face_items = [
        (0xDF22, dob),
        (0xDF23, _sex_code(holder)),
        (0xDF24, pub),
        (0xDF25, pattern_png(holder.name, 256, 32)),
        (0xDF26, pattern_png(holder.address, 512, 32)),
        (0xDF27, synthetic_photo(holder.individual_number)),
    ]
    signed = b"".join(tlv.encode(t, v) for t, v in face_items)
    face_items += [
        (0xDF28, _sign(card_key, signed)),
        (0xDF29, expiry.strftime("%Y%m%d").encode("ascii")),
        (0xDF2A, pattern_png(holder.security_code, 64, 16)),
    ]
    face = _offset_table_object(0xFF20, 0xDF21, face_items)
    key_id = issuer_id
    info = tlv.encode(
        0xFF30,
        tlv.encode(0xDF31, bytes.fromhex("06030E01"))
        + tlv.encode(0xDF32, key_id)
        + tlv.encode(0xDF33, b"\x01")
        + tlv.encode(0xDF34, holder.municipality_code.encode("ascii"))
        + tlv.encode(0xDF35, hashlib.shake_256(key_id).digest(16 + 256)),
    )
    number_body = tlv.encode(0xDF41, pattern_png(holder.individual_number, 72, 12)) + tlv.encode(0xDF42, pub)
    number = tlv.encode(0xFF40, number_body + tlv.encode(0xDF43, _sign(card_key, number_body)))
    nodes: dict[int, Node] = {
        c.EF_SURFACE_AGE: BinaryEF(age, (c.PIN_SURFACE_BIRTH,), "age record"),
        c.EF_SURFACE_FACE: BinaryEF(face, (c.PIN_SURFACE_NUMBER_A, c.PIN_SURFACE_NUMBER_B), "card face"),
        c.EF_SURFACE_AP_INFO: BinaryEF(info, None, "AP basic info"),
        c.EF_SURFACE_CV_CERT: BinaryEF(cv_certificate(root_key, root_id, issuer_id, issuer_key.public_key()), None, "CV certificate"),
        c.EF_SURFACE_NUMBER_IMAGE: BinaryEF(number, (c.PIN_SURFACE_NUMBER_A,), "rendered 個人番号"),
        c.EF_SURFACE_0006: BinaryEF(b"\xff" * 16, (), "unknown"),
        c.PIN_SURFACE_BIRTH: _collation("surface-birth", "生年月日 key (surface AP)", digests["birth"], 6, 6, tries),
        c.PIN_SURFACE_NUMBER_B: _collation("surface-number-b", "照合番号B (surface AP)", digests["number_b"], 14, 14, tries),
        c.PIN_SURFACE_NUMBER_A: _collation("surface-number-a", "照合番号A (surface AP)", digests["number_a"], 12, 12, tries),
    }
    return Application(c.SURFACE_AP_AID, c.AP_NAMES[c.SURFACE_AP_AID], nodes, card_key, 0x66F1)


def _common_aps(holder: Holder, keys: dict[str, rsa.RSAPrivateKey], serial: str, expiry: date,
                digests: dict[str, bytes]) -> list[Application]:
    """共通AP and 住基AP (jpki-card.md 3.5, all [U]): kept selectable with their objects."""
    digits = (serial[:15] + holder.municipality_code + expiry.strftime("%Y%m%d")).encode("ascii")
    record = b"\x01" + bytes([len(digits)]) + digits
    key_ref = hashlib.sha256(b"key-ref" + serial.encode()).digest()[:16]
    common = Application(
        c.COMMON_AP_AID,
        c.AP_NAMES[c.COMMON_AP_AID],
        {
            c.EF_COMMON_RECORD: RecordEF([record], None, "serial, municipality, expiry"),
            c.EF_COMMON_KEY_ID: BinaryEF(key_ref, None, "key reference"),
            c.KEY_COMMON_INTERNAL_AUTH: KeyRef(keys["common"], None, "internal-auth", "INTERNAL AUTHENTICATE key"),
            c.PIN_JUKI: PinRef(COMMON_PIN, digests["text"], COMMON_PIN.max_tries, "共通AP PIN"),
        },
        None,
        0x66F1,
    )
    juki = Application(
        c.JUKI_AP_AID,
        c.AP_NAMES[c.JUKI_AP_AID],
        {
            c.EF_JUKI_KEY_ID: BinaryEF(key_ref, None, "key reference"),
            c.PIN_JUKI: PinRef(JUKI_PIN, digests["text"], JUKI_PIN.max_tries, "住基 PIN"),
        },
        None,
        0x6982,
    )
    return [common, juki]


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _era_number_b(holder: Holder, expiry: date) -> str:
    """照合番号B, MCARD 14-digit form: era YYMMDD + card expiry year + security code (3.4)."""
    return holder.era_yymmdd() + f"{expiry.year:04d}" + holder.security_code


def create_card(
    profile: str = "icc",
    holder: Holder | None = None,
    *,
    authority: Authority | None = None,
    seed: int | None = None,
    auth_pin: str = DEFAULT_AUTH_PIN,
    sign_password: str = DEFAULT_SIGN_PASSWORD,
    text_pin: str | None = None,
    issued_at: datetime | None = None,
    atr: str | bytes | None = None,
    collation_tries: int = DEFAULT_COLLATION_TRIES,
    cert_capacity: str | int = "round256",
    card_expiry: date | None = None,
    serial: str | None = None,
) -> VirtualCard:
    """Issue a virtual card (``"icc"``) or Android phone token (``"gpse"``).

    ``seed`` makes the holder, every key and every certificate serial reproducible (seeded keys
    are for demos and tests only). PINs are format-checked here (jpki-card.md 6) and stored
    only as salted digests. ``text_pin`` defaults to ``auth_pin`` (many holders set the 4-digit
    PINs alike at issuance). The phone token (jpki-card.md 8) has the JPKI AP only, label
    ``JPKIAPGPSETOKEN``, and its auth certificate needs the auth PIN.
    """
    if profile not in PROFILES:
        raise WorkbenchError(f"unknown profile {profile!r}; choose 'icc' (plastic card) or 'gpse' (Android token)")
    if not 1 <= collation_tries <= 15:
        raise WorkbenchError("collation_tries must be between 1 and 15 (63Cx carries 4 bits)")
    auth_value = auth_pin.encode("ascii", "replace")
    sign_value = sign_password.upper().encode("ascii", "replace")
    text_value = (text_pin if text_pin is not None else auth_pin).encode("ascii", "replace")
    AUTH_PIN.check(auth_value)
    SIGN_PASSWORD.check(sign_value)
    TEXT_PIN.check(text_value)
    atr_bytes = resolve_atr(profile, atr)

    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    holder = holder or synthetic_holder(seed)
    authority = authority or Authority()
    at = issued_at or authority.clock.now()
    expiry = card_expiry or authority.card_expiry(holder, at)

    def key(label: str) -> rsa.RSAPrivateKey:
        return generate_rsa_key(derive_seed(seed, "card", profile, label) if seed is not None else None)

    def new_serial() -> int:
        return rng.getrandbits(63) | (1 << 56)

    has_sign = _age_on(holder.birth_date, jst_date(at)) >= _SIGN_MIN_AGE
    salt = os.urandom(16) if seed is None else derive_seed(seed, "card", profile, "salt")[:16]
    digests = {
        "auth": pin_digest(salt, auth_value),
        "sign": pin_digest(salt, sign_value),
        "text": pin_digest(salt, text_value),
        "number_a": pin_digest(salt, holder.individual_number.encode("ascii")),
        "number_b": pin_digest(salt, _era_number_b(holder, expiry).encode("ascii")),
        "birth": pin_digest(salt, holder.era_yymmdd().encode("ascii")),
    }
    card_serial = serial or "".join(str(rng.randrange(10)) for _ in range(16))
    label = c.LABEL_ICC if profile == "icc" else c.LABEL_GPSE

    keys = {"auth": key("auth")}
    auth_cert = authority.issue_auth_certificate(
        holder, keys["auth"].public_key(), at=at, card_expiry=expiry, token=profile, serial=new_serial(),
        rng=rng if seed is not None else None,
    )
    from workbench.pki import Hierarchy

    auth_ca = authority.current_ca(Hierarchy.AUTH, at).certificate
    sign_ca = authority.current_ca(Hierarchy.SIGN, at).certificate
    der = Encoding.DER
    jpki: dict[int, Node] = {
        c.EF_SIGN_CA_CERT: BinaryEF(_pad(sign_ca.public_bytes(der), cert_capacity), None, "署名用CA証明書"),
        c.EF_TOKEN_INFO: BinaryEF(token_info(label, card_serial), None, "token information"),
        c.EF_CERT_PRESENCE: BinaryEF(bytes([0x8F if has_sign else 0x00, 0x8F, 0x00]), None, "certificate presence"),
        c.EF_JPKI_0009: BinaryEF(b"\x00" * 16, (), "protected (purpose unknown)"),
        c.EF_AUTH_CERT: BinaryEF(
            _pad(auth_cert.public_bytes(der), cert_capacity),
            None if profile == "icc" else (c.PIN_AUTH,),
            "利用者証明用電子証明書",
        ),
        c.EF_AUTH_CA_CERT: BinaryEF(_pad(auth_ca.public_bytes(der), cert_capacity), None, "利用者証明用CA証明書"),
        c.KEY_IC_PUBLIC: KeyRef(None, None, "none", "SET PUBLIC IC KEY reference"),
        c.KEY_AUTH: KeyRef(keys["auth"], (c.PIN_AUTH,), "sign", "利用者証明用秘密鍵"),
        c.PIN_AUTH: PinRef(AUTH_PIN, digests["auth"], AUTH_PIN.max_tries, "利用者証明用暗証番号"),
    }
    cert_serials = {"auth": auth_cert.serial_number}
    if has_sign:
        keys["sign"] = key("sign")
        sign_cert = authority.issue_signing_certificate(
            holder, keys["sign"].public_key(), at=at, card_expiry=expiry, token=profile, serial=new_serial(),
            rng=rng if seed is not None else None,
        )
        cert_serials["sign"] = sign_cert.serial_number
        jpki[c.EF_SIGN_CERT] = BinaryEF(_pad(sign_cert.public_bytes(der), cert_capacity), (c.PIN_SIGN,), "署名用電子証明書")
        jpki[c.KEY_SIGN] = KeyRef(keys["sign"], (c.PIN_SIGN,), "sign", "署名用秘密鍵")
        jpki[c.PIN_SIGN] = PinRef(SIGN_PASSWORD, digests["sign"], SIGN_PASSWORD.max_tries, "署名用パスワード")
    apps = [Application(c.JPKI_AP_AID, c.AP_NAMES[c.JPKI_AP_AID], dict(sorted(jpki.items())), None, 0x6982)]

    get_data: dict[str, str] = {}
    if profile == "icc":
        for name in ("text", "surface", "common"):
            keys[name] = key(name)
        apps.append(_text_ap(holder, keys, authority, digests, collation_tries, cert_capacity))
        apps.append(_surface_ap(holder, keys, authority, digests, collation_tries, expiry))
        apps.extend(_common_aps(holder, keys, card_serial, expiry, digests))
        get_data = {
            "0045": card_serial.encode().hex(),
            "00F0": holder.municipality_code.encode().hex(),
            "00F2": expiry.strftime("%Y%m%d").encode().hex(),
            "5F51": c.ATR_CONTACT[1:].hex(),
        }
    meta: dict[str, Any] = {
        "profile": profile,
        "label": label,
        "atr": atr_bytes.hex().upper(),
        "salt": salt.hex(),
        "holder": holder_to_json(holder),
        "issued_at": at.isoformat(),
        "card_expiry": expiry.isoformat(),
        "serial_number": card_serial,
        "seed": seed,
        "certificate_serials": {k: f"0x{v:X}" for k, v in cert_serials.items()},
        "get_data": get_data,
        "isd_selectable": profile == "icc",
    }
    return VirtualCard._from_meta(meta, apps, None)


