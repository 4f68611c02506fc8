"""The studies chapters 2-5 call in one line: each against the computation it wraps,
done here independently, and the glue helper for figures."""

from types import SimpleNamespace

import numpy as np
import pytest

from lora_clusters import lora, measures, report, setups
from lora_clusters.experiments import low_rank, orthogonal_lora, stability, transition_checks


def test_stability_grid_is_one_comparison_per_case_and_its_power_laws_are_fits():
    x0 = setups.initial_tokens(6, 2, seed=0)
    x0 = 0.2 * x0 / np.max(np.linalg.norm(x0, axis=1))
    sizes = [1e-3, 1e-2]
    grid = stability.stability_grid(x0, ["V", "A"], sizes, seed=0, t_max=1.0, n_times=11)
    I = np.eye(2)
    one = stability.stability_comparison(
        x0, I, I, I, *lora.lora_triple(I, I, I, target="A", size=1e-2, rank=1, seed=0), t_max=1.0, n_times=11
    )
    np.testing.assert_array_equal(grid.comparisons["A", 1e-2].w2, one.w2)
    assert grid.n_checks == 4 * 11
    assert grid.all_hold == all(c.holds for c in grid.comparisons.values())
    k = 10  # t = 1
    w2 = [grid.comparisons["V", s].w2[k] for s in sizes]
    slope = np.log(w2[1] / w2[0]) / np.log(sizes[1] / sizes[0])  # two points: the fit is exact
    assert grid.power_laws(1.0)["V"][0] == pytest.approx(slope, rel=1e-9)
    values = grid.glue_values(t_probe=1.0)
    assert values["stab_ratio_V_min"] == pytest.approx(
        min(np.nanmin(grid.comparisons["V", s].ratio[1:]) for s in sizes)
    )
    assert len(grid.table().splitlines()) == 1 + 4


def test_limit_counts_counts_distinct_values_and_their_drift():
    configs = np.stack([setups.initial_tokens(6, 2, seed=s) for s in range(3)])
    V_tilde = setups.perturbed_value_matrix(0.1, 2)
    result = transition_checks.limit_counts(configs, V_tilde, 20.0, 30.0)
    before = transition_checks.limit_projections(configs, V_tilde, 20.0)
    after = transition_checks.limit_projections(configs, V_tilde, 30.0)
    assert np.all((result.counts >= 1) & (result.counts <= 6))
    assert result.drift == np.abs(after - before).max()
    values = result.glue_values()
    assert values["limit_max_count"] == result.counts.max()
    assert sum(result.histogram.values()) == 3


def test_notebook_comparison_interpolates_a_power_law_exactly():
    eps = np.logspace(-3, -1, 5)
    T_star = np.array([0.5 / eps, 0.7 / eps])  # T* = c / eps: exact under log-log interpolation
    diagram = SimpleNamespace(eps=eps, T_star=T_star, has_transition=np.array([True, True]))
    overflow = np.log(np.finfo(float).max) / 2
    result = transition_checks.notebook_comparison(diagram, {1e-3: overflow, 1e-2: 53.0}, at=(1e-3, 1e-2))
    np.testing.assert_allclose(result.interpolated[1e-2], [50.0, 70.0], rtol=1e-12)
    assert result.notebook_scaled == {1e-2: pytest.approx(0.53)}  # the overflow point left out
    assert result.glue_values()["text_vs_notebook"] == 53.0 / 10.5


def test_collapse_checks_against_their_definitions():
    runs = low_rank.collapse_study(4, n=6, d=3, rank=1, radius=1.0, delta=0.1, seed=0)
    check = low_rank.collapse_bound_check(runs, runs)
    assert check.gap_identity == np.abs(runs.T_delta - runs.bound_33).max()
    assert check.paper_ok == np.mean(runs.T_delta <= runs.bound_33 + 1e-9)
    after = low_rank.largest_after_collapse(runs)
    # after T_delta every token stays within delta of the initial mean for V = I
    assert after <= 0.1 + 1e-9
    hp = low_rank.high_probability_check([1.0, 10.0], eps=0.05, n_runs=4, n=6, d=3, rank=1, seed=1)
    assert (
        hp.fractions[1] == low_rank.collapse_study(4, n=6, d=3, rank=1, radius=10.0, eps=0.05, seed=1).fraction_under_34
    )
    fails = hp.fractions < 0.9
    assert hp.first_fail == (hp.radii[np.argmax(fails)] if fails.any() else np.inf)


def test_rank_one_clustering_has_two_leaders_and_cluster_count_study_wraps_counts():
    result = low_rank.rank_one_clustering(n=8, d=2, seed=1, scale=5.0, t_max=12.0, n_times=25)
    assert result.n_rank_one == 2  # Prop. 6.2: rank one, two clusters at the extreme tokens
    leaders = result.rank_one.final[[np.argmin(result.x0[:, 0]), np.argmax(result.x0[:, 0])]]
    centers = measures.cluster_centers(result.rank_one.final, tol=5e-3)
    assert result.leader_gap == np.abs(centers - np.sort(leaders, axis=0)).max()
    study = low_rank.cluster_count_study([2], [1, 2, "full"], seeds=range(2), n=6, t_max=10.0)
    np.testing.assert_array_equal(study.counts, low_rank.cluster_counts([2], [1, 2, "full"], range(2), n=6, t_max=10.0))
    assert study.glue_values()["count_rank2_max"] == study.counts[1].max()


def test_orthogonal_lora_spread_and_cases_repeat_single_runs():
    spread = orthogonal_lora.orthogonal_lora_spread([2.0], [1e-3, 1e-2], seeds=range(2))
    one = orthogonal_lora.orthogonal_lora_run(C=2.0, eps=1e-2, seed=1)
    assert spread.distance[0, 1, 1] == one.distance_to_line
    np.testing.assert_allclose(spread.ratio, spread.distance / np.array([1e-3, 1e-2])[None, :, None])
    cases = orthogonal_lora.orthogonal_lora_cases({"a": dict(C=2.0, eps=0.01)}, seeds=range(2), tags=["ok"])
    runs = [orthogonal_lora.orthogonal_lora_run(C=2.0, eps=0.01, seed=s) for s in range(2)]
    assert cases.glue_values() == {"break_ok_split": sum(r.split_by_sign for r in runs)}
    assert one.glue_values()["ortho_pre_spread"] == np.ptp(one.pretrained.final, axis=0).max()


def test_glue_figure_glues_the_figure_without_displaying_it(monkeypatch):
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    figure = object()
    report.glue_figure("fig_x", figure)
    assert calls == [("fig_x", figure, False)]
