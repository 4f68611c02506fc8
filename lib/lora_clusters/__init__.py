"""lora_clusters: the computational companion of the executable book on
*The Impact of LoRA on the Emergence of Clusters in Transformers* (Koubbi, Boussard,
Hernandez, 2024).

Science (numpy, scipy, POT):

- ``dynamics``: the token dynamics (2) and (8), overflow-free softmax, :func:`~lora_clusters.dynamics.simulate`;
- ``integrators``: RK4 and adaptive Dormand-Prince 5(4) for any ``f(t, y)``, their options and presets;
- ``measures``: empirical measures, exact W2, clusters, S_delta, T_delta, T*, fits;
- ``spectra``: the top eigenpair of V and the hypotheses of Thm 5.4;
- ``bounds``: the paper's bounds as functions of their inputs;
- ``lora``: LoRA triples (3)-(5) and the orthogonal LoRA (36);
- ``setups``: seeded tokens and the matrices the chapters use;
- ``experiments``: one module per chapter's studies;
- ``nets``: the torch half (trained and pretrained networks; the scale of the GPU chapters).

Presentation: ``plots`` (``plots.style``, ``plots.particles`` for chapters 1-5 with the
views panels update, ``plots.networks`` for chapters 6-9), ``widgets``
(JupyterLab panels), ``report`` (glued numbers).  ``provenance`` records where a
chapter's outputs were computed.  The build tooling is a separate package, ``lora_book``.
"""

__version__ = "0.1.0"
