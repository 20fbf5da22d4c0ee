"""Training steps under bf16 on the CPU run attention eagerly (radcore.device.training_attention): the same function
as sdpa, which stays the model's own for the frozen prefix and prediction."""

from __future__ import annotations

import pytest
import torch

from radcore.batches import encode
from radcore.config import TrainConfig
from radcore.device import attention, encoders, training_attention
from radcore.fit import build_model, step
from radcore.models import load_tokenizer
from conftest import FINDINGS, easy_corpus

CPU = torch.device("cpu")


def tiny(mode: str = "dp-lora", **values):
    config = TrainConfig(dataset="mimic-cxr", data_dir="x", model="tiny-bert", pretrained=False, mode=mode,
                         epsilon=1.0 if mode.startswith("dp-") else None, **values)
    model, spec = build_model(config, len(FINDINGS), CPU)
    return model, spec


def test_eager_only_under_bf16_on_the_cpu():
    assert training_attention("bf16", CPU) == "eager"
    assert training_attention("fp32", CPU) is None
    assert training_attention("bf16", torch.device("cuda")) is None


def test_eager_attention_computes_what_sdpa_computes_and_is_restored():
    model, spec = tiny("lora")
    model.eval()
    data = encode(easy_corpus(12, seed=0), load_tokenizer(spec), max_length=32)
    inputs = {name: data.inputs[name][:12] for name in data.fields}
    [encoder] = encoders(model)
    assert encoder.config._attn_implementation == "sdpa"
    with torch.no_grad():
        own = model(**inputs).logits
        with attention(model, "eager"):
            assert encoder.config._attn_implementation == "eager"
            eager = model(**inputs).logits
    assert encoder.config._attn_implementation == "sdpa"
    torch.testing.assert_close(eager, own, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("precision", "expected"), [("bf16", "eager"), ("fp32", "sdpa")])
def test_a_training_step_runs_the_attention_its_precision_asks_for(precision, expected):
    model, spec = tiny("lora")
    data = encode(easy_corpus(8, seed=1), load_tokenizer(spec), max_length=32)
    seen = []
    attentions = [m for m in model.modules() if type(m).__name__ == "BertSelfAttention"]
    for module in attentions:
        module.register_forward_pre_hook(lambda m, args: seen.append(m.config._attn_implementation))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    step(model, optimizer, data.take(range(8)), CPU, chunk=4, private=False, precision=precision)
    assert set(seen) == {expected} and len(seen) == 2 * len(attentions)  # two chunks
    assert encoders(model)[0].config._attn_implementation == "sdpa"  # prediction keeps sdpa
