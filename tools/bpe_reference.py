#!/usr/bin/env python3
"""A second, independent byte-level BPE encoder in Python (the `regex` module for the
pre-tokenizer, unicodedata for NFC), for tokenizer.json files that Hugging Face `tokenizers` did
not make in this repository's history (it is installed only on the GPU machine).

Makes the Llama-3-style and Qwen2-style test tokenizers of tests/data/bpe from the GPT-2-style
one that `tokenizers` trained (same vocabulary and merges; Llama-3's or Qwen2's regex, special
tokens, ignore_merges, NFC, the BOS template), and writes their reference encodings into
cases.json beside the `tokenizers`-made ones, marked with the encoder that made them:
    python3 tools/bpe_reference.py tests/data/bpe
"""
import json
import os
import sys
import unicodedata

import regex

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
FAMILIES = {
    "llama3-style": dict(pattern=LLAMA3_PATTERN, nfc=False, ignore_merges=True, bos="<|begin_of_text|>",
                         special=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                  "<|end_header_id|>", "<|eot_id|>"]),
    "qwen2-style": dict(pattern=QWEN2_PATTERN, nfc=True, ignore_merges=False, bos=None,
                        special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
}


def byte_alphabet():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


class Encoder:
    def __init__(self, file, family):
        self.vocab = file["model"]["vocab"]
        self.ranks = {tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m): r
                      for r, m in enumerate(file["model"]["merges"])}
        self.pattern = regex.compile(family["pattern"])
        self.family = family
        self.added = {t["content"]: t["id"] for t in file["added_tokens"]}
        self.chars = byte_alphabet()

    def bpe(self, word):
        if self.family["ignore_merges"] and word in self.vocab:
            return [self.vocab[word]]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), None), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            _, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.vocab[p] for p in parts]

    def words(self, text):
        if self.family["nfc"]:
            text = unicodedata.normalize("NFC", text)
        ids = []
        for word in self.pattern.findall(text):
            ids += self.bpe("".join(self.chars[b] for b in word.encode("utf-8")))
        return ids

    def encode(self, text, add_special):
        ids = [self.added[self.family["bos"]]] if add_special and self.family["bos"] else []
        names = sorted(self.added, key=len, reverse=True)
        done = 0
        while True:
            found = [(text.find(n, done), -len(n), n) for n in names if text.find(n, done) >= 0]
            if not found:
                break
            at, _, name = min(found)
            ids += self.words(text[done:at]) + [self.added[name]]
            done = at + len(name)
        return ids + self.words(text[done:])


def derive(gpt2, family):
    file = json.loads(json.dumps(gpt2))
    file["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": family["pattern"]}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    file["normalizer"] = {"type": "NFC"} if family["nfc"] else None
    file["model"]["ignore_merges"] = family["ignore_merges"]
    first = max(file["model"]["vocab"].values()) + 1
    file["added_tokens"] = [{"id": first + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": True} for i, c in enumerate(family["special"])]
    if family["bos"]:
        bos = first + family["special"].index(family["bos"])
        file["post_processor"] = {"type": "TemplateProcessing",
                                  "single": [{"SpecialToken": {"id": family["bos"], "type_id": 0}},
                                             {"Sequence": {"id": "A", "type_id": 0}}],
                                  "pair": [{"SpecialToken": {"id": family["bos"], "type_id": 0}},
                                           {"Sequence": {"id": "A", "type_id": 0}},
                                           {"SpecialToken": {"id": family["bos"], "type_id": 1}},
                                           {"Sequence": {"id": "B", "type_id": 1}}],
                                  "special_tokens": {family["bos"]: {"id": family["bos"], "ids": [bos],
                                                                     "tokens": [family["bos"]]}}}
    return file


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "gpt2.tokenizer.json"), encoding="utf-8") as f:
        gpt2 = json.load(f)
    with open(os.path.join(folder, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    texts = [c["text"] for c in cases["tokenizers"]["gpt2"]["encode"]]
    for name, family in FAMILIES.items():
        file = derive(gpt2, family)
        with open(os.path.join(folder, f"{name}.tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(file, f, ensure_ascii=False)
        encoder = Encoder(file, family)
        cases["tokenizers"][name] = {
            "made_by": "tools/bpe_reference.py (Python regex module)",
            "vocab_size": max(t["id"] for t in file["added_tokens"]) + 1,
            "encode": [{"text": t, "ids": encoder.encode(t, False), "ids_with_special": encoder.encode(t, True)}
                       for t in texts]}
    cases["tokenizers"]["gpt2"]["made_by"] = f"tokenizers {cases['tokenizers_version']}"
    with open(os.path.join(folder, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
