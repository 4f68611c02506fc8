"""The torch half of the library: trained networks and pretrained models (Sec. 8, App. G).

Reserved for the book's GPU chapters, which each also run at a smaller scale on a CPU:

- the attention-only toy transformer on modular arithmetic, its training and its LoRA
  fine-tuning with peft (App. G.1; Chapter 6);
- pretrained models: where the offline ones live (:mod:`~lora_clusters.nets.assets`),
  loading them (:mod:`~lora_clusters.nets.loading`), their per-head query, key, value
  and output matrices (:mod:`~lora_clusters.nets.heads`), the spectra computed from
  them (:mod:`~lora_clusters.nets.head_spectra`) and what rounding the weights does to
  those (:mod:`~lora_clusters.nets.quantization`) (App. G.3; Chapter 7);
- LoRA fine-tuning of a language model and the eigenvalues of its update (App. G.4);
- forward passes through a layer stack run several times over (App. G.5).

:mod:`lora_clusters.scale` holds the one setting that picks how large these runs are
(read from the environment, never from a code cell) and their settings at every scale;
the settings classes are in :mod:`~lora_clusters.nets.settings`.  The expensive runs are
kept in the result store (:mod:`lora_clusters.store`).  Modules of this subpackage
import torch (some only when a model is loaded or trained); importing this package, or
:mod:`~lora_clusters.nets.settings`, does not, and the rest of :mod:`lora_clusters`
never imports them.
"""
