"""Korean system entities (issue 27): numbers, ordinals, money, dates, times and durations on
real Korean phrasings with particles attached and free spacing (tests/data/system-entities-ko.yml,
resolved against a fixed time in Asia/Seoul), no false alarms on ordinary Korean, declared in
a Korean bot file and served by a trained Korean bot's runtime."""

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from botyard.models.definition import parse_bot
from botyard.models.entities import Matchers
from botyard.models.system import en
from botyard.models.system.kinds import KINDS
from botyard.models.system.languages import LANGUAGES

TABLE = yaml.safe_load((Path(__file__).resolve().parent.parent / "data" / "system-entities-ko.yml").read_text())
NOW = datetime.fromisoformat(TABLE["now"]).timestamp()
ZONE = TABLE["timezone"]


def bot(entities: dict, **top) -> dict:
    return {
        "tenant": "acme", "bot": "delivery-ko", "language": "ko", "entities": entities, **top,
        "intents": {"book": {"examples": ["배송 예약할게요", "보내 주세요"], "responses": ["예약했어요."]},
                    "greet": {"examples": ["안녕하세요", "반가워요"], "responses": ["안녕하세요!"]}},
    }


def matchers(*kinds: str, zone: str = ZONE) -> Matchers:
    definition = parse_bot(bot({k: {"type": "system", "kind": k} for k in kinds}, timezone=zone))
    return Matchers(definition.entities, language=definition.language, timezone=definition.timezone)


ONE_KIND = {kind: matchers(kind) for kind in KINDS}
EVERY_KIND = matchers(*KINDS)


def spans(m: Matchers, text: str, now: float = NOW) -> list[tuple]:
    return [(e.entity, e.value, text[e.start : e.end]) for e in m.find(text, now)]


def test_the_table_has_sixty_phrasings_every_kind_and_a_dozen_ordinary_utterances():
    assert len(TABLE["phrasings"]) >= 60 and len(TABLE["none"]) >= 12
    assert {row[0] for row in TABLE["phrasings"]} == set(KINDS)
    assert TABLE["language"] == "ko" and "ko" in LANGUAGES


@pytest.mark.parametrize("kind, text, value, span", TABLE["phrasings"], ids=lambda v: str(v))
def test_phrasing(kind, text, value, span):
    found = ONE_KIND[kind].find(text, NOW)
    assert found, f"nothing found in {text!r}"
    first = found[0]
    assert (first.entity, first.value, text[first.start : first.end]) == (kind, value, span)
    assert type(first.value) is type(value) and first.extractor == "system" and first.confidence == 1.0
    json.dumps(first.to_dict())


@pytest.mark.parametrize("kind, text, value, span", TABLE["phrasings"], ids=lambda v: str(v))
def test_with_every_kind_declared_the_phrase_is_read_or_lies_in_a_longer_one(kind, text, value, span):
    """A bot declaring all six kinds gets the same phrase, or a longer phrase of another kind
    around it (the 1 of 일 년 is in a duration, as the 3 of 3만원 is in an amount)."""
    start = text.index(span)
    around = [e for e in EVERY_KIND.find(text, NOW) if e.start <= start and start + len(span) <= e.end]
    assert len(around) == 1, around
    (e,) = around
    assert (e.entity, e.value, text[e.start : e.end]) == (kind, value, span) or (
        e.entity != kind and e.end - e.start > len(span)), e


@pytest.mark.parametrize("text", TABLE["none"])
def test_ordinary_utterances_have_none(text):
    assert EVERY_KIND.find(text, NOW) == []


@pytest.mark.parametrize("spaced, unspaced", [
    ("다음 주 금요일에 와요", "다음주금요일에 와요"),
    ("3만 원이요", "3만원이요"),
    ("오후 3시 30분쯤", "오후3시30분쯤"),
    ("두 번째 거요", "두번째거요"),
    ("한 시간 반 뒤에", "한시간반뒤에"),
])
def test_spacing_does_not_change_the_value(spaced, unspaced):
    assert [(e.entity, e.value) for e in EVERY_KIND.find(spaced, NOW)] == [(e.entity, e.value) for e in EVERY_KIND.find(unspaced, NOW)]
    assert EVERY_KIND.find(spaced, NOW)


def test_several_kinds_in_one_utterance_and_particles_stay_out():
    text = "3만원짜리 두 개를 다음 주 금요일 오후3시쯤 받고 싶어요"
    assert spans(EVERY_KIND, text) == [("money", "30000 KRW", "3만원"), ("number", 2, "두"),
                                       ("date", "2026-12-18", "다음 주 금요일"), ("time", "15:00", "오후3시")]
    # a bot that declares only numbers reads the amount's number
    assert spans(matchers("number"), text) == [("number", 30000, "3만"), ("number", 2, "두"), ("number", 3, "3")]


def test_a_single_sino_korean_syllable_needs_a_counter():
    assert spans(ONE_KIND["number"], "삼 층이요") == [("number", 3, "삼")]
    assert spans(ONE_KIND["number"], "삼 주세요") == []  # 삼 alone; 사 주세요 is "buy it for me"
    assert spans(ONE_KIND["number"], "오천이에요") == [("number", 5000, "오천")]  # the copula, not 5,002
    assert spans(ONE_KIND["number"], "이십이 명") == [("number", 22, "이십이")]


def test_relative_dates_and_times_resolve_in_the_bot_time_zone():
    late = datetime.fromisoformat("2026-12-09T15:30:00+00:00").timestamp()  # 00:30 on the 10th in Seoul
    seoul, utc = matchers("date", "time"), matchers("date", "time", zone="UTC")
    assert [e.value for e in seoul.find("내일 두 시간 뒤에", late)] == ["2026-12-11", "02:30"]
    assert [e.value for e in utc.find("내일 두 시간 뒤에", late)] == ["2026-12-10", "17:30"]


def test_english_bots_read_no_korean_and_korean_bots_keep_english_money_symbols():
    english = Matchers(parse_bot({**bot({"amount": {"type": "system", "kind": "money"}}), "language": "en"}).entities)
    assert english.find("3만원이요", NOW) == []
    assert spans(ONE_KIND["money"], "USD 20이요") == [("money", "20 USD", "USD 20")]
    assert en.LANGUAGE.word("next  Week") == "next week" and LANGUAGES["ko"].word("다음  주") == "다음주"


def test_a_korean_bot_declaring_system_entities_is_accepted_and_stored():
    definition = parse_bot(bot({"when": {"type": "system", "kind": "date"}, "amount": {"type": "system", "kind": "money"}},
                               timezone="Asia/Seoul"))
    assert (definition.language, definition.timezone) == ("ko", "Asia/Seoul")
    assert [(e.name, e.kind) for e in definition.entities] == [("when", "date"), ("amount", "money")]


@pytest.mark.slow
def test_a_trained_korean_bot_serves_dates_and_money_with_particles_attached():
    """parse_bot -> training (the Korean bag model, Kiwi's morphemes) -> the numpy runtime: the
    system entities come with the prediction, their spans without the particles."""
    from botyard.models.runtime import Predictor
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train

    data = bot({"when": {"type": "system", "kind": "date"}, "amount": {"type": "system", "kind": "money"}}, timezone=ZONE)
    data["intents"]["book"]["examples"] += ["다음 주 금요일에 보내 주세요", "내일 배송해 주세요", "3만원 결제하고 보내 주세요"]
    trained = train(parse_bot(data), TrainConfig(epochs=8, seed=1))
    predictor = Predictor(trained.manifest, trained.arrays)
    text = "다음주 금요일에 3만원이요 보내 주세요"
    p = predictor.predict(text, now=NOW)
    assert p.intent == "book"
    assert [(e.entity, e.value, text[e.start : e.end], e.extractor) for e in p.entities] == [
        ("when", "2026-12-18", "다음주 금요일", "system"), ("amount", "30000 KRW", "3만원", "system")]
    later = predictor.predict("내일까지 보내 주세요", now=NOW + 86400)
    assert [e.value for e in later.entities] == ["2026-12-11"]
