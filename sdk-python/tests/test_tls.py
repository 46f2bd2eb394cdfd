"""TLS and mTLS from every Python client (``credentials=``), with certificates made here by openssl."""

from __future__ import annotations

import pathlib
import subprocess

import grpc
import pytest

from throttlekit import FleetBackend, MonitorBackend, ServiceBackend, ServiceUnavailableError

from .conftest import StartServer

POLICIES = """version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  fed:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
"""


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN py-client), all P-256."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=py-test-ca", cwd=d)
    for name, ext in [
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ]:
        (d / f"{name}.ext").write_text(ext + "\n")
        cn = "localhost" if name == "server" else "py-client"
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d,
        )  # fmt: skip
    return d


def _creds(pki: pathlib.Path, *, client: bool) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "client.key").read_bytes() if client else None,
        certificate_chain=(pki / "client.pem").read_bytes() if client else None,
    )


def test_every_client_over_mtls(pki: pathlib.Path, start_server: StartServer) -> None:
    srv = start_server(
        POLICIES,
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), "--tls-ca", str(pki / "ca.pem"),
        "--monitor-secret", "m0n", "--fleet-secret", "fl33t",
    )  # fmt: skip
    creds = _creds(pki, client=True)
    with ServiceBackend(srv.addr, credentials=creds) as rl:
        assert rl.check("api", "$peer").remaining == 4
        # "$peer" is the certificate's CN: the same budget under its name.
        assert rl.peek("api", "py-client").remaining == 4
    with MonitorBackend(srv.addr, credentials=creds, secret="m0n") as mon:
        assert mon.get_snapshot().mode == "process"
    with FleetBackend(srv.addr, credentials=creds, secret="fl33t") as fleet:
        assert fleet.reserve("fed", wants=3).capacity == 3
    no_cert = _creds(pki, client=False)
    with ServiceBackend(srv.addr, credentials=no_cert, timeout=10) as rl, pytest.raises(ServiceUnavailableError):
        rl.check("api", "k")
    with ServiceBackend(srv.addr, timeout=10) as rl, pytest.raises(ServiceUnavailableError):
        rl.check("api", "k")  # plaintext to a TLS port
