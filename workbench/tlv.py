"""BER-TLV (ISO/IEC 7816-4 section 5.2, X.690 8.1) for the My Number card's EFs, with no I/O.

The text AP and the surface AP store their data as BER-TLV objects with multi-byte tags
(``FF 10``, ``FF 20``, ``DF 21``, ``7F 21``, ``5F 4E``, ``5F 37``) and long-form lengths
(``81 xx``, ``82 xx xx``), and their EFs are larger than the object they hold, so filler
(``FF``, sometimes ``00``) follows it (jpki-card.md 3.3, 3.4, 4.1). Readers on the host and the
card image builder both need exactly the same codec, which lives here.

Tags are ints whose big-endian bytes are the encoded tag (``0xDF21`` is ``DF 21``), which is how
ISO 7816-4 tables and the spec write them. Tag rules (X.690 8.1.2, ISO 7816-4 5.2.2.1): when the
low five bits of the first byte are all 1 the tag continues; each subsequent byte has bit 8 set
except the last; the first subsequent byte is not ``80``. The card uses ``FF 10`` (tag number 16
in the high-tag form, which strict DER would forbid), so the number is not required to be >= 31.
Tags are limited to 4 bytes, lengths to the definite form with at most 4 length bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.errors import TLVError

__all__ = [
    "DEFAULT_FILLER",
    "TLV",
    "decode",
    "decode_one",
    "der",
    "encode",
    "encode_length",
    "encode_tag",
    "object_length",
    "strip_filler",
]

DEFAULT_FILLER = b"\xff\x00"  # ISO 7816-4 5.2: 00 and FF may pad around BER-TLV objects

_MORE_TAG_BYTES = 0x1F  # low five bits of the first tag byte: the tag number continues
_CONTINUATION = 0x80  # bit 8 of a subsequent tag byte: another byte follows
_CONSTRUCTED = 0x20  # bit 6 of the first tag byte
_MAX_TAG_BYTES = 4
_LONG_LENGTH = 0x80  # bit 8 of the first length byte: long form (X.690 8.1.3.5)
_INDEFINITE = 0x80  # X.690 8.1.3.6, not allowed in ISO 7816-4 data objects
_MAX_LENGTH_BYTES = 4


def _tag_to_bytes(tag: int) -> bytes:
    """Check a tag int against the BER rules above and return its encoding."""
    if type(tag) is not int and (not isinstance(tag, int) or isinstance(tag, bool)):
        raise TLVError(f"a tag must be an int such as 0xDF21, got {tag!r}")
    if tag <= 0:
        raise TLVError(f"tag {tag:#x} is invalid: 00 is padding (ISO 7816-4 5.2), not a tag")
    size = (tag.bit_length() + 7) // 8
    if size > _MAX_TAG_BYTES:
        raise TLVError(f"tag {tag:#x} is longer than {_MAX_TAG_BYTES} bytes")
    raw = tag.to_bytes(size, "big")
    first = raw[0]
    if size == 1:
        if first & _MORE_TAG_BYTES == _MORE_TAG_BYTES:
            raise TLVError(f"tag {tag:02X}: low five bits 11111 announce more tag bytes")
        return raw
    if first & _MORE_TAG_BYTES != _MORE_TAG_BYTES:
        raise TLVError(
            f"tag {raw.hex().upper()}: a multi-byte tag needs low five bits 11111 in byte 1"
        )
    if raw[1] == _CONTINUATION:
        raise TLVError(f"tag {raw.hex().upper()}: the first subsequent byte must not be 80")
    for b in raw[1:-1]:
        if not b & _CONTINUATION:
            raise TLVError(f"tag {raw.hex().upper()}: a middle tag byte lacks the bit-8 flag")
    if raw[-1] & _CONTINUATION:
        raise TLVError(f"tag {raw.hex().upper()}: the last tag byte has the bit-8 flag set")
    return raw


def encode_tag(tag: int) -> bytes:
    """Encode a tag int (``0x5F4E`` -> ``5F 4E``), rejecting tags that break the BER rules."""
    return _tag_to_bytes(tag)


def encode_length(n: int) -> bytes:
    """Definite-form length (X.690 8.1.3): one byte below 0x80, else ``81``..``84`` + n."""
    if n < 0:
        raise TLVError(f"a length cannot be negative, got {n}")
    if n < _LONG_LENGTH:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    if size > _MAX_LENGTH_BYTES:
        raise TLVError(f"length {n} needs more than {_MAX_LENGTH_BYTES} length bytes")
    return bytes((_LONG_LENGTH | size,)) + n.to_bytes(size, "big")


def der(tag: int, body: bytes | bytearray) -> bytes:
    """A one-byte tag, the minimal definite length and ``body``, without checks.

    The building block of the hand-written DER of CRLs and OCSP responses (X.690 8.1), where
    the tags are the universal and context ones of RFC 5280 / 6960 and speed matters (a CRL
    of a million entries).
    """
    n = len(body)
    if n < _LONG_LENGTH:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, _LONG_LENGTH | len(size))) + size + body


def encode(tag: int, value: bytes) -> bytes:
    """Tag, minimal definite length, value."""
    return _tag_to_bytes(tag) + encode_length(len(value)) + bytes(value)


@dataclass(frozen=True)
class TLV:
    """One BER-TLV data object: a tag and its value bytes.

    A constructed object (bit 6 of the first tag byte) keeps its value as bytes and decodes the
    children on demand; :meth:`build` makes one from children. Re-encoding always uses the
    minimal length form, so an object parsed from a non-minimal length (``81 05``) encodes to
    different, equivalent bytes.
    """

    tag: int
    value: bytes
    _tag_bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tag_bytes", _tag_to_bytes(self.tag))
        value = self.value
        if type(value) is not bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TLVError(f"a TLV value must be bytes, got {type(value).__name__}")
            object.__setattr__(self, "value", bytes(value))

    @classmethod
    def build(cls, tag: int, children: list[TLV]) -> TLV:
        """A constructed object whose value is the concatenated encodings of ``children``."""
        tag_bytes = _tag_to_bytes(tag)
        if not tag_bytes[0] & _CONSTRUCTED:
            raise TLVError(f"tag {tag_bytes.hex().upper()} is primitive; it cannot hold children")
        return cls(tag, b"".join(child.encode() for child in children))

    @property
    def tag_bytes(self) -> bytes:
        """The encoded tag."""
        return self._tag_bytes

    @property
    def constructed(self) -> bool:
        """Bit 6 of the first tag byte (X.690 8.1.2.5): the value is a sequence of TLVs."""
        return bool(self._tag_bytes[0] & _CONSTRUCTED)

    @property
    def children(self) -> list[TLV]:
        """The direct children of a constructed object; no filler is allowed inside."""
        if not self.constructed:
            raise TLVError(f"tag {self._tag_bytes.hex().upper()} is primitive; it has no children")
        return decode(self.value, filler=b"")

    def find(self, tag: int) -> TLV | None:
        """The first direct child with ``tag``, or None."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def encode(self) -> bytes:
        """Tag, minimal definite length, value."""
        return self._tag_bytes + encode_length(len(self.value)) + self.value

    def __repr__(self) -> str:
        value = self.value
        if len(value) <= 64:
            shown = f"bytes.fromhex({value.hex().upper()!r})" if value else "b''"
        else:
            shown = f"<{len(value)} bytes {value[:16].hex().upper()}...>"
        return f"TLV(tag=0x{self._tag_bytes.hex().upper()}, value={shown})"


def _read_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """Parse the tag and length at ``offset``: (tag, offset of the value, value length).

    Only the header has to be present, so a reader can learn an object's size from a short
    header read (jpki-card.md 4.1) before it has the value.
    """
    size = len(data)
    if offset < 0 or offset >= size:
        raise TLVError(f"truncated TLV: no tag byte at offset {offset} of {size}")
    first = data[offset]
    pos = offset + 1
    if first == 0x00:
        raise TLVError(f"byte 00 at offset {offset} is padding, not a tag (ISO 7816-4 5.2)")
    tag = first
    if first & _MORE_TAG_BYTES == _MORE_TAG_BYTES:
        while True:
            if pos >= size:
                raise TLVError(f"truncated tag at offset {offset}: data ends inside the tag")
            b = data[pos]
            if pos == offset + 1 and b == _CONTINUATION:
                raise TLVError(f"tag at offset {offset}: first subsequent byte 80 is invalid")
            tag = tag << 8 | b
            pos += 1
            if not b & _CONTINUATION:
                break
            if pos - offset >= _MAX_TAG_BYTES:
                raise TLVError(f"tag at offset {offset} is longer than {_MAX_TAG_BYTES} bytes")
    if pos >= size:
        raise TLVError(f"truncated TLV at offset {offset}: no length after tag {tag:X}")
    length = data[pos]
    pos += 1
    if length & _LONG_LENGTH:
        count = length & 0x7F
        if length == _INDEFINITE:
            raise TLVError(f"tag {tag:X} at offset {offset}: indefinite length (80) is not allowed")
        if count > _MAX_LENGTH_BYTES:
            raise TLVError(
                f"tag {tag:X} at offset {offset}: {count} length bytes, at most "
                f"{_MAX_LENGTH_BYTES} supported"
            )
        if pos + count > size:
            raise TLVError(f"tag {tag:X} at offset {offset}: data ends inside the length field")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, length


def object_length(head: bytes) -> int:
    """Total size (tag + length field + value) of the object that starts ``head``.

    ``head`` needs only the tag and length bytes: readers learn a certificate's size from a
    4-, 7- or 256-byte header read (jpki-card.md 4.1), and a trace decoder knows when the
    chunks of an EF make a whole object. :class:`TLVError` when the header is incomplete or
    malformed.
    """
    _, pos, length = _read_header(head, 0)
    return pos + length


def decode_one(data: bytes, offset: int = 0) -> tuple[TLV, int]:
    """Decode the object starting at ``offset``; return it and the offset just after it.

    Offsets are kept relative to ``data`` because the 基本4情報 offset table (DF 21, jpki-card.md
    3.3) points into the EF from its start.
    """
    tag, pos, length = _read_header(data, offset)
    end = pos + length
    if end > len(data):
        raise TLVError(
            f"tag {tag:X} at offset {offset}: length {length} but only {len(data) - pos} bytes "
            "remain"
        )
    return TLV(tag, bytes(data[pos:end])), end


def _is_filler(data: bytes, pos: int, filler: bytes) -> bool:
    """True when ``data[pos:]`` is non-empty and consists of one repeated filler byte."""
    first = data[pos]
    if first not in filler:
        return False
    rest = data[pos:]
    return rest.count(first) == len(rest)


def _scan(data: bytes, filler: bytes) -> tuple[list[TLV], int]:
    objects: list[TLV] = []
    pos = 0
    size = len(data)
    while pos < size:
        if filler and _is_filler(data, pos, filler):
            break
        obj, pos = decode_one(data, pos)
        objects.append(obj)
    return objects, pos


def decode(data: bytes, *, filler: bytes = DEFAULT_FILLER) -> list[TLV]:
    """Decode consecutive top-level objects, stopping at trailing filler.

    Filler rule: decoding stops when every remaining byte is the same byte and that byte is in
    ``filler`` (by default ``FF`` or ``00``, ISO 7816-4 5.2 and the EF padding of jpki-card.md
    3.3 / 4.1). The rule is ambiguous because ``FF`` is also the first byte of the private
    constructed tags the card uses (``FF 10``, ``FF 20``): a run of only ``FF`` bytes up to the
    end is read as filler, never as a truncated object, since no complete object can consist
    only of ``FF`` bytes (its last tag byte has bit 8 clear). Mixed filler (``FF FF 00``) is not
    filler and is decoded as objects, usually raising :class:`TLVError`. ``filler=b""`` turns
    the rule off (used for the inside of constructed objects).
    """
    return _scan(data, filler)[0]


def strip_filler(data: bytes, *, filler: bytes = DEFAULT_FILLER) -> bytes:
    """The bytes of the objects in ``data`` without the trailing filler (rule of :func:`decode`).

    The bytes are returned as stored, so a digest over them matches the card's even when a
    length uses a non-minimal form.
    """
    return bytes(data[: _scan(data, filler)[1]])
