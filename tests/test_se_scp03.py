"""SCP03 (workbench.se.scp03) against the published vectors of globalplatform.md section 7, and
host <-> card behaviour of sections 6.4 to 6.12.

Every expected byte string below is copied from globalplatform.md 7 (which reproduces osmocom/pysim
``tests/unittests/test_globalplatform.py``, miketlk/omfgp ``tests/omfgp/scp03_test.py`` and
GlobalPlatformPro ``TestSCP03.java`` / ``TestPlaintextKeys.java``), or computed in the test with
``cryptography`` directly from a rule of section 6, never from the module's own output.

Card side and the pysim card challenges: the pysim vectors come from a card with i = 70
(pseudo-random challenge). Their card challenges are exactly KDF(static ENC, constant 02,
sequence counter || AID) with the eUICC ISD-R AID ``A0000005591010FFFFFFFF8900000100`` (GSMA
SGP.02/SGP.22) and the counter printed in the answer, so :class:`CardSession` reproduces the
nine answers byte for byte with that AID, without any injected challenge.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import APDUError, WorkbenchError
from workbench.se import scp03
from workbench.se.scp03 import (
    C_DECRYPTION,
    C_MAC,
    CARD_CHALLENGE,
    CARD_CRYPTOGRAM,
    HOST_CRYPTOGRAM,
    PSEUDO_RANDOM_CHALLENGE,
    R_ENCRYPTION,
    R_MAC,
    RENC_SUPPORTED,
    RMAC_SUPPORTED,
    S16_MODE,
    S_ENC,
    S_MAC,
    S_RMAC,
    CardCryptogramError,
    CardSession,
    DecryptionError,
    HostCryptogramError,
    HostSession,
    InitializeUpdateError,
    KeyMaterialError,
    MacError,
    PayloadTooLongError,
    SecureChannelError,
    SecurityLevelError,
    SessionKeys,
    SessionStateError,
    StaticKeys,
    check_security_level,
    decrypt_key_component,
    derive_session_keys,
    diversify_kdf3,
    encrypt_key_component,
    host_cryptogram,
    kdf,
    key_check_value,
    max_command_payload,
    max_response_payload,
    pseudo_random_card_challenge,
)

h = bytes.fromhex

# --- independent oracles: the rules of section 6 written with `cryptography` directly ------------


def cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def aes_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


# --- globalplatform.md 7.1: osmocom/pysim test_globalplatform.py --------------------------------

KEYS_128 = StaticKeys(
    enc=h("000102030405060708090A0B0C0D0E0F"),
    mac=h("101112131415161718191A1B1C1D1E1F"),
    dek=h("202122232425262728292A2B2C2D2E2F"),
    kvn=0x30,
)
KEYS_192 = StaticKeys(
    enc=h("000102030405060708090A0B0C0D0E0F0001020304050607"),
    mac=h("101112131415161718191A1B1C1D1E1F1011121314151617"),
    dek=h("202122232425262728292A2B2C2D2E2F2021222324252627"),
    kvn=0x31,
)
KEYS_256 = StaticKeys(
    enc=h("000102030405060708090A0B0C0D0E0F000102030405060708090A0B0C0D0E0F"),
    mac=h("101112131415161718191A1B1C1D1E1F101112131415161718191A1B1C1D1E1F"),
    dek=h("202122232425262728292A2B2C2D2E2F202122232425262728292A2B2C2D2E2F"),
    kvn=0x32,
)
#: GSMA eUICC ISD-R AID: the pysim card challenges follow from it (module docstring).
ISD_R_AID = h("A0000005591010FFFFFFFF8900000100")

GET_EID_PLAIN = h("80E2910006BF3E035C015A00")
GET_EID_RESPONSE_PLAIN = h("BF3E125A1089882119900000000000000000000005")
CASES_PLAIN = [
    h("80F22002"),  # case 1
    h("80CA006600"),  # case 2
    h("80F220020A4F0212345C054F9F70C5"),  # case 3
    h("80F28002024F0000"),  # case 4
]


@dataclass(frozen=True)
class PysimCase:
    name: str
    keys: StaticKeys
    init_update: str
    response: str  # without SW 9000
    external_authenticate: str
    s_enc: str
    s_mac: str
    s_rmac: str
    host_cryptogram: str
    get_eid_wrapped: str
    get_eid_response: str  # data part as sent by the card; SW 9000 follows
    wrapped: tuple[str, str, str, str]  # cases 1..4

    @property
    def level(self) -> int:
        return h(self.external_authenticate)[2]

    @property
    def host_challenge(self) -> bytes:
        return h(self.init_update)[5:13]


PYSIM = [
    PysimCase(
        "AES128_11", KEYS_128,
        "8050300008B13E5F938FC108C400",
        "000000000000000000003003703EB51047495B249F66C484C1D2EF1948000002",
        "84821100107D5F5826A993EBC89EEA24957FA0B3CE",
        "C4E87149F2114DA66BB015A567D751F9", "8B2635556E987A6B84F43D9FFC197D3F",
        "3F6B2CE3B3ABD9A99BD4453AFA54CC7B", "7D5F5826A993EBC8",
        "84E291000EBF3E035C015A558D036518A2829700",
        "BF3E125A1089882119900000000000000000000005971BE68992DBBDFA",
        ("84F220020863A63F8959827FB2", "84CA006608A0C6A4A74166F7CE00",
         "84F22002124F0212345C054F9F70C52249B50272656536", "84F280020A4F00E91443F6DCE6B8ED00"),
    ),
    PysimCase(
        "AES128_03", KEYS_128,
        "80503000088E1552D0513C60F300",
        "0000000000000000000030037030760CD2C47C1DD395065FE5EAD8A9D7000001",
        "8482030010FD4721A14D9B07003C451D2F8AE6BB21",
        "EE54985E150155E021725489F717D645", "59B76DDFF91DBA0515A9644DE3A48863",
        "5942BF778C5942F17037DA8278F9330D", "FD4721A14D9B0700",
        "84E2910018CA9C00F6713D79BC8BAA642BDFF51C3F6A4082D3BD9AD26C00",
        "BF3E125A1089882119900000000000000000000005",
        ("84F2200208C9811B11F1264CF1", "84CA006608E10AB60B3054798800",
         "84F22002184E2908BDB48B2315A55482E9E936CA122D6ECFAE7D17416E",
         "84F28002180DD10A6B6193E5340B9E77D32D5A179CD710AC2773AEFB2800"),
    ),
    PysimCase(
        "AES128_33", KEYS_128,
        "8050300008FDF38259A1E0DE4400",
        "000000000000000000003003703B1ACA81E821F219081CDC01C26B372D000003",
        "84823300108C36F96BCC00724A4E13AD591D7DA3F0",
        "BC5689F3A0B783A9ED6DA1C5C6BC1F99", "0415F56CBB9E488BB171B2B66081F004",
        "1EE185123244E047BC9D68B914BD1FBE", "8C36F96BCC00724A",
        "84E2910018267A85DFE4A98FCA6FB0527E0DFECCE4914E40401433C87F00",
        "F3BA2B1013AA6224F5E1C138D71805C569E5439B47576260B75FC021B25097CB2E68F8A0144975B9",
        ("84F2200208AC6A59024BED84CC", "84CA006608409912AD8FB7AED000",
         "84F22002185F3DAFC3AC14C381536A488BF44E06D056DF9D74DBD21E5A",
         "84F280021865165105BE3373347D0424D4400AF2AC393F569EC779389E00"),
    ),
    PysimCase(
        "AES192_11", KEYS_192,
        "80503100087396430B768B085B00",
        "000000000000000000003103708CFC23522FFDBF1E5DF5542CAC8FD866000003",
        "84821100102145ED30B146F5DB252FB7E624CEC244",
        "5D762F02330099944561311FF1FD370B34193A3FF81302C0",
        "15E4303D3157D8D1DD283B7321434AE83FC80AC9B12E3DAF",
        "16593381D17CC862B4C89C7AA419159E98AEC1931878B8DC", "2145ED30B146F5DB",
        "84E291000EBF3E035C015AFF42CF801D14394400",
        "BF3E125A1089882119900000000000000000000005162FBD33E04940A9",
        ("84F22002084584E4F6784811EE", "84CA006608937776EBE190FA3000",
         "84F22002124F0212345C054F9F70C59A52BDDF3040368C", "84F280020A4F009804B11411F7393D00"),
    ),
    PysimCase(
        "AES192_03", KEYS_192,
        "805031000869C65DA8202BF19F00",
        "00000000000000000000310370B570A67BE38446717729D6DD3D2EC5B1000001",
        "848203001065DF4F1A356A887905466516D9E5B7C1",
        "E78B05673692B6118B071B95C868BBD830CC494B3A6FE612",
        "787C55691BF5F22F567F8905B9B74242DC6C92A94F050232",
        "837F6CA80C26530764DE995A5FDE593B99541B7D8CE56993", "65DF4F1A356A8879",
        "84E2910018D2C6FB477C5D4AFE4FD4D21F17EFF10D3578EC1774A12A2D00",
        "BF3E125A1089882119900000000000000000000005",
        ("84F2200208964E188F0B1BB697", "84CA006608F0820035A41D3E1800",
         "84F220021806B076ED452CD1FA84F77F5C08A146AA77A9286757DEA791",
         "84F2800218D06527E39222DCE091FABDB8E9B898417A67A6852D3577DB00"),
    ),
    PysimCase(
        "AES192_33", KEYS_192,
        "80503100089B3F2EEF0E8C937400",
        "00000000000000000000310370F6BB305A15BAE1A68F79FB08212FBED7000002",
        "84823300109100BC22D58B45B86A26365CE39FF3CF",
        "5FD0334949E96371AE7F911EA940355AB1B041597E2F61CA",
        "436682192FFC13C9399CA38C1ADAC01498EC77FE1FB560A9",
        "6BEBF8D1C79677A132BD21BF2A8C389374AD0BF323D420CD", "9100BC22D58B45B8",
        "84E29100188F7F946C84F70D17994BC6E8791251BB1BB1BF02CF8DE58900",
        "C05176C1B6F72AAE50C32CBEE63B0E95998928FD4DFB2BE9F27FFDE8C8476F5909B4805CC4039599",
        ("84F2200208D5D97754B6B3D2BA", "84CA006608516C82B8E30ADBEB00",
         "84F2200218CC247F4761E6944277A4E0D6E32E44025B1E31537E2FC668",
         "84F2800218BA22B63D509BEF5D093B43E5EAED03ED23144AB2D9CB51DE00"),
    ),
    PysimCase(
        "AES256_11", KEYS_256,
        "805032000811666D57866C6F5400",
        "0000000000000000000032037053EA8847EFA7674E41498A4D66CF0DEE000003",
        "84821100102F2AD190EFF2FAFC4908996D1CEBD310",
        "DA77FFF6D3EBEAA1234F93F2B18E6F83BADA80ADB387428CE72779439AFCAF57",
        "80546FE2B8E72587EFA3F1BE7DF30B0FB0146B795F8F131D8B32AC5200F5DBEC",
        "93588976672E495ED15722A87AE812721674CF94E6D52527DA352174C7141A4C", "2F2AD190EFF2FAFC",
        "84E291000EBF3E035C015AF4B680372542B59D00",
        "BF3E125A10898821199000000000000000000000058012DD7F01F1C4C1",
        ("84F2200208D618B7DA68D5FE52", "84CA0066088F3E055DB23AD5E500",
         "84F22002124F0212345C054F9F70C5B6E15CC42404915E", "84F280020A4F00AA124AA74AFE7F7500"),
    ),
    PysimCase(
        "AES256_03", KEYS_256,
        "8050320008C6066990FC426E1D00",
        "000000000000000000003203708682CD81BBD8919F2DE3F2664581F118000001",
        "848203001077C493B632EDADAF865A1E64ACC07CE9",
        "0CCC0E11AFCD50448D469EFE08307FBB87E8B3E148317052C519177A3C491628",
        "309B7E14A014A190DD01E21756A8010D01568B058971F803F7D77BE42C6CB45B",
        "5461EA3084061021F84BA70E655E0A6A3F5618A272BB0FD86D2C057F7BB332E2", "77C493B632EDADAF",
        "84E29100183DDAA60594963BEFAADA3525B492EDE23C2AB2C1CE3AFE4400",
        "BF3E125A1089882119900000000000000000000005",
        ("84F2200208480DDC8E419DA38D", "84CA0066083E9D6A6C0B2D732000",
         "84F22002183EBFEF2DA8B04AF2A85F491F299B76973DF76FF08A4031BE",
         "84F2800218783FFF80990F5585B1055010EA95094A26E4A8F1EF4B18E100"),
    ),
    PysimCase(
        "AES256_33", KEYS_256,
        "805032000897B2055FE58599FD00",
        "00000000000000000000320370A8439A22CEDF045FA9F1903B2834F26E000002",
        "8482330010508A0FD959D2E547C6B33154A6BE2057",
        "6882480F1F4CFEE7BDDF6C691B6E1549645A47543CB4FE1042B72DA7CDFDB958",
        "0607C530EB8E7B6E781A70B349370DB8728C4B6ED29A24E5461864C142F98FEC",
        "C88CDCD5473D403CE55264626EAF308B915482E0DF3BF48E35A0F58D18C1F04C", "508A0FD959D2E547",
        "84E29100187A5EF717EAF1E135AE92FE54429D0E465DECDA65F5FE5AEA00",
        "EA90DBFA648A67C5EB6ABC57F8530B97D0CD5647C5E8732016B55203B078DD2ACE7F8BC5D1C1CD99",
        ("84F2200208BCC5C17275545D93", "84CA00660804806ABA9D543BB600",
         "84F2200218717222491556EC81A45F49CE48BE33320024801A1C4CB0E0",
         "84F2800218561F105BCCD3A1642904B251CCC1228BEB80A82370A8637000"),
    ),
]  # fmt: skip

pysim = pytest.mark.parametrize("case", PYSIM, ids=[c.name for c in PYSIM])


def authenticated_host(case: PysimCase) -> HostSession:
    host = HostSession(case.keys, case.host_challenge, case.level)
    host.initialize_update()
    host.authenticate(h(case.response) + h("9000"))
    return host


def card_for(case: PysimCase) -> CardSession:
    """The SD that produced the vector: ISD-R AID, counter as printed in the answer."""
    counter = int.from_bytes(h(case.response)[-3:], "big")
    return CardSession(case.keys, ISD_R_AID, sequence_counter=counter)


@pysim
def test_pysim_initialize_update_command(case: PysimCase) -> None:
    """pysim test_01_initialize_update: 80 50 KVN 00 08 <host challenge> 00 (6.1)."""
    host = HostSession(case.keys, case.host_challenge, case.level)
    assert host.initialize_update() == h(case.init_update)


@pysim
def test_pysim_external_authenticate(case: PysimCase) -> None:
    """pysim test_02/test_03: parse the card's answer, build EXTERNAL AUTHENTICATE (6.4, 6.5)."""
    host = HostSession(case.keys, case.host_challenge, case.level)
    assert host.authenticate(h(case.response)) == h(case.external_authenticate)
    response = h(case.response)
    assert host.key_diversification_data == bytes(10)
    assert host.i_parameter == 0x70
    assert host.card_challenge == response[13:21]
    assert host.sequence_counter == int.from_bytes(response[29:32], "big")


@pysim
def test_pysim_authenticate_accepts_trailing_sw_9000(case: PysimCase) -> None:
    """pysim passes the answer without SW; a transport returns it with 9000: both work."""
    host = HostSession(case.keys, case.host_challenge, case.level)
    assert host.authenticate(h(case.response) + h("9000")) == h(case.external_authenticate)


@pysim
def test_pysim_session_keys_and_host_cryptogram(case: PysimCase) -> None:
    """globalplatform.md 7.1 table of derived session keys and host cryptograms (6.3)."""
    host = authenticated_host(case)
    keys = host.session_keys
    assert keys.s_enc == h(case.s_enc)
    assert keys.s_mac == h(case.s_mac)
    assert keys.s_rmac == h(case.s_rmac)
    card_challenge = h(case.response)[13:21]
    assert host_cryptogram(keys, case.host_challenge, card_challenge) == h(case.host_cryptogram)
    assert derive_session_keys(case.keys, case.host_challenge, card_challenge) == keys


@pysim
def test_pysim_wrapped_commands(case: PysimCase) -> None:
    """pysim test_04 and test_06: GET DATA EID, then cases 1-4, in this order (6.6, 6.7)."""
    host = authenticated_host(case)
    assert host.wrap(GET_EID_PLAIN) == h(case.get_eid_wrapped)
    for plain, wrapped in zip(CASES_PLAIN, case.wrapped, strict=True):
        assert host.wrap(plain) == h(wrapped)


@pysim
def test_pysim_unwrap_get_eid_response(case: PysimCase) -> None:
    """pysim test_05: _03 plain, _11 R-MAC checked (6.8), _33 R-MAC then decrypted (6.9)."""
    host = authenticated_host(case)
    host.wrap(GET_EID_PLAIN)
    unwrapped = host.unwrap(h(case.get_eid_response) + h("9000"))
    assert unwrapped == GET_EID_RESPONSE_PLAIN + h("9000")


@pysim
def test_pysim_card_answers_initialize_update(case: PysimCase) -> None:
    """The card side produces the vector's answer: pseudo-random challenge from the counter
    (6.4) with the ISD-R AID, and increments the counter for the SE to persist."""
    card = card_for(case)
    counter = card.sequence_counter
    assert card.initialize_update(h(case.init_update)) == h(case.response) + h("9000")
    assert card.sequence_counter == counter + 1


@pysim
def test_pysim_card_challenge_is_pseudo_random(case: PysimCase) -> None:
    """The recorded card challenges are KDF(ENC, 02, counter || ISD-R AID) (6.3, 6.4)."""
    response = h(case.response)
    challenge = pseudo_random_card_challenge(case.keys.enc, response[29:32], ISD_R_AID)
    assert challenge == response[13:21]


@pysim
def test_pysim_card_side_full_session(case: PysimCase) -> None:
    """The card accepts the vector's EXTERNAL AUTHENTICATE, unwraps every wrapped command to
    its plain form and wraps the GET DATA EID answer to the bytes the real card sent."""
    card = card_for(case)
    card.initialize_update(h(case.init_update))
    assert card.external_authenticate(h(case.external_authenticate)) == h("9000")
    assert card.is_open and card.security_level == case.level
    assert card.unwrap_command(h(case.get_eid_wrapped)) == GET_EID_PLAIN
    assert card.wrap_response(GET_EID_RESPONSE_PLAIN, 0x9000) == (
        h(case.get_eid_response) + h("9000")
    )
    for plain, wrapped in zip(CASES_PLAIN, case.wrapped, strict=True):
        assert card.unwrap_command(h(wrapped)) == plain


def test_pysim_kcv_aes128_keyset() -> None:
    """pysim SCP03_KCV_Test: ENC C35280, MAC 013808, DEK 840DE5 (6.11)."""
    assert key_check_value(KEYS_128.enc) == h("C35280")
    assert KEYS_128.kcv("mac") == h("013808")
    assert KEYS_128.kcv("dek") == h("840DE5")


def test_kdf_derivation_data_layout_of_6_3() -> None:
    """6.3's worked derivation data (pysim AES128_11, S-ENC, block 1) as a literal CMAC input."""
    data = h("00000000000000000000000400008001") + h("B13E5F938FC108C4") + h("3EB51047495B249F")
    expected = cmac(KEYS_128.enc, data)
    assert expected == h("C4E87149F2114DA66BB015A567D751F9")  # the 7.1 table agrees
    assert kdf(KEYS_128.enc, S_ENC, data[16:], 128) == expected


def test_kdf_two_blocks_for_aes256_follow_the_counter() -> None:
    """6.3: for 256-bit output the counter runs 01, 02 and the blocks are concatenated."""
    context = h("11666D57866C6F5453EA8847EFA7674E")  # pysim AES256_11 challenges
    blocks = [
        cmac(KEYS_256.mac, h("000000000000000000000006000100") + bytes([i]) + context)
        for i in (1, 2)
    ]
    assert kdf(KEYS_256.mac, S_MAC, context, 256) == blocks[0] + blocks[1]
    assert blocks[0] + blocks[1] == h(PYSIM[6].s_mac)


# --- globalplatform.md 7.2: miketlk/omfgp scp03_test.py -------------------------------------------

OMFGP_KEY = h("404142434445464748494A4B4C4D4E4F")
OMFGP_CONTEXT = h("68E9C8799FF8CB46F8D89D88BA1287BF")


def test_omfgp_session_keys() -> None:
    """omfgp scp03_test.py: S-ENC, S-MAC, S-RMAC from ENC = MAC = 4041..4F (6.3)."""
    keys = StaticKeys(OMFGP_KEY, OMFGP_KEY, OMFGP_KEY)
    session = derive_session_keys(keys, OMFGP_CONTEXT[:8], OMFGP_CONTEXT[8:])
    assert session.s_enc == h("3C64070C595D1D72BDEE692DA99B7AE4")
    assert session.s_mac == h("6E8468B74A707842E3D3696F338D2657")
    assert session.s_rmac == h("FDD1D7C84750994815D0082734C31D88")


def test_omfgp_cryptograms() -> None:
    """omfgp scp03_test.py: card cryptogram 9B5C.., host cryptogram F3C7.. (6.3, 6.4)."""
    s_mac = h("6E8468B74A707842E3D3696F338D2657")
    assert kdf(s_mac, CARD_CRYPTOGRAM, OMFGP_CONTEXT, 64) == h("9B5C9D42D5059430")
    assert kdf(s_mac, HOST_CRYPTOGRAM, OMFGP_CONTEXT, 64) == h("F3C7624565B5894F")
    session = SessionKeys(s_enc=s_mac, s_mac=s_mac, s_rmac=s_mac)
    assert scp03.card_cryptogram(session, OMFGP_CONTEXT[:8], OMFGP_CONTEXT[8:]) == h(
        "9B5C9D42D5059430"
    )


def test_omfgp_pseudo_random_card_challenge() -> None:
    """omfgp scp03_test.py: counter 00002A, AID A000000018434D08090A0B0C000000 (6.4)."""
    aid = h("A000000018434D08090A0B0C000000")
    expected = h("A3F5F144D19BE66E")
    assert pseudo_random_card_challenge(OMFGP_KEY, h("00002A"), aid) == expected
    assert pseudo_random_card_challenge(OMFGP_KEY, 0x2A, aid) == expected
    assert kdf(OMFGP_KEY, CARD_CHALLENGE, h("00002A") + aid, 64) == expected


def test_omfgp_card_side_uses_that_challenge() -> None:
    """A CardSession with that AID and counter answers with the omfgp card challenge."""
    keys = StaticKeys(OMFGP_KEY, OMFGP_KEY, OMFGP_KEY, kvn=0x01)
    card = CardSession(keys, h("A000000018434D08090A0B0C000000"), sequence_counter=0x2A)
    answer = card.initialize_update(h("8050010008") + bytes(8) + h("00"))
    assert answer[13:21] == h("A3F5F144D19BE66E")
    assert answer[29:32] == h("00002A")


def test_omfgp_payload_budget() -> None:
    """omfgp: a 100-byte budget leaves 92 bytes with C-MAC, 79 with C-MAC + C-DEC (6.12)."""
    assert max_command_payload(0x01, budget=100) == 92
    assert max_command_payload(0x03, budget=100) == 79


# --- globalplatform.md 7.3: GlobalPlatformPro TestSCP03 / TestPlaintextKeys ---------------------


def test_gppro_session_key_kcvs_with_10_byte_context() -> None:
    """GPPro TestPlaintextKeys: context 00..09 in place of the challenges (6.3 KDF)."""
    context = h("00010203040506070809")
    assert key_check_value(kdf(OMFGP_KEY, S_ENC, context, 128)) == h("C25559")
    assert key_check_value(kdf(OMFGP_KEY, S_MAC, context, 128)) == h("0E12CC")
    assert key_check_value(kdf(OMFGP_KEY, S_RMAC, context, 128)) == h("9ACB9C")
    assert key_check_value(OMFGP_KEY) == h("504A77")  # the static DEK


def test_gppro_kdf3_diversified_enc_key() -> None:
    """GPPro TestSCP03: KDF3 of an AES-256 master key with KDD D9B1..E4FB (7.3)."""
    master = h("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
    keys = diversify_kdf3(master, h("D9B1DE5D0362DEDCE4FB"))
    assert keys.enc == h("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")


@pytest.mark.parametrize(
    ("length", "kcvs"),
    [
        (16, ("E79C05", "D1BD77", "3FDE8C")),
        (24, ("1DE8EA", "47C00C", "C04D76")),
        (32, ("2972D2", "036F94", "5D57B8")),
    ],
)
def test_gppro_kdf3_kcvs(length: int, kcvs: tuple[str, str, str]) -> None:
    """GPPro TestPlaintextKeys: KCVs of KDF3 keys, master 4041.. , KDD 00..09 (7.3)."""
    keys = diversify_kdf3(bytes(range(0x40, 0x40 + length)), h("00010203040506070809"))
    assert (keys.kcv("enc"), keys.kcv("mac"), keys.kcv("dek")) == tuple(h(k) for k in kcvs)


# --- round trips: host <-> card (hypothesis) ------------------------------------------------------

LEVELS = [0x01, 0x03, 0x11, 0x13, 0x33]
# (status word, is it an error status for Amendment D's "no protection" rule)
STATUS_WORDS = [(0x9000, False), (0x6310, False), (0x6282, False), (0x6A88, True), (0x6D00, True)]


@st.composite
def plain_commands(draw: st.DrawFn, max_data: int) -> bytes:
    cla = draw(st.sampled_from([0x00, 0x01, 0x03, 0x80, 0x81, 0x82, 0x83, 0x90]))
    header = bytes([cla]) + draw(st.binary(min_size=3, max_size=3))
    data = draw(st.binary(min_size=0, max_size=max_data))
    le = draw(st.sampled_from([b"", b"\x00", b"\x10"]))
    return header + (bytes([len(data)]) + data if data else b"") + le


@st.composite
def sessions(draw: st.DrawFn) -> tuple[HostSession, CardSession, int, bool]:
    length = draw(st.sampled_from([16, 24, 32]))
    keys = StaticKeys(*(draw(st.binary(min_size=length, max_size=length)) for _ in range(3)))
    level = draw(st.sampled_from(LEVELS))
    s16 = draw(st.booleans())
    n = 16 if s16 else 8
    host = HostSession(keys, draw(st.binary(min_size=n, max_size=n)), level, s16=s16)
    card = CardSession(
        keys,
        ISD_R_AID,
        sequence_counter=draw(st.integers(0, 0xFFFFFE)),
        i_parameter=0x71 if s16 else 0x70,
    )
    answer = card.initialize_update(host.initialize_update())
    assert card.external_authenticate(host.authenticate(answer)) == h("9000")
    return host, card, level, s16


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_commands_and_responses(data: st.DataObject) -> None:
    """Any short command at any level, S8/S16: card.unwrap(host.wrap(c)) == c, and
    host.unwrap(card.wrap(r)) == r (error SWs come back bare under R-MAC)."""
    host, card, level, s16 = data.draw(sessions())
    for _ in range(data.draw(st.integers(1, 4))):
        limit = 223 if s16 and level & C_DECRYPTION else 239 if s16 or level & C_DECRYPTION else 247
        command = data.draw(plain_commands(limit))
        wrapped = host.wrap(command)
        assert wrapped[0] == command[0] | 0x04
        assert card.unwrap_command(wrapped) == command
        answer = data.draw(st.binary(max_size=239 if level & R_ENCRYPTION else 240))
        sw, is_error = data.draw(st.sampled_from(STATUS_WORDS))
        expected = (
            sw.to_bytes(2, "big") if is_error and level & R_MAC else answer + sw.to_bytes(2, "big")
        )
        assert host.unwrap(card.wrap_response(answer, sw)) == expected


@pytest.mark.parametrize("s16", [False, True])
@pytest.mark.parametrize("level", LEVELS)
def test_round_trip_at_the_6_12_limits(level: int, s16: bool) -> None:
    """The largest command and response 6.12 allows go through, one byte more is refused."""
    host, card = handshake(level, s16=s16)
    limit = {(False, False): 247, (False, True): 239, (True, False): 239, (True, True): 223}[
        (s16, bool(level & C_DECRYPTION))
    ]
    assert max_command_payload(level, s16=s16) == limit
    biggest = h("80E20000") + bytes([limit]) + bytes(range(limit))
    wrapped = host.wrap(biggest)
    assert len(wrapped) <= 5 + 255
    assert card.unwrap_command(wrapped) == biggest
    with pytest.raises(PayloadTooLongError):
        host.wrap(h("80E20000") + bytes([limit + 1]) + bytes(limit + 1))
    # the refused command changed nothing: the channel still agrees on counter and chaining
    assert card.unwrap_command(host.wrap(h("80F22002"))) == h("80F22002")
    if level & R_MAC:
        r_limit = {(False, False): 248, (False, True): 239, (True, False): 240, (True, True): 239}[
            (s16, bool(level & R_ENCRYPTION))
        ]
        assert max_response_payload(level, s16=s16) == r_limit
        response = card.wrap_response(bytes(r_limit), 0x9000)
        assert len(response) <= 256 + 2
        assert host.unwrap(response) == bytes(r_limit) + h("9000")
        with pytest.raises(PayloadTooLongError) as e:
            card.wrap_response(bytes(r_limit + 1), 0x9000)
        assert e.value.sw == 0x6700


def test_6_12_figures() -> None:
    """6.12's table: 247 / 239 (S8) and 239 / 223 (S16) in commands, 248 / 239 in responses."""
    assert max_command_payload(C_MAC) == 247
    assert max_command_payload(C_MAC | C_DECRYPTION) == 239
    assert max_command_payload(C_MAC, s16=True) == 239
    assert max_command_payload(C_MAC | C_DECRYPTION, s16=True) == 223
    assert max_response_payload(C_MAC | R_MAC) == 248
    assert max_response_payload(0x33) == 239


# --- handshake helpers for the behaviour tests --------------------------------------------------


def handshake(
    level: int, *, s16: bool = False, keys: StaticKeys = KEYS_128, i_parameter: int | None = None
) -> tuple[HostSession, CardSession]:
    i = i_parameter if i_parameter is not None else (0x71 if s16 else 0x70)
    host = HostSession(keys, bytes(range(1, 17 if s16 else 9)), level, s16=s16)
    card = CardSession(keys, ISD_R_AID, sequence_counter=7, i_parameter=i)
    answer = card.initialize_update(host.initialize_update())
    assert card.external_authenticate(host.authenticate(answer)) == h("9000")
    return host, card


def test_s16_handshake_lengths() -> None:
    """S16 (i bit 01): 16-byte challenges, 48-byte answer, Lc 20 in EXTERNAL AUTHENTICATE, a
    16-byte C-MAC (6.1, 6.5, 6.6)."""
    host = HostSession(KEYS_128, bytes(16), 0x33, s16=True)
    card = CardSession(KEYS_128, ISD_R_AID, i_parameter=0x71)
    command = host.initialize_update()
    assert command[:5] == h("8050300010") and len(command) == 22
    answer = card.initialize_update(command)
    assert len(answer) == 48 + 2
    assert answer[12] == 0x71
    external = host.authenticate(answer)
    assert external[:5] == h("8482330020") and len(external) == 5 + 32
    assert card.external_authenticate(external) == h("9000")
    assert len(host.wrap(h("80F22002"))) == 4 + 1 + 16


def test_random_card_challenge_without_counter() -> None:
    """i = 60 (no bit 10): the challenge comes from the random source, no counter (29 bytes)."""
    card = CardSession(
        KEYS_128, ISD_R_AID, i_parameter=0x60, random_source=lambda n: bytes([0xA5]) * n
    )
    host = HostSession(KEYS_128, bytes(8), 0x33)
    answer = card.initialize_update(host.initialize_update())
    assert len(answer) == 29 + 2
    assert answer[13:21] == bytes([0xA5]) * 8
    assert card.sequence_counter == 0
    assert card.external_authenticate(host.authenticate(answer)) == h("9000")
    assert host.sequence_counter is None


def test_logical_channel_is_left_out_of_the_mac() -> None:
    """The CLA inside the C-MAC has the channel bits cleared; the sent CLA keeps them."""
    host_a, card_a = handshake(0x01)
    host_b, _ = handshake(0x01)
    on_channel_2 = host_a.wrap(h("82F22002"))
    on_channel_0 = host_b.wrap(h("80F22002"))
    assert on_channel_2[0] == 0x86 and on_channel_0[0] == 0x84
    assert on_channel_2[1:] == on_channel_0[1:]
    assert card_a.unwrap_command(on_channel_2) == h("82F22002")


def test_counter_increments_for_commands_without_data() -> None:
    """6.7: the counter goes up before every command, even without data; the ICV of the
    third command is AES-ECB(S-ENC, 00..03) and the data are padded 80 00.. (6.7)."""
    host, card = handshake(0x03)
    for command in (h("80F22002"), h("80CA006600")):
        assert card.unwrap_command(host.wrap(command)) == command
    wrapped = host.wrap(h("80E2000003AABBCC"))
    assert host.encryption_counter == 3
    s_enc = host.session_keys.s_enc
    icv = aes_ecb(s_enc, (3).to_bytes(16, "big"))
    assert wrapped[4] == 16 + 8
    assert wrapped[5:21] == aes_cbc(s_enc, icv, h("AABBCC80") + bytes(12))
    assert card.unwrap_command(wrapped) == h("80E2000003AABBCC")


def test_block_sized_data_gets_a_whole_padding_block() -> None:
    """6.7: padding is always at least one byte, so 16 bytes of data become 32."""
    host, card = handshake(0x03)
    wrapped = host.wrap(h("80E2000010") + bytes(16))
    assert wrapped[4] == 32 + 8
    assert card.unwrap_command(wrapped) == h("80E2000010") + bytes(16)


def test_response_encryption_icv_has_first_byte_80() -> None:
    """6.9: ICV = AES-ECB(S-ENC, counter with first byte 80); R-MAC over the ciphertext (6.8)."""
    host, card = handshake(0x33)
    card.unwrap_command(host.wrap(h("80CA006600")))
    response = card.wrap_response(h("0102"), 0x9000)
    keys = host.session_keys
    icv = aes_ecb(keys.s_enc, h("80") + (1).to_bytes(15, "big"))
    ciphertext = aes_cbc(keys.s_enc, icv, h("010280") + bytes(13))
    r_mac = cmac(keys.s_rmac, host.mac_chaining_value + ciphertext + h("9000"))[:8]
    assert response == ciphertext + r_mac + h("9000")
    assert host.unwrap(response) == h("01029000")


# --- error paths ----------------------------------------------------------------------------------

AES128_11 = PYSIM[0]


def test_wrong_card_cryptogram_raises_on_the_host() -> None:
    """6.4: the host checks the card cryptogram before answering; nothing opens."""
    response = bytearray(h(AES128_11.response))
    response[21] ^= 0x01  # first byte of the card cryptogram
    host = HostSession(KEYS_128, AES128_11.host_challenge, 0x11)
    with pytest.raises(CardCryptogramError) as e:
        host.authenticate(bytes(response))
    assert isinstance(e.value, WorkbenchError)
    assert not host.is_authenticated
    with pytest.raises(SessionStateError):
        host.session_keys  # noqa: B018 - the property raises
    with pytest.raises(SessionStateError):
        host.wrap(h("80F22002"))


def test_card_with_other_keys_fails_the_card_cryptogram() -> None:
    card = CardSession(KEYS_128, ISD_R_AID)
    other = StaticKeys(bytes(16), bytes(16), bytes(16), kvn=0x30)
    host = HostSession(other, bytes(8), 0x01)
    with pytest.raises(CardCryptogramError):
        host.authenticate(card.initialize_update(host.initialize_update()))


def test_wrong_host_cryptogram_answers_6300_and_does_not_open() -> None:
    """6.4 MODEL: 6300, no session; the pending handshake is spent (6985 on a retry)."""
    card = card_for(AES128_11)
    card.initialize_update(h(AES128_11.init_update))
    external = bytearray(h(AES128_11.external_authenticate))
    external[5] ^= 0x80  # first byte of the host cryptogram
    assert card.external_authenticate(bytes(external)) == h("6300")
    assert not card.is_open and card.security_level is None
    assert card.external_authenticate(h(AES128_11.external_authenticate)) == h("6985")
    with pytest.raises(SessionStateError) as e:
        card.unwrap_command(h(AES128_11.get_eid_wrapped))
    assert e.value.sw == 0x6982


def test_host_reads_6300_as_host_cryptogram_error() -> None:
    host = authenticated_host(AES128_11)
    with pytest.raises(HostCryptogramError) as e:
        host.check_external_authenticate(h("6300"))
    assert e.value.sw == 0x6300
    with pytest.raises(SessionStateError):
        host.wrap(h("80F22002"))
    ok = authenticated_host(AES128_11)
    ok.check_external_authenticate(h("9000"))
    assert ok.wrap(GET_EID_PLAIN) == h(AES128_11.get_eid_wrapped)


def test_wrong_mac_on_external_authenticate_answers_6982() -> None:
    card = card_for(AES128_11)
    card.initialize_update(h(AES128_11.init_update))
    external = bytearray(h(AES128_11.external_authenticate))
    external[-1] ^= 0x01
    assert card.external_authenticate(bytes(external)) == h("6982")
    assert not card.is_open


def test_external_authenticate_without_initialize_update_answers_6985() -> None:
    card = card_for(AES128_11)
    assert card.external_authenticate(h(AES128_11.external_authenticate)) == h("6985")


def open_pysim_card(case: PysimCase = AES128_11) -> CardSession:
    card = card_for(case)
    card.initialize_update(h(case.init_update))
    assert card.external_authenticate(h(case.external_authenticate)) == h("9000")
    return card


def test_flipped_c_mac_bit_answers_6982_and_closes_the_session() -> None:
    """6.10 MODEL: a bad C-MAC answers 6982 and closes; later secured commands get 6982 too,
    even correct ones, until a new INITIALIZE UPDATE."""
    card = open_pysim_card()
    tampered = bytearray(h(AES128_11.get_eid_wrapped))
    tampered[-2] ^= 0x01  # last MAC byte (Le follows)
    with pytest.raises(MacError) as e:
        card.unwrap_command(bytes(tampered))
    assert e.value.sw == 0x6982
    assert not card.is_open
    with pytest.raises(SecureChannelError) as later:
        card.unwrap_command(h(AES128_11.get_eid_wrapped))
    assert later.value.sw == 0x6982
    assert card.wrap_response(b"", 0x6982) == h("6982")
    # a new INITIALIZE UPDATE starts over
    host, card2 = handshake(0x11)
    assert card2.unwrap_command(host.wrap(h("80F22002"))) == h("80F22002")


def test_flipped_data_bit_under_encryption_fails_the_mac() -> None:
    """The C-MAC covers the encrypted data (6.6, 6.7): tampering is caught before decryption."""
    card = open_pysim_card(PYSIM[2])  # AES128_33
    tampered = bytearray(h(PYSIM[2].get_eid_wrapped))
    tampered[7] ^= 0x40
    with pytest.raises(MacError):
        card.unwrap_command(bytes(tampered))
    assert not card.is_open


def test_replayed_command_is_refused() -> None:
    """A replay fails: the chaining value moved on with the first copy (6.6)."""
    card = open_pysim_card()
    assert card.unwrap_command(h(AES128_11.get_eid_wrapped)) == GET_EID_PLAIN
    with pytest.raises(MacError) as e:
        card.unwrap_command(h(AES128_11.get_eid_wrapped))
    assert e.value.sw == 0x6982
    assert not card.is_open


def test_swapped_commands_are_refused() -> None:
    """Two commands delivered out of order fail the C-MAC chaining (6.6)."""
    card = open_pysim_card()
    with pytest.raises(MacError):
        card.unwrap_command(h(AES128_11.wrapped[0]))  # sent second, delivered first
    assert not card.is_open


def test_dropped_command_is_refused() -> None:
    card = open_pysim_card()
    with pytest.raises(MacError):
        card.unwrap_command(h(AES128_11.wrapped[1]))  # GET DATA EID and case 1 never arrived


def test_plain_command_handed_to_unwrap_is_refused() -> None:
    card = open_pysim_card()
    with pytest.raises(SecureChannelError) as e:
        card.unwrap_command(GET_EID_PLAIN)
    assert e.value.sw == 0x6982


def test_level_the_card_does_not_offer() -> None:
    """i = 10 (no R-MAC support, 6.2): the host refuses level 11 and the card answers 6A86
    (MODEL) to an EXTERNAL AUTHENTICATE asking for it."""
    card = CardSession(KEYS_128, ISD_R_AID, i_parameter=PSEUDO_RANDOM_CHALLENGE)
    host = HostSession(KEYS_128, bytes(8), 0x11)
    answer = card.initialize_update(host.initialize_update())
    assert answer[12] == 0x10
    with pytest.raises(SecurityLevelError):
        host.authenticate(answer)
    # build the EXTERNAL AUTHENTICATE by hand from 6.3 and 6.5
    card_challenge = answer[13:21]
    context = bytes(8) + card_challenge
    s_mac = cmac(KEYS_128.mac, h("000000000000000000000006000080") + h("01") + context)
    host_crypto = cmac(s_mac, h("000000000000000000000001000040") + h("01") + context)[:8]
    header = h("8482110010")
    mac = cmac(s_mac, bytes(16) + header + host_crypto)[:8]
    assert card.external_authenticate(header + host_crypto + mac) == h("6A86")
    assert not card.is_open


def test_r_enc_needs_card_support() -> None:
    card = CardSession(KEYS_128, ISD_R_AID, i_parameter=PSEUDO_RANDOM_CHALLENGE | RMAC_SUPPORTED)
    host = HostSession(KEYS_128, bytes(8), 0x33)
    with pytest.raises(SecurityLevelError):
        host.authenticate(card.initialize_update(host.initialize_update()))


def test_named_constants_are_those_of_the_spec() -> None:
    """6.2 i-parameter bits, 6.3 derivation constants, 6.5 security level bits."""
    assert (PSEUDO_RANDOM_CHALLENGE, RMAC_SUPPORTED, RENC_SUPPORTED, S16_MODE) == (
        0x10, 0x20, 0x40, 0x01,
    )  # fmt: skip
    assert (CARD_CRYPTOGRAM, HOST_CRYPTOGRAM, CARD_CHALLENGE, S_ENC, S_MAC, S_RMAC) == (
        0x00, 0x01, 0x02, 0x04, 0x06, 0x07,
    )  # fmt: skip
    assert (C_MAC, C_DECRYPTION, R_MAC, R_ENCRYPTION) == (0x01, 0x02, 0x10, 0x20)


@pytest.mark.parametrize(
    "level", [0x02, 0x10, 0x12, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x04, 0x41]
)
def test_levels_outside_6_5_are_refused(level: int) -> None:
    with pytest.raises(SecurityLevelError) as e:
        check_security_level(level)
    assert "6.5" in str(e.value)
    with pytest.raises(SecurityLevelError):
        HostSession(KEYS_128, bytes(8), level)


@pytest.mark.parametrize("level", [0x00, 0x01, 0x03, 0x11, 0x13, 0x33])
def test_levels_of_6_5_are_accepted(level: int) -> None:
    assert check_security_level(level) == level


def test_card_refuses_forbidden_level_in_external_authenticate() -> None:
    """Level 02 (C-DEC without C-MAC) in P1 answers 6A86 (MODEL) even with a valid MAC."""
    card = CardSession(KEYS_128, ISD_R_AID)
    answer = card.initialize_update(h("8050300008") + bytes(8) + h("00"))
    context = bytes(8) + answer[13:21]
    s_mac = cmac(KEYS_128.mac, h("000000000000000000000006000080") + h("01") + context)
    host_crypto = cmac(s_mac, h("000000000000000000000001000040") + h("01") + context)[:8]
    header = h("8482020010")
    mac = cmac(s_mac, bytes(16) + header + host_crypto)[:8]
    assert card.external_authenticate(header + host_crypto + mac) == h("6A86")


def test_missing_r_mac_raises_on_the_host() -> None:
    host = authenticated_host(AES128_11)
    host.wrap(GET_EID_PLAIN)
    with pytest.raises(MacError):
        host.unwrap(GET_EID_RESPONSE_PLAIN + h("9000"))  # plain data: its last 8 bytes are no R-MAC
    with pytest.raises(MacError):
        host.unwrap(h("9000"))  # success without R-MAC
    with pytest.raises(MacError):
        host.unwrap(h("0102") + h("6310"))  # a warning is protected too, 2 bytes < 8


def test_wrong_r_mac_raises_on_the_host() -> None:
    host = authenticated_host(AES128_11)
    host.wrap(GET_EID_PLAIN)
    tampered = bytearray(h(AES128_11.get_eid_response) + h("9000"))
    tampered[0] ^= 0x01
    with pytest.raises(MacError):
        host.unwrap(bytes(tampered))
    # the same response under another SW fails too: the SW is MACed (6.8)
    with pytest.raises(MacError):
        host.unwrap(h(AES128_11.get_eid_response) + h("6310"))


def test_bare_error_status_is_accepted_by_default_and_refused_on_request() -> None:
    """Amendment D: no R-MAC on error SWs. Default: returned as is; option: refused."""
    host = authenticated_host(AES128_11)
    host.wrap(GET_EID_PLAIN)
    assert host.unwrap(h("6A88")) == h("6A88")
    with pytest.raises(MacError):
        host.unwrap(h("6A88"), accept_unprotected_errors=False)


def test_card_protects_error_status_words_on_request() -> None:
    host, card = handshake(0x11)
    card_all = CardSession(KEYS_128, ISD_R_AID, protect_error_responses=True)
    host2 = HostSession(KEYS_128, bytes(8), 0x11)
    answer = card_all.initialize_update(host2.initialize_update())
    assert card_all.external_authenticate(host2.authenticate(answer)) == h("9000")
    card_all.unwrap_command(host2.wrap(h("80CA006600")))
    protected = card_all.wrap_response(b"", 0x6A88)
    assert len(protected) == 8 + 2
    assert host2.unwrap(protected, accept_unprotected_errors=False) == h("6A88")
    card.unwrap_command(host.wrap(h("80CA006600")))
    assert card.wrap_response(h("0102"), 0x6A88) == h("6A88")  # default: bare SW, data dropped


def test_bad_response_padding_raises_on_the_host() -> None:
    """6.9: after a good R-MAC, decrypted data without 80 00.. padding is refused."""
    host = authenticated_host(PYSIM[2])  # AES128_33
    host.wrap(GET_EID_PLAIN)
    keys = host.session_keys
    icv = aes_ecb(keys.s_enc, h("80") + (1).to_bytes(15, "big"))
    ciphertext = aes_cbc(keys.s_enc, icv, bytes(range(16)))  # last byte 0F: no padding
    r_mac = cmac(keys.s_rmac, host.mac_chaining_value + ciphertext + h("9000"))[:8]
    with pytest.raises(DecryptionError):
        host.unwrap(ciphertext + r_mac + h("9000"))


def test_payload_too_long_for_a_short_apdu() -> None:
    """6.12: 240 bytes at level 03 (S8) cannot be sent; 239 can."""
    host, card = handshake(0x03)
    with pytest.raises(PayloadTooLongError) as e:
        host.wrap(h("80E20000F0") + bytes(240))
    assert "239" in str(e.value) and "6.12" in str(e.value)
    command = h("80E20000EF") + bytes(239)
    assert card.unwrap_command(host.wrap(command)) == command


def test_malformed_and_unsupported_commands_are_refused_by_wrap() -> None:
    host, _ = handshake(0x01)
    for bad in (h("80F220"), h("80F2200205AABB"), h("80F2200000000100"), h("84F22002")):
        with pytest.raises(APDUError):
            host.wrap(bad)
    with pytest.raises(APDUError):
        host.wrap(h("A0F22002"))  # further interindustry / not the 0x, 8x family


def test_initialize_update_errors_on_the_card() -> None:
    """Unknown KVN 6A88, P2 not 00 6A86, wrong Lc 6700, wrong CLA 6E00 (5.10)."""
    card = CardSession(KEYS_128, ISD_R_AID)
    assert card.initialize_update(h("8050310008") + bytes(8) + h("00")) == h("6A88")
    assert card.initialize_update(h("8050300108") + bytes(8) + h("00")) == h("6A86")
    assert card.initialize_update(h("8050300010") + bytes(16) + h("00")) == h("6700")
    assert card.initialize_update(h("0050300008") + bytes(8) + h("00")) == h("6E00")
    assert card.sequence_counter == 0
    answer = card.initialize_update(h("8050000008") + bytes(8) + h("00"))  # KVN 00: first set
    assert answer[10] == 0x30 and answer[-2:] == h("9000")
    assert card.sequence_counter == 1


def test_sequence_counter_exhausted() -> None:
    card = CardSession(KEYS_128, ISD_R_AID, sequence_counter=0xFFFFFF)
    assert card.initialize_update(h("8050300008") + bytes(8) + h("00"))[29:32] == h("FFFFFF")
    assert card.initialize_update(h("8050300008") + bytes(8) + h("00")) == h("6985")
    assert card.sequence_counter == 0x1000000
    restored = CardSession(KEYS_128, ISD_R_AID, sequence_counter=card.sequence_counter)
    assert restored.initialize_update(h("8050300008") + bytes(8) + h("00")) == h("6985")
    with pytest.raises(KeyMaterialError):
        CardSession(KEYS_128, ISD_R_AID, sequence_counter=0x1000001)


def test_new_initialize_update_closes_the_session() -> None:
    host, card = handshake(0x01)
    card.initialize_update(h("8050300008") + bytes(8) + h("00"))
    assert not card.is_open
    with pytest.raises(SessionStateError):
        card.unwrap_command(host.wrap(h("80F22002")))


@pytest.mark.parametrize(
    ("answer", "sw"),
    [
        ("6A88", 0x6A88),
        (PYSIM[0].response + "6300", 0x6300),
        (PYSIM[0].response[:-4], None),  # 30 bytes: wrong length
        (PYSIM[0].response[:20] + "310370" + PYSIM[0].response[26:], None),  # KVN 31
        (PYSIM[0].response[:22] + "02" + PYSIM[0].response[24:], None),  # SCP 02
        (PYSIM[0].response[:-6], None),  # i = 70 but no sequence counter
    ],
)
def test_initialize_update_answers_the_host_refuses(answer: str, sw: int | None) -> None:
    host = HostSession(KEYS_128, AES128_11.host_challenge, 0x11)
    with pytest.raises(InitializeUpdateError) as e:
        host.authenticate(h(answer))
    assert e.value.sw == sw


def test_host_session_is_single_use() -> None:
    host = authenticated_host(AES128_11)
    with pytest.raises(SessionStateError):
        host.authenticate(h(AES128_11.response))


# --- keys, reprs and PUT KEY key components -----------------------------------------------------


@pytest.mark.parametrize(
    ("enc", "mac", "dek", "kvn"),
    [
        (bytes(15), bytes(15), bytes(15), 0x30),
        (bytes(16), bytes(24), bytes(16), 0x30),
        (bytes(16), bytes(16), bytes(16), 0x00),
        (bytes(16), bytes(16), bytes(16), 0x80),
        (bytes(16), bytes(16), bytes(16), True),
        ("00" * 16, bytes(16), bytes(16), 0x30),
    ],
)
def test_static_keys_validation(enc: bytes, mac: bytes, dek: bytes, kvn: int) -> None:
    with pytest.raises(KeyMaterialError):
        StaticKeys(enc, mac, dek, kvn)


def test_reprs_and_errors_never_show_keys() -> None:
    """CONVENTIONS: secrets never in reprs or exceptions; the KCV identifies a key instead."""
    text = repr(KEYS_128)
    assert "C35280" in text and "013808" in text and "840DE5" in text and "0x30" in text
    host = authenticated_host(AES128_11)
    session = host.session_keys
    secrets = [KEYS_128.enc, KEYS_128.mac, KEYS_128.dek, session.s_enc, session.s_mac]
    secrets.append(session.s_rmac)
    shown = [text, repr(session), repr(host), repr(open_pysim_card())]
    with pytest.raises(MacError) as e:
        host.unwrap(h("00") * 9 + h("9000"))
    shown.append(str(e.value))
    for secret in secrets:
        for s in shown:
            assert secret.hex() not in s.lower()


@pytest.mark.parametrize("length", [16, 24, 32])
def test_key_component_block_round_trip(length: int) -> None:
    """5.7: both encodings decrypt to the key; the GPC form is bare for 16/32 and
    length-prefixed for 24; AES-CBC under the static DEK with a zero ICV."""
    key = bytes(range(0x40, 0x40 + length))
    block = encrypt_key_component(KEYS_128.dek, key)
    padded = key + bytes(-length % 16)
    expected = aes_cbc(KEYS_128.dek, bytes(16), padded)
    if length % 16:
        assert block == bytes([length]) + expected
    else:
        assert block == expected
    prefixed = encrypt_key_component(KEYS_128.dek, key, length_prefix=True)
    assert prefixed == bytes([length]) + expected
    assert decrypt_key_component(KEYS_128.dek, block) == key
    assert decrypt_key_component(KEYS_128.dek, prefixed) == key


def test_key_component_of_a_16_byte_key_is_aes_ecb() -> None:
    """For one block, CBC with a zero ICV is ECB: 88 11 10 <AES-ECB(DEK, key)> in GPPro form."""
    key = KEYS_128.enc
    assert encrypt_key_component(KEYS_128.dek, key) == aes_ecb(KEYS_128.dek, key)


def test_key_component_block_of_wrong_size() -> None:
    with pytest.raises(KeyMaterialError):
        decrypt_key_component(KEYS_128.dek, bytes(17 + 1))
    with pytest.raises(KeyMaterialError):
        decrypt_key_component(KEYS_128.dek, bytes([40]) + bytes(32))


# --- the card side as an SE dispatcher will drive it ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=40), level=st.sampled_from(LEVELS))
def test_card_entry_points_never_raise_unexpectedly(garbage: bytes, level: int) -> None:
    """Any bytes in: INITIALIZE UPDATE and EXTERNAL AUTHENTICATE answer a status word,
    unwrap_command returns a command or raises SecureChannelError with a status word."""
    host, card = handshake(level)
    try:
        command = card.unwrap_command(garbage)
    except SecureChannelError as e:
        assert e.sw in (0x6982, 0x6700)
        assert not card.is_open
    else:  # pragma: no cover - a random 8-byte C-MAC match is not expected
        assert isinstance(command, bytes)
    assert len(card.external_authenticate(garbage)) == 2
    answer = card.initialize_update(garbage)
    assert len(answer) in (2, 32 + 2)
    assert answer[-2:] == h("9000") or len(answer) == 2
    del host


def test_package_reexports_scp03() -> None:
    import workbench.se as se

    assert se.HostSession is HostSession and se.CardSession is CardSession
    assert set(scp03.__all__) <= set(se.__all__)


def test_is_secured() -> None:
    assert scp03.is_secured(h("84F22002"))
    assert scp03.is_secured(h("85F22002"))  # logical channel 1
    assert not scp03.is_secured(h("80F22002"))
    assert not scp03.is_secured(h("A4"))  # further interindustry class: not the GP SM bit
    assert not scp03.is_secured(b"")


@pytest.mark.parametrize("i", [0x40, 0x08, 0x80, 0x100, -1])
def test_i_parameter_validation(i: int) -> None:
    """6.2: only bits 01, 10, 20, 40; R-ENC support (40) only with R-MAC support (20)."""
    with pytest.raises(KeyMaterialError):
        CardSession(KEYS_128, ISD_R_AID, i_parameter=i)
