"""GlobalPlatform Secure Channel Protocol 03 (Amendment D): host side and card side, no I/O.

The Android token keeps the JPKI applet in a GlobalPlatform Secure Element; the service
provider's TSM reaches its security domain through SCP03 end to end, while the phone app only
relays APDUs (globalplatform.md 2). This module is both ends of that channel as plain objects:

- :class:`HostSession` is the TSM: it builds INITIALIZE UPDATE, checks the card cryptogram,
  answers with EXTERNAL AUTHENTICATE, then wraps every command and unwraps every response.
- :class:`CardSession` is the security domain: it answers INITIALIZE UPDATE (with a
  pseudo-random card challenge from its sequence counter), checks EXTERNAL AUTHENTICATE, then
  unwraps secured commands and wraps their responses.

Neither side touches a transport. An SE dispatcher uses the card side like this::

    if ins == INS_INITIALIZE_UPDATE:
        return session.initialize_update(apdu)          # persist session.sequence_counter
    if ins == INS_EXTERNAL_AUTHENTICATE:
        return session.external_authenticate(apdu)
    if is_secured(apdu):
        try:
            apdu = session.unwrap_command(apdu)
        except SecureChannelError as e:
            return e.sw.to_bytes(2, "big")              # 6982: the session is now closed
    data, sw = run_plain_command(apdu)
    return session.wrap_response(data, sw)

Every rule is cited by its section of globalplatform.md (the project's copy,
docs/globalplatform.md, has the same numbering); a bare number in parentheses, such as (6.7),
is a section of it. Key derivation is globalplatform.md 6.3, cryptograms 6.4, security levels
6.5, C-MAC chaining 6.6, command encryption 6.7, R-MAC 6.8, response encryption 6.9, session
rules 6.10, key check values 6.11, payload limits 6.12, key component blocks for PUT KEY 5.7.

Keys never appear in a repr or an error message: reprs show the key check value (6.11), which
identifies a key without revealing it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from workbench.errors import APDUError, WorkbenchError

__all__ = [
    "CARD_CHALLENGE",
    "CARD_CRYPTOGRAM",
    "C_DECRYPTION",
    "C_MAC",
    "DEFAULT_I_PARAMETER",
    "HOST_CRYPTOGRAM",
    "INS_EXTERNAL_AUTHENTICATE",
    "INS_INITIALIZE_UPDATE",
    "NO_SECURITY_LEVEL",
    "PSEUDO_RANDOM_CHALLENGE",
    "RENC_SUPPORTED",
    "RMAC_SUPPORTED",
    "R_ENCRYPTION",
    "R_MAC",
    "S16_MODE",
    "SCP03_IDENTIFIER",
    "SECURITY_LEVELS",
    "S_ENC",
    "S_MAC",
    "S_RMAC",
    "CardCryptogramError",
    "CardSession",
    "CryptogramError",
    "DecryptionError",
    "HostCryptogramError",
    "HostSession",
    "InitializeUpdateError",
    "KeyMaterialError",
    "MacError",
    "PayloadTooLongError",
    "SecureChannelError",
    "SecurityLevelError",
    "SessionKeys",
    "SessionStateError",
    "StaticKeys",
    "card_cryptogram",
    "check_security_level",
    "decrypt_key_component",
    "derive_session_keys",
    "describe_security_level",
    "diversify_kdf3",
    "encrypt_key_component",
    "host_cryptogram",
    "is_error_status",
    "is_secured",
    "kdf",
    "key_check_value",
    "max_command_payload",
    "max_response_payload",
    "pseudo_random_card_challenge",
]

# --- protocol constants ---------------------------------------------------------------------

SCP03_IDENTIFIER = 0x03  # 6.1: second byte of the key information in INITIALIZE UPDATE
AES_KEY_LENGTHS = (16, 24, 32)  # 6: AES-128/192/256 static keys
BLOCK = 16  # AES block length; also the full CMAC length (6.6)
KCV_LENGTH = 3  # 6.11
KDD_LENGTH = 10  # 6.1: key diversification data
SEQUENCE_COUNTER_LENGTH = 3  # 6.1
MAX_SEQUENCE_COUNTER = 0xFFFFFF  # 6.1: three bytes
MAX_SHORT_LC = 255  # 6.12: short APDUs
MAX_SHORT_RESPONSE = 256  # 6.12

# 6.3: derivation constants of the KDF.
CARD_CRYPTOGRAM = 0x00
HOST_CRYPTOGRAM = 0x01
CARD_CHALLENGE = 0x02
S_ENC = 0x04
S_MAC = 0x06
S_RMAC = 0x07

# 6.5: security level bits (P1 of EXTERNAL AUTHENTICATE).
NO_SECURITY_LEVEL = 0x00
C_MAC = 0x01
C_DECRYPTION = 0x02
R_MAC = 0x10
R_ENCRYPTION = 0x20
#: 6.5: the levels this implementation accepts. C-DECRYPTION needs C-MAC, R-MAC needs C-MAC
#: (the R-MAC chains on the C-MAC), R-ENCRYPTION needs R-MAC and C-DECRYPTION.
SECURITY_LEVELS = frozenset({0x00, 0x01, 0x03, 0x11, 0x13, 0x33})

# 6.2: bits of the i parameter.
S16_MODE = 0x01
PSEUDO_RANDOM_CHALLENGE = 0x10
RMAC_SUPPORTED = 0x20
RENC_SUPPORTED = 0x40
_KNOWN_I_BITS = S16_MODE | PSEUDO_RANDOM_CHALLENGE | RMAC_SUPPORTED | RENC_SUPPORTED
#: 6.2: pseudo-random challenge, R-MAC and R-ENC supported, S8 mode.
DEFAULT_I_PARAMETER = 0x70

# 5: instruction bytes and the class byte bits of secure messaging (6.6).
CLA_GP = 0x80
CLA_SECURE_MESSAGING = 0x04  # 6.6: set in every secured command
_CLA_ISO_SM_HEADER = 0x08  # ISO 7816-4 SM with authenticated header: never used by SCP03
_CLA_CHANNEL = 0x03  # logical channel number (OMAPI opens channels 1-3)
_CLA_FURTHER_INTERINDUSTRY = 0x60  # b7 b6: the CLA is not of the 0x/8x family
INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82

# 5.10: status words the secure channel answers.
SW_SUCCESS = 0x9000
SW_AUTHENTICATION_FAILED = 0x6300  # 6.4 MODEL: host cryptogram wrong
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982  # 6.10 MODEL: bad C-MAC, no session
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_P1P2 = 0x6A86
SW_REFERENCED_DATA_NOT_FOUND = 0x6A88  # unknown KVN
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

_ZERO_BLOCK = bytes(BLOCK)
_ZERO_KDD = bytes(KDD_LENGTH)
_KCV_PLAINTEXT = b"\x01" * BLOCK  # 6.11
_PADDING_START = 0x80  # ISO/IEC 9797-1 method 2 (6.7)


# --- errors ---------------------------------------------------------------------------------


class SecureChannelError(WorkbenchError):
    """Something in an SCP03 session failed.

    ``sw`` is the status word the card answers for it (e.g. ``0x6982``), or None when the error
    is the host's own (no card status applies). Messages never carry key bytes.
    """

    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class KeyMaterialError(SecureChannelError, ValueError):
    """A key, key set, KVN or derivation input of the wrong size or range (6, 6.3, 5.7)."""


class SecurityLevelError(SecureChannelError, ValueError):
    """A security level that 6.5 does not allow, or that the card's i parameter lacks
    (globalplatform.md 6.2)."""


class InitializeUpdateError(SecureChannelError):
    """The card's answer to INITIALIZE UPDATE cannot start a session (globalplatform.md 6.1): error
    SW, wrong length, wrong SCP identifier, an unexpected KVN or a mode the host did not ask for."""


class CryptogramError(SecureChannelError):
    """Mutual authentication failed (globalplatform.md 6.4): one side does not hold the same static
    keys."""


class CardCryptogramError(CryptogramError):
    """The card cryptogram in the INITIALIZE UPDATE answer is wrong: the card is not the one
    whose keys the host holds (or the keys are wrong). Do not send EXTERNAL AUTHENTICATE."""


class HostCryptogramError(CryptogramError):
    """The card refused the host cryptogram of EXTERNAL AUTHENTICATE (globalplatform.md 6.4 MODEL:
    SW 6300)."""


class MacError(SecureChannelError):
    """A C-MAC (globalplatform.md 6.6) or R-MAC (6.8) is wrong or missing; a replayed or reordered
    command fails this way because the MAC chains on the previous command."""


class DecryptionError(SecureChannelError):
    """Encrypted data whose length or padding is wrong after decryption (globalplatform.md 6.7,
    6.9)."""


class PayloadTooLongError(SecureChannelError, ValueError):
    """The data cannot fit a short APDU once padding and MAC are added (globalplatform.md 6.12)."""


class SessionStateError(SecureChannelError):
    """The call does not fit the session's state (not authenticated yet, already used, ...)."""


# --- primitives -----------------------------------------------------------------------------


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _aes_cbc_encrypt(key: bytes, icv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(icv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _aes_cbc_decrypt(key: bytes, icv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(icv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 method 2 (globalplatform.md 6.7): ``80`` then ``00`` to a block multiple,
    always >= 1 byte."""
    return data + bytes([_PADDING_START]) + bytes(-(len(data) + 1) % BLOCK)


def _unpad(padded: bytes, what: str) -> bytes:
    end = padded.rstrip(b"\x00")
    if not end or end[-1] != _PADDING_START or len(padded) - len(end) >= BLOCK:
        raise DecryptionError(f"{what}: padding 80 00.. missing after decryption (6.7, 6.9)")
    return end[:-1]


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise KeyMaterialError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_aes_key(key: object, name: str = "key") -> bytes:
    key = _bytes(key, name)
    if len(key) not in AES_KEY_LENGTHS:
        raise KeyMaterialError(
            f"{name} must be an AES-128/192/256 key (16, 24 or 32 bytes), got {len(key)} bytes"
        )
    return key


def key_check_value(key: bytes) -> bytes:
    """The KCV of an AES key: first 3 bytes of AES-ECB(key, 16 x 01) (globalplatform.md 6.11, 5.7).

    PUT KEY answers KCVs and reprs show them, so two parties can compare keys without
    revealing them.
    """
    key = _check_aes_key(key)
    return _aes_ecb(key, _KCV_PLAINTEXT)[:KCV_LENGTH]


def kdf(key: bytes, constant: int, context: bytes, length_bits: int) -> bytes:
    """NIST SP 800-108 KDF in counter mode with AES-CMAC, laid out as SCP03 needs
    (globalplatform.md 6.3).

    Block i is CMAC(key, 11 x 00 || constant || 00 || L (2 bytes) || i (1 byte) || context);
    the blocks are concatenated and cut to L bits. The same function gives the session keys,
    both cryptograms and the pseudo-random card challenge; only the constant and context
    change (6.3 table).
    """
    key = _check_aes_key(key)
    context = _bytes(context, "KDF context")
    if isinstance(constant, bool) or not isinstance(constant, int) or not 0 <= constant <= 0xFF:
        raise KeyMaterialError(f"a derivation constant is one byte (0..255), got {constant!r}")
    if (
        isinstance(length_bits, bool)
        or not isinstance(length_bits, int)
        or not 8 <= length_bits <= 0xFFFF
        or length_bits % 8
    ):
        raise KeyMaterialError(
            "the KDF output length L is a whole number of bytes, 8..65535 bits, "
            f"got {length_bits!r}"
        )
    blocks = -(-length_bits // (8 * BLOCK))
    if blocks > 0xFF:
        raise KeyMaterialError("the KDF counter is one byte: at most 255 CMAC blocks (6.3)")
    head = bytes(11) + bytes([constant]) + b"\x00" + length_bits.to_bytes(2, "big")
    output = b"".join(_cmac(key, head + bytes([i]) + context) for i in range(1, blocks + 1))
    return output[: length_bits // 8]


# --- keys -----------------------------------------------------------------------------------


def _check_kvn(kvn: object) -> int:
    # GlobalPlatform key version numbers are 01..7F; FF marks the initial (factory) key set of
    # an ISD [U]. 00 is not a key version: in INITIALIZE UPDATE it means "first available" (6.1).
    if isinstance(kvn, bool) or not isinstance(kvn, int) or not (1 <= kvn <= 0x7F or kvn == 0xFF):
        raise KeyMaterialError(
            f"a key version number (KVN) must be 0x01..0x7F or 0xFF, got {kvn!r}"
        )
    return kvn


@dataclass(frozen=True, repr=False)
class StaticKeys:
    """One SCP03 key set: ENC, MAC and DEK (key identifiers 1, 2, 3) under a KVN (6, 5.7).

    All three keys have the same AES length. The repr shows the KVN, the key length and the
    KCVs (globalplatform.md 6.11), never the keys.
    """

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x30

    def __post_init__(self) -> None:
        for name in ("enc", "mac", "dek"):
            object.__setattr__(self, name, _check_aes_key(getattr(self, name), f"static {name}"))
        if not len(self.enc) == len(self.mac) == len(self.dek):
            raise KeyMaterialError(
                "ENC, MAC and DEK of one key set must have the same length, got "
                f"{len(self.enc)}, {len(self.mac)} and {len(self.dek)} bytes"
            )
        _check_kvn(self.kvn)

    @property
    def key_length(self) -> int:
        """Length of each key in bytes (16, 24 or 32)."""
        return len(self.enc)

    def kcv(self, which: str) -> bytes:
        """KCV (globalplatform.md 6.11) of ``"enc"``, ``"mac"`` or ``"dek"``."""
        if which not in ("enc", "mac", "dek"):
            raise KeyMaterialError(f"a key set has keys 'enc', 'mac' and 'dek', not {which!r}")
        return key_check_value(getattr(self, which))

    def __repr__(self) -> str:
        return (
            f"StaticKeys(kvn=0x{self.kvn:02X}, AES-{self.key_length * 8}, "
            f"kcv enc={self.kcv('enc').hex().upper()} mac={self.kcv('mac').hex().upper()} "
            f"dek={self.kcv('dek').hex().upper()})"
        )


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """S-ENC, S-MAC and S-RMAC of one session (globalplatform.md 6.3); there is no session DEK in
    SCP03.

    The repr shows only KCVs (6.11), as the session keys protect everything that follows.
    """

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes

    def __post_init__(self) -> None:
        for name in ("s_enc", "s_mac", "s_rmac"):
            object.__setattr__(self, name, _check_aes_key(getattr(self, name), name))

    def __repr__(self) -> str:
        kcvs = " ".join(
            f"{name}={key_check_value(getattr(self, name)).hex().upper()}"
            for name in ("s_enc", "s_mac", "s_rmac")
        )
        return f"SessionKeys(AES-{len(self.s_enc) * 8}, kcv {kcvs})"


def _challenge_pair(host_challenge: bytes, card_challenge: bytes) -> tuple[bytes, bytes]:
    host_challenge = _bytes(host_challenge, "host challenge")
    card_challenge = _bytes(card_challenge, "card challenge")
    if len(host_challenge) not in (8, 16) or len(card_challenge) != len(host_challenge):
        raise KeyMaterialError(
            "host and card challenges are both 8 bytes (S8) or both 16 bytes (S16) (6.1), got "
            f"{len(host_challenge)} and {len(card_challenge)}"
        )
    return host_challenge, card_challenge


def derive_session_keys(
    keys: StaticKeys, host_challenge: bytes, card_challenge: bytes
) -> SessionKeys:
    """The session keys of 6.3: S-ENC from static ENC, S-MAC and S-RMAC from static MAC, each
    as long as the static keys, with host challenge || card challenge as context."""
    context = b"".join(_challenge_pair(host_challenge, card_challenge))
    bits = keys.key_length * 8
    return SessionKeys(
        s_enc=kdf(keys.enc, S_ENC, context, bits),
        s_mac=kdf(keys.mac, S_MAC, context, bits),
        s_rmac=kdf(keys.mac, S_RMAC, context, bits),
    )


def card_cryptogram(
    session_keys: SessionKeys, host_challenge: bytes, card_challenge: bytes
) -> bytes:
    """Card cryptogram (globalplatform.md 6.3 constant 00, 6.4): S-MAC KDF, as long as the
    challenges."""
    hc, cc = _challenge_pair(host_challenge, card_challenge)
    return kdf(session_keys.s_mac, CARD_CRYPTOGRAM, hc + cc, 8 * len(hc))


def host_cryptogram(
    session_keys: SessionKeys, host_challenge: bytes, card_challenge: bytes
) -> bytes:
    """Host cryptogram (globalplatform.md 6.3 constant 01, 6.4): S-MAC KDF, as long as the
    challenges."""
    hc, cc = _challenge_pair(host_challenge, card_challenge)
    return kdf(session_keys.s_mac, HOST_CRYPTOGRAM, hc + cc, 8 * len(hc))


def _counter_bytes(sequence_counter: bytes | int) -> bytes:
    if isinstance(sequence_counter, bytes | bytearray):
        if len(sequence_counter) != SEQUENCE_COUNTER_LENGTH:
            raise KeyMaterialError(
                f"the sequence counter is 3 bytes (6.1), got {len(sequence_counter)}"
            )
        return bytes(sequence_counter)
    if (
        isinstance(sequence_counter, bool)
        or not isinstance(sequence_counter, int)
        or not 0 <= sequence_counter <= MAX_SEQUENCE_COUNTER
    ):
        raise KeyMaterialError(
            f"the sequence counter is 0..0xFFFFFF (3 bytes, 6.1), got {sequence_counter!r}"
        )
    return sequence_counter.to_bytes(SEQUENCE_COUNTER_LENGTH, "big")


def _check_aid(aid: object) -> bytes:
    aid = _bytes(aid, "SD AID")
    if not 5 <= len(aid) <= 16:
        raise KeyMaterialError(f"an AID is 5 to 16 bytes (ISO 7816-4), got {len(aid)}")
    return aid


def pseudo_random_card_challenge(
    enc: bytes, sequence_counter: bytes | int, sd_aid: bytes, *, s16: bool = False
) -> bytes:
    """The card challenge of a card with i bit 10 (globalplatform.md 6.2, 6.4): KDF(static ENC,
    constant 02, sequence counter || SD AID), 8 bytes (S8) or 16 (S16).

    The card need not hold a random generator for it, and a host that knows the counter can
    predict the challenge; the counter makes every challenge different.
    """
    context = _counter_bytes(sequence_counter) + _check_aid(sd_aid)
    return kdf(enc, CARD_CHALLENGE, context, 128 if s16 else 64)


def diversify_kdf3(master: bytes, kdd: bytes, *, kvn: int = 0x30) -> StaticKeys:
    """A card's static keys diversified from a master key with GPPro's "KDF3"
    (globalplatform.md 7.3).

    Not part of Amendment D's session protocol: issuers use such a scheme so every card has its
    own keys, derived from the KDD the card returns in INITIALIZE UPDATE (6.1). Block i of key
    x (1 ENC, 2 MAC, 3 DEK) is CMAC(master, i || 00 00 00 || x || 00 || KDD); the blocks are
    concatenated and cut to the master key's length. Reproduces the GlobalPlatformPro vectors
    of 7.3; the scheme's layout is single-source there [U].
    """
    master = _check_aes_key(master, "master key")
    kdd = _bytes(kdd, "key diversification data")
    if len(kdd) != KDD_LENGTH:
        raise KeyMaterialError(f"key diversification data is 10 bytes (6.1), got {len(kdd)}")

    def derive(x: int) -> bytes:
        blocks = -(-len(master) // BLOCK)
        out = b"".join(
            _cmac(master, bytes([i, 0x00, 0x00, 0x00, x, 0x00]) + kdd) for i in range(1, blocks + 1)
        )
        return out[: len(master)]

    return StaticKeys(enc=derive(1), mac=derive(2), dek=derive(3), kvn=kvn)


# --- security levels and limits -------------------------------------------------------------


def describe_security_level(level: int) -> str:
    """``0x33`` -> ``"C-MAC + C-DECRYPTION + R-MAC + R-ENCRYPTION"`` (globalplatform.md 6.5), for
    messages."""
    names = [
        name
        for bit, name in (
            (C_MAC, "C-MAC"),
            (C_DECRYPTION, "C-DECRYPTION"),
            (R_MAC, "R-MAC"),
            (R_ENCRYPTION, "R-ENCRYPTION"),
        )
        if level & bit
    ]
    return " + ".join(names) or "no secure messaging"


def check_security_level(level: int, *, i_parameter: int | None = None) -> int:
    """Return ``level`` if 6.5 allows it (and the card's i parameter supports it, 6.2).

    Refused: unknown bits; C-DECRYPTION without C-MAC; R-MAC without C-MAC (the R-MAC chains on
    the C-MAC, 6.8); R-ENCRYPTION without R-MAC and C-DECRYPTION. So only 00, 01, 03, 11, 13
    and 33 pass. With ``i_parameter``, R-MAC needs i bit 20 and R-ENCRYPTION i bit 40.
    """
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 0xFF:
        raise SecurityLevelError(f"a security level is one byte, got {level!r}", SW_WRONG_P1P2)
    if level not in SECURITY_LEVELS:
        if level & C_DECRYPTION and not level & C_MAC:
            why = "C-DECRYPTION needs C-MAC"
        elif level & R_ENCRYPTION and not level & R_MAC:
            why = "R-ENCRYPTION needs R-MAC"
        elif level & R_MAC and not level & C_MAC:
            why = "R-MAC needs C-MAC"
        elif level & R_ENCRYPTION and not level & C_DECRYPTION:
            why = "R-ENCRYPTION needs C-DECRYPTION"
        else:
            why = "unknown bits"
        raise SecurityLevelError(
            f"security level {level:02X} is not allowed ({why}); "
            "use 00, 01, 03, 11, 13 or 33 (6.5)",
            SW_WRONG_P1P2,
        )
    if i_parameter is not None:
        if level & R_MAC and not i_parameter & RMAC_SUPPORTED:
            raise SecurityLevelError(
                f"the card's i parameter {i_parameter:02X} has no R-MAC support (6.2); "
                f"level {level:02X} needs it",
                SW_WRONG_P1P2,
            )
        if level & R_ENCRYPTION and not i_parameter & RENC_SUPPORTED:
            raise SecurityLevelError(
                f"the card's i parameter {i_parameter:02X} has no R-ENCRYPTION support (6.2); "
                f"level {level:02X} needs it",
                SW_WRONG_P1P2,
            )
    return level


def max_command_payload(level: int, *, s16: bool = False, budget: int = MAX_SHORT_LC) -> int:
    """Largest plain command data field that still fits ``budget`` bytes of Lc
    (globalplatform.md 6.12).

    With MAC length m: ``budget - m``, or ``floor((budget - m) / 16) * 16 - 1`` when the data
    is encrypted (the padding adds at least one byte). 255 in S8 gives 247 and 239, in S16 239
    and 223; omfgp's 100-byte budget gives 92 and 79.
    """
    check_security_level(level)
    if not level & C_MAC:
        return budget
    room = budget - (BLOCK if s16 else 8)
    if level & C_DECRYPTION:
        return max(room // BLOCK * BLOCK - 1, 0)
    return max(room, 0)


def max_response_payload(level: int, *, s16: bool = False) -> int:
    """Largest plain response data that fits a short response (256 bytes) (globalplatform.md 6.12):
    248 with R-MAC and 239 with R-MAC + R-ENCRYPTION in S8."""
    check_security_level(level)
    if not level & R_MAC:
        return MAX_SHORT_RESPONSE
    room = MAX_SHORT_RESPONSE - (BLOCK if s16 else 8)
    if level & R_ENCRYPTION:
        return room // BLOCK * BLOCK - 1
    return room


def is_error_status(sw: int) -> bool:
    """True for status words other than 9000 and the warnings 62xx / 63xx.

    GP Amendment D applies no R-MAC and no encryption to a response with such a status word:
    the card answers the bare status word. pysim's SCP03 follows the same rule [U: not in
    globalplatform.md, which is silent on error responses].
    """
    return sw != SW_SUCCESS and sw >> 8 not in (0x62, 0x63)


def is_secured(apdu: bytes) -> bool:
    """True if the command's CLA has the GlobalPlatform secure messaging bit (globalplatform.md 6.6,
    ``84``)."""
    return (
        len(apdu) >= 1
        and not apdu[0] & _CLA_FURTHER_INTERINDUSTRY
        and apdu[0] != 0xFF
        and bool(apdu[0] & CLA_SECURE_MESSAGING)
    )


# --- short command APDUs --------------------------------------------------------------------


@dataclass(frozen=True)
class _Command:
    """A short command APDU (ISO 7816-3 cases 1, 2S, 3S, 4S) split into its fields."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: bytes  # b"" (cases 1, 3) or one byte (cases 2, 4)

    @classmethod
    def parse(cls, apdu: bytes) -> _Command:
        apdu = bytes(apdu)
        n = len(apdu)
        if n < 4:
            raise APDUError(f"a command APDU has at least 4 bytes, got {n}")
        cla, ins, p1, p2 = apdu[:4]
        if n == 4:
            return cls(cla, ins, p1, p2, b"", b"")
        if n == 5:
            return cls(cla, ins, p1, p2, b"", apdu[4:5])
        lc = apdu[4]
        if lc == 0:
            raise APDUError(
                "extended-length APDUs are not supported: SCP03 here uses short APDUs (6.12)"
            )
        if n == 5 + lc:
            return cls(cla, ins, p1, p2, apdu[5:], b"")
        if n == 6 + lc:
            return cls(cla, ins, p1, p2, apdu[5:-1], apdu[-1:])
        raise APDUError(f"Lc {lc} does not match a command of {n} bytes")

    def encode(self) -> bytes:
        lc = bytes([len(self.data)]) if self.data else b""
        return bytes([self.cla, self.ins, self.p1, self.p2]) + lc + self.data + self.le


def _mac_cla(cla: int) -> int:
    # The CLA inside the MAC has the logical channel number cleared and bit 04 set, so the same
    # session works on any logical channel (GP Amd D; the vectors use channel 0).
    return (cla & ~_CLA_CHANNEL) | CLA_SECURE_MESSAGING


# --- the channel shared by both ends -----------------------------------------------------------


@dataclass(eq=False)
class _Channel:
    """State of an open session, identical on host and card (globalplatform.md 6.6 to 6.9).

    ``chaining`` is the full 16-byte C-MAC of the last command (6.6): the next C-MAC and the
    R-MAC of its answer (6.8) start from it. ``counter`` is the encryption counter (6.7).
    """

    keys: SessionKeys
    level: int
    mac_length: int
    chaining: bytes
    counter: int = 0

    def command_icv(self) -> bytes:
        """6.7: AES-ECB(S-ENC, counter) for the current command."""
        return _aes_ecb(self.keys.s_enc, self.counter.to_bytes(BLOCK, "big"))

    def response_icv(self) -> bytes:
        """6.9: AES-ECB(S-ENC, counter with its first byte set to 80) for the current answer."""
        block = bytes([0x80]) + self.counter.to_bytes(BLOCK, "big")[1:]
        return _aes_ecb(self.keys.s_enc, block)

    def c_mac(self, header: bytes, data: bytes) -> bytes:
        return _cmac(self.keys.s_mac, self.chaining + header + data)

    def r_mac(self, data: bytes, sw: bytes) -> bytes:
        return _cmac(self.keys.s_rmac, self.chaining + data + sw)[: self.mac_length]


# --- host side ------------------------------------------------------------------------------


class HostSession:
    """The off-card entity (TSM) of one SCP03 session (globalplatform.md 6.1, 6.4 to 6.9).

    Usage: send :meth:`initialize_update`, pass the card's answer to :meth:`authenticate` and
    send what it returns (EXTERNAL AUTHENTICATE); optionally pass the card's answer to that to
    :meth:`check_external_authenticate`. Then :meth:`wrap` each plain command and
    :meth:`unwrap` each response. One object is one session: start a new one after a failure.
    """

    def __init__(
        self, keys: StaticKeys, host_challenge: bytes, security_level: int, *, s16: bool = False
    ) -> None:
        if not isinstance(keys, StaticKeys):
            raise KeyMaterialError(f"keys must be StaticKeys, got {type(keys).__name__}")
        host_challenge = _bytes(host_challenge, "host challenge")
        n = 16 if s16 else 8
        if len(host_challenge) != n:
            raise KeyMaterialError(
                f"the host challenge is {n} bytes in {'S16' if s16 else 'S8'} mode (6.1), "
                f"got {len(host_challenge)}"
            )
        self._keys = keys
        self._host_challenge = host_challenge
        self._level = check_security_level(security_level)
        self._s16 = bool(s16)
        self._kdd: bytes | None = None
        self._i: int | None = None
        self._card_challenge: bytes | None = None
        self._sequence_counter: int | None = None
        self._session_keys: SessionKeys | None = None
        self._channel: _Channel | None = None

    # read-only facts of the session

    @property
    def security_level(self) -> int:
        return self._level

    @property
    def s16(self) -> bool:
        return self._s16

    @property
    def mac_length(self) -> int:
        """8 in S8 mode, 16 in S16 mode (globalplatform.md 6.6)."""
        return BLOCK if self._s16 else 8

    @property
    def host_challenge(self) -> bytes:
        return self._host_challenge

    @property
    def card_challenge(self) -> bytes | None:
        """From the INITIALIZE UPDATE answer; None before :meth:`authenticate`."""
        return self._card_challenge

    @property
    def i_parameter(self) -> int | None:
        return self._i

    @property
    def sequence_counter(self) -> int | None:
        """The card's sequence counter, present only with a pseudo-random challenge
        (globalplatform.md 6.1)."""
        return self._sequence_counter

    @property
    def key_diversification_data(self) -> bytes | None:
        return self._kdd

    @property
    def session_keys(self) -> SessionKeys:
        if self._session_keys is None:
            raise SessionStateError(
                "no session keys yet: pass the INITIALIZE UPDATE answer to authenticate() first"
            )
        return self._session_keys

    @property
    def is_authenticated(self) -> bool:
        """True once EXTERNAL AUTHENTICATE was built (and not refused by the card)."""
        return self._channel is not None

    @property
    def encryption_counter(self) -> int | None:
        """The 6.7 counter of the last wrapped command (0 right after authentication)."""
        return None if self._channel is None else self._channel.counter

    @property
    def mac_chaining_value(self) -> bytes | None:
        """The full C-MAC of the last command (globalplatform.md 6.6); not secret, shown for
        teaching."""
        return None if self._channel is None else self._channel.chaining

    def __repr__(self) -> str:
        state = "authenticated" if self._channel is not None else "not authenticated"
        mode = "S16" if self._s16 else "S8"
        return f"HostSession(kvn=0x{self._keys.kvn:02X}, level={self._level:02X}, {mode}, {state})"

    # handshake

    def initialize_update(self) -> bytes:
        """``80 50 KVN 00 Lc <host challenge> 00`` (globalplatform.md 6.1)."""
        hc = self._host_challenge
        return bytes([CLA_GP, INS_INITIALIZE_UPDATE, self._keys.kvn, 0x00, len(hc)]) + hc + b"\x00"

    def authenticate(self, response: bytes) -> bytes:
        """Check the card's INITIALIZE UPDATE answer and return EXTERNAL AUTHENTICATE
        (globalplatform.md 6.1-6.5).

        ``response`` may end with SW 9000 or not. Raises :class:`InitializeUpdateError` for an
        error SW, a wrong length, SCP identifier, KVN or mode, :class:`SecurityLevelError` if
        the card's i parameter lacks what the level needs, and :class:`CardCryptogramError` if
        the card cryptogram is wrong (then nothing must be sent).
        """
        if self._session_keys is not None:
            raise SessionStateError("this session has already authenticated; start a new one")
        response = _bytes(response, "INITIALIZE UPDATE answer")
        n = self.mac_length
        base = KDD_LENGTH + 3 + 2 * n
        lengths = (base, base + SEQUENCE_COUNTER_LENGTH)
        if len(response) == 2:
            sw = int.from_bytes(response, "big")
            raise InitializeUpdateError(
                f"the card answered INITIALIZE UPDATE with SW {sw:04X} and no data (6.1)", sw
            )
        if len(response) in (lengths[0] + 2, lengths[1] + 2):
            sw = int.from_bytes(response[-2:], "big")
            if sw != SW_SUCCESS:
                raise InitializeUpdateError(
                    f"the card answered INITIALIZE UPDATE with SW {sw:04X}", sw
                )
            response = response[:-2]
        elif len(response) not in lengths:
            raise InitializeUpdateError(
                f"an INITIALIZE UPDATE answer has {base} or {base + 3} bytes in "
                f"{'S16' if self._s16 else 'S8'} mode (6.1), got {len(response)}"
            )
        kdd, key_info = response[:KDD_LENGTH], response[KDD_LENGTH : KDD_LENGTH + 3]
        kvn, scp, i = key_info
        card_challenge = response[KDD_LENGTH + 3 : KDD_LENGTH + 3 + n]
        cryptogram = response[KDD_LENGTH + 3 + n : base]
        counter = response[base:]
        if scp != SCP03_IDENTIFIER:
            raise InitializeUpdateError(f"the card answered with SCP {scp:02X}, not SCP03 (6.1)")
        if kvn != self._keys.kvn:
            raise InitializeUpdateError(
                f"the card used key set KVN {kvn:02X}, the host holds KVN {self._keys.kvn:02X}"
            )
        if bool(i & S16_MODE) != self._s16:
            raise InitializeUpdateError(
                f"the card's i parameter {i:02X} says {'S16' if i & S16_MODE else 'S8'} mode, "
                f"the host asked for {'S16' if self._s16 else 'S8'} (6.2)"
            )
        if bool(i & PSEUDO_RANDOM_CHALLENGE) != bool(counter):
            raise InitializeUpdateError(
                f"the sequence counter must be present exactly when i bit 10 is set "
                f"(i={i:02X}, 6.1, 6.2)"
            )
        check_security_level(self._level, i_parameter=i)
        session_keys = derive_session_keys(self._keys, self._host_challenge, card_challenge)
        expected = card_cryptogram(session_keys, self._host_challenge, card_challenge)
        if not hmac.compare_digest(expected, cryptogram):
            raise CardCryptogramError(
                "the card cryptogram is wrong: the card does not hold this key set "
                f"(KVN {kvn:02X}); do not send EXTERNAL AUTHENTICATE (6.4)"
            )
        self._kdd, self._i, self._card_challenge = kdd, i, card_challenge
        self._sequence_counter = int.from_bytes(counter, "big") if counter else None
        self._session_keys = session_keys

        # 6.5: EXTERNAL AUTHENTICATE carries the host cryptogram and a C-MAC chained on 16 x 00.
        host_crypto = host_cryptogram(session_keys, self._host_challenge, card_challenge)
        channel = _Channel(session_keys, self._level, n, chaining=_ZERO_BLOCK)
        header = bytes(
            [CLA_GP | CLA_SECURE_MESSAGING, INS_EXTERNAL_AUTHENTICATE, self._level, 0x00, 2 * n]
        )
        channel.chaining = channel.c_mac(header, host_crypto)
        self._channel = channel
        return header + host_crypto + channel.chaining[:n]

    def check_external_authenticate(self, response: bytes) -> None:
        """Read the card's answer to EXTERNAL AUTHENTICATE: 9000 opens the session.

        6300 raises :class:`HostCryptogramError` (globalplatform.md 6.4 MODEL), any other SW
        :class:`SecureChannelError`; after either the session cannot be used.
        """
        response = _bytes(response, "EXTERNAL AUTHENTICATE answer")
        if len(response) != 2:
            self._channel = None
            raise SecureChannelError(
                "EXTERNAL AUTHENTICATE is answered by a status word only, "
                f"got {len(response)} bytes"
            )
        sw = int.from_bytes(response, "big")
        if sw == SW_SUCCESS:
            return
        self._channel = None
        if sw == SW_AUTHENTICATION_FAILED:
            raise HostCryptogramError(
                "the card refused the host cryptogram (SW 6300): the key sets differ (6.4)", sw
            )
        raise SecureChannelError(f"the card refused EXTERNAL AUTHENTICATE with SW {sw:04X}", sw)

    # secure messaging

    def _require_channel(self) -> _Channel:
        if self._channel is None:
            raise SessionStateError(
                "no secure channel: run initialize_update() and authenticate() first"
            )
        return self._channel

    def wrap(self, apdu: bytes) -> bytes:
        """Secure a plain short command (cases 1-4, CLA 0x or 8x, channels 0-3) per the level.

        6.7 then 6.6: the encryption counter goes up for every command; data (if any) is padded
        and AES-CBC encrypted with ICV = AES-ECB(S-ENC, counter) under C-DECRYPTION; CLA gets
        bit 04, Lc counts the MAC; the C-MAC over chaining value || header || data is appended
        (8 or 16 bytes) and Le, unMACed, after it. At level 00 the command goes as it is.
        Raises :class:`PayloadTooLongError` past the 6.12 limits, before any state changes.
        """
        channel = self._require_channel()
        command = _Command.parse(apdu)
        if command.cla & _CLA_FURTHER_INTERINDUSTRY or command.cla == 0xFF:
            raise APDUError(
                f"CLA {command.cla:02X} is not of the 0x/8x family that SCP03 secures (6.6)"
            )
        if command.cla & (CLA_SECURE_MESSAGING | _CLA_ISO_SM_HEADER):
            raise APDUError(f"CLA {command.cla:02X} already has secure messaging bits set")
        if self._level == NO_SECURITY_LEVEL:
            return bytes(apdu)
        limit = max_command_payload(self._level, s16=self._s16)
        if len(command.data) > limit:
            raise PayloadTooLongError(
                f"{len(command.data)} bytes of command data exceed {limit}, the most a short "
                f"APDU carries at level {self._level:02X} ({describe_security_level(self._level)}, "
                f"{'S16' if self._s16 else 'S8'}, 6.12); split the command"
            )
        channel.counter += 1  # 6.7: before every command, with or without data
        data = command.data
        if data and self._level & C_DECRYPTION:
            data = _aes_cbc_encrypt(channel.keys.s_enc, channel.command_icv(), _pad(data))
        lc = len(data) + channel.mac_length
        mac_header = bytes([_mac_cla(command.cla), command.ins, command.p1, command.p2, lc])
        channel.chaining = channel.c_mac(mac_header, data)
        sent_header = bytes([command.cla | CLA_SECURE_MESSAGING]) + mac_header[1:]
        return sent_header + data + channel.chaining[: channel.mac_length] + command.le

    def unwrap(self, response: bytes, *, accept_unprotected_errors: bool = True) -> bytes:
        """Check and open the card's answer to the last wrapped command; return data || SW.

        With R-MAC (globalplatform.md 6.8) the last 8 (S8) or 16 (S16) bytes before the SW must be
        CMAC(S-RMAC, C-MAC of the command || data as sent || SW); a missing or wrong R-MAC
        raises :class:`MacError`. With R-ENCRYPTION (6.9) non-empty data are then decrypted
        with ICV = AES-ECB(S-ENC, counter with first byte 80) and unpadded
        (:class:`DecryptionError` on bad padding).

        Error status words (see :func:`is_error_status`) come unprotected from cards that
        follow Amendment D: a bare error SW is returned as it is unless
        ``accept_unprotected_errors=False``, which demands an R-MAC on every answer.
        """
        channel = self._require_channel()
        response = _bytes(response, "response APDU")
        if len(response) < 2:
            raise APDUError(
                f"a response APDU ends with a 2-byte status word, got {len(response)} bytes"
            )
        if not self._level & R_MAC:
            return response
        body, sw = response[:-2], response[-2:]
        if not body and accept_unprotected_errors and is_error_status(int.from_bytes(sw, "big")):
            return response
        m = channel.mac_length
        if len(body) < m:
            raise MacError(
                f"the response carries no R-MAC ({len(body)} bytes before SW "
                f"{sw.hex().upper()}, {m} expected at least) (6.8)"
            )
        data, r_mac = body[:-m], body[-m:]
        if not hmac.compare_digest(channel.r_mac(data, sw), r_mac):
            raise MacError(
                f"the R-MAC of the response (SW {sw.hex().upper()}) is wrong: altered or not "
                "from this session (6.8)"
            )
        if data and self._level & R_ENCRYPTION:
            if len(data) % BLOCK:
                raise DecryptionError(
                    f"encrypted response data must be a multiple of 16 bytes, got {len(data)} (6.9)"
                )
            plain = _aes_cbc_decrypt(channel.keys.s_enc, channel.response_icv(), data)
            data = _unpad(plain, "response data")
        return data + sw


# --- card side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """What INITIALIZE UPDATE leaves for EXTERNAL AUTHENTICATE (globalplatform.md 6.4)."""

    session_keys: SessionKeys
    host_challenge: bytes
    card_challenge: bytes
    i_parameter: int


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class CardSession:
    """The security domain's end of SCP03 (globalplatform.md 6.1 to 6.10), for the simulated SE.

    ``keys`` is one key set or several (looked up by the KVN in INITIALIZE UPDATE; KVN 00
    takes the first). ``sequence_counter`` is the value the next INITIALIZE UPDATE uses (and
    returns, so the recorded vectors of globalplatform.md 7.1 carry the counter of their own
    challenge); the caller persists :attr:`sequence_counter` after each one, like the SE's NVM
    would. 0x1000000 means exhausted: INITIALIZE UPDATE then answers 6985 (MODEL).
    ``i_parameter`` is announced to the host (6.2); without bit 10 the card challenge comes
    from ``random_source`` (default :func:`os.urandom`). ``protect_error_responses=True``
    R-MACs error status words too (Amendment D says not to; see :func:`is_error_status`).

    MODEL choices (6.10): any failure of a secured command (MAC, padding, length) closes the
    session and raises a :class:`SecureChannelError` whose ``sw`` (6982, or 6700 for a
    malformed APDU) the dispatcher answers; later secured commands get 6982 until a new
    INITIALIZE UPDATE. A new INITIALIZE UPDATE always ends the current session.
    """

    def __init__(
        self,
        keys: StaticKeys | Iterable[StaticKeys],
        sd_aid: bytes,
        *,
        sequence_counter: int = 0,
        key_diversification_data: bytes = _ZERO_KDD,
        i_parameter: int = DEFAULT_I_PARAMETER,
        random_source: Callable[[int], bytes] | None = None,
        protect_error_responses: bool = False,
    ) -> None:
        key_sets = (keys,) if isinstance(keys, StaticKeys) else tuple(keys)
        if not key_sets or not all(isinstance(k, StaticKeys) for k in key_sets):
            raise KeyMaterialError("a security domain needs at least one StaticKeys key set")
        if len({k.kvn for k in key_sets}) != len(key_sets):
            raise KeyMaterialError("two key sets of a security domain share a KVN")
        self._key_sets = key_sets
        self._sd_aid = _check_aid(sd_aid)
        if (
            isinstance(sequence_counter, bool)
            or not isinstance(sequence_counter, int)
            or not 0 <= sequence_counter <= MAX_SEQUENCE_COUNTER + 1  # + 1: exhausted
        ):
            raise KeyMaterialError(
                f"the sequence counter is 0..0xFFFFFF (3 bytes, 6.1), got {sequence_counter!r}"
            )
        self._sequence_counter = sequence_counter
        kdd = _bytes(key_diversification_data, "key diversification data")
        if len(kdd) != KDD_LENGTH:
            raise KeyMaterialError(f"key diversification data is 10 bytes (6.1), got {len(kdd)}")
        self._kdd = kdd
        if (
            isinstance(i_parameter, bool)
            or not isinstance(i_parameter, int)
            or not 0 <= i_parameter <= 0xFF
            or i_parameter & ~_KNOWN_I_BITS
            or (i_parameter & RENC_SUPPORTED and not i_parameter & RMAC_SUPPORTED)
        ):
            raise KeyMaterialError(
                "the i parameter combines 01 (S16), 10 (pseudo-random challenge), 20 (R-MAC) "
                f"and 40 (R-ENC, only with 20) (6.2), got {i_parameter!r}"
            )
        self._i = i_parameter
        self._random = random_source if random_source is not None else os.urandom
        self._protect_errors = bool(protect_error_responses)
        self._pending: _Pending | None = None
        self._channel: _Channel | None = None

    @property
    def key_sets(self) -> tuple[StaticKeys, ...]:
        return self._key_sets

    @property
    def sd_aid(self) -> bytes:
        return self._sd_aid

    @property
    def i_parameter(self) -> int:
        return self._i

    @property
    def key_diversification_data(self) -> bytes:
        return self._kdd

    @property
    def sequence_counter(self) -> int:
        """The counter the next INITIALIZE UPDATE will use; persist it after each one."""
        return self._sequence_counter

    @property
    def s16(self) -> bool:
        return bool(self._i & S16_MODE)

    @property
    def is_open(self) -> bool:
        return self._channel is not None

    @property
    def security_level(self) -> int | None:
        """The level EXTERNAL AUTHENTICATE opened the session at, None when closed."""
        return None if self._channel is None else self._channel.level

    def close(self) -> None:
        """End the session (card reset, SELECT of another application, security failure; 6.10)."""
        self._channel = None
        self._pending = None

    def __repr__(self) -> str:
        state = f"open at {self._channel.level:02X}" if self._channel is not None else "closed"
        return (
            f"CardSession(aid={self._sd_aid.hex().upper()}, "
            f"kvn={','.join(f'{k.kvn:02X}' for k in self._key_sets)}, i={self._i:02X}, "
            f"counter={self._sequence_counter:06X}, {state})"
        )

    # handshake

    def initialize_update(self, command: bytes) -> bytes:
        """Answer ``80 50 KVN 00 Lc <host challenge> [00]`` (globalplatform.md 6.1) with data and
        SW.

        The answer is KDD || KVN || 03 || i || card challenge || card cryptogram || [sequence
        counter] || 9000. With i bit 10 the challenge is derived from the sequence counter,
        which is then incremented (6.4). Errors answer a bare SW: 6E00 CLA, 6D00 INS, 6A86 P2,
        6700 length, 6A88 unknown KVN, 6985 counter exhausted (MODEL).
        """
        self.close()  # a new INITIALIZE UPDATE ends any session on this channel
        try:
            c = _Command.parse(command)
        except APDUError:
            return _sw(SW_WRONG_LENGTH)
        if c.cla & ~_CLA_CHANNEL != CLA_GP:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if c.ins != INS_INITIALIZE_UPDATE:
            return _sw(SW_INS_NOT_SUPPORTED)
        if c.p2 != 0x00:
            return _sw(SW_WRONG_P1P2)
        n = BLOCK if self.s16 else 8
        if len(c.data) != n:
            return _sw(SW_WRONG_LENGTH)
        keys = self._find_keys(c.p1)
        if keys is None:
            return _sw(SW_REFERENCED_DATA_NOT_FOUND)
        counter = b""
        if self._i & PSEUDO_RANDOM_CHALLENGE:
            if self._sequence_counter > MAX_SEQUENCE_COUNTER:
                return _sw(SW_CONDITIONS_NOT_SATISFIED)
            counter = _counter_bytes(self._sequence_counter)
            challenge = pseudo_random_card_challenge(keys.enc, counter, self._sd_aid, s16=self.s16)
        else:
            challenge = bytes(self._random(n))
            if len(challenge) != n:
                raise KeyMaterialError(
                    f"the random source returned {len(challenge)} bytes, not {n}"
                )
        session_keys = derive_session_keys(keys, c.data, challenge)
        cryptogram = card_cryptogram(session_keys, c.data, challenge)
        self._pending = _Pending(session_keys, c.data, challenge, self._i)
        if counter:
            self._sequence_counter += 1
        key_info = bytes([keys.kvn, SCP03_IDENTIFIER, self._i])
        return self._kdd + key_info + challenge + cryptogram + counter + _sw(SW_SUCCESS)

    def _find_keys(self, kvn: int) -> StaticKeys | None:
        if kvn == 0x00:  # 6.1: first available key set
            return self._key_sets[0]
        return next((k for k in self._key_sets if k.kvn == kvn), None)

    def external_authenticate(self, command: bytes) -> bytes:
        """Answer ``84 82 <level> 00 Lc <host cryptogram> <C-MAC>`` (globalplatform.md 6.5) with a
        bare SW.

        9000 opens the session at the level. A wrong host cryptogram answers 6300 (6.4 MODEL)
        and a wrong C-MAC 6982; neither opens anything, and either way a new INITIALIZE UPDATE
        is needed. A level 6.5 forbids or the i parameter lacks answers 6A86 (MODEL); without
        a preceding INITIALIZE UPDATE the answer is 6985 (MODEL).
        """
        pending, self._pending = self._pending, None
        self._channel = None
        try:
            c = _Command.parse(command)
        except APDUError:
            return _sw(SW_WRONG_LENGTH)
        if c.cla & ~_CLA_CHANNEL != CLA_GP | CLA_SECURE_MESSAGING:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if c.ins != INS_EXTERNAL_AUTHENTICATE:
            return _sw(SW_INS_NOT_SUPPORTED)
        if pending is None:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)
        n = len(pending.host_challenge)
        if c.p2 != 0x00:
            return _sw(SW_WRONG_P1P2)
        if len(c.data) != 2 * n or c.le:
            return _sw(SW_WRONG_LENGTH)
        try:
            level = check_security_level(c.p1, i_parameter=pending.i_parameter)
        except SecurityLevelError as e:
            return _sw(e.sw or SW_WRONG_P1P2)
        received, mac = c.data[:n], c.data[n:]
        expected = host_cryptogram(
            pending.session_keys, pending.host_challenge, pending.card_challenge
        )
        if not hmac.compare_digest(expected, received):
            return _sw(SW_AUTHENTICATION_FAILED)
        channel = _Channel(pending.session_keys, level, n, chaining=_ZERO_BLOCK)
        header = bytes([_mac_cla(c.cla), c.ins, c.p1, c.p2, len(c.data)])
        full_mac = channel.c_mac(header, received)
        if not hmac.compare_digest(full_mac[:n], mac):
            return _sw(SW_SECURITY_STATUS_NOT_SATISFIED)
        channel.chaining = full_mac
        self._channel = channel
        return _sw(SW_SUCCESS)

    # secure messaging

    def unwrap_command(self, apdu: bytes) -> bytes:
        """Verify and decrypt a secured command (CLA bit 04); return the plain command.

        6.7 then 6.6 in reverse: the counter goes up, the C-MAC over chaining value || header
        (channel bits cleared) || data as received is checked, then the data are decrypted under
        C-DECRYPTION. Raises :class:`SecureChannelError` (``sw`` 6982, or 6700 for a malformed APDU)
        and closes the session on any failure (globalplatform.md 6.10 MODEL); a replayed or
        reordered command fails the MAC because the chaining value has moved on.
        """
        channel = self._channel
        if channel is None:
            raise SessionStateError(
                "no secure channel session is open: INITIALIZE UPDATE and EXTERNAL "
                "AUTHENTICATE first (SW 6982)",
                SW_SECURITY_STATUS_NOT_SATISFIED,
            )
        try:
            return self._unwrap(channel, apdu)
        except SecureChannelError:
            self.close()
            raise

    def _unwrap(self, channel: _Channel, apdu: bytes) -> bytes:
        if not is_secured(apdu):
            raise SecureChannelError(
                "the command is not secured (CLA without bit 04) (6.6); SW 6982",
                SW_SECURITY_STATUS_NOT_SATISFIED,
            )
        if channel.level == NO_SECURITY_LEVEL:
            raise SecureChannelError(
                "the session runs at level 00: secured commands are not expected (6.5); SW 6982",
                SW_SECURITY_STATUS_NOT_SATISFIED,
            )
        try:
            c = _Command.parse(apdu)
        except APDUError as e:
            raise SecureChannelError(
                f"malformed secured command: {e}; SW 6700", SW_WRONG_LENGTH
            ) from e
        m = channel.mac_length
        if len(c.data) < m:
            raise SecureChannelError(
                f"a secured command carries a {m}-byte C-MAC; Lc is {len(c.data)} (6.6); SW 6700",
                SW_WRONG_LENGTH,
            )
        channel.counter += 1  # 6.7: before every command
        data, mac = c.data[:-m], c.data[-m:]
        header = bytes([_mac_cla(c.cla), c.ins, c.p1, c.p2, len(c.data)])
        full_mac = channel.c_mac(header, data)
        if not hmac.compare_digest(full_mac[:m], mac):
            raise MacError(
                "the C-MAC is wrong (altered, replayed or out of order); the session is closed "
                "(6.6, 6.10); SW 6982",
                SW_SECURITY_STATUS_NOT_SATISFIED,
            )
        channel.chaining = full_mac
        if data and channel.level & C_DECRYPTION:
            if len(data) % BLOCK:
                raise DecryptionError(
                    f"encrypted command data must be a multiple of 16 bytes, got {len(data)} "
                    "(6.7); SW 6982",
                    SW_SECURITY_STATUS_NOT_SATISFIED,
                )
            plain = _aes_cbc_decrypt(channel.keys.s_enc, channel.command_icv(), data)
            try:
                data = _unpad(plain, "command data")
            except DecryptionError as e:
                e.sw = SW_SECURITY_STATUS_NOT_SATISFIED
                raise
        cla = c.cla & ~CLA_SECURE_MESSAGING
        return _Command(cla, c.ins, c.p1, c.p2, data, c.le).encode()

    def wrap_response(self, data: bytes, sw: int) -> bytes:
        """Protect the answer to the command just unwrapped: R-ENC (globalplatform.md 6.9), then
        R-MAC (6.8).

        Without an open session or below R-MAC the answer goes plain. An error status word
        (:func:`is_error_status`) goes bare, without its data and unprotected, as Amendment D
        says, unless the session was built with ``protect_error_responses=True``.
        Raises :class:`PayloadTooLongError` (sw 6700) past the 6.12 response limits.
        """
        data = _bytes(data, "response data")
        if isinstance(sw, bool) or not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
            raise APDUError(f"a status word is 0..0xFFFF, got {sw!r}")
        sw_bytes = _sw(sw)
        channel = self._channel
        if channel is None or not channel.level & R_MAC:
            return data + sw_bytes
        if is_error_status(sw) and not self._protect_errors:
            return sw_bytes
        limit = max_response_payload(channel.level, s16=channel.mac_length == BLOCK)
        if len(data) > limit:
            raise PayloadTooLongError(
                f"{len(data)} bytes of response data exceed {limit}, the most a short response "
                f"carries at level {channel.level:02X} (6.12); SW 6700",
                SW_WRONG_LENGTH,
            )
        if data and channel.level & R_ENCRYPTION:
            data = _aes_cbc_encrypt(channel.keys.s_enc, channel.response_icv(), _pad(data))
        return data + channel.r_mac(data, sw_bytes) + sw_bytes


# --- key component blocks for PUT KEY (5.7) ---------------------------------------------------


def encrypt_key_component(dek: bytes, key: bytes, *, length_prefix: bool = False) -> bytes:
    """The key component block of an AES key for PUT KEY under SCP03 (globalplatform.md 5.7).

    The static DEK encrypts the key with AES-CBC and a zero ICV (which for a one-block, 16-byte
    key is the same as AES-ECB); there is no session DEK in SCP03 (6.3). Of the two encodings
    of 5.7 this produces the GPC one (tables 11-70/11-71, pysim): a 16- or 32-byte key is the
    bare ciphertext; a 24-byte key, not a block multiple, becomes its clear length (``18``)
    followed by the ciphertext of the key right-padded with 00. ``length_prefix=True`` gives
    the other encoding, a length byte before every key (``10 <16 bytes>`` as GPPro sends it).
    :func:`decrypt_key_component` reads both.
    """
    dek = _check_aes_key(dek, "DEK")
    key = _check_aes_key(key, "key to encrypt")
    padded = key + bytes(-len(key) % BLOCK)
    block = _aes_cbc_encrypt(dek, _ZERO_BLOCK, padded)
    if length_prefix or len(padded) != len(key):
        return bytes([len(key)]) + block
    return block


def decrypt_key_component(dek: bytes, block: bytes) -> bytes:
    """Recover the clear key from either 5.7 encoding of a key component block.

    A block-multiple length is a bare ciphertext (GPC table 11-71); one byte more is a clear
    length followed by the ciphertext of the padded key (table 11-70, or the GPPro form).
    """
    dek = _check_aes_key(dek, "DEK")
    block = _bytes(block, "key component block")
    if len(block) % BLOCK == 0 and block:
        return _check_aes_key(_aes_cbc_decrypt(dek, _ZERO_BLOCK, block), "decrypted key")
    if len(block) % BLOCK == 1 and len(block) > 1:
        length, body = block[0], block[1:]
        if not length or length > len(body) or len(body) - length >= BLOCK:
            raise KeyMaterialError(
                f"key component block: clear length {length} does not fit "
                f"{len(body)} encrypted bytes"
            )
        return _check_aes_key(_aes_cbc_decrypt(dek, _ZERO_BLOCK, body)[:length], "decrypted key")
    raise KeyMaterialError(
        f"a key component block is 16*k or 1 + 16*k bytes long (5.7), got {len(block)}"
    )
