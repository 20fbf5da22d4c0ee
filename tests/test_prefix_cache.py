"""The cached frozen prefix (adapt_layers) is the same model: logits, a DP step and opacus#820's checks match the
uncached path; the cache is keyed by content, shared, safe under concurrency and never half-read."""

import threading

import pytest
import torch

from conftest import easy_corpus
from radcore import prefix_cache
from radcore.batches import as_inputs, encode
from radcore.config import TrainConfig
from radcore.dp import make_private
from radcore.evaluate import predict
from radcore.fit import build_model, masked_bce, step
from radcore.models import load_tokenizer, model_spec
from radcore.privacy import plan_privacy

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(prefix_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _config(**overrides):
    base = dict(dataset="mimic-cxr", data_dir="-", model="tiny-bert", mode="lora", pretrained=False,
                progress=False, max_length=32, batch_size=16, epochs=1, precision="fp32", adapt_layers=1)
    return TrainConfig(**(base | overrides))


def _model_and_data(config, n=48):
    corpus = easy_corpus(n, 0)
    torch.manual_seed(0)
    model, _ = build_model(config, len(corpus.label_names), CPU)
    for name, p in model.named_parameters():  # LoRA B starts at 0: give the adapter a real effect
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    return model, encode(corpus, load_tokenizer(model_spec(config.model)), max_length=config.max_length)


def _no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("model, mode, adapt", [("tiny-bert", "lora", 1), ("tiny-bert", "full", 1),
                                                ("tiny-bert", "head", 0), ("tiny-albert", "head", 0)])
def test_cached_logits_equal_the_uncached_model(model, mode, adapt):
    config = _config(model=model, mode=mode, adapt_layers=adapt)
    net, tokens = _model_and_data(config)
    cached, record = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    assert record["hit"] is False and record["kind"] == ("pooled" if adapt == 0 else "states")
    torch.testing.assert_close(torch.as_tensor(predict(net, cached, CPU)), torch.as_tensor(predict(net, tokens, CPU)),
                               rtol=1e-5, atol=1e-6)


def test_the_split_forward_equals_hugging_faces_own_encoder_forward():
    """Running the prefix, then the layers above it, is the HF encoder's forward (with the adapter in its top
    layer): the split changes which layers train, not the function."""
    net, tokens = _model_and_data(_config(adapt_layers=1))
    net.eval()
    classifier = net.base_model.model
    inputs = as_inputs(tokens.fields, tokens.batch(range(8))[:2], CPU)
    with torch.no_grad():
        states = classifier.encoder(**inputs).last_hidden_state
        weights = inputs["attention_mask"].unsqueeze(-1).float()
        reference = classifier.classifier((states * weights).sum(1) / weights.sum(1))
        torch.testing.assert_close(net(**inputs).logits, reference, rtol=1e-5, atol=1e-6)
    assert any("lora_B" in n and ".layer.1." in n for n, _ in net.named_parameters())
    assert not any("lora" in n and ".layer.0." in n for n, _ in net.named_parameters())


def _dp_step(config, *, cached: bool):
    net, tokens = _model_and_data(config)
    data = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)[0] if cached else tokens
    _no_dropout(net)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    plan = plan_privacy(epsilon=1.0, n_train=len(data), batch_size=16, epochs=1, max_grad_norm=1.0)
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    gsm, optimizer, _loader, _engine = make_private(net, optimizer, loader, plan, seed=3)
    before = {n: p.detach().clone() for n, p in gsm.named_parameters()}
    step(gsm, optimizer, data.take(range(16)), CPU, chunk=5, private=True, precision="fp32")
    return gsm, before


@pytest.mark.parametrize("mode, adapt", [("dp-lora", 1), ("dp-full", 1), ("dp-head", 0)])
def test_one_dp_step_is_the_same_update_on_both_paths(mode, adapt):
    config = _config(mode=mode, epsilon=1.0, adapt_layers=adapt)
    (plain, _), (cached, _) = _dp_step(config, cached=False), _dp_step(config, cached=True)
    plain_params, cached_params = dict(plain.named_parameters()), dict(cached.named_parameters())
    assert plain_params.keys() == cached_params.keys()
    for name, p in plain_params.items():
        torch.testing.assert_close(cached_params[name], p, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("mode, adapt", [("dp-lora", 1), ("dp-head", 0)])
def test_opacus_820_a_dp_step_on_the_cached_path_moves_the_adapter_and_head_only(mode, adapt):
    gsm, before = _dp_step(_config(mode=mode, epsilon=1.0, adapt_layers=adapt), cached=True)
    changed = {n for n, p in gsm.named_parameters() if not torch.equal(before[n], p.detach())}
    trainable = {n for n, p in gsm.named_parameters() if p.requires_grad}
    assert changed == trainable and any("classifier" in n for n in changed)
    if mode == "dp-lora":
        assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
        assert all(".layer.1." in n or "classifier" in n for n in changed)  # nothing in the frozen prefix


def test_a_pooled_entry_is_built_on_the_states_a_top_layer_run_trains_on(cache_dir):
    """Head modes pay only for the top layer when a top-layer run has cached the states below it; the pooled
    vectors are the full encoder's, and made the same way when no such run came first."""
    lora, tokens = _model_and_data(_config(adapt_layers=1))
    _, states = prefix_cache.prefix_features(lora, tokens, precision="fp32", device=CPU)
    head, _ = _model_and_data(_config(mode="head", adapt_layers=0))
    pooled, record = prefix_cache.prefix_features(head, tokens, precision="fp32", device=CPU)
    assert record["from_states"] == {"key": states["key"], "hit": True, "layers": 1}
    assert len(list((cache_dir / "prefix").iterdir())) == 2
    inputs = as_inputs(tokens.fields, tokens.batch(range(len(tokens)))[:2], CPU)
    with torch.no_grad():
        full = head.features(inputs["input_ids"], inputs["attention_mask"])  # the whole encoder, then pooling
    torch.testing.assert_close(pooled.inputs["features"], full, rtol=1e-5, atol=1e-6)
    again = prefix_cache.prefix_features(head, tokens, precision="fp32", device=CPU)[1]
    assert again["hit"] and "from_states" not in again  # a pooled hit reads nothing below it


def test_a_pooled_entry_alone_makes_its_states_entry_and_albert_has_none(cache_dir):
    head, tokens = _model_and_data(_config(mode="head", adapt_layers=0))
    record = prefix_cache.prefix_features(head, tokens, precision="fp32", device=CPU)[1]
    assert record["from_states"]["hit"] is False and len(list((cache_dir / "prefix").iterdir())) == 2
    albert, tokens = _model_and_data(_config(model="tiny-albert", mode="head", adapt_layers=0))
    record = prefix_cache.prefix_features(albert, tokens, precision="fp32", device=CPU)[1]
    assert "from_states" not in record and len(list((cache_dir / "prefix").iterdir())) == 3


def test_albert_refuses_adapting_some_of_its_shared_layers():
    with pytest.raises(ValueError, match="shared layer at every depth"):
        build_model(_config(model="tiny-albert", adapt_layers=1), 14, CPU)
    with pytest.raises(ValueError, match="exceeds the 2 layers"):
        build_model(_config(adapt_layers=3), 14, CPU)
    with pytest.raises(ValueError, match="use mode head"):
        _config(adapt_layers=0)


def test_the_cache_hits_on_the_same_content_and_misses_on_any_change(cache_dir):
    config = _config()
    net, tokens = _model_and_data(config)
    first = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    again = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    assert not first[1]["hit"] and again[1]["hit"] and again[1]["key"] == first[1]["key"]
    torch.testing.assert_close(again[0].inputs["features"], first[0].inputs["features"])
    keys = {first[1]["key"]}
    keys.add(prefix_cache.entry_key(net, tokens, precision="bf16"))
    keys.add(prefix_cache.entry_key(net, tokens.take(range(10)), precision="fp32"))
    shorter = encode(easy_corpus(48, 0), load_tokenizer(model_spec("tiny-bert")), max_length=16)
    keys.add(prefix_cache.entry_key(net, shorter, precision="fp32"))
    other, _ = _model_and_data(_config(seed=1))  # other (random-init) weights
    keys.add(prefix_cache.entry_key(other, tokens, precision="fp32"))
    assert len(keys) == 5
    assert sorted(p.name for p in (cache_dir / "prefix").iterdir()) == [first[1]["key"]]


def test_an_unfinished_entry_is_computed_again(cache_dir):
    net, tokens = _model_and_data(_config())
    _, record = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    entry = cache_dir / "prefix" / record["key"]
    (entry / prefix_cache.META_FILE).unlink()  # as a crash before the last write leaves it
    _, again = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    assert again["hit"] is False and (entry / prefix_cache.META_FILE).is_file()


def test_two_workers_asking_at_once_compute_the_entry_once(monkeypatch):
    net, tokens = _model_and_data(_config())
    fills, real_fill = [], prefix_cache._fill

    def slow_fill(*args, **kwargs):
        fills.append(1)
        threading.Event().wait(0.5)  # the other worker arrives while this one computes
        real_fill(*args, **kwargs)

    monkeypatch.setattr(prefix_cache, "_fill", slow_fill)
    results = []
    workers = [threading.Thread(target=lambda: results.append(
        prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(fills) == 1 and sorted(r[1]["hit"] for r in results) == [False, True]
    torch.testing.assert_close(results[0][0].inputs["features"], results[1][0].inputs["features"])


def test_a_dp_step_on_cached_features_uses_the_trimmed_attention_mask():
    net, tokens = _model_and_data(_config())
    cached, _ = prefix_cache.prefix_features(net, tokens, precision="fp32", device=CPU)
    inputs = as_inputs(cached.fields, cached.batch(range(4))[:2], CPU)
    assert inputs["features"].shape[1] == inputs["attention_mask"].shape[1] == int(inputs["attention_mask"].sum(1).max())
    assert masked_bce(net(**inputs).logits, *cached.batch(range(4))[2:]).isfinite()
