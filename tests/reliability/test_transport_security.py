"""TLS to TiDB is verified by default (certificate and host name), and no secret reaches logs, traces or runs.

The TLS tests use the real connection path (Settings → SQLAlchemy → PyMySQL) against a small MySQL-protocol server
on 127.0.0.1 that offers TLS with a throwaway certificate, and report whether the TLS handshake completed.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from doubles import FakeOpenAIServer, HashEmbedderDouble
from sqlalchemy import text

from timemory import DatabaseError, Settings, TiMem
from timemory.providers import OpenAILLM
from timemory.store import Store
from timemory.wiring import build_store, describe

CAPABILITIES = 0x1 | 0x8 | 0x200 | 0x800 | 0x8000 | 0x80000  # long password, db, 4.1, SSL, secure conn, plugin auth


def certificate(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True)
    return cert, key


class TLSOnlyMySQLServer:
    """Greets like a MySQL 5.7 / TiDB server that supports TLS, then only does the TLS handshake."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                payload = (b"\x0a" + b"8.0.11-TiDB-v8.5.0\x00" + struct.pack("<I", 1) + b"12345678\x00"
                           + struct.pack("<H", CAPABILITIES & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
                           + struct.pack("<H", CAPABILITIES >> 16) + b"\x15" + b"\x00" * 10 + b"123456789012\x00"
                           + b"mysql_native_password\x00")
                conn.sendall(struct.pack("<I", len(payload))[:3] + b"\x00" + payload)
                try:
                    conn.recv(4 + 32)  # the client's SSL request
                    with self.ctx.wrap_socket(conn, server_side=True):
                        self.handshakes += 1
                except (OSError, ssl.SSLError):
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return {"right host": certificate(folder, "tidb-local", "IP:127.0.0.1"),
            "other host": certificate(folder, "tidb-elsewhere", "DNS:gateway.tidb.example")}


def connect(port: int, **settings: object) -> str:
    """Open the store the app would open; the database error it gives (every case here ends in one)."""
    s = Settings(_env_file=None, tidb_host="127.0.0.1", tidb_port=port, tidb_user="u.root",
                 tidb_password="tls-test-SECRET", **settings)  # type: ignore[arg-type]
    with pytest.raises(DatabaseError) as info:
        build_store(s, HashEmbedderDouble())  # type: ignore[arg-type]
    assert "tls-test-SECRET" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(("cert", "settings", "handshake", "says"), [
    ("right host", {}, False, "CERTIFICATE_VERIFY_FAILED"),  # default: system CAs; a self-signed server is refused
    ("right host", {"tidb_ssl_ca": "CA"}, True, ""),  # trusted CA and matching host: TLS is up
    ("other host", {"tidb_ssl_ca": "CA"}, False, "mismatch"),  # trusted CA, wrong host name: refused
    ("other host", {"tidb_ssl_verify": False}, True, ""),  # explicitly unverified: connects (and warns)
], ids=["untrusted certificate", "trusted and matching", "host name mismatch", "verification off"])
def test_tidb_tls_verifies_certificate_and_host(certs, caplog, cert: str, settings: dict, handshake: bool,  # type: ignore[no-untyped-def, type-arg]
                                                says: str) -> None:
    cert_file, key_file = certs[cert]
    server = TLSOnlyMySQLServer(cert_file, key_file)
    try:
        settings = {k: (str(cert_file) if v == "CA" else v) for k, v in settings.items()}
        with caplog.at_level(logging.WARNING):
            error = connect(server.port, **settings)
    finally:
        server.close()
    assert (server.handshakes > 0) is handshake, error
    assert says in error
    assert ("NOT verified" in caplog.text) is (settings.get("tidb_ssl_verify") is False)


def test_no_secret_in_logs_errors_traces_or_runs(tmp_path, caplog) -> None:
    key, password = "sk-test-KEY-SECRET-123", "db-PASSWORD-SECRET-456"
    answers = iter([(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
                    (200, '{"facts": [{"content": "The user lives in Oslo.", "type": "personal"}]}')])
    with caplog.at_level(logging.DEBUG), FakeOpenAIServer(lambda body: next(answers)) as server:
        settings = Settings(_env_file=None, openai_api_key=key, openai_base_url=server.base_url,
                            tidb_password=password, database_url=f"sqlite:///{tmp_path}/t.db")
        store = Store.from_url(settings.sqlalchemy_url(), embedding_model="all-MiniLM-L6-v2", embedding_dim=384)
        tm = TiMem(store, HashEmbedderDouble(), OpenAILLM.connect(api_key=key, base_url=server.base_url, model="m",
                                                                  max_retries=0))  # type: ignore[arg-type]
        failed = tm.process_messages([{"role": "user", "content": "I live in Oslo"}], user_id="u")
        ok = tm.process_messages([{"role": "user", "content": "I live in Oslo"}], user_id="u")
        shown = [repr(settings), str(settings.model_dump()), str(describe(settings)), settings.describe_database()]
    assert failed.status == "failed" and ok.status == "ok"
    with store.engine.connect() as conn:
        saved = " ".join(str(row) for row in conn.execute(text("SELECT * FROM pipeline_runs")))
    everything = " ".join([caplog.text, failed.model_dump_json(), ok.model_dump_json(), saved, *shown])
    assert "refused the API key" in everything  # the failure is explained ...
    assert key not in everything and password not in everything  # ... without the secret
    with pytest.raises(DatabaseError) as info:
        Store.from_url(f"mysql+pymysql://root:{password}@127.0.0.1:1/test", embedding_model="m", embedding_dim=384)
    assert password not in str(info.value)
