"""How the card's EFs are encoded: token information, TLV layouts, card-verifiable certificates.

Pure encoders with no notion of an authority: they take the holder's facts, keys and the
issuer keys they are given and return the bytes of each EF, keyed by the content names the
file tables use (:mod:`workbench.card.files`). Whoever personalises a card or a phone applet
(:mod:`workbench.lifecycle.issuance`) calls them with the authority's keys.

Layouts: jpki-card.md 3.2 (token info), 3.3 (text AP), 3.4 (surface AP), 3.5 (共通AP).
"""

from __future__ import annotations

import hashlib
from datetime import date

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from workbench import tlv
from workbench.card.surface_images import pattern_png, synthetic_photo
from workbench.errors import WorkbenchError
from workbench.holder import Holder

__all__ = [
    "CvIssuer",
    "certificate_presence",
    "common_ap_items",
    "cv_certificate",
    "number_b",
    "pad_ef",
    "rsa_public_tlv",
    "surface_ap_items",
    "text_ap_items",
    "token_info",
]

#: A card-verifiable certificate issuer: 16-byte key id and its private key (jpki-card.md 3.3
#: EF 0004).
CvIssuer = tuple[bytes, rsa.RSAPrivateKey]

_PRESENT = 0x8F  # EF 0008: the certificate exists (jpki-card.md 3.1)


def pad_ef(data: bytes, capacity: str | int) -> bytes:
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


def certificate_presence(has_sign: bool) -> bytes:
    """EF 0008: ``8F 8F 00``, first byte ``00`` without a signing certificate (3.1)."""
    return bytes([_PRESENT if has_sign else 0x00, _PRESENT, 0x00])


def rsa_public_tlv(key: rsa.RSAPublicKey, tag: int | None = None) -> bytes:
    """Public key as ``90`` exponent + ``91`` modulus (jpki-card.md 3.3 EF 0004/0006)."""
    nums = key.public_numbers()
    body = tlv.encode(0x90, nums.e.to_bytes(3, "big")) + tlv.encode(
        0x91, nums.n.to_bytes((key.key_size + 7) // 8, "big")
    )
    return body if tag is None else tlv.encode(tag, body)


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def cv_certificate(issuer_key: rsa.RSAPrivateKey, issuer_id: bytes, subject_id: bytes,
                   subject: rsa.RSAPublicKey) -> bytes:
    """Card-verifiable certificate ``7F 21`` {``5F 4E`` body, ``5F 37`` signature}
    (jpki-card.md 3.3 EF 0004). MODEL: the signature is sha256WithRSA (PKCS#1 v1.5) over the
    DER of the ``5F 4E`` object."""
    body = tlv.encode(0x5F4E, issuer_id + subject_id + rsa_public_tlv(subject))
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


def number_b(holder: Holder, expiry: date) -> str:
    """照合番号B, MCARD 14-digit form: era YYMMDD + card expiry year + security code (3.4)."""
    return holder.era_yymmdd() + f"{expiry.year:04d}" + holder.security_code


def text_ap_items(holder: Holder, card_key: rsa.RSAPrivateKey, issuer: CvIssuer,
                  root: CvIssuer) -> dict[str, bytes]:
    """The EFs of the 券面事項入力補助AP (jpki-card.md 3.3), by content name.

    ``issuer`` signs the integrity record (EF 0003) and is certified by ``root`` in the
    card-verifiable certificate (EF 0004).
    """
    issuer_id, issuer_key = issuer
    root_id, root_key = root
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
    hashes_part = tlv.encode(0xDF31, hashlib.sha256(number_ef).digest()) + tlv.encode(
        0xDF32, hashlib.sha256(basic_value).digest()
    )
    integrity = tlv.encode(0xFF30, hashes_part + tlv.encode(0xDF33, _sign(issuer_key, hashes_part)))
    spki = card_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key_id = hashlib.sha256(spki).digest()[:16]
    ap_info = tlv.encode(
        0xFF40,
        tlv.encode(0xDF41, bytes.fromhex("01030E01"))
        + tlv.encode(0xDF42, key_id)
        + tlv.encode(0xDF43, key_id * 2 + b"\xff" * 96),
    )
    signed_pub_body = rsa_public_tlv(card_key.public_key(), 0xDF51)
    return {
        "text:my_number": number_ef,
        "text:basic_four": basic,
        "text:integrity": integrity,
        "text:cv_certificate": cv_certificate(root_key, root_id, issuer_id,
                                              issuer_key.public_key()),
        "text:ap_info": ap_info,
        "text:session_key": rsa_public_tlv(card_key.public_key(), 0xA1),
        "text:signed_key": tlv.encode(
            0xFF50, signed_pub_body + tlv.encode(0xDF52, _sign(issuer_key, signed_pub_body))),
    }


def surface_ap_items(holder: Holder, card_key: rsa.RSAPrivateKey, issuer: CvIssuer,
                     root: CvIssuer, expiry: date) -> dict[str, bytes]:
    """The EFs of the 券面AP (jpki-card.md 3.4), with synthetic images, by content name."""
    issuer_id, issuer_key = issuer
    root_id, root_key = root
    pub = rsa_public_tlv(card_key.public_key())
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
    info = tlv.encode(
        0xFF30,
        tlv.encode(0xDF31, bytes.fromhex("06030E01"))
        + tlv.encode(0xDF32, issuer_id)
        + tlv.encode(0xDF33, b"\x01")
        + tlv.encode(0xDF34, holder.municipality_code.encode("ascii"))
        + tlv.encode(0xDF35, hashlib.shake_256(issuer_id).digest(16 + 256)),
    )
    number_body = (tlv.encode(0xDF41, pattern_png(holder.individual_number, 72, 12))
                   + tlv.encode(0xDF42, pub))
    return {
        "surface:age": age,
        "surface:face": _offset_table_object(0xFF20, 0xDF21, face_items),
        "surface:ap_info": info,
        "surface:cv_certificate": cv_certificate(root_key, root_id, issuer_id,
                                                 issuer_key.public_key()),
        "surface:number_image": tlv.encode(
            0xFF40, number_body + tlv.encode(0xDF43, _sign(card_key, number_body))),
    }


def common_ap_items(holder: Holder, serial: str, expiry: date) -> dict[str, bytes | list[bytes]]:
    """共通AP record and the key reference shared with the 住基AP (jpki-card.md 3.5, all [U])."""
    digits = (serial[:15] + holder.municipality_code + expiry.strftime("%Y%m%d")).encode("ascii")
    return {
        "common:record": [b"\x01" + bytes([len(digits)]) + digits],
        "common:key_reference": hashlib.sha256(b"key-ref" + serial.encode()).digest()[:16],
    }
