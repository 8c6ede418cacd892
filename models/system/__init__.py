"""System entities: numbers, ordinals, amounts of money, dates, times and durations, found
by rules in any bot that declares them (``when: {type: system, kind: date}``), with values
normalised for slots and actions. docs/entities.md describes the kinds and their values.

- :mod:`.kinds`: the kinds and what their values look like;
- :mod:`.language`: what a language supplies (its words and phrase patterns), and the
  languages there are (:mod:`.en`, :mod:`.ko`);
- :mod:`.numbers`, :mod:`.money`, :mod:`.dates`, :mod:`.times`, :mod:`.durations`: how a
  matched phrase becomes a value, the same for every language;
- :mod:`.extractor`: the extractors of one bot, run on each turn.
"""
