#!/usr/bin/env python3
"""Writes a llama2.c checkpoint keeping only its first N decoder layers: a cheaper model of the
same vocabulary whose next-token guesses often agree with the whole model's, which makes a real
(if crude) draft model for speculative decoding (docs/speculative-decoding.md).

    python3 tools/truncate_llama2c.py IN.bin N OUT.bin
"""
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    src, keep, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = open(src, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("7i", data[:28])
    if not 1 <= keep <= layers:
        sys.exit(f"{src} has {layers} layers: keep 1 to {layers}")
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // heads
    kv_dim = kv_heads * head
    # (elements per layer, or None for a whole-model array) in the file's order.
    arrays = [("token_embedding", vocab * dim, None), ("rms_att", dim, True), ("wq", dim * dim, True),
              ("wk", dim * kv_dim, True), ("wv", dim * kv_dim, True), ("wo", dim * dim, True),
              ("rms_ffn", dim, True), ("w1", hidden * dim, True), ("w2", dim * hidden, True),
              ("w3", hidden * dim, True), ("rms_final", dim, None), ("freq_cis", seq_len * head, None)]
    if not shared:
        arrays.append(("wcls", vocab * dim, None))
    out = [struct.pack("7i", dim, hidden, keep, heads, kv_heads, vocab if shared else -vocab, seq_len)]
    at = 28
    for name, n, per_layer in arrays:
        size = 4 * n * (layers if per_layer else 1)
        if at + size > len(data):
            sys.exit(f"{src} ends inside {name}: not a llama2.c checkpoint of the header's shape")
        out.append(data[at:at + 4 * n * keep] if per_layer else data[at:at + size])
        at += size
    if at != len(data):
        sys.exit(f"{src} has {len(data) - at} bytes after the weights its header describes")
    open(dst, "wb").write(b"".join(out))
    print(f"{dst}: {keep} of {layers} layers, {sum(map(len, out))} bytes")


main()
