"""Schemathesis hooks for r53's API fuzzing (tests/api-fuzz/run.sh loads this file through
SCHEMATHESIS_HOOKS).

One custom check: every error answer (4xx and 5xx) carries Route 53's error shape,
`{"Error": {"Type": "Sender"|"Receiver", "Code": "...", "Message": "..."}}`, in JSON, because
the aws CLI and SDKs read the code from there; a plain-text or framework-default error body
is a bug even when the status is right.
"""

import json

import schemathesis


@schemathesis.check
def route53_error_shape(ctx, response, case):
    if response.status_code < 400:
        return None
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if "application/json" not in content_type:
        raise AssertionError(f"{where}: error body is not JSON (content-type {content_type!r}): {response.text[:300]!r}")
    try:
        body = json.loads(response.text)
    except ValueError as exc:
        raise AssertionError(f"{where}: error body does not parse as JSON ({exc}): {response.text[:300]!r}")
    error = body.get("Error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise AssertionError(f"{where}: no Error object in {response.text[:300]!r}")
    for field in ("Type", "Code", "Message"):
        if not isinstance(error.get(field), str) or not error[field]:
            raise AssertionError(f"{where}: Error.{field} missing or empty in {response.text[:300]!r}")
    # Route 53 says Sender for the client's faults and Receiver for the server's.
    expected = "Receiver" if response.status_code >= 500 else "Sender"
    if error["Type"] != expected:
        raise AssertionError(f"{where}: Error.Type is {error['Type']!r}, expected {expected!r}")
    return None
