"""tableau_order on published tableaus: one reading rule for every container, a tolerance for rounded floats.

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

import numpy as np
import pytest

from pndmkit._rationals import simplest_fraction, to_fraction
from pndmkit.tableaus import ButcherTableau
from pndmkit.theory import order_conditions, tableau_order

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
