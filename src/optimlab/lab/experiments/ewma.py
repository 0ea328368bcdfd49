"""The exponentially weighted moving average (EWMA) and the effect of beta.

The lecture: V_t = beta * V_{t-1} + (1 - beta) * theta_t with 0 < beta < 1, started at V_0 = 0
(or V_0 = theta_0); its worked example with beta = 0.9 (V_1 = 0.9 * 0 + 0.1 * 13 = 1.3,
V_2 = 0.9 * 1.3 + 0.1 * 17 = 2.87); the unrolled form V_t = (1 - beta) * sum beta^(t-i) theta_i,
where older values weigh less (beta^3 < beta^2 < beta < 1); and 1 / (1 - beta) as the number
of values it averages over. Adam's bias correction divides by 1 - beta^t.
"""

from __future__ import annotations

import numpy as np

from ...ewma import effective_window, ewma, ewma_weights
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt

TEMPERATURES = [25.0, 13.0, 17.0, 31.0, 43.0]  # the lecture's table, D1..D5
BETAS = (0.5, 0.9, 0.98)
PERIOD = 365.0  # days of the seasonal signal
LAG_TOLERANCE = 0.5  # days: measured lag vs the filter's theory (noise limits the fit)


def _seasonal_series(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy daily temperatures: signal 20 + 10 sin(2 pi day / 365) plus N(0, 4^2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    signal = 20.0 + 10.0 * np.sin(2 * np.pi * t / PERIOD)
    return signal + rng.normal(0.0, 4.0, days), signal


def _phase_days(values: np.ndarray, t: np.ndarray) -> float:
    """When the yearly wave in ``values`` peaks, as a shift in days: the least-squares fit
    values ~ a sin(w t) + b cos(w t) + c gives the shift -atan2(b, a) / w."""
    w = 2 * np.pi / PERIOD
    design = np.column_stack([np.sin(w * t), np.cos(w * t), np.ones_like(t, dtype=float)])
    (a, b, _), *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(-np.arctan2(b, a) / w)


def theory_lag(beta: float) -> float:
    """The EWMA's delay of a sine of period 365 days: its transfer function
    (1 - beta) / (1 - beta e^{-i w}) shifts the phase by atan(beta sin w / (1 - beta cos w)),
    which is that many / w days (about beta / (1 - beta) for a slow wave)."""
    w = 2 * np.pi / PERIOD
    return float(np.arctan2(beta * np.sin(w), 1 - beta * np.cos(w)) / w)


def run_ewma(quick: bool = False) -> Result:
    """The lecture's numbers, then three years of noisy daily temperatures averaged with
    beta = 0.5, 0.9, 0.98: the error against the true signal, the lag (the price of
    smoothness) per beta against its theory, and the first values with and without bias
    correction."""
    from ...viz import ewma_figure

    numbers: dict = {}
    worked = ewma(np.array([13.0, 17.0]), beta=0.9)
    numbers["V_1 (beta=0.9, V_0=0, theta_1=13)"] = float(worked[0])
    numbers["V_2 (beta=0.9, theta_2=17)"] = float(worked[1])
    first = ewma(np.array(TEMPERATURES[1:]), beta=0.9, initial=TEMPERATURES[0])
    numbers["V_1 (beta=0.9, V_0=theta_0=25)"] = float(first[0])
    half = ewma(np.array(TEMPERATURES), beta=0.5)
    numbers["V_5 of D1..D5 (beta=0.5, V_0=0)"] = float(half[-1])
    weights = ewma_weights(4, 0.9)
    numbers["weights of theta_1..theta_4 in V_4 (beta=0.9)"] = ", ".join(fmt(w) for w in weights)
    numbers["their sum = 1 - beta^4"] = float(weights.sum())

    days = 3 * 365  # cheap either way: quick changes nothing here
    series, signal = _seasonal_series(days, seed=0)
    t = np.arange(days)
    settled = slice(365, None)  # the second and third year: every average has settled
    data_phase = _phase_days(series[settled], t[settled])
    rows = []
    for beta in BETAS:
        raw = ewma(series, beta=beta)
        corrected = ewma(series, beta=beta, bias_correction=True)
        rmse = float(np.sqrt(np.mean((corrected[settled] - signal[settled]) ** 2)))
        noise = float(np.sqrt(np.mean((series[settled] - signal[settled]) ** 2)))
        lag = _phase_days(corrected[settled], t[settled]) - data_phase
        rows.append(
            [
                beta,
                effective_window(beta),
                float(raw[0]),
                float(corrected[0]),
                float(series[0]),
                rmse,
                noise,
                round(lag, 1),
                round(theory_lag(beta), 1),
            ]
        )
        numbers[f"error vs the true signal, beta={beta}"] = rmse
        numbers[f"lag behind the data (days), beta={beta}"] = lag
    table = Table(
        "The effect of beta on three years of noisy daily temperatures (true signal "
        "20 + 10 sin(2π day / 365), noise N(0, 4²)); errors over years 2 and 3",
        [
            "β",
            "window 1/(1−β)",
            "V₁ raw",
            "V₁ bias-corrected",
            "θ₁",
            "RMS error vs signal",
            "RMS noise of the data",
            "lag (days)",
            "lag, theory (days)",
        ],
        rows,
        note="Lag: how many days later the average's yearly wave peaks than the data's (a "
        "least-squares fit of a sine of period 365 days to each); theory: the filter's phase "
        "shift atan(β sin ω / (1 − β cos ω)) / ω, ω = 2π/365.",
    )
    first_year = series[:365]
    fig = ewma_figure(
        first_year, BETAS, bias_correction="both", title="EWMA of a year of noisy temperatures"
    )
    best = min(rows, key=lambda r: r[5])
    windows = [fmt(r[1]) for r in rows]
    lags = [fmt(r[7]) for r in rows]
    summary = (
        f"The lecture's example checks out: $V_1 = {fmt(worked[0])}$ and "
        f"$V_2 = {fmt(worked[1])}$. Unrolled, $V_4$ weighs $\\theta_1 .. \\theta_4$ by "
        f"{numbers['weights of theta_1..theta_4 in V_4 (beta=0.9)']}: each older value counts "
        f"$\\beta$ times less, and the weights add up to $1 - \\beta^4 = "
        f"{fmt(weights.sum(), 4)}$, not 1, because $V_0 = 0$ holds the rest.\n\n"
        f"A larger $\\beta$ averages over more values (the window $1/(1-\\beta)$: "
        f"{', '.join(windows)} days for $\\beta$ = {', '.join(fmt(b) for b in BETAS)}), so "
        f"the curve is smoother but later: it peaks {', '.join(lags)} days after the data. "
        f"The best of the three here is $\\beta = {fmt(best[0])}$ (RMS error {fmt(best[5])} "
        f"against the data's noise of {fmt(best[6])}): $\\beta = {fmt(BETAS[0])}$ keeps too "
        f"much noise, $\\beta = {fmt(BETAS[-1])}$ lags too far behind.\n\n"
        f"Started at $V_0 = 0$ the raw average begins far too low ($\\beta = {fmt(BETAS[-1])}$: "
        f"$V_1 = {fmt(rows[-1][2])}$ for a first value of {fmt(rows[-1][4])}); dividing by "
        "$1 - \\beta^t$, Adam's bias correction, removes that start-up bias: the corrected "
        "$V_1$ is the first value itself."
    )
    claims = [
        C.close("The lecture's V_1 = 1.3", worked[0], 1.3, rel=1e-12),
        C.close("The lecture's V_2 = 2.87", worked[1], 2.87, rel=1e-12),
        C.close(
            "Started at V_0 = θ_0 = 25, V_1 = 0.9 × 25 + 0.1 × 13 = 23.8", first[0], 23.8, rel=1e-12
        ),
        C.close("The weights of V_4 add up to 1 − β⁴", weights.sum(), 1 - 0.9**4, rel=1e-12),
        C.check(
            "Older values weigh less: β³(1−β) < β²(1−β) < β(1−β) < (1−β)",
            np.all(np.diff(weights) > 0),
            ", ".join(fmt(w) for w in weights),
        ),
        C.check(
            "An EWMA cannot lead its input: every lag is ≥ 0",
            all(r[7] >= 0 for r in rows),
            "lags " + ", ".join(lags) + " days",
        ),
        *(
            C.close(
                f"β = {fmt(r[0])}: the measured lag matches the filter's theory within "
                f"{LAG_TOLERANCE} day",
                numbers[f"lag behind the data (days), beta={r[0]}"],
                theory_lag(r[0]),
                abs=LAG_TOLERANCE,
            )
            for r in rows
        ),
        C.check(
            "A larger β lags more",
            np.all(np.diff([r[7] for r in rows]) > 0),
            "lags " + ", ".join(lags) + " days",
        ),
        C.check(
            "Bias correction makes V_1 the first value itself, for every β",
            all(np.isclose(r[3], r[4], rtol=1e-12) for r in rows),
        ),
        C.check(
            f"β = {fmt(best[0])} has the smallest RMS error of the three",
            best[5] == min(r[5] for r in rows),
        ),
    ]
    return Result(
        key="ewma",
        title="EWMA and the effect of beta",
        chapter="",
        summary=summary,
        equations=[
            r"V_t = \beta V_{t-1} + (1 - \beta)\,\theta_t, \quad 0 < \beta < 1, \quad V_0 = 0",
            r"V_t = (1 - \beta) \sum_{i=1}^{t} \beta^{t-i}\,\theta_i",
            r"\text{window} \approx \frac{1}{1 - \beta}, \qquad"
            r" \hat{V}_t = \frac{V_t}{1 - \beta^t}",
        ],
        numbers=numbers,
        tables=[table],
        figures={
            "ewma_for_three_betas": Plot(
                fig,
                "on the left, how the dashed raw averages start near 0 while the solid "
                "bias-corrected ones start on the data, and how the larger β's curve is "
                "smoother but peaks later; on the right, the weight of a value k days back "
                "falls by β per day, and the dotted line marks the window 1/(1−β).",
            )
        },
        claims=claims,
        settings={"betas": ", ".join(fmt(b) for b in BETAS), "days": days, "seed": 0},
    )
