"""What training is asked to do: :class:`TrainConfig`, and the one declaration of the
settings a user may choose (``botyard train`` flags, the dashboard's ``POST .../train``
body, training jobs), each with its help, bounds and the settings it needs.

A field whose metadata holds a :class:`Setting` (:func:`setting`) is user-settable; every
surface derives its flags or fields from :func:`user_settings`. Importing this module does
not import TensorFlow.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping

from botyard.models.encoder import LAYERS
from botyard.models.featurizer import FeatureConfig

SETTING = "botyard.setting"
"""The metadata key of a user-settable field's :class:`Setting`."""


@dataclass(frozen=True, slots=True)
class Setting:
    """How a user sets one :class:`TrainConfig` field. ``help`` and ``what`` may name other
    settings as ``{name}``; each surface spells them its own way (``--tuned``, ``tuned``)."""

    help: str
    ge: float | None = None
    """The least value accepted."""
    le: float | None = None
    """The largest value accepted."""
    needs: tuple[str, ...] = ()
    """Boolean settings of which at least one must be chosen with this one."""
    what: str = ""
    """What the setting is, for the message refusing it (``--gate is the cascade's confidence gate: ...``)."""

    def describe(self, spell: Callable[[str], str] = str) -> str:
        return self.help.format_map(_Spelled(spell))


def setting(help: str, **limits: Any) -> dict[str, Setting]:
    """A field's metadata making it user-settable."""
    return {SETTING: Setting(help, **limits)}


CV_EXAMPLES = 3000
"""Up to this many examples, :data:`CV_FOLDS` folds calibrate (a held-out tenth of a small bot is a
handful of answers: bot20's threshold moved 0.24 over 5 seeds); above it, one held-out tenth (300
answers or more)."""
CV_FOLDS = 3
"""Folds of a small bot: bot20's in-scope threshold over 5 seeds within 0.017 with 3 folds, 0.026
with 5 (docs/accuracy.md), for 4 trainings' time instead of 6."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = field(default=30, metadata=setting("passes over the training examples", ge=1, le=1000))
    """Passes over the training examples."""
    batch_size: int = field(default=32, metadata=setting("examples per update, over all workers together", ge=1, le=10_000))
    """Examples per update, over all workers together."""
    embed: int = 64
    """Width of the feature embeddings (64 keeps a 20-intent bot near 1 MB resident)."""
    hidden: int = 256
    """Width of the sentence layer."""
    conv: int = 64
    """Filters of each token convolution (entity tagging)."""
    kernel: int = 5
    """Tokens each convolution sees (odd)."""
    pool: bool = False
    """The intent head also sees the convolutions' max over tokens (phrases in context)."""
    conv_layers: int = 2
    """Stacked convolutions: each widens what a token's tag sees by ``kernel - 1`` tokens."""
    dropout: float = 0.3
    entity_weight: float = 3.0
    """How much more a token inside an entity weighs in the tagging loss than an ``O`` token."""
    transition_weight: float = 0.0
    """Decode entity tags with the training examples' tag-bigram log-frequencies added to the
    tag head's log-probabilities at this weight (a tag prior, :mod:`botyard.models.decoding`;
    0: the BIO rules alone)."""
    learning_rate: float = 0.003
    validation_share: float = 0.1
    """Share of each intent's examples held out to calibrate the threshold and report accuracy."""
    recall_target: float = 0.95
    """The fallback threshold keeps this share of the correct held-out answers (the in-scope
    score's always; the confidence's without out-of-scope examples)."""
    folds: int = field(default=0, metadata=setting(
        "cross-validation folds that calibrate the fallback threshold and measure held-out accuracy "
        "(0: 3 for a bot of up to 3,000 examples, else one held-out tenth; a cascade: one tenth)", ge=0, le=20))
    """Calibration: every example of an intent with at least 5 is held out once, by one of this many
    models, and the threshold is chosen on all their answers together (0: :func:`folds_for`)."""
    no_final_fit: bool = field(default=False, metadata=setting(
        "after calibrating, do not train again on every example: the snapshot's model is one trained "
        "without the held-out examples (one training instead of one per fold and a final one)"))
    """Without it, after the folds have calibrated the threshold and measured the held-out accuracy,
    the snapshot's model is trained once more on every example."""
    scope: bool = True
    """Compute the in-scope score (:mod:`botyard.models.scope`) and fall back below its calibrated
    threshold; False: the confidence threshold alone, as before issue 26."""
    vectors: bool = True
    """Feed the shared pretrained word vectors (:mod:`botyard.models.vectors`) next to the
    hashed n-grams, if they are installed; the snapshot then refers to them by hash."""
    vector_proj: int = 128
    """Project the word vectors to this width (one linear layer shared by both heads; 0: feed all
    384). 128 keeps a 20-intent bot under 2 MB and scored as well as all 384 on the valid splits."""
    context: bool = field(default=False, metadata=setting(
        "read each utterance with the shared sentence encoder (MiniLM-L6): more accurate, "
        "milliseconds per turn instead of a tenth of one"))
    """The utterance's vector is its contextual encoding by the shared sentence encoder
    (:mod:`botyard.models.encoder`, MiniLM-L6) instead of the mean of its pieces' rows, and
    each token's vector is the word read in its sentence; the intent head also reads the
    utterance's vector directly (``Shape.skip``). More accurate, for milliseconds per
    utterance (the bag model alone takes about 0.1 ms). Needs the word vectors."""
    cascade: bool = field(default=False, metadata=setting(
        "train the bag model and the context tier; the second answers only when the first is unsure "
        "(about the context tier's accuracy at a fraction of its time per turn)"))
    """Train two models, the bag model and the context tier (``context`` above), and serve the
    second only for the utterances the first is unsure of (intent confidence below ``gate``):
    about the context tier's accuracy for a fraction of its time per turn."""
    tuned: bool = field(default=False, metadata=setting(
        "a cascade whose second model is the sentence encoder fine-tuned on the bot's examples, blended "
        "with the bag model's answer: the most accurate model, minutes to train, about 7 MB more per "
        "snapshot for each layer tuned"))
    """A cascade (``cascade`` above) whose second model is the sentence encoder itself, fine-tuned
    on the bot's examples (:mod:`botyard.training.tuning`), blended with the bag model's answer
    at a weight chosen on the validation examples: the most accurate model offered, for about
    the context tier's milliseconds per escalated turn and minutes of training, and a snapshot
    about 7 MB larger per layer tuned (``tuned_layers``; 42 MB for all six). Implies ``cascade``."""
    tuned_layers: int = field(default=6, metadata=setting(
        "with {tuned}: how many of the encoder's top layers to fine-tune; the others stay the "
        "shared encoder's: faster training, a snapshot about 7 MB smaller per layer left out",
        ge=1, le=LAYERS, needs=("tuned",), what="how many of the encoder's top layers {tuned} fine-tunes"))
    """With ``tuned``: how many of the sentence encoder's six layers, counted from the top, are
    fine-tuned; the ones below stay the installed encoder's, are computed once per example
    before training, and are not stored in the snapshot (fewer: faster training, a smaller
    snapshot)."""
    gate: float = field(default=0.9, metadata=setting(
        "with {cascade} or {tuned}: the bag model's confidence below which the second model answers",
        ge=0.0, le=1.0, needs=("cascade", "tuned"), what="the cascade's confidence gate"))
    """In a cascade, the bag model's intent confidence below which the second model answers."""
    context_epochs: int = 0
    """In a cascade, the second model's epochs (0: ``epochs`` for the context tier, which overfits
    sooner than the bag model; for a tuned one, :func:`botyard.training.tuning.epochs_for`)."""
    float16: bool = field(default=False, metadata=setting(
        "store the embedding table in half precision: about half the bytes per snapshot and loaded model"))
    """Store and serve the embedding table (most of a snapshot's bytes) in half precision:
    about half the snapshot's and a loaded model's bytes, for a rounding of the weights
    (relative error at most 2^-11; the runtime reads the rows as float32). Calibration and
    the validation figures use the rounded table."""
    seed: int = field(default=0, metadata=setting("the random seed (same data and seed: the same snapshot)", ge=0, le=2**31 - 1))
    features: FeatureConfig = FeatureConfig()

    @property
    def context_tier_epochs(self) -> int:
        """A cascade's context tier's epochs: ``context_epochs``, else ``epochs``."""
        return self.context_epochs or self.epochs

    def folds_for(self, examples: int) -> int:
        """How many models calibrate: ``folds``, else :data:`CV_FOLDS` for a bot of up to
        :data:`CV_EXAMPLES` examples and 1 (a held-out tenth) for a bigger one or a cascade."""
        if self.folds:
            return self.folds
        return 1 if self.is_cascade or examples > CV_EXAMPLES else CV_FOLDS

    @property
    def is_cascade(self) -> bool:
        """Two models, the second for the turns the first is unsure of (``cascade`` or ``tuned``)."""
        return self.cascade or self.tuned

    @classmethod
    def from_settings(cls, chosen: Mapping[str, Any]) -> "TrainConfig":
        """The defaults with the user's chosen settings (None or False: not chosen); check them
        first with :func:`settings_problem`."""
        return cls(**{k: v for k, v in chosen.items() if v is not None and v is not False})


@dataclass(frozen=True, slots=True)
class UserSetting:
    name: str
    type: type
    """``bool``, ``int`` or ``float``."""
    default: Any
    setting: Setting


def user_settings() -> Iterator[UserSetting]:
    """The user-settable fields of :class:`TrainConfig`, in declaration order."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if SETTING in f.metadata:
            yield UserSetting(f.name, hints[f.name], f.default, f.metadata[SETTING])


def flag(name: str) -> str:
    """A setting's ``botyard train`` flag: ``tuned_layers`` -> ``--tuned-layers``."""
    return "--" + name.replace("_", "-")


def settings_problem(chosen: Mapping[str, Any], spell: Callable[[str], str] = str) -> tuple[str, str] | None:
    """The first chosen setting (None or False: not chosen) out of bounds or without a setting
    it needs, and the message refusing it, with settings named by ``spell``; None if all is well."""
    for s in user_settings():
        value = chosen.get(s.name)
        if value is None or value is False:
            continue
        rule = s.setting
        inside = _within(value, rule)
        if rule.needs:
            if inside and any(chosen.get(n) for n in rule.needs):
                continue
            needs = " or ".join(spell(n) for n in rule.needs)
            what = rule.what.format_map(_Spelled(spell))
            return s.name, f"{spell(s.name)} is {what}: it needs {needs} and {_bounds(s, 'a value within')}"
        if not inside:
            return s.name, f"{spell(s.name)} must be {_bounds(s, 'within')}"
    return None


def as_args(chosen: Mapping[str, Any]) -> list[str]:
    """The ``botyard train`` flags of the chosen settings."""
    args: list[str] = []
    for s in user_settings():
        value = chosen.get(s.name)
        if value is None or value is False:
            continue
        args += [flag(s.name)] if s.type is bool else [flag(s.name), str(value)]
    return args


def _within(value: Any, rule: Setting) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return isinstance(value, bool) and rule.ge is None and rule.le is None
    return (rule.ge is None or value >= rule.ge) and (rule.le is None or value <= rule.le)


def _bounds(s: UserSetting, within: str) -> str:
    ge, le = s.setting.ge, s.setting.le
    if ge is None and le is None:
        return "true or false" if s.type is bool else f"a number ({s.type.__name__})"
    if s.type is int and ge is not None and le is not None:
        return f"{_number(ge)} to {_number(le)}"
    if ge is None or le is None:
        return f"at least {_number(ge)}" if le is None else f"at most {_number(le)}"
    return f"{within} [{_number(ge)}, {_number(le)}]"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class _Spelled(dict):
    def __init__(self, spell: Callable[[str], str]) -> None:
        super().__init__()
        self.spell = spell

    def __missing__(self, key: str) -> str:
        return self.spell(key)


__all__ = ["Setting", "TrainConfig", "UserSetting", "as_args", "flag", "settings_problem", "user_settings"]
