"""The lab: every idea of the lecture as something to run, see and measure.

``surfaces`` (2-D test functions with analytic gradient and Hessian), ``problems`` (data problems
with analytic gradients), ``training`` (``fit``: batch, stochastic and mini-batch gradient
descent), ``sweep`` (many trajectories in one vectorized computation), ``experiments`` (one per
chapter of the lecture).
"""
