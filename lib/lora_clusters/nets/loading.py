"""Loading models: the offline ones by short name, any Llama- or BERT-family folder by
path, and a tiny random Llama that stands in for a trained model in the tests and at
the ``smoke`` scale.  The folders are found by :mod:`lora_clusters.nets.assets`; torch
and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

from .assets import MODELS, model_path

__all__ = ["decoder_layers", "load", "load_with_tokenizer", "tiny_llama"]


def load(name_or_path, *, dtype=None, causal: bool | None = None):
    """The model at ``name_or_path`` (see :func:`~lora_clusters.nets.assets.model_path`) in evaluation mode.

    ``dtype`` defaults to float32 (bfloat16 is the choice for a 7B model on a GPU);
    ``causal`` picks a language-model head (True), the bare encoder (False), or by the
    architecture in the config (None)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    # transformers' own loading bar would end up in a chapter's saved output
    transformers_logging.disable_progress_bar()
    path = model_path(name_or_path)
    config = AutoConfig.from_pretrained(path)
    if config.model_type not in ("llama", "bert"):
        raise ValueError(f"model {path} is a {config.model_type!r} model; Llama and BERT families are supported")
    if causal is None:
        causal = config.model_type == "llama"
    cls = AutoModelForCausalLM if causal else AutoModel
    model = cls.from_pretrained(path, dtype=dtype or torch.float32, low_cpu_mem_usage=True)
    return model.eval()


def tiny_llama(vocab_size: int, *, layers: int = 4, d: int = 64, heads: int = 4, kv_heads: int = 2, seed: int = 0):
    """A small Llama-architecture decoder with random weights (``seed``), grouped-query
    attention included: what the tests and the ``smoke`` scale run in place of a
    trained model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=d,
        intermediate_size=2 * d,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.config.name_or_path = f"tiny random Llama (seed {seed})"
    return model


def load_with_tokenizer(name_or_path):
    """(model, tokenizer, description) for a chapter: ``"tiny"`` gives
    :func:`tiny_llama` with SmolLM2's tokenizer; anything else goes through :func:`load`."""
    from transformers import AutoTokenizer

    if str(name_or_path) == "tiny":
        tokenizer = AutoTokenizer.from_pretrained(model_path("smollm2"))
        model = tiny_llama(len(tokenizer))
        return model, tokenizer, model.config.name_or_path
    import torch

    from .runtime import device

    path = model_path(name_or_path)
    if device() == "cuda":  # a 7B model: bfloat16, streamed to the GPU, no float32 copy
        model = load(path, dtype=torch.bfloat16).to("cuda")
    else:
        model = load(path)
    description = MODELS[str(name_or_path)][1] if str(name_or_path) in MODELS else str(path)
    return model, AutoTokenizer.from_pretrained(path), description


def decoder_layers(model):
    """The decoder layers of a Llama-family model, also when peft has wrapped it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.model if hasattr(base, "model") else base
    if not hasattr(inner, "layers"):
        raise ValueError(f"a Llama-family decoder was expected, got {type(model).__name__}")
    return inner.layers
