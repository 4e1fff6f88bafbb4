"""The local transformers path, exercised with a tiny randomly initialised GPT-2 saved to a temp dir.

What this proves: a model directory written by ``save_pretrained`` loads offline, prompts are
rendered, truncated to the model's context and generated in batches with greedy decoding
(reproducibly), completions are decoded without the prompt, token usage is counted, and, because a
random model writes gibberish, every answer fails schema validation and is recorded as a failure
rather than becoming a description. It does not prove that a real instruction-tuned model writes
good descriptions: no generative weights are available offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.transforms.enrichment.data import CUTOFF, items, reviews
from transforms.enrichment.inputs import build_item_tasks
from transforms.enrichment.local_transformers import LocalTransformersConfig
from transforms.enrichment.types import FailureKind, GeneratorKind

WORDS = ["the", "a", "tent", "pan", "stove", "good", "bad", "{", "}", '"', ":", ",", "description", "highlights", "item", "user", "review", "rating"]


def _tiny_model_dir(root: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[EOS]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=256, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=2, eos_token_id=2, pad_token_id=0)
    model = GPT2LMHeadModel(config)
    out = root / "tiny-gpt2"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_model_dir(tmp_path_factory.mktemp("models"))


def test_local_model_generates_in_batches_and_off_schema_answers_are_failures(tiny_model: Path) -> None:
    tasks = build_item_tasks(items(), reviews(), CUTOFF)  # 4 tasks, batches of 3 and 1
    config = LocalTransformersConfig(str(tiny_model), batch_size=3, max_new_tokens=12, max_input_tokens=200)
    gen = config.build()
    assert gen.kind is GeneratorKind.LOCAL_TRANSFORMERS and gen.model == "tiny-gpt2"
    first = gen.generate(tasks)
    assert [o.entity_id for o in first] == ["i1", "i2", "i3", "i4"]
    assert all(not o.ok and o.failure_kind in {FailureKind.INVALID_OUTPUT, FailureKind.REFUSAL} for o in first)
    assert all(0 < o.prompt_tokens <= 200 and 0 < o.completion_tokens <= 12 for o in first)
    assert first == gen.generate(tasks)  # greedy decoding: the same gibberish twice


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalTransformersConfig(str(tmp_path / "nope")).build()
