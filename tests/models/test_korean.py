"""Korean bots (issue 27): morphemes beside character n-grams, particles and spacing, the
no-known-word rule at morpheme level, entity spans in the user's characters, the language in
the manifest, and the English-only tiers refused. Small real trainings of tests/data/korean-shop.yml."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from botyard.models import korean
from botyard.models.batch import predict_batch
from botyard.models.definition import load_bot, parse_bot
from botyard.models.errors import DefinitionError
from botyard.models.featurizer import FeatureConfig, _hash, _hashes
from botyard.models.runtime import Predictor
from botyard.models.text import tokenize
from botyard.snapshots.format import pack
from botyard.training.config import TrainConfig
from botyard.training.language import LanguageNotServed
from botyard.training.pipeline import train

BOT = Path(__file__).resolve().parent.parent / "data" / "korean-shop.yml"
CONFIG = TrainConfig(epochs=40, batch_size=16, seed=1)


@pytest.fixture(scope="module")
def bot():
    return load_bot(BOT)


@pytest.fixture(scope="module")
def trained(bot):
    return train(bot, CONFIG)


@pytest.fixture(scope="module")
def predictor(trained):
    return Predictor(trained.manifest, trained.arrays)


@pytest.fixture(scope="module")
def english(bot):
    """The same bot read as English, as every bot was before issue 27."""
    return train(replace(bot, language="en"), CONFIG)


def test_morphemes_of_particles_spacing_and_spoken_endings():
    assert korean.features("시간이") == (("시간",), ("이/JKS",))
    assert korean.features("시간은")[0] == korean.features("시간")[0] == ("시간",)
    spaced = [m for w in "상담원 연결 시간이 언제예요".split() for m in korean.features(w)[0]]
    assert korean.features("상담원연결시간이언제예요")[0] == tuple(spaced) == ("상담원", "연결", "시간", "언제")
    assert korean.features("와여") == korean.features("와요")  # a spoken ending, read as the written one
    assert korean.features("할께요") == korean.features("할게요")
    assert korean.stem_end("부츠를") == 2 and korean.stem_end("제주도로") == 3 and korean.stem_end("부츠") == 2
    assert korean.stem_end("를") == 1  # nothing would be left: the token stays whole


def test_how_an_utterance_ends_and_its_length_are_features():
    tokens = ["배송", "언제", "와요", "?"]
    assert korean.ending(tokens) == ("어요/EF", "오/VV 어요/EF")  # what snapshots before the third read
    assert korean.ending(tokens, 3) == ("어요/EF", "오/VV 어요/EF", "언제/MAG 오/VV 어요/EF")
    assert korean.ending(["?"], 3) == ()
    now = FeatureConfig(morphemes=korean.ANALYZER, ending=3, length=True)
    hashes = set(_hashes(tokens, now)[0])
    assert {_hash("e:언제/MAG 오/VV 어요/EF"), _hash("n:4")} <= hashes
    assert _hash("n:8") in _hashes(["네"] * 12, now)[0]  # eight tokens or more share one feature


def test_a_korean_snapshot_from_before_the_length_feature_reads_as_it_did():
    """A Korean manifest written before ``ending``/``length`` existed has neither key: it must
    featurize as then (the last two morphemes, no length), so its rows mean what they meant."""
    old = FeatureConfig(**{"morphemes": korean.ANALYZER, "morph_share": 0.3, "shape_share": 0.1})
    assert (old.ending, old.length) == (2, False)
    tokens = ["배송", "언제", "와요"]
    hashes = _hashes(tokens, old)[0]
    assert _hash("e:오/VV 어요/EF") in hashes and _hash("n:3") not in hashes
    assert _hash("e:언제/MAG 오/VV 어요/EF") not in hashes
    assert "ending" not in FeatureConfig().to_dict() and "length" not in FeatureConfig().to_dict()


def test_a_reasonable_utterance_of_unseen_eojeol_reaches_its_intent(predictor, english):
    """The issue's case: no eojeol of it is in the bot file, but its morphemes are."""
    text = "상담원 연결 시간이 언제예요"
    words = [t.text for t in tokenize(text)]
    assert not Predictor(english.manifest, english.arrays)._outputs(words)[3]  # English reading: no known word
    for variant in (text, "상담원연결시간이언제예요", "상담원 연결시간이 언제예요?"):
        p = predictor.predict(variant)
        assert (p.intent, p.fallback) == ("opening_hours", False), (variant, p)


def test_spacing_and_particles_reach_the_same_intent_and_entities(predictor):
    for text in ("부츠를 반품하고 싶어요", "부츠를반품하고싶어요", "부츠 반품 하고 싶어요"):
        p = predictor.predict(text)
        assert (p.intent, p.fallback) == ("start_return", False), (text, p)
        assert [(e.entity, e.value, text[e.start : e.end]) for e in p.entities] == [("product", "부츠", "부츠")], text
    p = predictor.predict("등산화반품할래요")
    assert p.intent == "start_return"
    assert [(e.value, e.start, e.end) for e in p.entities] == [("부츠", 0, 3)]  # a synonym, its own characters


def test_list_and_regex_entities_with_particles(predictor):
    found = predictor.matchers.find("텐트랑 워커는 주문번호 4821377번이에요")
    assert [(e.entity, e.value, e.start, e.end) for e in found] == [
        ("product", "텐트", 0, 2), ("product", "부츠", 4, 6), ("order_number", "4821377", 13, 20),
    ]
    assert predictor.matchers.find("부츠스트랩 설정") == []  # not where Kiwi cuts no morpheme


def test_a_learned_entity_leaves_its_particle_out(predictor):
    text = "제주도로 며칠 걸려요?"  # trained: 제주도까지
    p = predictor.predict(text)
    assert p.intent == "delivery_times"
    regions = [(e.value, e.start, e.end) for e in p.entities if e.entity == "region"]
    assert regions == [("제주도", 0, 3)]


def test_no_known_word_still_falls_back(predictor):
    for text in ("blorp zzz", "쀍뛟 꿻"):
        assert predictor.predict(text).fallback, text


def test_the_batched_runtime_equals_the_serving_path(predictor):
    texts = ["상담원 연결 시간이 언제예요", "부츠를반품하고싶어요", "제주도로 며칠 걸려요?", "blorp zzz", "안녕하세요", "   "]
    for a, b in zip([predictor.predict(t) for t in texts], predict_batch(predictor, texts)):
        assert (a.intent, a.fallback) == (b.intent, b.fallback)
        assert abs(a.confidence - b.confidence) <= 1e-5
        assert [(e.entity, e.value, e.start, e.end) for e in a.entities] == [(e.entity, e.value, e.start, e.end) for e in b.entities]


def test_the_language_is_in_the_manifest(trained, english):
    assert trained.manifest["definition"]["language"] == "ko"
    model = trained.manifest["model"]
    assert model["features"]["morphemes"] == korean.ANALYZER
    assert (model["features"]["ending"], model["features"]["length"]) == (3, True)
    assert model["analyzer"]["name"] == "kiwipiepy"
    assert "vectors" not in model  # the English word vectors are left out
    assert "language" not in english.manifest["definition"]  # an English bot's manifest is as it was
    assert "morphemes" not in english.manifest["model"]["features"] and "analyzer" not in english.manifest["model"]


@pytest.mark.parametrize("setting", ["context", "cascade", "tuned"])
def test_english_only_tiers_are_refused_for_a_korean_bot(bot, setting):
    with pytest.raises(LanguageNotServed) as caught:
        train(bot, replace(CONFIG, **{setting: True}))
    assert caught.value.code == "language_not_served"
    assert caught.value.fields == {"setting": setting, "language": "ko"}
    assert "English only" in caught.value.message and f"--{setting}" in caught.value.message


def test_an_unknown_language_is_refused_and_system_entities_read_korean():
    raw = yaml.safe_load(BOT.read_text())
    with pytest.raises(DefinitionError, match="language: must be one of \\['en', 'ko'\\], got 'jp'"):
        parse_bot({**raw, "language": "jp"})
    raw["entities"]["amount"] = {"type": "system", "kind": "money"}  # tests/models/test_system_entities_ko.py
    assert [e.kind for e in parse_bot(raw).entities if e.type == "system"] == ["money"]


def test_a_korean_snapshot_serves_without_tensorflow_and_english_nodes_never_load_kiwi(trained, english, tmp_path):
    code = """
import sys
from botyard.models.runtime import Predictor
from botyard.snapshots.format import unpack
sid, path, expect = sys.argv[1:4]
p = Predictor.from_snapshot(unpack(sid, open(path, "rb").read()))
print(p.predict(sys.argv[4]).intent, "tensorflow" in sys.modules, "kiwipiepy" in sys.modules)
"""
    for result, text, kiwi in ((trained, "상담원 연결 시간이 언제예요", True), (english, "안녕하세요", False)):
        sid, data = pack(result.manifest, result.arrays)
        (tmp_path / sid).write_bytes(data)
        out = subprocess.run([sys.executable, "-c", code, sid, str(tmp_path / sid), "", text],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[1:] == ["False", str(kiwi)], out


@pytest.mark.slow
def test_the_korean_example_bot_learns_and_its_conversation_tests_pass():
    """examples/shop-support-ko.yml as `botyard train` trains it, and its conversation tests."""
    from botyard.ops.conversation_test_runs import run
    from botyard.ops.conversation_tests import load

    examples = Path(__file__).resolve().parent.parent.parent / "examples"
    result = train(load_bot(examples / "shop-support-ko.yml"), TrainConfig())
    # every example answered by a model trained on the other two thirds (3 folds): seed 0 0.764 and 0.857
    # here; seeds 1 and 2 0.778 / 0.812 and 0.770 / 0.727 (few entity examples: a wide spread)
    assert result.metrics["validation_accuracy"] >= 0.7 and result.metrics["validation_entity_f1"] >= 0.7, result.metrics
    predictor = Predictor(result.manifest, result.arrays)
    report = run(load(examples / "shop-support-ko.tests.yml", definition=predictor.definition), predictor)
    assert report.passed, report.failed_turns()
    assert report.summary["turns"] == 27
