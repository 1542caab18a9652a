"""ISO/IEC 7816-4 command and response APDUs as immutable values, with no I/O.

Everything that talks to the card - the virtual card's dispatcher, the clients, the tracer -
shares these types, so the byte layout of an APDU is decided in exactly one place. The
encoding rules are those of ISO/IEC 7816-3 section 12.1.3 (cases 1, 2S, 3S, 4S, 2E, 3E, 4E)
and ISO/IEC 7816-4 section 5.1; the status words and their JPKI readings come from
jpki-card.md section 5.

PINs and passwords travel in the data field of VERIFY, CHANGE REFERENCE DATA, RESET RETRY
COUNTER and the JICSAP CHANGE KEY command (jpki-card.md 4.3, 4.4, 3.5). CONVENTIONS.md says they
never appear in logs, traces or reprs, so :class:`CommandAPDU` masks that data field in
``repr``, ``str`` and :meth:`CommandAPDU.masked_hex`.

The virtual card parses every command with :meth:`CommandAPDU.from_bytes` and a benchmark
counts round trips per second, so the codec avoids needless work: no regexes, validation by
a few integer comparisons, and a trusted constructor for values the parser already checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from workbench.errors import APDUError

__all__ = [
    "CLA_PROPRIETARY",
    "INS",
    "SECRET_INS",
    "SW",
    "TRIES_BYTES",
    "CommandAPDU",
    "ResponseAPDU",
    "StatusWord",
    "mask_command",
    "response_meaning",
    "sw_tries_left",
    "tries_from_sw",
    "tries_text",
]


# --- status words ---------------------------------------------------------------------------


class SW(IntEnum):
    """Status words the simulated card and its clients name (jpki-card.md section 5).

    Each member's value is the 16-bit status word (SW1 in the high byte). ``SW.X.bytes`` is the
    two-byte wire form, precomputed once so the card can answer ``data + SW.SUCCESS.bytes``
    without allocating on its hot path.
    """

    SUCCESS = 0x9000  # 5: normal processing
    END_OF_FILE = 0x6282  # 5: end of file before Le bytes (tolerated, not produced, 4.1)
    VERIFY_FAILED = 0x6300  # 5: JICSAP key without retry limit; not seen on JPKI keys
    SESSION_KEY_NOT_SUPPORTED = 0x66F1  # 5 / 3.3: SET SESSION KEY outside the text AP
    WRONG_LENGTH = 0x6700  # 5: bad Lc/Le, bad 80 2A input, 80 FC on a plastic card
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881  # 5 / 2.2: channel other than 0
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882  # 5 / 2.2: SM CLA on SELECT
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981  # 5 / 3.1: READ BINARY on a key or PIN object
    SECURITY_STATUS_NOT_SATISFIED = 0x6982  # 5: credential not verified
    AUTHENTICATION_BLOCKED = 0x6984  # 5 / 4.3: referenced IEF (key) locked
    CONDITIONS_NOT_SATISFIED = 0x6985  # 5: conditions of use not satisfied
    NO_CURRENT_EF = 0x6986  # 5: no current EF (MODEL, jpki/myna dummy card)
    SM_NOT_ALLOWED = 0x69FC  # 5 / 2.2: SM CLA on READ BINARY / VERIFY (JICSAP)
    WRONG_DATA = 0x6A80  # 5: wrong data (bad session key, bad new PIN format)
    FILE_NOT_FOUND = 0x6A82  # 5 / 10: unknown AID or FID
    RECORD_NOT_FOUND = 0x6A83  # 5 / 4.2
    WRONG_P1P2 = 0x6A86  # 5: unsupported P1/P2
    DATA_NOT_FOUND = 0x6A88  # 5 / 3.6: GET DATA object absent
    WRONG_OFFSET = 0x6B00  # 5 / 4.1: READ BINARY offset at or past the end of the EF
    INS_NOT_SUPPORTED = 0x6D00  # 5 / 4.6: unknown INS (MODEL default)
    CLA_NOT_SUPPORTED = 0x6E00  # 5 / 4.6: unknown CLA (MODEL default)
    NO_PRECISE_DIAGNOSIS = 0x6F00  # 5: self-diagnosis error

    @cached_property
    def bytes(self) -> bytes:
        """The status word as transmitted: SW1 then SW2 (ISO 7816-4 5.6)."""
        return int(self).to_bytes(2, "big")

    @staticmethod
    def tries(n: int) -> int:
        """``63 Cx``: failed VERIFY or retry query, ``n`` tries left (jpki-card.md 4.3)."""
        return sw_tries_left(n)


# Fill every member's cached ``bytes`` now, so the first access on the hot path costs nothing.
for _member in SW:
    _member.bytes  # noqa: B018 - evaluated for its caching side effect
del _member

_TRIES_BASE = 0x63C0  # ISO 7816-4 5.6: 63 Cx, x = counter value


def sw_tries_left(n: int) -> int:
    """Return the status word ``63 Cx`` reporting ``n`` remaining tries (jpki-card.md 4.3).

    The counter is a nibble in ISO 7816-4, so only 0..15 can be reported; a value outside that
    range is a programming error in the card model, hence :class:`APDUError`.
    """
    if not 0 <= n <= 15:
        raise APDUError(f"a retry counter must be 0..15 to fit 63 Cx, got {n}")
    return _TRIES_BASE | n


#: ``63 C0`` .. ``63 CF`` as wire bytes, for the card's hot path (jpki-card.md 4.3).
TRIES_BYTES: tuple[bytes, ...] = tuple(bytes((0x63, 0xC0 | n)) for n in range(16))


def tries_text(n: int) -> str:
    """``"1 try"``, ``"3 tries"``: English for a retry counter."""
    return f"{n} try" if n == 1 else f"{n} tries"


def tries_from_sw(sw: int) -> int | None:
    """x of ``63 Cx`` (failed VERIFY or retry query, jpki-card.md 4.3), else None."""
    return sw & 0x0F if sw & 0xFFF0 == _TRIES_BASE else None


# Exact status words: (name, English meaning, Japanese meaning). Members of SW carry the JPKI
# reading of jpki-card.md section 5; the others are ISO 7816-4 (5.6, table 6) readings that a
# trace from another card or a middleware probe may show.
_EXACT: dict[int, tuple[str, str, str]] = {
    SW.SUCCESS: ("SUCCESS", "success", "正常終了"),
    SW.END_OF_FILE: (
        "END_OF_FILE",
        "end of file reached before Le bytes were read",
        "Leバイトを読み出す前にファイルの終端に達した",
    ),
    SW.VERIFY_FAILED: (
        "VERIFY_FAILED",
        "verification failed (key without retry counter)",
        "照合不一致（リトライ回数の制限なし）",
    ),
    SW.SESSION_KEY_NOT_SUPPORTED: (
        "SESSION_KEY_NOT_SUPPORTED",
        "session key not supported by this application",
        "このAPではセッション鍵を設定できない",
    ),
    SW.WRONG_LENGTH: (
        "WRONG_LENGTH",
        "wrong length (Lc, Le or data)",
        "長さ（Lc・Le・データ）が不正",
    ),
    SW.LOGICAL_CHANNEL_NOT_SUPPORTED: (
        "LOGICAL_CHANNEL_NOT_SUPPORTED",
        "logical channel not supported",
        "論理チャネルはサポートされていない",
    ),
    SW.SECURE_MESSAGING_NOT_SUPPORTED: (
        "SECURE_MESSAGING_NOT_SUPPORTED",
        "secure messaging not supported",
        "セキュアメッセージングはサポートされていない",
    ),
    SW.COMMAND_INCOMPATIBLE_WITH_FILE: (
        "COMMAND_INCOMPATIBLE_WITH_FILE",
        "command incompatible with file structure",
        "ファイル構造と矛盾するコマンド",
    ),
    SW.SECURITY_STATUS_NOT_SATISFIED: (
        "SECURITY_STATUS_NOT_SATISFIED",
        "security status not satisfied",
        "セキュリティステータスが満たされていない",
    ),
    SW.AUTHENTICATION_BLOCKED: (
        "AUTHENTICATION_BLOCKED",
        "referenced key (IEF) blocked",
        "参照されたIEFが閉塞",
    ),
    SW.CONDITIONS_NOT_SATISFIED: (
        "CONDITIONS_NOT_SATISFIED",
        "conditions of use not satisfied",
        "コマンドの使用条件が満たされていない",
    ),
    SW.NO_CURRENT_EF: ("NO_CURRENT_EF", "no current EF", "カレントEFが選択されていない"),
    SW.SM_NOT_ALLOWED: (
        "SM_NOT_ALLOWED",
        "secure messaging not allowed for this command",
        "このコマンドではセキュアメッセージングを使えない",
    ),
    SW.WRONG_DATA: (
        "WRONG_DATA",
        "incorrect parameters in the data field",
        "データフィールドのパラメータが不正",
    ),
    SW.FILE_NOT_FOUND: (
        "FILE_NOT_FOUND",
        "file or application not found",
        "ファイルまたはアプリケーションが見つからない",
    ),
    SW.RECORD_NOT_FOUND: ("RECORD_NOT_FOUND", "record not found", "レコードが見つからない"),
    SW.WRONG_P1P2: ("WRONG_P1P2", "incorrect parameters P1-P2", "パラメータP1-P2が不正"),
    SW.DATA_NOT_FOUND: (
        "DATA_NOT_FOUND",
        "referenced data not found",
        "参照されたデータオブジェクトが見つからない",
    ),
    SW.WRONG_OFFSET: (
        "WRONG_OFFSET",
        "wrong parameters P1-P2 (offset beyond the end of the EF)",
        "オフセットがEFの範囲外（P1-P2不正）",
    ),
    SW.INS_NOT_SUPPORTED: (
        "INS_NOT_SUPPORTED",
        "instruction code not supported",
        "命令コード（INS）がサポートされていない",
    ),
    SW.CLA_NOT_SUPPORTED: (
        "CLA_NOT_SUPPORTED",
        "class not supported",
        "クラスバイト（CLA）がサポートされていない",
    ),
    SW.NO_PRECISE_DIAGNOSIS: (
        "NO_PRECISE_DIAGNOSIS",
        "no precise diagnosis (self-diagnosis error)",
        "自己診断異常（原因を特定できない）",
    ),
    # ISO 7816-4 readings that the JPKI card does not produce.
    0x6200: ("WARNING", "warning, no information given", "警告（詳細情報なし）"),
    0x6281: (
        "DATA_MAY_BE_CORRUPTED",
        "part of the returned data may be corrupted",
        "応答データの一部が破損している可能性がある",
    ),
    0x6283: (
        "FILE_DEACTIVATED",
        "selected file deactivated",
        "選択されたファイルは非活性化されている",
    ),
    0x6581: ("MEMORY_FAILURE", "memory failure", "メモリ障害"),
    0x6883: (
        "LAST_COMMAND_EXPECTED",
        "last command of the chain expected",
        "コマンドチェーンの最後のコマンドが必要",
    ),
    0x6884: (
        "CHAINING_NOT_SUPPORTED",
        "command chaining not supported",
        "コマンドチェーンはサポートされていない",
    ),
    0x6983: (
        "AUTHENTICATION_METHOD_BLOCKED",
        "authentication method blocked (not used by the JPKI card)",
        "認証方式が閉塞（JPKIカードでは使われない）",
    ),
    0x6987: (
        "SM_DATA_OBJECTS_MISSING",
        "expected secure-messaging data objects missing",
        "必要なセキュアメッセージングのデータオブジェクトがない",
    ),
    0x6988: (
        "SM_DATA_OBJECTS_INCORRECT",
        "incorrect secure-messaging data objects",
        "セキュアメッセージングのデータオブジェクトが不正",
    ),
    0x6A81: ("FUNCTION_NOT_SUPPORTED", "function not supported", "機能がサポートされていない"),
    0x6A84: (
        "NOT_ENOUGH_MEMORY",
        "not enough memory space in the file",
        "ファイルのメモリ領域が不足",
    ),
    0x6A87: (
        "LC_INCONSISTENT_WITH_P1P2",
        "Lc inconsistent with P1-P2",
        "LcがP1-P2と矛盾している",
    ),
}

# Whole SW1 groups of ISO 7816-4 5.6 (name, English, Japanese), used when no exact entry fits so
# that any 16-bit value has a reading and StatusWord never raises for a well-formed int.
_GROUPS: dict[int, tuple[str, str, str]] = {
    0x62: (
        "WARNING_NVM_UNCHANGED",
        "warning, non-volatile memory unchanged",
        "警告（不揮発メモリは変化なし）",
    ),
    0x63: (
        "WARNING_NVM_CHANGED",
        "warning, non-volatile memory changed",
        "警告（不揮発メモリが変化）",
    ),
    0x64: (
        "EXECUTION_ERROR_NVM_UNCHANGED",
        "execution error, non-volatile memory unchanged",
        "実行エラー（不揮発メモリは変化なし）",
    ),
    0x65: (
        "EXECUTION_ERROR_NVM_CHANGED",
        "execution error, non-volatile memory changed",
        "実行エラー（不揮発メモリが変化）",
    ),
    0x66: ("SECURITY_ERROR", "security-related error", "セキュリティ関連のエラー"),
    0x67: ("WRONG_LENGTH_OTHER", "wrong length", "長さが不正"),
    0x68: (
        "CLA_FUNCTION_NOT_SUPPORTED",
        "function in CLA not supported",
        "CLAで指定された機能がサポートされていない",
    ),
    0x69: ("COMMAND_NOT_ALLOWED", "command not allowed", "コマンドは許可されていない"),
    0x6A: ("WRONG_PARAMETERS", "wrong parameters P1-P2", "パラメータP1-P2が不正"),
    0x6B: ("WRONG_PARAMETERS", "wrong parameters P1-P2", "パラメータP1-P2が不正"),
    0x6D: ("INS_INVALID", "instruction code not supported or invalid", "命令コード（INS）が不正"),
    0x6E: ("CLA_INVALID", "class not supported", "クラスバイト（CLA）がサポートされていない"),
    0x6F: ("INTERNAL_ERROR", "no precise diagnosis", "原因を特定できないエラー"),
}


def _describe(value: int) -> tuple[str, str, str]:
    """(name, English, Japanese) for any 16-bit status word; never raises."""
    exact = _EXACT.get(value)
    if exact is not None:
        return exact
    sw1, sw2 = value >> 8, value & 0xFF
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        # jpki-card.md 4.3: 63 Cx answers a failed VERIFY and the empty retry query alike.
        x = sw2 & 0x0F
        if x == 0:
            return (
                "TRIES_LEFT",
                "verification failed, 0 tries left (blocked)",
                "照合不一致（残り0回、閉塞）",
            )
        return ("TRIES_LEFT", f"verification failed, {tries_text(x)} left", f"照合不一致（残り{x}回）")
    if sw1 == 0x61:
        n = sw2 or 256
        return (
            "BYTES_AVAILABLE",
            f"{n} response bytes still available (GET RESPONSE)",
            f"応答データが残り{n}バイトある（GET RESPONSEで取得）",
        )
    if sw1 == 0x6C:
        n = sw2 or 256
        return ("WRONG_LE", f"wrong Le, exact length is {n}", f"Leが不正（正しい長さは{n}バイト）")
    group = _GROUPS.get(sw1)
    if group is not None:
        name, en, ja = group
        return (name, f"{en} (SW2={sw2:02X})", f"{ja}（SW2={sw2:02X}）")
    if sw1 & 0xF0 == 0x90:
        return (
            "PROPRIETARY",
            "application-specific status",
            "アプリケーション固有のステータス",
        )
    return (
        "UNKNOWN",
        "not an ISO 7816-4 status word",
        "ISO 7816-4のステータスワードではない",
    )


@dataclass(frozen=True)
class StatusWord:
    """A 16-bit status word with its English and Japanese reading (jpki-card.md section 5).

    Traces and notebooks show SW values next to the official Japanese terms, so each value
    carries both; values outside the catalogue fall back to the ISO 7816-4 SW1 group and
    never raise.
    """

    value: int

    def __post_init__(self) -> None:
        value = self.value
        if type(value) is not int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise APDUError(f"a status word must be an int 0..0xFFFF, got {value!r}")
            object.__setattr__(self, "value", int(value))  # SW member -> plain int
        if not 0 <= value <= 0xFFFF:
            raise APDUError(f"a status word must be 0..0xFFFF, got {value:#x}")

    @property
    def sw1(self) -> int:
        """The first status byte (the ISO 7816-4 group)."""
        return self.value >> 8

    @property
    def sw2(self) -> int:
        """The second status byte (the qualifier)."""
        return self.value & 0xFF

    @property
    def is_success(self) -> bool:
        """Only ``90 00`` counts: the card never answers ``61 xx`` (jpki-card.md section 5)."""
        return self.value == SW.SUCCESS

    @property
    def tries_left(self) -> int | None:
        """x of ``63 Cx`` (jpki-card.md 4.3), else None."""
        return tries_from_sw(self.value)

    @property
    def meaning(self) -> str:
        """English reading, lowercase, JPKI-specific where section 5 gives one."""
        return _describe(self.value)[1]

    @property
    def meaning_ja(self) -> str:
        """Japanese reading (for notebooks next to the English one)."""
        return _describe(self.value)[2]

    @property
    def name(self) -> str:
        """The :class:`SW` member name, or a generic group name such as ``TRIES_LEFT``."""
        return _describe(self.value)[0]

    def to_bytes(self) -> bytes:
        """SW1 SW2 as transmitted."""
        return self.value.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> StatusWord:
        """Parse exactly two bytes SW1 SW2."""
        if len(raw) != 2:
            raise APDUError(f"a status word is 2 bytes, got {len(raw)}")
        return cls(raw[0] << 8 | raw[1])

    def __str__(self) -> str:
        return f"{self.value:04X} {self.meaning}"


# --- instruction names ----------------------------------------------------------------------

class INS:
    """Instruction bytes, named once for the whole workbench.

    Interindustry instructions (CLA bit 8 = 0) are those of ISO 7816-4 section 11; the
    proprietary ones (CLA ``80``) are JICSAP commands of the JPKI card (jpki-card.md 3.3, 3.5,
    4.5, 4.6) and GlobalPlatform card content management (globalplatform.md 5). The same byte
    can mean different things in the two classes (``2A`` is PERFORM SECURITY OPERATION in ISO,
    COMPUTE DIGITAL SIGNATURE under CLA 80), so read :attr:`CommandAPDU.ins_name` for a name.
    """

    # interindustry (ISO 7816-4 section 11)
    VERIFY = 0x20  # jpki-card.md 4.3
    CHANGE_REFERENCE_DATA = 0x24  # jpki-card.md 4.4
    RESET_RETRY_COUNTER = 0x2C  # smartphone-service.md 15.2 C11
    MANAGE_CHANNEL = 0x70  # ISO 7816-4 11.1.2 (OMAPI logical channels)
    EXTERNAL_AUTHENTICATE = 0x82  # globalplatform.md 6.5 (CLA 84)
    GET_CHALLENGE = 0x84  # jpki-card.md 4.6
    INTERNAL_AUTHENTICATE = 0x88  # jpki-card.md 3.5, 4.6
    SELECT = 0xA4  # jpki-card.md 2.2
    READ_BINARY = 0xB0  # jpki-card.md 4.1
    READ_RECORD = 0xB2  # jpki-card.md 4.2
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA  # jpki-card.md 3.6; globalplatform.md 5.9
    # proprietary, JICSAP (CLA 80)
    COMPUTE_SIGNATURE = 0x2A  # jpki-card.md 4.5
    CHANGE_KEY = 0x32  # jpki-card.md 3.5
    SET_PUBLIC_IC_KEY = 0xA2  # jpki-card.md 4.6
    SET_SESSION_KEY = 0xAE  # jpki-card.md 3.3
    LAST_COMMAND = 0xFC  # jpki-card.md 4.6 (iPhone profile)
    # proprietary, GlobalPlatform (CLA 80 / 84), globalplatform.md 5
    INITIALIZE_UPDATE = 0x50
    PUT_KEY = 0xD8
    STORE_DATA = 0xE2
    DELETE = 0xE4
    INSTALL = 0xE6
    LOAD = 0xE8
    SET_STATUS = 0xF0
    GET_STATUS = 0xF2


#: CLA bit 8 set = proprietary class (ISO 7816-4 5.4.1): JICSAP and GlobalPlatform commands.
CLA_PROPRIETARY = 0x80
#: CLA bit 3 (``04``): secure messaging, GlobalPlatform's C-MAC (globalplatform.md 6.6).
CLA_SECURE_MESSAGING = 0x04

# P1 / P2 values the card and its readers use, named once.
P1_SELECT_BY_DF_NAME = 0x04  # jpki-card.md 2.2
P1_SELECT_EF = 0x02  # jpki-card.md 2.2: EF or key object under the current DF
P2_NO_RESPONSE_DATA = 0x0C  # jpki-card.md 2.2: no FCI
P1_READ_SFI = 0x80  # jpki-card.md 4.1: P1 = 80 | SFI
SFI_MASK = 0x1F  # jpki-card.md 2.2: SFI = low 5 bits of the FID
P2_CURRENT_KEY = 0x80  # jpki-card.md 4.3, 4.5: the key of the current EF; 80 | SFI names one
P1_CHANGE_NEW_VALUE_ONLY = 0x01  # jpki-card.md 4.4

#: Instructions whose data field is a PIN, password or new reference value (jpki-card.md 4.3,
#: 4.4; ISO 7816-4 11.5.6-11.5.10, odd INS included); CHANGE KEY (``80 32``, 3.5) counts too
#: in the proprietary class (see :attr:`CommandAPDU.sensitive`).
SECRET_INS = frozenset({
    INS.VERIFY, INS.VERIFY + 1,
    INS.CHANGE_REFERENCE_DATA, INS.CHANGE_REFERENCE_DATA + 1,
    INS.RESET_RETRY_COUNTER, INS.RESET_RETRY_COUNTER + 1,
})

# Interindustry instruction names (CLA bit 8 = 0), ISO 7816-4 section 11 and table 4.
_ISO_INS: dict[int, str] = {
    0x04: "DEACTIVATE FILE",
    0x0E: "ERASE BINARY",
    0x20: "VERIFY",
    0x21: "VERIFY",
    0x22: "MANAGE SECURITY ENVIRONMENT",
    0x24: "CHANGE REFERENCE DATA",
    0x25: "CHANGE REFERENCE DATA",
    0x26: "DISABLE VERIFICATION REQUIREMENT",
    0x28: "ENABLE VERIFICATION REQUIREMENT",
    0x2A: "PERFORM SECURITY OPERATION",
    0x2C: "RESET RETRY COUNTER",
    0x2D: "RESET RETRY COUNTER",
    0x44: "ACTIVATE FILE",
    0x46: "GENERATE ASYMMETRIC KEY PAIR",
    0x70: "MANAGE CHANNEL",
    0x82: "EXTERNAL AUTHENTICATE",
    0x84: "GET CHALLENGE",
    0x86: "GENERAL AUTHENTICATE",
    0x87: "GENERAL AUTHENTICATE",
    0x88: "INTERNAL AUTHENTICATE",
    0xA0: "SEARCH BINARY",
    0xA2: "SEARCH RECORD",
    0xA4: "SELECT",
    0xB0: "READ BINARY",
    0xB1: "READ BINARY",
    0xB2: "READ RECORD",
    0xB3: "READ RECORD",
    0xC0: "GET RESPONSE",
    0xC2: "ENVELOPE",
    0xCA: "GET DATA",
    0xCB: "GET DATA",
    0xD0: "WRITE BINARY",
    0xD6: "UPDATE BINARY",
    0xDA: "PUT DATA",
    0xDC: "UPDATE RECORD",
    0xE0: "CREATE FILE",
    0xE2: "APPEND RECORD",
    0xE4: "DELETE FILE",
}

# Proprietary class (CLA bit 8 = 1): JICSAP commands of the JPKI card and GlobalPlatform
# card-management commands, by the names of :class:`INS`.
_PROPRIETARY_INS: dict[int, str] = {
    INS.COMPUTE_SIGNATURE: "COMPUTE DIGITAL SIGNATURE",
    INS.CHANGE_KEY: "CHANGE KEY",
    INS.SET_PUBLIC_IC_KEY: "SET PUBLIC IC KEY",
    INS.SET_SESSION_KEY: "SET SESSION KEY",
    INS.LAST_COMMAND: "LAST COMMAND",
    INS.INITIALIZE_UPDATE: "INITIALIZE UPDATE",
    INS.EXTERNAL_AUTHENTICATE: "EXTERNAL AUTHENTICATE",
    INS.GET_DATA: "GET DATA",
    INS.PUT_KEY: "PUT KEY",
    INS.STORE_DATA: "STORE DATA",
    INS.DELETE: "DELETE",
    INS.INSTALL: "INSTALL",
    INS.LOAD: "LOAD",
    INS.SET_STATUS: "SET STATUS",
    INS.GET_STATUS: "GET STATUS",
}

_SHORT_MAX_LC = 0xFF
_SHORT_MAX_LE = 0x100
_EXTENDED_MAX_LC = 0xFFFF
_EXTENDED_MAX_LE = 0x10000
_MAX_DF_NAME = 16  # ISO 7816-4 8.2.1.1: DF names are 1..16 bytes

_new_object = object.__new__
_SINGLE_BYTE = tuple(bytes((i,)) for i in range(256))  # avoids an allocation per Le byte


@dataclass(frozen=True, repr=False)
class CommandAPDU:
    """A command APDU (ISO 7816-4 5.1) as semantic fields, independent of its wire form.

    ``le`` is the number of bytes expected, 1..65536, or None for no Le field; 256 travels as
    ``00`` in the short form and 65536 as ``00 00`` in the extended form (ISO 7816-3 12.1.3).
    ``extended=False`` asks for the short form when it can carry the APDU; the constructor
    sets ``extended`` to True when it cannot (Lc > 255 or Le > 256), so after construction the
    flag always says how :meth:`to_bytes` encodes the APDU and a parsed APDU compares equal to
    the object it was encoded from. Case 1 has no length field, so ``extended`` is False there.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        try:
            bad_header = (self.cla | self.ins | self.p1 | self.p2) >> 8
        except TypeError:
            raise APDUError(
                f"CLA, INS, P1, P2 must be ints, got {self.cla!r} {self.ins!r} "
                f"{self.p1!r} {self.p2!r}"
            ) from None
        if bad_header:
            raise APDUError(
                f"CLA, INS, P1, P2 must each be 0..255, got {self.cla} {self.ins} "
                f"{self.p1} {self.p2}"
            )
        data = self.data
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise APDUError(f"APDU data must be bytes, got {type(data).__name__}")
            data = bytes(data)
            object.__setattr__(self, "data", data)
        size = len(data)
        if size > _EXTENDED_MAX_LC:
            raise APDUError(f"APDU data of {size} bytes exceeds the extended maximum of 65535")
        le = self.le
        if le is not None:
            if type(le) is not int and (not isinstance(le, int) or isinstance(le, bool)):
                raise APDUError(f"Le must be an int 1..65536 or None, got {le!r}")
            if not 1 <= le <= _EXTENDED_MAX_LE:
                raise APDUError(
                    f"Le must be 1..65536 (256 is sent as 00), or None for no Le; got {le}"
                )
        if self.extended:
            if not size and le is None:
                object.__setattr__(self, "extended", False)
        elif size > _SHORT_MAX_LC or (le is not None and le > _SHORT_MAX_LE):
            object.__setattr__(self, "extended", True)

    @classmethod
    def _trusted(
        cls, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None, extended: bool
    ) -> CommandAPDU:
        """Build from fields the parser has already proven valid, skipping ``__post_init__``.

        The fields are written into the instance dict directly, which is what the frozen
        dataclass ``__init__`` does too, minus the checks.
        """
        self = _new_object(cls)
        fields = self.__dict__
        fields["cla"] = cla
        fields["ins"] = ins
        fields["p1"] = p1
        fields["p2"] = p2
        fields["data"] = data
        fields["le"] = le
        fields["extended"] = extended
        return self

    # --- codec --------------------------------------------------------------------------

    @property
    def case(self) -> int:
        """ISO 7816-3 12.1.3 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 3 if self.le is None else 4
        return 1 if self.le is None else 2

    def to_bytes(self) -> bytes:
        """Encode per ISO 7816-3 12.1.3, short form unless ``extended`` (see class doc)."""
        data = self.data
        le = self.le
        if not self.extended:
            if data:
                out = bytes((self.cla, self.ins, self.p1, self.p2, len(data))) + data
                return out if le is None else out + _SINGLE_BYTE[le & 0xFF]  # 256 -> 00
            if le is None:
                return bytes((self.cla, self.ins, self.p1, self.p2))
            return bytes((self.cla, self.ins, self.p1, self.p2, le & 0xFF))
        out = bytes((self.cla, self.ins, self.p1, self.p2, 0))
        if data:
            out += len(data).to_bytes(2, "big") + data
        if le is not None:
            out += (le & 0xFFFF).to_bytes(2, "big")  # 65536 -> 00 00
        return out

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandAPDU:
        """Parse the seven cases of ISO 7816-3 12.1.3; anything else raises :class:`APDUError`.

        The body after the 4-byte header decides the case: empty is case 1; one byte is 2S;
        a first byte B1 != 0 is a short Lc (3S when exactly B1 bytes follow, 4S when one more
        Le byte follows); B1 = 0 with two more bytes is 2E; otherwise ``00 Lc1 Lc2`` is an
        extended Lc (> 0) followed by the data and optionally a 2-byte Le (3E / 4E). Every
        other length, including trailing bytes, is impossible.
        """
        if type(raw) is not bytes:
            try:
                raw = bytes(raw)
            except TypeError:
                raise APDUError(f"an APDU must be bytes, got {type(raw).__name__}") from None
        body = len(raw) - 4
        if body < 0:
            raise APDUError(f"an APDU needs the 4-byte header CLA INS P1 P2, got {len(raw)} bytes")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if body == 0:  # case 1
            return cls._trusted(cla, ins, p1, p2, b"", None, False)
        b1 = raw[4]
        if body == 1:  # case 2S
            return cls._trusted(cla, ins, p1, p2, b"", b1 or _SHORT_MAX_LE, False)
        if b1:
            if body == 1 + b1:  # case 3S
                return cls._trusted(cla, ins, p1, p2, raw[5:], None, False)
            if body == 2 + b1:  # case 4S
                return cls._trusted(cla, ins, p1, p2, raw[5:-1], raw[-1] or _SHORT_MAX_LE, False)
            raise APDUError(
                f"short Lc={b1} needs {b1} data bytes (+1 for Le), but {body - 1} bytes follow"
            )
        if body == 3:  # case 2E
            le = (raw[5] << 8 | raw[6]) or _EXTENDED_MAX_LE
            return cls._trusted(cla, ins, p1, p2, b"", le, True)
        if body < 3:
            raise APDUError(f"extended length field truncated: 00 then {body - 1} byte(s)")
        lc = raw[5] << 8 | raw[6]
        if lc == 0:
            raise APDUError(f"extended Lc=0000 is invalid, yet {body - 3} bytes follow it")
        if body == 3 + lc:  # case 3E
            return cls._trusted(cla, ins, p1, p2, raw[7:], None, True)
        if body == 5 + lc:  # case 4E
            le = (raw[-2] << 8 | raw[-1]) or _EXTENDED_MAX_LE
            return cls._trusted(cla, ins, p1, p2, raw[7:-2], le, True)
        raise APDUError(
            f"extended Lc={lc} needs {lc} data bytes (+2 for Le), but {body - 3} bytes follow"
        )

    # --- reading ------------------------------------------------------------------------

    @property
    def sensitive(self) -> bool:
        """True when the data field is a PIN, password or new reference value.

        VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER in any class (jpki-card.md 4.3,
        4.4), and the JICSAP CHANGE KEY ``80 32`` of the 共通AP / 住基AP (3.5).
        """
        ins = self.ins
        return ins in SECRET_INS or (ins == INS.CHANGE_KEY and bool(self.cla & CLA_PROPRIETARY))

    @property
    def ins_name(self) -> str:
        """Human name of the instruction; the class bit decides between ISO and proprietary.

        Proprietary classes (CLA 80..FE) look up JICSAP and GlobalPlatform names first and fall
        back to the ISO name; an unknown instruction reads ``INS xx``.
        """
        ins = self.ins
        if self.cla & CLA_PROPRIETARY:
            name = _PROPRIETARY_INS.get(ins)
            if name is not None:
                return name
        return _ISO_INS.get(ins) or f"INS {ins:02X}"

    def _length_fields(self) -> tuple[bytes, bytes]:
        """(header + Lc field, Le field) of the wire form, without the data."""
        data = self.data
        le = self.le
        head = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.extended:
            head += b"\x00"
            if data:
                head += len(data).to_bytes(2, "big")
            tail = b"" if le is None else (le & 0xFFFF).to_bytes(2, "big")
        else:
            if data:
                head += bytes((len(data),))
            tail = b"" if le is None else bytes((le & 0xFF,))
        return head, tail

    def masked_hex(self) -> str:
        """Uppercase hex of the wire bytes, with a secret data field shown as ``**`` per byte.

        Traces and logs use this form, so a PIN never reaches them (CONVENTIONS.md, Data and
        safety). The data bytes of a sensitive command are never converted to text here.
        """
        if not (self.data and self.sensitive):
            return self.to_bytes().hex().upper()
        head, tail = self._length_fields()
        return head.hex().upper() + "**" * len(self.data) + tail.hex().upper()

    def _data_text(self, limit: int = 32) -> str:
        data = self.data
        if self.sensitive:
            return f"data=<masked, {len(data)} bytes>"
        if len(data) <= limit:
            return f"data={data.hex().upper()}"
        return f"data={data[:limit].hex().upper()}... ({len(data)} bytes)"

    def __repr__(self) -> str:
        data = self.data
        if self.sensitive and data:
            shown = f"<{len(data)} bytes masked>"
        else:
            shown = f"bytes.fromhex({data.hex().upper()!r})" if data else "b''"
        return (
            f"CommandAPDU(cla=0x{self.cla:02X}, ins=0x{self.ins:02X}, p1=0x{self.p1:02X}, "
            f"p2=0x{self.p2:02X}, data={shown}, le={self.le!r}, extended={self.extended!r})"
        )

    def __str__(self) -> str:
        """One line for traces, e.g. ``SELECT by DF name D392F000260100000001``.

        Sensitive data is shown only as its length.
        """
        cla, ins, p1, p2, data, le = self.cla, self.ins, self.p1, self.p2, self.data, self.le
        parts: list[str] = []
        if cla not in (0x00, CLA_PROPRIETARY):
            parts.append(f"CLA={cla:02X}")
        parts.append(self.ins_name)
        proprietary = bool(cla & CLA_PROPRIETARY)
        if not proprietary and ins == INS.SELECT:
            if p1 == P1_SELECT_BY_DF_NAME:
                parts.append(f"by DF name {data.hex().upper()}")
            elif p1 in (0x00, 0x01, P1_SELECT_EF) and len(data) == 2:
                parts.append(f"FID {data.hex().upper()}" + ("" if p1 == 0x02 else f" P1={p1:02X}"))
            else:
                parts.append(f"P1={p1:02X}")
                if data:
                    parts.append(self._data_text())
            if p2 != P2_NO_RESPONSE_DATA:
                parts.append(f"P2={p2:02X}")
        elif not proprietary and ins == INS.READ_BINARY:
            if p1 & 0x80:
                parts.append(f"SFI={p1 & 0x1F:02X} offset=0x{p2:02X}")
            else:
                parts.append(f"offset=0x{(p1 << 8) | p2:04X}")
            if data:
                parts.append(self._data_text())
        elif not proprietary and ins == INS.VERIFY:
            if p1:
                parts.append(f"P1={p1:02X}")
            parts.append(f"P2={p2:02X}")
            parts.append(self._data_text() if data else "(retry-counter query)")
        else:
            parts.append(f"P1={p1:02X} P2={p2:02X}")
            if data:
                parts.append(self._data_text())
        if le is not None:
            parts.append(f"Le={le}")
        if self.extended:
            parts.append("[extended]")
        return " ".join(parts)

    # --- convenience constructors -------------------------------------------------------

    @classmethod
    def select_df(cls, aid: bytes) -> CommandAPDU:
        """``00 A4 04 0C Lc <AID>``: select an application by DF name (jpki-card.md 2.2)."""
        if not 1 <= len(aid) <= _MAX_DF_NAME:
            raise APDUError(f"a DF name (AID) is 1..16 bytes, got {len(aid)}")
        return cls(0x00, INS.SELECT, P1_SELECT_BY_DF_NAME, P2_NO_RESPONSE_DATA, bytes(aid))

    @classmethod
    def select_ef(cls, fid: int) -> CommandAPDU:
        """``00 A4 02 0C 02 <FID>``: select an EF or key object in the current AP (2.2)."""
        if not 0 <= fid <= 0xFFFF:
            raise APDUError(f"a file identifier is 0..0xFFFF, got {fid:#x}")
        return cls(
            0x00,
            INS.SELECT,
            P1_SELECT_EF,
            P2_NO_RESPONSE_DATA,
            fid.to_bytes(2, "big"),
        )

    @classmethod
    def read_binary(cls, offset: int = 0, le: int = 256, *, sfi: int | None = None) -> CommandAPDU:
        """``00 B0 P1 P2 Le`` (jpki-card.md 4.1).

        Without ``sfi`` the offset is 15 bits in P1-P2; with ``sfi`` P1 = ``80 | SFI`` and the
        offset is 8 bits in P2. ``le`` = 256 is sent as ``00``.
        """
        if sfi is None:
            if not 0 <= offset <= 0x7FFF:
                raise APDUError(f"a READ BINARY offset is 0..0x7FFF, got {offset:#x}")
            return cls(0x00, INS.READ_BINARY, offset >> 8, offset & 0xFF, b"", le)
        if not 1 <= sfi <= 30:
            raise APDUError(f"a short EF identifier is 1..30, got {sfi}")
        if not 0 <= offset <= 0xFF:
            raise APDUError(f"with an SFI the READ BINARY offset is 0..0xFF, got {offset:#x}")
        return cls(0x00, INS.READ_BINARY, 0x80 | sfi, offset, b"", le)

    @classmethod
    def verify(cls, p2: int = P2_CURRENT_KEY, pin: bytes | None = None) -> CommandAPDU:
        """``00 20 00 P2 [Lc PIN]`` (jpki-card.md 4.3); ``pin=None`` is the retry query (case 1).

        The PIN is raw ASCII with no padding; pass it as ``pin=``.
        """
        if not isinstance(p2, int):
            raise APDUError("verify(): p2 must be an int; pass the PIN as pin=...")
        if pin is None:
            return cls(0x00, INS.VERIFY, 0x00, p2)
        if not pin:
            raise APDUError("verify(): an empty PIN is the retry query; pass pin=None for it")
        return cls(0x00, INS.VERIFY, 0x00, p2, bytes(pin))

    @classmethod
    def change_reference_data(cls, new: bytes, p2: int = P2_CURRENT_KEY) -> CommandAPDU:
        """``00 24 01 80 Lc <new value>`` after VERIFY (jpki-card.md 4.4)."""
        if not new:
            raise APDUError("change_reference_data(): the new value must not be empty")
        return cls(0x00, INS.CHANGE_REFERENCE_DATA, P1_CHANGE_NEW_VALUE_ONLY, p2, bytes(new))

    @classmethod
    def change_key(cls, new: bytes, p2: int = P2_CURRENT_KEY) -> CommandAPDU:
        """``80 32 00 80 Lc <new>``: JICSAP CHANGE KEY of the 共通AP / 住基AP (jpki-card.md 3.5)."""
        if not new:
            raise APDUError("change_key(): the new value must not be empty")
        return cls(CLA_PROPRIETARY, INS.CHANGE_KEY, 0x00, p2, bytes(new))

    @classmethod
    def compute_signature(
        cls, data: bytes, p1: int = 0x00, p2: int = P2_CURRENT_KEY
    ) -> CommandAPDU:
        """``80 2A P1 P2 Lc <data> 00`` (jpki-card.md 4.5): sign with the current key, Le=256."""
        if not data:
            raise APDUError("compute_signature(): the data to sign must not be empty")
        return cls(CLA_PROPRIETARY, INS.COMPUTE_SIGNATURE, p1, p2, bytes(data), 256)

    @classmethod
    def get_challenge(cls, n: int = 8) -> CommandAPDU:
        """``00 84 00 00 Le``: ask for ``n`` random bytes (jpki-card.md 4.6)."""
        return cls(0x00, INS.GET_CHALLENGE, 0x00, 0x00, b"", n)


@dataclass(frozen=True)
class ResponseAPDU:
    """A response APDU: optional data followed by SW1 SW2 (ISO 7816-4 5.1)."""

    data: bytes
    sw: int

    def __post_init__(self) -> None:
        data = self.data
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise APDUError(f"response data must be bytes, got {type(data).__name__}")
            object.__setattr__(self, "data", bytes(data))
        sw = self.sw
        if type(sw) is not int:
            if not isinstance(sw, int) or isinstance(sw, bool):
                raise APDUError(f"a status word must be an int 0..0xFFFF, got {sw!r}")
            object.__setattr__(self, "sw", int(sw))
        if not 0 <= sw <= 0xFFFF:
            raise APDUError(f"a status word must be 0..0xFFFF, got {sw:#x}")

    @property
    def sw1(self) -> int:
        """First status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """Second status byte."""
        return self.sw & 0xFF

    @property
    def status(self) -> StatusWord:
        """The status word with its readings."""
        return StatusWord(self.sw)

    @property
    def is_success(self) -> bool:
        """True for ``90 00`` only (jpki-card.md section 5)."""
        return self.sw == SW.SUCCESS

    def to_bytes(self) -> bytes:
        """Data then SW1 SW2."""
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseAPDU:
        """Split the trailing two status bytes off; fewer than 2 bytes is no response."""
        if len(raw) < 2:
            raise APDUError(f"a response APDU needs at least SW1 SW2, got {len(raw)} bytes")
        raw = bytes(raw)
        return cls(raw[:-2], raw[-2] << 8 | raw[-1])

    def __str__(self) -> str:
        size = len(self.data)
        sized = "" if not size else f" ({size} byte{'s' if size != 1 else ''})"
        return f"{self.sw1:02X} {self.sw2:02X}{sized} {self.status.meaning}"


def mask_command(raw: bytes) -> str:
    """Uppercase hex of any command bytes with a PIN-bearing data field as ``**`` per byte.

    The one place that masks secrets for display: traces, the command line and DataFrames all
    call it. A well-formed APDU is masked by :meth:`CommandAPDU.masked_hex`. A malformed one
    whose instruction carries secrets (VERIFY, CHANGE ...) is masked from byte 5 on, length
    field included, because its data field cannot be located reliably.
    """
    raw = bytes(raw)
    try:
        return CommandAPDU.from_bytes(raw).masked_hex()
    except APDUError:
        pass
    if len(raw) > 4 and CommandAPDU(raw[0], raw[1], raw[2], raw[3]).sensitive:
        return raw[:4].hex().upper() + "**" * (len(raw) - 4)
    return raw.hex().upper()


def response_meaning(command: CommandAPDU | None, sw: int) -> tuple[str, str, str]:
    """(name, English, Japanese) of ``sw`` as the answer to ``command``.

    The same ``63 Cx`` answers a failed VERIFY and the empty VERIFY that only asks the retry
    counter (jpki-card.md 4.3); after the query it is no failure, so it reads "retry-counter
    query: 3 tries left". Everything else reads as :class:`StatusWord` does.
    """
    left = tries_from_sw(sw)
    if (left is not None and command is not None and command.ins == INS.VERIFY
            and not command.cla & CLA_PROPRIETARY and not command.data):
        blocked = " (blocked)" if left == 0 else ""
        return ("TRIES_LEFT", f"retry-counter query: {tries_text(left)} left{blocked}",
                f"残り回数の照会：残り{left}回" + ("（閉塞）" if left == 0 else ""))
    return _describe(sw)
