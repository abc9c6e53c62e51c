"""`litdata compile`, stage by stage:
read -> mine -> (spans -> render -> tokenize -> token classes -> weigh, in workers) -> pack -> write.
This module alone counts and writes what the stages produce: documents go on to the packer, while rejects and
harmful-span audit lines are written as they come, in input order.

Two streaming passes over the sources: the first mines task templates (corpus-wide counts), the second encodes
(from what the first read when that fits in memory: litdata/read/twopass.py).
Work in flight is bounded (a few batches per worker, one packing window), so memory does not grow with the input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing as mp
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from litdata import fsio
from litdata.chunked import chunked
from litdata.config import CompileConfig, PackSettings
from litdata.encode import Encoder, EncodeSpec
from litdata.hashing import file_sha256
from litdata.output.folder import OutputWriter
from litdata.pack.packer import make_packer
from litdata.records import Document, Reject
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_sections import Counts, Packing, TemplatesEntry, TokenTotals
from litdata.shards.schema import FORMAT_VERSION
from litdata.shards.writer import ShardWriter
from litdata.spans.memo import MINED
from litdata.stats import CompileStats

if TYPE_CHECKING:
    from litdata.spans.table import TemplateTable


@dataclass(frozen=True, kw_only=True)
class CompileResult:
    manifest: Manifest
    stats: CompileStats
    templates: TemplateTable


_WORKER: Encoder | None = None


def _init_worker(spec: EncodeSpec) -> None:
    global _WORKER
    _WORKER = Encoder(spec)


def _encode_in_worker(batch: list) -> list[Document | Reject]:
    assert _WORKER is not None
    return _WORKER.encode_batch(batch)


def _encoded(cfg: CompileConfig, spec: EncodeSpec, batches: Iterator[list]) -> Iterator[list[Document | Reject]]:
    """Encoded batches in input order; at most 2 batches per worker in flight (Pool.imap would read ahead
    without bound)."""
    if cfg.workers <= 1:
        # One encoding process: the tokenizer's native call of one batch runs beside the Python work of its
        # neighbours (packing and writing included), which would otherwise wait for it.
        yield from Encoder(spec).encode_batches(batches)
        return
    ctx = mp.get_context("spawn")  # fork after tokenizers/spaCy threads have started is unsafe
    with ctx.Pool(cfg.workers, initializer=_init_worker, initargs=(spec,)) as pool:
        pending: deque = deque()
        for b in batches:
            pending.append(pool.apply_async(_encode_in_worker, (b,)))
            if len(pending) >= 2 * cfg.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def compile_dataset(cfg: CompileConfig, engine=None) -> CompileResult:
    """`engine`: None runs both data passes here (a process pool for --workers > 1); a RayEngine
    (litdata/engines/ray_engine.py) runs them on a Ray cluster. Everything else, and the bytes, are the same."""
    from litdata.read.twopass import TwoPassReader
    from litdata.spans.mining import mine_templates
    from litdata.tokenize.tokens import load_tokenizer

    limits = cfg.read_limits
    _, tokinfo = load_tokenizer(cfg.tokenizer)  # fail fast on a bad tokenizer, before any pass over the data
    inputs = [{"path": s, "sha256": file_sha256(s), "bytes": fsio.size(s)} for s in cfg.sources]
    out = OutputWriter(cfg.out)
    local_inputs = [p for p in [*cfg.sources, *([cfg.image_root] if cfg.image_root else [])] if not fsio.is_url(p)]
    run_key = _run_key(cfg, inputs)
    out.prepare(run_key=run_key, overwrite=cfg.overwrite, inputs=local_inputs)
    if engine is not None:  # it keeps completed partitions in --out for a rerun (litdata/engines/store.py)
        engine.keep_partitions(out, run_key)

    passes = TwoPassReader([(i["path"], i["bytes"]) for i in inputs], limits, budget=cfg.first_pass_memory)
    if engine is None:
        table = mine_templates(passes.first(), cfg.mining, progress=cfg.progress)
        records = passes.records
    else:
        table, records = engine.mine(cfg.sources, limits, cfg.mining)
    spec = encode_spec(cfg, table.template_shapes())
    stats = CompileStats(seq_len=cfg.seq_len)
    packer = make_packer(PackSettings(seq_len=cfg.seq_len, image_tokens=cfg.rule.fixed or 1,
                                      window=cfg.pack_window, seed=cfg.seed, algorithm=cfg.packing))
    make_writer = ShardWriter if engine is None else engine.shard_writer  # the Ray engine writes shards in tasks
    writer = make_writer(out.path, max_bytes=cfg.max_shard_bytes, max_sequences=cfg.max_shard_sequences,
                         claim=out.claim)
    bar = tqdm(desc="compile", unit="rec", disable=not cfg.progress or engine is not None,  # engines have their own
               total=records or None)
    try:
        with out.jsonl("rejects.jsonl") as rejects, out.jsonl("harmful_audit.jsonl") as audit:

            def documents(batches: Iterator[list[Document | Reject]]) -> Iterator[Document]:
                """Each record counted once, its audit hits and (if rejected) its reject written as it comes,
                in input order: the packer only ever sees documents."""
                for items in batches:
                    bar.update(len(items))
                    for item in items:
                        stats.harmful_hits += len(item.audit)
                        for h in item.audit:
                            audit.write(h.to_json())
                        if isinstance(item, Reject):
                            stats.add_reject(item)
                            rejects.write(item.to_json())
                        else:
                            stats.add_document(item)
                            yield item

            if engine is None:
                stream = _encoded(cfg, spec, chunked(passes.second(), cfg.batch_size))
            else:
                stream = engine.encoded(limits, spec, cfg.batch_size)
            for seq in packer.run(documents(stream)):
                writer.write(seq)
                stats.add_sequence(seq)
            written = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
        MINED.clear()  # what mining kept for this run's labeller (up to ~25 MB) is of no use after it
    if stats.records_read != stats.documents + sum(stats.rejects.values()):
        raise AssertionError("record accounting is off: records read != documents written + rejected")
    templates_sha = out.write_templates(table)
    shards = [w.entry for w in written]
    if written:  # an Energon dataset needs a shard; a run that wrote no document still gets its manifest and exit 1
        out.write_nv_meta(written)  # from the layouts the writers recorded: no shard is read back
    manifest = _manifest(cfg, tokinfo, inputs, stats, table, templates_sha, shards)
    out.write_manifest(manifest)
    return CompileResult(manifest=manifest, stats=stats, templates=table)


def _image_byte_limit(cfg: CompileConfig) -> int:
    # One image larger than a shard may be would make a shard over --max-shard-bytes whatever the writer does.
    return min(cfg.max_image_bytes, cfg.max_shard_bytes)


def encode_spec(cfg: CompileConfig, template_shapes: frozenset[str]) -> EncodeSpec:
    """What each encoding worker needs from the config, given the mined template shapes."""
    return EncodeSpec(tokenizer=cfg.tokenizer, template=cfg.template, weights=cfg.weights, seq_len=cfg.seq_len,
                      image_tokens=cfg.image_tokens, overflow=cfg.overflow, image_root=cfg.image_root,
                      max_pixels=cfg.max_pixels, max_image_bytes=_image_byte_limit(cfg),
                      template_shapes=template_shapes, harmful=cfg.harmful, image_rule=cfg.rule)


# Where the output goes and what the run may use (processes, memory, a progress bar): none changes a byte.
_NOT_THE_JOB = ("out", "overwrite", "workers", "progress", "first_pass_memory")


def _run_key(cfg: CompileConfig, inputs: list[dict]) -> str:
    """What makes two runs the same job: everything that changes the output bytes, the sources' contents included
    (an edited source is another job, not a resume). Images are not hashed up front: a shard whose images changed
    is rewritten on resume, because its sha256 differs, and shards the run no longer writes are removed."""
    keep = {k: v for k, v in vars(cfg).items() if k not in _NOT_THE_JOB}
    keep["input_sha256"] = [i["sha256"] for i in inputs]
    return hashlib.sha256(repr(sorted((k, repr(v)) for k, v in keep.items())).encode()).hexdigest()


def _manifest(cfg: CompileConfig, tokinfo, inputs, stats: CompileStats, table, templates_sha, shards) -> Manifest:
    from litdata import __version__

    return Manifest(
        format_version=FORMAT_VERSION,
        tool={"name": "litdata", "version": __version__},
        config={
            "tokenizer": {"path": cfg.tokenizer, **tokinfo.to_json()},
            "pad_id": tokinfo.pad_id,
            "image_token_id": tokinfo.image_token_id,
            "template": cfg.template,
            "seq_len": cfg.seq_len,
            **_image_token_config(cfg.rule),
            "mode": cfg.mode,
            "weights": {c.label: w for c, w in sorted(cfg.weights.items())},
            "overflow": cfg.overflow,
            "image_root": cfg.image_root,
            "max_pixels": cfg.max_pixels,
            "max_image_bytes": _image_byte_limit(cfg),
            "seed": cfg.seed,
            "pack_window": cfg.pack_window,
            "packing": cfg.packing,
            "max_shard_bytes": cfg.max_shard_bytes,
            "max_shard_sequences": cfg.max_shard_sequences,
            "read_limits": dataclasses.asdict(cfg.read_limits) if cfg.read_limits is not None else None,
            "template_mining": {**table.settings_dict(), "table_sha256": table.sha256()},
            "harmful": cfg.harmful.to_dict() if cfg.harmful is not None else None,
        },
        inputs=tuple(inputs),
        counts=Counts(**stats.counts_json()),
        tokens=TokenTotals(**stats.tokens_json()),
        packing=Packing(seq_len=cfg.seq_len, sequences=stats.sequences,
                        efficiency=round(stats.packing_efficiency, 6)),
        templates=TemplatesEntry(file="templates.parquet", sha256=templates_sha, count=len(table.template_shapes())),
        shards=tuple(shards),
    )


def _image_token_config(rule) -> dict:
    """config.image_tokens (the count for fixed rules, else null so that a reader of format 1 cannot take one
    count for all), config.image_token_rule, and for processor rules the parameters the counts depend on."""
    out = {"image_tokens": rule.fixed, "image_token_rule": rule.spec}
    if rule.spec.startswith("processor:"):
        out["image_token_processor"] = rule.to_json()
    return out
