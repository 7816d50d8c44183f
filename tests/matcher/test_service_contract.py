"""The HTTP contract of `creator-match serve`: what /openapi.json declares is what the service answers, refusals
included, and docs/service.md's example is a request it takes and an answer it declares.

The server here is real (uvicorn on a loopback port, the service's own app) but its matcher is never started, so it
stays loading: 503 is its steady answer to a valid request rather than a race against the model load, and every
refusal that comes before the matcher (Content-Type, size, JSON, fields) is answered as in service. The answers
of a loaded matcher are checked against the same declarations in test_service.py.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
import uvicorn

from features.contract import ASIN_PATTERN, MARKETPLACE_PATTERN
from features.tables import UNPAIRED
from matcher import service
from matcher.service import MAX_JSON_DEPTH, ModelHolder, ServiceConfig, server_config
from matcher.service_models import MAX_LOOKALIKES
from tests.commands import free_port

JSON = "application/json"
MAX_BODY = 300_000  # above the 200 KB deeply nested body, which must be refused for its depth, not its size
MAX_CAMPAIGNS = 5
SERVICE_DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def exchange(
    url: str, body: object | None = None, raw: bytes | None = None, content_type: str | None = JSON
) -> tuple[int, dict[str, str], object]:
    """GET (no body) or POST; (status, headers by lower-case name, parsed JSON reply). http.client rather than
    urllib, which adds a form Content-Type to a POST that has none."""
    parts = urllib.parse.urlsplit(url)
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if content_type and data is not None else {}
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("GET" if data is None else "POST", parts.path, data, headers)
        reply = connection.getresponse()
        return (
            reply.status,
            {name.lower(): value for name, value in reply.getheaders()},
            json.loads(reply.read() or b"null"),
        )
    finally:
        connection.close()


def assert_declared(openapi: dict, path: str, method: str, status: int, headers: dict[str, str], body: object) -> None:
    """The answer is one /openapi.json declares for `path`: its status, its body's schema and its headers."""
    declared = openapi["paths"][path][method]["responses"]
    assert str(status) in declared, f"{method.upper()} {path} answered {status}, not declared: {sorted(declared)}"
    response = declared[str(status)]
    schema = response["content"][JSON]["schema"]
    # The components beside the schema: its $refs ("#/components/schemas/...") resolve within one document.
    jsonschema.validate(body, {**schema, "components": openapi["components"]}, cls=jsonschema.Draft202012Validator)
    missing = [name for name in response.get("headers", {}) if name.lower() not in headers]
    assert not missing, f"{method.upper()} {path} answered {status} without its declared headers {missing}"


def documented_example() -> tuple[dict, dict]:
    """docs/service.md's example: the request body (`campaign.json`) and the answer shown for it."""
    section = SERVICE_DOC.read_text().split("### An example", 1)[1].split("\n### ", 1)[0]
    request, answer = (json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.DOTALL))
    return request, answer


@contextlib.contextmanager
def serving(config: ServiceConfig, folder: Path):
    """The service as `serve` runs it (`server_config`) on a free loopback port, its matcher never started; yields
    its URL."""
    backend = ModelHolder(folder / "creators.parquet", config)
    port = free_port()
    server = uvicorn.Server(server_config(backend, port=port))
    thread = threading.Thread(target=server.run, name="loading-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive(), "the server did not stop within 30 s"


@pytest.fixture(scope="module")
def loading_service(tmp_path_factory):
    """The service on a free port, its matcher never started; yields (URL, its /openapi.json)."""
    config = ServiceConfig("models:/never-loaded@champion", max_body_bytes=MAX_BODY, max_campaigns=MAX_CAMPAIGNS)
    with serving(config, tmp_path_factory.mktemp("unread")) as url:
        status, _, openapi = exchange(f"{url}/openapi.json")
        assert status == 200
        yield url, openapi


def test_every_refusal_is_a_body_and_headers_that_openapi_declares(loading_service):
    url, openapi = loading_service
    campaign, _ = documented_example()
    cases = [
        ("/v1/match", {"raw": b'{"campaign_id": '}, 422),
        ("/v1/match", {"raw": b"[" * 100_000 + b"]" * 100_000}, 422),
        ("/v1/match", {"body": {**campaign, "commission_rate": 1.7}}, 422),
        ("/v1/match", {"body": []}, 422),
        ("/v1/match", {"raw": b"[" + b" " * MAX_BODY + b"]"}, 413),
        ("/v1/match", {"body": [campaign] * (MAX_CAMPAIGNS + 1)}, 413),
        ("/v1/match", {"body": campaign, "content_type": "text/plain"}, 415),
        ("/v1/match", {"body": campaign}, 503),
        ("/v1/similar", {"body": {"creator_ids": ["cr000001"], "k": 0}}, 422),
        ("/v1/similar", {"body": {"creator_ids": ["cr000001"]}, "content_type": None}, 415),
        ("/v1/similar", {"body": {"creator_ids": ["cr000001"]}}, 503),
    ]
    for path, request, expected in cases:
        status, headers, reply = exchange(f"{url}{path}", **request)
        assert status == expected, (path, request.get("content_type"), status, reply)
        assert_declared(openapi, path, "post", status, headers, reply)
    status, headers, reply = exchange(f"{url}/readyz")
    assert status == 503 and reply["status"] == "loading"
    assert_declared(openapi, "/readyz", "get", status, headers, reply)
    for path in ("/v1/match", "/v1/similar"):
        assert set(openapi["paths"][path]["post"]["responses"]) == {"200", "400", "408", "413", "415", "422", "503"}


def test_health_and_readiness_answer_head_as_get(loading_service):
    """Health checkers that ask with HEAD got 405: they get GET's status and headers, without the body."""
    url, openapi = loading_service
    for path, expected in (("/healthz", 200), ("/readyz", 503)):
        connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
        try:
            connection.request("HEAD", path)
            reply = connection.getresponse()
            assert (reply.status, reply.read()) == (expected, b""), path
            assert reply.getheader("content-type") == JSON
        finally:
            connection.close()
        assert "head" in openapi["paths"][path]


def health_status_for_host(url: str, host: str) -> int:
    """GET /healthz's status when the request names `host` in its Host header, as a browser on a rebound domain
    names the page's own."""
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
    try:
        connection.putrequest("GET", "/healthz", skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        reply = connection.getresponse()
        reply.read()
        return reply.status
    finally:
        connection.close()


def test_only_the_allowed_host_names_are_answered(loading_service, tmp_path):
    """A page whose domain was made to resolve to 127.0.0.1 (DNS rebinding) could call a loopback service from the
    user's browser and read the answers: with `allowed_hosts`, a Host header naming anything else is a 400."""
    config = ServiceConfig("models:/never-loaded@champion", allowed_hosts=("localhost", "127.0.0.1"))
    with serving(config, tmp_path) as url:
        port = url.rsplit(":", 1)[1]
        assert health_status_for_host(url, "rebind.attacker.example") == 400
        assert health_status_for_host(url, f"rebind.attacker.example:{port}") == 400
        assert [health_status_for_host(url, name) for name in (f"127.0.0.1:{port}", "LocalHost")] == [200, 200]
    # ("*",), the library's default, answers any: `serve` chooses by the address it binds (test_service.py).
    assert health_status_for_host(loading_service[0], "rebind.attacker.example") == 200
    with pytest.raises(ValueError, match=r"^Got allowed_hosts=\(\); expected host names"):
        ServiceConfig("models:/x@champion", allowed_hosts=())


def test_a_path_with_a_trailing_slash_is_not_redirected(loading_service):
    """`POST /v1/match/` was answered 307 to the path without the slash, at the host the request named: behind a
    proxy that passes its own (`proxy_pass http://127.0.0.1:8000`, as docs/service.md's example), a client that
    follows redirects sent its campaigns to port 8000 of its own machine. Such a path is not found, as any other."""
    url, _ = loading_service
    campaign, _ = documented_example()
    for path, body in (("/v1/match/", campaign), ("/v1/similar/", {"creator_ids": ["c"]}), ("/readyz/", None)):
        status, headers, reply = exchange(f"{url}{path}", body)
        assert (status, reply, headers.get("location")) == (404, {"detail": "Not Found"}, None), path


def test_more_campaigns_than_the_cap_is_a_413_naming_both_and_where_to_send_them(loading_service):
    """1,600 campaigns in a 1 MB body took 73 s of CPU, slowing every other request: a request holds at most
    `max_campaigns`, and a list of that many is read as usual (503 here: the matcher is never loaded)."""
    url, _ = loading_service
    campaign, _ = documented_example()
    status, _, reply = exchange(f"{url}/v1/match", [campaign] * (MAX_CAMPAIGNS + 1))
    detail = f"got {MAX_CAMPAIGNS + 1} campaigns; expected at most {MAX_CAMPAIGNS} a request: match larger batches "
    assert (status, reply) == (413, {"detail": detail + "with `creator-match match`"})
    campaigns = [{**campaign, "campaign_id": f"c-{n}"} for n in range(MAX_CAMPAIGNS)]
    assert exchange(f"{url}/v1/match", campaigns)[0] == 503


def _health(url: str) -> tuple[int, bytes]:
    """GET /healthz: the status and the body as sent (uvicorn's own 503 is plain text)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
    try:
        connection.request("GET", "/healthz")
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def test_connections_beyond_the_limit_are_answered_503_at_once_and_idle_ones_closed(tmp_path):
    """19,900 half-sent requests held open once left new clients with no answer at all: past `max_connections`
    open connections a request is answered 503 at once, and served again once they close; an idle kept-alive
    connection is closed after `keep_alive_seconds`."""
    config = ServiceConfig("models:/never-loaded@champion", max_connections=3, keep_alive_seconds=1)
    with serving(config, tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(3)]
        try:
            for connection in held:  # a request's first header, the rest never sent
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            deadline = time.monotonic() + 30
            # The server takes the held connections in its own time: until it has, a request may still be served.
            while (answer := _health(url))[0] == 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert answer == (503, b"Service Unavailable")
        finally:
            for connection in held:
                connection.close()
        deadline = time.monotonic() + 30
        while (answer := _health(url))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer == (200, b'{"status":"ok"}')

        with socket.create_connection(("127.0.0.1", port), timeout=30) as kept:
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            started, reply = time.monotonic(), b""
            while chunk := kept.recv(65536):  # to the end: the server closes the connection once it idles 1 s
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 20


def _partial_body(url: str, sent: bytes, declared: int) -> socket.socket:
    """A connection that has sent the headers of a POST /v1/match of `declared` bytes and only `sent` of them."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)
    head = f"POST /v1/match HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    connection.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode() + sent)
    return connection


def test_a_body_cut_short_or_too_slow_is_refused_without_a_traceback(loading_service, monkeypatch):
    """A client that hangs up mid-body is no traceback in the log; one that stops sending gets 408 once the body's
    time is up, and the service carries on."""
    url, openapi = loading_service
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        _partial_body(url, b'{"campaign_id": ', 500).close()
        monkeypatch.setattr(service, "BODY_TIMEOUT_SECONDS", 1.0)
        with _partial_body(url, b'{"campaign_id": ', 500) as slow:
            reply = b""
            while chunk := slow.recv(65536):  # to the end: the server closes a connection whose body never came
                reply += chunk
            reply = reply.decode()
        assert exchange(f"{url}/healthz")[0] == 200
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    status, body = int(reply.split(" ", 2)[1]), json.loads(reply.split("\r\n\r\n", 1)[1])
    assert status == 408 and body == {"detail": "request body not whole within 1 s"}
    assert_declared(openapi, "/v1/match", "post", status, {}, body)
    assert not errors, [record.getMessage() for record in errors]


def test_a_deeply_nested_or_unparsable_body_is_a_one_line_422_and_the_service_carries_on(loading_service):
    url, _ = loading_service
    campaign, _ = documented_example()
    deep = f"JSON nested more than {MAX_JSON_DEPTH} levels deep; a request needs at most 3"
    nested = {**campaign, "asins": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)}
    bodies = [
        (b"[" * 100_000 + b"]" * 100_000, deep),  # beyond what Python's parser recurses into
        (("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)).encode(), deep),
        (json.dumps(nested).encode(), deep),  # 33 levels within a campaign
        # Python's cap on digits, said plainly: its own text ended "use sys.set_int_max_str_digits()".
        (b'{"price": ' + b"1" * 5000 + b"}", "got a number of 5000 digits; expected at most 4300"),
        (b"", "not JSON: Expecting value"),
    ]
    for raw, reason in bodies:
        status, _, reply = exchange(f"{url}/v1/match", raw=raw)
        assert status == 422, (raw[:40], status, reply)
        [problem] = reply["detail"]
        assert problem["column"] == "(body)" and problem["reason"].startswith(reason), problem
        assert "\n" not in problem["message"]
    # 32 levels is parsed: what is refused then is the shape, a list of lists where campaigns were expected.
    status, _, reply = exchange(f"{url}/v1/match", raw=("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH).encode())
    reason = reply["detail"][0]["reason"]
    assert status == 422 and reason.startswith("[0]: got [[[") and reason.endswith("; expected a campaign object")
    status, _, reply = exchange(f"{url}/healthz")
    assert (status, reply) == (200, {"status": "ok"})


def test_half_of_a_character_is_a_422_naming_the_campaign_and_field_not_a_500(loading_service):
    """A tool that cuts a brief at a length in UTF-16 units, inside an emoji, sends half of it ("\\ud83d"): Arrow
    refused to hold it and the request was a 500 with a traceback. Now each field that holds one is refused,
    and one in a field no table reads is no refusal (503: the request reached the matcher)."""
    url, _ = loading_service
    campaign, _ = documented_example()
    brief = campaign["brief"][:40] + "\ud83d"
    cut = {**campaign, "campaign_id": "cut", "brief": brief, "category": "beauty\udc00"}
    status, _, reply = exchange(f"{url}/v1/match", raw=json.dumps([campaign, cut]).encode())
    assert status == 422, reply
    assert [(p["row"], p["id"], p["column"], p["reason"]) for p in reply["detail"]] == [
        (2, "cut", "brief", f"got {brief!r}; {UNPAIRED}"),
        (2, "cut", "category", f"got {'beauty' + chr(0xDC00)!r}; {UNPAIRED}"),
    ]
    status, _, reply = exchange(f"{url}/v1/match", raw=json.dumps({**campaign, "team\ud800": "x\ud800"}).encode())
    assert status == 503, reply


def test_only_a_json_content_type_is_read(loading_service):
    """application/json, with parameters, or a +json type reach the matcher (503 while it loads); any other type,
    or none, is 415 with Accept, naming the type it got."""
    url, _ = loading_service
    campaign, _ = documented_example()
    accepted = ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.x+json"]
    for content_type in accepted:
        assert exchange(f"{url}/v1/match", campaign, content_type=content_type)[0] == 503, content_type
    for content_type, shown in [
        ("text/plain", "got Content-Type 'text/plain'"),
        ("application/x-www-form-urlencoded", "got Content-Type 'application/x-www-form-urlencoded'"),
        ("text/json", "got Content-Type 'text/json'"),
        (None, "got no Content-Type"),
    ]:
        status, headers, reply = exchange(f"{url}/v1/match", campaign, content_type=content_type)
        assert status == 415 and reply == {"detail": f"{shown}; expected {JSON}"}, (content_type, status, reply)
        assert headers["accept"] == JSON


def test_a_compressed_body_is_415_saying_so(loading_service):
    """A gzip body was read as it came and refused as "'utf-8' codec can't decode byte 0x8b": 415 says why, before
    the body is read; `identity` is no encoding."""
    url, openapi = loading_service
    campaign, _ = documented_example()
    connection = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=60)
    try:
        for encoding, expected in [("gzip", 415), ("GZIP, br", 415), ("identity", 503)]:
            headers = {"Content-Type": JSON, "Content-Encoding": encoding}
            body = json.dumps(campaign).encode()
            connection.request("POST", "/v1/match", gzip.compress(body) if expected == 415 else body, headers)
            reply = connection.getresponse()
            answer, heard = json.loads(reply.read()), {name.lower(): value for name, value in reply.getheaders()}
            assert reply.status == expected, (encoding, reply.status, answer)
            if expected == 415:
                assert answer == {
                    "detail": f"got Content-Encoding {encoding!r}; content encodings are not accepted: send the JSON "
                    "uncompressed"
                }
                assert heard["accept"] == JSON and heard["accept-encoding"] == "identity"
                assert_declared(openapi, "/v1/match", "post", reply.status, heard, answer)
    finally:
        connection.close()


def _campaign_text(campaign: dict, *repeats: str) -> bytes:
    """`campaign` as JSON text with `repeats` (`"price": 5`) written after its own keys."""
    return (json.dumps(campaign)[:-1] + "".join(f", {repeat}" for repeat in repeats) + "}").encode()


def test_a_repeated_key_is_refused_as_the_command_line_refuses_its_line(loading_service):
    """`"price": 29.99, "price": 5` was taken as 5 (json keeps the last), the product type flipping with it; the
    command line rejects such a JSON Lines line. A campaign's own repeat is its reject, naming its row, id and key;
    a key the table does not read may repeat, as a team's own column in a file may."""
    url, openapi = loading_service
    campaign, _ = documented_example()
    first = _campaign_text(campaign, '"price": 5')
    status, headers, reply = exchange(f"{url}/v1/match", raw=first)
    reason = "key 'price' appears twice in this campaign; expected each key once"
    assert (status, reply["detail"]) == (
        422,
        [
            {
                "table": "campaigns",
                "row": 1,
                "id": "c-1001",
                "column": "price",
                "reason": reason,
                "message": f"campaigns row 1 (id c-1001): column price: {reason}",
            }
        ],
    )
    assert_declared(openapi, "/v1/match", "post", status, headers, reply)
    # In a list: the second campaign's repeat is its only reject (as on the command line, not its budget too); the
    # first campaign's own keys (`tool_ref`, and one inside a map the table does not read) repeat harmlessly.
    own = _campaign_text(campaign, '"tool_ref": 1', '"tool_ref": 2', '"tool": {"a": 1, "a": 2}')
    other = _campaign_text({**campaign, "campaign_id": "c-1002", "budget": -1}, '"asins": []')
    status, _, reply = exchange(f"{url}/v1/match", raw=b"[" + own + b", " + other + b"]")
    assert status == 422
    assert [problem["message"] for problem in reply["detail"]] == [
        "campaigns row 2 (id c-1002): column asins: key 'asins' appears twice in this campaign; expected each key once"
    ]
    assert exchange(f"{url}/v1/match", raw=b"[" + own + b"]")[0] == 503  # valid: past every check


def test_a_required_field_written_another_way_is_named_in_the_refusal(loading_service):
    """`Commission_Rate` for commission_rate was refused as only "required value is missing"; the command line names
    the column it probably is, and so does the 422."""
    url, _ = loading_service
    campaign, _ = documented_example()
    cases = [
        ("commission_rate", "Commission_Rate"),
        ("commission_rate", "commissionRate"),
        ("commission_rate", "Commission Rate"),
        ("asins", "asin"),
        ("start_date", "startDate"),
    ]
    for field, written in cases:
        body = {key: value for key, value in campaign.items() if key != field} | {written: campaign[field]}
        status, _, reply = exchange(f"{url}/v1/match", body)
        reason = (
            f"required value is missing (found {written!r} for {field}: column names are exact, lower case and "
            "without spaces)"
        )
        assert status == 422 and [(p["column"], p["reason"]) for p in reply["detail"]] == [(field, reason)], reply
        assert reply["detail"][0]["message"] == f"campaigns row 1 (id c-1001): column {field}: {reason}"


EMPTY_LIST = "got []; list should have at least 1 item after validation, not 0"


def test_similar_refusals_name_the_field_and_the_value_as_match_does(loading_service):
    url, _ = loading_service
    campaign, _ = documented_example()
    status, _, reply = exchange(f"{url}/v1/match", {**campaign, "commission_rate": 1.7})
    assert status == 422
    assert reply["detail"][0]["reason"] == (
        "got 1.7; input should be less than or equal to 1 (written as a percentage? write 0.017 for 1.7%)"
    )
    cases = [
        ({"creator_ids": ["x"], "k": 0}, "k", "got 0; input should be greater than or equal to 1"),
        ({"creator_ids": ["x"], "k": MAX_LOOKALIKES + 1}, "k", "got 1001; input should be less than or equal to 1000"),
        ({"creator_ids": ["x"], "k": 2.5}, "k", "got 2.5; input should be a valid integer"),
        ({"creator_ids": ["x"], "kk": 3}, "kk", "got 3; extra inputs are not permitted"),
        # A count is a JSON integer: true was read as 1 lookalike, "10" as ten.
        ({"creator_ids": ["x"], "k": True}, "k", "got True; input should be a valid integer"),
        ({"creator_ids": ["x"], "k": "10"}, "k", "got '10'; input should be a valid integer"),
        ({"creator_ids": ["x", 5]}, "creator_ids", "[1]: got 5; input should be a valid string"),
        ({"creator_ids": "x"}, "creator_ids", "got 'x'; input should be a valid list"),
        ({"k": 5}, "creator_ids", "required value is missing"),
        # An empty filter filtered to nothing (no type) or to creators stating no audience: absent is no filter.
        ({"creator_ids": ["x"], "marketplaces": []}, "marketplaces", EMPTY_LIST),
        ({"creator_ids": ["x"], "creator_types": []}, "creator_types", EMPTY_LIST),
        (None, "(body)", "got None; expected an object with creator_ids"),
    ]
    for body, column, reason in cases:
        status, _, reply = exchange(f"{url}/v1/similar", raw=json.dumps(body).encode())  # raw: a body of null too
        assert status == 422 and reply["detail"][0]["column"] == column, (body, reply)
        assert reply["detail"][0]["reason"] == reason
        assert reply["detail"][0]["message"] == f"similar: column {column}: {reason}"
    # A field sent twice: which was meant is a guess, as in a campaign (the last value was taken).
    status, _, reply = exchange(f"{url}/v1/similar", raw=b'{"creator_ids": ["x"], "k": 5, "k": 50}')
    assert status == 422 and reply["detail"][0]["column"] == "k", reply
    assert reply["detail"][0]["reason"] == "key 'k' appears twice in this request; expected each key once"
    # One problem per field, as a campaign gets one per column.
    status, _, reply = exchange(f"{url}/v1/similar", {"creator_ids": [], "k": 0, "kk": 1})
    assert status == 422 and [problem["column"] for problem in reply["detail"]] == ["creator_ids", "k", "kk"]


def test_openapi_shows_the_contract_patterns_and_the_documented_example_holds(loading_service):
    url, openapi = loading_service
    schemas = openapi["components"]["schemas"]
    campaign_row = schemas["CampaignRow"]["properties"]
    assert campaign_row["asins"]["items"]["pattern"] == ASIN_PATTERN.pattern
    assert campaign_row["marketplaces"]["items"]["pattern"] == MARKETPLACE_PATTERN.pattern
    assert schemas["SimilarRequest"]["properties"]["k"]["maximum"] == MAX_LOOKALIKES
    request, answer = documented_example()

    def valid(body: object, name: str) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]}
        return jsonschema.Draft202012Validator(schema).is_valid(body)

    assert valid(request, "CampaignRow") and valid(answer, "MatchResponse")
    assert not valid({**request, "asins": ["b0c1vsr7q2"]}, "CampaignRow")
    assert not valid({**request, "marketplaces": ["USA"]}, "CampaignRow")
    # The amounts' bounds in JSON Schema's own words: a client that validates against the document refuses what
    # the service refuses (pydantic's gt and le had let these through any validator).
    for field, value in [("price", -5), ("price", 1e12), ("commission_rate", 7), ("budget", 0)]:
        assert not valid({**request, field: value}, "CampaignRow"), (field, value)
        assert exchange(f"{url}/v1/match", {**request, field: value})[0] == 422
    assert {match["campaign_id"] for match in answer["matches"]} == {request["campaign_id"]}
    # The service takes it: past every check before the matcher, which is loading here.
    assert exchange(f"{url}/v1/match", request)[0] == 503
    text = SERVICE_DOC.read_text()
    assert f"more than {MAX_JSON_DEPTH} levels deep" in text and f"`k` from 1 to {MAX_LOOKALIKES:,}" in text
