"""pndmkit: pseudo numerical methods for diffusion models (Liu et al., ICLR 2022, arXiv 2202.09778).

A sampler step = a gradient estimator (Euler, Runge-Kutta, linear multistep evaluations of the noise
estimate) + a transfer map (the DDIM-derived ``phi`` of eq. 9, or the classical linear step).

>>> import pndmkit
>>> pndmkit.METHODS["f-pndm"].nfe_formula(), pndmkit.METHODS["f-pndm"].kind, pndmkit.methods.DEFAULT_METHOD
('N + 9', 'pseudo', 'ipndm')
"""

from pndmkit.adams import AdamsPC, LinearMultistep, TabulatedMultistep
from pndmkit.estimators import Final, GradientEstimator, Single, Step, Warmup
from pndmkit.grids import GRID_KINDS, make_grid
from pndmkit.integrator import Integrator
from pndmkit.methods import METHODS, MethodSpec, get_method, register_method, unregister_method
from pndmkit.models import as_eps, guided, to_eps
from pndmkit.run import Run, Solution
from pndmkit.runge_kutta import RungeKutta
from pndmkit.sampling import CONVENTIONS, GridStartWarning, PriorScaleWarning, sample
from pndmkit.schedules import (EDM, VE, CosineVP, CustomSchedule, DiscreteVP, FlowMatching, LinearVP, NoiseSchedule,
                               VPSchedule)
from pndmkit.stability import StabilityWarning
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer, Transfer

__version__ = "0.1.0"

__all__ = [
    "METHODS", "MethodSpec", "get_method", "register_method", "unregister_method", "sample", "CONVENTIONS",
    "Integrator", "Run", "Solution", "GradientEstimator", "Step", "Single", "RungeKutta", "LinearMultistep", "TabulatedMultistep",
    "AdamsPC", "Warmup", "Final", "Transfer", "DDIMTransfer", "DataTransfer", "LinearTransfer",
    "NoiseSchedule", "VPSchedule", "LinearVP", "CosineVP", "DiscreteVP", "EDM", "VE", "FlowMatching", "CustomSchedule",
    "make_grid", "GRID_KINDS", "as_eps", "to_eps", "guided",
    "StabilityWarning", "PriorScaleWarning", "GridStartWarning",
]
