"""Exact theory behind the samplers: multistep weights, Butcher order conditions, local-error expansions.

* :mod:`pndmkit.theory.multistep` -- Adams/BDF weights, variable-step weights, :class:`LinearMultistepMethod`.
* :mod:`pndmkit.theory.butcher` -- rooted trees and the order of a Runge-Kutta tableau.
* :mod:`pndmkit.theory.local_error` -- local error of pseudo multistep methods as a series in ``h``.

Everything is derived with sympy; results are exact rationals that the samplers turn into floats once.
"""

from pndmkit.theory import butcher, local_error, multistep
from pndmkit.theory._exact import as_rational
from pndmkit.theory.butcher import (
    UndecidableConditionError,
    elementary_weight,
    format_tree,
    order_conditions,
    rooted_trees,
    tableau_order,
    tree_density,
    tree_order,
)
from pndmkit.theory.local_error import pseudo_local_error, pseudo_local_error_expansion
from pndmkit.theory.multistep import (
    VARIABLES,
    LinearMultistepMethod,
    adams_bashforth,
    adams_moulton,
    backward_differentiation,
    lagrange_weights,
    lagrange_weights_float,
    lagrange_weights_float_many,
    variable_step_weights,
)

__all__ = [*multistep.__all__, *butcher.__all__, *local_error.__all__, "as_rational"]
