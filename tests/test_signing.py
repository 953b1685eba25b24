"""Signing and verification against independent vectors, anchors and generated inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conformance import (
    ConformanceError,
    FutureTimestamp,
    InvalidSecret,
    MalformedSignature,
    MalformedTimestamp,
    MissingHeader,
    SignatureMismatch,
    StaleTimestamp,
    VerificationError,
    Verifier,
    list_profiles,
    load_profile,
    sign,
    verify,
)
from conformance._signing import parse_timestamp

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
ANCHOR_PROFILES = Path(__file__).resolve().parent / "profiles"
ALL_PROFILES = [*list_profiles(), *(str(p) for p in sorted(ANCHOR_PROFILES.glob("*.yaml")))]


def _vector_params() -> list[object]:
    entries = json.loads((VECTORS / "signatures.json").read_text(encoding="utf-8"))
    params = []
    for entry in entries:
        stem = Path(entry["body_file"]).stem
        suffix = (
            f"-{'iso' if 'T' in entry.get('timestamp', '') else 'unix'}"
            if "timestamp" in entry
            else ""
        )
        params.append(pytest.param(entry, id=f"{entry['profile']}-{stem}{suffix}"))
    return params


def _seconds(profile_name: str, text: str | None) -> float | None:
    if text is None:
        return None
    spec = load_profile(profile_name).signature.timestamp
    assert spec is not None
    return parse_timestamp(spec, text).timestamp()


@pytest.mark.parametrize("vector", _vector_params())
def test_sign_reproduces_openssl_vector(vector: dict[str, object]) -> None:
    """Signing the vector's raw body gives exactly the headers computed with openssl."""
    profile = load_profile(str(vector["profile"]))
    body = (VECTORS / str(vector["body_file"])).read_bytes()
    headers = sign(profile, str(vector["secret"]), body, timestamp=vector.get("timestamp"))  # type: ignore[arg-type]
    assert headers == vector["headers"]


@pytest.mark.parametrize("vector", _vector_params())
def test_verify_accepts_openssl_vector(vector: dict[str, object]) -> None:
    """Verifying the vector's headers over its raw body succeeds at the signing time."""
    name = str(vector["profile"])
    body = (VECTORS / str(vector["body_file"])).read_bytes()
    now = _seconds(name, vector.get("timestamp"))  # type: ignore[arg-type]
    result = verify(load_profile(name), str(vector["secret"]), body, vector["headers"], now=now)  # type: ignore[arg-type]
    assert result.profile == name


def _reserialized(body: bytes) -> bytes:
    return json.dumps(json.loads(body), separators=(",", ":")).encode()


def _reserialization_params() -> list[object]:
    """Vectors whose bytes differ from their compact ASCII re-encoding (pretty or non-ASCII)."""
    return [
        p
        for p in _vector_params()
        if _reserialized((VECTORS / p.values[0]["body_file"]).read_bytes())  # type: ignore[attr-defined,index]
        != (VECTORS / p.values[0]["body_file"]).read_bytes()  # type: ignore[attr-defined,index]
    ]


def test_some_vectors_differ_from_their_reserialization() -> None:
    """The vector set holds pretty and non-ASCII bodies, so the next test has cases."""
    assert len(_reserialization_params()) >= 3


@pytest.mark.parametrize("vector", _reserialization_params())
def test_verify_rejects_reserialized_vector_body(vector: dict[str, object]) -> None:
    """A verifier that re-serializes the JSON would fail: the compact re-encoding of a
    pretty or non-ASCII body no longer verifies against the signature of the raw bytes."""
    name = str(vector["profile"])
    body = _reserialized((VECTORS / str(vector["body_file"])).read_bytes())
    now = _seconds(name, vector.get("timestamp"))  # type: ignore[arg-type]
    with pytest.raises(SignatureMismatch):
        verify(load_profile(name), str(vector["secret"]), body, vector["headers"], now=now)  # type: ignore[arg-type]


def _anchor(scheme: str) -> list[dict[str, object]]:
    entries = json.loads((VECTORS / "anchors.json").read_text(encoding="utf-8"))
    return [e for e in entries if e["scheme"] == scheme]


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param(v, id=f"standard-webhooks-{i}")
        for i, v in enumerate(_anchor("standard-webhooks"))
    ],
)
def test_standard_webhooks_anchor_profile(vector: dict[str, object]) -> None:
    """A YAML-only profile reproduces the Standard Webhooks library vectors, and rejects
    the published negative case."""
    profile = load_profile(ANCHOR_PROFILES / "standard-webhooks.yaml")
    body = str(vector["body"]).encode()
    headers = sign(
        profile,
        str(vector["secret"]),
        body,
        timestamp=str(vector["timestamp"]),
        msg_id=str(vector["msg_id"]),
    )
    assert headers == vector["headers"]
    now = float(str(vector["timestamp"]))
    verify(profile, str(vector["secret"]), body, headers, now=now)
    if "must_reject_signature" in vector:
        forged = {**headers, "webhook-signature": str(vector["must_reject_signature"])}
        with pytest.raises(SignatureMismatch):
            verify(profile, str(vector["secret"]), body, forged, now=now)


def test_standard_webhooks_accepts_any_of_several_signatures() -> None:
    """With a separator, one matching signature among several (secret rotation) verifies."""
    profile = load_profile(ANCHOR_PROFILES / "standard-webhooks.yaml")
    (vector,) = _anchor("standard-webhooks")[:1]
    headers = dict(vector["headers"])  # type: ignore[call-overload]
    headers["webhook-signature"] = (
        "v1,Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6MTIzNDU= " + headers["webhook-signature"]
    )
    verify(
        profile,
        str(vector["secret"]),
        str(vector["body"]).encode(),
        headers,
        now=float(str(vector["timestamp"])),
    )


def test_github_anchor_profile() -> None:
    """A YAML-only profile reproduces GitHub's documented X-Hub-Signature-256 example."""
    (vector,) = _anchor("github")
    profile = load_profile(ANCHOR_PROFILES / "github.yaml")
    assert sign(profile, str(vector["secret"]), str(vector["body"]).encode()) == vector["headers"]


def test_invalid_base64_secret_is_a_conformance_error() -> None:
    """A secret that the key derivation cannot decode raises InvalidSecret, not binascii.Error."""
    profile = load_profile(ANCHOR_PROFILES / "standard-webhooks.yaml")
    with pytest.raises(InvalidSecret, match="base64 after 'whsec_'"):
        sign(profile, "whsec_not*base64", b"{}")


# --- messages and fields --------------------------------------------------------------

ZAITS_BODY = b'{"id":"evt_1","type":"document.signed","created":1,"data":{}}'


def _zaits_headers(**override: str) -> dict[str, str]:
    headers = sign(load_profile("zaits"), "s3cret", ZAITS_BODY)
    headers.update(override)
    return headers


@pytest.mark.parametrize(
    ("headers", "error", "message"),
    [
        pytest.param({}, MissingHeader, "missing header: X-Zaits-Signature", id="missing"),
        pytest.param(
            {"X-Zaits-Signature": ""},
            MalformedSignature,
            "malformed signature header: X-Zaits-Signature (the header is empty)",
            id="empty",
        ),
        pytest.param(
            {"X-Zaits-Signature": "sha1=abcd"},
            MalformedSignature,
            "malformed signature header: X-Zaits-Signature "
            "('sha1=abcd' is not under a label this profile uses ('sha256'))",
            id="prefix",
        ),
        pytest.param(
            {"X-Zaits-Signature": "sha256=zz"},
            MalformedSignature,
            "malformed signature header: X-Zaits-Signature ('sha256=zz' is not lowercase hex)",
            id="not-hex",
        ),
        pytest.param(
            {"X-Zaits-Signature": "sha256=abcd"},
            MalformedSignature,
            "malformed signature header: X-Zaits-Signature ('sha256=abcd' has 2 bytes, "
            "an hmac-sha256 signature has 32)",
            id="truncated",
        ),
        pytest.param(
            {"X-Zaits-Signature": "sha256=" + "0" * 64},
            SignatureMismatch,
            "signature does not match: X-Zaits-Signature "
            "(no signature matches the body and secret)",
            id="mismatch",
        ),
    ],
)
def test_verification_errors_name_the_header(
    headers: dict[str, str], error: type[VerificationError], message: str
) -> None:
    """Each way a signature header can be wrong raises its own error, naming the header."""
    with pytest.raises(error) as caught:
        verify(load_profile("zaits"), "s3cret", ZAITS_BODY, headers)
    assert str(caught.value) == message
    assert caught.value.header == "X-Zaits-Signature"


def test_header_lookup_is_case_insensitive() -> None:
    """Header names match whatever their case, as HTTP requires."""
    headers = {k.lower(): v for k, v in _zaits_headers().items()}
    verify(load_profile("zaits"), "s3cret", ZAITS_BODY, headers)


def test_uppercase_hex_is_malformed() -> None:
    """Hex signatures must be lowercase, so a case change is not the same signature."""
    good = _zaits_headers()["X-Zaits-Signature"]
    with pytest.raises(MalformedSignature, match="is not lowercase hex"):
        verify(
            load_profile("zaits"),
            "s3cret",
            ZAITS_BODY,
            {"X-Zaits-Signature": good.upper().replace("SHA256=", "sha256=")},
        )


# --- timestamps -------------------------------------------------------------------------

T0 = 1_764_583_200


def _ztrace_delivery(timestamp: object) -> tuple[bytes, dict[str, str]]:
    body = b'{"event":"analysis.started","data":{},"timestamp":"2025-12-01T10:00:00.000Z"}'
    return body, sign(load_profile("ztrace"), "k", body, timestamp=timestamp)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        pytest.param(
            T0 + 301,
            StaleTimestamp,
            "stale timestamp: X-Ztrace-Timestamp (301 s old, tolerance 300 s)",
            id="stale",
        ),
        pytest.param(
            T0 - 301,
            FutureTimestamp,
            "timestamp in the future: X-Ztrace-Timestamp (301 s ahead, tolerance 300 s)",
            id="future",
        ),
    ],
)
def test_timestamp_outside_tolerance(
    now: float, error: type[VerificationError], message: str
) -> None:
    """An authentic delivery signed too long ago, or too far ahead, is refused with its skew."""
    body, headers = _ztrace_delivery(T0)
    with pytest.raises(error) as caught:
        verify(load_profile("ztrace"), "k", body, headers, now=now)
    assert str(caught.value) == message


@pytest.mark.parametrize("edge", [300, -300])
def test_timestamp_at_the_tolerance_edge_is_accepted(edge: int) -> None:
    """Exactly the tolerance away (either side) still verifies."""
    body, headers = _ztrace_delivery(T0)
    verify(load_profile("ztrace"), "k", body, headers, now=T0 + edge)


def test_tolerance_and_clock_are_injected() -> None:
    """A Verifier uses the clock and tolerance it is given, never the wall clock."""
    body, headers = _ztrace_delivery(T0)
    strict = Verifier(load_profile("ztrace"), "k", tolerance=5, clock=lambda: T0 + 6)
    with pytest.raises(StaleTimestamp):
        strict(body, headers)
    assert Verifier(load_profile("ztrace"), "k", tolerance=10, clock=lambda: T0 + 6)(
        body, headers
    ).timestamp == datetime.fromtimestamp(T0, UTC)


@pytest.mark.parametrize("text", ["yesterday", "2025-12-01", "2025-12-01T10:00:00", "", "1e9"])
def test_malformed_timestamp(text: str) -> None:
    """Text that is neither Unix seconds nor an ISO date-time with offset is malformed."""
    body, headers = _ztrace_delivery(text)
    with pytest.raises(MalformedTimestamp, match="X-Ztrace-Timestamp"):
        verify(load_profile("ztrace"), "k", body, headers, now=T0)


def test_missing_timestamp_header() -> None:
    """A timestamped scheme names its missing timestamp header."""
    body, headers = _ztrace_delivery(T0)
    del headers["X-Ztrace-Timestamp"]
    with pytest.raises(MissingHeader, match="X-Ztrace-Timestamp"):
        verify(load_profile("ztrace"), "k", body, headers, now=T0)


# --- properties ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
secrets_st = st.text(min_size=1, max_size=40)
bodies_st = st.binary(max_size=300)
times_st = st.integers(min_value=0, max_value=4_000_000_000)


def _sign_any(name: str, secret: str, body: bytes, ts: int) -> tuple[object, str, dict[str, str]]:
    profile = load_profile(name)
    if profile.signature.primary.key.encoding == "base64":
        import base64

        secret = (
            profile.signature.primary.key.strip_prefix + base64.b64encode(secret.encode()).decode()
        )
    return profile, secret, sign(profile, secret, body, timestamp=ts, msg_id="msg_abc")


@pytest.mark.parametrize("name", ALL_PROFILES, ids=lambda p: Path(p).stem)
@PROPERTY_SETTINGS
@given(secret=secrets_st, body=bodies_st, ts=times_st)
def test_sign_then_verify_round_trips(name: str, secret: str, body: bytes, ts: int) -> None:
    """Whatever the body, secret and time, what sign() produces verify() accepts at that time."""
    profile, key, headers = _sign_any(name, secret, body, ts)
    verify(profile, key, body, headers, now=ts)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL_PROFILES, ids=lambda p: Path(p).stem)
@PROPERTY_SETTINGS
@given(secret=secrets_st, body=bodies_st.filter(bool), ts=times_st, data=st.data())
def test_any_single_byte_change_fails(
    name: str, secret: str, body: bytes, ts: int, data: st.DataObject
) -> None:
    """Changing any one byte of the body, the timestamp header or the signature header makes
    verification fail with a VerificationError (never a ValueError or binascii.Error)."""
    profile, key, headers = _sign_any(name, secret, body, ts)
    scheme = profile.signature  # type: ignore[attr-defined]
    stamp = scheme.timestamp.header if scheme.timestamp else None
    targets = ["body", scheme.header] + ([stamp] if stamp else [])
    target = data.draw(st.sampled_from(targets))
    original = body if target == "body" else headers[target].encode("latin-1")
    index = data.draw(st.integers(0, len(original) - 1))
    replacement = data.draw(st.integers(0, 255) if target == "body" else st.integers(0x21, 0x7E))
    assume(replacement != original[index])
    mutated = original[:index] + bytes([replacement]) + original[index + 1 :]
    if target == "body":
        body = mutated
    else:
        headers = {**headers, target: mutated.decode("latin-1")}
    with pytest.raises(VerificationError):
        verify(profile, key, body, headers, now=ts)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL_PROFILES, ids=lambda p: Path(p).stem)
@PROPERTY_SETTINGS
@given(signature=st.text(max_size=120), timestamp=st.text(max_size=40))
def test_garbage_headers_raise_only_verification_errors(
    name: str, signature: str, timestamp: str
) -> None:
    """Arbitrary header text is always answered by a VerificationError: lower-level
    exceptions never leak out of verify()."""
    profile = load_profile(name)
    spec = profile.signature.timestamp
    headers = {profile.signature.header: signature}
    if spec is not None and spec.header is not None:
        headers[spec.header] = timestamp
    elif spec is not None:  # an item of the signature header (Stripe's t=)
        headers[profile.signature.header] = f"{spec.item}={timestamp},{signature}"
    if profile.signature.id_header:
        headers[profile.signature.id_header] = "msg_1"
    try:
        verify(profile, "whsec_c2VjcmV0", b"{}", headers, now=T0)
    except VerificationError:
        pass
    except ConformanceError as exc:  # pragma: no cover - would be a bug
        pytest.fail(f"unexpected {type(exc).__name__}: {exc}")
    else:  # pragma: no cover - a forged signature verifying would be a bug
        pytest.fail("garbage verified")


# --- edges found in review ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_timestamp_out_of_range_in_utc_is_malformed(text: str) -> None:
    """An ISO timestamp that overflows once converted to UTC is malformed, not an OverflowError
    (the receiver would otherwise answer an unauthenticated request with 500)."""
    body, headers = _ztrace_delivery(T0)
    headers["X-Ztrace-Timestamp"] = text
    with pytest.raises(MalformedTimestamp, match="X-Ztrace-Timestamp"):
        verify(load_profile("ztrace"), "k", body, headers, now=T0)


@pytest.mark.parametrize(("now", "tolerance"), [(float("nan"), None), (T0 + 10**6, float("nan"))])
def test_nan_clock_or_tolerance_fails_closed(now: float, tolerance: float | None) -> None:
    """A NaN clock or tolerance never switches the replay check off."""
    body, headers = _ztrace_delivery(1000)
    with pytest.raises(VerificationError):
        verify(load_profile("ztrace"), "k", body, headers, now=now, tolerance=tolerance)


def test_secret_with_a_lone_surrogate_is_invalid() -> None:
    """A secret that has no UTF-8 encoding is an InvalidSecret, not a UnicodeEncodeError."""
    with pytest.raises(InvalidSecret, match="not valid Unicode"):
        sign(load_profile("zaits"), "\udcff", b"{}")


def test_timestamp_header_with_a_lone_surrogate_is_malformed() -> None:
    """A timestamp header whose text has no UTF-8 encoding is malformed."""
    body, headers = _ztrace_delivery(T0)
    headers["X-Ztrace-Timestamp"] = "17\udcff"
    with pytest.raises(MalformedTimestamp, match="X-Ztrace-Timestamp"):
        verify(load_profile("ztrace"), "k", body, headers, now=T0)
    with pytest.raises(ConformanceError, match="printable text on one line"):
        sign(load_profile("ztrace"), "k", body, timestamp="17\udcff")


def test_infinite_past_clock_fails_closed_where_only_age_is_checked() -> None:
    """Stripe checks the age only; a clock at minus infinity still refuses the delivery."""
    profile = load_profile("stripe")
    headers = sign(profile, "whsec_x", b"{}", timestamp=T0)
    with pytest.raises(StaleTimestamp):
        verify(profile, "whsec_x", b"{}", headers, now=float("-inf"))


def test_public_key_in_another_form_is_never_an_hmac_key() -> None:
    """Where a profile takes both shared secrets and Ed25519 keys, a secret without its
    prefix (a public key pasted bare, or raw bytes) is refused, not used as an HMAC key:
    anyone holding the public key could forge v1 signatures with it."""
    profile = load_profile("standard-webhooks")
    for ambiguous in ("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=", b"raw"):
        with pytest.raises(InvalidSecret, match="ambiguous secret"):
            verify(profile, ambiguous, b"{}", {"webhook-signature": "v1,x"})


def test_a_bad_key_fails_whatever_the_request_carries() -> None:
    """A configured key no scheme takes raises InvalidSecret before any header is read, so
    the outcome never depends on what an attacker sends."""
    profile = load_profile("standard-webhooks")
    good = "whsec_" + "A" * 32
    with pytest.raises(InvalidSecret, match="32 bytes"):
        verify(profile, [good, "whpk_AAAA"], b"{}", {})
    key = Ed25519PrivateKey.generate()
    with pytest.raises(InvalidSecret, match="no scheme of this profile takes an Ed25519 key"):
        verify(load_profile("stripe"), key, b"{}", {})
