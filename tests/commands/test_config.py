"""The compile configuration (litdata/config.py): one home for every default, which the command line reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from litdata.cli import build_parser
from litdata.commands.compile import config_from_args, format_size, parse_size
from litdata.config import (
    CompileConfig,
    HarmfulSettings,
    MiningSettings,
    PackSettings,
    ReadLimits,
    default_of,
)
from litdata.demo import DEMO_SOURCES, DEMO_TOKENIZER_DIR


def cli_config(*options: str) -> CompileConfig:
    args = build_parser().parse_args(["compile", *map(str, DEMO_SOURCES), "--out", "out", *options])
    return config_from_args(args, sources=args.sources, tokenizer=str(DEMO_TOKENIZER_DIR), image_root=None)


def test_the_command_line_without_options_gives_the_config_defaults():
    # The bundled harmful lexicon is the one default the command line adds to the config's.
    got = cli_config("--no-default-harmful-lexicon")
    want = CompileConfig(sources=tuple(map(str, DEMO_SOURCES)), out=Path("out"), tokenizer=str(DEMO_TOKENIZER_DIR),
                         progress=got.progress)
    assert got == want


def test_the_command_line_adds_the_bundled_harmful_lexicon_by_default():
    harmful = cli_config().harmful
    assert harmful.active and len(harmful.lexicon_files) == 1
    assert dataclasses.replace(harmful, phrases=(), lexicon_files=()) == HarmfulSettings()


def test_a_config_always_holds_its_nested_settings():
    cfg = CompileConfig(sources=(), out=Path("out"), tokenizer="t")
    assert (cfg.read_limits, cfg.mining, cfg.harmful) == (ReadLimits(), MiningSettings(), HarmfulSettings())
    assert cfg.rule.fixed == cfg.image_tokens


def test_the_packing_defaults_are_the_packers():
    cfg = CompileConfig(sources=(), out=Path("out"), tokenizer="t")
    pack = PackSettings(seq_len=cfg.seq_len, image_tokens=cfg.image_tokens)
    assert (cfg.pack_window, cfg.seed, cfg.packing) == (pack.window, pack.seed, pack.algorithm)


def test_a_bad_mode_or_weight_fails_when_the_config_is_made():
    with pytest.raises(ValueError, match="unknown mode 'x'"):
        CompileConfig(sources=(), out=Path("out"), tokenizer="t", mode="x")
    from litdata.classes import TokenClass

    with pytest.raises(ValueError, match="harmful spans always have weight 0"):
        CompileConfig(sources=(), out=Path("out"), tokenizer="t", weight_overrides={TokenClass.HARMFUL: 1.0})


def test_default_of_reads_plain_and_factory_defaults_and_names_what_has_none():
    assert default_of(ReadLimits, "max_turns") == 512  # a slotted dataclass: no class attribute holds it
    assert default_of(CompileConfig, "harmful") == HarmfulSettings()
    with pytest.raises(TypeError, match="CompileConfig.sources has no default"):
        default_of(CompileConfig, "sources")
    with pytest.raises(AttributeError, match="no field 'nope'"):
        default_of(CompileConfig, "nope")


def test_help_texts_write_sizes_in_the_largest_binary_unit_that_divides_them():
    assert [format_size(n) for n in (256 * 2**20, 64 * 2**20, 3 * 2**40, 3072, 1536)] == [
        "256MiB", "64MiB", "3TiB", "3KiB", "1536B"]


@pytest.mark.parametrize("n", [256 * 2**20, 3 * 2**40, 1536, 1000, 1])
def test_a_size_in_a_help_text_reads_back_as_the_same_byte_count(n):
    assert parse_size(format_size(n)) == n
