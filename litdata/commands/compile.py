"""`litdata compile SOURCE... --out DIR ...`"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from litdata.classes import MODES, parse_weight_overrides
from litdata.cli import UsageError
from litdata.commands import choices_help
from litdata.config import (
    OVERFLOW_POLICIES,
    PACKING_ALGORITHMS,
    CompileConfig,
    ReadLimits,
    default_of,
)
from litdata.fsio import is_url

# Applied to the stripped text: two \s* around an optional unit made "1" + spaces + "x" quadratic.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)", re.I)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def _out_path(text: str) -> Path | str:
    return text if is_url(text) else Path(text)  # Path() would turn s3://b/x into s3:/b/x


def _url_kind(url: str) -> str:
    from litdata import fsio

    try:
        return fsio.kind(url)
    except (OSError, ValueError, ImportError) as e:  # no back-end for the scheme, no such bucket, no access
        raise UsageError(f"{url}: cannot be read: {e}") from None


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    unit = (m.group(2) or "").lower() if m else None
    if not m or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512MB, 1GiB)")
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    """A byte count as help texts write it: 268435456 -> 256MiB (the largest binary unit that divides it)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n % _UNITS[unit.lower()] == 0:
            return f"{n // int(_UNITS[unit.lower()])}{unit}"
    return f"{n}B"


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def add_encoding_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `compile` and `demo`."""
    from litdata.render import TEMPLATE_NAMES

    def default(name: str):  # CompileConfig's (litdata/config.py): no default is written here
        return default_of(CompileConfig, name)

    p.add_argument("--out", type=_out_path, help="output folder for shards and manifest (or an fsspec URL, s3://...)")
    p.add_argument("--template", default=default("template"), choices=TEMPLATE_NAMES,
                   help=f"chat template (default {default('template')})")
    p.add_argument("--seq-len", type=positive_int, default=default("seq_len"),
                   help="packed sequence length, images expanded")
    p.add_argument("--image-tokens", default=str(default("image_tokens")), metavar="RULE",
                   help=f"positions each image takes in the model: N or fixed:N ({default('image_tokens')} for CLIP "
                        "ViT-L/14 at 336px), "
                        "tiles:tile=448,max=12,min=1,thumbnail=1,per_tile=256 (InternVL/Megatron tiling), or "
                        "processor:DIR (a local Hugging Face processor: llava, llava_next, qwen2_vl, qwen2_5_vl)")
    p.add_argument("--mode", choices=MODES, default=default("mode"),
                   help="lit: instruction + response get loss; vit: response")
    p.add_argument("--weight", action="append", metavar="CLASS=W", help="per-class loss weight, e.g. instruction=0.5")
    p.add_argument("--overflow", choices=OVERFLOW_POLICIES, default=default("overflow"),
                   help="documents longer than --seq-len: reject (too_long) or keep the prefix that fits")
    p.add_argument("--workers", type=positive_int, default=default("workers"), help="encoding processes")
    p.add_argument("--seed", type=int, default=default("seed"), help="packing order seed")
    p.add_argument("--overwrite", action="store_true", help="replace a previous compile with other options in --out")
    p.add_argument("--max-shard-bytes", type=parse_size, default=default("max_shard_bytes"),
                   help=f"start a new shard before this size (e.g. 512MB, 1GiB; default "
                        f"{format_size(default('max_shard_bytes'))})")
    p.add_argument("--max-shard-sequences", type=positive_int, default=default("max_shard_sequences"),
                   help="packed sequences per shard")
    p.add_argument("--max-pixels", type=positive_int, default=default("max_pixels"),
                   help="reject larger images (bombs)")
    p.add_argument("--max-image-bytes", type=parse_size, default=default("max_image_bytes"),
                   help=f"reject larger image files, checked before reading them (default "
                        f"{format_size(default('max_image_bytes'))}; never more than --max-shard-bytes)")
    p.add_argument("--max-turns", type=positive_int, default=default_of(ReadLimits, "max_turns"),
                   help="reject records with more turns")
    p.add_argument("--max-turn-chars", type=positive_int, default=default_of(ReadLimits, "max_turn_chars"),
                   help="reject records with a longer turn")
    p.add_argument("--first-pass-memory", type=parse_size, default=default("first_pass_memory"), metavar="SIZE",
                   help=f"keep the records the template-mining pass read for the encoding pass when they are "
                        f"estimated to fit in this much memory, else read the sources twice (0: always twice; "
                        f"default {format_size(default('first_pass_memory'))}; the output is the same)")
    p.add_argument("--batch-size", type=positive_int, default=default("batch_size"), help="records per encoding batch")
    p.add_argument("--pack-window", type=positive_int, default=default("pack_window"),
                   help="documents per packing window (held in memory; --packing lp runs faster with larger ones)")
    p.add_argument("--packing", choices=PACKING_ALGORITHMS, default=default("packing"),
                   help=choices_help({"fill": "subset-sum fill", "best-fit": "best-fit decreasing, fastest",
                                      "lp": "rounds the cutting-stock LP, the tightest (needs scipy: pip install "
                                            "'litdata-lit[lp]')"}, default("packing")))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Distributed compile (litdata/engines/): same bytes as the local engine, see README "Compiling with Ray".
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine's processes (default); ray: Ray tasks over fixed partitions of the inputs")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --engine ray: an existing cluster (host:port of `ray start --head`, or 'auto'); "
                        "default: a local Ray instance with --workers CPUs")
    # None: RayEngine's own default (engines/partitions.py), which this parser does not import (pyarrow).
    p.add_argument("--partition-size", type=parse_size, default=None, metavar="SIZE",
                   help="with --engine ray: bytes of input per task (JSONL byte ranges, Parquet row groups, runs of "
                        "JSON array elements); does not change the output")
    from litdata.commands.span_options import add_harmful_arguments, add_mining_arguments

    add_mining_arguments(p)
    add_harmful_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="LLaVA JSON/JSONL, ShareGPT, OpenAI messages, Parquet")
    p.add_argument("--image-root", help="folder the records' image paths are relative to")
    p.add_argument("--tokenizer", help="local Hugging Face fast tokenizer folder (default: the bundled demo one)")
    add_encoding_arguments(p)


def config_from_args(args: argparse.Namespace, *, sources, tokenizer: str, image_root: str | None) -> CompileConfig:
    from litdata.commands.span_options import harmful_settings_from_args, mining_settings_from_args

    if args.out is None:
        raise UsageError("--out DIR is required")
    from litdata.read import SourceError, source_format

    for s in sources:
        try:  # missing, empty, a FIFO or a folder, an unsupported format: named before anything is written
            source_format(s)
        except SourceError as e:
            raise UsageError(str(e)) from None
    if image_root is not None and not (_url_kind(image_root) == "directory" if is_url(image_root)
                                       else Path(image_root).is_dir()):
        raise UsageError(f"--image-root {image_root}: no such folder")
    try:
        from litdata.images.tokens import FixedRule, parse_rule

        rule = parse_rule(str(args.image_tokens))
        overrides = parse_weight_overrides(args.weight)
        mining = mining_settings_from_args(args)
        harmful = harmful_settings_from_args(args)
        cfg = CompileConfig(
            sources=tuple(str(s) for s in sources), out=args.out, tokenizer=str(tokenizer), image_root=image_root,
            template=args.template, seq_len=args.seq_len, mode=args.mode,
            image_tokens=rule.fixed or 1, image_token_rule=None if isinstance(rule, FixedRule) else rule,
            weight_overrides=overrides, overflow=args.overflow, workers=args.workers, seed=args.seed,
            first_pass_memory=args.first_pass_memory,
            overwrite=args.overwrite, max_shard_bytes=args.max_shard_bytes,
            max_shard_sequences=args.max_shard_sequences, max_pixels=args.max_pixels,
            max_image_bytes=args.max_image_bytes,
            read_limits=ReadLimits(max_turns=args.max_turns, max_turn_chars=args.max_turn_chars),
            mining=mining, harmful=harmful, batch_size=args.batch_size, pack_window=args.pack_window, packing=args.packing,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if rule.fixed is not None and rule.fixed > args.seq_len:
        raise UsageError(f"--image-tokens {args.image_tokens} cannot exceed --seq-len {args.seq_len}")
    return cfg


def engine_from_args(args: argparse.Namespace, cfg: CompileConfig):
    """None for the local engine; a RayEngine for --engine ray (Ray is imported only when it runs)."""
    if getattr(args, "engine", "local") != "ray":
        if getattr(args, "ray_address", None):
            raise UsageError("--ray-address needs --engine ray")
        return None
    from litdata.engines.ray_engine import RayEngine

    size = {} if args.partition_size is None else {"partition_bytes": args.partition_size}
    return RayEngine(address=args.ray_address, workers=cfg.workers, progress=cfg.progress, **size)


def execute(cfg: CompileConfig, engine=None) -> int:
    from litdata.engines import EngineError
    from litdata.images.file import ImageChangedError
    from litdata.output.folder import OutputError
    from litdata.output.remote import compile_anywhere
    from litdata.read import SourceError
    from litdata.summary import print_summary
    from litdata.tokenize.tokens import TokenizerError

    t0 = time.perf_counter()
    try:
        result = compile_anywhere(cfg, engine)
    except (OutputError, TokenizerError, SourceError) as e:
        raise UsageError(str(e)) from None
    except EngineError as e:
        print(f"litdata: error: {e} (no manifest written; rerun to resume)", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, an input that vanished mid-run: no partial shard is left under a final name
        print(f"litdata: error: {e.strerror or e}: {e.filename or ''} (no manifest written; rerun to resume)",
              file=sys.stderr)
        return 1
    except ImageChangedError as e:  # an input changed under the compile: nothing it would copy can be trusted
        print(f"litdata: error: {e} (no manifest written)", file=sys.stderr)
        return 1
    print_summary(result, cfg.out, seconds=time.perf_counter() - t0)
    return 0 if result.stats.documents else 1


def run(args: argparse.Namespace) -> int:
    from litdata.demo import DEMO_TOKENIZER_DIR

    cfg = config_from_args(args, sources=args.sources, tokenizer=args.tokenizer or DEMO_TOKENIZER_DIR,
                           image_root=args.image_root)
    return execute(cfg, engine_from_args(args, cfg))
