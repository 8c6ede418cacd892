"""The conversation layer: what the bot says, given what the classifier understood and
the conversation's state. Pure functions of their inputs; no I/O."""
