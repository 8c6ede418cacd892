import json

import msgpack
import pytest

from botyard import protocol
from botyard.protocol import ProtocolError, parse_turn

SUBJECT = "botyard.turn.acme-shop.support"
MP = lambda obj: msgpack.packb(obj, use_bin_type=True)  # noqa: E731
JSON_H = {"Content-Type": "application/json"}


def code_of(subject, data, headers=None, limit=4096):
    with pytest.raises(ProtocolError) as info:
        parse_turn(subject, data, headers, max_text_bytes=limit)
    return info.value


def test_valid_msgpack_and_json():
    req = parse_turn(SUBJECT, MP({"conversation_id": "c1", "text": "hi"}), None, max_text_bytes=4096)
    assert (req.tenant, req.bot, req.conversation_id, req.text, req.as_json) == ("acme-shop", "support", "c1", "hi", False)
    req = parse_turn(SUBJECT, json.dumps({"conversation_id": "c1", "text": "hi"}).encode(), JSON_H, max_text_bytes=4096)
    assert req.as_json and req.text == "hi"


@pytest.mark.parametrize(
    "data, headers, code, field",
    [
        (b"\xc1\x00", None, "malformed", None),
        (b"{not json", JSON_H, "malformed", None),
        (MP([1, 2, 3]), None, "invalid_request", None),
        (MP("just text"), None, "invalid_request", None),
        (MP({"conversation_id": "c1"}), None, "invalid_request", "text"),
        (MP({"conversation_id": "c1", "text": 42}), None, "invalid_request", "text"),
        (MP({"conversation_id": "c1", "text": "   "}), None, "invalid_request", "text"),
        (MP({"text": "hi"}), None, "invalid_request", "conversation_id"),
        (MP({"conversation_id": 7, "text": "hi"}), None, "invalid_request", "conversation_id"),
        (MP({"conversation_id": "x" * 200, "text": "hi"}), None, "invalid_request", "conversation_id"),
        (MP({"conversation_id": "c", "text": "hi", "turn_id": 5}), None, "invalid_request", "turn_id"),
    ],
)
def test_bad_requests_get_stable_codes(data, headers, code, field):
    err = code_of(SUBJECT, data, headers)
    assert err.code == code
    assert err.fields.get("field") == field
    wire = protocol.error_body(err.code, err.message, **err.fields)
    assert wire["error"]["code"] == code and wire["error"]["message"]


def test_text_over_limit_reports_size_and_limit():
    err = code_of(SUBJECT, MP({"conversation_id": "c", "text": "é" * 40}), limit=64)
    assert err.code == "text_too_long"
    assert err.fields == {"size": 80, "limit": 64}


def test_bad_subject_names():
    assert code_of("botyard.turn.a", MP({})).code == "invalid_request"
    assert code_of("botyard.turn.-x.bot", MP({"conversation_id": "c", "text": "t"})).fields["field"] == "tenant"


def test_json_reply_encoding_round_trips():
    body = {"a": 1, "text": "héllo"}
    assert json.loads(protocol.encode_body(body, True)) == body
    assert msgpack.unpackb(protocol.encode_body(body, False)) == body


@pytest.mark.parametrize("name", ["Botyard-Alias", "botyard-alias", "BOTYARD-ALIAS", "bOtYaRd-AlIaS"])
def test_the_alias_header_is_matched_case_insensitively(name):
    req = parse_turn(SUBJECT, MP({"conversation_id": "c1", "text": "hi", "alias": "canary"}), {name: "staging"}, max_text_bytes=4096)
    assert req.alias == "staging"  # the header, whatever its case, wins over the field


@pytest.mark.parametrize("name", ["Content-Type", "content-type", "CONTENT-TYPE", "Content-type"])
def test_the_content_type_header_is_matched_case_insensitively(name):
    req = parse_turn(SUBJECT, json.dumps({"conversation_id": "c1", "text": "hi"}).encode(), {name: "application/json"},
                     max_text_bytes=4096)
    assert req.as_json
    assert protocol.header({name: "x"}, "content-TYPE") == "x" and protocol.header({name: "x"}, "Botyard-Alias") is None


def test_an_error_reaches_nats_and_http_in_one_form():
    from pathlib import Path

    from botyard.actors.outbox import error_reply
    from botyard.errors import wire_error
    from botyard.ops.errors import AdminError

    exc = AdminError("unknown_turn", "no such turn", turn=9, where=Path("/x"), gate={"reasons": ("a",)})
    wire = exc.to_wire()
    assert wire_error("unknown_turn", "no such turn", code="x", message="sneaky", **exc.fields) == wire  # a field replaces neither
    assert wire == {"code": "unknown_turn", "message": "no such turn", "turn": 9, "where": "/x", "gate": {"reasons": ["a"]}}
    for as_json in (True, False):
        reply = error_reply("inbox", as_json, exc.code, exc.message, **exc.fields)
        assert protocol.decode_body(reply.body, as_json) == {"error": wire} and reply.code == "unknown_turn"
