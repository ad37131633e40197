"""Mixing sites found from a model's structure (`hf_mixup.sites`): at the embeddings, entering block k and at
the pooled features, on every family, the mixed hidden state is exactly the engine's mix of the clean states,
``lam * h_i + (1 - lam) * h_j``; blocks before k keep each sequence's own mask, blocks from k on see the union."""

from __future__ import annotations

import pytest
import torch
import transformers

from hf_mixup.mixing import MixDraw, mix_inputs
from hf_mixup.sites import BlockSite, EmbeddingsSite, PooledSite, find_blocks, find_head, site_for

B, T = 4, 12
DRAW = MixDraw(lam=torch.tensor([0.7, 0.25, 1.0, 0.5]), index=torch.tensor([2, 0, 3, 1]))


def text_inputs(vocab: int, padding_side: str = "right", pairs: bool = False) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    lengths = torch.tensor([12, 7, 4, 9])
    positions = torch.arange(T)
    mask = positions[None, :] < lengths[:, None] if padding_side == "right" else positions[None, :] >= (T - lengths)[:, None]
    inputs = {"input_ids": torch.where(mask, ids, 0), "attention_mask": mask.long()}
    if pairs:
        inputs["token_type_ids"] = (positions[None, :] >= (lengths // 2)[:, None]).long() * mask.long()
    return inputs


TEXT = {
    "bert": lambda: transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3)),
    "roberta": lambda: transformers.RobertaForSequenceClassification(transformers.RobertaConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3,
        max_position_embeddings=40)),
    "distilbert": lambda: transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
        vocab_size=50, dim=16, n_layers=3, n_heads=2, hidden_dim=32, num_labels=3)),
    "electra": lambda: transformers.ElectraForSequenceClassification(transformers.ElectraConfig(
        vocab_size=50, embedding_size=8, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, num_labels=3)),
    "deberta-v2": lambda: transformers.DebertaV2ForSequenceClassification(transformers.DebertaV2Config(
        vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3,
        relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"])),
    "modernbert": lambda: transformers.ModernBertForSequenceClassification(transformers.ModernBertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)),
}


def vision_models():
    image = dict(image_size=16, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                 intermediate_size=32, num_labels=3)
    return {
        "vit": lambda: transformers.ViTForImageClassification(transformers.ViTConfig(**image)),
        "deit": lambda: transformers.DeiTForImageClassification(transformers.DeiTConfig(**image)),
        "swin": lambda: transformers.SwinForImageClassification(transformers.SwinConfig(
            image_size=16, patch_size=2, embed_dim=8, depths=[1, 1, 1], num_heads=[1, 1, 1], window_size=2, num_labels=3)),
        "resnet": lambda: transformers.ResNetForImageClassification(transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16, 32], depths=[1, 1, 1], num_labels=3)),
        "convnext": lambda: transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
            num_stages=3, hidden_sizes=[8, 16, 32], depths=[1, 1, 1], num_labels=3)),
    }


AUDIO = {
    "wav2vec2": lambda: transformers.Wav2Vec2ForSequenceClassification(transformers.Wav2Vec2Config(
        vocab_size=10, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3,
        conv_dim=(8, 8), conv_stride=(4, 4), conv_kernel=(8, 4), num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
        classifier_proj_size=8, do_stable_layer_norm=True, feat_extract_norm="layer")),
    "ast": lambda: transformers.ASTForAudioClassification(transformers.ASTConfig(
        hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=3, patch_size=4,
        frequency_stride=4, time_stride=4, max_length=16, num_mel_bins=16)),
}


def build(family: str):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = (TEXT.get(family) or AUDIO.get(family) or vision_models()[family])().eval()
    if family in TEXT:
        return model, text_inputs(50)
    if family == "wav2vec2":
        values = torch.randn(B, 800, generator=g)
        mask = (torch.arange(800)[None, :] < torch.tensor([800, 560, 400, 720])[:, None]).long()
        return model, {"input_values": values * mask, "attention_mask": mask}
    if family == "ast":
        return model, {"input_values": torch.randn(B, 16, 16, generator=g)}
    return model, {"pixel_values": torch.randn(B, 3, 16, 16, generator=g)}


def capture_entering(module, store: dict, key: str):
    def hook(mod, args, kwargs):
        store[key] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        store[key + "_mask"] = mask.clone() if isinstance(mask, torch.Tensor) else None
    return module.register_forward_pre_hook(hook, with_kwargs=True)


FAMILIES = [*TEXT, "vit", "deit", "swin", "resnet", "convnext", *AUDIO]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_block_site_mixes_exactly_and_joins_masks_from_k_on(family):
    model, inputs = build(family)
    name, blocks = find_blocks(model)
    assert len(blocks) == 3, name
    for k in (1, 2, 3):
        clean, mixed = {}, {}
        handles = [capture_entering(block, clean, str(i)) for i, block in enumerate(blocks)]
        with torch.no_grad():
            model(**inputs)
        for h in handles:
            h.remove()
        site = site_for(model, k)
        with torch.no_grad(), site.mixing(DRAW):
            handles = [capture_entering(block, mixed, str(i)) for i, block in enumerate(blocks)]
            model(**site.prepare(inputs, DRAW))
        for h in handles:
            h.remove()
        h_clean, h_mixed = clean[str(k - 1)], mixed[str(k - 1)]
        assert torch.equal(h_mixed, mix_inputs(h_clean, DRAW)), (family, k)
        lam = DRAW.lam.view(-1, *([1] * (h_clean.ndim - 1)))
        torch.testing.assert_close(h_mixed, lam * h_clean + (1 - lam) * h_clean[DRAW.index])
        for i in range(k - 1):  # the blocks before k: clean states, each sequence's own mask
            assert torch.equal(mixed[str(i)], clean[str(i)])
            if clean[f"{i}_mask"] is not None:
                assert torch.equal(mixed[f"{i}_mask"], clean[f"{i}_mask"])
        for i in range(k - 1, 3):  # from k on: the union of the two masks (an unmixed example keeps its own)
            mask = clean[f"{i}_mask"]
            if mask is None or mask.shape[0] != B:
                continue
            partner = mask[DRAW.index]
            union = mask | partner if mask.dtype == torch.bool else torch.maximum(mask, partner)
            expected = torch.where((DRAW.lam == 1).view(-1, *([1] * (mask.ndim - 1))), mask, union)
            assert torch.equal(mixed[f"{i}_mask"], expected), (family, k, i)
            assert not torch.equal(expected, mask)  # the padding differs: the union is not a no-op here


@pytest.mark.parametrize("family", list(TEXT))
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_the_embeddings_site_mixes_token_embeddings_with_the_union_mask(family, padding_side):
    model, _ = build(family)
    inputs = text_inputs(50, padding_side, pairs=family in ("bert", "electra", "deberta-v2"))
    site = site_for(model, "embeddings")
    assert isinstance(site, EmbeddingsSite) and site.module is model.get_input_embeddings()
    store = {}
    with torch.no_grad():
        clean = site.module(inputs["input_ids"])
        prepared = site.prepare(inputs, DRAW)
        with site.mixing(DRAW):
            hook = site.module.register_forward_hook(lambda m, a, out: store.setdefault("mixed", out.clone()))
            model(**prepared)
            hook.remove()
    assert torch.equal(store["mixed"], mix_inputs(clean, DRAW))
    mask = inputs["attention_mask"]
    expected = torch.where((DRAW.lam == 1)[:, None], mask, torch.maximum(mask, mask[DRAW.index]))
    assert torch.equal(prepared["attention_mask"], expected)
    assert torch.equal(inputs["attention_mask"], mask)  # the caller's batch is not changed
    assert prepared["input_ids"].shape == inputs["input_ids"].shape  # the length never changes


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pooled_site_mixes_the_features_entering_the_classifier(family):
    model, inputs = build(family)
    head_name, head = find_head(model)
    assert head.out_features == 3
    store = {}
    with torch.no_grad():
        hook = head.register_forward_pre_hook(lambda m, a: store.setdefault("clean", a[0].clone()))
        clean_logits = model(**inputs).logits
        hook.remove()
        site = site_for(model, "pooled")
        assert isinstance(site, PooledSite)
        with site.mixing(DRAW):
            logits = model(**site.prepare(inputs, DRAW)).logits
    expected = torch.nn.functional.linear(mix_inputs(store["clean"], DRAW), head.weight, head.bias)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(logits, clean_logits)


def test_per_example_weights_and_an_unmixed_example():
    """``mixup_mode="elem"`` draws: each example has its weight; weight 1 leaves the example and its mask alone."""
    model, inputs = build("bert")
    name, blocks = find_blocks(model)
    clean, mixed = {}, {}
    with torch.no_grad():
        h = capture_entering(blocks[1], clean, "b")
        model(**inputs)
        h.remove()
        site = site_for(model, 2)
        with site.mixing(DRAW):
            h = capture_entering(blocks[1], mixed, "b")
            model(**inputs)
            h.remove()
    assert torch.equal(mixed["b"][2], clean["b"][2])  # lam 1
    assert not torch.equal(mixed["b"][0], clean["b"][0])


def test_a_model_without_a_site_is_told_what_exists():
    model, _ = build("resnet")
    with pytest.raises(ValueError, match=r'mixup_layer=7: this ResNetForImageClassification has 3 blocks \(resnet.encoder.stages\): use 1..3'):
        site_for(model, 7)
    with pytest.raises(ValueError, match=r'"embeddings" needs a model with input embeddings.*"pooled"'):
        site_for(model, "embeddings")
    with pytest.raises(ValueError, match="mixup_layer must be 0"):
        site_for(model, "middle")
    plain = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="needs a stack of blocks"):
        BlockSite(plain, 1)


# -- MixupTrainer at every site ------------------------------------------------------------------------------


def quiet_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, num_labels=3, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config)


@pytest.mark.parametrize("layer", [0, "embeddings", 1, 3, "pooled"])
@pytest.mark.parametrize("mask", ["union", "first"])
def test_mixup_trainer_computes_the_loss_at_the_site(tmp_path, layer, mask):
    """The trainer's loss on a token-id batch is the pair-form cross-entropy of the logits of a forward pass mixed
    at the site (``mixup_layer=0`` on token ids mixes their embeddings); the model never sees the labels."""
    from conftest import fixed_mixer, mixup_args

    from hf_mixup import MixupTrainer, mixup_cross_entropy

    model = quiet_bert()
    inputs = text_inputs(50, pairs=True)
    labels = torch.tensor([0, 2, 1, 2])
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_layer=layer, mixup_mask=mask),
                           mixer=fixed_mixer(DRAW))
    model.train()
    loss = trainer.compute_loss(model, {**inputs, "labels": labels})
    site = site_for(model, "embeddings" if layer == 0 else layer, mask=mask)
    with torch.no_grad(), site.mixing(DRAW):
        logits = model(**site.prepare(inputs, DRAW)).logits
    expected = mixup_cross_entropy(logits, labels, labels[DRAW.index], DRAW.lam).mean()
    torch.testing.assert_close(loss.detach(), expected, rtol=0, atol=1e-6)
    with torch.no_grad():
        clean = mixup_cross_entropy(model(**inputs).logits, labels, labels[DRAW.index], DRAW.lam).mean()
    assert not torch.allclose(loss.detach(), clean)
    assert model.config.problem_type is None


def test_a_site_the_model_lacks_is_refused_when_the_trainer_is_built(tmp_path):
    from conftest import mixup_args

    from hf_mixup import MixupTrainer

    with pytest.raises(ValueError, match=r"mixup_layer=9: this BertForSequenceClassification has 3 blocks \(bert.encoder.layer\)"):
        MixupTrainer(model=quiet_bert(), args=mixup_args(tmp_path, mixup_layer=9))
    with pytest.raises(ValueError, match='mixup_layer must be 0 .*"embeddings".*"pooled"'):
        mixup_args(tmp_path, mixup_layer="middle")
    assert mixup_args(tmp_path, mixup_layer="2").mixup_layer == 2  # as the command line gives it


# -- each site mixes a training batch and hands back one draw and its targets ----------------------------------


def recorded_input(module, run) -> torch.Tensor:
    """What ``module`` receives (its first positional input, after pre-hooks) during ``run()``."""
    seen = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    try:
        run()
    finally:
        handle.remove()
    return seen[-1]


def mixed_by_formula(h: torch.Tensor, lam: torch.Tensor, h_partner: torch.Tensor) -> torch.Tensor:
    w = lam.view(-1, *[1] * (h.ndim - 1))
    return w * h + (1 - w) * h_partner


def test_the_inputs_site_mixes_the_inputs_and_hands_back_the_draws_targets():
    from conftest import fixed_mixer

    from hf_mixup.sites import InputsSite

    x = torch.randn(B, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 1])
    site = InputsSite()
    for _ in range(2):  # the second batch is mixed into the first one's workspace
        mixed = site.mix({"pixel_values": x, "attention_mask": torch.ones(B, 4, dtype=torch.long)}, labels,
                         fixed_mixer(DRAW))
        torch.testing.assert_close(mixed.inputs["pixel_values"], mixed_by_formula(x, DRAW.lam, x[DRAW.index]))
        assert torch.equal(mixed.inputs["attention_mask"], torch.ones(B, 4, dtype=torch.long))  # integers stay
        assert torch.equal(mixed.targets.partner_labels, labels[DRAW.index]) and mixed.targets.lam is DRAW.lam
        assert mixed.draw is DRAW and mixed.site is site


def test_the_inputs_site_draws_cutmix_boxes_for_the_inputs_spatial_size():
    from hf_mixup.mixing import Mixer
    from hf_mixup.sites import InputsSite

    x = torch.randn(B, 3, 8, 6, generator=torch.Generator().manual_seed(1))
    mixer = Mixer(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", seed=3)
    mixed = InputsSite().mix({"pixel_values": x}, torch.tensor([0, 1, 2, 1]), mixer)
    replay = Mixer(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", seed=3).draw(B, (8, 6))
    assert torch.equal(mixed.draw.boxes, replay.boxes)
    assert torch.equal(mixed.inputs["pixel_values"], mix_inputs(x, replay))


def recorded_output(module, run) -> torch.Tensor:
    """What ``module`` returns during ``run()`` (after the forward hooks registered before this one)."""
    seen = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))
    try:
        run()
    finally:
        handle.remove()
    return seen[-1]


@pytest.mark.parametrize("layer", ["embeddings", 2, "pooled"])
def test_a_model_site_mixes_its_hidden_state_and_hands_back_the_draw(layer):
    """`site.mix` hands back the draw, and a forward pass under its hooks sees lam * h_i + (1 - lam) * h_j."""
    from conftest import fixed_mixer

    torch.manual_seed(0)
    model = TEXT["bert"]().eval()
    inputs = text_inputs(50)
    labels = torch.tensor([0, 2, 1, 2])
    site = site_for(model, layer)
    if layer == "embeddings":  # the output of the token embeddings
        module, record = model.bert.embeddings.word_embeddings, recorded_output
    else:  # the input of block 2, of the classifier
        module, record = {2: model.bert.encoder.layer[1], "pooled": model.classifier}[layer], recorded_input
    with torch.no_grad():
        clean = record(module, lambda: model(**inputs))
        mixed = site.mix(inputs, labels, fixed_mixer(DRAW))
        with mixed.forward_hooks():
            hidden = record(module, lambda: model(**mixed.inputs))
    assert mixed.draw is DRAW and torch.equal(mixed.targets.partner_labels, labels[DRAW.index])
    torch.testing.assert_close(hidden, mixed_by_formula(clean, DRAW.lam, clean[DRAW.index]))


def test_the_stage_site_mixes_the_features_entering_stage_k():
    from conftest import fixed_mixer, tiny_preact

    from hf_mixup.hidden import mixing_points
    from hf_mixup.sites import StageSite

    model = tiny_preact().eval()
    draw = MixDraw(lam=torch.tensor([0.3, 0.5, 0.9, 0.0]), index=torch.tensor([1, 2, 3, 0]))
    x = torch.randn(B, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    site = site_for(model, 3)
    assert isinstance(site, StageSite)
    stage = mixing_points(model)[2]
    with torch.no_grad():
        clean = recorded_input(stage, lambda: model(pixel_values=x))
        mixed = site.mix({"pixel_values": x}, torch.tensor([0, 1, 2, 3]), fixed_mixer(draw))
        assert torch.equal(mixed.inputs["pixel_values"], x)  # the inputs themselves are not mixed
        with mixed.forward_hooks():
            hidden = recorded_input(stage, lambda: model(**mixed.inputs))
    torch.testing.assert_close(hidden, mixed_by_formula(clean, draw.lam, clean[draw.index]))
    with pytest.raises(ValueError, match="has 4 stages: use 1..4 .* or 5"):
        site_for(model, 6)


def test_dataset_partners_mix_each_example_with_its_fetched_partner():
    from hf_mixup.mixing import Mixer
    from hf_mixup.sites import DatasetPartners

    g = torch.Generator().manual_seed(2)
    x, x_partner = torch.randn(B, 5, generator=g), torch.randn(B, 5, generator=g)
    labels, partner_labels = torch.tensor([0, 1, 2, 1]), torch.tensor([2, 2, 0, 0])
    mixer = Mixer(mixup_alpha=0.5, mode="elem", seed=4)
    mixed = DatasetPartners({"features": x_partner, "labels": partner_labels, "index": torch.arange(B)}).mix(
        {"features": x}, labels, mixer, input_only=True)
    lam = Mixer(mixup_alpha=0.5, mode="elem", seed=4).draw(B).lam
    torch.testing.assert_close(mixed.inputs["features"], mixed_by_formula(x, lam, x_partner))
    targets = mixed.targets
    assert torch.equal(targets.lam, lam) and torch.equal(targets.partner_labels, partner_labels) and targets.input_only
    assert mixed.draw is None  # no hooks: the inputs are mixed before the model


def test_a_collators_batch_is_taken_as_it_is():
    from hf_mixup.sites import Premixed

    soft, lam = torch.full((B, 3), 1 / 3), torch.tensor([0.4, 0.6, 1.0, 0.5])
    inputs = {"pixel_values": torch.randn(B, 3)}
    mixed = Premixed(lam).mix(inputs, soft)
    assert mixed.inputs["pixel_values"] is inputs["pixel_values"] and mixed.targets.premixed
    assert mixed.targets.labels is soft and mixed.targets.lam is lam and not mixed.targets.mixed
