"""The public profiles (Standard Webhooks, Stripe, GitHub) against published vectors, key
rotation and Ed25519, through the library and the CLI.

Every expected value here is computed independently of this project's signing code: the
published vectors of ``../shared/vectors/anchors.json``, the standard library's ``hmac`` for
rotation, and ``cryptography`` itself for Ed25519.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance import (
    FutureTimestamp,
    MalformedSignature,
    SignatureMismatch,
    load_profile,
    sign,
    verify,
)
from conformance._cli import main

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def _anchors() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(
        (VECTORS / "anchors.json").read_text(encoding="utf-8")
    )
    return entries


ANCHORS = [pytest.param(v, id=f"{v['scheme']}-{i}") for i, v in enumerate(_anchors())]


def _now(vector: dict[str, Any]) -> float | None:
    return float(vector["timestamp"]) if "timestamp" in vector else None


@pytest.mark.parametrize("vector", ANCHORS)
def test_bundled_profile_reproduces_and_verifies_the_published_vector(
    vector: dict[str, Any],
) -> None:
    """Each published vector verifies under the bundled profile of its scheme, signing
    reproduces its signature header, and a published negative case is refused."""
    profile = load_profile(vector["scheme"])
    body = vector["body"].encode()
    headers = sign(
        profile,
        vector["secret"],
        body,
        timestamp=vector.get("timestamp"),
        msg_id=vector.get("msg_id"),
    )
    assert {k: headers[k] for k in vector["headers"]} == vector["headers"]
    verify(profile, vector["secret"], body, vector["headers"], now=_now(vector))
    if "must_reject_signature" in vector:
        forged = {**vector["headers"], profile.signature.header: vector["must_reject_signature"]}
        with pytest.raises(SignatureMismatch):
            verify(profile, vector["secret"], body, forged, now=_now(vector))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("vector", ANCHORS)
def test_cli_verifies_the_published_vector(
    vector: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`verify` accepts each published vector; `sign` prints its signature header."""
    body = tmp_path / "body"
    body.write_bytes(vector["body"].encode())
    headers = [arg for k, v in vector["headers"].items() for arg in ("-H", f"{k}: {v}")]
    clock = ["--now", vector["timestamp"]] if "timestamp" in vector else []
    argv = ["-p", vector["scheme"], "-s", vector["secret"]]
    assert _cli(capsys, "verify", *argv, *headers, *clock, body) == (0, "valid\n", "")
    extra = ["-t", vector["timestamp"]] if "timestamp" in vector else []
    extra += ["--id", vector["msg_id"]] if "msg_id" in vector else []
    extra += ["--event", "ping"] if vector["scheme"] == "github" else []
    code, out, _ = _cli(capsys, "sign", *argv, *extra, body)
    printed = dict(line.split(": ", 1) for line in out.splitlines())
    assert code == 0
    assert {k: printed[k] for k in vector["headers"]} == vector["headers"]


# --- rotation: two signatures, only one of them valid --------------------------------------

BODY = b'{"id":"evt_1","object":"event","type":"invoice.paid"}'
T = 1_700_000_000


def _stripe_v1(secret: str, timestamp: int = T, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def _sw_v1(secret: str, msg_id: str, timestamp: int = T, body: bytes = BODY) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


STRIPE_OLD, STRIPE_NEW = "whsec_old_secret", "whsec_new_secret"
SW_OLD = "whsec_" + base64.b64encode(b"old standard webhooks key").decode()
SW_NEW = "whsec_" + base64.b64encode(b"new standard webhooks key").decode()


def test_stripe_rotation_vectors() -> None:
    """A Stripe-Signature with the old secret's v1 and the new one's verifies with either
    secret; with neither it does not; signing with both writes both, in order."""
    profile = load_profile("stripe")
    header = f"t={T},v1={_stripe_v1(STRIPE_OLD)},v1={_stripe_v1(STRIPE_NEW)}"
    headers = {"Stripe-Signature": header}
    for secret in (STRIPE_OLD, STRIPE_NEW):
        verify(profile, secret, BODY, headers, now=T)
    verify(profile, ["whsec_unrelated", STRIPE_NEW], BODY, headers, now=T)
    with pytest.raises(SignatureMismatch, match="no signature matches the body and secrets"):
        verify(profile, ["whsec_a", "whsec_b"], BODY, headers, now=T)
    assert sign(profile, [STRIPE_OLD, STRIPE_NEW], BODY, timestamp=T) == headers


def test_stripe_ignores_v0_and_accepts_future_timestamps_as_its_library_does() -> None:
    """A valid HMAC under v0 is ignored (alone it is no signature); the tolerance is
    checked for the past only, unless both ways are asked for."""
    profile = load_profile("stripe")
    good = _stripe_v1(STRIPE_NEW)
    with pytest.raises(MalformedSignature, match="'v0="):
        verify(profile, STRIPE_NEW, BODY, {"Stripe-Signature": f"t={T},v0={good}"}, now=T)
    verify(profile, STRIPE_NEW, BODY, {"Stripe-Signature": f"t={T},v0={good},v1={good}"}, now=T)
    ahead = {"Stripe-Signature": f"t={T},v1={good}"}
    verify(profile, STRIPE_NEW, BODY, ahead, now=T - 3600)
    with pytest.raises(FutureTimestamp):
        verify(profile, STRIPE_NEW, BODY, ahead, now=T - 3600, both_ways=True)


def test_standard_webhooks_rotation_vectors() -> None:
    """A webhook-signature with an unknown key's v1 first and the right one second
    verifies; signing with two secrets writes both, space separated."""
    profile = load_profile("standard-webhooks")
    msg_id = "msg_rotation"
    value = f"v1,{_sw_v1(SW_OLD, msg_id)} v1,{_sw_v1(SW_NEW, msg_id)}"
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(T), "webhook-signature": value}
    verify(profile, SW_NEW, BODY, headers, now=T)
    other = "whsec_" + base64.b64encode(b"neither of the two keys").decode()
    with pytest.raises(SignatureMismatch):
        verify(profile, other, BODY, headers, now=T)
    assert sign(profile, [SW_OLD, SW_NEW], BODY, timestamp=T, msg_id=msg_id) == headers


# --- Ed25519 (Standard Webhooks v1a) ---------------------------------------------------------

SEED = bytes(range(32))
PRIVATE = Ed25519PrivateKey.from_private_bytes(SEED)
WHSK = "whsk_" + base64.b64encode(SEED).decode()
WHPK = "whpk_" + base64.b64encode(PRIVATE.public_key().public_bytes_raw()).decode()


def _v1a(msg_id: str, timestamp: int = T, body: bytes = BODY) -> str:
    signature = PRIVATE.sign(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1a," + base64.b64encode(signature).decode()


def test_ed25519_vector() -> None:
    """Signing with a whsk_ key gives the v1a signature cryptography computes; the whpk_
    key verifies it; another public key or a changed body does not."""
    profile = load_profile("standard-webhooks")
    headers = sign(profile, WHSK, BODY, timestamp=T, msg_id="msg_ed")
    assert headers["webhook-signature"] == _v1a("msg_ed")
    verify(profile, WHPK, BODY, headers, now=T)
    verify(profile, PRIVATE.public_key(), BODY, headers, now=T)
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(SignatureMismatch):
        verify(profile, "whpk_" + base64.b64encode(stranger).decode(), BODY, headers, now=T)
    with pytest.raises(SignatureMismatch):
        verify(profile, WHPK, BODY + b" ", headers, now=T)


def test_symmetric_and_asymmetric_signatures_side_by_side() -> None:
    """One header may carry v1 and v1a: each verifier uses the item its key serves."""
    profile = load_profile("standard-webhooks")
    headers = sign(profile, [SW_NEW, WHSK], BODY, timestamp=T, msg_id="msg_both")
    assert headers["webhook-signature"] == f"v1,{_sw_v1(SW_NEW, 'msg_both')} {_v1a('msg_both')}"
    verify(profile, SW_NEW, BODY, headers, now=T)
    assert verify(profile, WHPK, BODY, headers, now=T).label == "v1a"


@pytest.mark.parametrize("form", ["text", "pem"])
def test_cli_signs_and_verifies_with_ed25519_key_files(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sign --private-key` and `verify --public-key` take whsk_/whpk_ text or PEM files."""
    private, public = tmp_path / "key", tmp_path / "key.pub"
    if form == "text":
        private.write_text(WHSK + "\n")
        public.write_text(WHPK + "\n")
    else:
        private.write_bytes(
            PRIVATE.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            PRIVATE.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    argv = ["-p", "standard-webhooks"]
    code, out, _ = _cli(
        capsys, "sign", *argv, "--private-key", private, "-t", str(T), "--id", "msg_cli", body
    )
    assert code == 0
    assert f"webhook-signature: {_v1a('msg_cli')}" in out.splitlines()
    headers = [arg for line in out.splitlines() for arg in ("-H", line)]
    verified = _cli(
        capsys, "verify", *argv, "--public-key", public, *headers, "--now", str(T), body
    )
    assert verified == (0, "valid\n", "")


def test_cli_signs_with_repeated_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sign -s OLD -s NEW` writes one signature per secret (rotation)."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    code, out, _ = _cli(
        capsys, "sign", "-p", "stripe", "-s", STRIPE_OLD, "-s", STRIPE_NEW, "-t", str(T), body
    )
    assert code == 0
    expected = f"t={T},v1={_stripe_v1(STRIPE_OLD)},v1={_stripe_v1(STRIPE_NEW)}"
    assert f"Stripe-Signature: {expected}" in out.splitlines()


def test_cli_key_file_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing or unreadable key file is a usage error naming the option, not a traceback."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    code, _, err = _cli(capsys, "sign", "-p", "standard-webhooks", "--private-key", junk, body)
    assert code == 2
    assert err.startswith(f"webhook-conformance: error: --private-key: {junk} is not a readable")
    code, _, err = _cli(
        capsys, "sign", "-p", "standard-webhooks", "--private-key", tmp_path / "none", body
    )
    assert (code, err.count("\n")) == (2, 2)
    assert "--private-key: cannot read" in err


def test_github_sign_needs_the_event_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub carries the event type in X-GitHub-Event: `sign` asks for --event."""
    body = tmp_path / "body.json"
    body.write_bytes(b"{}")
    code, _, err = _cli(capsys, "sign", "-p", "github", "-s", "x", body)
    assert code == 2
    assert "carries the event type in X-GitHub-Event: pass --event" in err
    code, out, _ = _cli(capsys, "sign", "-p", "github", "-s", "x", "--event", "push", body)
    assert code == 0
    assert "X-GitHub-Event: push" in out.splitlines()
    assert any(line.startswith("X-Hub-Signature: sha1=") for line in out.splitlines())


def test_cli_key_files_hold_ed25519_keys_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key file holding anything but an Ed25519 key (a bare public key, a shared secret)
    is refused: taken as a shared secret, a public key would let anyone forge signatures."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    bare = tmp_path / "bare.pub"
    bare.write_text(WHPK.removeprefix("whpk_"))
    code, _, err = _cli(capsys, "verify", "-p", "standard-webhooks", "--public-key", bare, body)
    assert code == 2
    assert "is neither key text (whsk_…, whpk_…) nor PEM" in err
    code, _, err = _cli(capsys, "verify", "-p", "stripe", "--public-key", bare, body)
    assert (code, err.splitlines()[0]) == (
        2,
        "webhook-conformance: error: --public-key: profile stripe has no Ed25519 scheme",
    )


def test_cli_refuses_rotation_where_one_signature_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two secrets on a profile whose header holds one signature is a usage error, and an
    empty --secret is one too."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    code, _, err = _cli(capsys, "sign", "-p", "zupertry", "-s", "a", "-s", "b", body)
    assert code == 2
    assert "carries one signature per delivery: give one secret" in err
    code, _, err = _cli(capsys, "sign", "-p", "zaits", "-s", "", body)
    assert (code, err.splitlines()[0]) == (2, "webhook-conformance: error: --secret is empty")
