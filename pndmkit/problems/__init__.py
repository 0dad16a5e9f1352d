"""Analytic ground truth: Gaussian-mixture diffusions with exact eps, densities, samples and trajectories."""

from pndmkit.problems.builtin import PROBLEMS, get_problem
from pndmkit.problems.gaussian_mixture import GaussianMixture
from pndmkit.problems.metrics import ManifoldDiagnostics, manifold_diagnostics, nll, sliced_wasserstein
from pndmkit.problems.reference import reference_accuracy, reference_trajectory, solve_pf_ode

__all__ = [
    "GaussianMixture",
    "PROBLEMS",
    "get_problem",
    "reference_trajectory",
    "reference_accuracy",
    "solve_pf_ode",
    "nll",
    "sliced_wasserstein",
    "manifold_diagnostics",
    "ManifoldDiagnostics",
]
