"""The dashboard over HTTPS: its token cookie is HttpOnly, SameSite and Secure; a plain-HTTP
client gets nothing; bad certificate files are refused in one line."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.dashboard.test_server import _search, fetch

from nasforge.cli import main
from nasforge.dashboard import serve
from nasforge.errors import ConfigError

trustme = pytest.importorskip("trustme")

TOKEN = "a-token-of-twenty-four-c"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(authority: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    cert = authority.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return chain, key


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    _search(path, 5)
    return path


def _https(port: int, authority: trustme.CA, path: str, **headers: str) -> http.client.HTTPResponse:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.fixture
def served(db: Path, pem: tuple[Path, Path]) -> Iterator[int]:
    chain, key = pem
    with serve(db, port=0, token=TOKEN, tls_cert=chain, tls_key=key) as server:
        assert server.url.startswith("https://127.0.0.1:")
        yield server.port


def test_the_token_cookie_is_secure_httponly_and_samesite_over_https(
    served: int, authority: trustme.CA
) -> None:
    response = _https(served, authority, f"/?token={TOKEN}")
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    flags = [part.strip() for part in cookie.split(";")[1:]]
    assert set(flags) == {"Path=/", "HttpOnly", "Secure", "SameSite=Lax"}
    assert _https(served, authority, "/api/experiments", Cookie=cookie.split(";")[0]).status == 200
    assert _https(served, authority, "/api/experiments").status == 401


def test_a_plain_http_client_gets_no_answer_and_the_server_goes_on(
    served: int, authority: trustme.CA
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", f"/api/experiments?token={TOKEN}")
        conn.getresponse().read()
    conn.close()
    assert _https(served, authority, f"/api/experiments?token={TOKEN}").status == 200


def test_behind_a_tls_proxy_the_cookie_is_secure_and_without_it_not(db: Path) -> None:
    with serve(db, port=0, token=TOKEN) as server:
        _, headers, _ = fetch(server, f"/?token={TOKEN}", headers={"X-Forwarded-Proto": "https"})
        assert "; Secure;" in headers["Set-Cookie"]
        _, headers, _ = fetch(server, f"/?token={TOKEN}")
        assert "Secure" not in headers["Set-Cookie"]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Lax" in headers["Set-Cookie"]


def test_bad_tls_files_are_refused_in_one_line(
    db: Path, pem: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, key = pem
    with pytest.raises(ConfigError, match="both a certificate and its key"):
        serve(db, port=0, tls_cert=chain)
    with pytest.raises(ConfigError, match="does not exist"):
        serve(db, port=0, tls_cert=tmp_path / "absent.pem", tls_key=key)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    args = ["dashboard", "--db", str(db), "--port", "0", "--tls-cert", str(tmp_path / "junk.pem")]
    assert main([*args, "--tls-key", str(key)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot use --tls-cert") and "PEM" in line
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(tmp_path / "other.pem"))
    with pytest.raises(ConfigError, match="matching PEM private key"):
        serve(db, port=0, tls_cert=chain, tls_key=tmp_path / "other.pem")
