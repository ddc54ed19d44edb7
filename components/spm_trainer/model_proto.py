"""SentencePiece model bytes: a wire-format edit of the serialized ModelProto, and the
sentencepiece processor helpers (vocabulary, tokenise, detokenise) SpmTrainer uses.

sentencepiece only (no TFX, Beam or TensorFlow). The edit exists because sentencepiece_model_pb2
needs a newer protobuf than the pinned stack's; the tokeniser ignores trainer_spec, so removing a
field from it changes nothing but the bytes. See docs/spm.md.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(buf: bytes):
    """(field number, wire type, raw bytes of the whole field, payload) of a serialized proto."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            payload = None
        elif wire == 1:
            pos += 8
            payload = None
        elif wire == 2:
            length, pos = _varint(buf, pos)
            payload = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            payload = None
        else:
            raise ValueError(f"SpmTrainer: unexpected wire type {wire} in the model proto")
        yield number, wire, buf[start:pos], payload


_TRAINER_SPEC_FIELD = 2  # ModelProto.trainer_spec (sentencepiece_model.proto)


def drop_trainer_spec_string(model: bytes, value: str) -> bytes:
    """The model with every string field of its trainer_spec equal to `value` removed (train_spm
    drops its temporary seed file's path this way, so the model bytes do not depend on it)."""
    target = value.encode("utf-8")
    out = bytearray()
    for number, wire, raw, payload in _fields(model):
        if number == _TRAINER_SPEC_FIELD and wire == 2:
            spec = b"".join(r for _, w, r, p in _fields(payload) if not (w == 2 and p == target))
            raw = raw[:len(_encode_varint((number << 3) | wire))] + _encode_varint(len(spec)) + spec
        out += raw
    return bytes(out)


def processor(model_bytes: bytes):
    """A sentencepiece.SentencePieceProcessor over the model bytes."""
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel
    return spm.SentencePieceProcessor(model_proto=model_bytes)


def vocab_text(model_bytes: bytes) -> str:
    """The .vocab file sentencepiece writes: `piece <TAB> score` per id."""
    sp = processor(model_bytes)
    return "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n"
                   for i in range(sp.get_piece_size()))


def vocab_pieces(model_bytes: bytes) -> List[str]:
    sp = processor(model_bytes)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def tokenize_sid_sentences(model_bytes: bytes, sentences: Sequence[str]) -> List[List[int]]:
    """Piece ids of each sentence with the sentencepiece Python API (models/sid/tf_ops.tf_tokenize
    gives the same ids with tensorflow_text, as Transform does)."""
    sp = processor(model_bytes)
    return [list(ids) for ids in sp.encode(list(sentences))]


def detokenize(model_bytes: bytes, ids: Sequence[Sequence[int]]) -> List[str]:
    sp = processor(model_bytes)
    return [sp.decode(list(x)) for x in ids]
