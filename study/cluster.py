"""The Ray cluster a study runs on: joined or started locally, and checked to fit one trial."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

from study.errors import UserError

# Every worker of the study, trial or idle, exits quietly when Ray stops it (see study.worker_signals).
WORKER_SETUP = {"worker_process_setup_hook": "study.worker_signals.exit_quietly_on_sigterm"}


def auth_token_available() -> bool:
    """Whether Ray can find an authentication token (the places Ray itself looks)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")) or (
        Path.home() / ".ray" / "auth_token"
    ).is_file()


def use_token_to_join(address: str | None) -> None:
    """Before Ray is imported: send the token when joining a cluster that may require one.

    Ray 2.59+ `ray start --head` turns token authentication on when a token file exists, but
    ray.init(address=...) sends no token unless RAY_AUTH_MODE=token (it waits 20 s, then fails).
    Ray reads the mode once, so it is set before anything imports ray; a token-mode client also
    joins clusters that run without authentication.
    """
    if address and "RAY_AUTH_MODE" not in os.environ and auth_token_available():
        os.environ["RAY_AUTH_MODE"] = "token"


RAY_DEFAULT_PORT = 6379  # `ray start --head`'s GCS port
REACH_TIMEOUT_S = 5
# Ray's GCS (HOST:PORT) and its client server (ray://HOST:PORT) speak gRPC, that is HTTP/2: a client opens
# with this preface and an empty SETTINGS frame, and a gRPC server sends its own SETTINGS frame at once.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
HTTP2_SETTINGS = 0x4  # the frame type, the fourth byte of a frame header


def check_reachable(address: str | None) -> None:
    """A UserError when no Ray cluster answers at a HOST:PORT `address`: nothing listens there, or something
    that is not Ray does (a web server, say). ray.init would retry for minutes either way, deaf to SIGTERM.

    `auto` (the cluster started on this machine) is left to Ray, which answers at once.
    """
    if not address or address == "auto":
        return
    target = address.removeprefix("ray://")
    host, colon, port_text = target.rpartition(":")
    if not colon:
        host, port_text = target, str(RAY_DEFAULT_PORT)
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise UserError(f"--address {address}: {port_text!r} is not a port; write HOST:PORT (e.g. 10.0.0.1:6379) or auto.") from None
    try:
        connection = socket.create_connection((host.strip("[]"), port), timeout=REACH_TIMEOUT_S)
    except OSError as error:
        raise UserError(
            f"Cannot join the Ray cluster at {address}: nothing answers there ({error.strerror or error}). Start its head "
            f"with `ray start --head` on that machine (it prints the address to give), or pass --address auto on a "
            f"node of a running cluster."
        ) from None
    with connection:
        answer = _grpc_answer(connection)
    if answer is not None:
        raise UserError(
            f"Cannot join the Ray cluster at {address}: something listens there, but it is not Ray ({answer}; Ray "
            f"answers in gRPC). Check the port: `ray start --head` prints the address to give (port 6379 by "
            f"default, 10001 for ray://)."
        )


def _grpc_answer(connection: socket.socket) -> str | None:
    """None when the server at the other end of `connection` speaks gRPC (HTTP/2), else what it did instead.
    With TLS on (RAY_USE_TLS) the handshake is encrypted and cannot be probed like this: taken as gRPC."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    try:
        connection.sendall(HTTP2_PREFACE)
        header = b""
        while len(header) < 9:  # a frame header is 9 bytes; a text answer is shown from its first line
            chunk = connection.recv(64)
            if not chunk:
                break
            header += chunk
    except socket.timeout:
        return f"it sent nothing within {REACH_TIMEOUT_S} s"
    except OSError as error:
        return f"it dropped the connection ({error.strerror or error})"
    if len(header) >= 9 and header[3] == HTTP2_SETTINGS:
        return None
    if not header:
        return "it closed the connection without a word"
    shown = header.decode("ascii", "replace").splitlines()[0].strip()[:60]
    return f"it answered {shown!r}" if shown.isprintable() and shown else f"it answered the bytes {header[:9].hex()}"


def check_dashboard_host(address: str | None, host: str) -> None:
    """A UserError unless the dashboard of a cluster started here can listen on `host` (Ray would try
    50 ports for a minute, then print a traceback); joining a cluster (`address`) starts no dashboard."""
    if address:
        return
    try:
        with socket.socket(_address_family(host), socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError as error:
        raise UserError(
            f"--dashboard-host {host}: the Ray dashboard cannot listen there ({error.strerror or error}); give an "
            f"address of this machine: 127.0.0.1 (private, the default) or 0.0.0.0 (every interface)."
        ) from None


def _address_family(host: str) -> int:
    """AF_INET or AF_INET6; a literal address needs no name lookup (a machine without DNS still binds 127.0.0.1)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name: resolved as Ray's server will resolve it (socket.gaierror is an OSError)
        return socket.getaddrinfo(host, None)[0][0]


def connect_ray(address: str | None, dashboard_host: str) -> None:
    """Join a cluster, or start a local Ray with its dashboard (an already running Ray is reused)."""
    import ray

    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, runtime_env=WORKER_SETUP)
        except ConnectionError as error:
            raise UserError(f"Cannot join the Ray cluster at {address}: {error}") from None
        return
    context = ray.init(include_dashboard=True, dashboard_host=dashboard_host, runtime_env=WORKER_SETUP)
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}", flush=True)


def trial_resources(cpus_per_trial: float, gpus_per_trial: float | None, max_concurrent: int | None) -> tuple[float, int]:
    """(GPUs per trial, trials at once), after checking that one trial fits a node (Ray would wait forever)."""
    import ray

    available = ray.cluster_resources()
    # A trial runs on one node: it must fit the largest one, not the cluster's total.
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    largest = {kind: max((node.get(kind, 0) for node in nodes), default=0) for kind in ("CPU", "GPU")}
    gpus = gpus_per_trial
    if gpus is None:
        gpus = 1.0 if largest["GPU"] >= 1 else 0.0
    if gpus > largest["GPU"]:
        raise UserError(f"--gpus-per-trial {gpus:g} asks for more GPUs than any node of the Ray cluster has ({largest['GPU']:g}).")
    if cpus_per_trial > largest["CPU"]:
        raise UserError(f"--cpus-per-trial {cpus_per_trial:g} asks for more CPUs than any node of the Ray cluster has ({largest['CPU']:g}).")
    if max_concurrent is not None:
        return gpus, max_concurrent
    fits = available["CPU"] // cpus_per_trial
    if gpus:
        fits = min(fits, available["GPU"] // gpus)
    return gpus, max(1, int(fits))
