#!/usr/bin/env python3
"""Byte-level BPE tokenizers and their reference encodings from Hugging Face `tokenizers`, for the
tests of Loom's tokenizer.json reader (core/tokenizer/byte_level_bpe.*).

Trains three small byte-level BPE tokenizers on Loom's own docs (so nothing is downloaded), each
set up as a real family is:
  llama3  Llama-3's pre-tokenizer regex (digits in runs of 1-3), ignore_merges, <|begin_of_text|>
          prepended by the post-processor, the chat template's special tokens after the vocabulary;
  qwen2   Qwen2's regex (single digits), an NFC normalizer, ChatML's <|im_start|> / <|im_end|>;
  gpt2    the ByteLevel pre-tokenizer's own regex (use_regex = true), no special tokens.
Then encodes a list of hard texts (contractions, digit runs, whitespace runs, CRLF, accents in
both normal forms, CJK, emoji with joiners, special tokens inside text, random code points) with
and without special tokens, and decodes random id sequences (byte tokens that split characters,
so invalid UTF-8 shows how it is replaced).

Runs where `tokenizers` is installed (the GPU machine):
    python3 tools/device/make_bpe_references.py OUT_DIR
and OUT_DIR holds <name>.tokenizer.json and cases.json, committed under tests/data/bpe/.
"""
import glob
import json
import os
import random
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
QWEN2_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 1500

MULTILINGUAL = [
    "Größere Äpfel schmecken süßer, sagte die Bäckerin.",
    "日本語のテキストを正しく分割できるかを確かめる。東京は大きい。",
    "中文的分词也要正确，数字一二三和123都一样。",
    "Привет, мир! Как дела? Всё хорошо.",
    "مرحبا بالعالم، هذا اختبار.",
    "Emoji: 🎉🎉 👍🏽 👨‍👩‍👧 ❤️ and ☕.",
    "Café, naïve, coöperate, résumé — “quotes” and ‘single’ ones…",
]

CASES = [
    "", " ", "  ", "a", "Hello world", " Hello world", "Hello  world", "Hello world ", "Hello world  ",
    "I'm sure they'RE here; we'll see. You've DONE it, I'd say. It's John's.",
    "12345678 3.14159 1,000,000 2024-12-07 x1y22z333w4444",
    "tabs\t\tand\nnewlines\n\n\nand CRLF\r\nlines\r\n\r\n",
    "   leading spaces", "trailing spaces   ", "\n\nleading newlines", " \n \n mixed",
    "code: def f(x):\n    return x**2  # comment\n\tpass\n",
    "a\u00a0b\u2009c\u3000d",
    "e\u0301 versus \u00e9, A\u030a versus \u00c5",
    "<|eot_id|> inside <|start_header_id|>user<|end_header_id|> text",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "<|not_special|> <| eot_id |>",
    "!!!??? ... --- ___ *** ###",
    "URL: https://example.com/a/b?c=d&e=f#g and e-mail a.b@c.de",
] + MULTILINGUAL


def corpus(root):
    texts = []
    for path in sorted(glob.glob(os.path.join(root, "docs", "*.md")) + [os.path.join(root, "README.md")]):
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    return texts + MULTILINGUAL * 20


def random_texts(rng, count):
    ranges = [(0x20, 0x7E), (0x0A, 0x0D), (0xA0, 0x17F), (0x300, 0x36F), (0x400, 0x4FF), (0x4E00, 0x4FFF),
              (0x1F300, 0x1F64F), (0x2000, 0x206F), (0x30, 0x39)]
    out = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(1, 40)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


def build(name, texts):
    tok = Tokenizer(models.BPE(ignore_merges=(name == "llama3")))
    if name == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        pattern = LLAMA3_PATTERN if name == "llama3" else QWEN2_PATTERN
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    if name == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    special = {"llama3": LLAMA3_SPECIAL, "qwen2": QWEN2_SPECIAL, "gpt2": []}[name]
    tok.add_special_tokens(special)
    if name == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def main():
    out_dir = sys.argv[1]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(20261207)
    texts = CASES + random_texts(rng, 60)
    result = {"tokenizers_version": tokenizers.__version__, "tokenizers": {}}
    for name in ["llama3", "qwen2", "gpt2"]:
        tok = build(name, corpus(root))
        tok.save(os.path.join(out_dir, f"{name}.tokenizer.json"))
        vocab = tok.get_vocab_size()
        encodings = []
        for text in texts:
            plain = tok.encode(text, add_special_tokens=False).ids
            with_special = tok.encode(text, add_special_tokens=True).ids
            encodings.append({"text": text, "ids": plain, "ids_with_special": with_special,
                              "decoded": tok.decode(plain, skip_special_tokens=True)})
        decodings = []
        for _ in range(60):
            ids = [rng.randrange(vocab) for _ in range(rng.randint(1, 12))]
            decodings.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=True),
                              "text_with_special": tok.decode(ids, skip_special_tokens=False)})
        result["tokenizers"][name] = {"vocab_size": vocab, "encode": encodings, "decode": decodings}
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    print(f"tokenizers {tokenizers.__version__}: {len(texts)} texts x 3 tokenizers -> {out_dir}")


if __name__ == "__main__":
    main()
