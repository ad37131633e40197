"""`hf-mixup train` on text: rotten_tomatoes offline with small_bert, the run loading in
`pipeline("text-classification")` with the data's label names, sentence pairs from a csv, a local model
folder with or without weights, the card, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hf_mixup.cli import train

pytestmark = pytest.mark.slow

# Tiny settings: each run a few seconds on a 2-core CPU (the tokenizer is trained on the 256 training sentences).
TINY = [
    "--max_train_samples", "256", "--max_eval_samples", "128", "--max_steps", "4",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--max_seq_length", "64",
    "--learning_rate", "1e-3", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0",
    "--disable_tqdm", "true",
]
SMALL_BERT = ["--vocab_size", "2000", "--model_kwargs", '{"num_hidden_layers": 2}']  # small_bert, smaller
SENTENCES = ["A gripping, beautifully acted film.", "Dull, lifeless and far too long.", "an utter mess"]


@pytest.fixture(scope="module")
def rt_run(tmp_path_factory):
    """An ERM run on rotten_tomatoes with small_bert: (metrics, run folder)."""
    out = tmp_path_factory.mktemp("rt") / "run"
    metrics = train.main(["--dataset_name", "rotten_tomatoes", "--mixup_alpha", "0", "--output_dir", str(out), *TINY, *SMALL_BERT])
    return metrics, out


def test_rotten_tomatoes_trains_offline_with_small_bert(rt_run):
    metrics, out = rt_run
    assert np.isfinite(metrics["train_loss"]) and 0.0 <= metrics["test_accuracy"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["num_hidden_layers"] == 2
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["label2id"] == {"neg": 0, "pos": 1}
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    settings = json.loads((out / "run_settings.json").read_text())
    assert settings["data"]["max_seq_length"] == 64 and settings["model"]["vocab_size"] == 2000


def test_pipeline_loads_the_run_and_returns_the_data_label_names(rt_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    _, out = rt_run
    classifier = pipeline("text-classification", model=str(out))
    got = classifier(SENTENCES, top_k=None)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    for sentence, scores in zip(SENTENCES, got):
        with torch.no_grad():
            probs = model(**tokenizer(sentence, return_tensors="pt")).logits.softmax(-1)[0]
        by_name = {s["label"]: s["score"] for s in scores}
        assert set(by_name) == {"neg", "pos"}
        np.testing.assert_allclose([by_name["neg"], by_name["pos"]], probs.numpy(), rtol=1e-5, atol=1e-6)
    top = classifier(SENTENCES[0])[0]
    assert top["label"] in {"neg", "pos"}
    # The run's own tokenizer: transformers 5 quietly builds an empty BertTokenizer (5 special tokens, every
    # word [UNK]) for a folder that holds none, and the scores above would still match.
    assert len(classifier.tokenizer) == model.config.vocab_size > 1000
    assert classifier.tokenizer.unk_token_id not in classifier.tokenizer("a gripping film")["input_ids"]


def test_the_card_names_the_text_modality(rt_run):
    _, out = rt_run
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "- text" in card
    assert 'pipeline("text-classification", model=' in card and "Text Classification" in card
    assert json.loads((out / "hf_mixup_card.json").read_text())["modality"] == "text"


def pair_csv(path, n: int = 96):
    """A sentence-pair csv of real sentences: (premise, hypothesis, label) with string labels, label "same"
    when both Rotten Tomatoes sentences have the same sentiment."""
    import csv

    from hf_mixup.data import load_rotten_tomatoes

    data = load_rotten_tomatoes()["train"].shuffle(seed=0).select(range(2 * n))
    texts, labels = data["text"], data["label"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "label"])
        for i in range(n):
            writer.writerow([texts[2 * i], texts[2 * i + 1], "same" if labels[2 * i] == labels[2 * i + 1] else "different"])
    return str(path)


def test_sentence_pairs_from_a_csv_get_token_type_ids_and_the_string_labels(tmp_path):
    data = pair_csv(tmp_path / "pairs.csv")
    prepared = train.prepare([
        "--dataset_name", data, "--text_column", "premise", "--text_pair_column", "hypothesis", "--mixup_alpha", "0",
        "--output_dir", str(tmp_path / "run"), *TINY, *SMALL_BERT, "--max_steps", "2",
    ])
    trainer = prepared.trainer
    assert trainer.model.config.id2label == {0: "different", 1: "same"}
    example = trainer.train_dataset[0]
    assert set(example) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    tokenizer = trainer.processing_class
    sep = example["input_ids"].index(tokenizer.sep_token_id)
    assert set(example["token_type_ids"][: sep + 1]) == {0} and set(example["token_type_ids"][sep + 1:]) == {1}
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert max(lengths) == 64 and min(lengths) < 64  # truncated to --max_seq_length, not padded in the dataset
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)  # padded to the batch's longest example
    assert batch["input_ids"].shape == (4, max(len(e["input_ids"]) for e in examples))
    assert batch["token_type_ids"].shape == batch["input_ids"].shape and batch["token_type_ids"].max() == 1
    metrics = prepared.train()
    assert np.isfinite(metrics["train_loss"]) and "test_accuracy" in metrics
    assert prepared.eval_split.startswith("10% held out of train")


def model_folder(path, with_weights: bool) -> str:
    """A local checkpoint: a BERT config with 3 labels and a tokenizer (save_pretrained), weights or not."""
    from transformers import BertForSequenceClassification

    from hf_mixup.data import small_bert_config, train_tokenizer

    tokenizer = train_tokenizer(SENTENCES * 20, vocab_size=200, min_frequency=1)
    config = small_bert_config(len(tokenizer), id2label=["a", "b", "c"], num_hidden_layers=1, hidden_size=32,
                               intermediate_size=64)
    tokenizer.save_pretrained(path)
    if with_weights:
        BertForSequenceClassification(config).save_pretrained(path)
    else:
        config.save_pretrained(path)
    return str(path)


def test_a_local_folder_without_weights_is_built_from_its_config(tmp_path):
    folder = model_folder(tmp_path / "model", with_weights=False)
    assert not any(p.name.endswith((".safetensors", ".bin")) for p in (tmp_path / "model").iterdir())
    out = tmp_path / "run"
    metrics = train.main(["--dataset_name", "rotten_tomatoes", "--model_name", folder, "--mixup_alpha", "0",
                          "--output_dir", str(out), *TINY])  # no --model_kwargs
    assert np.isfinite(metrics["train_loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["hidden_size"] == 32
    assert (out / "tokenizer.json").is_file()
    from transformers import pipeline

    assert {s["label"] for s in pipeline("text-classification", model=str(out))(SENTENCES)} <= {"neg", "pos"}


def test_a_local_folder_with_weights_keeps_them_under_a_new_head(tmp_path):
    from transformers import BertForSequenceClassification

    folder = model_folder(tmp_path / "model", with_weights=True)
    saved = BertForSequenceClassification.from_pretrained(folder)
    prepared = train.prepare(["--dataset_name", "rotten_tomatoes", "--model_name", folder, "--mixup_alpha", "0",
                              "--output_dir", str(tmp_path / "run"), *TINY])
    model = prepared.trainer.model
    assert model.config.id2label == {0: "neg", 1: "pos"} and model.classifier.out_features == 2
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight, saved.bert.embeddings.word_embeddings.weight)
    torch.testing.assert_close(model.bert.encoder.layer[0].output.dense.weight, saved.bert.encoder.layer[0].output.dense.weight)


def test_mixup_at_the_embeddings_trains_end_to_end(rt_run, tmp_path):
    metrics = train.main(["--dataset_name", "rotten_tomatoes", "--mixup_alpha", "1", "--mixup_layer", "embeddings",
                          "--output_dir", str(tmp_path / "run"), *TINY, *SMALL_BERT])
    assert np.isfinite(metrics["train_loss"]) and "test_accuracy" in metrics
    # The ERM run of the same seed, data, tokenizer and model: only the mixing differs, so the losses do.
    assert metrics["train_loss"] != pytest.approx(rt_run[0]["train_loss"], rel=1e-6)
    settings = json.loads((tmp_path / "run" / "run_settings.json").read_text())
    assert settings["training"]["mixup_layer"] == "embeddings"


@pytest.mark.parametrize("flags, expected", [
    (["--text_column", "body"], "--text_column 'body' is not a column of the dataset; its columns are ['text', 'label']"),
    (["--text_pair_column", "hypothesis"], "--text_pair_column 'hypothesis' is not a column of the dataset"),
    (["--model_name", "resnet18"], "--model_name 'resnet18' is not a text model"),
    (["--label_noise", "0.2"], "--label_noise applies to image datasets only; this dataset is text"),
    (["--max_seq_length", "1000"], "--max_seq_length 1000 is more than the 512 tokens the model takes"),
], ids=["text_column", "text_pair_column", "image_model_name", "label_noise", "max_seq_length"])
def test_mistakes_end_in_one_line_with_status_2(flags, expected, tmp_path, capsys):
    status = train.run(["--dataset_name", "rotten_tomatoes", "--output_dir", str(tmp_path / "run"), *TINY, *flags],
                       prog="hf-mixup train")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("hf-mixup train: error: ") and expected in err[0], err
    assert not (tmp_path / "run").exists()


def test_an_image_checkpoint_folder_is_not_a_text_model(tmp_path, capsys):
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path / "vit")
    status = train.run(["--dataset_name", "rotten_tomatoes", "--model_name", str(tmp_path / "vit"),
                        "--output_dir", str(tmp_path / "run"), *TINY], prog="hf-mixup train")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "is a vit model, not a text model" in err[0], err


def test_a_folder_without_a_tokenizer_is_refused_not_given_an_empty_one(tmp_path, capsys):
    """transformers 5 answers AutoTokenizer.from_pretrained on a BERT config alone with a BertTokenizer of the 5
    special tokens (every word [UNK]): the command refuses it instead of training on [UNK]s."""
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path / "bert")
    status = train.run(["--dataset_name", "rotten_tomatoes", "--model_name", str(tmp_path / "bert"),
                        "--output_dir", str(tmp_path / "run"), *TINY], prog="hf-mixup train")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "holds no tokenizer" in err[0] and "--tokenizer_name" in err[0], err


def test_a_jsonl_with_a_text_column_and_class_ids_is_text_with_the_ids_as_names(tmp_path):
    rows = [{"text": s, "label": i % 3} for i, s in enumerate(SENTENCES * 10)]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    prepared = train.prepare(["--dataset_name", str(tmp_path / "data.jsonl"), "--mixup_alpha", "0",
                              "--output_dir", str(tmp_path / "run"), *TINY, *SMALL_BERT])
    model = prepared.trainer.model
    assert model.config.id2label == {0: "0", 1: "1", 2: "2"} and model.num_labels == 3
    assert sorted(set(prepared.trainer.train_dataset["labels"])) == [0, 1, 2]


def test_hub_ids_of_the_dataset_and_of_a_checkpoint_without_weights(tmp_path, monkeypatch, caplog):
    """`--dataset_name stanfordnlp/imdb --model_name google-bert/bert-base-uncased` through the real offline Hub
    loaders: the dataset as `load_dataset` caches it, the checkpoint (config and tokenizer, no weights) in a real
    Hub cache; the model is built from the config, with a warning."""
    import datasets
    from datasets import DatasetDict
    from huggingface_hub import constants
    from hub_layout import FakeHub, cache_hub_dataset

    from hf_mixup.data import load_imdb

    imdb = load_imdb()
    cache_hub_dataset(tmp_path / "datasets", "stanfordnlp/imdb",
                      DatasetDict({s: imdb[s].shuffle(seed=0).select(range(32)) for s in ("train", "test")}), "plain_text")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    hub = FakeHub(tmp_path / "hub")
    hub.create_repo("google-bert/bert-base-uncased")
    hub.upload_folder("google-bert/bert-base-uncased", model_folder(tmp_path / "bert", with_weights=False))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # Offline for real: conftest sets HF_HUB_OFFLINE after huggingface_hub and datasets have read it, so without
    # these a run outside `HF_HUB_OFFLINE=1 pytest` spends minutes in network retries.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="hf_mixup.train"):
        metrics = train.main(["--dataset_name", "stanfordnlp/imdb", "--model_name", "google-bert/bert-base-uncased",
                              "--mixup_alpha", "0", "--output_dir", str(out), *TINY, "--max_steps", "2"])
    assert "google-bert/bert-base-uncased holds no weights" in caplog.text
    assert np.isfinite(metrics["train_loss"]) and "test_accuracy" in metrics
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["hidden_size"] == 32
    card = (out / "README.md").read_text()
    assert "stanfordnlp/imdb" in card and "pipeline_tag: text-classification" in card
