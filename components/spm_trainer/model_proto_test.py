"""The wire-format edit of a serialized ModelProto (the processor helpers run in core_test.py)."""
import pytest

from components.spm_trainer import model_proto


def _string_field(number: int, value: bytes) -> bytes:
    return model_proto._encode_varint((number << 3) | 2) + model_proto._encode_varint(
        len(value)) + value


def test_varint_round_trip():
    for value in (0, 1, 127, 128, 300, 2 ** 35 + 7):
        raw = model_proto._encode_varint(value)
        assert model_proto._varint(raw + b"\xff", 0) == (value, len(raw))


def test_drop_trainer_spec_string_keeps_everything_else():
    path = "/tmp/spm_trainer_x/seeds.tsv"
    spec = (_string_field(1, b"input.txt") + _string_field(40, path.encode())
            + model_proto._encode_varint(3 << 3) + model_proto._encode_varint(8000))
    pieces = _string_field(1, _string_field(1, b"<unk>"))
    model = pieces + _string_field(2, spec) + _string_field(3, b"normalizer")
    got = model_proto.drop_trainer_spec_string(model, path)
    want_spec = (_string_field(1, b"input.txt")
                 + model_proto._encode_varint(3 << 3) + model_proto._encode_varint(8000))
    assert got == pieces + _string_field(2, want_spec) + _string_field(3, b"normalizer")
    assert model_proto.drop_trainer_spec_string(got, path) == got  # nothing left to drop


def test_unknown_wire_type_rejected():
    with pytest.raises(ValueError, match="wire type"):
        list(model_proto._fields(model_proto._encode_varint((1 << 3) | 3)))
