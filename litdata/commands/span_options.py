"""Command-line options for template mining and harmful spans, shared by `compile` and `templates`."""

from __future__ import annotations

import argparse
from pathlib import Path

from litdata.commands import choices_help
from litdata.config import HARMFUL_POLICIES, HarmfulSettings, MiningSettings, default_of
from litdata.spans.harmful import DEFAULT_LEXICON, read_lexicon
from litdata.spans.sentences import SentenceSplitter
from litdata.spans.shapes import sentence_shape


def add_mining_arguments(parser: argparse.ArgumentParser) -> None:
    min_frac, min_count = default_of(MiningSettings, "min_frac"), default_of(MiningSettings, "min_count")
    g = parser.add_argument_group("task-template mining")
    g.add_argument(
        "--task-templates",
        metavar="FILE",
        help="sentences that are always task templates, one per line (a tail written as <arg> "
        "matches any text after a colon)",
    )
    g.add_argument("--not-templates", metavar="FILE", help="sentences that are never task templates, one per line")
    g.add_argument(
        "--template-min-frac",
        metavar="F",
        type=float,
        default=min_frac,
        help=f"a template appears in at least this fraction of the records (default {min_frac})",
    )
    g.add_argument(
        "--template-min-count",
        metavar="N",
        type=int,
        default=min_count,
        help=f"... and in at least this many records (default {min_count})",
    )
    g.add_argument(
        "--template-top-k",
        metavar="K",
        type=int,
        default=default_of(MiningSettings, "top_k"),
        help="also mark the K most frequent sentence shapes (still subject to --template-min-count)",
    )
    g.add_argument(
        "--no-mine-templates", action="store_true", help="do not mine; only the --task-templates list is used"
    )


def add_harmful_arguments(parser: argparse.ArgumentParser) -> None:
    threshold, policy = default_of(HarmfulSettings, "threshold"), default_of(HarmfulSettings, "policy")
    g = parser.add_argument_group("harmful spans")
    g.add_argument(
        "--harmful-lexicon",
        metavar="FILE",
        action="append",
        default=[],
        help="harmful phrases, one per line, matched case-insensitively (repeatable)",
    )
    g.add_argument(
        "--no-default-harmful-lexicon",
        action="store_true",
        help="do not use the bundled default list of harmful phrases",
    )
    g.add_argument("--harmful-model", metavar="PATH", help="local Hugging Face text-classification model")
    g.add_argument(
        "--harmful-threshold",
        metavar="F",
        type=float,
        default=threshold,
        help=f"model score at or above which a sentence is harmful (default {threshold})",
    )
    g.add_argument(
        "--harmful-label",
        metavar="NAME",
        help="the model label that means harmful (default: guessed from harmful/toxic/unsafe/LABEL_1)",
    )
    g.add_argument(
        "--harmful",
        metavar="POLICY",
        default=policy,
        help=choices_help({"mask": "harmful sentences get weight 0", "drop": "reject the record"}, policy),
    )


def read_sentence_list(path: str, option: str) -> frozenset[str]:
    """Shapes of the sentences in a user list file (blank lines and '#' comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{option} {path}: cannot read: {e.__class__.__name__}: {e}") from None
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    # Lines are split the way turns are, so a line holding two sentences lists both.
    shapes = {
        sentence_shape(line[s.start : s.end])
        for line, sents in zip(lines, SentenceSplitter(cache_size=0).split(lines))
        for s in sents
    }
    shapes.discard("")
    return frozenset(shapes)


def mining_settings_from_args(args: argparse.Namespace) -> MiningSettings:
    return MiningSettings(
        enabled=not args.no_mine_templates,
        min_frac=args.template_min_frac,
        min_count=args.template_min_count,
        top_k=args.template_top_k,
        user_templates=read_sentence_list(args.task_templates, "--task-templates")
        if args.task_templates
        else frozenset(),
        user_not_templates=(
            read_sentence_list(args.not_templates, "--not-templates") if args.not_templates else frozenset()
        ),
    )


def harmful_settings_from_args(args: argparse.Namespace) -> HarmfulSettings:
    files = ([] if args.no_default_harmful_lexicon else [str(DEFAULT_LEXICON)]) + list(args.harmful_lexicon)
    phrases: dict[str, None] = {}
    for f in files:
        phrases.update(dict.fromkeys(read_lexicon(f)))
    if args.harmful_model is not None:
        _check_model(args.harmful_model, args.harmful_label)
    return HarmfulSettings(
        phrases=tuple(phrases),
        lexicon_files=tuple(files),
        model_path=args.harmful_model,
        threshold=args.harmful_threshold,
        harmful_label=args.harmful_label,
        policy=args.harmful,
    )


def _check_model(path: str, label: str | None) -> None:
    """Fail at option time, not in a worker after the output folder was opened: the model folder must hold a
    classifier that loads (config, tokenizer and weights) and has a usable label. Loading it once here costs one
    more load than the workers' own; a broken folder otherwise surfaces mid-run."""
    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"--harmful-model {path}: no config.json there (a local Hugging Face model folder)")
    from litdata.spans.harmful import ModelDetector

    try:
        ModelDetector(path, harmful_label=label)
    except ValueError as e:
        raise ValueError(f"--harmful-model {path}: {(str(e).splitlines() or [''])[0]}") from None
    except Exception as e:  # a corrupt weights or tokenizer file raises what its parser raises
        why = f"{e.__class__.__name__}: {(str(e).splitlines() or [''])[0]}"
        raise ValueError(f"--harmful-model {path}: cannot load: {why}") from None


__all__ = [
    "HARMFUL_POLICIES",
    "add_harmful_arguments",
    "add_mining_arguments",
    "harmful_settings_from_args",
    "mining_settings_from_args",
    "read_sentence_list",
]
