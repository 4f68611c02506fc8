"""The chapters' studies, one module per section of the paper.

- :mod:`~lora_clusters.experiments.stability`: Sec. 4, Corollary 4.2 (Chapter 2);
- :mod:`~lora_clusters.experiments.phase_transition`: Sec. 5, Figs 2-3 (Chapter 3);
- :mod:`~lora_clusters.experiments.transition_checks`: the checks around them (Chapter 3);
- :mod:`~lora_clusters.experiments.low_rank`: Sec. 6, Props 6.1-6.2, Fig. 4 (Chapter 4);
- :mod:`~lora_clusters.experiments.orthogonal_lora`: Sec. 7, Props 7.2 and 7.4 (Chapter 5).

Every study is importable from here too (``experiments.phase_diagram``), as it was
when this was one module; so are :func:`~lora_clusters.measures.fit_power_law` and
:func:`~lora_clusters.measures.max_distance_to_mean`, which now live in
:mod:`~lora_clusters.measures`.
"""

from ..measures import fit_power_law, max_distance_to_mean
from .low_rank import (
    ClusterCountStudy,
    CollapseBoundCheck,
    CollapseStudy,
    HighProbabilityCheck,
    RankOneClustering,
    cluster_count_study,
    cluster_counts,
    collapse_bound_check,
    collapse_study,
    high_probability_check,
    largest_after_collapse,
    rank_one_clustering,
)
from .orthogonal_lora import (
    OrthogonalLoRACases,
    OrthogonalLoRARun,
    OrthogonalLoRASpread,
    orthogonal_lora_cases,
    orthogonal_lora_retention,
    orthogonal_lora_run,
    orthogonal_lora_spread,
)
from .phase_transition import (
    ExitTimeSpread,
    FrozenAttentionComparison,
    PhaseDiagram,
    PhaseDiagramSummary,
    PhaseSweep,
    ReferenceClusters,
    TransitionPair,
    exit_time_grid,
    exit_time_spread,
    frozen_attention_comparison,
    limit_projections,
    phase_diagram,
    phase_transition_sweep,
    reference_clusters,
    transition_pair,
)
from .stability import StabilityComparison, StabilityGrid, stability_comparison, stability_grid
from .transition_checks import (
    LimitCounts,
    NotebookComparison,
    TransitionWindow,
    limit_counts,
    notebook_comparison,
    transition_window,
)

__all__ = [
    "orthogonal_lora_spread",
    "orthogonal_lora_cases",
    "OrthogonalLoRASpread",
    "OrthogonalLoRACases",
    "rank_one_clustering",
    "largest_after_collapse",
    "high_probability_check",
    "collapse_bound_check",
    "cluster_count_study",
    "RankOneClustering",
    "HighProbabilityCheck",
    "CollapseBoundCheck",
    "ClusterCountStudy",
    "transition_window",
    "stability_grid",
    "notebook_comparison",
    "limit_counts",
    "TransitionWindow",
    "StabilityGrid",
    "NotebookComparison",
    "LimitCounts",
    "CollapseStudy",
    "ExitTimeSpread",
    "FrozenAttentionComparison",
    "OrthogonalLoRARun",
    "PhaseDiagram",
    "PhaseDiagramSummary",
    "PhaseSweep",
    "ReferenceClusters",
    "StabilityComparison",
    "TransitionPair",
    "cluster_counts",
    "collapse_study",
    "exit_time_grid",
    "exit_time_spread",
    "frozen_attention_comparison",
    "fit_power_law",
    "limit_projections",
    "max_distance_to_mean",
    "orthogonal_lora_retention",
    "orthogonal_lora_run",
    "phase_diagram",
    "phase_transition_sweep",
    "reference_clusters",
    "stability_comparison",
    "transition_pair",
]
