"""Train the bundled byte-level BPE tokenizer and save it in Hugging Face format (loads with AutoTokenizer, offline).

Training uses one thread: tokenizers' parallel merge counting can break ties differently between runs, and the
bundled files must be byte-identical on every rebuild. Set RAYON_NUM_THREADS=1 before tokenizers is imported
(scripts/make_demo.py does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = (
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<image>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
VOCAB_SIZE = 8192

# ChatML; a message's content may be a string or a list of {"type": "text"|"image"} parts.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- elif part['type'] == 'image' -%}{{- '<image>' -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
# Markup of the built-in chat templates, so that role words and separators get compact tokens.
MARKUP_TEXTS = (
    (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: ASSISTANT:"
    ),
    "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n",
    (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
        "\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>"
    ),
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = VOCAB_SIZE):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # No post-processor: the compiler adds BOS itself, through the chat template.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(MARKUP_TEXTS) + list(texts), trainer)
    return tok


def save_hf(tok, out_dir: Path) -> list[Path]:
    """tokenizer.json plus hand-written configs (no version-stamped fields, so rebuilds are byte-identical)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_path = out_dir / "tokenizer.json"
    tok.save(str(tok_path), pretty=True)
    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    extra = [t for t in SPECIAL_TOKENS if t not in ("<unk>", "<s>", "</s>", "<pad>")]
    roles = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    config = {
        "added_tokens_decoder": added,
        **roles,
        "additional_special_tokens": extra,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    config_path = out_dir / "tokenizer_config.json"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    map_path = out_dir / "special_tokens_map.json"
    map_path.write_text(json.dumps({**roles, "additional_special_tokens": extra}, indent=2) + "\n", encoding="utf-8")
    return [tok_path, config_path, map_path]
