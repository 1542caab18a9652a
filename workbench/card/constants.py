"""Byte values of the My Number card and its phone token, named once.

Sources: jpki-card.md sections 2 (AIDs), 3 (file maps), 7 (ATRs) and 8 (token profiles).
"""

from __future__ import annotations

# --- Application identifiers (jpki-card.md 2.1) ---------------------------------------------
JPKI_AP_AID = bytes.fromhex("D392F000260100000001")  # 公的個人認証AP
TEXT_AP_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
SURFACE_AP_AID = bytes.fromhex("D3921000310001010402")  # 券面AP (券面事項確認AP)
JUKI_AP_AID = bytes.fromhex("D3921000310001010401")  # 住基AP
COMMON_AP_AID = bytes.fromhex("D3921000310001010100")  # 共通AP
ISD_AID = bytes.fromhex("A0000001510000")  # GlobalPlatform ISD (MODEL, [U] MCARD)

AP_NAMES: dict[bytes, str] = {
    JPKI_AP_AID: "JPKI AP (公的個人認証AP)",
    TEXT_AP_AID: "text AP (券面事項入力補助AP)",
    SURFACE_AP_AID: "surface AP (券面AP)",
    JUKI_AP_AID: "住基AP",
    COMMON_AP_AID: "共通AP",
}

# --- JPKI AP files (jpki-card.md 3.1) -------------------------------------------------------
EF_SIGN_CERT = 0x0001  # 署名用電子証明書
EF_SIGN_CA_CERT = 0x0002  # 署名用CA証明書
EF_TOKEN_INFO = 0x0006  # CK_TOKEN_INFO, 160 bytes
EF_CERT_PRESENCE = 0x0008  # which certificates exist (8F 8F 00)
EF_JPKI_0009 = 0x0009  # protected, purpose unknown
EF_AUTH_CERT = 0x000A  # 利用者証明用電子証明書
EF_AUTH_CA_CERT = 0x000B  # 利用者証明用CA証明書
KEY_IC_PUBLIC = 0x0016  # SET PUBLIC IC KEY key reference
KEY_AUTH = 0x0017  # 利用者証明用秘密鍵
PIN_AUTH = 0x0018  # 利用者証明用暗証番号 (4 digits, 3 tries)
KEY_SIGN = 0x001A  # 署名用秘密鍵
PIN_SIGN = 0x001B  # 署名用パスワード (6-16 chars, 5 tries)

# --- text AP (jpki-card.md 3.3) -------------------------------------------------------------
EF_TEXT_MY_NUMBER = 0x0001
EF_TEXT_BASIC_FOUR = 0x0002
EF_TEXT_SIGNATURE = 0x0003
EF_TEXT_CV_CERT = 0x0004
EF_TEXT_AP_INFO = 0x0005
EF_TEXT_SESSION_KEY = 0x0006
EF_TEXT_SIGNED_KEY = 0x0007
EF_TEXT_0008 = 0x0008
PIN_TEXT = 0x0011  # 券面事項入力補助用暗証番号
PIN_TEXT_BLOCKED = 0x0012  # blocked on every card examined
PIN_TEXT_NUMBER_A = 0x0014  # 照合番号A = 個人番号
PIN_TEXT_NUMBER_B = 0x0015  # 照合番号B

# --- surface AP (jpki-card.md 3.4) ----------------------------------------------------------
EF_SURFACE_AGE = 0x0001
EF_SURFACE_FACE = 0x0002
EF_SURFACE_AP_INFO = 0x0003
EF_SURFACE_CV_CERT = 0x0004
EF_SURFACE_NUMBER_IMAGE = 0x0005
EF_SURFACE_0006 = 0x0006
PIN_SURFACE_BIRTH = 0x0011  # 生年月日 key (era YYMMDD)
PIN_SURFACE_NUMBER_B = 0x0012  # 照合番号B
PIN_SURFACE_NUMBER_A = 0x0013  # 照合番号A

# --- 共通AP / 住基AP (jpki-card.md 3.5) -------------------------------------------------------
EF_COMMON_RECORD = 0x0001
EF_COMMON_KEY_ID = 0x0002
KEY_COMMON_INTERNAL_AUTH = 0x0019
PIN_JUKI = 0x001C  # 住民基本台帳用暗証番号
EF_JUKI_KEY_ID = 0x0002

# --- token labels (jpki-card.md 3.2 and 8) --------------------------------------------------
LABEL_ICC = "JPKIAPICCTOKEN2"
LABEL_GPSE = "JPKIAPGPSETOKEN"
LABEL_IOS = "JPKIAPIOSTOKEN"
LABEL_JUKI = "JPKIAPICCTOKEN"

# --- ATRs (jpki-card.md 7) ------------------------------------------------------------------
ATR_CONTACT = bytes.fromhex("3BDA13FF8131FB468012392F31C173C601C03B")
ATR_CONTACTLESS = bytes.fromhex("3B888001000005E0B381A1007F")
# MODEL: the phone token's ATR is not public; a PC/SC Part 3 contactless ATR whose historical
# bytes spell "WBGPSE" (clearly synthetic, never one of the plastic-card ATRs). The TCK is computed.

# --- MF-level GET DATA tags (jpki-card.md 3.6) ----------------------------------------------
TAG_ISSUER_ID = 0x0042
TAG_CARD_ID = 0x0045  # card identification number (ASCII)
TAG_CARD_RECOGNITION = 0x0066  # GlobalPlatform card recognition data
TAG_MUNICIPALITY = 0x00F0  # 5 ASCII digits
TAG_CARD_EXPIRY = 0x00F2  # YYYYMMDD
TAG_KEY_ID = 0x00F7
TAG_CONTACT_ATR = 0x5F51  # contact ATR without the initial 3B; also answered with an AP selected

# --- DigestInfo prefixes (jpki-card.md 4.5) --------------------------------------------------
#: DER DigestInfo header per hash: clients prepend it to the hash for ``80 2A 00 80`` (the card
#: pads what it gets), and the card recognises it to sign through OpenSSL.
DIGEST_INFO_PREFIXES: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052B0E03021A05000414"),
    "sha224": bytes.fromhex("302D300D06096086480165030402040500041C"),
    "sha256": bytes.fromhex("3031300D060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300D060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300D060960864801650304020305000440"),
}
SHA256_DIGEST_INFO_PREFIX = DIGEST_INFO_PREFIXES["sha256"]
