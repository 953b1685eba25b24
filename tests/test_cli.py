"""The ``webhook-conformance`` command line, run in-process through ``main``."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from _pytest.mark import ParameterSet

import conformance
from conformance import _cli
from conformance._cli import main

VECTORS = Path("/work/shared/vectors")
SIGNATURES = json.loads((VECTORS / "signatures.json").read_text(encoding="utf-8"))
ZAITS = Path(conformance.__file__).resolve().parent.parent / "spec" / "profiles" / "zaits.yaml"
SECRET = "whsec_1234567890abcdef"
COMPACT = VECTORS / "bodies" / "zaits-compact.json"
SIGNED = {
    "id": "evt_abc123",
    "type": "document.signed",
    "created": 1642251600,
    "data": {
        "document_id": "doc_abc123",
        "signer": {"email": "john@example.com", "name": "John Doe"},
        "signed_at": "2024-01-15T14:30:00Z",
    },
}


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def parse_headers(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def vector_params() -> list[ParameterSet]:
    """The signature vectors of the profiles that exist, with ids like `ztrace-started-iso`."""
    params: list[ParameterSet] = []
    for vector in SIGNATURES:
        if vector["profile"] not in conformance.list_profiles():
            continue
        name = Path(vector["body_file"]).stem
        if "timestamp" in vector:
            name += "-unix" if vector["timestamp"].isdigit() else "-iso"
        params.append(pytest.param(vector, id=name))
    return params


@pytest.fixture
def timed_profile(tmp_path: Path) -> Path:
    """Zaits, changed to sign a timestamp header, saved as a profile file."""
    raw = yaml.safe_load(ZAITS.read_text(encoding="utf-8"))
    raw["signature"]["signed_content"] = "{timestamp}.{body}"
    raw["signature"]["timestamp"] = {
        "header": "X-Zaits-Timestamp",
        "format": "unix-or-iso8601",
        "tolerance_seconds": 300,
    }
    raw["headers"].append({"name": "X-Zaits-Timestamp", "required": True})
    path = tmp_path / "timed.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# ---- profiles, events, requirements ------------------------------------------------------


def test_profiles_lists_name_event_count_and_title(capsys, monkeypatch):
    """`profiles` prints one aligned line per profile: name, event count and title."""
    monkeypatch.setattr(_cli, "list_profiles", lambda: ("zaits",))
    assert run(capsys, "profiles") == (0, "zaits  9 events  Zaits\n", "")


def test_profiles_covers_every_bundled_profile(capsys):
    """Every bundled profile has a line, and the exit code says whether all of them loaded."""
    code, out, _ = run(capsys, "profiles")
    names = [line.split()[0] for line in out.splitlines()]
    loadable = []
    for name in conformance.list_profiles():
        try:
            conformance.load_profile(name)
        except conformance.ProfileError:
            continue
        loadable.append(name)
    assert names == loadable
    assert code == (0 if loadable == list(conformance.list_profiles()) else 1)


def test_profiles_reports_a_profile_that_does_not_load(capsys, monkeypatch):
    """A profile that cannot load is an error on stderr and exit 1; the others are listed."""
    monkeypatch.setattr(_cli, "list_profiles", lambda: ("zaits", "nope"))
    code, out, err = run(capsys, "profiles")
    assert (code, out) == (1, "zaits  9 events  Zaits\n")
    assert err.startswith("webhook-conformance: error: unknown profile 'nope'")


def test_events_prints_the_catalogue_aligned(capsys):
    """`events` prints name, category and description, columns aligned."""
    code, out, err = run(capsys, "events", "zaits")
    lines = out.splitlines()
    assert (code, err, len(lines)) == (0, "", 9)
    assert lines[0] == "document.signed         signing  Document has been signed by a signer"
    assert lines[4] == "face.liveness.detected  face     Liveness detection completed"
    width = len("face.liveness.detected  ")  # the longest name and two spaces
    assert all(line[width - 1] == " " and line[width] != " " for line in lines)


def test_profile_given_as_a_path_works_like_its_name(capsys):
    """A path to a .yaml profile is accepted wherever a profile name is."""
    assert run(capsys, "events", ZAITS) == run(capsys, "events", "zaits")


def test_requirements_text_lists_every_requirement_with_its_source(capsys):
    """`requirements` prints id, level, role and text, then the source, per requirement."""
    code, out, _ = run(capsys, "requirements", "zaits")
    profile = conformance.load_profile("zaits")
    lines = out.splitlines()
    assert code == 0
    assert len(lines) == 2 * len(profile.requirements)
    assert [line.split()[0] for line in lines[::2]] == [r.id for r in profile.requirements]
    assert lines[-1] == (
        '    source: 002_e138d80be09ef19b.txt: "Your webhook endpoint URL (must be HTTPS)"'
    )
    assert re.fullmatch(
        r"zaits\.management\.https-only\s+MUST\s+management\s+Creating .*", lines[-2]
    )


def test_requirements_role_filter_and_json_shape(capsys):
    """`--role` keeps one role; `--format json` gives every field, source included."""
    code, out, _ = run(capsys, "requirements", "zaits", "--role", "sender", "--format", "json")
    document = json.loads(out)
    expected = [r.id for r in conformance.load_profile("zaits").requirements if r.role == "sender"]
    assert code == 0
    assert document["profile"] == "zaits"
    assert [r["id"] for r in document["requirements"]] == expected
    first = document["requirements"][0]
    assert {"id", "level", "role", "text", "source"} <= first.keys()
    assert {"quote", "document", "anchor", "url"} == first["source"].keys()


# ---- sign ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vector_params())
def test_sign_produces_the_vector_headers(capsys, vector):
    """`sign` prints the signature headers of the published vectors, byte for byte."""
    argv = ["sign", "-p", vector["profile"], "-s", vector["secret"], VECTORS / vector["body_file"]]
    if "timestamp" in vector:
        argv += ["--timestamp", vector["timestamp"]]
    code, out, err = run(capsys, *argv)
    headers = parse_headers(out)
    assert (code, err) == (0, "")
    assert {name: headers.get(name) for name in vector["headers"]} == vector["headers"]


@pytest.mark.parametrize("vector", vector_params())
def test_verify_accepts_the_vector_headers(capsys, vector):
    """`verify` accepts each published vector, with the clock set to its timestamp."""
    headers = [arg for item in vector["headers"].items() for arg in ("-H", ": ".join(item))]
    stamp = vector.get("timestamp", "0")
    if not stamp.isdigit():
        stamp = str(int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()))
    body = VECTORS / vector["body_file"]
    argv = [
        "verify",
        "-p",
        vector["profile"],
        "-s",
        vector["secret"],
        *headers,
        "--now",
        stamp,
        body,
    ]
    assert run(capsys, *argv) == (0, "valid\n", "")


def test_sign_prints_every_delivery_header_in_curl_form(capsys):
    """Besides the signature, `sign` prints fixed, payload-derived and generated headers."""
    code, out, _ = run(capsys, "sign", "--profile", "zaits", "--secret", SECRET, COMPACT)
    lines = out.splitlines()
    assert code == 0
    assert lines[:2] == ["Content-Type: application/json", "X-Zaits-Event: document.signed"]
    assert re.fullmatch(r"X-Zaits-Delivery: del_[A-Za-z0-9]+", lines[2])
    assert lines[3].startswith("X-Zaits-Signature: sha256=f8ad8638")


def test_sign_reads_stdin_and_the_secret_from_the_environment(capsys, monkeypatch):
    """`-` reads the raw body from stdin, and WEBHOOK_SECRET stands in for --secret."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(COMPACT.read_bytes())))
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    code, out, _ = run(capsys, "sign", "-p", "zaits", "-")
    assert code == 0
    assert parse_headers(out)["X-Zaits-Signature"] == SIGNATURES[0]["headers"]["X-Zaits-Signature"]


def test_sign_signs_a_non_json_body_and_says_what_it_skipped(capsys, tmp_path):
    """A body that is not JSON is still signed over its bytes; stderr names the skipped header."""
    body = tmp_path / "body.txt"
    body.write_bytes(b"not json \xff")
    code, out, err = run(capsys, "sign", "-p", "zaits", "-s", SECRET, body)
    expected = hmac.new(SECRET.encode(), b"not json \xff", hashlib.sha256).hexdigest()
    assert code == 0
    assert parse_headers(out)["X-Zaits-Signature"] == f"sha256={expected}"
    assert "X-Zaits-Event" not in parse_headers(out)
    assert err == (
        "webhook-conformance: note: the body is not JSON; "
        "skipped payload-derived header X-Zaits-Event\n"
    )


def test_sign_notes_a_json_body_without_the_mirrored_field(capsys, tmp_path):
    """A JSON body without the field a header mirrors is signed; stderr names the field."""
    body = write_json(tmp_path / "body.json", {"id": "evt_1"})
    code, _, err = run(capsys, "sign", "-p", "zaits", "-s", SECRET, body)
    assert code == 0
    assert err == (
        "webhook-conformance: note: the body has no $.type; "
        "skipped payload-derived header X-Zaits-Event\n"
    )


def test_sign_uses_the_timestamp_text_verbatim(capsys, timed_profile):
    """`--timestamp` is sent as given, ISO or Unix, and signed as that exact text."""
    for text in ("1700000000", "2023-11-14T22:13:20Z"):
        code, out, _ = run(capsys, "sign", "-p", timed_profile, "-s", SECRET, "-t", text, COMPACT)
        signed = text.encode() + b"." + COMPACT.read_bytes()
        digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert code == 0
        assert parse_headers(out)["X-Zaits-Timestamp"] == text
        assert parse_headers(out)["X-Zaits-Signature"] == f"sha256={digest}"


def test_sign_notes_a_timestamp_the_profile_does_not_sign(capsys):
    """`--timestamp` on a profile without a timestamp is ignored, with a note."""
    code, _, err = run(capsys, "sign", "-p", "zaits", "-s", SECRET, "-t", "5", COMPACT)
    assert code == 0
    assert (
        err == "webhook-conformance: note: profile zaits signs no timestamp; --timestamp ignored\n"
    )


def test_sign_without_a_secret_is_a_usage_error(capsys, monkeypatch):
    """With neither --secret nor WEBHOOK_SECRET, `sign` stops with exit 2 and says both."""
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    assert run(capsys, "sign", "-p", "zaits", COMPACT) == (
        2,
        "",
        "webhook-conformance: error: no secret: pass --secret, --private-key or set "
        "WEBHOOK_SECRET\n"
        "try 'webhook-conformance sign --help'\n",
    )


def test_sign_with_a_secret_the_profile_cannot_use_is_exit_2(capsys, tmp_path):
    """A secret that the profile's key derivation rejects is a usage error naming the rule."""
    raw = yaml.safe_load(ZAITS.read_text(encoding="utf-8"))
    raw["signature"]["schemes"][0]["key"] = {"encoding": "base64", "strip_prefix": "whsec_"}
    profile = tmp_path / "b64.yaml"
    profile.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert run(capsys, "sign", "-p", profile, "-s", "whsec_!!", COMPACT) == (
        2,
        "",
        "webhook-conformance: error: the secret must be base64 after 'whsec_' for this profile\n"
        "check --secret or $WEBHOOK_SECRET\n",
    )


# ---- verify -------------------------------------------------------------------------------


def test_sign_then_verify_round_trips_through_a_headers_file(capsys, tmp_path):
    """Headers that `sign` wrote to a file verify the same body: -H @FILE, like curl."""
    body = tmp_path / "body.json"
    body.write_bytes((VECTORS / "bodies" / "zaits-unicode.json").read_bytes())
    _, out, _ = run(capsys, "sign", "-p", "zaits", "-s", SECRET, body)
    (tmp_path / "headers.txt").write_text(out, encoding="utf-8")
    argv = ["verify", "-p", "zaits", "-s", SECRET, "-H", f"@{tmp_path / 'headers.txt'}", body]
    assert run(capsys, *argv) == (0, "valid\n", "")


def test_verify_accepts_repeated_headers_in_any_case(capsys):
    """`--header` repeats, and header names match case-insensitively."""
    signature = SIGNATURES[0]["headers"]["X-Zaits-Signature"]
    argv = ["-H", "Content-Type: application/json", "-H", f"x-zaits-signature: {signature}"]
    assert run(capsys, "verify", "-p", "zaits", "-s", SECRET, *argv, COMPACT) == (0, "valid\n", "")


def test_verify_names_a_missing_header(capsys):
    """Without the signature header, `verify` says which header is missing and exits 1."""
    out = "invalid: missing header: X-Zaits-Signature\n"
    assert run(capsys, "verify", "-p", "zaits", "-s", SECRET, COMPACT) == (1, out, "")


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        pytest.param("whsec_wrong", COMPACT, id="wrong-secret"),
        pytest.param(SECRET, VECTORS / "bodies" / "zaits-pretty.json", id="other-body"),
    ],
)
def test_verify_reports_a_signature_mismatch(capsys, secret, body):
    """Another secret or other bytes: `verify` prints the mismatch naming the header, exit 1."""
    header = f"X-Zaits-Signature: {SIGNATURES[0]['headers']['X-Zaits-Signature']}"
    assert run(capsys, "verify", "-p", "zaits", "-s", secret, "-H", header, body) == (
        1,
        "invalid: signature does not match: X-Zaits-Signature "
        "(no signature matches the body and secret)\n",
        "",
    )


def test_verify_reports_a_malformed_signature_header(capsys):
    """A signature header that does not parse is reported as malformed, naming the header."""
    argv = ["-H", "X-Zaits-Signature: sha256=zz", COMPACT]
    code, out, err = run(capsys, "verify", "-p", "zaits", "-s", SECRET, *argv)
    assert (code, err) == (1, "")
    assert out.startswith("invalid: malformed signature header: X-Zaits-Signature (")


def test_verify_applies_now_and_tolerance(capsys, timed_profile):
    """`--now` is the clock and `--tolerance` overrides the profile's tolerance."""
    _, out, _ = run(capsys, "sign", "-p", timed_profile, "-s", SECRET, "-t", "1700000000", COMPACT)
    headers = [arg for line in out.splitlines() for arg in ("-H", line)]
    base = ["verify", "-p", timed_profile, "-s", SECRET, *headers, COMPACT]
    assert run(capsys, *base, "--now", "1700000300") == (0, "valid\n", "")
    assert run(capsys, *base, "--now", "1700000301") == (
        1,
        "invalid: stale timestamp: X-Zaits-Timestamp (301 s old, tolerance 300 s)\n",
        "",
    )
    assert run(capsys, *base, "--now", "1700000301", "--tolerance", "400") == (0, "valid\n", "")


def test_verify_rejects_a_header_without_a_colon(capsys):
    """A `--header` without a colon is a usage error: one line, a hint, exit 2."""
    argv = ["verify", "-p", "zaits", "-s", SECRET, "-H", "X-Zaits-Signature", COMPACT]
    assert run(capsys, *argv) == (
        2,
        "",
        "webhook-conformance: error: argument -H/--header: expected 'Name: value', "
        "got 'X-Zaits-Signature'\n"
        "try 'webhook-conformance verify --help'\n",
    )


def test_verify_reports_an_unreadable_body_as_a_usage_error(capsys, tmp_path):
    """A body file that cannot be read is exit 2 with the reason."""
    missing = tmp_path / "missing.json"
    assert run(capsys, "verify", "-p", "zaits", "-s", SECRET, missing) == (
        2,
        "",
        f"webhook-conformance: error: cannot read {missing}: No such file or directory\n"
        "try 'webhook-conformance verify --help'\n",
    )


# ---- validate -----------------------------------------------------------------------------


def test_validate_reports_ok_per_valid_file(capsys):
    """Valid payloads print `FILE: ok`, event type from the envelope, exit 0."""
    bodies = [VECTORS / "bodies" / f"zaits-{n}.json" for n in ("compact", "pretty", "unicode")]
    code, out, err = run(capsys, "validate", "-p", "zaits", *bodies)
    assert (code, err) == (0, "")
    assert out == "".join(f"{b}: ok\n" for b in bodies)


def test_validate_reports_every_schema_error_with_its_path(capsys, tmp_path):
    """An invalid payload prints one `FILE: $.path: message` line per error, exit 1."""
    payload = {**SIGNED, "created": "yesterday", "data": {"document_id": "doc_1"}}
    path = write_json(tmp_path / "bad.json", payload)
    assert run(capsys, "validate", "-p", "zaits", path) == (
        1,
        f"{path}: $.created: 'yesterday' is not of type 'integer'\n"
        f"{path}: $.data: 'signer' is a required property\n"
        f"{path}: $.data: 'signed_at' is a required property\n",
        "",
    )


def test_validate_reports_file_level_failures_without_crashing(capsys, tmp_path):
    """Missing files, malformed JSON, non-UTF-8, unknown or absent event types: one line each."""
    good = write_json(tmp_path / "good.json", SIGNED)
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"id": 1,\n "type": }', encoding="utf-8")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe")
    unknown = write_json(tmp_path / "unknown.json", {**SIGNED, "type": "nope"})
    untyped = write_json(tmp_path / "untyped.json", {"id": "evt_1"})
    missing = tmp_path / "missing.json"
    files = [good, malformed, binary, unknown, untyped, missing]
    known = ", ".join(conformance.load_profile("zaits").event_names)
    assert run(capsys, "validate", "-p", "zaits", *files) == (
        1,
        f"{good}: ok\n"
        f"{malformed}: $: malformed JSON at line 2, column 10: Expecting value\n"
        f"{binary}: $: not UTF-8 text: invalid start byte at byte 0\n"
        f"{unknown}: $.type: 'nope' is not an event type of profile 'zaits'; known types: {known}\n"
        f"{untyped}: $: no event type at $.type; pass --event to name one\n"
        f"{missing}: cannot read: No such file or directory\n",
        "",
    )


def test_validate_event_option_overrides_the_envelope(capsys, tmp_path):
    """`--event` names the type to check against, so a different envelope type is an error."""
    path = write_json(tmp_path / "signed.json", SIGNED)
    assert run(capsys, "validate", "-p", "zaits", "-e", "document.completed", path) == (
        1,
        f"{path}: $.type: 'document.completed' was expected\n",
        "",
    )


def test_validate_unknown_event_option_is_a_usage_error(capsys):
    """An `--event` outside the catalogue is exit 2, listing the known types."""
    known = ", ".join(conformance.load_profile("zaits").event_names)
    assert run(capsys, "validate", "-p", "zaits", "--event", "nope", COMPACT) == (
        2,
        "",
        f"webhook-conformance: error: 'nope' is not an event type of profile 'zaits'; "
        f"known types: {known}\ntry 'webhook-conformance events zaits'\n",
    )


def test_validate_reads_stdin(capsys, monkeypatch):
    """`-` validates the payload on stdin."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(SIGNED).encode())))
    assert run(capsys, "validate", "-p", "zaits", "-") == (0, "<stdin>: ok\n", "")


def test_validate_json_format_has_the_documented_shape(capsys, tmp_path):
    """`--format json` prints one document: profile, files with valid/event/errors, valid."""
    bad = write_json(tmp_path / "bad.json", {**SIGNED, "created": "x"})
    missing = tmp_path / "missing.json"
    code, out, _ = run(capsys, "validate", "-p", "zaits", "--format", "json", COMPACT, bad, missing)
    assert code == 1
    assert json.loads(out) == {
        "profile": "zaits",
        "files": [
            {"file": str(COMPACT), "valid": True, "event": "document.signed", "errors": []},
            {
                "file": str(bad),
                "valid": False,
                "event": "document.signed",
                "errors": [{"path": "$.created", "message": "'x' is not of type 'integer'"}],
            },
            {
                "file": str(missing),
                "valid": False,
                "event": None,
                "errors": [{"path": None, "message": "cannot read: No such file or directory"}],
            },
        ],
        "valid": False,
    }


def test_validate_json_format_exit_0_when_all_valid(capsys):
    """`--format json` over valid files says valid and exits 0."""
    code, out, _ = run(capsys, "validate", "-p", "zaits", "--format", "json", COMPACT)
    assert (code, json.loads(out)["valid"]) == (0, True)


# ---- usage errors, version, plugins, process behaviour -------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        pytest.param([], "try 'webhook-conformance --help'", id="no-command"),
        pytest.param(["sgin"], "try 'webhook-conformance --help'", id="unknown-command"),
        pytest.param(["events"], "try 'webhook-conformance events --help'", id="missing-profile"),
        pytest.param(["sign", "-s", "x", "f"], "try 'webhook-conformance sign --help'", id="sign"),
        pytest.param(
            ["validate", "-p", "zaits"], "try 'webhook-conformance validate --help'", id="no-files"
        ),
        pytest.param(
            ["verify", "-p", "zaits", "--now", "soon", "f"],
            "try 'webhook-conformance verify --help'",
            id="bad-number",
        ),
        pytest.param(
            ["verify", "-p", "zaits", "--tolerance", "-1", "f"],
            "try 'webhook-conformance verify --help'",
            id="negative-tolerance",
        ),
        pytest.param(
            ["requirements", "zaits", "--role", "admin"],
            "try 'webhook-conformance requirements --help'",
            id="bad-choice",
        ),
        pytest.param(["events", "nope"], "try 'webhook-conformance profiles'", id="bad-profile"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(capsys, argv, hint):
    """A usage error prints exactly one error line and one hint on stderr, exit 2."""
    code, out, err = run(capsys, *argv)
    lines = err.splitlines()
    assert (code, out) == (2, "")
    assert len(lines) == 2
    assert lines[0].startswith("webhook-conformance: error: ")
    assert lines[1] == hint
    assert "Traceback" not in err


def test_unknown_profile_lists_the_known_ones(capsys):
    """An unknown profile name is exit 2 with the bundled profiles listed."""
    known = ", ".join(conformance.list_profiles())
    assert run(capsys, "events", "nope") == (
        2,
        "",
        f"webhook-conformance: error: unknown profile 'nope'; known profiles: {known} "
        "(or give a path to a .yaml file)\ntry 'webhook-conformance profiles'\n",
    )


def test_version_and_help_exit_0(capsys):
    """`--version` prints the package version; `--help` lists the commands; both exit 0."""
    assert run(capsys, "--version") == (0, f"webhook-conformance {conformance.__version__}\n", "")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("profiles", "events", "sign", "verify", "validate", "requirements"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_help_says_how_to_test_a_receiver_with_the_pytest_plugin(capsys):
    """The suite is a pytest plugin, not a command: `--help` says how to run it, with an
    example against the reference receiver, and points to `demo`."""
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "pytest" in out
    assert "--target-url" in out
    assert "python -m pytest --target-url=URL --profile=NAME --secret=SECRET\n" in out
    assert "  webhook-conformance serve receiver --profile zaits --secret s3cret &\n" in out
    assert "--target-url=http://127.0.0.1:8000/webhook" in out  # where `serve` listens
    assert "'webhook-conformance demo'" in out
    assert "$WEBHOOK_SECRET" in out


def test_help_names_only_options_that_exist(capsys, tmp_path):
    """Every option the top-level help names is one of pytest's (the plugin's among them),
    of `serve receiver`, or `--help`: the example can be pasted as it is."""
    _, help_text, _ = run(capsys, "--help")
    epilog = help_text[help_text.index("Test a webhook receiver") :]
    _, serve_help, _ = run(capsys, "serve", "receiver", "--help")
    _, sender_help, _ = run(capsys, "serve", "sender", "--help")
    serve_help += sender_help
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--help"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        command[-1:-1] = ["-p", "conformance.plugin"]
    pytest_help = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", epilog))
    assert {"--target-url", "--profile", "--secret", "--conformance-report"} <= named
    known = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", pytest_help + serve_help))
    assert named - known == set()


def test_commands_from_entry_points_are_registered_and_broken_ones_skipped(capsys, monkeypatch):
    """Entry-point commands are added; one that fails to import is skipped silently."""

    def register(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.set_defaults(func=lambda args: print("hello") or 0)

    def broken():
        raise ImportError("No module named 'reference._cli'")

    entries = [
        SimpleNamespace(name="hello", value="x:register", load=lambda: register),
        SimpleNamespace(name="serve", value="reference._cli:register_serve", load=broken),
    ]
    monkeypatch.setattr(_cli, "entry_points", lambda group: entries)
    monkeypatch.delenv("WEBHOOK_CONFORMANCE_DEBUG", raising=False)
    assert run(capsys, "hello") == (0, "hello\n", "")
    monkeypatch.setenv("WEBHOOK_CONFORMANCE_DEBUG", "1")
    code, _, err = run(capsys, "hello")
    assert code == 0
    assert err.startswith(
        "webhook-conformance: note: skipped command serve (reference._cli:register_serve): "
        "No module named 'reference._cli'\n"
    )


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        pytest.param(KeyboardInterrupt, 130, id="interrupt"),
        pytest.param(BrokenPipeError, 1, id="pipe"),
    ],
)
def test_interrupt_and_closed_pipe_exit_quietly(capsys, monkeypatch, exception, code):
    """Ctrl-C exits 130 and a closed pipe exits 1, both without a traceback."""

    def boom():
        raise exception

    monkeypatch.setattr(_cli, "list_profiles", boom)
    assert run(capsys, "profiles") == (code, "", "")


def test_conformance_errors_exit_1_with_their_message(capsys, monkeypatch):
    """Any other ConformanceError is one error line and exit 1."""

    def fail(*args, **kwargs):
        raise conformance.ConformanceError("the contract says no")

    monkeypatch.setattr(_cli, "delivery_headers", fail)
    assert run(capsys, "sign", "-p", "zaits", "-s", SECRET, COMPACT) == (
        1,
        "",
        "webhook-conformance: error: the contract says no\n",
    )


def test_cli_never_imports_the_reference():
    """The CLI reaches `serve` and `demo` through entry points only, never importing reference."""
    source = Path(_cli.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import)\s+reference\b", source, re.MULTILINE)


def test_console_script_runs_and_reports_usage_errors_without_traceback():
    """The installed `webhook-conformance` script lists profiles, and a usage error is two lines."""
    script = shutil.which("webhook-conformance")
    if script is None:
        pytest.skip("the console script is not installed")
    ok = subprocess.run([script, "profiles"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"^zaits\s+9 events\s+Zaits$", ok.stdout, re.MULTILINE)
    bad = subprocess.run(
        [script, "profiles", "--bogus"], capture_output=True, text=True, check=False
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        "webhook-conformance: error: unrecognized arguments: --bogus\n"
        "try 'webhook-conformance --help'\n"
    )


@pytest.mark.parametrize("option", ["--now", "--tolerance"])
def test_verify_refuses_non_finite_clock_or_tolerance(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NaN or infinity as the clock or the tolerance would disable the replay check, so they
    are usage errors."""
    body = tmp_path / "body.json"
    body.write_bytes(b"{}")
    argv = ["verify", "-p", "zaits", "-s", "k", "-H", "X-Zaits-Signature: x", option, "nan"]
    assert main([*argv, str(body)]) == 2
    assert f"argument {option}: must be a finite number, got 'nan'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param("{not json", "is not readable JSON", id="not-json"),
        pytest.param('{"$ref": "nope.json"}', "$ref 'nope.json' resolves to nothing", id="bad-ref"),
    ],
)
def test_validate_with_a_broken_user_schema_is_one_line(
    schema: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider added with YAML and JSON Schema may have mistakes in its schemas; they are
    reported as one line naming the file, never a traceback."""
    source = Path(__file__).resolve().parent / "profiles"
    (tmp_path / "profiles").mkdir()
    profile = tmp_path / "profiles" / "github.yaml"
    profile.write_text((source / "github.yaml").read_text())
    (tmp_path / "schemas" / "anchors").mkdir(parents=True)
    (tmp_path / "schemas" / "anchors" / "envelope.json").write_text(schema)
    (tmp_path / "schemas" / "anchors" / "data.json").write_text("{}")
    payload = tmp_path / "payload.json"
    payload.write_text('{"type": "example.event", "data": {}}')
    assert main(["validate", "--profile", str(profile), str(payload)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
