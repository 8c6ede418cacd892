"""Stable topics: the names stored events give botyard's classes, whatever module they are in.

``eventsourcing`` stores with each event the topic of its class (``Mapper.to_stored_event``:
``get_topic(type(event))``), and in a "created" event (``originator_topic``) and an
aggregate snapshot (``Snapshot.topic``) the topic of the aggregate class. By default a topic
is the class's module path, so moving a module would leave every stored event unreadable.
``get_topic`` returns a class's ``TOPIC`` when it has one, and the library registers the
``TOPIC`` of an aggregate class and of each of its event classes when the aggregate class
is defined, so ``resolve_topic`` finds them: that is what botyard writes.

Scheme: ``botyard:<Aggregate>`` for an aggregate class and ``botyard:<Aggregate>.<Event>``
for its events (``botyard:Conversation.TurnRecorded``), written as ``TOPIC = "..."`` in
each class (``events/conversation.py``, ``bot.py``, ``labels.py``, ``tenant.py``). A topic
is stored data: never change or reuse one; move or rename the class instead. An event whose
fields change keeps its topic and bumps ``class_version`` with an upcaster.

Events and snapshots recorded before stable topics (up to commit 1f88b70) carry module-path
topics (``botyard.events.conversation:Conversation.TurnRecorded``). :data:`OLD_TOPICS` names
each one literally and registers it as an alias of its class (``register_topic``), so they
resolve for good, wherever the class lives. Whoever selects notifications by topic asks for
both: :func:`topics_of`.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from botyard.events.bot import Bot
from botyard.events.conversation import Conversation
from botyard.events.labels import Labels
from botyard.events.tenant import Tenant

OLD_TOPICS: dict[str, type] = {
    "botyard.events.conversation:Conversation": Conversation,
    "botyard.events.conversation:Conversation.Started": Conversation.Started,
    "botyard.events.conversation:Conversation.TurnRecorded": Conversation.TurnRecorded,
    "botyard.events.bot:Bot": Bot,
    "botyard.events.bot:Bot.Registered": Bot.Registered,
    "botyard.events.bot:Bot.AliasMoved": Bot.AliasMoved,
    "botyard.events.bot:Bot.DefinitionSaved": Bot.DefinitionSaved,
    "botyard.events.labels:Labels": Labels,
    "botyard.events.labels:Labels.Started": Labels.Started,
    "botyard.events.labels:Labels.TurnLabelled": Labels.TurnLabelled,
    "botyard.events.tenant:Tenant": Tenant,
    "botyard.events.tenant:Tenant.Registered": Tenant.Registered,
    "botyard.events.tenant:Tenant.TokenIssued": Tenant.TokenIssued,
    "botyard.events.tenant:Tenant.TokenRevoked": Tenant.TokenRevoked,
}
"""Module-path topic -> class, for everything recorded before stable topics."""

for _old, _cls in OLD_TOPICS.items():
    register_topic(_old, _cls)


def topics_of(*classes: type) -> list[str]:
    """Every topic events of these classes are stored under: each one's ``TOPIC``, then its old topics."""
    return [t for cls in classes for t in (cls.TOPIC, *(old for old, c in OLD_TOPICS.items() if c is cls))]
