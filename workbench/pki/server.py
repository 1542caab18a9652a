"""The authority's HTTP repository: CRLs, ARLs, CA certificates and OCSP on localhost.

smartphone-service.md 11.3 and jpki-card.md 9.7: revocation information is published as CRL
and ARL files (through the protocol named in the CRL distribution point) and over OCSP. This
server makes the simulated authority's publications reachable over real HTTP so that standard
relying-party software (OpenSSL, pyhanko-certvalidator, a browser) can fetch them.

URL layout (``{h}`` is ``sign`` or ``auth``, ``{N}`` the CA generation):

=====================================  ===========================  ==========================
path                                   what                          content type
=====================================  ===========================  ==========================
``/ca/{h}/g{N}.cer``                   CA certificate (DER)          application/pkix-cert
``/crl/{h}/g{N}.crl``                  full CRL of that CA           application/pkix-crl
``/crl/{h}/g{N}/{partition}.crl``      CRL of one municipality       application/pkix-crl
``/arl/{h}/g{N}.crl``                  authority revocation list     application/pkix-crl
``/ocsp`` (POST)                       OCSP (RFC 6960 A.1)           application/ocsp-response
``/ocsp/{base64 request}`` (GET)       OCSP (RFC 6960 A.1)           application/ocsp-response
``/stats``                             this worker's OCSP counters   application/json
=====================================  ===========================  ==========================

HTTP library: uvicorn with its httptools (llhttp) parser and uvloop, serving a small ASGI
application. Measured on this project's 2-CPU machine for a fixed 1.5 KB POST response with
``wrk`` (1 thread, 32 connections): uvicorn+httptools+uvloop ≈ 28 k req/s, aiohttp+uvloop
≈ 20 k, aiohttp on asyncio ≈ 16 k, uvicorn+httptools on asyncio ≈ 15 k. An OCSP answer from
the pre-signed cache costs about 15 µs of responder work, so the HTTP layer is most of the
per-request cost and its speed decides the throughput; with it the repository answers
≈ 8-10 k cached OCSP requests/s, about 4-5× ``openssl ocsp`` on the same data
(``benchmarks/ocsp_load.py``). uvicorn is a maintained, widely used server whose parser
rejects malformed HTTP with a 400 by itself. ``POST /ocsp``, the hot path, skips the
generic ASGI dispatch when it can be answered at once (:class:`_HttpProtocol`), and uvicorn's
two writes per response are joined into one (:class:`_CorkedTransport`).

Limits: request bodies (and base64 GET requests) over :data:`MAX_REQUEST_BYTES` get HTTP 413;
anything that reaches the OCSP endpoint and is not a usable OCSPRequest gets an OCSP
``malformedRequest`` (HTTP 200, as RFC 6960 puts the error in the OCSP response). The server
binds to loopback unless ``allow_remote`` is given: J-LIS only gives revocation information
to registered verifiers (smartphone-service.md 11.2), and a simulator whose keys can be
derived from a public seed has no business on a network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import logging
import os
import re
import select
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from workbench.errors import PkiError
from workbench.pki.crl import RevocationSource
from workbench.pki.ocsp import MALFORMED_REQUEST, OcspResponder, ResponderMode
from workbench.pki.profiles import (
    OCSP_PATH,
    Hierarchy,
    arl_path,
    ca_certificate_path,
    check_partition,
    crl_path,
)
from workbench.pki.store import AuthorityStore

#: DER of the id-pkix-ocsp-nonce OID (1.3.6.1.5.5.7.48.1.2, RFC 6960 4.4.1): a request that
#: carries it cannot be answered from the pre-signed cache.
_NONCE_OID_DER = bytes.fromhex("06092B0601050507300102")

__all__ = [
    "MAX_REQUEST_BYTES",
    "RepositoryApp",
    "RepositoryServer",
    "default_workers",
    "serve_workers",
    "is_loopback",
]

log = logging.getLogger(__name__)

#: Largest OCSP request accepted (body, or decoded GET path). A real OCSPRequest for a chain
#: is a few hundred bytes; 64 KiB leaves room for signed requests with certificates.
MAX_REQUEST_BYTES = 64 * 1024

CT_CERT = b"application/pkix-cert"  # RFC 2585 section 4.1
CT_CRL = b"application/pkix-crl"  # RFC 2585 section 4.2
CT_OCSP_RESPONSE = b"application/ocsp-response"  # RFC 6960 A.2
#: Where a JSON API given to the repository is mounted (``pki serve``: the application API).
API_PREFIX = "/v1/"
#: A JSON API: (method, path, JSON body) → (HTTP status, JSON answer); never raises for input.
JsonApi = Callable[[str, str, Any], tuple[int, Any]]
CT_TEXT = b"text/plain; charset=utf-8"
CT_JSON = b"application/json"

_H = "(?P<h>sign|auth)"
_G = r"g(?P<g>[0-9]{1,4})"
_CA_RE = re.compile(rf"/ca/{_H}/{_G}\.cer")
_CRL_RE = re.compile(rf"/crl/{_H}/{_G}\.crl")
_PARTITION_RE = re.compile(rf"/crl/{_H}/{_G}/(?P<p>[^/]{{1,200}})\.crl")
_ARL_RE = re.compile(rf"/arl/{_H}/{_G}\.crl")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()):
        super().__init__(message)
        self.status = status
        self.headers = headers


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _decode_get_request(encoded: str) -> bytes | None:
    """The DER in a GET URL: base64 of the request, URL-encoded (RFC 6960 A.1).

    The path arrives percent-decoded. Missing padding and the URL-safe alphabet (sent by some
    clients) are tolerated; ``None`` when it is not base64 at all.
    """
    text = encoded.strip()
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text.encode("ascii"))
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


class RepositoryApp:
    """The ASGI application behind :class:`RepositoryServer` (usable with any ASGI server).

    OCSP answers from the cache are made on the event loop's thread (tens of microseconds);
    answers that need a fresh signature go to a worker thread or not, see :meth:`_answer`.
    """

    def __init__(self, store: RevocationSource, responder: OcspResponder,
                 max_request_bytes: int = MAX_REQUEST_BYTES, *,
                 api: JsonApi | None = None, api_unavailable: str | None = None) -> None:
        self.store = store
        self.responder = responder
        self.max_request_bytes = max_request_bytes
        self.api = api
        self.api_unavailable = api_unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websocket are not used
            return
        try:
            status, content_type, body, headers = await self._handle(scope, receive)
        except _HttpError as exc:
            status, content_type, headers = exc.status, CT_TEXT, exc.headers
            body = (str(exc) + "\n").encode()
        except Exception:  # never let one request take the connection handling down
            log.exception("repository request failed: %s %s", scope.get("method"),
                          scope.get("path"))
            status, content_type, headers = 500, CT_TEXT, ()
            body = b"internal error\n"
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type),
                        (b"content-length", str(len(body)).encode()), *headers],
        })
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive
                      ) -> tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]]:
        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            return await self._api(method, path, scope, receive)
        if path == OCSP_PATH or path == OCSP_PATH + "/":
            if method != "POST":
                raise _HttpError(405, "OCSP over GET puts the base64 request in the path: "
                                 "GET /ocsp/<base64>; or POST the DER to /ocsp",
                                 ((b"allow", b"POST"),))
            der = await self._read_body(scope, receive)
            return 200, CT_OCSP_RESPONSE, await self._answer(der), ()
        if method not in ("GET", "HEAD"):
            raise _HttpError(405, f"{method} is not served here; use GET",
                             ((b"allow", b"GET, HEAD"),))
        if path.startswith(OCSP_PATH + "/"):
            encoded = path[len(OCSP_PATH) + 1:]
            if len(encoded) > self.max_request_bytes * 4 // 3 + 4:
                raise _HttpError(413 if len(encoded) < 1 << 20 else 414,
                                 f"OCSP request larger than {self.max_request_bytes} bytes")
            der = _decode_get_request(encoded)
            answer = await self._answer(der) if der else MALFORMED_REQUEST
            return 200, CT_OCSP_RESPONSE, answer, ()
        if path == "/":
            return 200, CT_TEXT, self._index().encode(), ()
        if path == "/stats":
            return 200, CT_JSON, self._stats(), ()
        if m := _CA_RE.fullmatch(path):
            return 200, CT_CERT, self._ca_certificate(m["h"], int(m["g"])), ()
        if m := _CRL_RE.fullmatch(path):
            return 200, CT_CRL, self._crl("crl", m["h"], int(m["g"]), None), ()
        if m := _PARTITION_RE.fullmatch(path):
            return 200, CT_CRL, self._crl("crl", m["h"], int(m["g"]), m["p"]), ()
        if m := _ARL_RE.fullmatch(path):
            return 200, CT_CRL, self._crl("arl", m["h"], int(m["g"]), None), ()
        raise _HttpError(404, f"nothing at {path}; GET / lists what is served")

    async def _api(self, method: str, path: str, scope: Scope, receive: Receive
                   ) -> tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]]:
        """A JSON API mounted at ``/v1`` (the smartphone service's application API, given by
        ``pki serve``): the JSON body in, the handler's status and JSON answer out. Handlers
        may block (a TSM session waits for the SE's key generation), so they run on a worker
        thread."""
        if self.api is None:
            reason = self.api_unavailable or "this repository serves no application API"
            return 503, CT_JSON, json.dumps({"error": reason}).encode(), ()
        if method not in ("GET", "POST"):
            return 405, CT_JSON, json.dumps({"error": f"{method} is not served on "
                                                      f"{API_PREFIX}; use GET or POST"}).encode(), (
                (b"allow", b"GET, POST"),)
        try:
            raw = await self._read_body(scope, receive) if method == "POST" else b""
        except _HttpError as exc:  # the API answers JSON, errors included
            return exc.status, CT_JSON, json.dumps({"error": str(exc)}).encode(), exc.headers
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return 400, CT_JSON, json.dumps({"error": f"the body is not JSON ({exc})"}).encode(), ()
        status, answer = await asyncio.to_thread(self.api, method, path, body)
        return status, CT_JSON, json.dumps(answer, ensure_ascii=False).encode(), ()

    #: Sign nonce requests on a worker thread (see :meth:`_answer`); ``serve_workers`` turns
    #: it off when its workers already fill every core.
    sign_in_thread = True

    async def _answer(self, der: bytes) -> bytes:
        """The OCSP answer. A request with a nonce needs a fresh RSA signature (~1 ms). In a
        process that has cores to spare (one server among other work, or fewer ``pki serve``
        workers than cores) it is signed on a worker thread: cryptography releases the GIL
        while signing, so the event loop keeps serving and another core signs. When the
        workers already fill every core, it is signed inline: a thread cannot find an idle
        core there, and the hand-off cost 15-20 % more CPU per signed answer, measured with
        ``benchmarks/ocsp_load.py`` (fresh signing, N = 2 on 2 cores). Everything else, mostly
        cached answers, is answered inline, where a thread hand-off would cost more than the
        work."""
        answer = self.answer_inline(der)
        if answer is None:
            return await asyncio.to_thread(self.responder.respond, der)
        return answer

    def answer_inline(self, der: bytes) -> bytes | None:
        """The OCSP answer made on this thread now, or None when it belongs on a worker
        thread (see :meth:`_answer`). Used by :meth:`_answer` and by the HTTP protocol's fast
        path for ``POST /ocsp`` (:class:`_HttpProtocol`)."""
        if self.sign_in_thread and _NONCE_OID_DER in der:
            return None
        return self.responder.respond(der)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_request_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise _HttpError(400, "Content-Length is not a number") from None
                if declared > limit:
                    raise _HttpError(413, f"request body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HttpError(400, "client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _HttpError(413, f"request body larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _generation(self, hierarchy: str, generation: int) -> Hierarchy:
        numbers = {g.number for g in self.store.authority.profile.generations}
        if generation not in numbers:
            raise _HttpError(404, f"no {hierarchy} CA generation {generation}; this authority "
                             f"has {sorted(numbers)}")
        return Hierarchy(hierarchy)

    def _ca_certificate(self, hierarchy: str, generation: int) -> bytes:
        h = self._generation(hierarchy, generation)
        return self.store.authority.ca(h, generation).certificate.public_bytes(Encoding.DER)

    def _crl(self, kind: str, hierarchy: str, generation: int, partition: str | None) -> bytes:
        """The publication in force now (:mod:`workbench.pki.crl`: same bytes until the next)."""
        h = self._generation(hierarchy, generation)
        try:
            if partition is not None:
                partition = check_partition(partition)
            return self.store.publish(h, generation, partition, arl=kind == "arl").der
        except PkiError as exc:  # no such partition, generation not started yet, ...
            raise _HttpError(404, str(exc)) from None

    def _stats(self) -> bytes:
        """The pre-signed cache's counters of the process that answers (one worker of
        ``pki serve --workers N``: each has its own cache; ``benchmarks/ocsp_load.py`` asks
        every worker for its cache hit rate and the number of signatures it made)."""
        return json.dumps({"pid": os.getpid(),
                           "ocsp_cache": asdict(self.responder.cache_stats)}).encode()

    def _index(self) -> str:
        numbers = sorted(g.number for g in self.store.authority.profile.generations)
        lines = ["jpki-workbench simulated authority repository (synthetic, test only)", ""]
        for h in Hierarchy:
            for n in numbers:
                lines += [ca_certificate_path(h, n), crl_path(h, n),
                          crl_path(h, n, "PARTITION"), arl_path(h, n)]
        lines += [f"POST {OCSP_PATH}", f"GET {OCSP_PATH}/<base64 OCSPRequest>",
                  "GET /stats (this worker's OCSP cache counters)"]
        if self.api is not None:
            lines += ["", f"GET/POST {API_PREFIX}... the smartphone service's application API "
                          "(JSON; its endpoints: docs/service-model.md)"]
        elif self.api_unavailable:
            lines += ["", f"{API_PREFIX}: {self.api_unavailable}"]
        return "\n".join([*lines, ""])


class _CorkedTransport:
    """A transport whose writes within one event-loop iteration leave as one ``send``.

    uvicorn writes the status line and headers, then the body, as two writes: two system calls
    and two TCP segments per response, for answers of a few hundred bytes. Holding the first
    write until the end of the loop iteration (the body follows in the same iteration) sends
    one segment; nothing waits longer than that iteration. Everything else is the transport's.
    """

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a fast path for ``POST /ocsp``, on a corked transport.

    An OCSP answer from the pre-signed cache costs about 20 µs of responder work, and the
    generic ASGI dispatch around it (a scope, a request-response cycle with its event, a
    task, receive and two send messages) cost several times that: measured with
    ``benchmarks/ocsp_load.py``, 145 µs of server CPU per cached answer through ASGI against
    87 µs through this path. A ``POST /ocsp`` that
    can be answered on the event loop's thread is answered right here, when its body is
    complete: one write, then the same bookkeeping as uvicorn's own ``on_response_complete``
    (keep-alive timer, pipelined requests, reading resumed). Everything else is uvicorn's
    ordinary ASGI path, which also gets a request that turns out to need a worker thread
    (:meth:`RepositoryApp.answer_inline` says None): its parser events are replayed there, in
    order. Requests the fast path leaves to ASGI: other methods and paths, a query string,
    ``Expect: 100-continue``, no or a too large Content-Length (ASGI answers 413), a request
    pipelined behind one still in ASGI, protocol upgrades.
    """

    _fast = False  # this request is on the fast path
    _fast_body: list[bytes]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CorkedTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        app = self.config.app
        if (isinstance(app, RepositoryApp) and self.url in _FAST_PATHS
                and self.parser.get_method() == b"POST" and not self.expect_100_continue
                and (self.cycle is None or self.cycle.response_complete) and not self.pipeline
                and not self.parser.should_upgrade()
                and self._declared_length() <= app.max_request_bytes):
            self._fast = True
            self._fast_body = []
            return
        super().on_headers_complete()

    def _declared_length(self) -> int:
        """Content-Length of this request; above any limit when absent or unreadable."""
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    break
        return 1 << 62

    def on_body(self, body: bytes) -> None:
        if self._fast:
            self._fast_body.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._fast:
            super().on_message_complete()
            return
        self._fast = False
        der = b"".join(self._fast_body)
        self._fast_body = []
        app = self.config.app
        try:
            answer = app.answer_inline(der)
        except Exception:  # the ASGI path would answer 500 too (RepositoryApp.__call__)
            log.exception("repository request failed: POST %s", OCSP_PATH)
            self._fast_write(500, CT_TEXT, b"internal error\n")
            return
        if answer is None:  # needs a worker thread: uvicorn's ASGI path, same events, in order
            super().on_headers_complete()
            super().on_body(der)
            super().on_message_complete()
            return
        self._fast_write(200, CT_OCSP_RESPONSE, answer)

    def _fast_write(self, status: int, content_type: bytes, body: bytes) -> None:
        keep_alive = (self.parser.get_http_version() != "1.0"
                      and self.parser.should_keep_alive())
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", content_type, b"\r\ncontent-length: ",
                 str(len(body)).encode(), b"\r\n"]
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", body]
        self.transport.write(b"".join(head))
        if keep_alive:
            self.on_response_complete()  # keep-alive timer, pipelined requests, flow control
        else:
            self.server_state.total_requests += 1
            self.transport.close()


#: Request targets answered by the fast path (exactly as sent: no query, no percent-encoding).
_FAST_PATHS = (OCSP_PATH.encode(), OCSP_PATH.encode() + b"/")


class _UvicornServer(uvicorn.Server):
    """uvicorn's server with two changes for an embedded server.

    SIGINT/SIGTERM end :meth:`run` normally instead of being re-raised after shutdown (uvicorn
    restores the previous handlers and raises the signal again, which would turn a clean
    ``kill`` into death by SIGTERM; the CLI wants exit status 0). ``on_ready`` is called on the
    server's thread once it listens, so nobody has to poll for it.
    """

    on_ready: Callable[[], None] | None = None

    async def main_loop(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
        await super().main_loop()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class RepositoryServer:
    """The repository on a real socket, in a background thread or in the foreground.

    ``RepositoryServer(store).start()`` returns the base URL (``http://127.0.0.1:PORT``;
    ``port=0`` picks a free port); :meth:`stop` shuts it down. Also a context manager.
    ``ocsp_signer`` is ``"direct"`` or ``"delegated"`` (see :mod:`workbench.pki.ocsp`);
    ``ocsp_validity`` and ``ocsp_cache_for`` set the response window and reuse time;
    ``ocsp_sign_in_thread=False`` signs nonce requests on the event loop's thread.
    ``api`` mounts a JSON API at ``/v1/`` (``pki serve`` mounts the smartphone service's
    application API there); without it ``/v1/`` answers 503 with ``api_unavailable``.
    The responder is available as :attr:`responder` (e.g. for its delegated certificates).
    """

    def __init__(
        self,
        store: RevocationSource,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ocsp_signer: ResponderMode | str = ResponderMode.DIRECT,
        ocsp_validity: timedelta = timedelta(hours=1),
        ocsp_cache_for: timedelta | None = None,
        ocsp_sign_in_thread: bool = True,
        allow_remote: bool = False,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        api: JsonApi | None = None,
        api_unavailable: str | None = None,
    ) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise PkiError(f"port must be 0..65535, got {port!r}")
        if not allow_remote and not is_loopback(host):
            raise PkiError(f"refusing to serve on {host}: the simulated authority serves "
                           "loopback only (127.0.0.1, ::1); pass allow_remote=True "
                           "(--allow-remote) if you really mean to expose it")
        if not isinstance(store, RevocationSource):
            raise PkiError(f"store must be an AuthorityStore (or a RevocationSide), got "
                           f"{type(store).__name__}")
        self.store = store
        self.host = host
        self.port = port
        self.responder = OcspResponder(store.authority, store.registry, mode=ocsp_signer,
                                       validity=ocsp_validity, cache_for=ocsp_cache_for)
        self.app = RepositoryApp(store, self.responder, max_request_bytes, api=api,
                                 api_unavailable=api_unavailable)
        self.app.sign_in_thread = ocsp_sign_in_thread
        self._server: _UvicornServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url: str | None = None

    def __repr__(self) -> str:
        where = self.base_url or "not started"
        return f"RepositoryServer({where}, ocsp={self.responder.mode.value})"

    def _bind(self, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self.host.strip("[]"), self.port))
        except OSError as exc:
            sock.close()
            raise PkiError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        if listen:
            sock.listen(2048)
        sock.set_inheritable(True)
        return sock

    def _uvicorn(self) -> _UvicornServer:
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            http=_HttpProtocol,
            ws="none",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # nobody proxies a loopback repository; do not trust X-Forwarded-*
            timeout_graceful_shutdown=5,
        )
        return _UvicornServer(config)

    def _url(self, sock: socket.socket) -> str:
        host, port = sock.getsockname()[:2]
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> str:
        """Serve in a daemon thread; returns the base URL once the server accepts requests."""
        if self._thread is not None:
            raise PkiError("the repository server is already running; stop() it first")
        self._socket = self._bind()
        self._server = self._uvicorn()
        self.base_url = self._url(self._socket)
        ready = threading.Event()
        self._server.on_ready = ready.set
        self._thread = threading.Thread(target=self._run_in_thread, args=(ready,),
                                        name=f"repository {self.base_url}", daemon=True)
        self._thread.start()
        ready.wait(timeout=60)
        if not (self._server.started and self._thread.is_alive()):
            self.stop()
            raise PkiError("the repository server did not start (see the log)")
        return self.base_url

    def _run_in_thread(self, ready: threading.Event) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        finally:
            ready.set()  # wake start() if the server died before it was ready

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def serve_forever(self, ready: Callable[[str], None] | None = None, *,
                      sock: socket.socket | None = None) -> None:
        """Serve in the calling (main) thread until SIGINT or SIGTERM; then return.

        ``sock``: an already listening socket to serve on (a worker of :func:`serve_workers`).
        """
        self._socket = sock if sock is not None else self._bind()
        self._server = self._uvicorn()
        self.base_url = self._url(self._socket)
        server = self._server
        base_url = self.base_url
        if ready is not None:
            server.on_ready = lambda: ready(base_url)
        try:
            server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self._server = self._socket = None

    def __enter__(self) -> RepositoryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_workers() -> int:
    """The number of cores this process may run on: the default of ``pki serve --workers``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve_workers(
    open_store: Callable[[], AuthorityStore],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int | None = None,
    ready: Callable[[str], None] | None = None,
    allow_remote: bool = False,
    ready_timeout: float = 60.0,
    api_factory: Callable[[AuthorityStore], JsonApi] | None = None,
    **server_options: Any,
) -> None:
    """Serve the repository with ``workers`` processes sharing one port.

    The port is bound here, then each worker is forked and opens the authority store itself
    (``open_store``): SQLite connections must never cross a fork, and each worker follows
    changes made by any process through its own connection (the registry's data_version, see
    :mod:`workbench.pki.ocsp`). Each worker listens on its own SO_REUSEPORT socket and the
    kernel spreads new connections over them (see the comment in the code). ``ready`` is
    called once every worker listens. SIGINT or SIGTERM stops every worker; this returns
    when all have stopped. A worker that dies stops the others and raises
    :class:`PkiError`. ``workers=1`` serves in this process.

    ``api_factory`` makes the JSON API mounted at ``/v1/`` from the opened store. Only a
    single worker mounts it: an API that keeps sessions in memory (the TSM sessions of the
    application API) cannot be spread over processes, so with more workers ``/v1/`` answers
    503 saying to serve with ``--workers 1``.
    """
    workers = default_workers() if workers is None else workers
    # workers that fill every core sign inline (RepositoryApp._answer says why)
    server_options.setdefault("ocsp_sign_in_thread", workers < default_workers())
    if not isinstance(workers, int) or workers < 1:
        raise PkiError(f"workers must be a whole number ≥ 1, got {workers!r}")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise PkiError(f"port must be 0..65535, got {port!r}")
    if not allow_remote and not is_loopback(host):
        raise PkiError(f"refusing to serve on {host}: the simulated authority serves loopback "
                       "only (127.0.0.1, ::1); pass allow_remote=True (--allow-remote) if you "
                       "really mean to expose it")
    if workers == 1:
        with open_store() as store:
            api = api_factory(store) if api_factory is not None else None
            RepositoryServer(store, host, port, allow_remote=allow_remote, api=api,
                             **server_options).serve_forever(ready)
        return
    if api_factory is not None:
        server_options["api_unavailable"] = (
            f"the application API runs in one process only (its TSM sessions live in memory); "
            f"this repository runs {workers} workers: serve with --workers 1")
    # Each worker listens on a socket of its own bound with SO_REUSEPORT, and the kernel spreads
    # new connections over them. With one shared listening socket the first worker to wake
    # accepted every pending connection (libuv accepts until the queue is empty): measured
    # here, 16 keep-alive connections opened together all went to one of two workers in
    # three tries out of five, leaving the other idle. The parent's socket only reserves the
    # port (and picks it for port 0); it never listens. Without SO_REUSEPORT: one shared socket.
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    probe = RepositoryServer.__new__(RepositoryServer)  # only for _bind and _url
    probe.host, probe.port = host, port
    sock = probe._bind(reuse_port=reuse_port, listen=not reuse_port)
    base_url = probe._url(sock)  # sets probe.port to the port actually bound
    read_end, write_end = os.pipe()
    children: list[int] = []
    # SIGINT/SIGTERM wait (blocked) until _supervise can forward them: a signal arriving
    # between the fork and the handler would otherwise end this process by the default action
    # and leave its workers running with nobody to stop them
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(read_end)
                code = 1
                try:
                    for sig in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(sig, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
                    if reuse_port:
                        own = probe._bind(reuse_port=True)
                        sock.close()
                        sock = own
                    with open_store() as store:
                        server = RepositoryServer(store, host, port, allow_remote=allow_remote,
                                                  **server_options)
                        server.serve_forever(lambda _url: os.write(write_end, b"1"), sock=sock)
                    code = 0
                except BaseException as exc:  # noqa: BLE001 - reported, then the worker exits
                    log.error("repository worker %d failed: %s", os.getpid(), exc)
                finally:
                    os._exit(code)
            children.append(pid)
        os.close(write_end)
        write_end = -1
        sock.close()  # the workers hold it (or their own, bound to the same port)
        _await_workers(read_end, workers, ready_timeout, children)
        if ready is not None:
            ready(base_url)
        _supervise(children)
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)  # last: the workers are gone


def _await_workers(read_end: int, workers: int, timeout: float, children: list[int]) -> None:
    """Block until every worker reported that it listens (one byte each through a pipe)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < workers:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([read_end], [], [], max(0.0, left))
        if not readable:
            raise PkiError(f"only {seen} of {workers} repository workers started within "
                           f"{timeout:g} s")
        chunk = os.read(read_end, workers)
        if not chunk:
            raise PkiError(f"a repository worker died while starting ({seen} of {workers} "
                           "were ready); see the log")
        seen += len(chunk)


def _supervise(children: list[int]) -> None:
    """Forward SIGINT/SIGTERM to the workers and wait for them; a dying worker stops all."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    # a stop that came while the workers started (blocked in serve_workers) is handled now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        alive = set(children)
        failed = False
        while alive:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            alive.discard(pid)
            if not stopping:  # a worker ended on its own: take the others down too
                failed = True
                log.error("repository worker %d ended (exit status %d)", pid,
                          os.waitstatus_to_exitcode(status))
                stop(signal.SIGTERM, None)
        if failed:
            raise PkiError("a repository worker stopped unexpectedly; all workers were stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
