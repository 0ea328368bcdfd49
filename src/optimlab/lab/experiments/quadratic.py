"""Why momentum works, after Goh, "Why Momentum Really Works" (Distill, 2017): momentum on a
quadratic, one eigen-direction at a time.

On f = 1/2 sum_i lambda_i x_i^2 the lecture's momentum (v_t = beta v_{t-1} + eta grad,
w_{t+1} = w_t - v_t) acts on each eigen-direction separately, as the 2x2 linear map

    (x_{t+1}, v_{t+1}) = M (x_t, v_t),   M = [[1 - eta lambda, -beta], [eta lambda, beta]],

so the error of direction i shrinks like rho(M_i)^t, rho the spectral radius. Everything in
this chapter is measured by running optimlab's SGD(momentum=beta) and compared with rho.
"""

from __future__ import annotations

import numpy as np

from .. import surfaces
from . import Plot, Result, Table
from . import claims as C
from ._common import swept
from ._text import fmt, pct, plural

KAPPA = 100.0


def iteration_matrix(eta, beta, lam) -> np.ndarray:
    """M(eta, beta, lambda) of one eigen-direction, acting on (x, v) (broadcasts: shape
    (..., 2, 2))."""
    eta, beta, lam = np.broadcast_arrays(*(np.asarray(a, float) for a in (eta, beta, lam)))
    m = np.empty((*eta.shape, 2, 2))
    m[..., 0, 0] = 1 - eta * lam
    m[..., 0, 1] = -beta
    m[..., 1, 0] = eta * lam
    m[..., 1, 1] = beta
    return m


def spectral_radius(eta, beta, lam) -> np.ndarray:
    """rho(M) = the largest |eigenvalue| of :func:`iteration_matrix` (broadcasts)."""
    return np.max(np.abs(np.linalg.eigvals(iteration_matrix(eta, beta, lam))), axis=-1)


def optimal(kappa: float, lam_min: float = 1.0) -> tuple[float, float, float]:
    """Goh's optimal (eta, beta) and the rate they give, for curvatures lam_min..kappa lam_min:
    eta = (2 / (sqrt(l_max) + sqrt(l_min)))^2, beta = ((sqrt k - 1) / (sqrt k + 1))^2,
    rho = (sqrt k - 1) / (sqrt k + 1)."""
    root = np.sqrt(kappa)
    eta = (2.0 / (np.sqrt(kappa * lam_min) + np.sqrt(lam_min))) ** 2
    return float(eta), float(((root - 1) / (root + 1)) ** 2), float((root - 1) / (root + 1))


def _components(path: np.ndarray, angle: float = np.pi / 4) -> tuple[np.ndarray, np.ndarray]:
    """The error along the floor (u, curvature 1) and across it (v, curvature kappa)."""
    c, s = np.cos(angle), np.sin(angle)
    return path[:, 0] * c + path[:, 1] * s, -path[:, 0] * s + path[:, 1] * c


def measured_rate(x: np.ndarray, start: int, stop: int) -> float:
    """The per-step rate of an error sequence x_t from its state (x_t, x_t - x_{t-1}):
    (|s_stop| / |s_start|)^(1 / (stop - start)) (the state's norm, unlike |x_t|, does not
    vanish at the zero crossings of an oscillation)."""
    state = np.hypot(x[1:], np.diff(x))
    return float((state[stop - 1] / state[start - 1]) ** (1.0 / (stop - start)))


def closed_form(eta: float, beta: float, lam: float, x0: float, steps: int) -> np.ndarray:
    """The error x_0..x_T of one eigen-direction predicted by the iteration matrix:
    (x_t, v_t) = M^t (x_0, 0)."""
    m = iteration_matrix(eta, beta, lam)
    state = np.array([x0, 0.0])
    out = [x0]
    for _ in range(steps):
        state = m @ state
        out.append(state[0])
    return np.array(out)


def _eigen_start(start) -> tuple[float, float]:
    """The default start of the 45-degree ravine in its eigen-coordinates (u, v)."""
    u, v = _components(np.asarray(start, float)[None, :])
    return float(u[0]), float(v[0])


def _steps_to(gap: np.ndarray, target: float) -> int:
    above = np.flatnonzero(~(gap <= target))
    return int(above[-1] + 1) if above.size else 0


def run_momentum_quadratic(quick: bool = False) -> Result:
    """The ravine's two eigen-directions under gradient descent and momentum; the sqrt(kappa)
    speed-up; critical damping; and the (lr, beta) region where rho < 1, over the measured map
    of final losses."""
    from ...viz import heatmap, lines_figure

    ravine = surfaces.get("ravine")
    eta_m, beta_m, rho_m = optimal(KAPPA)
    eta_gd = 2.0 / (1.0 + KAPPA)
    rho_gd = (KAPPA - 1) / (KAPPA + 1)
    steps = 300
    runs = {
        f"SGD lr={fmt(eta_gd)}": swept(ravine, "SGD", eta_gd, steps),
        f"Momentum lr={fmt(eta_m)} β={fmt(beta_m)}": swept(
            ravine, f"SGD:momentum={beta_m}", eta_m, steps
        ),
    }
    curves, rates = {}, {}
    t = np.arange(steps + 1)
    for label, run in runs.items():
        u, v = _components(run.path)
        curves[f"{label}: floor (λ = 1)"] = (t, np.abs(u) + 1e-300)
        curves[f"{label}: wall (λ = {fmt(KAPPA)})"] = (t, np.abs(v) + 1e-300)
        rates[label] = (measured_rate(u, 100, 250), measured_rate(v, 100, 250))
    (gd_u, gd_v), (m_u, m_v) = rates.values()
    u0, v0 = _eigen_start(ravine.default_start)
    exact_m = (
        measured_rate(closed_form(eta_m, beta_m, 1.0, u0, steps), 100, 250),
        measured_rate(closed_form(eta_m, beta_m, KAPPA, v0, steps), 100, 250),
    )
    theory = {
        "gd": (spectral_radius(eta_gd, 0.0, 1.0), spectral_radius(eta_gd, 0.0, KAPPA)),
        "m": (spectral_radius(eta_m, beta_m, 1.0), spectral_radius(eta_m, beta_m, KAPPA)),
    }

    # the sqrt(kappa) speed-up: steps to 1e-8 at each method's optimal parameters
    kappas = [10.0, 100.0, 1000.0]
    speed_rows = []
    for kappa in kappas:
        surface = surfaces.quadratic(condition_number=kappa, name=f"quadratic_{kappa:g}")
        e_m, b_m, r_m = optimal(kappa)
        e_gd, r_gd = 2.0 / (1.0 + kappa), (kappa - 1) / (kappa + 1)
        horizon = int(25 * kappa) + 200
        gd = swept(surface, "SGD", e_gd, horizon)
        mom = swept(surface, f"SGD:momentum={b_m}", e_m, horizon)
        n_gd, n_m = _steps_to(gd.losses, 1e-8), _steps_to(mom.losses, 1e-8)
        a, b = _eigen_start(surface.default_start)

        def exact_gap(eta, beta, a=a, b=b, kappa=kappa, horizon=horizon):
            x, y = (
                closed_form(eta, beta, 1.0, a, horizon),
                closed_form(eta, beta, kappa, b, horizon),
            )
            return 0.5 * (x**2 + kappa * y**2)

        exact = (_steps_to(exact_gap(e_gd, 0.0), 1e-8), _steps_to(exact_gap(e_m, b_m), 1e-8))
        predicted = np.log(r_gd) / np.log(r_m)
        speed_rows.append(
            [kappa, n_gd, n_m, exact[0], exact[1], n_gd / n_m, float(1 / predicted),
             float(np.sqrt(kappa))]
        )  # fmt: skip

    # critical damping of the floor direction (lambda = 1) at the optimal eta
    beta_crit = (1.0 - np.sqrt(eta_m * 1.0)) ** 2
    betas = np.round(np.linspace(0.0, 0.95, 39 if not quick else 20), 6)
    bowl = surfaces.quadratic(condition_number=1.0, name="round_bowl")  # lambda = 1 everywhere
    along = np.array([3.0, 3.0]) / np.sqrt(2.0)  # 3 along the floor direction
    measured, predicted, windowed = [], [], []
    for beta in betas:
        run = swept(bowl, f"SGD:momentum={beta}", eta_m, 200, start=along)
        u, _ = _components(run.path)
        measured.append(measured_rate(u, 60, 160))
        windowed.append(measured_rate(closed_form(eta_m, beta, 1.0, 3.0, 200), 60, 160))
        predicted.append(float(spectral_radius(eta_m, beta, 1.0)))
    measured, predicted = np.array(measured), np.array(predicted)
    worst_exact = float(np.max(np.abs(measured / np.array(windowed) - 1)))
    worst_rate = float(np.max(np.abs(measured / predicted - 1)))
    shows = {}
    for name, beta in (("overdamped", 0.3), ("critical", beta_crit), ("underdamped", 0.9)):
        run = swept(bowl, f"SGD:momentum={beta}", eta_m, 120, start=along)
        shows[name] = _components(run.path)[0]
    crossings = {k: int(np.count_nonzero(np.diff(np.sign(u[np.abs(u) > 1e-14])) != 0))
                 for k, u in shows.items()}  # fmt: skip

    # the (lr, beta) map and the region rho < 1
    lrs = np.logspace(-3, np.log10(0.06), 13 if quick else 31)
    beta_grid = np.round(np.linspace(0.0, 0.95, 11 if quick else 20), 6)
    map_steps = 200 if quick else 400
    from ..sweep import sweep

    grid = sweep(ravine, "SGD", steps=map_steps, learning_rate=lrs, momentum=list(beta_grid),
                 keep_paths=False)  # fmt: skip
    final = np.asarray(grid.final_loss).reshape(len(lrs), len(beta_grid)) - grid.f_min
    diverged = np.asarray(grid.diverged).reshape(final.shape)
    start_gap = float(ravine.value(ravine.default_start) - grid.f_min)
    rho = np.maximum(
        spectral_radius(lrs[:, None], beta_grid[None, :], 1.0),
        spectral_radius(lrs[:, None], beta_grid[None, :], KAPPA),
    )
    converged = ~diverged & (final < start_gap)
    mismatch = converged != (rho < 1.0)
    near = np.abs(rho - 1.0) < 0.01
    shown = np.where(diverged, np.nan, np.maximum(final, 1e-16))
    fig_map = heatmap(
        shown.T,
        lrs,
        beta_grid,
        xlabel="learning rate η",
        ylabel="momentum β",
        title=f"f − f_min after {map_steps} steps on the ravine; line: ρ(M) = 1, "
        "η = 2(1 + β)/λ_max",
        cbar_label="f − f_min (floor 1e-16)",
        mark_min=False,
        annotate=False,
    )
    ax = fig_map.axes[0]
    bb = np.linspace(0.0, 0.95, 100)
    ax.plot(2 * (1 + bb) / KAPPA, bb, color="white", linewidth=3.2)
    ax.plot(2 * (1 + bb) / KAPPA, bb, color="#EE3377", linewidth=1.6, label="ρ(M) = 1")
    ax.plot([eta_m], [beta_m], marker="*", color="white", markersize=14, markeredgecolor="k",
            linestyle="none", label="Goh's optimum")  # fmt: skip
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    ax.set_xlim(lrs[0] / 1.15, lrs[-1] * 1.15)

    numbers = {
        "optimal eta (kappa=100)": eta_m,
        "optimal beta (kappa=100)": beta_m,
        "rate at the optimum, theory": rho_m,
        "rate of the floor, measured (momentum)": m_u,
        "rate of the wall, measured (momentum)": m_v,
        "rate of the floor, measured (GD)": gd_u,
        "critical beta of the floor at the optimal eta": float(beta_crit),
        "largest |measured / theory - 1| over the beta sweep": worst_rate,
        "cells of the map that disagree with rho < 1": int(mismatch.sum()),
    }
    figures = {
        "error_per_eigendirection": Plot(
            lines_figure(
                curves,
                xlabel="step t",
                ylabel="|error| along each eigen-direction",
                title=f"Ravine (κ = {fmt(KAPPA)}), each method at its optimal parameters",
                log_y=True,
            ),
            "at its best rate SGD's two black lines fall in parallel, both by (κ−1)/(κ+1) per "
            "step (the rate balances the floor against the wall); momentum's two orange lines "
            "also fall together, at a far steeper slope.",
        ),
        "critical_damping": Plot(
            lines_figure(
                {
                    "ρ(M), theory": (betas, predicted),
                    "measured rate": (betas, measured),
                },
                xlabel="momentum β (η fixed at the optimum)",
                ylabel="per-step rate of the floor's error",
                title=f"Critical damping at β = (1 − √(ηλ))² = {fmt(beta_crit)}",
                log_y=False,
            ),
            "the rate falls as β grows until the critical β, where the two eigenvalues of M "
            "meet; beyond it they are complex, the error oscillates, and the rate is √β.",
        ),
        "convergence_region": Plot(
            fig_map,
            "every cell left of the magenta line (ρ < 1) converged and every cell right of it "
            "grew or diverged (hatched); the white star, Goh's optimum, sits in the darkest "
            "corner of the valid region.",
        ),
    }
    shortfall = [r[5] / r[7] for r in speed_rows]
    speed_table = Table(
        "Steps until f − f_min stays below 1e-8 from (−3, −2), each method at its optimal "
        "parameters: measured, and predicted by the iteration matrix",
        [
            "κ",
            "gradient descent",
            "momentum",
            "GD, from M",
            "momentum, from M",
            "speed-up",
            "ln ρ_mom / ln ρ_GD",
            "√κ",
        ],
        speed_rows,
        note="ln ρ_mom / ln ρ_GD is the speed-up of the rates alone; the measured speed-up is "
        "lower because at its optimum momentum's two eigenvalues coincide, and the error then "
        "decays like t ρᵗ rather than ρᵗ.",
    )
    summary = (
        'Distill\'s "Why Momentum Really Works" explains momentum on a quadratic, where it '
        "can be solved exactly. Write the error in the eigenvectors of the Hessian: each "
        "direction with curvature $\\lambda$ evolves on its own, by the 2×2 matrix $M$ "
        "below, and shrinks like $\\rho(M)^t$, its spectral radius. On the ravine "
        f"($\\kappa = {fmt(KAPPA)}$) gradient descent's best rate $\\eta = 2/(1 + \\kappa)$ "
        f"leaves the floor shrinking by only {fmt(gd_u, 4)} per step (theory "
        f"$(\\kappa-1)/(\\kappa+1) = {fmt(rho_gd, 4)}$). With $\\eta = {fmt(eta_m)}$ and "
        f"$\\beta = {fmt(beta_m)}$ momentum shrinks both directions by {fmt(m_u, 4)} and "
        f"{fmt(m_v, 4)} per step (theory "
        f"$(\\sqrt\\kappa - 1)/(\\sqrt\\kappa + 1) = {fmt(rho_m, 4)}$).\n\n"
        "**The √κ speed-up.** The number of steps is about $\\ln(1/\\varepsilon) / "
        "(-\\ln\\rho)$, so the speed-up is $\\ln\\rho_{mom} / \\ln\\rho_{GD} \\approx "
        "\\sqrt\\kappa$: measured "
        + ", ".join(f"{fmt(r[5])} at κ = {fmt(r[0])} (√κ = {fmt(r[7])})" for r in speed_rows)
        + ". Every step count is the one the iteration matrix predicts; the speed-up stays "
        f"{pct(1 - max(shortfall))} to {pct(1 - min(shortfall))} below √κ because at the "
        "optimum the two eigenvalues of $M$ coincide and the error decays like "
        "$t\\,\\rho^t$, not $\\rho^t$.\n\n"
        "**Critical damping.** For one direction and a fixed $\\eta$, $M$'s two eigenvalues "
        "are real for small $\\beta$ (the error creeps to 0 without crossing it: "
        f"{plural(crossings['overdamped'], 'crossing')} at β = 0.3) and complex for large "
        "$\\beta$ (it oscillates, with rate $\\sqrt\\beta$: "
        f"{plural(crossings['underdamped'], 'crossing')} at β = 0.9). They meet at "
        f"$\\beta = (1 - \\sqrt{{\\eta\\lambda}})^2 = {fmt(beta_crit)}$, where the rate "
        "is smallest: the critical damping. Goh's optimal $\\beta$ is exactly the critical "
        "damping of the slowest direction. Over the "
        f"{len(betas)} values of β the measured rate equals the matrix's to "
        f"{fmt(worst_exact, 2)} and follows $\\rho(M)$ within {pct(worst_rate)}.\n\n"
        "**Where it converges.** $\\rho(M) < 1$ for every direction exactly when "
        "$0 < \\eta\\lambda_{max} < 2(1 + \\beta)$: momentum raises gradient descent's "
        "limit $2/\\lambda_{max}$ by the factor $1 + \\beta$. Drawn over the measured map of "
        f"final losses, the line separates converged from grown cells: {int(mismatch.sum())} "
        f"of {mismatch.size} cells disagree"
        + (", all on the line itself (ρ within 1% of 1)." if mismatch.any() else ".")
    )
    claims = [
        C.close(
            "GD at its best rate: the floor's measured rate is (κ−1)/(κ+1) (relative 1e-6)",
            gd_u,
            theory["gd"][0],
            rel=1e-6,
        ),
        C.close(
            "GD at its best rate: the wall shrinks at the same rate as the floor (relative 1e-6)",
            gd_v,
            gd_u,
            rel=1e-6,
        ),
        C.close(
            "Momentum at Goh's optimum: the floor's measured rate equals the iteration "
            "matrix's over the same steps (relative 1e-6)",
            m_u,
            exact_m[0],
            rel=1e-6,
        ),
        C.close(
            "... and the wall's (relative 1e-6)",
            m_v,
            exact_m[1],
            rel=1e-6,
        ),
        C.close(
            "Both are ρ(M) up to the factor t^(1/t) of the double eigenvalue (relative 2%)",
            max(m_u, m_v),
            theory["m"][0],
            rel=0.02,
        ),
        C.close(
            "At the optimum ρ(M) is (√κ−1)/(√κ+1) for both directions (relative 1e-6)",
            max(theory["m"]),
            rho_m,
            rel=1e-6,
        ),
        C.check(
            "Every measured step count is the iteration matrix's prediction (±1 step)",
            all(abs(r[1] - r[3]) <= 1 and abs(r[2] - r[4]) <= 1 for r in speed_rows),
            "; ".join(f"κ = {fmt(r[0])}: {r[1]}/{r[3]}, {r[2]}/{r[4]}" for r in speed_rows),
        ),
        C.check(
            "The speed-up grows like √κ: tenfold κ, about √10 ≈ 3.2 times the speed-up "
            "(between 2.5 and 4)",
            all(2.5 <= b[5] / a[5] <= 4 for a, b in zip(speed_rows, speed_rows[1:], strict=False)),
            ", ".join(fmt(b[5] / a[5]) for a, b in zip(speed_rows, speed_rows[1:], strict=False)),
        ),
        C.check(
            "The speed-up is between half of √κ and √κ at every κ",
            all(0.5 <= x <= 1.0 for x in shortfall),
            ", ".join(fmt(x) for x in shortfall),
        ),
        C.close(
            "Goh's optimal β is the critical damping of the floor, (1 − √(η λ_min))²",
            beta_m,
            beta_crit,
            rel=1e-9,
        ),
        C.at_most(
            "Over the β sweep the measured rate equals the iteration matrix's (relative 1e-6)",
            worst_exact,
            1e-6,
        ),
        C.at_most(
            "Over the β sweep the measured rate follows ρ(M) within 2% (relative)",
            worst_rate,
            0.02,
        ),
        C.check(
            "The smallest measured rate is at the grid β nearest the critical β",
            abs(betas[int(np.argmin(measured))] - beta_crit)
            <= np.min(np.abs(betas - beta_crit)) + 1e-12 + (betas[1] - betas[0]),
            f"β = {fmt(betas[int(np.argmin(measured))])} vs {fmt(beta_crit)}",
        ),
        C.check(
            "Below the critical β the error does not cross 0; above it, it oscillates",
            crossings["overdamped"] == 0 and crossings["underdamped"] > 2,
            f"{crossings['overdamped']} and {crossings['underdamped']} crossings",
        ),
        C.quoted(
            "The critical-damping figure's title and the text quote the same critical β",
            fmt(beta_crit),
            figure=C.figure_text(figures["critical_damping"].figure),
            text=summary,
        ),
        C.check(
            "On the map, every cell where converged ≠ (ρ < 1) lies on the boundary "
            "(ρ within 1% of 1)",
            not np.any(mismatch & ~near),
            f"{int(mismatch.sum())} of {mismatch.size} cells disagree",
        ),
    ]
    return Result(
        key="momentum_quadratic",
        title="Why momentum works: the quadratic, one eigen-direction at a time",
        chapter="",
        summary=summary,
        equations=[
            r"\begin{pmatrix} x_{t+1} \\ v_{t+1} \end{pmatrix} = M \begin{pmatrix} x_t \\ v_t"
            r" \end{pmatrix},\quad M = \begin{pmatrix} 1 - \eta\lambda & -\beta \\ \eta\lambda"
            r" & \beta \end{pmatrix}",
            r"\rho(M) < 1 \;\Longleftrightarrow\; 0 < \eta\lambda < 2(1 + \beta),"
            r"\quad 0 \le \beta < 1",
            r"\eta^* = \left(\frac{2}{\sqrt{\lambda_{max}} + \sqrt{\lambda_{min}}}\right)^2,\quad"
            r" \beta^* = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2,\quad"
            r" \rho^* = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}",
        ],
        numbers=numbers,
        tables=[speed_table],
        figures=figures,
        claims=claims,
        settings={
            "surface": "ravine (κ = 100)",
            "map": f"{len(lrs)}×{len(beta_grid)}",
            "map steps": map_steps,
        },  # fmt: skip
    )
