"""Where the time of a phone SE personalisation goes, in process (no transport).

One run is the TSM's whole script against a factory SE (smartphone-service.md 15.2 C1-C10):
SELECT the JPKI security domain, SCP03 at level 33 (INITIALIZE UPDATE, EXTERNAL
AUTHENTICATE), INSTALL, INSTALL [for personalization], two key generations inside the SE
(DGI A017, A01A, public keys read back), the certificates and token data in STORE DATA blocks,
SET STATUS 0F. The certificates are prepared once (issuing them is the authority's work, not
the SE's).

Reported per run: wall time split into RSA key generation (timed inside the SE's key
generator), AES/CMAC work (timed inside the SCP03 module's primitives, both ends), and the
rest (APDU parsing, dispatch, registry, DGI handling, SQLite-free in-memory SE). Goal: the rest
plus AES/CMAC ≤ 10 % of the total. Also the SCP03 wrap + unwrap throughput of one command
carrying the most data a short APDU can at levels 01 and 33 (globalplatform.md 6.12), host and
card side.

Usage: ``python benchmarks/se_personalisation.py [--runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from workbench.card.content import certificate_presence, token_info  # noqa: E402
from workbench.se import SecureElement, TsmSession, gp, scp03  # noqa: E402


class Stopwatch:
    """Accumulated seconds spent inside wrapped functions."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1
        return timed


def instrument_crypto(watch: Stopwatch) -> None:
    """Time every AES and CMAC computation of both SCP03 ends (the module's primitives)."""
    for name in ("_aes_ecb", "_aes_cbc_encrypt", "_aes_cbc_decrypt", "_cmac"):
        setattr(scp03, name, watch.wrap(getattr(scp03, name)))


def prepared_certificates() -> list[tuple[int, bytes]]:
    """Certificate-sized DGIs (a seeded card's real certificates, made once)."""
    from datetime import UTC, datetime

    from workbench.lifecycle import create_card
    from workbench.pki import Authority, FixedClock

    at = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
    card = create_card("icc", seed=7, authority=Authority(seed=b"bench", clock=FixedClock(at)),
                       issued_at=at)
    from cryptography.hazmat.primitives.serialization import Encoding

    der = {name: cert.public_bytes(Encoding.DER) for name, cert in card.certificates().items()}
    return [
        (gp.DGI.AUTH_CERTIFICATE, der["auth"]), (gp.DGI.SIGN_CERTIFICATE, der["sign"]),
        (gp.DGI.AUTH_CA_CERTIFICATE, der["auth_ca"]), (gp.DGI.SIGN_CA_CERTIFICATE, der["sign_ca"]),
        (gp.DGI.TOKEN_INFO, token_info("JPKIAPGPSETOKEN", "0" * 16)),
        (gp.DGI.CERTIFICATE_PRESENCE, certificate_presence(True)),
    ]


def one_personalisation(dgis: list[tuple[int, bytes]], keygen_watch: Stopwatch) -> float:
    def keygen(_fid: int) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    se = SecureElement.factory(keygen=keygen_watch.wrap(keygen))
    se.power_on()
    t = time.perf_counter()
    tsm = TsmSession(se.transmit, se.key_sets[gp.JPKI_SSD_AID][0], level=0x33)
    tsm.open()
    tsm.install_jpki()
    tsm.personalise()
    tsm.generate_key("auth")
    tsm.generate_key("sign")
    tsm.store(dgis, last=True)
    tsm.set_status(gp.ApplicationState.PERSONALIZED)
    elapsed = time.perf_counter() - t
    assert se.registry[-1].life_cycle == gp.ApplicationState.PERSONALIZED
    assert set(se.certificates()) == {"auth", "sign", "auth_ca", "sign_ca"}
    return elapsed


def wrap_unwrap_rate(level: int, seconds: float = 1.0) -> dict[str, Any]:
    """Commands per second through host wrap + card unwrap + card wrap + host unwrap."""
    keys = scp03.StaticKeys(bytes(16), bytes(range(16)), bytes(16), kvn=0x30)
    host = scp03.HostSession(keys, bytes(8), level)
    card = scp03.CardSession(keys, gp.JPKI_SSD_AID)
    ext = host.authenticate(card.initialize_update(host.initialize_update()))
    assert card.external_authenticate(ext)[-2:] == b"\x90\x00"
    size = scp03.max_command_payload(level)
    plain = bytes((0x80, 0xE2, 0x00, 0x00, size)) + bytes(size)
    reply = bytes(min(32, scp03.max_response_payload(level)))
    n = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        wrapped = host.wrap(plain)
        assert card.unwrap_command(wrapped) == plain
        assert host.unwrap(card.wrap_response(reply, 0x9000)) == reply + b"\x90\x00"
        n += 1
    elapsed = time.perf_counter() - t
    return {"level": f"{level:02X}", "command_bytes": len(plain), "data_bytes": size,
            "round_trips_per_s": round(n / elapsed), "us_per_round_trip": round(1e6 * elapsed / n, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    dgis = prepared_certificates()
    crypto = Stopwatch()
    instrument_crypto(crypto)
    rows = []
    for _ in range(args.runs):
        keygen = Stopwatch()
        before = crypto.seconds
        total = one_personalisation(dgis, keygen)
        aes = crypto.seconds - before
        rest = total - keygen.seconds - aes
        rows.append({"total_ms": 1000 * total, "keygen_ms": 1000 * keygen.seconds,
                     "aes_cmac_ms": 1000 * aes, "rest_ms": 1000 * rest,
                     "non_keygen_share": (total - keygen.seconds) / total})
    rates = [wrap_unwrap_rate(0x01), wrap_unwrap_rate(0x33)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def spread(key: str) -> str:
        values = sorted(r[key] for r in rows)
        return f"{values[0]:.1f}–{values[-1]:.1f}"

    share = med("non_keygen_share")
    summary = {
        "runs": args.runs,
        "total_ms": round(med("total_ms"), 1),
        "keygen_ms": round(med("keygen_ms"), 1),
        "aes_cmac_ms": round(med("aes_cmac_ms"), 2),
        "rest_ms": round(med("rest_ms"), 2),
        "non_keygen_share_pct": round(100 * share, 2),
        "goal_non_keygen_le_10pct": share <= 0.10,
        "scp03": rates,
    }
    if args.json:
        print(json.dumps({"summary": summary, "runs": rows}, indent=2))
        return 0
    print(f"SE personalisation in process, {args.runs} runs (median, min–max)")
    print(f"  total          {summary['total_ms']:9.1f} ms   {spread('total_ms')}")
    print(f"  RSA keygen     {summary['keygen_ms']:9.1f} ms   {spread('keygen_ms')}")
    print(f"  AES/CMAC       {summary['aes_cmac_ms']:9.2f} ms   {spread('aes_cmac_ms')}")
    print(f"  the rest       {summary['rest_ms']:9.2f} ms   {spread('rest_ms')}")
    met = "met" if summary["goal_non_keygen_le_10pct"] else "NOT met"
    print(f"  everything but key generation: {summary['non_keygen_share_pct']:.2f} % of the "
          f"total (goal ≤ 10 %: {met})")
    for r in rates:
        print(f"SCP03 level {r['level']}: {r['command_bytes']}-byte command ({r['data_bytes']} data "
              f"bytes) wrap+unwrap+response both ways: {r['round_trips_per_s']}/s "
              f"({r['us_per_round_trip']} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
