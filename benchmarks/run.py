"""Speed benchmarks of the simulation engine; results go to benchmarks/results/*.json.

    make bench            # all of them
    python benchmarks/run.py sweep baseline scaling

- sweep: the phase-diagram sweep of Fig. 3 (40 eps log-spaced in [1e-4, 1e-1],
  n = 20, d = 2, delta = 0.1), wall time of the whole computation.
- baseline: time per simulated (eps, RK4 step) of the authors-style simulator
  (benchmarks/baseline_authors_style.py) against the batched engine, and their
  agreement with a fine reference.
- phase_diagram: Chapter 3's full Fig. 3 computation (8 configurations x 25 eps in
  [1e-4, 1e-1]), wall time, as the chapter runs it.
- widgets: latency of every interactive panel: for each control, the time from a
  new value to a re-simulated and re-rendered figure (PNG bytes ready for the
  front end), over 5 moves in each of 3 rounds (a fresh panel per round, so that
  nothing is cached from an earlier round): median, 90th percentile and max,
  split into compute and render; target 150 ms at the default sizes.
- static_panels: the website's copy of every chapter's panel (lora_clusters.static_panels)
  at its full grid, as the chapters make it: seconds to make it, settings, pictures and
  the bytes it adds to its page; then each copy alone in a page opened from a file in
  headless Chromium, every control swept by keyboard through its grid and back, and the
  time from the key press to the new picture decoded and painted (median, 90th
  percentile and max over all moves of all panels; target 100 ms).
- scaling: time per RK4 step for n = 20 ... 2000 tokens in d = 64 next to the time
  of the matrix products that one step needs.
- toy_training: epochs per second of the toy transformer (Chapter 6) at the cpu and
  the paper's sizes, each depth, for the batched trainer (the seeds of one depth
  together, no host sync per epoch) and for an authors-style loop (one model at a time,
  evaluation and logging with host syncs every epoch), per model; and their ratio.
  Beside the times, the arithmetic of each loop per model-epoch (floating-point
  operations counted by torch's FlopCounterMode) and the ratio of the two: the speed-up
  the batched trainer would reach if both loops ran at the same operations per second.
- head_spectra: the spectra of every head of the offline models (Chapter 7) on the
  d_h x d_h cores, against the d x d route timed on a few heads and extrapolated.
- w2_memory: exact W2 between two clouds of 5000 tokens in d = 64 (and 2000), each in a
  fresh process: wall time and peak resident memory above the process's baseline;
  targets 1 GB and 10 s at n = 5000.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import baseline_authors_style as baseline  # noqa: E402
from lora_clusters import dynamics, experiments, setups  # noqa: E402

RESULTS = HERE / "results"


def machine():
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_sweep():
    x0 = setups.initial_tokens(20, 2, seed=5)
    eps = np.logspace(-4, -1, 40)
    seconds, sweep = best_of(lambda: experiments.phase_transition_sweep(x0, eps, delta=0.1, progress=True), repeat=2)
    slope = np.polyfit(np.log(eps), np.log(sweep.T_star), 1)[0]
    return {
        "seconds": seconds,
        "target_seconds": 30,
        "n_eps": len(eps),
        "T_delta": sweep.T_delta,
        "T_star_range": [float(sweep.T_star.min()), float(sweep.T_star.max())],
        "loglog_slope": float(slope),
        "adaptive_steps": sweep.n_steps,
        "velocity_evaluations": sweep.nfev,
        "T_star_times_eps": [float(v) for v in sweep.T_star * eps],
    }


def bench_phase_diagram():
    eps = np.logspace(-4, -1, 25)
    t0 = time.perf_counter()
    diagram = experiments.phase_diagram(range(8), eps, n=20, d=2, delta=0.1, progress=True)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "n_configurations": 8,
        "n_eps": len(eps),
        "configurations_with_transition": int(diagram.has_transition.sum()),
        "seconds_per_configuration": seconds / 8,
    }


def bench_baseline():
    x0 = setups.initial_tokens(20, 2, seed=5)
    I = np.eye(2)
    steps = 20
    eps_subset = np.array([1e-3, 1e-2])
    base_seconds, _ = best_of(
        lambda: [
            baseline.simulate(x0, I, I, setups.perturbed_value_matrix(e), t_max=steps * 0.1, dt=0.1) for e in eps_subset
        ],
        repeat=3,
    )
    base_per = base_seconds / (len(eps_subset) * steps)

    eps_all = np.logspace(-4, -1, 40)
    our_steps = 500
    seconds, _ = best_of(
        lambda: dynamics.simulate(
            x0, I, I, setups.perturbed_value_matrix(eps_all), t_max=our_steps * 0.1, dt=0.1, save_every=our_steps
        )
    )
    our_per = seconds / (len(eps_all) * our_steps)

    # accuracy on a common subset: final state at t = 1.5 against RK4 with dt = 0.001 (the
    # baseline forms e^{logit} without shifting and overflows to NaN near t = 3 for these tokens)
    V = setups.perturbed_value_matrix(1e-2)
    ref = dynamics.simulate(x0, I, I, V, t_max=1.5, dt=0.001, save_every=1500).final
    agree = {}
    for dt in (0.1, 0.01):
        _, b_states = baseline.simulate(x0, I, I, V, t_max=1.5, dt=dt)
        ours = dynamics.simulate(x0, I, I, V, t_max=1.5, dt=dt, save_every=10**6).final
        agree[f"dt={dt}"] = {
            "baseline_max_error": float(np.abs(b_states[-1] - ref).max()),
            "engine_max_error": float(np.abs(ours - ref).max()),
        }
    # the sweep as it is run: adaptive steps, counted per equivalent dt = 0.1 step
    sweep_seconds, sweep = best_of(lambda: experiments.phase_transition_sweep(x0, eps_all, delta=0.1), repeat=1)
    t_simulated = float(np.nanmax(np.where(np.isfinite(sweep.T_star), sweep.T_star, np.nan)))
    adaptive_per = sweep_seconds / (len(eps_all) * t_simulated / 0.1)
    return {
        "baseline_seconds_per_eps_step": base_per,
        "engine_seconds_per_eps_step": our_per,
        "speedup": base_per / our_per,
        "target_speedup": 1000,
        "adaptive_sweep_seconds_per_equivalent_eps_step": adaptive_per,
        "adaptive_speedup": base_per / adaptive_per,
        "common_subset": {"eps": eps_subset.tolist(), "steps": steps, "n": 20, "d": 2},
        "agreement_at_t1.5_vs_rk4_dt1e-3": agree,
    }


def matmul_time(n, d, rng, repeat=5):
    """The products of one RK4 step: per stage Z E^T Q^T, Z E^T K^T (n d^2), q k^T, W Z (n^2 d),
    (mean - Z) V^T (n d^2), and Q E, K E (d^3)."""
    Z, q, k, M = rng.standard_normal((4, n, d))
    W = rng.random((n, n))
    A = rng.standard_normal((4, d, d))

    def one_step():
        for _ in range(4):
            A[0] @ A[1], A[2] @ A[1]
            Z @ A[0].T, Z @ A[2].T
            q @ k.T
            W @ Z
            M @ A[3].T

    return best_of(one_step, repeat)[0]


def bench_scaling():
    rng = np.random.default_rng(0)
    d = 64
    rows = []
    for n in (20, 200, 500, 1000, 2000):
        x0 = rng.standard_normal((n, d))
        Q = np.eye(d) + rng.standard_normal((d, d)) / np.sqrt(d)
        K = np.eye(d) + rng.standard_normal((d, d)) / np.sqrt(d)
        V = setups.value_matrix("symmetric", d, seed=1)
        steps = 10 if n >= 1000 else 50
        seconds, _ = best_of(
            lambda x0=x0, Q=Q, K=K, V=V, steps=steps: dynamics.simulate(
                x0, Q, K, V, t_max=steps * 0.01, dt=0.01, save_every=steps
            ),
            3,
        )
        per_step = seconds / steps
        mm = matmul_time(n, d, rng)
        rows.append(
            {"n": n, "d": d, "seconds_per_step": per_step, "matmul_seconds_per_step": mm, "ratio": per_step / mm}
        )
        print(f"n={n:5d}  step {per_step * 1e3:8.3f} ms   matmuls {mm * 1e3:8.3f} ms   ratio {per_step / mm:5.2f}")
    return {"rows": rows, "target_ratio_at_n2000": 2.0}


# one sequence of new values per control, starting from each panel's defaults
WIDGET_MOVES = {
    "DynamicsExplorer": {
        "seed": [1, 2, 3, 4, 5],
        "n": [30, 10, 20, 25, 15],
        "t_max": [12.0, 8.0, 10.0, 6.0, 14.0],
        "V": ["symmetric", "rotation", "identity", "negative eigenvalue", "identity"],
    },
    "StabilityExplorer": {
        "log10_size": [-3.0, -1.5, -2.5, -1.0, -2.0],
        "rank": [2, 3, 1, 2, 1],
        "target": ["A", "both", "V", "A", "V"],
        "radius": [0.4, 0.1, 0.3, 0.2, 0.5],
    },
    "PhaseTransitionExplorer": {
        "log10_eps": [-1.75, -2.25, -1.5, -2.0, -1.25],
        "seed": [6, 7, 8, 9, 5],
        "n": [24, 16, 20, 22, 18],
    },
    "LowRankExplorer": {
        "rank": [2, 1, 2, 1, 2],
        "d": [3, 4, 2, 5, 2],
        "n": [30, 10, 20, 25, 15],
        "seed": [2, 3, 4, 5, 1],
    },
}


def bench_widgets(rounds: int = 3):
    import matplotlib

    matplotlib.use("Agg")
    from unittest import mock

    from lora_clusters import widgets
    from lora_clusters.panels import base

    results = {"target_ms": 150, "rounds": rounds}
    for panel_name, moves in WIDGET_MOVES.items():
        render_times = []

        def timed_render(fig, *args, _times=render_times, _render=base.render_png, **kwargs):
            t0 = time.perf_counter()
            png = _render(fig, *args, **kwargs)
            _times.append(time.perf_counter() - t0)
            return png

        totals = {control: [] for control in moves}
        renders = {control: [] for control in moves}
        # the panel's own display path (PNG into the Output widget), with the PNG
        # rendering timed separately; no front end here, so no transfer or paint time
        with mock.patch.object(base, "render_png", timed_render):
            for _ in range(rounds):
                panel = getattr(widgets, panel_name)()
                for control, values in moves.items():
                    for value in values:
                        render_times.clear()
                        t0 = time.perf_counter()
                        panel.controls[control].value = value
                        totals[control].append(time.perf_counter() - t0)
                        renders[control].append(sum(render_times))
        per_control = {}
        for control in moves:
            totals_ms, renders_ms = 1000 * np.array(totals[control]), 1000 * np.array(renders[control])
            per_control[control] = {
                "median_ms": float(np.median(totals_ms)),
                "p90_ms": float(np.percentile(totals_ms, 90)),
                "max_ms": float(totals_ms.max()),
                "median_render_ms": float(np.median(renders_ms)),
                "median_compute_ms": float(np.median(totals_ms - renders_ms)),
                "moves": len(totals_ms),
            }
        medians = [c["median_ms"] for c in per_control.values()]
        results[panel_name] = {
            "controls": per_control,
            "worst_median_ms": max(medians),
            "under_target": bool(max(medians) < 150),
        }
        print(panel_name, {k: (round(v["median_ms"]), round(v["p90_ms"])) for k, v in per_control.items()})
    return results


# the panels as chapters 1-5 make them
CHAPTER_PANELS = {
    "DynamicsExplorer": dict(n=20, seed=5, t_max=10.0, V="identity"),
    "StabilityExplorer": dict(log10_size=-2.0, rank=1, target="V", radius=0.2),
    "PhaseTransitionExplorer": dict(log10_eps=-2.0, n=20, seed=5),
    "LowRankExplorer": dict(rank=1, d=2, n=20, seed=1),
    "OrthogonalLoRAExplorer": dict(log10_eps=-2.0, C=2.0, spread=0.5, V="I"),
}


def _results_panels() -> dict:
    """The panels of chapters 6-9 as the chapters make them, over the committed results
    (chapter 7's head spectra are computed from the two offline models)."""
    from lora_clusters import scale, store
    from lora_clusters.nets import depth, head_spectra, heads, lm_lora, loading, toy_depth, toy_study
    from lora_clusters.panels.depth import LayerCosineExplorer
    from lora_clusters.panels.lm_lora import UpdateEigenvaluesExplorer
    from lora_clusters.panels.spectra import HeadSpectraExplorer
    from lora_clusters.panels.toy import ForgettingExplorer

    toy_scale = store.scale_for(toy_study.EXPERIMENT)
    config = scale.settings("toy", toy_scale)
    study = toy_study.run_study(config, toy_scale, progress=False)
    authors = toy_study.run_study(toy_depth.authors_settings(config), toy_scale, name="study-authors", progress=False)
    sweep = toy_depth.lr_sweep(study)
    runs = {
        "book's settings, lr 1e-4": study.finetuned,
        "book's settings, lr 1e-5": sweep[1e-5],
        "book's settings, lr 1e-3": sweep[1e-3],
        "authors' settings": authors.finetuned,
        "equal relative step": toy_depth.equal_relative_step(study)[0],
    }
    spectra = {
        label: head_spectra.head_spectra(heads.attention_weights(loading.load(key), label))
        for label, key in (("SmolLM2-135M", "smollm2"), ("MiniLM-L6", "minilm"))
    }
    depth_scale = store.scale_for(depth.EXPERIMENT)
    similarities = depth.similarity_study(scale.settings("depth", depth_scale), depth_scale)
    lm_scale = store.scale_for(lm_lora.EXPERIMENT)
    lm_runs = lm_lora.stored_runs(scale.settings("lm_lora", lm_scale), lm_lora.chapter_data(), lm_scale, (0, 1, 2))
    return {
        "ForgettingExplorer": ForgettingExplorer(runs, depth=study.depths[0]),
        "HeadSpectraExplorer": HeadSpectraExplorer(spectra, model="SmolLM2-135M", layer=3, head=4),
        "LayerCosineExplorer": LayerCosineExplorer(similarities, kind="dummy text", text=0),
        "UpdateEigenvaluesExplorer": UpdateEigenvaluesExplorer(lm_runs),
    }


# in the page: the time from a key press to the next picture decoded and painted (the
# first frame after decoding, then the task after it)
_MOVE_TIMER = """() => {
  window.__moves = [];
  document.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
  const img = document.querySelector('img.lcsp-image');
  new MutationObserver(() => {
    const t0 = window.__t0;
    img.decode().then(() => requestAnimationFrame(() => setTimeout(() => {
      window.__moves.push(performance.now() - t0);
    }, 0)));
  }).observe(img, {attributes: true, attributeFilter: ['src']});
}"""


def _sweep_keys(kind: str, position: int, last: int) -> list[str]:
    """Keys that take a control through every value of its grid and back to where it was."""
    if kind == "checkbox":
        return ["Space", "Space"]
    up, down = ("ArrowRight", "ArrowLeft") if kind == "range" else ("ArrowDown", "ArrowUp")
    return [up] * (last - position) + [down] * last + [up] * position


def bench_static_panels():
    import shutil
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    from playwright.sync_api import sync_playwright

    from lora_clusters import static_panels, widgets

    chromium = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    copies, panels = {}, {}
    made = {name: getattr(widgets, name)(**chapter) for name, chapter in CHAPTER_PANELS.items()}
    for name, panel in (made | _results_panels()).items():
        t0 = time.perf_counter()
        copy = static_panels.static_panel(panel)
        seconds = time.perf_counter() - t0
        block = copy.html
        copies[name] = copy
        panels[name] = {
            "grid": {c.name: list(c.values) for c in copy.controls},
            "settings": len(copy.settings),
            "grid_points": len(copy.states),
            "pictures": len(copy.images),
            "picture_type": copy.image_type,
            "picture_size_px": list(copy.image_size),
            "duplicate_pictures": len(copy.duplicates()),
            "picture_bytes_base64": copy.image_bytes,
            "page_bytes": len(block.encode()),
            "make_seconds": seconds,
            "make_seconds_per_setting": seconds / len(copy.states),
        }
        print(name, {k: panels[name][k] for k in ("settings", "pictures", "page_bytes", "make_seconds")}, flush=True)
    all_moves = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for name, copy in copies.items():
            path = Path(folder) / f"{name}.html"
            path.write_text(
                '<!doctype html><html><head><meta charset="utf-8"><title>panel</title></head>'
                f"<body>{copy.html}</body></html>",
                encoding="utf-8",
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            t0 = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_function("() => document.querySelector('.lcsp').getAttribute('data-lcsp-ready')")
            load_ms = 1000 * (time.perf_counter() - t0)
            page.evaluate(_MOVE_TIMER)
            key_of = "() => document.querySelector('.lcsp').getAttribute('data-lcsp-key')"
            for index, control in enumerate(copy.controls):
                element = page.locator(f"[data-lcsp-control='{index}']")
                element.focus()
                position = 0 if control.kind == "checkbox" else int(element.input_value())
                for key in _sweep_keys(control.kind, position, len(control.values) - 1):
                    before, count = page.evaluate(key_of), page.evaluate("() => window.__moves.length")
                    page.keyboard.press(key)
                    if page.evaluate(key_of) != before:  # a setting the panel lowers may show the same
                        page.wait_for_function("(n) => window.__moves.length > n", arg=count)
            moves = page.evaluate("() => window.__moves")
            page.close()
            all_moves += moves
            panels[name].update(
                page_load_ms=load_ms,
                moves=len(moves),
                move_median_ms=float(np.median(moves)),
                move_p90_ms=float(np.percentile(moves, 90)),
                move_max_ms=float(np.max(moves)),
            )
            print(name, {k: round(panels[name][k], 1) for k in ("move_median_ms", "move_p90_ms", "page_load_ms")})
        browser.close()
    per_page = [v["page_bytes"] for v in panels.values()]
    return {
        "target_ms": 100,
        "move_median_ms": float(np.median(all_moves)),
        "move_p90_ms": float(np.percentile(all_moves, 90)),
        "move_max_ms": float(np.max(all_moves)),
        "moves": len(all_moves),
        "under_target": bool(np.median(all_moves) < 100),
        "largest_page_bytes": max(per_page),
        "total_bytes": sum(per_page),
        "page_bytes_limit": 6_000_000,
        "total_bytes_limit": 30_000_000,
        "panels": panels,
    }


_W2_CHILD = """
import resource, sys, time
import numpy as np
from lora_clusters import measures
n, d = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.1
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
w2 = measures.wasserstein2(X, Y)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(seconds, (peak - base) * 1024, w2)
"""


def bench_w2_memory():
    import subprocess

    rows = []
    for n in (2000, 5000):
        out = subprocess.run(
            [sys.executable, "-c", _W2_CHILD, str(n), "64"], capture_output=True, text=True, check=True
        ).stdout.split()
        seconds, peak_bytes, w2 = float(out[0]), float(out[1]), float(out[2])
        rows.append({"n": n, "d": 64, "seconds": seconds, "peak_extra_bytes": peak_bytes, "w2": w2})
        print(f"n = {n}, d = 64: W2 = {w2:.6f} in {seconds:.2f} s, peak +{peak_bytes / 2**20:.0f} MiB")
    return {"rows": rows, "target_seconds_at_5000": 10.0, "target_peak_bytes_at_5000": 1e9}


def toy_training_flops(config, depth, data, train, epochs):
    """Floating-point operations per model-epoch of the batched trainer and of the
    authors-style loop (every matrix product counted by torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    import toy_authors_style
    from lora_clusters.nets import toy

    with FlopCounterMode(display=False) as ours:
        toy.pretrain(config, depth)
    model = toy.initial_model(config.p, config.d, depth, 0)
    with FlopCounterMode(display=False) as theirs:
        toy_authors_style.train_one_model_per_epoch_sync(model, data.tokens, data.targets, train, epochs)
    return ours.get_total_flops() / (epochs * len(config.seeds)), theirs.get_total_flops() / epochs


def bench_toy_training(repeats=3):
    """Side by side: for each depth, the batched trainer (all seeds of the depth at
    once, curves every ``eval_every`` epochs) and the authors-style loop alternate
    ``repeats`` times (the machine may be busy); rates and ratio are medians.  The
    operation counts bound the ratio: at equal operations per second it would be
    ``flop_ratio``."""
    import toy_authors_style
    from lora_clusters import scale as scales
    from lora_clusters.nets import runtime, toy

    rows = []
    for scale, epochs, depths in (("cpu", 30, None), ("gpu", 6, (2,))):
        config = scales.settings("toy", scale, epochs=epochs)
        data = toy.arithmetic_data(config.p, "+")
        train = data.split(config.train_fraction, 0)
        for depth in depths or config.depths:
            ours, theirs = [], []
            for _ in range(repeats):
                result = toy.pretrain(config, depth)  # all seeds of this depth at once
                ours.append(epochs * len(config.seeds) / result.seconds)  # model-epochs per second
                model = toy.initial_model(config.p, config.d, depth, 0)
                with runtime.threads():
                    start = time.perf_counter()
                    toy_authors_style.train_one_model_per_epoch_sync(model, data.tokens, data.targets, train, epochs)
                    theirs.append(epochs / (time.perf_counter() - start))
            ratio = float(np.median(np.array(ours) / np.array(theirs)))
            flops_ours, flops_theirs = toy_training_flops(config, depth, data, train, epochs)
            rate_ours, rate_theirs = float(np.median(ours)), float(np.median(theirs))
            rows.append(
                {
                    "scale": scale,
                    "p": config.p,
                    "d": config.d,
                    "depth": depth,
                    "epochs": epochs,
                    "eval_every": config.eval_every,
                    "models_batched": len(config.seeds),
                    "threads": runtime.thread_count(),
                    "repeats": repeats,
                    "batched_model_epochs_per_s": rate_ours,
                    "authors_style_epochs_per_s": rate_theirs,
                    "ratio": ratio,
                    "batched_flops_per_model_epoch": flops_ours,
                    "authors_style_flops_per_model_epoch": flops_theirs,
                    "flop_ratio": flops_theirs / flops_ours,
                    "batched_gflops_per_s": rate_ours * flops_ours / 1e9,
                    "authors_style_gflops_per_s": rate_theirs * flops_theirs / 1e9,
                }
            )
            row = rows[-1]
            print(
                f"{scale} depth {depth}: batched {rate_ours:.2f}, authors-style {rate_theirs:.2f} "
                f"model-epochs/s (x{ratio:.2f}, median of {repeats} side by side); arithmetic per "
                f"model-epoch {flops_ours / 1e6:.0f} vs {flops_theirs / 1e6:.0f} MFLOP "
                f"(x{row['flop_ratio']:.2f}); "
                f"{row['batched_gflops_per_s']:.1f} vs {row['authors_style_gflops_per_s']:.1f} GFLOP/s"
            )
    return {"rows": rows, "device": "cpu", "target_ratio_at_cpu_scale": 3.0}


def bench_head_spectra():
    from lora_clusters.nets import head_spectra, heads, loading

    rows = []
    for name in ("smollm2", "minilm"):
        weights = heads.attention_weights(loading.load(name), name)
        n_heads = weights.n_layers * weights.n_heads
        core, _ = best_of(lambda w=weights: head_spectra.head_spectra(w), repeat=2)
        sample = [(layer, h) for layer in range(0, weights.n_layers, max(1, weights.n_layers // 3)) for h in (0,)]
        start = time.perf_counter()
        for layer, h in sample:
            head_spectra.naive_head_spectra(weights, layer, h)
        naive_per_head = (time.perf_counter() - start) / len(sample)
        rows.append(
            {
                "model": name,
                "d": weights.d,
                "head_dim": weights.head_dim,
                "heads": n_heads,
                "core_route_all_heads_s": core,
                "naive_route_per_head_s": naive_per_head,
                "naive_route_all_heads_s_extrapolated": naive_per_head * n_heads,
                "speed_up": naive_per_head * n_heads / core,
            }
        )
        print(
            f"{name}: core route {core:.2f} s for {n_heads} heads; naive {naive_per_head:.3f} s per head, "
            f"{naive_per_head * n_heads:.0f} s for all (x{naive_per_head * n_heads / core:.0f})"
        )
    return {"rows": rows}


def bench_language_model():
    """Chapters 8 and 9 on this CPU: one LoRA step on SmolLM2 (batch 16, prompts of at
    most 64 tokens, rank 2 on the value projections) and a forward pass through the
    layer stack run twice (60 layers) on 128 tokens."""
    import torch

    from lora_clusters.nets import depth, lm_lora, loading, runtime, texts

    with runtime.threads():
        threads = torch.get_num_threads()
        model, tokenizer, name = loading.load_with_tokenizer("smollm2")
        ids = tokenizer(texts.random_words(200, seed=0), return_tensors="pt")["input_ids"][:, :128]

        def forward_twice():
            with torch.no_grad(), depth.repeated_layers(model, times=2):
                model(input_ids=ids, use_cache=False)

        forward_twice()  # warm-up
        forward_s, _ = best_of(forward_twice, repeat=3)
        # a short run of the chapter's training loop: its clock covers the steps and the
        # closing checkpoint (update eigenvalues and 16 held-out snippets)
        steps = 8
        settings = lm_lora.LoRASettings(name, steps=steps, batch_size=16, n_test=16, checkpoint_every=steps)
        run = lm_lora.train_value_lora(model, tokenizer, settings, name=name)
    per_step = run.seconds / steps
    print(
        f"{name}, {threads} threads: forward at 2x depth on {ids.shape[1]} tokens {forward_s:.2f} s; "
        f"LoRA step (B16, T<=64) {per_step:.2f} s"
    )
    return {
        "model": name,
        "torch_threads": threads,
        "forward_2x_depth_128_tokens_s": forward_s,
        "lora_step_b16_t64_s": per_step,
        "lora_steps_timed": steps,
        "cpu_scale_240_steps_minutes_estimated": per_step * 240 / 60,
    }


def bench_book_warm():
    """``make book`` as a reader runs it again: the environment is set up and the
    execution cache holds every chapter, so nothing executes; the time is Sphinx, the
    PDFs, the figure files and the decks.  The log says whether any chapter executed."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    start = time.perf_counter()
    done = subprocess.run(["make", "book"], cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = done.stdout + done.stderr
    executed = [line for line in log.splitlines() if "Executing notebook using" in line]
    cached = [line for line in log.splitlines() if "Using cached notebook" in line]
    return {
        "target_s": 180,
        "seconds": seconds,
        "under_target": seconds < 180,
        "returncode": done.returncode,
        "chapters_executed": len(executed),
        "chapters_from_cache": len(cached),
        "site_bytes": sum(f.stat().st_size for f in (root / "_build" / "html").rglob("*") if f.is_file()),
    }


BENCHES = {
    "sweep": bench_sweep,
    "phase_diagram": bench_phase_diagram,
    "baseline": bench_baseline,
    "widgets": bench_widgets,
    "static_panels": bench_static_panels,
    "scaling": bench_scaling,
    "w2_memory": bench_w2_memory,
    "toy_training": bench_toy_training,
    "head_spectra": bench_head_spectra,
    "language_model": bench_language_model,
    "book_warm": bench_book_warm,
}


def main(names):
    RESULTS.mkdir(exist_ok=True)
    for name in names or BENCHES:
        print(f"== {name}", flush=True)
        result = {"benchmark": name, "machine": machine(), **BENCHES[name]()}
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(
            json.dumps({k: v for k, v in result.items() if k not in ("machine", "T_star_times_eps", "rows")}, indent=1)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
