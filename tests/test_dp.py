"""DP-LoRA trains what it should: the opacus#820 trap, ALBERT's shared layers, learning, and the budget."""

import pytest
import torch

from conftest import easy_corpus
from radcore.batches import Encoded, as_inputs, encode, length_grouped_loader
from radcore.evaluate import predict, score
from radcore.models import LoraSettings, load_tokenizer, model_spec
from radcore.config import TrainConfig
from radcore.dp import make_private
from radcore.fit import batches, build_model, fit, masked_bce, step
from radcore.privacy import plan_privacy

CPU = torch.device("cpu")


def fit_corpus(config, corpus):
    """Build the config's model and train it on ``corpus``: (model, privacy, timing)."""
    model, _ = build_model(config, len(corpus.label_names), CPU)
    return fit(config, model, encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length),
               CPU)


def _config(**overrides):
    base = dict(dataset="mimic-cxr", data_dir="-", model="tiny-bert", mode="dp-lora", epsilon=1.0,
                pretrained=False, progress=False, max_length=32, batch_size=16, epochs=1)
    return TrainConfig(**(base | overrides))


def _private_model(config, n=64):
    corpus = easy_corpus(n, 0)
    torch.manual_seed(0)
    model, _ = build_model(config, len(corpus.label_names), CPU)
    data = encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    plan = plan_privacy(epsilon=1.0, n_train=n, batch_size=config.batch, epochs=1, max_grad_norm=1.0)
    return (*make_private(model, optimizer, loader, plan, seed=0), data)


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-albert"])
def test_one_dp_step_moves_lora_and_head_but_not_the_frozen_base(model):
    gsm, optimizer, loader, _engine, _data = _private_model(_config(model=model))
    before = {n: p.detach().clone() for n, p in gsm.named_parameters()}
    *inputs, labels, mask = next(iter(loader))
    masked_bce(gsm(**as_inputs(_data.fields, inputs, CPU)).logits, labels, mask).backward()
    optimizer.step()
    changed = {n for n, p in gsm.named_parameters() if not torch.equal(before[n], p.detach())}
    trainable = {n for n, p in gsm.named_parameters() if p.requires_grad}
    assert changed == trainable  # every LoRA matrix and the head moved ...
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    assert any("classifier" in n for n in changed)
    assert not any("lora" in n or "modules_to_save" in n for n in set(before) - trainable)  # ... nothing else


def _no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("private", [True, False])
def test_a_step_in_length_sorted_chunks_is_the_same_step(private):
    """Chunking a batch (each chunk trimmed to its own longest report) changes the cost, not the update:
    under DP the clipped per-sample gradients of every chunk are summed and noised once."""
    config = _config(mode="dp-lora" if private else "lora", epsilon=1.0 if private else None)
    updated = []
    for chunk in (16, 5):
        if private:
            model, optimizer, _loader, _engine, data = _private_model(config)
        else:
            torch.manual_seed(0)
            corpus = easy_corpus(64, 0)
            model, _ = build_model(config, len(corpus.label_names), CPU)
            data = encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        _no_dropout(model)
        batch = data.take(range(16))
        assert len(set(batch.lengths().tolist())) > 3  # reports of several lengths
        step(model, optimizer, batch, CPU, chunk=chunk, private=private, precision="fp32")
        updated.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    whole, chunked = updated
    assert whole.keys() == chunked.keys()
    for name in whole:
        torch.testing.assert_close(chunked[name], whole[name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_dp_step_gathers_its_reports_chunk_by_chunk(monkeypatch):
    """Opacus' Poisson loader samples positions, not rows: a logical batch of about 64 in chunks of 16 never holds
    more than 16 reports' inputs at once (cached features of a large DP batch would otherwise sit in memory whole)."""
    config = _config(batch_size=64)
    corpus = easy_corpus(128, 0)
    torch.manual_seed(0)
    model, _ = build_model(config, len(corpus.label_names), CPU)
    data = encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    plan = plan_privacy(epsilon=1.0, n_train=len(data), batch_size=64, epochs=1, max_grad_norm=1.0)
    model, optimizer, loader, _engine = make_private(model, optimizer, length_grouped_loader(data, 64, seed=0), plan,
                                                     seed=0)
    gathered, original = [], Encoded.batch
    monkeypatch.setattr(Encoded, "batch", lambda self, idx: gathered.append(len(idx)) or original(self, idx))
    batch = next(b for b in batches(loader, data) if len(b) > 32)
    step(model, optimizer, batch, CPU, chunk=16, private=True, precision="fp32")
    assert sum(gathered) == len(batch) and max(gathered) <= 16


def test_empty_poisson_batches_are_steps_of_noise_only(monkeypatch):
    """With an expected batch of 1 in 32 reports about a third of the Poisson batches are empty: each is still a
    step (noise alone) that the loop takes and the accountant counts."""
    import radcore.fit as fit_module

    config = _config(batch_size=1, epochs=2)
    corpus = easy_corpus(32, 0)
    model, _ = build_model(config, len(corpus.label_names), CPU)
    data = encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)
    sizes = []
    monkeypatch.setattr(fit_module, "step", lambda model, optimizer, batch, *a, **k: sizes.append(len(batch))
                        or step(model, optimizer, batch, *a, **k))
    _model, privacy, timing = fit(config, model, data, CPU)
    assert timing["train_steps"] == len(sizes) == privacy["steps"] == 64
    assert 0 in sizes and sum(sizes) > 0
    gsm, optimizer, _loader, _engine, data = _private_model(_config())
    before = {n: p.detach().clone() for n, p in gsm.named_parameters() if p.requires_grad}
    step(gsm, optimizer, data.take([]), CPU, chunk=16, private=True, precision="fp32")
    assert all(not torch.equal(before[n], p.detach()) for n, p in gsm.named_parameters() if p.requires_grad)


def test_albert_shared_layer_per_sample_gradients_are_exact():
    """ALBERT calls one layer 2x: Opacus' hooks must sum both uses per sample (checked against autograd)."""
    config = _config(model="tiny-albert", lora=LoraSettings(dropout=0.0))
    gsm, _optimizer, _loader, _engine, data = _private_model(config)
    for module in gsm.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    *inputs, labels, mask = data.batch(range(3))
    input_ids, attention_mask = as_inputs(data.fields, inputs, CPU).values()
    masked_bce(gsm(input_ids=input_ids, attention_mask=attention_mask).logits, labels, mask).backward()
    name, param = next((n, p) for n, p in gsm.named_parameters() if "lora_B" in n and "query" in n)
    per_sample = param.grad_sample.detach().clone()
    reference, _ = build_model(config, gsm._module.num_labels, CPU)  # same weights, no Opacus hooks
    reference.load_state_dict(gsm._module.state_dict())
    for module in reference.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    ref_param = dict(reference.named_parameters())[name.removeprefix("_module.")]
    for i in range(3):
        reference.zero_grad()
        sl = slice(i, i + 1)
        masked_bce(reference(input_ids=input_ids[sl], attention_mask=attention_mask[sl]).logits,
                   labels[sl], mask[sl]).backward()
        assert torch.allclose(per_sample[i], ref_param.grad, atol=1e-6), name
    assert per_sample.abs().sum() > 0


@pytest.mark.parametrize("epsilon", [0.01, 0.1, 1.0, 10.0])
def test_every_epsilon_runs_and_spends_at_most_its_target(epsilon):
    corpus = easy_corpus(96, 0)
    config = _config(epsilon=epsilon, epochs=2)
    _model, privacy, timing = fit_corpus(config, corpus)
    assert privacy["epsilon_spent"] <= epsilon
    assert privacy["steps"] == privacy["steps_planned"] == timing["train_steps"]
    assert privacy["delta"] < 1 / len(corpus)


def _learned_f1(mode, epochs):
    train, test = easy_corpus(960, 0), easy_corpus(300, 1, split="test")
    config = _config(model="minilm", pretrained=True, mode=mode, epsilon=10.0 if mode == "dp-lora" else None,
                     epochs=epochs, batch_size=None)  # each mode's default batch size and step
    tokenizer = load_tokenizer(model_spec("minilm"))
    torch.manual_seed(0)
    model, *_ = fit_corpus(config, train)
    return score(test, predict(model, encode(test, tokenizer, max_length=32), CPU))["weighted_f1"]


@pytest.fixture(scope="module")
def learned():
    # DP gets twice the epochs: its large batches take fewer steps. LoRA "at least as well" with less.
    return {"lora": _learned_f1("lora", epochs=3), "dp-lora": _learned_f1("dp-lora", epochs=6)}


def test_dp_lora_learns_far_above_the_trivial_baselines(learned):
    # all-negative scores 0; all-positive scores about 2p/(1+p) = 0.52 at p = 0.35
    assert learned["dp-lora"] > 0.75


def test_non_private_lora_does_at_least_as_well(learned):
    assert learned["lora"] >= learned["dp-lora"] - 0.02


@pytest.mark.parametrize("overrides", [{"optimizer": "adambc"}, {"ema": 0.5}, {"optimizer": "sgd"}])
def test_optimizer_levers_keep_the_budget_and_train_the_adapter_only(overrides):
    """DP-AdamBC and the weight EMA change how the DP gradients are used, never which gradients are released:
    the run spends at most its target, and the frozen base stays as it was."""
    config = _config(epochs=2, **overrides)
    corpus = easy_corpus(96, 0)
    torch.manual_seed(0)
    model, _ = build_model(config, len(corpus.label_names), CPU)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)
    model, privacy, timing = fit(config, model, data, CPU)
    assert privacy["epsilon_spent"] <= config.epsilon and privacy["steps"] == timing["train_steps"]
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved and all("lora_" in n or "classifier" in n for n in moved), sorted(moved)[:5]
