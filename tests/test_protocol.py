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


# -- decoding limits (docs/protocol.md, "Basics") -------------------------------------------------

J = lambda obj: json.dumps(obj).encode()  # noqa: E731  (ensure_ascii: a lone surrogate goes as \ud800)


def test_names_end_at_the_end_of_the_string():
    assert protocol.NAME_RE.match("staging\n") is None
    with pytest.raises(ProtocolError):
        protocol.check_name("alias", "staging\n")
    assert code_of(SUBJECT, MP({"conversation_id": "c", "text": "hi"}), {"Botyard-Alias": "staging\n"}).fields == {"field": "alias"}


@pytest.mark.parametrize("field", ["conversation_id", "text", "turn_id", "alias", "extra"])
@pytest.mark.parametrize("bad", ["p\ud800", "\udfff", "a\udc80b", "\ud83d"])
def test_a_lone_surrogate_in_any_field_is_invalid_request_naming_it(field, bad):
    body = {"conversation_id": "c1", "text": "hi", field: bad}
    err = code_of(SUBJECT, J(body), JSON_H)
    assert (err.code, err.fields) == ("invalid_request", {"field": field})
    assert err.message.encode()  # the refusal itself encodes
    protocol.encode_body(protocol.error_body(err.code, err.message, **err.fields), True)


def test_a_lone_surrogate_in_a_nested_value_or_a_key():
    assert code_of(SUBJECT, J({"conversation_id": "c", "text": "hi", "meta": {"k": ["\ud800"]}}), JSON_H).fields == {"field": "meta"}
    assert code_of(SUBJECT, J({"conversation_id": "c", "text": "hi", "meta": {"\ud800": 1}}), JSON_H).fields == {"field": "meta"}
    err = code_of(SUBJECT, J({"conversation_id": "c", "text": "hi", "\ud800": 1}), JSON_H)
    assert err.code == "invalid_request" and "field" not in err.fields
    assert code_of(SUBJECT, J(["\ud800"]), JSON_H).code == "invalid_request"
    # a proper pair is one code point, and fine
    assert parse_turn(SUBJECT, J({"conversation_id": "\ud83d\ude42", "text": "hi"}), JSON_H, max_text_bytes=64).conversation_id == "🙂"


def test_invalid_utf8_in_msgpack_is_malformed():
    raw = msgpack.packb({"conversation_id": "p\ud800", "text": "hi"}, unicode_errors="surrogatepass")
    assert code_of(SUBJECT, raw).code == "malformed"


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("as_json", [True, False])
def test_deep_nesting_is_one_structured_error(depth, as_json):
    """No RecursionError escapes, whatever the depth (how long it takes is measured, not
    asserted: docs/protocol.md gives the figures)."""
    data = b"[" * depth + b"]" * depth if as_json else b"\x91" * depth + b"\xc0"
    with pytest.raises(ProtocolError) as info:
        protocol.decode_body(data, as_json)
    assert info.value.code == "invalid_request" and "nested deeper than 32" in info.value.message


def test_32_levels_pass_and_33_do_not():
    def nested(levels):  # the body is level 1
        value = "x"
        for _ in range(levels - 1):
            value = [value]
        return {"conversation_id": "c", "text": "hi", "meta": value}

    for encode, headers in ((J, JSON_H), (MP, None)):
        assert parse_turn(SUBJECT, encode(nested(32)), headers, max_text_bytes=64).text == "hi"
        err = code_of(SUBJECT, encode(nested(33)), headers)
        assert (err.code, err.fields) == ("invalid_request", {"field": "meta"})


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 2**63, 2**64 - 1, -(2**63)])
def test_integers_outside_2_53_are_refused(value):
    for encode, headers in ((J, JSON_H), (MP, None)):
        err = code_of(SUBJECT, encode({"conversation_id": "c", "text": "hi", "n": value}), headers)
        assert (err.code, err.fields) == ("invalid_request", {"field": "n"})
    assert protocol.decode_body(MP({"n": 2**53, "m": -(2**53)}), False) == {"n": 2**53, "m": -(2**53)}


def test_a_json_integer_of_thousands_of_digits_is_malformed():
    assert code_of(SUBJECT, b'{"conversation_id":"c","text":"hi","n":' + b"9" * 5000 + b"}", JSON_H).code == "malformed"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_floats_must_be_finite(value):
    assert code_of(SUBJECT, MP({"conversation_id": "c", "text": "hi", "x": [value]})).fields == {"field": "x"}
    assert code_of(SUBJECT, b'{"conversation_id":"c","text":"hi","x":NaN}', JSON_H).fields == {"field": "x"}


@pytest.mark.parametrize("key", [1, b"text", None, True, 1.5])
def test_map_keys_must_be_strings(key):
    err = code_of(SUBJECT, MP({"conversation_id": "c", "text": "hi", key: "v"}))
    assert err.code == "invalid_request" and "field" not in err.fields
    err = code_of(SUBJECT, MP({"conversation_id": "c", "text": "hi", "meta": {key: "v"}}))
    assert (err.code, err.fields) == ("invalid_request", {"field": "meta"})


def test_a_body_over_its_limit_is_refused_before_decoding():
    limit = protocol.turn_body_limit(4096)
    err = code_of(SUBJECT, b"\xc1" * (limit + 1))  # not even msgpack: the size is looked at first
    assert (err.code, err.fields) == ("invalid_request", {"size": limit + 1, "limit": limit})
    # any valid turn fits, however its text is escaped; a text just over the limit is still text_too_long
    escaped = json.dumps({"conversation_id": "c" * 128, "text": "\x01" * 4096, "turn_id": "t" * 64}).encode()
    assert len(escaped) > 6 * 4096 and parse_turn(SUBJECT, escaped, JSON_H, max_text_bytes=4096).text == "\x01" * 4096
    assert code_of(SUBJECT, MP({"conversation_id": "c", "text": "x" * 5000})).code == "text_too_long"
    with pytest.raises(ProtocolError) as info:
        protocol.decode_body(b"\x80" * 10, False, max_bytes=9)
    assert info.value.fields == {"size": 10, "limit": 9}


def test_plain_bodies_decode_unchanged():
    body = {"a": [1, 2.5, None, True, {"b": "héllo 🙂"}], "bin": b"\x00", "n": -(2**53)}
    assert protocol.decode_body(MP(body), False) == body
    body.pop("bin")
    assert protocol.decode_body(J(body), True) == body


def test_every_str_has_a_slot():
    from botyard.actors.supervisor import _slot

    assert _slot("acme-shop/support/p\ud800", 7) in range(7)
    assert _slot("acme-shop/support/c1", 7) == __import__("zlib").crc32(b"acme-shop/support/c1") % 7


@pytest.mark.parametrize("field,value", [("turn_id", "t" * 129), ("turn_id", ""), ("turn_id", "a\x00b"), ("conversation_id", "c\x00")])
def test_ids_are_bounded_and_free_of_nul(field, value):
    body = {"conversation_id": "c1", "text": "hi", field: value}
    with pytest.raises(ProtocolError) as exc:
        parse_turn(SUBJECT, MP(body), None, max_text_bytes=4096)
    assert exc.value.code == "invalid_request" and exc.value.fields["field"] == field
