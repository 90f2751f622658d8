"""What the auth tests share: key material made at test time (an HS256 secret, an RSA key in a PEM
file, EC keys served as a JWKS from a loopback HTTP server, a self-signed certificate), JWTs,
a gateway with every credential kind switched on, and raw snapshots of the store."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from conftest import Answer, ApiClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm

from kijirest.store.base import Scan, Store

AUTH_LAYOUTS = Path(__file__).parent / "data" / "auth_layouts"
ISSUER = "https://idp.test/"
AUDIENCE = "kijirest"
GRANTS_CLAIM = "kijirest_grants"


@dataclass
class Material:
    """Key material of one test module (written under `root`)."""

    root: Path
    hs_secret: bytes = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(48)))
    rsa_key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec1: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ec2: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.secret_file.write_bytes(self.hs_secret + b"\n")
        self.pem_file.write_bytes(self.rsa_public_pem)

    @property
    def secret_file(self) -> Path:
        return self.root / "jwt.secret"

    @property
    def pem_file(self) -> Path:
        return self.root / "idp-public.pem"

    @property
    def rsa_public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @staticmethod
    def jwk(key: Any, kid: str) -> dict[str, Any]:
        doc = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        return {**doc, "kid": kid, "alg": "ES256", "use": "sig"}

    def token(self, alg: str = "HS256", *, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        """A JWT with sensible defaults (sub, iss, aud, exp in 5 min, iat); a claim given as None
        is left out."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": "robot",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            GRANTS_CLAIM: [],
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        if key is None:
            key = {"HS256": self.hs_secret, "RS256": self.rsa_key, "ES256": self.ec1}[alg]
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)

    def forged_hs256_with_public_key(self, **claims: Any) -> str:
        """The algorithm-confusion attack: HS256 "signed" with the RSA public key's PEM bytes."""
        now = int(time.time())
        payload = {"sub": "robot", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, **claims}

        def b64(data: bytes) -> bytes:
            return base64.urlsafe_b64encode(data).rstrip(b"=")

        signing = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(orjson.dumps(payload))
        mac = hmac.new(self.rsa_public_pem, signing, hashlib.sha256).digest()
        return (signing + b"." + b64(mac)).decode()


def self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key (PEM files), made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kijirest test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = root / "cert.pem", root / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def snapshot(store: Store, tables: list[str]) -> dict[str, list]:
    """Every row, cell, timestamp and value of `tables`, read raw from the store."""
    out: dict[str, list] = {}
    for table in tables:
        rows = []
        with store.scan(table, Scan()) as scanner:
            for batch in scanner:
                rows.extend(batch)
        out[table] = rows
    return out


async def snapshot_async(api: ApiClient, tables: list[str]) -> dict[str, list]:
    return await asyncio.to_thread(snapshot, api.store, tables)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


class Recorder:
    """Keeps every answer of a test, to check afterwards that no secret was ever sent back."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def text(self) -> str:
        parts = []
        for a in self.answers:
            parts.append(a.body.decode("utf-8", "replace"))
            parts.extend(f"{k}: {v}" for k, v in a.headers.items())
        return "\n".join(parts)
