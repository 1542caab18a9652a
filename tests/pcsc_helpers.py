"""A pcscd of our own for tests and benchmarks: private socket, private vpcd ports, no clash.

pcsc-lite 1.9.9 (Debian 12) hard-codes its socket and pid file in the daemon
(``/run/pcscd/pcscd.comm``, ``/run/pcscd/pcscd.pid``); only the *client* library reads
``PCSCLITE_CSOCK_NAME``, and it reads it once per process (the name is cached on first use).
A second pcscd started naively would therefore delete the system daemon's socket when it
exits. Two ways around that, tried in order:

1. **Private mount namespace** (``unshare --mount``, or ``unshare --user --map-root-user
   --mount`` without root): inside it our runtime folder is bind-mounted over ``/run``, so
   pcscd's ``/run/pcscd/*`` land in ``<runtime>/pcscd/``; nothing outside is touched. The
   mount is private to that one process and disappears with it.
2. **systemd socket activation**, no namespace needed: we create the listening socket
   ourselves and hand it to pcscd as fd 3 with ``LISTEN_FDS=1`` / ``LISTEN_PID``. pcscd then
   never creates or deletes ``/run/pcscd/pcscd.comm``; it still writes (and at exit removes)
   its pid file there and may leave an empty ``/run/pcscd``, so this is used only when no
   other pcscd has a pid file.

vpcd's port comes from ``DEVICENAME /dev/null:PORT`` in reader.conf (the installed driver
parses the part after the colon; CHANNELID is not used when DEVICENAME is present), and pcscd
takes a private reader.conf folder with ``-c DIR``. The two slots of the Debian vpcd listen on
PORT and PORT+1, on all interfaces (vpcd binds INADDR_ANY; our card servers connect over
loopback only). A free pair of ports is chosen per start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
ROOT = Path(__file__).resolve().parents[1]


def pcscd_path() -> str | None:
    """pcscd lives in /usr/sbin, which an ordinary user's PATH often lacks."""
    found = shutil.which("pcscd")
    if found is None:
        for folder in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
            if os.access(f"{folder}/pcscd", os.X_OK):
                return f"{folder}/pcscd"
    return found


def stack_missing() -> str | None:
    """Why the PC/SC stack cannot be used here (None when it can)."""
    if pcscd_path() is None:
        return "pcscd is not installed (apt-get install pcscd; .ci/run does it)"
    if not VPCD_DRIVER.exists():
        return f"vsmartcard-vpcd is not installed ({VPCD_DRIVER} missing; .ci/run installs it)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        return "pyscard is not installed (needs swig and libpcsclite-dev; `make` installs it when they exist)"
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))  # vpcd binds INADDR_ANY, so test the same
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free now (vpcd's two slots)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 0xFFFF and _port_free(port) and _port_free(port + 1):
            return port
    raise RuntimeError("no free pair of TCP ports found")


def _can_unshare(args: list[str]) -> bool:
    try:
        return subprocess.run([*args, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class PrivatePcscd:
    """``pcscd -f`` with its own socket, pid file and vpcd ports. ``start``/``stop``/``restart``.

    ``runtime``: a short folder (unix socket paths are limited to 107 bytes). The client side
    must have ``PCSCLITE_CSOCK_NAME`` = :attr:`socket_path` in its environment *before* the
    first PC/SC call of the process (see :attr:`env`).
    """

    def __init__(self, runtime: Path, port: int | None = None) -> None:
        self.runtime = Path(runtime)
        self.port = port or free_port_pair()
        self.log_path = self.runtime / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self.isolation = self._choose_isolation()
        if self.isolation == "namespace":
            self.socket_path = self.runtime / "run" / "pcscd" / "pcscd.comm"
        else:
            self.socket_path = self.runtime / "pcscd.comm"

    @staticmethod
    def default_socket_path(runtime: Path) -> Path:
        """Where the socket will be, known before the daemon exists (for the env var)."""
        return PrivatePcscd(runtime, port=1).socket_path

    def _choose_isolation(self) -> str:
        if shutil.which("unshare"):
            if os.geteuid() == 0 and _can_unshare(["unshare", "--mount", "--propagation", "private"]):
                return "namespace"
            if _can_unshare(["unshare", "--user", "--map-root-user", "--mount"]):
                return "namespace"
        return "socket-activation"

    def unshare_prefix(self) -> list[str]:
        if os.geteuid() == 0:
            return ["unshare", "--mount", "--propagation", "private"]
        return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]

    @property
    def env(self) -> dict[str, str]:
        """The environment for PC/SC clients (pyscard, opensc-tool, pcsc_scan, our CLI)."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    def conflict(self) -> str | None:
        """Why this daemon cannot start without touching another one (None when it can)."""
        if self.isolation == "socket-activation" and Path("/run/pcscd/pcscd.pid").exists():
            return ("no private mount namespace available and another pcscd owns /run/pcscd/pcscd.pid; "
                    "refusing to start a second daemon that would overwrite it")
        return None

    def _write_config(self) -> Path:
        conf = self.runtime / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:{self.port}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
        )
        return conf

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            raise RuntimeError("pcscd is already running")
        why = self.conflict()
        if why:
            raise RuntimeError(why)
        conf = self._write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            if self.isolation == "namespace":
                run = self.runtime / "run"
                run.mkdir(exist_ok=True)
                script = 'mount -n --bind "$1" /run && exec "$3" -f -c "$2"'
                self.process = subprocess.Popen(
                    [*self.unshare_prefix(), "sh", "-c", script, "sh", str(run), str(conf), str(pcscd_path())],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.socket_path.unlink()
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listener.bind(str(self.socket_path))
                os.chmod(self.socket_path, 0o666)
                listener.listen(64)
                self._listener = listener
                script = 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$2" -f -c "$1" 3<&0 0</dev/null'
                self.process = subprocess.Popen(
                    ["sh", "-c", script, "sh", str(conf), str(pcscd_path())],
                    stdin=listener.fileno(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
        finally:
            log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until both vpcd readers are listed through our socket (in a subprocess, so this
        process's cached socket name plays no part)."""
        deadline = time.monotonic() + timeout
        probe = "from smartcard import scard\n" \
                "h, c = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)\n" \
                "h, r = scard.SCardListReaders(c, []) if h == 0 else (h, [])\n" \
                "print(len([n for n in r if 'Virtual PCD' in n]))\n"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.process.returncode}: {self.log_tail()}")
            if self.socket_path.exists():
                out = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True,
                                     text=True, timeout=10)
                if out.stdout.strip() == "2":
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pcscd did not list the two vpcd readers within {timeout} s: {self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout=timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    def __enter__(self) -> PrivatePcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal(process: subprocess.Popen, sig: int) -> None:
    """Signal a process we started; when it leads its own session (start_new_session=True),
    signal that whole group, so nothing it might have forked outlives it."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
    """Signal one process we started (by its id), wait, and SIGKILL it if it lingers."""
    if process.poll() is None:
        _signal(process, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            process.wait(timeout)
    return process.returncode


def serve_cards(paths: list[Path], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``jpki-workbench card serve`` for one or two images, as a child process."""
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench", "card", "serve", *map(str, paths), "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def short_runtime_dir(prefix: str = "wb-pcsc-") -> Path:
    """A fresh folder with a short path (unix socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if Path("/tmp").is_dir() else None))
