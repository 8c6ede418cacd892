"""Conversation actors: each owns the conversations hashed to it, as virtual actors.

A conversation is activated by replaying its events, records each turn as an event,
and is dropped from memory when idle (or when the actor holds too many); its next turn
rebuilds it. Turns are group-committed: the actor takes every turn waiting in its
inbox, then commits all their events in one transaction, and only then replies.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

import pykka

from botyard import action_protocol as wire
from botyard import protocol, turn_record
from botyard.actors.actions import ActionCaller
from botyard.actors.failures import Supervised
from botyard.actors.handoff import Held, notice
from botyard.actors.messages import ActionsDone, Classified, ClassifiedTurn, Inspect, Passivate, ReleaseHeld, Sweep, TakeSnapshot
from botyard.actors.outbox import Outbox, Outgoing, error_reply, ok_reply
from botyard.actors.parked import Parked, request_of
from botyard.actors.pending import Pending, agent_answer, proactive_message
from botyard.actors.quotas import Quotas
from botyard.actors.resident import Resident
from botyard.dialogue import engine
from botyard.dialogue.actions import Result
from botyard.dialogue.spec import spec_of
from botyard.dialogue.state import HandedOff
from botyard.dialogue.state import to_dict as event_dict
from botyard.dialogue.turn import Responses, Understanding
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore, IntegrityError

log = logging.getLogger(__name__)
turn_log = logging.getLogger("botyard.turns")
"""One INFO record per committed turn, with its ids as fields (JSON logs show them as keys)."""

MAX_BATCH = 512
CONFLICT_RETRIES = 5


class ConversationActor(Supervised, pykka.ThreadingActor):
    def __init__(
        self,
        store: EventStore,
        outbox: Outbox,
        *,
        node_id: str,
        idle_seconds: float,
        max_resident: int,
        snapshotter: Callable[[], pykka.ActorRef] | None = None,
        snapshot_every: int = 0,
        handoff_wait: float = 3.0,
        actions: ActionCaller | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        super().__init__()
        self.quotas = quotas or Quotas()
        self.actions = actions
        self.parked: dict[tuple[str, str, str], Parked] = {}
        """Per conversation, the turn waiting for its action (later turns of it queue behind)."""
        self.handoff_wait = handoff_wait
        self.held: dict[tuple[str, str, str], Held] = {}
        """Per handed-off conversation, the user's turn waiting for an agent (one at most)."""
        self._responses: dict[int, tuple[Any, Responses]] = {}
        self.store = store
        self.snapshotter = snapshotter
        self.snapshot_every = snapshot_every
        self.outbox = outbox
        self.node_id = node_id
        self.idle_seconds = idle_seconds
        self.max_resident = max(1, max_resident)
        self.resident: Resident = Resident()
        """(tenant, bot, conversation) -> (conversation, last used), least recently used first."""
        self.pending: list[Pending] = []
        self.activations = 0

    # -- messages -----------------------------------------------------------------------

    def on_receive(self, message: object) -> object:
        if isinstance(message, Classified):
            for turn in message.turns:
                self._take(turn)
                if len(self.pending) >= MAX_BATCH:
                    self._flush()
            if self.actor_inbox.empty():
                self._flush()
            return None
        self._flush()  # turns kept back because this message was next in the inbox
        if isinstance(message, ActionsDone):
            for key, result in message.results:
                self._action_done(key, result)  # type: ignore[arg-type]
                if len(self.pending) >= MAX_BATCH:
                    self._flush()
            if self.actor_inbox.empty():
                self._flush()
            return None
        if isinstance(message, ReleaseHeld):
            return self._release_held()
        if isinstance(message, Sweep):
            return self._sweep()
        if isinstance(message, Passivate):
            if message.keep is None:
                count = len(self.resident)
                self.resident.clear()
                return count
            gone = [key for key in self.resident if not message.keep(*key)]
            for key in gone:
                del self.resident[key]
            return len(gone)
        if isinstance(message, Inspect):
            key = (message.tenant, message.bot, message.conversation_id)
            if message.activate:
                conversation = self._activate(key, create=False)
                return conversation.state() if conversation else None
            entry = self.resident.get(key)
            return entry[0].state() if entry else None
        raise TypeError(f"ConversationActor got {type(message).__name__}")

    def stats(self) -> dict[str, int]:
        self._flush()  # a proxy call bypasses on_receive: commit what waited for the inbox to empty
        return {"resident": len(self.resident), "activations": self.activations, "held": len(self.held)}

    def on_stop(self) -> None:
        self._flush()
        self._release_held(everyone=True)  # no user's turn goes unanswered
        for parked in self.parked.values():  # nothing recorded: a retry (same turn_id) calls with the same key
            for turn in (parked.turn, *parked.queue):
                self.outbox.send([error_reply(turn.work.reply_to, turn.work.request.as_json, protocol.UNAVAILABLE,
                                              "node stopping", received_at=turn.work.received_at)])
        self.parked.clear()

    # -- the turn -----------------------------------------------------------------------

    def _activate(self, key: tuple[str, str, str], *, create: bool = True) -> Conversation | None:
        """The resident conversation, else rebuilt from its events, else (``create``) a new one.

        Marks it as just used: it moves to the young end of the LRU order.
        """
        entry = self.resident.pop(key, None)
        if entry is not None:
            conversation = entry[0]
        else:
            conversation = self.store.load_conversation(*key)
            if conversation is None:
                if not create:
                    return None
                conversation = Conversation(tenant=key[0], bot=key[1], conversation_id=key[2])
            self.activations += 1
        self.resident[key] = (conversation, time.monotonic())
        return conversation

    def _take(self, turn: ClassifiedTurn, *, look_up: bool = False) -> None:
        """Record the turn on its conversation (pending until the flush), or, for a retried
        turn id, answer with the recorded turn: one of the recent ones in memory, or with
        ``look_up`` (the retry path, after a failed commit) one found in the store however old."""
        req = turn.work.request
        key = (req.tenant, req.bot, req.conversation_id)
        parked = self.parked.get(key)
        if parked is not None:  # the conversation's turn before this one waits for an action
            parked.queue.append(turn)
            return
        try:
            conversation = self._activate(key)
            previous = conversation.find_turn(req.turn_id)
            if previous is None and look_up and req.turn_id is not None:
                recorded = self.store.recorded_turn(conversation.id, req.turn_id)
                previous = recorded.record.reply_fields() if recorded is not None else None
        except Exception as exc:
            log.exception("cannot activate conversation %s", key)
            self.outbox.send([error_reply(
                turn.work.reply_to, req.as_json, protocol.INTERNAL, f"event store: {exc}", received_at=turn.work.received_at
            )])
            return
        if req.agent is not None:
            key = (req.tenant, req.bot, req.conversation_id)
            taken = agent_answer(turn, conversation, node_id=self.node_id, waiting=key in self.held)
            if isinstance(taken, Pending):
                self.pending.append(taken)
            else:
                self.outbox.send([taken])
            return
        if req.message is not None:
            self.pending.append(proactive_message(turn, conversation, node_id=self.node_id))
            return
        if previous is not None:  # a retry of a turn already recorded: answer it again
            body = turn_record.reply_body(req.conversation_id, previous, self.node_id, conversation.dialogue_view(),
                                       unrecorded=_unrecorded(turn) if _same_answer(turn, previous) else None)
            self.pending.append(Pending(turn, conversation, body))
            return
        number = conversation.turns + 1
        before = conversation.dialogue_state
        understood = Understanding(turn.intent, turn.confidence, turn.entities, req.text, turn.fallback)
        outcome = engine.step(spec_of(turn.definition), self._responses_of(turn.definition), before, understood, number)
        if outcome.call is not None:
            self._call(Parked(turn, conversation, before, understood, number, outcome))
            return
        self._record(turn, conversation, before, outcome, number)

    def _record(self, turn: ClassifiedTurn, conversation: Conversation, before, outcome: engine.Outcome, number: int) -> None:
        """Record the decided turn on its conversation (pending until the flush)."""
        req = turn.work.request
        waiting = conversation.undelivered_texts  # agents' answers no turn carried yet: this one does
        record = turn_record.TurnRecord(
            turn=number,
            turn_id=req.turn_id,
            user_text=req.text,
            intent=turn.intent,
            confidence=turn.confidence,
            reply=" ".join(t for t in (*waiting, outcome.reply_text) if t) if waiting else outcome.reply_text,
            fallback=turn.fallback,
            snapshot=turn.snapshot,
            node=self.node_id,
            received_at=turn.work.received_at,
            entities=list(turn.entities),
            dialogue=[event_dict(e) for e in outcome.events],
        )
        conversation.record_turn(**record.as_dict())
        view = conversation.dialogue_view()
        body = turn_record.reply_body(req.conversation_id, record.reply_fields(), self.node_id, view, unrecorded=_unrecorded(turn))
        notices: tuple[Outgoing, ...] = ()
        if view["handed_off"]:
            handed = next((e for e in outcome.events if isinstance(e, HandedOff)), None)
            notices = (notice(
                "message" if handed is None else "handed_off", req.tenant, req.bot, req.conversation_id, turn=number,
                text=req.text, node=self.node_id, dialogue=view, intent=turn.intent,
                reason=handed.reason if handed is not None else "",
            ),)
        hold = before.handed_off and view["handed_off"] and not record.reply and self.handoff_wait > 0
        self.pending.append(Pending(turn, conversation, body, hold=hold, notices=notices))

    # -- actions ------------------------------------------------------------------------

    def _call(self, parked: Parked) -> None:
        """Park the turn and call its action; :meth:`_action_done` resumes it."""
        req = parked.turn.work.request
        key = (req.tenant, req.bot, req.conversation_id)
        self.parked[key] = parked
        call = parked.outcome.call
        action = spec_of(parked.turn.definition).action(call.action) if call is not None else None
        if self.actions is None or action is None:  # a node that calls no actions
            self._action_done(key, Result(wire.NO_RESPONDERS, error="this node calls no actions"))
            return
        self.actions.call(request_of(parked, action), self.actor_ref)

    def _action_done(self, key: tuple[str, str, str], result: Result) -> None:
        parked = self.parked.get(key)
        if parked is None:
            return
        turn = parked.turn
        spec = spec_of(turn.definition)
        outcome, refused = engine.resume(spec, self._responses_of(turn.definition), parked.outcome, parked.understood,
                                         parked.number, result)
        if refused:
            req = turn.work.request
            log.warning("action %s of %s/%s refused: %s", parked.outcome.call.action, req.tenant, req.bot, refused,  # type: ignore[union-attr]
                        extra={"code": "action_refused", "tenant": req.tenant, "bot": req.bot,
                               "action": parked.outcome.call.action, "reason": refused})  # type: ignore[union-attr]
        if outcome.call is not None:  # a follow-up
            parked.outcome = outcome
            self._call(parked)
            return
        del self.parked[key]
        self.resident.pop(key, None)
        self.resident[key] = (parked.conversation, time.monotonic())
        self._record(turn, parked.conversation, parked.before, outcome, parked.number)
        for later in parked.queue:  # in order; one that calls an action parks the rest again
            self._take(later)

    def _responses_of(self, definition) -> Responses:
        found = self._responses.get(id(definition))
        if found is None or found[0] is not definition:
            if len(self._responses) >= 1024:
                self._responses.clear()
            found = self._responses[id(definition)] = (definition, Responses.of(definition))
        return found[1]

    def _flush(self) -> None:
        """Commit every pending turn in one transaction, then reply to all of them."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        conversations = {id(p.conversation): p.conversation for p in pending}
        try:
            committed = self.store.save_all(conversations.values())
        except Exception as exc:
            log.warning("group commit of %d turns failed (%s); retrying one by one", len(pending), exc)
            self._commit_one_by_one(pending)
            return
        self._answer(pending)
        self._log_turns(pending)
        self._snapshot_due(committed)
        self._evict_over_budget()

    def _answer(self, committed: list[Pending]) -> None:
        """After the commit: reply, hold the replies of turns waiting for an agent, deliver
        agents' answers to them, publish handoff notices."""
        out: list[Outgoing] = []
        for p in committed:
            req = p.turn.work.request
            key = (req.tenant, req.bot, req.conversation_id)
            if p.delivers is not None:
                held = self.held.pop(key, None)
                if held is not None:
                    text, agent = p.delivers
                    out.append(held.answer(text, agent=agent, dialogue=p.conversation.dialogue_view()))
            elif req.agent is None and req.message is None and key in self.held:  # the user wrote again: stop waiting
                out.append(self.held.pop(key).answer())
            if p.hold:
                w = p.turn.work
                self.held[key] = Held(w.reply_to, req.as_json, p.body, w.received_at, time.monotonic() + self.handoff_wait)
            else:
                out.append(self._ok(p))
            out.extend(p.notices)
        self.outbox.send(out)

    def _release_held(self, *, everyone: bool = False) -> int:
        """Answer (with no text) the held turns whose wait is over."""
        now = time.monotonic()
        gone = [key for key, held in self.held.items() if everyone or held.expired(now)]
        if gone:
            self.outbox.send([self.held.pop(key).answer() for key in gone])
        return len(gone)

    def _snapshot_due(self, committed: list) -> None:
        """Ask for a snapshot of each conversation whose version reached a multiple of the interval."""
        if not self.snapshot_every or self.snapshotter is None:
            return
        for e in committed:
            if e.originator_version % self.snapshot_every == 0:
                self.snapshotter().tell(TakeSnapshot(e.originator_id, e.originator_version))

    def _commit_one_by_one(self, pending: list[Pending]) -> None:
        # Nothing was committed: forget the in-memory state (it holds the uncommitted
        # events) and replay each turn on a conversation freshly rebuilt from the store.
        # A version conflict means another writer (another node, until placement gives
        # each conversation one owner) recorded a turn first: rebuild and retry. So does a
        # turn id recorded before (botyard_turn_ids): the turn, however old, is then found
        # in the store (look_up) and answered with its recorded reply, never recorded again.
        for p in pending:
            req = p.turn.work.request
            self.resident.pop((req.tenant, req.bot, req.conversation_id), None)
        for p in pending:
            req = p.turn.work.request
            for attempt in range(1, CONFLICT_RETRIES + 1):
                self._take(p.turn, look_up=True)
                retry, self.pending = self.pending, []
                if not retry:
                    break  # _take already replied with an error
                try:
                    committed = self.store.save_all([retry[0].conversation])
                    self._answer(retry)
                    self._log_turns(retry)
                    self._snapshot_due(committed)
                    break
                except Exception as exc:
                    self.resident.pop((req.tenant, req.bot, req.conversation_id), None)
                    if isinstance(exc, IntegrityError) and attempt < CONFLICT_RETRIES:
                        continue
                    log.error("turn of %s/%s/%s not recorded: %s", req.tenant, req.bot, req.conversation_id, exc)
                    self.outbox.send([error_reply(
                        p.turn.work.reply_to, req.as_json, protocol.INTERNAL, "turn not recorded: event store failed",
                        received_at=p.turn.work.received_at,
                    )])
                    break

    def _log_turns(self, pending: list[Pending]) -> None:
        if not turn_log.isEnabledFor(logging.INFO):
            return
        now = time.time()
        for p in pending:
            req, body = p.turn.work.request, p.body
            if req.agent is not None or req.message is not None:
                continue
            turn_log.info(
                "turn %s/%s/%s#%d: %s %.2f", req.tenant, req.bot, req.conversation_id, body["turn"], body["intent"],
                body["confidence"],
                extra={
                    "tenant": req.tenant, "bot": req.bot, "conversation_id": req.conversation_id, "turn": body["turn"],
                    "turn_id": body["turn_id"], "intent": body["intent"], "confidence": round(body["confidence"], 4),
                    "fallback": body["fallback"], "snapshot": body["snapshot"], "node": self.node_id,
                    "latency_ms": round((now - p.turn.work.received_at) * 1000.0, 3),
                },
            )

    @staticmethod
    def _ok(p: Pending) -> Outgoing:
        return ok_reply(p.turn.work.reply_to, p.turn.work.request.as_json, p.body, received_at=p.turn.work.received_at)

    # -- memory -------------------------------------------------------------------------

    def _evict_over_budget(self) -> None:
        while len(self.resident) > self.max_resident:
            self.resident.popitem(last=False)
        if self.quotas.any_conversation_limit:  # each tenant's own share (its quota), its least recent first
            self.resident.evict_over(lambda tenant: self.quotas.of(tenant).conversations)

    def _sweep(self) -> int:
        cutoff = time.monotonic() - self.idle_seconds
        dropped = 0
        while self.resident:
            key, (_, last_used) = next(iter(self.resident.items()))
            if last_used > cutoff:
                break
            del self.resident[key]
            dropped += 1
        return dropped


def _unrecorded(turn: ClassifiedTurn) -> dict[str, Any]:
    """The reply fields a turn's event does not hold (``turn_record.UNRECORDED_FIELDS``)."""
    return {"fallback_reason": turn.fallback_reason, "score": turn.score}


def _same_answer(turn: ClassifiedTurn, recorded: Mapping[str, Any]) -> bool:
    """Whether a retried turn, classified again, got the recorded answer (the same snapshot, intent,
    confidence and fallback): then its unrecorded fields are the recorded turn's too."""
    return (recorded.get("snapshot"), recorded.get("intent"), recorded.get("confidence"), recorded.get("fallback")) == (
        turn.snapshot, turn.intent, turn.confidence, turn.fallback)
