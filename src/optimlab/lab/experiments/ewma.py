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
from . import Result, Table

TEMPERATURES = [25.0, 13.0, 17.0, 31.0, 43.0]  # the lecture's table, D1..D5
BETAS = (0.5, 0.9, 0.98)


def _seasonal_series(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A year of noisy daily temperatures: signal 20 + 10 sin(2 pi day / 365) plus N(0, 4^2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    signal = 20.0 + 10.0 * np.sin(2 * np.pi * t / 365.0)
    return signal + rng.normal(0.0, 4.0, days), signal


def run_ewma(quick: bool = False) -> Result:
    """The lecture's numbers, then a noisy series averaged with beta = 0.5, 0.9, 0.98: the
    error against the true signal and the lag (the price of smoothness) per beta, and the
    first values with and without bias correction."""
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
    numbers["weights of theta_1..theta_4 in V_4 (beta=0.9)"] = ", ".join(
        f"{w:.4f}" for w in weights
    )
    numbers["their sum = 1 - beta^4"] = float(weights.sum())

    days = 365  # cheap either way: quick changes nothing here
    series, signal = _seasonal_series(days, seed=0)
    rows = []
    for beta in BETAS:
        raw = ewma(series, beta=beta)
        corrected = ewma(series, beta=beta, bias_correction=True)
        settled = slice(int(3 / (1 - beta)), None)  # after about three windows
        rmse = float(np.sqrt(np.mean((corrected[settled] - signal[settled]) ** 2)))
        noise = float(np.sqrt(np.mean((series[settled] - signal[settled]) ** 2)))
        lag = int(np.argmax(corrected[: days // 2]) - np.argmax(signal[: days // 2]))
        rows.append(
            [beta, effective_window(beta), raw[0], corrected[0], series[0], rmse, noise, lag]
        )
        numbers[f"error vs the true signal, beta={beta}"] = rmse
    table = Table(
        "The effect of beta on a year of noisy temperatures (true signal 20 + 10 sin)",
        [
            "beta",
            "window 1/(1-beta)",
            "V_1 raw",
            "V_1 bias-corrected",
            "theta_1",
            "RMS error vs signal",
            "RMS noise of the data",
            "lag of the peak (days)",
        ],
        rows,
    )
    fig = ewma_figure(series, BETAS, bias_correction="both", title="EWMA of noisy temperatures")
    best = min(rows, key=lambda r: r[5])
    summary = (
        f"The lecture's example checks out: V_1 = {worked[0]:.4g} and V_2 = {worked[1]:.4g}. "
        "A larger beta averages over "
        "more values (1/(1-beta): 2, 10, 50), so the curve is smoother but lags behind the "
        f"signal; here beta = {best[0]} tracks the true signal best (RMS error {best[5]:.3g} "
        f"against noise {best[6]:.3g}). Started at V_0 = 0 the raw average begins far too low "
        f"(beta=0.98: V_1 = {rows[2][2]:.3g} for a first value of {rows[2][4]:.3g}); dividing "
        "by 1 - beta^t, Adam's bias correction, removes that start-up bias."
    )
    return Result(
        key="ewma",
        title="EWMA and the effect of beta",
        chapter="",
        summary=summary,
        equations=[
            "V_t = beta * V_{t-1} + (1 - beta) * theta_t,   0 < beta < 1,  V_0 = 0",
            "V_t = (1 - beta) * sum_{i=1..t} beta^(t-i) * theta_i      (unrolled)",
            "window ~ 1 / (1 - beta);  bias-corrected: V_t / (1 - beta^t)",
        ],
        numbers=numbers,
        tables=[table],
        figures={"ewma_for_three_betas": fig},
    )
