"""Generation with a causal language model from a local transformers directory (CPU or GPU).

The directory is anything ``AutoModelForCausalLM.from_pretrained`` reads (weights, config, tokenizer);
nothing is downloaded (``local_files_only``). Tasks are generated in batches with left padding and
greedy decoding, so a run is reproducible on one machine. The tokenizer's chat template is used when
it has one; otherwise the messages are laid out as ``role: content`` blocks. The answer goes through
the same JSON-schema validation as the HTTP path: a model that writes anything else produces failures,
not rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from transforms.enrichment.prompts import PROMPTS, OutputError, parse_output
from transforms.enrichment.types import (
    GenerationOutcome,
    GenerationTask,
    GeneratorKind,
    content_hash,
    directory_fingerprint,
)


@dataclass(frozen=True)
class LocalTransformersConfig:
    """Settings of the local-model generator.

    Attributes:
        model_dir: A local directory saved with ``save_pretrained`` (model and tokenizer).
        model_name: Name stored on every row (defaults to the directory's name).
        device: ``cpu``, ``cuda``, ``cuda:1``, ...
        batch_size: Prompts per ``generate`` call.
        max_new_tokens: Completion limit.
        max_input_tokens: Prompts longer than this keep their last tokens (the instructions and facts
            come before the reviews, and the answer cue is at the very end).
    """

    model_dir: str
    model_name: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    max_new_tokens: int = 256
    max_input_tokens: int = 2048

    kind: ClassVar[GeneratorKind] = GeneratorKind.LOCAL_TRANSFORMERS

    @property
    def stored_model(self) -> str:
        """The model name written on rows (and part of the cache key)."""
        return self.model_name or Path(self.model_dir).name

    @property
    def fingerprint(self) -> str:
        """Kind, the model directory's content and the length limits (part of the cache key)."""
        return f"{self.kind.value}:" + content_hash(
            {
                "weights": directory_fingerprint(self.model_dir),
                "max_new_tokens": self.max_new_tokens,
                "max_input_tokens": self.max_input_tokens,
            }
        )[:24]

    def build(self) -> LocalTransformersGenerator:
        return LocalTransformersGenerator(self)


class LocalTransformersGenerator:
    """The local-model implementation of :class:`transforms.enrichment.types.Generator`."""

    kind = GeneratorKind.LOCAL_TRANSFORMERS

    def __init__(self, config: LocalTransformersConfig) -> None:
        # Imported here: torch and transformers take seconds to import and nothing may start at import time.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(config.model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"local model directory {path} does not exist")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.config = config
        self.model = config.stored_model
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        lm: Any = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        self.lm = lm.to(config.device)
        self.lm.eval()

    def _prompt(self, task: GenerationTask) -> str:
        messages = PROMPTS[task.entity].messages(task.payload)
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant: "

    def generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        outcomes: list[GenerationOutcome] = []
        for start in range(0, len(tasks), self.config.batch_size):
            outcomes.extend(self._batch(tasks[start : start + self.config.batch_size]))
        return outcomes

    def _batch(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        torch = self._torch
        limit = min(self.config.max_input_tokens, _context_length(self.lm) - self.config.max_new_tokens)
        enc = self.tokenizer(
            [self._prompt(t) for t in tasks], return_tensors="pt", padding=True, truncation=True, max_length=limit
        ).to(self.config.device)
        with torch.inference_mode():
            out = self.lm.generate(
                **enc,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        width = enc["input_ids"].shape[1]
        outcomes = []
        for row, task in enumerate(tasks):
            new = out[row, width:]
            new = new[new != self.tokenizer.pad_token_id]
            text = str(self.tokenizer.decode(new, skip_special_tokens=True))
            usage: dict[str, Any] = {
                "prompt_tokens": int(enc["attention_mask"][row].sum()),
                "completion_tokens": int(new.numel()),
            }
            try:
                outcomes.append(GenerationOutcome(task.entity_id, parse_output(task.entity, text), **usage))
            except OutputError as exc:
                outcomes.append(GenerationOutcome(task.entity_id, None, exc.kind, str(exc), **usage))
        return outcomes

    def close(self) -> None:
        del self.lm


def _context_length(model: Any) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 4096
