"""Model-card template and reference cards of hf_mixup (the repository's `model_cards/` folder,
installed as `hf_mixup.model_cards`). See README.md in this folder."""
