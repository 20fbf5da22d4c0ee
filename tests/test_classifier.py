"""The report classifier's pooling: padding never changes a report's logits; both poolings train under DP."""

import pytest
import torch

from radcore.classifier import ReportClassifier
from radcore.models import load_classifier, model_spec


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_a_reports_logits(pooling):
    model = load_classifier(model_spec("tiny-bert"), num_labels=3, pretrained=False, pooling=pooling).eval()
    ids = torch.tensor([[101, 2054, 2003, 102]])
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 4, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long)], 1)
    short = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    long = model(input_ids=padded, attention_mask=mask).logits
    assert torch.allclose(short, long, atol=1e-5)


def test_mean_and_cls_pooling_differ_and_unknown_pooling_is_refused():
    torch.manual_seed(0)
    mean = load_classifier(model_spec("tiny-bert"), num_labels=3, pretrained=False, pooling="mean").eval()
    cls = ReportClassifier(mean.encoder, num_labels=3, pooling="cls").eval()
    cls.classifier.load_state_dict(mean.classifier.state_dict())
    ids = torch.tensor([[101, 2054, 2003, 2009, 102]])
    am = torch.ones_like(ids)
    assert not torch.allclose(mean(input_ids=ids, attention_mask=am).logits, cls(input_ids=ids, attention_mask=am).logits)
    with pytest.raises(ValueError, match="pooling 'max'"):
        ReportClassifier(mean.encoder, num_labels=3, pooling="max")


def test_random_init_encoder_is_a_function_of_its_seed_only():
    a = load_classifier(model_spec("tiny-albert"), num_labels=2, pretrained=False, init_seed=3)
    torch.rand(10)  # global RNG state must not matter
    b = load_classifier(model_spec("tiny-albert"), num_labels=2, pretrained=False, init_seed=3)
    c = load_classifier(model_spec("tiny-albert"), num_labels=2, pretrained=False, init_seed=4)
    for (name, pa), pb, pc in zip(a.encoder.named_parameters(), b.encoder.parameters(), c.encoder.parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.encoder.parameters(), c.encoder.parameters()))


def test_saved_full_model_round_trips(tmp_path):
    from radcore.models import load_encoder

    model = load_classifier(model_spec("tiny-bert"), num_labels=4, pretrained=False, pooling="cls").eval()
    model.save_pretrained(tmp_path)
    again = ReportClassifier.from_pretrained(tmp_path, load_encoder=load_encoder).eval()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    assert again.pooling == "cls" and again.num_labels == 4
    assert torch.equal(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits,
                       again(input_ids=ids, attention_mask=torch.ones_like(ids)).logits)
