"""lora_clusters: the computational companion of the executable book on
*The Impact of LoRA on the Emergence of Clusters in Transformers* (Koubbi, Boussard,
Hernandez, 2024).

Modules: ``dynamics`` (token dynamics (2), (8) and integrators), ``measures``
(empirical measures, W2, clusters, S_delta), ``setups`` (initial tokens and
parameter choices used across chapters), ``plots`` and ``widgets``.
"""

__version__ = "0.1.0"
