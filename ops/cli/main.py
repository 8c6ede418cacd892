"""The ``botyard`` command line: demo, node, train, chat, history.

Every configuration field has a flag (``--data-dir``) and an environment variable
(``BOTYARD_DATA_DIR``); the flag wins.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from botyard import protocol
from botyard.errors import BotyardError
from botyard.ops.bus_auth import connect_options, tenant_inbox
from botyard.ops.cli import check as cli_check
from botyard.ops.cli import cluster as cli_cluster
from botyard.ops.cli import replay as cli_replay
from botyard.ops.cli import snapshots as cli_snapshots
from botyard.ops.cli import testing as cli_testing
from botyard.ops.cli.actions_service import (
    ACTIONS_LOG,
    EXAMPLE_BOT,
    demo_actions,
    demo_credentials,
    start_actions,
    stop_actions,
)
from botyard.ops.cli.common import admin_for, bot_ref, entities_text, known_nats_url, print_move, promote_after_training
from botyard.ops.config import Config

DEMO_LOG = "demo.log"
"""``botyard demo``'s log, in the data directory."""


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (each also BOTYARD_<NAME> in the environment)")
    for f in dataclasses.fields(Config):
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", default=None, help=f"env BOTYARD_{f.name.upper()}"
        )


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per user setting of ``TrainConfig`` (``--tuned-layers``), absent: its default."""
    from botyard.training.config import flag, user_settings

    for s in user_settings():
        described = s.setting.describe(flag)
        if s.type is bool:
            parser.add_argument(flag(s.name), action="store_true", default=None, help=described)
        else:
            parser.add_argument(flag(s.name), type=s.type, help=f"{described} (default {s.default})")


def _config(args: argparse.Namespace) -> Config:
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    return Config.from_mapping(None, **overrides)


def _setup_logging(level: str, form: str = "text", path: Path | None = None) -> None:
    from botyard.ops.logs import setup_logging

    setup_logging(level, form, path=path)


def _nats_url(config: Config) -> str:
    url = known_nats_url(config)
    if url:
        return url
    raise BotyardError(
        f"no NATS URL: set BOTYARD_NATS_URL, or start `botyard node` with data dir {config.data_dir} first"
    )


# -- commands ---------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace, config: Config) -> int:
    from botyard.training.config import TrainConfig, flag, settings_problem, user_settings

    chosen = {s.name: getattr(args, s.name) for s in user_settings()}
    problem = settings_problem(chosen, flag)
    if problem is not None:
        raise BotyardError(problem[1])
    # Validated before TensorFlow is even imported: every problem of both sections at once, warnings on stderr.
    definition = cli_check.load_checked(args.bot_file)
    train_config = TrainConfig.from_settings(chosen)
    with admin_for(config) as admin:
        if args.labels:
            definition = _with_labels(admin, definition)
        parent = _production(admin, definition)
        if args.workers > 1 or args.hosts:
            info = _train_distributed(definition, admin.snapshots, train_config, args.workers, args.hosts, parent)
        else:
            info = _train_with_progress(definition, admin.snapshots, train_config, parent, as_json=args.progress == "json")
        moved = promote_after_training(admin, info.tenant, info.bot, info.id, args.promote)
    if moved:
        if args.progress == "json":
            print(json.dumps({"moved": moved}), flush=True)
        else:
            print_move(moved)
    print(json.dumps({"snapshot": info.id, "tenant": info.tenant, "bot": info.bot, "size": info.size}), flush=True)
    return 0


def _with_labels(admin, definition):
    """The bot file's examples plus the bot's labelled turns (a label moves a text between intents)."""
    from botyard.models.definition import OUT_OF_SCOPE

    labels = admin.replay.labels(definition.tenant, definition.bot)
    known = {i.name for i in definition.intents} | {OUT_OF_SCOPE}
    usable = [(item["user_text"], item["intent"]) for item in labels if item["intent"] in known]
    if len(usable) < len(labels):
        print(f"skipping {len(labels) - len(usable)} labels naming intents this bot file lacks", file=sys.stderr)
    print(f"adding {len(usable)} labelled turns to the training data", file=sys.stderr)
    return definition.with_examples(usable)


def _production(admin, definition) -> str | None:
    aggregate = admin.events.bot(definition.tenant, definition.bot)
    return aggregate.aliases.get("production") if aggregate else None


def _train_distributed(definition, store, train_config, workers: int, hosts: str | None, parent: str | None):
    from botyard.training.distributed import train_distributed
    from botyard.training.pipeline import save_result

    print(f"training {definition.key} with {workers} Horovod workers (gloo)", file=sys.stderr)
    result = train_distributed(definition, train_config, workers, hosts)
    info = save_result(definition, store, result, parent=parent)
    _summary(info, result)
    return info


def _train_with_progress(definition, store, train_config, parent: str | None = None, *, as_json: bool = False):
    from tqdm import tqdm

    from botyard.training.pipeline import train_to_store

    if as_json:  # one JSON line per epoch on stdout, for whoever runs this as a job
        def report(p: dict) -> None:
            keys = ("stage", "done", "total") if "stage" in p else ("epoch", "epochs", "loss", "val_accuracy")
            line = {k: p.get(k) for k in keys}
            if "model" in p:  # a cascade's: "bag", then "context" or "tuned"
                line["model"] = p["model"]
            if "fold" in p:  # a calibration fold's training (the final one has none)
                line["fold"], line["folds"] = p["fold"], p["folds"]
            print(json.dumps(line), flush=True)

        info, result = train_to_store(definition, store, train_config, report, parent=parent)
        _summary(info, result)
        return info

    print(
        f"training {definition.key}: {len(definition.intents)} intents, "
        f"{sum(len(i.examples) for i in definition.intents)} examples",
        file=sys.stderr,
    )
    second = train_config.context_tier_epochs if train_config.cascade else 0
    if train_config.tuned:  # its epochs depend on the number of examples (corrected by its first record)
        from botyard.training.tuning import epochs_for

        examples = sum(len(i.examples) for i in definition.intents)
        second = epochs_for(round(examples * (1 - train_config.validation_share)), train_config.context_epochs)
    from botyard.training.pipeline import fits_for

    fits = fits_for(train_config, sum(len(i.examples) for i in definition.intents) + len(definition.out_of_scope))
    epochs = (train_config.epochs + second) * fits
    with tqdm(total=epochs, unit="epoch", file=sys.stderr, mininterval=0.5) as bar:

        def progress(p: dict) -> None:
            if "stage" in p:  # the sentence encoder reading the examples, or fine-tuning's updates
                bar.set_description(f"{p['stage']} {p['done']}/{p['total']}")
                return
            if p.get("model") == "tuned" and p["epoch"] == 1:  # its epochs depend on the number of examples
                bar.total = (train_config.epochs + p["epochs"]) * fits
                bar.refresh()
            what = f"training {p['model']}" if "model" in p else "training"
            bar.set_description(f"{what}, fold {p['fold']}/{p['folds']}" if "fold" in p else what)
            bar.update(1)
            shown = {"loss": p.get("loss"), "acc": p.get("accuracy"), "val_acc": p.get("val_accuracy")}
            bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if v is not None})

        info, result = train_to_store(definition, store, train_config, progress, parent=parent)
    _summary(info, result)
    return info


def _summary(info, result) -> None:
    m = result.metrics
    print(
        f"snapshot {info.id} ({info.size / 1e6:.2f} MB) in {result.seconds:.1f} s: "
        f"{m['train_examples']} training examples, final loss {m['train_loss']:.4f}"
        + (f"; on {m['validation_examples']} held-out examples: intent accuracy {m['validation_accuracy']:.3f}"
           if "validation_accuracy" in m else "")
        + (f", entity F1 {m['validation_entity_f1']:.3f}" if "validation_entity_f1" in m else "")
        + _fallback_rule(result.manifest["model"], m)
        + (f"; blend weight {cascade['blend']}" if "blend" in (cascade := result.manifest["model"].get("cascade") or {}) else "")
        + (f"; {m['workers']} workers" if m.get("workers", 1) > 1 else ""),
        file=sys.stderr,
    )


def _fallback_rule(model: dict, m: dict) -> str:
    """How the snapshot falls back, for the summary line."""
    if "calibrated_threshold" in m:
        return (f"; fallback threshold {model['threshold']:.2f} (the bot file's; calibration would choose "
                f"{m['calibrated_threshold']:.2f})")
    calibration = model.get("calibration") or {}
    how = calibration.get("method", "held-out")
    if calibration.get("folds", 1) > 1:
        spread = (calibration.get("score") or calibration.get("confidence") or {}).get("spread")
        how += f", folds within {spread:.2f}" if spread is not None else ""
    if calibration and not calibration.get("held_out"):
        how = "a prior: nothing held out"
    if (model.get("scope") or {}).get("threshold") is not None:
        return f"; falls back below in-scope score {model['scope']['threshold']:.2f} ({how})"
    return f"; fallback threshold {model['threshold']:.2f} ({how})"


def cmd_node(args: argparse.Namespace, config: Config) -> int:
    from botyard.ops.node import Node

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    node = Node(config).start()
    print(f"botyard node {config.node_id} ready on {node.nats_url}", flush=True)
    try:
        stop.wait()
    finally:
        logging.getLogger(__name__).info("stopping: finishing in-flight turns")
        node.stop()
    return 0


async def _chat(
    url: str, tenant: str, bot: str, conversation_id: str, stream=sys.stdin, *, alias: str | None = None,
    options: dict | None = None,
) -> None:
    from botyard.client import Client
    from botyard.errors import TurnError

    interactive = stream.isatty()
    loop = asyncio.get_running_loop()
    async with await Client.connect(url, **(options or {})) as client:
        target = f"{tenant}/{bot}" + (f"@{alias}" if alias else "")
        print(f"chatting with {target} as conversation {tenant}/{bot}/{conversation_id} (end with Ctrl-D)")

        async def on_message(msg) -> None:  # the bot's messages no turn asked for, as they are recorded
            m = json.loads(msg.data)
            print(f"\nbot (message {m['seq']}{' from ' + m['source'] if m['source'] else ''})> {m['text']}", flush=True)

        await client.nc.subscribe(protocol.out_subject(tenant, bot, conversation_id), cb=on_message)
        while True:
            if interactive:
                print("you> ", end="", flush=True)
            line = await loop.run_in_executor(None, stream.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            try:
                reply = await client.say(tenant, bot, conversation_id, text, alias=alias)
            except TurnError as exc:
                print(f"[error {exc.code}] {exc.message}")
                continue
            marker = " (fallback)" if reply.fallback else ""
            who = f"agent {reply.agent}" if reply.agent else "bot"
            print(f"{who}> {reply.text}" if reply.text or not reply.handed_off else f"{who}> (with a person; no answer yet)")
            found = entities_text(reply.entities)
            print(f"     [turn {reply.turn} · {reply.intent} {reply.confidence:.2f}{marker}{found} · snapshot {reply.snapshot[:12]}]")
            dialogue = _dialogue_text(reply)
            if dialogue:
                print(f"     [{dialogue}]")
    print(f"bye. `botyard history {tenant}/{bot}/{conversation_id}` shows this conversation.")


def _dialogue_text(reply) -> str:
    """``slots order_number=4821377 · form start_return, asking item · handed off``, or empty."""
    parts = []
    if reply.slots:
        parts.append("slots " + " ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in reply.slots.items()))
    if reply.form:
        parts.append(f"form {reply.form}" + (f", asking {reply.asked}" if reply.asked else ", confirming"))
    if reply.handed_off:
        parts.append("handed off to a person")
    return " · ".join(parts)


def cmd_chat(args: argparse.Namespace, config: Config) -> int:
    tenant, bot = bot_ref(args.bot)
    if args.agent:
        from botyard.ops.cli.agent import play_agent

        asyncio.run(play_agent(_nats_url(config), tenant, bot, args.agent, options=connect_options(config)))
        return 0
    asyncio.run(_chat(_nats_url(config), tenant, bot, args.conversation or uuid.uuid4().hex[:12], alias=args.alias,
                      options=connect_options(config)))
    return 0


def _serves_current_snapshot(admin, definition) -> bool:
    """Production names a snapshot of exactly this bot file, of a model kind this runtime serves."""
    from botyard.models.runtime import MODEL_KIND

    production = _production(admin, definition)
    if production is None:
        return False
    try:
        manifest = admin.snapshots.load(production).manifest
    except BotyardError:
        return False
    return manifest.get("definition_hash") == definition.content_hash() and manifest["model"].get("kind") == MODEL_KIND


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from botyard.ops.node import Node

    definition = cli_check.load_checked(args.bot_file)
    log_file = config.data_dir / DEMO_LOG  # the terminal is the chat's: the node's log goes to a file
    _setup_logging(config.log_level, config.log_format, log_file)
    print(f"logs: {log_file}", file=sys.stderr)
    with admin_for(config.with_(snapshot_store="local")) as admin:
        if not _serves_current_snapshot(admin, definition):
            from botyard.training.config import TrainConfig

            train_config = TrainConfig(**({"epochs": args.epochs} if args.epochs else {}))
            info = _train_with_progress(definition, admin.snapshots, train_config, _production(admin, definition))
            moved = promote_after_training(admin, info.tenant, info.bot, info.id, "production")
            if moved:
                print_move(moved)
        creds = demo_credentials(admin, config, definition.tenant)
    actions = demo_actions(args)
    started = time.perf_counter()
    with Node(config) as node:
        print(f"node up in {time.perf_counter() - started:.2f} s on {node.nats_url} (data in {config.data_dir})")
        if node.http is not None:
            print(f"dashboard: {node.http.url}/dashboard/#token={node.operator_token}")
        service = (start_actions(actions, node.nats_url, definition, config.data_dir / ACTIONS_LOG, creds=creds)
                   if actions else None)
        options = connect_options(config)
        if creds is not None:  # the chat is the tenant's client, with the tenant's credential
            options = {"nkeys_seed_str": creds.read_text().strip(), "inbox_prefix": tenant_inbox(definition.tenant)}
        try:
            asyncio.run(_chat(node.nats_url, definition.tenant, definition.bot, args.conversation or uuid.uuid4().hex[:12],
                              options=options))
        finally:
            if service is not None:
                stop_actions(service, config.data_dir / ACTIONS_LOG)
    return 0


# -- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botyard", description="Host many tenants' chatbots over NATS.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="embedded NATS + a node + the example bot, and a chat in this terminal")
    p.add_argument("--bot-file", default=str(EXAMPLE_BOT), help="bot definition to train and chat with")
    p.add_argument("--conversation", help="conversation id (default: a new one)")
    p.add_argument("--epochs", type=int, help="training epochs if the bot has no snapshot yet")
    p.add_argument(
        "--actions", metavar="PATH",
        help="the bot's action service, a Python file run as `python PATH --nats URL --tenant T --bot B` beside the node; "
        "the chat starts when it prints its first line (at most 10 s later). Default: examples/shop_actions.py for the "
        "example bot, none for another bot (docs/actions.md)",
    )
    p.add_argument("--no-actions", action="store_true", help="run no action service")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("node", help="run a node until SIGTERM/SIGINT")
    p.set_defaults(func=cmd_node)

    p = sub.add_parser("train", help="train a bot file into a snapshot")
    p.add_argument("bot_file")
    _add_training_flags(p)
    p.add_argument("--workers", type=int, default=1, help="Horovod worker processes (gloo); 1 = train in this process")
    p.add_argument("--hosts", help="Horovod hosts with slots, e.g. node1:2,node2:2 (default: localhost:WORKERS)")
    p.add_argument("--labels", action="store_true", help="add the bot's labelled turns (botyard label) to its examples")
    p.add_argument(
        "--progress", choices=("bar", "json"), default="bar",
        help="bar: a progress bar on stderr; json: one JSON line per epoch on stdout (for jobs)",
    )
    p.add_argument(
        "--promote", metavar="ALIAS",
        help="point this alias (e.g. staging) at the new snapshot; without it a bot's first snapshot becomes production",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("chat", help="chat with a bot served by a running node")
    p.add_argument("bot", metavar="TENANT/BOT")
    p.add_argument("--conversation", help="conversation id (default: a new one)")
    p.add_argument("--alias", help="talk to the snapshot this alias names (default: production)")
    p.add_argument("--agent", metavar="NAME", help="be the person handed-off conversations go to: read them, answer, hand back")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("history", help="the turn events of one conversation")
    p.add_argument("conversation", metavar="CONVERSATION_ID", help="TENANT/BOT/CONVERSATION_ID, or an id with --bot")
    p.add_argument("--bot", metavar="TENANT/BOT")
    p.add_argument("--json", action="store_true", help="one JSON object per turn")
    p.set_defaults(func=cli_replay.cmd_history)

    cli_cluster.add_parser(sub)
    cli_replay.add_parsers(sub)
    cli_replay.add_token_parser(sub)
    cli_testing.add_parser(sub)
    cli_check.add_parser(sub)
    leaves = list(sub.choices.values())
    leaves += cli_snapshots.add_parser(sub)
    for p in leaves:
        _add_config_flags(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        _setup_logging(config.log_level, config.log_format)
        return args.func(args, config)
    except BotyardError as exc:
        print(f"botyard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
