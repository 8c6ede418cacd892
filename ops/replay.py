"""Replay: transcripts, time travel, what-if against another snapshot, the promotion gate,
labels and export. Everything here reads events; only ``label`` writes (a label event).

What-if runs each distinct user text once through the candidate with the batched
runtime (:mod:`botyard.models.batch`), then builds each turn's reply with the same
dialogue step the conversation actor uses. A turn it finds changed is confirmed with the
serving path (:meth:`Predictor.predict`), so float rounding in the batch can never report
a change the serving path would not make.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from typing import Any, Callable, Iterator, Sequence
from uuid import UUID

from botyard.dialogue import engine
from botyard.dialogue.actions import WOULD_CALL
from botyard.dialogue.spec import DialogueSpec, spec_of
from botyard.dialogue.state import ActionCalled, DialogueState
from botyard.dialogue.state import from_dict as dialogue_event
from botyard.dialogue.state import replay as replay_dialogue
from botyard.dialogue.turn import Responses, Understanding
from botyard.events.errors import UnknownConversation
from botyard.events.labels import Labels
from botyard.events.store import EventStore
from botyard.events.turns import (
    STARTED_TOPICS,
    TURN_TOPICS,
    TurnRow,
    bot_turns,
    conversation_turns,
    dialogue_timeline,
    notifications,
)
from botyard.models.batch import predict_batch
from botyard.models.definition import OUT_OF_SCOPE
from botyard.models.prediction import Prediction
from botyard.models.runtime import Predictor
from botyard.ops.errors import AdminError
from botyard.ops.gate import GateLimits, judge
from botyard.ops.paging import Budget
from botyard.snapshots.store import SnapshotStore

BATCH = 128
PREDICTORS = 4
"""Loaded candidates kept between requests (an administrator replays the same one often)."""
INDEXES = 8
"""Export windows whose turn positions are kept between pages (:class:`TurnIndex`)."""
REPORTS = 4
"""What-if reports kept between the pages of their changes."""
EMPTY_STATE = DialogueState()
READ_CHUNK = 64, 1024
"""Turns read per query while a page is filled: the first, and at most (doubling)."""

Progress = Callable[[int, int], None]
"""Called with (turns done, turns in all) while a replay runs."""


class Replay:
    def __init__(self, events: EventStore, snapshots: SnapshotStore) -> None:
        self.events = events
        self.snapshots = snapshots
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._indexes: OrderedDict[tuple, TurnIndex] = OrderedDict()
        self._reports: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # the administrator actor and the HTTP API share this object

    def predictor(self, snapshot_id: str) -> Predictor:
        with self._lock:
            found = self._predictors.pop(snapshot_id, None)
        if found is None:
            found = Predictor.from_snapshot(self.snapshots.load(snapshot_id))  # verified against its id
        with self._lock:
            self._predictors[snapshot_id] = found
            while len(self._predictors) > PREDICTORS:
                self._predictors.popitem(last=False)
        return found

    # -- transcripts and time travel ---------------------------------------------------------

    def transcript(
        self,
        tenant: str,
        bot: str,
        conversation_id: str,
        *,
        at: int | None = None,
        after: int = 0,
        limit: int | None = None,
        budget: Budget | None = None,
    ) -> dict[str, Any]:
        """Every turn of a conversation; with ``at``, the turns up to N and the state right after turn N.

        Paged: the turns after turn ``after``, at most ``limit`` of them and as many as fit
        ``budget``; ``next`` is the ``after`` of the next page, or None on the last."""
        events = self.events.conversation_events(tenant, bot, conversation_id)  # read once: the rows and the timeline
        rows = conversation_turns(self.events, tenant, bot, conversation_id, events)
        labels = self.events.labels(tenant, bot)
        if at is not None:
            if not isinstance(at, int) or isinstance(at, bool) or at < 0:
                raise AdminError("invalid_request", f"--at must be a turn number from 0 to {len(rows)}", field="at", turns=len(rows))
            if at > len(rows):
                if not rows:
                    raise UnknownConversation(f"{tenant}/{bot}/{conversation_id}")
                raise AdminError(
                    "unknown_turn", f"{tenant}/{bot}/{conversation_id} has {len(rows)} turns, not {at}",
                    conversation_id=conversation_id, turn=at, turns=len(rows),
                )
            rows = rows[:at]
            state = self.events.conversation_at(tenant, bot, conversation_id, at).state()
        else:
            aggregate = self.events.load_conversation(tenant, bot, conversation_id)
            if aggregate is None:
                raise UnknownConversation(f"{tenant}/{bot}/{conversation_id}")
            state = aggregate.state()
        result = {"tenant": tenant, "bot": bot, "conversation_id": conversation_id, "at": at, "state": state}
        chosen = rows[after:]
        timeline = dialogue_timeline(events)
        page, more = (budget or Budget()).fill(
            result, "turns", ({**_with_label(r.to_dict(), labels, r), "after": timeline.get(r.turn)} for r in chosen),
            limit=limit,
        )
        return {**result, "turns": page, "next": after + len(page) if more else None}

    # -- what-if -----------------------------------------------------------------------------

    def turns(
        self,
        tenant: str,
        bot: str,
        *,
        conversation_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        last: int | None = None,
    ) -> list[TurnRow]:
        if conversation_id is not None:
            rows = conversation_turns(self.events, tenant, bot, conversation_id)
            rows = [r for r in rows if (since is None or r.received_at >= since) and (until is None or r.received_at < until)]
            return rows[-last:] if last else rows
        return bot_turns(self.events, tenant, bot, since=since, until=until, last=last)

    def whatif(
        self,
        tenant: str,
        bot: str,
        snapshot_id: str,
        *,
        conversation_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        last: int | None = None,
        max_changes: int = 1000,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """What ``snapshot_id`` would have answered to recorded user turns, compared with what
        was answered. Writes nothing."""
        rows = self.turns(tenant, bot, conversation_id=conversation_id, since=since, until=until, last=last)
        predictor = self.predictor(snapshot_id)

        def state_before(r: TurnRow) -> DialogueState:
            return self.events.conversation_at(tenant, bot, r.conversation_id, r.turn - 1).dialogue_state

        return compare(rows, predictor, snapshot_id, self.events.labels(tenant, bot), max_changes=max_changes, progress=progress,
                       state_before=state_before)

    def whatif_report(self, tenant: str, bot: str, snapshot_id: str, **window: Any) -> dict[str, Any]:
        """:meth:`whatif`, kept for the next pages of its changes while nothing new is
        recorded (a turn or a label moves the store's last notification id)."""
        key = (tenant, bot, snapshot_id, tuple(sorted(window.items())), self.events.recorder.max_notification_id())
        with self._lock:
            found = self._reports.pop(key, None)
            if found is not None:
                self._reports[key] = found
                return found
        report = self.whatif(tenant, bot, snapshot_id, **window)
        with self._lock:
            self._reports[key] = report
            while len(self._reports) > REPORTS:
                self._reports.popitem(last=False)
        return report

    def gate(self, tenant: str, bot: str, snapshot_id: str, limits: GateLimits) -> dict[str, Any]:
        """Would promoting ``snapshot_id`` be safe on the bot's last ``limits.turns`` turns?
        ``passed`` and, if not, ``reasons``."""
        report = self.whatif(tenant, bot, snapshot_id, last=limits.turns, max_changes=50)
        return judge(report, max_changed=limits.max_changed, max_fallback_rise=limits.max_fallback_rise)

    # -- labels and export ---------------------------------------------------------------------

    def label(
        self, tenant: str, bot: str, conversation_id: str, turn: int, intent: str, *, actor: str, known_intents: Sequence[str]
    ) -> dict[str, Any]:
        """Record that turn ``turn`` of a conversation should have been ``intent``."""
        if not isinstance(turn, int) or isinstance(turn, bool):
            raise AdminError("invalid_request", "turn must be a whole number", field="turn")
        if not isinstance(intent, str) or not intent:
            raise AdminError("invalid_request", "intent must be a non-empty string", field="intent")
        rows = conversation_turns(self.events, tenant, bot, conversation_id)
        if not 1 <= turn <= len(rows):
            raise AdminError(
                "unknown_turn", f"{tenant}/{bot}/{conversation_id} has turns 1 to {len(rows)}, not {turn}",
                conversation_id=conversation_id, turn=turn,
            )
        if intent not in known_intents:
            raise AdminError(
                "unknown_intent", f"{tenant}/{bot} has no intent {intent!r}; known: {', '.join(sorted(known_intents))}",
                intent=intent,
            )
        row = rows[turn - 1]
        self.events.label_turn(
            tenant, bot,
            lambda labels: labels.label(conversation_id, turn, row.user_text, intent, row.intent, row.snapshot, actor),
        )
        return {"ref": row.ref, "user_text": row.user_text, "intent": intent, "served_intent": row.intent, "actor": actor}

    def labels(self, tenant: str, bot: str) -> list[dict[str, Any]]:
        labels = self.events.labels(tenant, bot)
        return list(labels.labels.values()) if labels else []

    def export(
        self, tenant: str, bot: str, *, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        labels = self.events.labels(tenant, bot)
        return [_with_label(r.to_dict(), labels, r) for r in self.turns(tenant, bot, since=since, until=until)]

    def export_rows(
        self, tenant: str, bot: str, *, since: float | None = None, until: float | None = None, after: int = 0
    ) -> tuple[int, Iterator[dict[str, Any]]]:
        """The number of the bot's turns in ``[since, until)``, and their rows from offset
        ``after`` on, read lazily: what :meth:`export` returns, a page at a time.

        The turns' positions (notification ids) are kept per window and brought up to date
        with only what was recorded since, so each page reads its own turns, not all."""
        key = (tenant, bot, since, until)
        with self._lock:
            index = self._indexes.pop(key, None) or TurnIndex(tenant, bot, since, until)
            self._indexes[key] = index
            while len(self._indexes) > INDEXES:
                self._indexes.popitem(last=False)
        total = index.update(self.events)
        labels = self.events.labels(tenant, bot)
        return total, self._read_rows(index, after, total, labels)

    def _read_rows(self, index: "TurnIndex", after: int, end: int, labels: Labels | None) -> Iterator[dict[str, Any]]:
        """The rows of the turns at ``index.positions[after:end]`` (only appended to, so
        that range stays as it was while other requests extend it)."""
        store = self.events
        read = store.mapper.to_domain_event
        i, chunk = after, READ_CHUNK[0]
        while i < end:
            wanted = index.positions[i : min(i + chunk, end)]
            start, stop, found = wanted[0], wanted[-1], set(wanted)
            rows: list[TurnRow] = []
            while len(rows) < len(wanted):
                page = store.recorder.select_notifications(start, len(wanted) - len(rows), stop=stop, topics=TURN_TOPICS)
                if not page:
                    break
                for n in page:
                    if n.id in found:
                        rows.append(TurnRow.from_event(index.tenant, index.bot, index.owners[n.originator_id], read(n), n.id))
                start = page[-1].id + 1
            for r in rows:
                yield _with_label(r.to_dict(), labels, r)
            i += len(wanted)
            chunk = min(chunk * 2, READ_CHUNK[1])


class TurnIndex:
    """Where one bot's turns in one window are: their notification ids in recording order,
    read once and then extended with what was recorded since (no event rebuilt unless the
    window needs ``received_at``)."""

    def __init__(self, tenant: str, bot: str, since: float | None, until: float | None) -> None:
        self.tenant, self.bot, self.since, self.until = tenant, bot, since, until
        self.owners: dict[UUID, str] = {}
        """Aggregate id -> conversation id of the bot's conversations."""
        self.positions = array("q")
        self.top = 0
        """The last notification id looked at."""
        self._lock = threading.Lock()

    def update(self, store: EventStore) -> int:
        """Catch up with the store; the number of positions now."""
        with self._lock:
            top = store.recorder.max_notification_id() or 0
            if top > self.top:
                read = store.mapper.to_domain_event
                for n in notifications(store, STARTED_TOPICS, self.top, top):
                    e = read(n)
                    if e.tenant == self.tenant and e.bot == self.bot:
                        self.owners[n.originator_id] = e.conversation_id
                since, until = self.since, self.until
                window = since is not None or until is not None
                for n in notifications(store, TURN_TOPICS, self.top, top):
                    if n.originator_id not in self.owners:
                        continue
                    if window:
                        at = read(n).received_at
                        if (since is not None and at < since) or (until is not None and at >= until):
                            continue
                    self.positions.append(n.id)
                self.top = top
            return len(self.positions)


def _with_label(row: dict[str, Any], labels: Labels | None, r: TurnRow) -> dict[str, Any]:
    row["label"] = labels.of(r.conversation_id, r.turn) if labels else None
    return row


def compare(
    rows: Sequence[TurnRow],
    predictor: Predictor,
    snapshot_id: str,
    labels: Labels | None,
    *,
    max_changes: int = 1000,
    progress: Progress | None = None,
    state_before: Callable[[TurnRow], DialogueState] | None = None,
) -> dict[str, Any]:
    """Replay ``rows`` through ``predictor`` and count what changes (the what-if report).

    Each turn's dialogue re-runs from the state recorded before it (``state_before`` reads
    it for a conversation's first row in the window, if that is not its turn 1; later rows
    fold the recorded events): a turn changes when its intent, its reply, or the dialogue
    state after it (slots, form, the slot asked for, handoff) would differ."""
    texts = list(dict.fromkeys(r.user_text for r in rows))
    predicted: dict[str, Prediction] = {}
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        predicted.update(zip(chunk, predict_batch(predictor, chunk)))
        if progress is not None:
            progress(min(start + BATCH, len(texts)), len(texts))
    confirmed: set[str] = set()
    definition = predictor.definition
    spec, responses = spec_of(definition), Responses.of(definition)
    with_dialogue = spec != DialogueSpec() or any(r.dialogue for r in rows)
    recorded: dict[str, DialogueState] = {}
    changes: list[dict[str, Any]] = []
    n_intent = n_reply = n_dialogue = n_changed = fb_before = fb_after = n_would = 0
    lab_n = lab_before = lab_after = 0
    for r in rows:
        before = recorded.get(r.conversation_id) if with_dialogue else EMPTY_STATE
        if before is None:
            before = state_before(r) if state_before is not None and r.turn > 1 else EMPTY_STATE
        was = replay_dialogue(map(dialogue_event, r.dialogue), before) if r.dialogue else before
        recorded[r.conversation_id] = was
        p = predictor.at(predicted[r.user_text], r.user_text, r.received_at)  # "tomorrow" as of the turn
        recorded_events = [dialogue_event(e) for e in r.dialogue]
        outcome = _rerun(spec, responses, before, Understanding.of(p, r.user_text), r.turn, recorded_events)
        if (p.intent != r.intent or outcome.reply_text != r.reply or _view(outcome.state) != _view(was)) and r.user_text not in confirmed:
            p = predicted[r.user_text] = predictor.predict(r.user_text, now=r.received_at)  # the serving path decides
            confirmed.add(r.user_text)
            outcome = _rerun(spec, responses, before, Understanding.of(p, r.user_text), r.turn, recorded_events)
        entities = [e.to_dict() for e in p.entities]
        reply = outcome.reply_text
        would = [e.action for e in outcome.events if isinstance(e, ActionCalled) and e.status == WOULD_CALL]
        n_would += bool(would)
        fb_before += r.fallback
        fb_after += p.fallback
        intent_changed, reply_changed = p.intent != r.intent, reply != r.reply
        dialogue_changed = _view(outcome.state) != _view(was)
        n_intent += intent_changed
        n_reply += reply_changed
        n_dialogue += dialogue_changed
        reply_changed = reply_changed or dialogue_changed  # what the change list shows
        n_changed += intent_changed or reply_changed
        label = labels.of(r.conversation_id, r.turn) if labels else None
        if label is not None:
            lab_n += 1
            lab_before += _agrees(r.intent, r.fallback, label)
            lab_after += _agrees(p.intent, p.fallback, label)
        if (intent_changed or reply_changed) and len(changes) < max_changes:
            changes.append({
                "ref": r.ref, "user_text": r.user_text, "label": label,
                "before": {"intent": r.intent, "confidence": r.confidence, "fallback": r.fallback, "reply": r.reply,
                           "snapshot": r.snapshot, **_view(was)},
                "after": {"intent": p.intent, "confidence": round(p.confidence, 6), "fallback": p.fallback,
                          "reply": reply, "entities": entities, **_view(outcome.state), **({"would_call": would} if would else {})},
            })
    n = len(rows)
    return {
        "against": snapshot_id,
        "turns": n,
        "conversations": len({r.conversation_id for r in rows}),
        "distinct_texts": len(texts),
        "served_by": _counts(r.snapshot for r in rows),
        "changed_intent": n_intent,
        "changed_reply": n_reply,
        "changed_dialogue": n_dialogue,
        "would_call": n_would,
        "changed_intent_share": _share(n_intent, n),
        "fallback_rate": {"before": _share(fb_before, n), "after": _share(fb_after, n)},
        "labelled": {"turns": lab_n, "right_before": lab_before, "right_after": lab_after},
        "changes": changes,
        "changed_turns": n_changed,
        "changes_omitted": n_changed - len(changes),
    }


def _rerun(spec, responses, before: DialogueState, understanding: Understanding, turn: int, recorded: list) -> Any:
    """The turn's dialogue again: an action it reaches answers from the turn's recorded
    ``ActionCalled`` events (never called again); one the turn did not call is "would call"."""
    return engine.run(spec, responses, before, understanding, turn, engine.recorded_results(recorded))


def _view(state: DialogueState) -> dict[str, Any]:
    return {"slots": {k: list(v) if isinstance(v, tuple) else v for k, v in state.slots.items()}, "form": state.form,
            "asked": state.asked, "handed_off": state.handed_off}


def known_intents(predictor: Predictor) -> list[str]:
    return [i.name for i in predictor.definition.intents] + [OUT_OF_SCOPE]


def _agrees(intent: str, fallback: bool, label: str) -> bool:
    if label == OUT_OF_SCOPE:
        return fallback
    return intent == label and not fallback


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _share(k: int, n: int) -> float:
    return round(k / n, 6) if n else 0.0
