"""tableau_order on published tableaus: one reading rule for every container, a tolerance for rounded floats,
and an exact decision for irrational coefficients (radicals, cos(pi/7), CRootOf: proved zero or non-zero, and
an UndecidableConditionError rather than a guess where neither can be proved). nodepy (ketch/nodepy, the
test extra) is the reference for its catalogue of published tableaus; those tests skip without it.

Oracle tableaus (coefficients typed from the sources named; orders as published):
- Tsit5: Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying
  assumption", Comput. Math. Appl. 62 (2011), Table 1, as shipped in nodepy (ketch/nodepy,
  runge_kutta_method.py, loadRKM('Tsit5')): order 5, coefficients that are not simple rationals.
- Dormand-Prince 5(4): J. R. Dormand, P. J. Prince, J. Comput. Appl. Math. 6 (1980), Table 2: order 5,
  embedded order 4.
- Bogacki-Shampine 3(2): P. Bogacki, L. F. Shampine, Appl. Math. Lett. 2 (1989): order 3.
- SSPRK3: C.-W. Shu, S. Osher, J. Comput. Phys. 77 (1988), the optimal three-stage SSP method: order 3.
- Prince-Dormand 8(7) "RK8(7)13M": P. J. Prince, J. R. Dormand, J. Comput. Appl. Math. 7 (1981), Table 2,
  whose coefficients are rational approximations (denominators near 1e9), as shipped in nodepy
  (loadRKM('PD8')): order 8 to double precision, not exactly.
"""

import warnings
from collections import namedtuple
from fractions import Fraction
from importlib.metadata import version

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from pndmkit._rationals import simplest_fraction, to_fraction
from pndmkit.tableaus import ButcherTableau
from pndmkit.theory import (UndecidableConditionError, order_conditions, rooted_trees, tableau_order, tree_density,
                            tree_order)

Tableau = namedtuple("Tableau", "a b c")


def _row_sums(a):
    return [sum(Fraction(v) for v in row) for row in a]


def _floats(a, b, c):
    return ([[float(Fraction(v)) for v in row] for row in a], [float(Fraction(v)) for v in b],
            [float(Fraction(v)) for v in c])


DP5_A = [[0, 0, 0, 0, 0, 0, 0], ["1/5", 0, 0, 0, 0, 0, 0], ["3/40", "9/40", 0, 0, 0, 0, 0],
         ["44/45", "-56/15", "32/9", 0, 0, 0, 0], ["19372/6561", "-25360/2187", "64448/6561", "-212/729", 0, 0, 0],
         ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656", 0, 0],
         ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0]]
DP5_B = ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0]
DP5_BHAT = ["5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40"]
BS3 = ([[0, 0, 0, 0], ["1/2", 0, 0, 0], [0, "3/4", 0, 0], ["2/9", "1/3", "4/9", 0]], ["2/9", "1/3", "4/9", 0],
       [0, "1/2", "3/4", 1])
SSPRK3 = ([[0, 0, 0], [1, 0, 0], ["1/4", "1/4", 0]], ["1/6", "1/6", "2/3"], [0, 1, "1/2"])

TSIT5_A = [[0.0] * 7 for _ in range(7)]
for (i, j), v in {
    (1, 0): 0.161,
    (2, 0): -0.8480655492356988544e-2, (2, 1): 0.3354806554923569885,
    (3, 0): 2.897153057105493432, (3, 1): -6.359448489975074843, (3, 2): 4.362295432869581411,
    (4, 0): 5.325864828439256604, (4, 1): -11.74888356406282788, (4, 2): 7.495539342889836208,
    (4, 3): -0.9249506636175524926e-1,
    (5, 0): 5.861455442946420029, (5, 1): -12.92096931784710929, (5, 2): 8.159367898576158643,
    (5, 3): -0.7158497328140099722e-1, (5, 4): -0.2826905039406838291e-1,
    (6, 0): 0.9646076681806522952e-1, (6, 1): 0.01, (6, 2): 0.4798896504144995748,
    (6, 3): 1.379008574103741893, (6, 4): -3.290069515436080680, (6, 5): 2.324710524099773982,
}.items():
    TSIT5_A[i][j] = v
TSIT5_B = TSIT5_A[6]
TSIT5_C = [0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0]

PD8_A = [
    [0] * 13, ["1/18"] + [0] * 12, ["1/48", "1/16"] + [0] * 11, ["1/32", 0, "3/32"] + [0] * 10,
    ["5/16", 0, "-75/64", "75/64"] + [0] * 9, ["3/80", 0, 0, "3/16", "3/20"] + [0] * 8,
    ["29443841/614563906", 0, 0, "77736538/692538347", "-28693883/1125000000", "23124283/1800000000"] + [0] * 7,
    ["16016141/946692911", 0, 0, "61564180/158732637", "22789713/633445777", "545815736/2771057229",
     "-180193667/1043307555"] + [0] * 6,
    ["39632708/573591083", 0, 0, "-433636366/683701615", "-421739975/2616292301", "100302831/723423059",
     "790204164/839813087", "800635310/3783071287"] + [0] * 5,
    ["246121993/1340847787", 0, 0, "-37695042795/15268766246", "-309121744/1061227803", "-12992083/490766935",
     "6005943493/2108947869", "393006217/1396673457", "123872331/1001029789"] + [0] * 4,
    ["-1028468189/846180014", 0, 0, "8478235783/508512852", "1311729495/1432422823", "-10304129995/1701304382",
     "-48777925059/3047939560", "15336726248/1032824649", "-45442868181/3398467696", "3065993473/597172653"] + [0] * 3,
    ["185892177/718116043", 0, 0, "-3185094517/667107341", "-477755414/1098053517", "-703635378/230739211",
     "5731566787/1027545527", "5232866602/850066563", "-4093664535/808688257", "3962137247/1805957418",
     "65686358/487910083", 0, 0],
    ["403863854/491063109", 0, 0, "-5068492393/434740067", "-411421997/543043805", "652783627/914296604",
     "11173962825/925320556", "-13158990841/6184727034", "3936647629/1978049680", "-160528059/685178525",
     "248638103/1413531060", 0, 0],
]
PD8_B = ["14005451/335480064", 0, 0, 0, 0, "-59238493/1068277825", "181606767/758867731", "561292985/797845732",
         "-1041891430/1371343529", "760417239/1151165299", "118820643/751138087", "-528747749/2220607170", "1/4"]


class NodepyLike:
    """nodepy's RungeKuttaMethod spells the stage matrix ``A``."""

    def __init__(self, a, b, c):
        self.A, self.b, self.c, self.name = np.array(a), np.array(b), np.array(c), "nodepy-like"


def _routes(a, b, c, tableau=True):
    routes = {"named tuple": Tableau(a, b, c), "plain sequences": (a, b, c), "numpy (nodepy's A)": NodepyLike(a, b, c)}
    if tableau:
        routes["ButcherTableau"] = ButcherTableau(a, b, c)
    return routes


# -- the example: floats of 1/3, -1/2, 3/2 -------------------------------------------------------
@pytest.mark.parametrize("route", ["named tuple", "plain sequences", "numpy (nodepy's A)", "ButcherTableau"])
@pytest.mark.parametrize("kind", ["float", "Fraction", "str"])
def test_second_order_example_is_order_two_by_every_route(route, kind):
    exact = ([[0, 0], [Fraction(1, 3), 0]], [Fraction(-1, 2), Fraction(3, 2)], [0, Fraction(1, 3)])
    convert = {"float": float, "Fraction": Fraction, "str": str}[kind]
    a, b, c = ([[convert(v) for v in row] for row in exact[0]], [convert(v) for v in exact[1]],
               [convert(v) for v in exact[2]])
    tableau = _routes(a, b, c)[route]
    assert tableau_order(tableau) == 2
    assert tableau_order(tableau, tol=1e-12) == 2


def test_floats_are_read_as_the_simplest_fraction_that_rounds_to_them():
    assert simplest_fraction(1 / 3) == Fraction(1, 3)
    assert simplest_fraction(0.1) == Fraction(1, 10)
    assert simplest_fraction(-2187 / 6784) == Fraction(-2187, 6784)
    assert simplest_fraction(0.375) == Fraction(3, 8)  # a short binary fraction is itself
    assert simplest_fraction(2.0**-20) == Fraction(1, 2**20)
    rng = np.random.default_rng(0)
    for q in rng.integers(1, 10**6, 300):
        p = int(rng.integers(-10 * q, 10 * q))
        assert simplest_fraction(p / int(q)) == Fraction(p, int(q))
    assert ButcherTableau([[0, 0], [1 / 3, 0]], [-0.5, 1.5], [0, 1 / 3]).a[1][0] == Fraction(1, 3)


# -- published orders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, tableau, order", [
    ("Dormand-Prince 5", (DP5_A, DP5_B, _row_sums(DP5_A)), 5),
    ("Dormand-Prince 5(4) embedded", (DP5_A, DP5_BHAT, _row_sums(DP5_A)), 4),
    ("Bogacki-Shampine 3", BS3, 3),
    ("SSPRK3", SSPRK3, 3),
])
def test_float_tableaus_of_rationals_have_their_published_order_exactly(name, tableau, order):
    a, b, c = tableau
    floats = _floats(a, b, c)
    for route in _routes(*floats, tableau=name != "Dormand-Prince 5(4) embedded").values():  # b_hat: sum is 1 too
        assert tableau_order(route) == order, name
        assert tableau_order(route, tol=1e-12) == order, name
    assert tableau_order((a, b, [str(v) for v in c])) == order  # the exact rationals agree


def test_tsit5_is_order_five_with_a_tolerance_and_the_exact_mode_says_why_not():
    for route in _routes(TSIT5_A, TSIT5_B, TSIT5_C, tableau=False).values():
        assert tableau_order(route, tol=1e-12) == 5
    with pytest.raises(ValueError, match=r"row sums of a.*pass tol="):
        tableau_order((TSIT5_A, TSIT5_B, TSIT5_C))
    # the published digits carry the order; a perturbation of 1e-6 in one weight breaks order 2 at once
    broken = list(TSIT5_B)
    broken[3] += 1e-6
    broken[4] -= 1e-6  # keeps sum(b) = 1
    assert tableau_order((TSIT5_A, broken, TSIT5_C), tol=1e-12) == 1


def test_prince_dormand_8_is_order_eight_to_double_precision_only():
    c = _row_sums(PD8_A)
    floats = _floats(PD8_A, PD8_B, c)
    assert tableau_order(floats, tol=1e-12) == 8
    assert tableau_order((PD8_A, PD8_B, [str(v) for v in c]), tol=1e-12) == 8
    # exactly, the published rational approximations are not even consistent: sum(b) - 1 = -3.7e-18
    assert sum(Fraction(v) for v in PD8_B) != 1
    assert tableau_order((PD8_A, PD8_B, [str(v) for v in c])) == 0


def test_rounded_floats_warn_in_exact_mode():
    """Heun with b = (0.5 + 1e-17-ish, ...): exact mode finds order 1 and says the floats look rounded."""
    b1 = float(Fraction(1, 2) + Fraction(1, 10**16))  # a double just above 1/2
    assert b1 != 0.5
    heun = ([[0, 0], [1, 0]], [b1, 1 - b1], [0, 1])
    with pytest.warns(UserWarning, match="tol="):
        assert tableau_order(heun) == 0
    assert tableau_order(heun, tol=1e-12) == 2


@pytest.mark.parametrize("kwargs, error, match", [
    ({"tol": -1e-3}, ValueError, "tol must be a finite number >= 0"),
    ({"tol": float("nan")}, ValueError, "tol must be"),
    ({"tol": "1e-12"}, ValueError, "tol must be"),
    ({"max_order": 0}, ValueError, "max_order must be a positive integer"),
])
def test_bad_arguments_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        tableau_order(SSPRK3, **kwargs)


@pytest.mark.parametrize("bad, error, match", [
    (([[0, 0], [float("nan"), 0]], [0.5, 0.5], [0, 1]), ValueError, r"a\[1\]\[0\] must be finite"),
    (([[0, 0], [1, 0]], [0.5, "half"], [0, 1]), ValueError, r"b\[1\] must be a rational number"),
    (([[0, 0], [1, 0]], [0.5, None], [0, 1]), TypeError, r"b\[1\] must be an int, Fraction, str or float"),
    (([[0, 0], [1, 0]], [0.5, 0.5]), TypeError, "sequence \\(a, b, c\\)"),
    (([[0, 0], [1, 0]], [0.5, 0.5], [0]), ValueError, "c of length 2"),
])
def test_bad_tableaus_name_the_entry(bad, error, match):
    with pytest.raises(error, match=match):
        tableau_order(bad)


def test_order_conditions_read_floats_by_the_same_rule():
    residuals = order_conditions(([[0, 0], [1 / 3, 0]], [-0.5, 1.5], [0, 1 / 3]), 3)
    assert [residuals[t] for t in sorted(residuals, key=len)][:2] == [0, 0]
    assert to_fraction(np.float64(0.25), "x") == Fraction(1, 4) and to_fraction(np.int64(3), "x") == 3


def test_exact_mode_is_unchanged_for_exact_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tableau_order((DP5_A, DP5_B, [str(v) for v in _row_sums(DP5_A)])) == 5


# == exact irrational coefficients: decided exactly, never a lower order because a simplification failed ==
x = sp.Symbol("x")
R = sp.Rational
PLASTIC = sp.CRootOf(x**3 - x - 1, 0)  # the real root of x^3 - x - 1, 1.3247...
# cos(pi/7) - cos(2 pi/7) + cos(3 pi/7) = 1/2 (roots of 8x^3 - 4x^2 - 4x + 1): a zero that expands to nothing
HIDDEN_ZEROS = {
    "cos(pi/7) identity": sp.cos(sp.pi / 7) - sp.cos(2 * sp.pi / 7) + sp.cos(3 * sp.pi / 7) - R(1, 2),
    "nested radical": sp.sqrt(2 + sp.sqrt(3)) - (sp.sqrt(6) + sp.sqrt(2)) / 2,
    "CRootOf": PLASTIC**3 - PLASTIC - 1,
}


def _sqrt2_convergent(n):
    """The n-th continued-fraction convergent p/q of sqrt(2): |sqrt(2) - p/q| ~ 1/(2 sqrt(2) q^2)."""
    p, q = 1, 1
    for _ in range(n):
        p, q = p + 2 * q, p + q
    return R(p, q)


TINY = sp.sqrt(2) - _sqrt2_convergent(22)  # a non-zero algebraic number, 7.0e-18


def _mp_residuals(tableau, p, dps=60):
    """Phi(t) - 1/gamma(t) for the trees of order p, evaluated in mpmath at ``dps`` digits (independent oracle)."""
    a, b, _ = tableau
    with mpmath.workdps(dps):
        A = [[mpmath.mpf(str(sp.N(v, dps + 10))) for v in row] for row in a]
        B = [mpmath.mpf(str(sp.N(v, dps + 10))) for v in b]

        def g(tree):
            out = [mpmath.mpf(1)] * len(A)
            for child in tree:
                inner = g(child)
                out = [o * mpmath.fsum(aij * xj for aij, xj in zip(row, inner)) for o, row in zip(out, A)]
            return out

        return [mpmath.fsum(bi * gi for bi, gi in zip(B, g(t))) - mpmath.mpf(1) / tree_density(t)
                for t in rooted_trees(p)]


def three_stage_order_three(u, v):
    """The explicit 3-stage order-3 family with nodes c = (0, u, v) (Hairer, Norsett, Wanner I, II.1, (1.17))."""
    b2 = (3 * v - 2) / (6 * u * (v - u))
    b3 = (2 - 3 * u) / (6 * v * (v - u))
    a32 = v * (v - u) / (u * (2 - 3 * u))
    return ([[0, 0, 0], [u, 0, 0], [v - a32, a32, 0]], [1 - b2 - b3, b2, b3], [0, u, v])


FAMILY_NODES = {
    "sqrt(6)": ((6 - sp.sqrt(6)) / 10, (6 + sp.sqrt(6)) / 10),
    "cos(pi/7), cos(3pi/7)": (sp.cos(sp.pi / 7), sp.cos(3 * sp.pi / 7)),
    "CRootOf": (PLASTIC - 1, PLASTIC**2 - 1),
    "nested radical": (sp.sqrt(2 + sp.sqrt(3)) / 4, R(3, 4)),
}


@pytest.mark.parametrize("nodes", list(FAMILY_NODES), ids=list(FAMILY_NODES))
def test_three_stage_family_with_irrational_nodes_is_order_three(nodes):
    tableau = three_stage_order_three(*FAMILY_NODES[nodes])
    # independent oracle: every order-1..3 residual vanishes to 60 digits, an order-4 one does not
    assert all(abs(r) < 1e-50 for p in (1, 2, 3) for r in _mp_residuals(tableau, p))
    assert max(abs(r) for r in _mp_residuals(tableau, 4)) > 1e-3
    assert tableau_order(tableau) == 3
    assert tableau_order(tableau, max_order=4) == 3  # order 4 is refused by a condition proved non-zero
    residuals = order_conditions(tableau, 4)
    assert [r for t, r in residuals.items() if tree_order(t) <= 3] == [0] * 4
    assert any(r != 0 for t, r in residuals.items() if tree_order(t) == 4)


SQ15, SQ6 = sp.sqrt(15), sp.sqrt(6)
GAUSS3 = ([[R(5, 36), R(2, 9) - SQ15 / 15, R(5, 36) - SQ15 / 30],
           [R(5, 36) + SQ15 / 24, R(2, 9), R(5, 36) - SQ15 / 24],
           [R(5, 36) + SQ15 / 30, R(2, 9) + SQ15 / 15, R(5, 36)]],
          [R(5, 18), R(4, 9), R(5, 18)], [R(1, 2) - SQ15 / 10, R(1, 2), R(1, 2) + SQ15 / 10])
RADAU_IIA3 = ([[(88 - 7 * SQ6) / 360, (296 - 169 * SQ6) / 1800, (-2 + 3 * SQ6) / 225],
               [(296 + 169 * SQ6) / 1800, (88 + 7 * SQ6) / 360, (-2 - 3 * SQ6) / 225],
               [(16 - SQ6) / 36, (16 + SQ6) / 36, R(1, 9)]],
              [(16 - SQ6) / 36, (16 + SQ6) / 36, R(1, 9)], [(4 - SQ6) / 10, (4 + SQ6) / 10, 1])
_G = R(1, 2) + sp.cos(sp.pi / 18) / sp.sqrt(3)
_D = 1 / (6 * (2 * _G - 1) ** 2)
SDIRK3 = ([[_G, 0, 0], [R(1, 2) - _G, _G, 0], [2 * _G, 1 - 4 * _G, _G]], [_D, 1 - 2 * _D, _D], [_G, R(1, 2), 1 - _G])


@pytest.mark.parametrize("name, tableau, order", [
    ("Gauss-Legendre 3 (sqrt(15))", GAUSS3, 6),  # Hairer & Wanner II, Table IV.5.2
    ("Radau IIA 3 (sqrt(6))", RADAU_IIA3, 5),  # Hairer & Wanner II, Table IV.5.6
    ("Norsett SDIRK 3 (cos(pi/18))", SDIRK3, 4),  # Hairer & Wanner II, Table IV.6.5
])
def test_implicit_tableaus_with_irrational_entries_have_their_published_order(name, tableau, order):
    assert tableau_order(tableau) == order, name
    assert max(abs(r) for r in _mp_residuals(tableau, order)) < 1e-50
    assert max(abs(r) for r in _mp_residuals(tableau, order + 1)) > 1e-4


def collocation(nodes):
    """The collocation method on ``nodes``: sum_j a_ij c_j^k = c_i^(k+1)/(k+1), sum_j b_j c_j^k = 1/(k+1),
    k < s (Hairer, Norsett, Wanner I, II.7), solved for symbolic nodes and then evaluated at ``nodes``."""
    s = len(nodes)
    y = sp.symbols(f"y0:{s}")
    inverse = sp.Matrix(s, s, lambda k, j: y[j] ** k).inv()
    at = dict(zip(y, nodes))
    b = [v.xreplace(at) for v in inverse * sp.Matrix([R(1, k + 1) for k in range(s)])]
    a = [[v.xreplace(at) for v in inverse * sp.Matrix([yi ** (k + 1) / (k + 1) for k in range(s)])] for yi in y]
    return a, b, list(nodes)


@pytest.mark.parametrize("name, polynomial, order", [
    ("Gauss 3: roots of P_3(2x - 1)", sp.legendre(3, 2 * x - 1), 6),
    ("Radau IIA 3: roots of P_3(2x - 1) - P_2(2x - 1)", sp.legendre(3, 2 * x - 1) - sp.legendre(2, 2 * x - 1), 5),
])
def test_collocation_on_crootof_nodes_has_the_published_order(name, polynomial, order):
    """Nodes given as CRootOf roots of a polynomial (no radicals written anywhere); the entries are rational
    functions of several roots, which only the field arithmetic reduces (orders: Hairer & Wanner II, IV.5)."""
    poly = sp.Poly(polynomial, x)
    tableau = collocation([sp.CRootOf(poly, i) for i in range(3)])
    assert any(isinstance(v, sp.CRootOf) for v in tableau[2])
    assert tableau_order(tableau, max_order=order + 1) == order, name
    assert max(abs(r) for r in _mp_residuals(tableau, order)) < 1e-50


@pytest.mark.parametrize("zero", list(HIDDEN_ZEROS), ids=list(HIDDEN_ZEROS))
def test_a_zero_written_in_disguise_is_zero(zero):
    """Heun with b = (1/2 + z, 1/2 - z) for an exact zero z that sympy's expand/simplify leave standing."""
    z = HIDDEN_ZEROS[zero]
    assert sp.expand(z) != 0
    heun = ([[0, 0], [1 + z, 0]], [R(1, 2) + z, R(1, 2) - z], [0, 1])
    assert tableau_order(heun) == 2
    assert set(order_conditions(heun, 2).values()) == {0}


def test_entries_spanning_a_field_of_degree_sixteen_are_decided():
    """sqrt(2), sqrt(3), sqrt(5), sqrt(7) generate a field of degree 16; a zero and a 1e-17 in it."""
    z = (sp.sqrt(5) + sp.sqrt(7)) * ((sp.sqrt(2) + sp.sqrt(3)) ** 2 - 5 - 2 * sp.sqrt(6))
    assert z != 0
    assert tableau_order(([[0, 0], [1, 0]], [R(1, 2) + z, R(1, 2) - z], [0, 1])) == 2
    e = TINY * (sp.sqrt(5) + sp.sqrt(7)) / sp.sqrt(3)
    assert tableau_order(([[0, 0], [1, 0]], [R(1, 2) + e, R(1, 2) - e], [0, 1])) == 1


def test_a_nonzero_algebraic_residual_that_floats_round_away_is_nonzero():
    """b = (1/2 + d, 1/2 - d) with d = sqrt(2) - p/q, 7e-18: the doubles of b are exactly (0.5, 0.5)."""
    assert 0 < float(TINY) < 1e-17
    heun = ([[0, 0], [1, 0]], [R(1, 2) + TINY, R(1, 2) - TINY], [0, 1])
    assert [float(v) for v in heun[1]] == [0.5, 0.5]
    assert tableau_order(heun) == 1
    residual = order_conditions(heun, 2)[((),)]
    assert residual != 0 and sp.simplify(residual + TINY) == 0  # b . c - 1/2 = -d exactly
    assert tableau_order(heun, tol=1e-12) == 2  # with a tolerance it is order 2, as asked
    # far below any working precision: d^3 = 3.4e-52 is still not zero
    tiny3 = ([[0, 0], [1, 0]], [R(1, 2) + TINY**3, R(1, 2) - TINY**3], [0, 1])
    assert tableau_order(tiny3) == 1


def test_c_is_checked_exactly_against_the_row_sums():
    """c_2 = (sqrt(6) + sqrt(2))/8 is the row sum sqrt(2 + sqrt(3))/4, written otherwise; 2e-17 off is not."""
    c2, a21 = (sp.sqrt(6) + sp.sqrt(2)) / 8, sp.sqrt(2 + sp.sqrt(3)) / 4
    assert tableau_order(([[0, 0], [a21, 0]], [1 - 1 / (2 * c2), 1 / (2 * c2)], [0, c2])) == 2
    with pytest.raises(ValueError, match=r"c must equal the row sums of a, got c\[1\]"):
        tableau_order(([[0, 0], [a21, 0]], [R(1, 2), R(1, 2)], [0, c2 + TINY]))


def test_transcendental_entries_are_decided_when_they_can_be():
    pi = sp.pi
    two_stage = ([[0, 0], [pi / 4, 0]], [1 - 2 / pi, 2 / pi], [0, pi / 4])  # order 2 for any a21
    assert tableau_order(two_stage) == 2
    assert tableau_order(two_stage, max_order=3) == 2  # b c^2 = pi/8 != 1/3 by an interval enclosure
    trig_zero = ([[0, 0], [1, 0]], [(sp.sin(1) ** 2 + sp.cos(1) ** 2) / 2, R(1, 2)], [0, 1])
    assert tableau_order(trig_zero) == 2  # sin^2 + cos^2 - 1 is simplified to 0
    w = sp.LambertW(1)  # no interval version: evaluated strictly and widened
    assert tableau_order(([[0, 0], [w, 0]], [1 - 1 / (2 * w), 1 / (2 * w)], [0, w])) == 2


def test_an_undecidable_residual_raises_and_names_the_condition():
    """W(1) exp(W(1)) = 1 exactly, but sympy can neither simplify it nor is it algebraic."""
    one = sp.LambertW(1) * sp.exp(sp.LambertW(1))
    with pytest.raises(UndecidableConditionError, match=r"order-1 condition of tree t .*residual -1 \+ exp") as info:
        tableau_order(([[0]], [one], [0]))
    assert info.value.condition == "the order-1 condition of tree t" and isinstance(info.value, ValueError)
    assert abs(sp.N(info.value.residual, 50)) < 1e-45  # it is zero, numerically
    with pytest.raises(UndecidableConditionError, match=r"c\[0\] = row sum of a\[0\]"):
        tableau_order(([[0]], [1], [one - 1]))
    # decided where it matters: order 3 fails on [[t]] (proved), whatever [t,t] is
    c2 = R(2, 3) * one
    undecided_at_3 = ([[0, 0], [c2, 0]], [1 - 1 / (2 * c2), 1 / (2 * c2)], [0, c2])
    assert tableau_order(undecided_at_3, max_order=3) == 2
    with pytest.raises(UndecidableConditionError, match=r"tree \[t,t\]"):
        order_conditions(undecided_at_3, 3)
    assert tableau_order(undecided_at_3, max_order=3, tol=1e-30) == 2  # numerically: [[t]] fails


def test_exact_mode_refuses_complex_and_non_finite_entries():
    with pytest.raises(ValueError, match=r"b\[1\] must be a finite real number"):
        tableau_order(([[0, 0], [1, 0]], [R(1, 2), sp.sqrt(-2)], [0, 1]))
    with pytest.raises(ValueError, match=r"a\[1\]\[0\] must be a finite real number"):
        tableau_order(([[0, 0], [sp.zoo, 0]], [R(1, 2), R(1, 2)], [0, 1]))
    with pytest.raises(ValueError, match=r"c\[1\] must be a real number"):
        tableau_order(([[0, 0], [1, 0]], [R(1, 2), R(1, 2)], [0, sp.Symbol("h")]))
    z = HIDDEN_ZEROS["cos(pi/7) identity"]  # 1/z looks finite to sympy
    with pytest.raises(ValueError, match=r"b\[0\] = 1/\(.*divides by a quantity that is exactly 0"):
        tableau_order(([[0, 0], [1, 0]], [1 / z, 1 - 1 / z], [0, 1]))


# == properties: known tableaus keep their order however they are written ===============================
SSPRK43 = ([[0, 0, 0, 0], ["1/2", 0, 0, 0], ["1/2", "1/2", 0, 0], ["1/6", "1/6", "1/6", 0]],
           ["1/6", "1/6", "1/6", "1/2"], [0, "1/2", 1, "1/2"])  # Kraaijevanger 1991, SSPRK(4,3)


def _ssprk2(m):
    """SSPRK(m,2) (Ketcheson 2008): a_ij = 1/(m-1) for j < i, b_i = 1/m; order 2 for every m >= 2."""
    a = [[R(1, m - 1) if j < i else 0 for j in range(m)] for i in range(m)]
    return a, [R(1, m)] * m, [R(i, m - 1) for i in range(m)]


def _known():
    from pndmkit.tableaus import TABLEAUS

    orders = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2, "rk3": 3, "rk4": 4, "rk38": 4}
    out = [(name, (t.a, t.b, t.c), orders[name]) for name, t in TABLEAUS.items()]
    out += [(f"ssprk({m},2)", _ssprk2(m), 2) for m in (2, 3, 4, 5)]
    return out + [("ssprk(3,3)", SSPRK3, 3), ("ssprk(4,3)", SSPRK43, 3)]


KNOWN = _known()


def _sympy(tableau):
    a, b, c = tableau
    return ([[sp.Rational(str(v)) for v in row] for row in a], [sp.Rational(str(v)) for v in b],
            [sp.Rational(str(v)) for v in c])


def test_known_tableaus_have_their_order():
    assert len(KNOWN) == 13
    for name, tableau, order in KNOWN:
        assert tableau_order(tableau, max_order=order + 1) == order, name
        assert tableau_order(_sympy(tableau), max_order=order + 1) == order, name
        assert tableau_order(_floats(*tableau), max_order=order + 1, tol=1e-12) == order, name


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(KNOWN), st.sampled_from(list(HIDDEN_ZEROS)), st.integers(1, 3), st.data())
def test_order_is_unchanged_by_exact_zeros_in_disguise(known, zero, k, data):
    name, tableau, order = known
    a, b, c = _sympy(tableau)
    s = len(b)
    i = data.draw(st.integers(0, s - 1))
    j = data.draw(st.integers(0, max(i - 1, 0)))
    a[i][j] += k * HIDDEN_ZEROS[zero]  # zero, but not to sympy's expand
    b[-1] -= k * HIDDEN_ZEROS[zero]
    assert tableau_order((a, b, c), max_order=order + 1) == order, name


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(KNOWN), st.randoms(use_true_random=False))
def test_order_is_unchanged_by_renumbering_the_stages(known, rng):
    name, tableau, order = known
    a, b, c = _sympy(tableau)
    perm = list(range(len(b)))
    rng.shuffle(perm)
    permuted = ([[a[i][j] for j in perm] for i in perm], [b[i] for i in perm], [c[i] for i in perm])
    assert tableau_order(permuted, max_order=order + 1) == order, (name, perm)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([k for k in KNOWN if k[2] >= 2]), st.integers(18, 30), st.integers(1, 3), st.data())
def test_a_tiny_irrational_change_of_the_weights_is_seen_exactly(known, n, power, data):
    """Moving eps = (sqrt(2) - p_n/q_n)^power (1e-15 .. 1e-72) between two weights of different nodes breaks
    b . c = 1/2 exactly; with tol= the change is rounding and the order stays."""
    name, tableau, order = known
    a, b, c = _sympy(tableau)
    i, j = data.draw(st.sampled_from([(i, j) for i in range(len(b)) for j in range(len(b)) if c[i] != c[j]]))
    eps = (sp.sqrt(2) - _sqrt2_convergent(n)) ** power
    b[i] += eps
    b[j] -= eps
    assert tableau_order((a, b, c), max_order=order + 1) == 1, name
    assert tableau_order((a, b, c), max_order=order + 1, tol=1e-12) == order, name


# == nodepy (ketch/nodepy) as the reference for published tableaus =====================================
# The explicit methods of nodepy's loadRKM('All') that hold floats, main and embedded weights (15 tableaus):
# (name, weights) -> (published order, tol). Orders: Tsitouras 2011 (Tsit5 5(4)); Calvo, Montijano, Randez
# 1990 (CMR6 6(5)); Prince & Dormand 1981 (PD8 8(7)); Ruuth & Spiteri 2004 and Ruuth 2006 (SSP53, SSP54,
# SSP63, SSP75, SSP85, SSP95: SSP(s,p) has order p); Ketcheson's optimal downwind SSP22star (2); SSP33's
# embedded pair (2). SSP53's coefficients are given to about ten digits (sum(b) - 1 = 3.2e-10 in nodepy),
# so it needs tol=1e-9; every other one is good to double precision.
NODEPY_FLOAT = {
    ("SSP22star", "b"): (2, 1e-12), ("SSP33", "b"): (3, 1e-12), ("SSP33", "bhat"): (2, 1e-12),
    ("Tsit5", "b"): (5, 1e-12), ("Tsit5", "bhat"): (4, 1e-12), ("CMR6", "b"): (6, 1e-12),
    ("CMR6", "bhat"): (5, 1e-12), ("PD8", "b"): (8, 1e-12), ("PD8", "bhat"): (7, 1e-12),
    ("SSP75", "b"): (5, 1e-12), ("SSP85", "b"): (5, 1e-12), ("SSP95", "b"): (5, 1e-12),
    ("SSP54", "b"): (4, 1e-12), ("SSP53", "b"): (3, 1e-9), ("SSP63", "b"): (3, 1e-12),
}
# literature orders of nodepy's exact methods (Butcher 2016; Hairer, Norsett & Wanner I; Hairer & Wanner II)
NODEPY_EXACT = {"FE": 1, "BE": 1, "RK44": 4, "DP5": 5, "BS3": 3, "BS5": 5, "CK5": 5, "Fehlberg45": 5,
                "Merson43": 4, "BuRK65": 5, "SSP104": 4, "SSP22": 2, "SSP33": 3, "GL2": 4, "GL3": 6,
                "RadauIIA2": 3, "RadauIIA3": 5, "LobattoIIIA2": 2, "LobattoIIIA3": 4, "LobattoIIIC2": 2,
                "LobattoIIIC3": 4, "LobattoIIIC4": 6, "SDIRK23": 3, "SDIRK34": 4, "SDIRK54": 4}


@pytest.fixture(scope="module")
def nodepy_rk():
    return pytest.importorskip("nodepy.runge_kutta_method", reason="nodepy (the test extra) is not installed")


@pytest.fixture(scope="module")
def nodepy_methods(nodepy_rk):
    return nodepy_rk.loadRKM("All")


def _has_float(tableau):
    a, b, c = tableau
    return any(isinstance(v, (float, np.floating, sp.Float)) for v in [*np.ravel(a), *b, *c])


def test_the_fifteen_float_tableaus_of_nodepy_are_these(nodepy_rk, nodepy_methods):
    """The 11 explicit methods of loadRKM('All') that hold a float anywhere, with the embedded weights of
    the 4 pairs among them: NODEPY_FLOAT lists all of them, and nothing else."""
    with_floats = {name for name, m in nodepy_methods.items() if isinstance(m, nodepy_rk.ExplicitRungeKuttaMethod)
                   and _has_float((m.A, [*m.b, *getattr(m, "bhat", [])], m.c))}
    keys = {(name, "b") for name in with_floats} | {
        (name, "bhat") for name in with_floats if getattr(nodepy_methods[name], "bhat", None) is not None}
    assert set(NODEPY_FLOAT) <= keys
    if version("nodepy") == "1.1.1":  # a later release may add methods
        assert len(with_floats) == 11 and keys == set(NODEPY_FLOAT)


@pytest.mark.parametrize("key", list(NODEPY_FLOAT), ids=[f"{n}-{w}" for n, w in NODEPY_FLOAT])
def test_nodepy_float_tableaus_have_their_published_order_with_tol(key, nodepy_rk, nodepy_methods):
    order, tol = NODEPY_FLOAT[key]
    name, which = key
    m = nodepy_methods[name]
    tableau = m if which == "b" else (m.A, m.bhat, m.c)  # the method object itself is read through .A
    assert tableau_order(tableau, tol=tol) == order
    assert tableau_order(tableau, max_order=order + 1, tol=tol) == order  # the next order fails by far more
    assert tableau_order(tableau, max_order=order + 1, tol=1e-8) == order  # one tolerance serves all fifteen
    reference = m if which == "b" else m.embedded_method
    assert reference.order(tol=tol) == order  # nodepy agrees at the same tolerance


def test_nodepy_exact_catalogue_agrees_with_nodepy_and_the_literature(nodepy_rk, nodepy_methods):
    """Every method of loadRKM('All') with exact entries (rationals, sqrt(3), sqrt(6), sqrt(15), sqrt(5),
    cos(pi/18)), explicit or implicit, and the embedded weights of the exact pairs: tableau_order in exact
    mode equals nodepy's order() (float mode, tol 1e-14) and, where listed, the literature."""
    checked, mismatches = 0, []
    for name, m in nodepy_methods.items():
        tableaus = {"b": m} if not hasattr(m, "bhat") else {"b": m, "bhat": (m.A, m.bhat, m.c)}
        for which, tableau in tableaus.items():
            if _has_float((m.A, m.b if which == "b" else m.bhat, m.c)):
                continue
            ours = tableau_order(tableau)
            theirs = (m if which == "b" else m.embedded_method).order()
            published = NODEPY_EXACT.get(name) if which == "b" else None
            checked += 1
            if ours != theirs or published not in (None, ours):
                mismatches.append((name, which, ours, theirs, published))
    assert not mismatches
    assert checked >= 45


@pytest.mark.parametrize("family, arg, order", [
    ("SSPRK2", 2, 2), ("SSPRK2", 5, 2), ("SSPRK3", 4, 3), ("SSPRK3", 9, 3),
    ("SSPIRK3", 2, 3), ("SSPIRK3", 3, 3),  # entries with sqrt(2), sqrt(3)
    ("RK22_family", sp.sqrt(2) / 2, 2), ("RK22_family", sp.cos(sp.pi / 7), 2), ("RK44_family", sp.sqrt(2), 4),
])
def test_nodepy_families_with_exact_parameters(family, arg, order, nodepy_rk):
    method = getattr(nodepy_rk, family)(arg)
    assert tableau_order(method) == order
    assert method.order() == order
