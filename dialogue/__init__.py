"""The conversation layer: what the bot says, given what the classifier understood and
the conversation's state. Pure functions of their inputs; no I/O.

- :mod:`~botyard.dialogue.responses`: the reply from the intent alone (bots without a
  ``dialogue`` section; the engine keeps its behaviour for them);
- :mod:`~botyard.dialogue.spec`: the ``dialogue`` section of a bot file (slots, forms,
  conditional responses, rules, escalation, handoff, built-ins), validated all at once;
- :mod:`~botyard.dialogue.state`: the state, its events, the pure ``apply`` and ``replay``;
- :mod:`~botyard.dialogue.engine`: ``step`` (a turn's reply and events) and ``hand_back``.
"""
