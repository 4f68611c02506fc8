"""The torch half of the library: trained networks and pretrained models (Sec. 8, App. G).

Reserved for the book's GPU chapters, which each also run at a smaller scale on a CPU:

- the attention-only toy transformer on modular arithmetic, its training and its LoRA
  fine-tuning with peft (App. G.1; Chapter 6);
- pretrained models loaded from local folders (offline), their per-head query, key,
  value and output matrices and the spectra computed from them (App. G.3; Chapter 7);
- LoRA fine-tuning of a language model and the eigenvalues of its update (App. G.4);
- forward passes through a layer stack run several times over (App. G.5).

:mod:`lora_clusters.nets.scale` holds the one setting that picks how large these runs
are; it is read from the environment, never from a code cell, so that the execution
cache serves whichever scale last ran.  Modules of this subpackage import torch; the
rest of :mod:`lora_clusters` never imports them.
"""
