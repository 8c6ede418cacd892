"""System entities: the candidate parsing libraries against botyard's own extractors, on the
phrasing table the tests use (tests/data/system-entities.yml) and on real utterances.

    python -m venv --system-site-packages /tmp/enteval
    /tmp/enteval/bin/pip install dateparser recognizers-text-suite "emoji<1" parsedatetime \\
        number-parser price-parser word2number
    /tmp/enteval/bin/python bench/entity_libraries.py

(``recognizers-text-suite`` 1.0.2a2 fails on import with ``emoji`` 1.0 or later, hence the pin.)
The libraries are not botyard dependencies: run this in a throw-away environment.

For each candidate and each kind it covers: the table's rows it gets right (its value among
what it finds in the utterance, however it reads the span), the table's ordinary utterances
in which it finds something of those kinds (false alarms), and microseconds per utterance
(mean) on the table's matching rows, on its ordinary utterances, and on HWU64's 1,076 test
utterances (real assistant requests: alarms, calendars, ... when shared/data has them).
Relative phrasings resolve against the table's ``now`` (libraries that take no time zone
get the wall-clock time in the bot's zone). docs/entities.md has the figures.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from botyard.models.entities import Matchers
from botyard.models.system.money import value as money_value
from botyard.models.system.numbers import digits, plain

ROOT = Path(__file__).resolve().parent.parent
TABLE = yaml.safe_load((ROOT / "tests" / "data" / "system-entities.yml").read_text())
NOW = datetime.fromisoformat(TABLE["now"])
LOCAL = NOW.astimezone(ZoneInfo(TABLE["timezone"])).replace(tzinfo=None)
HWU64 = ROOT.parent / "shared" / "data" / "intents" / "hwu64" / "test" / "seq.in"
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₩": "KRW", "euro": "EUR", "euros": "EUR", "dollar": "USD",
           "dollars": "USD", "Dollar": "USD", "Euro": "EUR", "British pound": "GBP", "Pound": "GBP", "Japanese yen": "JPY",
           "Swiss franc": "CHF", "South Korean won": "KRW"}
NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> list:
    return [plain(d) for m in NUMBER_RE.finditer(text) if (d := digits(m.group())) is not None]


def ours():
    from botyard.models.definition import parse_bot

    def make(kinds):
        data = {"tenant": "t", "bot": "b", "timezone": TABLE["timezone"],
                "entities": {k: {"type": "system", "kind": k} for k in kinds},
                "intents": {"a": {"examples": ["a", "b"], "responses": ["a"]}, "b": {"examples": ["c", "d"], "responses": ["b"]}}}
        d = parse_bot(data)
        return Matchers(d.entities, language=d.language, timezone=d.timezone)

    cache: dict = {}

    def find(text, kinds):
        if kinds not in cache:
            cache[kinds] = make(kinds)
        return [(e.entity, e.value) for e in cache[kinds].find(text, NOW.timestamp())]

    return "botyard (own rules)", ("number", "ordinal", "money", "date", "time", "duration"), find


def dateparser_search():
    from dateparser.search import search_dates

    settings = {"RELATIVE_BASE": LOCAL, "PREFER_DATES_FROM": "future"}

    def find(text, kinds):
        out = []
        for _, dt in search_dates(text, languages=["en"], settings=settings) or ():
            out += [("date", dt.date().isoformat()), ("time", dt.strftime("%H:%M"))]
        return [f for f in out if f[0] in kinds]

    return "dateparser 1.5 search_dates", ("date", "time"), find


def parsedatetime_nlp():
    import parsedatetime

    cal = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)

    def find(text, kinds):
        out = []
        for dt, ctx, *_ in cal.nlp(text, sourceTime=LOCAL) or ():
            if ctx.hasDate:
                out.append(("date", dt.date().isoformat()))
            if ctx.hasTime:
                out.append(("time", dt.strftime("%H:%M")))
        return [f for f in out if f[0] in kinds]

    return "parsedatetime 2.6 nlp", ("date", "time"), find


def recognizers():
    from recognizers_suite import Culture, recognize_currency, recognize_datetime, recognize_number, recognize_ordinal

    def find(text, kinds):
        out = []
        if "number" in kinds:
            out += [("number", plain(Decimal(r.resolution["value"]))) for r in recognize_number(text, Culture.English)
                    if r.resolution and r.resolution.get("value")]
        if "ordinal" in kinds:
            out += [("ordinal", int(Decimal(r.resolution["value"]))) for r in recognize_ordinal(text, Culture.English)
                    if r.resolution and r.resolution.get("value", "").lstrip("-").replace(".", "").isdigit()]
        if "money" in kinds:
            for r in recognize_currency(text, Culture.English):
                res = r.resolution or {}
                code = res.get("isoCurrency") or SYMBOLS.get(res.get("unit", ""))
                if code and res.get("value"):
                    out.append(("money", money_value(Decimal(res["value"]), code)))
        if kinds & {"date", "time", "duration"}:
            for r in recognize_datetime(text, Culture.English, reference=LOCAL):
                for v in (r.resolution or {}).get("values", []):
                    value, kind = v.get("value", ""), v.get("type", "")
                    if kind == "date":
                        out.append(("date", value))
                    elif kind == "time":
                        out.append(("time", value[:5]))
                    elif kind == "datetime":
                        out += [("date", value[:10]), ("time", value[11:16])]
                    elif kind == "duration" and value:
                        out.append(("duration", int(float(value))))
        return [f for f in out if f[0] in kinds]

    return "recognizers-text 1.0.2a2", ("number", "ordinal", "money", "date", "time", "duration"), find


def number_parser():
    from number_parser import parse

    def find(text, kinds):
        return [(k, n) for n in _numbers(parse(text)) for k in ("number", "ordinal") if k in kinds]

    return "number-parser 0.3", ("number", "ordinal"), find


def price_parser():
    from price_parser import Price

    def find(text, kinds):
        p = Price.fromstring(text)
        code = SYMBOLS.get(p.currency or "", (p.currency or "").upper() if p.currency and len(p.currency) == 3 else None)
        return [("money", money_value(p.amount, code))] if p.amount is not None and code else []

    return "price-parser 0.5", ("money",), find


def word2number():
    from word2number import w2n

    def find(text, kinds):
        try:
            return [("number", w2n.word_to_num(text))]
        except ValueError:
            return []

    return "word2number 1.1", ("number",), find


CANDIDATES = [ours, dateparser_search, parsedatetime_nlp, recognizers, number_parser, price_parser, word2number]


def mean_us(find, texts, kinds) -> float:
    for t in texts[:3]:
        find(t, kinds)
    started = time.perf_counter()
    for t in texts:
        find(t, kinds)
    return (time.perf_counter() - started) / len(texts) * 1e6


def main() -> None:
    real = HWU64.read_text().splitlines() if HWU64.exists() else []
    print(f"table: {len(TABLE['phrasings'])} phrasings, {len(TABLE['none'])} ordinary utterances; now {NOW}"
          f"{f'; HWU64 test: {len(real)} utterances' if real else ''}\n")
    print("| candidate | kind | right | false alarms | µs matching | µs ordinary | µs HWU64 |")
    print("|---|---|---|---|---|---|---|")
    for make in CANDIDATES:
        try:
            name, covers, find = make()
        except ImportError as exc:
            print(f"| {make.__name__} | not installed ({exc.name}) | | | | | |")
            continue
        for kind in covers:
            kinds = frozenset({kind})
            rows = [r for r in TABLE["phrasings"] if r[0] == kind]
            right = sum(1 for _, text, expected, _ in rows if (kind, expected) in find(text, kinds))
            alarms = sum(1 for text in TABLE["none"] if find(text, kinds))
            texts = [r[1] for r in rows]
            hwu = f"{mean_us(find, real, kinds):,.0f}" if real else "-"
            print(f"| {name} | {kind} | {right}/{len(rows)} | {alarms}/{len(TABLE['none'])} | "
                  f"{mean_us(find, texts, kinds):,.0f} | {mean_us(find, TABLE['none'], kinds):,.0f} | {hwu} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
