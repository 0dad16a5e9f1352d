"""pndmkit.theory and ``pndmkit coefficients``: exact weights, order conditions, local errors."""

import json
import math
from collections import namedtuple
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from pndmkit import theory as co
from pndmkit.cli import main
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP

R = sp.Rational
AB = {  # oracles, newest first
    1: [1],
    2: [R(3, 2), R(-1, 2)],
    3: [R(23, 12), R(-16, 12), R(5, 12)],
    4: [R(55, 24), R(-59, 24), R(37, 24), R(-9, 24)],
    5: [R(1901, 720), R(-2774, 720), R(2616, 720), R(-1274, 720), R(251, 720)],
}
AM = {1: [1], 2: [R(1, 2), R(1, 2)], 3: [R(5, 12), R(8, 12), R(-1, 12)], 4: [R(9, 24), R(19, 24), R(-5, 24), R(1, 24)]}
Tableau = namedtuple("Tableau", "a b c")


# -- fixed-step Adams weights ---------------------------------------------------------------------
@pytest.mark.parametrize("k", sorted(AB))
def test_adams_bashforth_known_values(k):
    assert list(co.adams_bashforth(k)) == AB[k]


@pytest.mark.parametrize("k", sorted(AM))
def test_adams_moulton_known_values(k):
    assert list(co.adams_moulton(k)) == AM[k]


@pytest.mark.parametrize("rule", [co.adams_bashforth, co.adams_moulton])
def test_adams_weights_are_exact_cached_and_sum_to_one(rule):
    for k in range(1, 9):
        w = rule(k)
        assert all(isinstance(x, sp.Rational) for x in w) and sum(w) == 1 and len(w) == k
        assert rule(k) is w  # lru_cache


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_adams_rejects_bad_k(bad):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        co.adams_bashforth(bad)


# -- variable-step weights --------------------------------------------------------------------------
fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)


@st.composite
def exact_problems(draw):
    nodes = draw(st.lists(fractions, min_size=1, max_size=6, unique=True))
    u, u_next = draw(st.lists(fractions, min_size=2, max_size=2, unique=True))
    return nodes, u, u_next


@settings(max_examples=25, deadline=None)
@given(exact_problems())
def test_exact_weights_sum_to_one_and_integrate_polynomials(problem):
    nodes, u, u_next = problem
    w = co.lagrange_weights(nodes, u, u_next)
    assert sum(w) == 1
    u, u_next = R(u), R(u_next)
    for m in range(len(nodes)):  # mean of v^m over the step, exactly
        mean = (u_next ** (m + 1) - u ** (m + 1)) / ((m + 1) * (u_next - u))
        assert sum(wj * R(v) ** m for wj, v in zip(w, nodes)) == mean


@settings(max_examples=25, deadline=None)
@given(exact_problems())
def test_exact_and_float_paths_agree(problem):
    nodes, u, u_next = problem
    exact = np.array([float(x) for x in co.lagrange_weights(nodes, u, u_next)])
    fast = co.lagrange_weights_float([float(v) for v in nodes], float(u), float(u_next))
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=1e-12 * np.abs(exact).max())


@st.composite
def float_problems(draw):
    """A history of k nodes behind (or around) a step of length h, gaps between 0.3 h and 3 h."""
    k = draw(st.integers(1, 6))
    u = draw(st.floats(-10, 10))
    h = draw(st.floats(1e-3, 2)) * draw(st.sampled_from([-1, 1]))
    gaps = draw(st.lists(st.floats(0.3, 3), min_size=k - 1, max_size=k - 1))
    shift = draw(st.sampled_from([0.0, 1.0]))  # 1.0: the newest node is the step's end (implicit)
    nodes = u + h * (shift - np.concatenate([[0.0], np.cumsum(gaps)]))
    return list(nodes), u, u + h


@settings(max_examples=60, deadline=None)
@given(float_problems())
def test_float_weights_sum_to_one_and_integrate_polynomials(problem):
    nodes, u, u_next = problem
    w = co.lagrange_weights_float(nodes, u, u_next)
    scale = np.abs(w).sum()
    assert abs(w.sum() - 1) < 1e-13 * scale
    centre, half = (u + u_next) / 2, abs(u_next - u) / 2
    for m in range(len(nodes)):  # polynomials in the step's own scale, ((v - centre) / half)^m
        z = (np.asarray(nodes) - centre) / half
        mean = 0.0 if m % 2 else 1.0 / (m + 1)
        assert abs(w @ z**m - mean) < 1e-12 * (np.abs(w) @ np.abs(z) ** m + 1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.floats(-5, 5), st.floats(1e-3, 1) | st.floats(-1, -1e-3))
def test_uniform_nodes_reproduce_fixed_weights(k, u, h):
    ab = co.lagrange_weights_float([u - j * h for j in range(k)], u, u + h)
    am = co.lagrange_weights_float([u + h - j * h for j in range(k)], u, u + h)
    np.testing.assert_allclose(ab, [float(x) for x in co.adams_bashforth(k)], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(am, [float(x) for x in co.adams_moulton(k)], rtol=1e-9, atol=1e-9)


def test_uniform_exact_nodes_reproduce_fixed_weights_exactly():
    for k in range(1, 9):
        nodes = [R(7, 10) - j * R(1, 20) for j in range(k)]  # decreasing time, step backwards
        assert co.lagrange_weights(nodes, R(7, 10), R(3, 4)) == co.adams_bashforth(k)
        assert co.lagrange_weights(["3/4", *nodes[: k - 1]], "7/10", "3/4") == co.adams_moulton(k)


def test_float_path_is_accurate_for_high_order():
    nodes = [0.5 - 0.02 * j * (1 + 0.1 * j) for j in range(8)]
    exact = np.array([float(w) for w in co.lagrange_weights([R(v) for v in nodes], R(0.5), R(0.48))])
    fast = co.lagrange_weights_float(nodes, 0.5, 0.48)
    assert np.max(np.abs(fast - exact)) < 1e-13 * np.abs(exact).max()


def test_weight_errors_name_the_problem():
    with pytest.raises(ValueError, match="distinct"):
        co.lagrange_weights_float([0.1, 0.1], 0.1, 0.2)
    with pytest.raises(ValueError, match="non-empty"):
        co.lagrange_weights_float([0.1], 0.2, 0.2)
    with pytest.raises(ValueError, match="distinct"):
        co.lagrange_weights(["1/2", Fraction(1, 2)], 0, 1)
    with pytest.raises(ValueError, match="nodes\\[1\\]"):
        co.lagrange_weights([0, "x"], 0, 1)
    with pytest.raises(ValueError, match="empty"):
        co.lagrange_weights([], 0, 1)


def test_variable_step_weights_in_t_are_exact_for_rational_input():
    w = co.variable_step_weights(["7/10", 1, Fraction(3, 2)], R(7, 10), "1/4")
    assert w == (R(37, 16), R(-33, 20), R(27, 80))
    for wf in (co.variable_step_weights([0.7, 1.0, 1.5], 0.7, 0.25), co.variable_step_weights(["7/10", 1.0, 1.5], 0.7, "1/4")):
        assert isinstance(wf, np.ndarray)
        np.testing.assert_allclose(wf, [2.3125, -1.65, 0.3375], rtol=1e-14)


@pytest.mark.parametrize("schedule", [LinearVP(), CosineVP(), DiscreteVP.linear()], ids=repr)
@pytest.mark.parametrize("variable", ["s", "lambda"])
def test_weights_uniform_in_the_variable_are_adams(schedule, variable):
    """Times whose s (or lambda) values are equally spaced give back the fixed Adams-Bashforth weights."""
    forward, inverse = (schedule.s, schedule.t_from_s) if variable == "s" else (schedule.lam, schedule.t_from_lambda)
    t0 = 0.5 * (schedule.t_min + schedule.t_max)
    u0 = float(forward(t0))
    du = 0.02 * u0 if variable == "s" else 0.05
    times = [float(inverse(u0 + j * du)) for j in range(4)]  # history behind, time decreasing
    t_next = float(inverse(u0 - du))
    w = co.variable_step_weights(times, times[0], t_next, variable, schedule)
    np.testing.assert_allclose(w, [float(x) for x in co.adams_bashforth(4)], rtol=1e-6)
    direct = co.lagrange_weights_float(forward(np.array(times)), forward(times[0]), forward(t_next))
    np.testing.assert_array_equal(w, direct)


def test_variable_step_weights_errors():
    with pytest.raises(ValueError, match="variable must be one of"):
        co.variable_step_weights([0.5], 0.5, 0.4, "sigma")
    with pytest.raises(ValueError, match="needs a schedule"):
        co.variable_step_weights([0.5], 0.5, 0.4, "s")
    with pytest.raises(ValueError, match="infinite"):
        co.variable_step_weights([1.0, 0.0], 0.0, -1.0, "lambda", DiscreteVP.linear())
    # s = 0 at abar = 1 is fine
    w = co.variable_step_weights([1.0, 2.0], 0.0, -1.0, "s", DiscreteVP.linear())
    assert abs(w.sum() - 1) < 1e-12


# -- linear multistep methods -----------------------------------------------------------------------
LMM = co.LinearMultistepMethod
AB_ERROR = {1: R(1, 2), 2: R(5, 12), 3: R(3, 8), 4: R(251, 720), 5: R(95, 288)}
AM_ERROR = {1: R(-1, 2), 2: R(-1, 12), 3: R(-1, 24), 4: R(-19, 720)}
BDF_ERROR = {1: R(-1, 2), 2: R(-2, 9), 3: R(-3, 22), 4: R(-12, 125)}


@pytest.mark.parametrize("k", sorted(AB_ERROR))
def test_adams_bashforth_method(k):
    m = LMM.adams_bashforth(k)
    assert (m.order, m.error_constant, m.is_zero_stable, m.is_explicit, m.steps) == (k, AB_ERROR[k], True, True, k)


@pytest.mark.parametrize("k", sorted(AM_ERROR))
def test_adams_moulton_method(k):
    m = LMM.adams_moulton(k)
    assert (m.order, m.error_constant, m.is_zero_stable, m.is_explicit) == (k, AM_ERROR[k], True, False)


@pytest.mark.parametrize("k", range(1, 8))
def test_bdf(k):
    m = LMM.bdf(k)
    assert m.order == k and m.alpha[-1] == 1
    if k in BDF_ERROR:
        assert m.error_constant == BDF_ERROR[k]
    assert m.is_zero_stable == (k <= 6)  # BDF7 violates the root condition


@pytest.mark.parametrize(
    "alpha, beta, order, stable",
    [
        ((-5, 4, 1), (2, 4, 0), 3, False),  # the explicit 2-step order-3 method: root -5
        ((-1, 0, 1), ("1/3", "4/3", "1/3"), 4, True),  # Milne-Simpson: roots +1, -1 on the circle, simple
        ((1, -2, 1), (0, 0, 1), 0, False),  # inconsistent, double root at 1
        ((1, -2, 1), (1, -1, 0), 1, False),  # double root at 1
        ((-1, 1, -1, 1), (0, 0, 0, 1), 0, True),  # rho = (z-1)(z^2+1): 1, +-i simple
        ((-1, 0, 0, 1), (0, 0, 0, 1), 0, True),  # rho = z^3 - 1: roots of unity
        ((-2, 2, -1, 1), (0, 0, 0, 1), 0, False),  # (z-1)(z^2+2): |z| = sqrt 2
        ((-1, 1, -2, 2), (0, 0, 0, 1), 0, True),  # (z-1)(2z^2+1): |z| = 1/sqrt 2
        ((-2, 3, -3, 2), (0, 0, 0, 1), 0, True),  # (z-1)(2z^2-z+2): complex pair on the circle
        ((-1, 4, -4, 1), (0, 0, 0, 1), 0, False),  # (z-1)(z^2-3z+1): self-reciprocal, real roots off it
        ((0, 0, 1), (0, 1, 0), 0, True),  # rho = z^2: roots at 0
    ],
)
def test_lmm_order_and_root_condition(alpha, beta, order, stable):
    m = LMM(alpha, beta)
    assert m.order == order
    assert m.is_zero_stable is stable
    assert m.is_convergent == (order >= 1 and stable)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=5).filter(lambda c: c[-1] != 0))
def test_root_condition_agrees_with_numerical_roots(alpha):
    roots = np.roots(alpha[::-1])
    radii = np.abs(roots)
    if np.any(np.abs(radii - 1) < 1e-6):  # numerically ambiguous: the exact test covers these cases
        return
    assert LMM(alpha, [0] * len(alpha)).is_zero_stable == bool(np.all(radii < 1))


def test_lmm_validation():
    with pytest.raises(ValueError, match="same length"):
        LMM((0, 1), (1,))
    with pytest.raises(ValueError, match="alpha\\[-1\\]"):
        LMM((1, 0), (1, 0))
    m = LMM(("-1", "1"), (Fraction(1, 1), 0))
    assert m.alpha == (-1, 1) and all(isinstance(a, sp.Rational) for a in m.alpha)
    with pytest.raises(Exception):
        m.alpha = (1, 1)  # frozen


# -- Butcher order conditions ------------------------------------------------------------------------
def test_rooted_tree_counts_and_densities():
    assert [len(co.rooted_trees(n)) for n in range(1, 9)] == [1, 1, 2, 4, 9, 20, 48, 115]
    densities = {co.format_tree(t): co.tree_density(t) for n in range(1, 5) for t in co.rooted_trees(n)}
    assert densities == {"t": 1, "[t]": 2, "[[t]]": 6, "[t,t]": 3, "[[[t]]]": 24, "[[t,t]]": 12,
                         "[t,[t]]": 8, "[t,t,t]": 4}


@pytest.mark.parametrize("name, order", [("EULER", 1), ("HEUN", 2), ("MIDPOINT", 2), ("RALSTON", 2), ("RK3", 3),
                                         ("RK4", 4), ("RK38", 4)])
def test_shipped_tableaus_have_their_order(name, order):
    tableaus = pytest.importorskip("pndmkit.tableaus")
    tableau = getattr(tableaus, name)
    assert co.tableau_order(tableau) == order
    residuals = co.order_conditions(tableau, order)
    assert all(r == 0 for r in residuals.values())


def test_broken_tableau_fails_its_order_conditions():
    """RK4 with the weights b = (1/6, 1/6, 1/2, 1/6): still consistent and second order, but not third."""
    h = R(1, 2)
    a = ((0, 0, 0, 0), (h, 0, 0, 0), (0, h, 0, 0), (0, 0, 1, 0))
    broken = Tableau(a, (R(1, 6), R(1, 6), R(1, 2), R(1, 6)), (0, h, h, 1))
    assert co.tableau_order(broken) == 2
    residuals = {co.format_tree(t): r for t, r in co.order_conditions(broken, 3).items()}
    assert residuals == {"t": 0, "[t]": 0, "[[t]]": R(1, 24), "[t,t]": 0}
    tableaus = pytest.importorskip("pndmkit.tableaus")
    as_shipped = tableaus.ButcherTableau(a, broken.b, broken.c, name="broken")
    assert co.tableau_order(as_shipped) == 2


def test_implicit_tableau_with_surds():
    """Two-stage Gauss-Legendre: order 4 = twice its stages, entries with sqrt(3)."""
    r = sp.sqrt(3) / 6
    gauss = Tableau(((R(1, 4), R(1, 4) - r), (R(1, 4) + r, R(1, 4))), (R(1, 2), R(1, 2)), (R(1, 2) - r, R(1, 2) + r))
    assert co.tableau_order(gauss) == 4


def test_tableau_with_inconsistent_c_is_rejected():
    with pytest.raises(ValueError, match="row sums"):
        co.order_conditions(Tableau(((0, 0), (1, 0)), (R(1, 2), R(1, 2)), (0, R(1, 2))), 2)
    with pytest.raises(TypeError, match="attributes a, b and c"):
        co.tableau_order(object())


# -- local error of pseudo multistep steps --------------------------------------------------------------
h, s1, s2, e1, e2 = sp.symbols("h s1 s2 e1 e2")


@pytest.mark.parametrize("k", [3, 4, 5])
def test_t_uniform_weights_leave_an_s2_eps1_h3_term(k):
    """PLMS-style weights + DDIM transfer leave -(1/12) s''(t) eps'(t) h^3, whatever k >= 3.

    docs/theory.md, "Why t-uniform pseudo methods are second order".
    """
    assert sp.simplify(co.pseudo_local_error("t-uniform", k) + e1 * s2 * h**3 / 12) == 0


def test_t_uniform_ab2_adds_the_classical_term():
    assert sp.expand(co.pseudo_local_error("t-uniform", 2)) == sp.expand(-(e1 * s2 + 5 * e2 * s1) * h**3 / 12)
    # the same fixed weights passed explicitly
    assert co.pseudo_local_error(["3/2", "-1/2"], 2) == co.pseudo_local_error("t-uniform", 2)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_s_exact_weights_are_order_k(k):
    """Weights exact on the s nodes: local error O(h^(k+1)), the classical Adams error in s."""
    expansion = co.pseudo_local_error_expansion("s-exact", k)
    assert all(c == 0 for c in expansion[: k + 1])
    leading = expansion[k + 1]
    # with s linear in t (s'' = s''' = ... = 0) it is -C_{k+1} s' eps^(k) h^(k+1)
    linear = leading.subs({sp.Symbol(f"s{i}"): 0 for i in range(2, k + 3)})
    e_k = sp.Symbol(f"e{k}")
    assert sp.simplify(linear + co.LinearMultistepMethod.adams_bashforth(k).error_constant * s1 * e_k) == 0


@pytest.mark.parametrize("k", [2, 3, 4])
def test_s_exact_leading_term_is_adams_error_in_s(k):
    """In general: -C_{k+1} (s' h)^(k+1) d^k eps / ds^k, with d/ds = (1/s'(t)) d/dt."""
    t = sp.Symbol("t")
    eps, s = sp.Function("eps")(t), sp.Function("s")(t)
    derivative = eps
    for _ in range(k):
        derivative = sp.diff(derivative, t) / sp.diff(s, t)
    names = {sp.diff(eps, t, i): sp.Symbol(f"e{i}") for i in range(k, 0, -1)}
    names.update({sp.diff(s, t, i): sp.Symbol(f"s{i}") for i in range(k + 1, 0, -1)})
    in_s = derivative.subs(names)
    expected = -co.LinearMultistepMethod.adams_bashforth(k).error_constant * (s1 * h) ** (k + 1) * in_s
    assert sp.simplify(co.pseudo_local_error("s-exact", k) - expected) == 0


def test_pseudo_local_error_constant_numerically():
    """Float check of -(1/12) s'' eps' h^3 for AB4 weights with s(t) = exp(t), eps(t) = sin(t), at t = 0.3."""
    t = 0.3
    exact_integral = lambda a, b: (math.exp(b) * (math.sin(b) - math.cos(b)) - math.exp(a) * (math.sin(a) - math.cos(a))) / 2
    w = [float(x) for x in co.adams_bashforth(4)]
    predicted = -math.exp(t) * math.cos(t) / 12
    for step in (1e-2, -1e-2):
        numerical = (math.exp(t + step) - math.exp(t)) * sum(wj * math.sin(t - j * step) for j, wj in enumerate(w))
        assert abs((numerical - exact_integral(t, t + step)) / step**3 / predicted - 1) < 0.05
    # s-exact weights from the float path: error shrinks like h^5
    errors = []
    for step in (2e-2, 1e-2):
        nodes = [math.exp(t - j * step) for j in range(4)]
        ws = co.lagrange_weights_float(nodes, math.exp(t), math.exp(t + step))
        numerical = (math.exp(t + step) - math.exp(t)) * sum(wj * math.sin(t - j * step) for j, wj in enumerate(ws))
        errors.append(abs(numerical - exact_integral(t, t + step)))
    assert 2**5 * 0.8 < errors[0] / errors[1] < 2**5 * 1.25


def test_pseudo_local_error_rejects_bad_rules():
    with pytest.raises(ValueError, match="weight_rule"):
        co.pseudo_local_error("uniform", 2)
    with pytest.raises(ValueError, match="2 weights but k=3"):
        co.pseudo_local_error(["3/2", "-1/2"], 3)


# -- command line ---------------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    assert main(["coefficients", *argv]) == 0
    return capsys.readouterr().out


def test_cli_adams_bashforth(capsys):
    out = run_cli(capsys, "adams-bashforth", "4")
    assert "55/24, -59/24, 37/24, -9/24" in out
    assert "order 4, error constant 251/720, zero-stable" in out
    data = json.loads(run_cli(capsys, "adams-bashforth", "4", "--json"))
    assert data["numerators"] == [55, -59, 37, -9] and data["denominator"] == 24
    assert data["order"] == 4 and data["error_constant"] == "251/720" and data["zero_stable"]


def test_cli_adams_moulton_and_bdf(capsys):
    data = json.loads(run_cli(capsys, "adams-moulton", "3", "--json"))
    assert data["numerators"] == [5, 8, -1] and data["denominator"] == 12 and data["order"] == 3
    assert data["error_constant"] == "-1/24" and not data["explicit"]
    assert "NOT zero-stable" in run_cli(capsys, "bdf", "7")


def test_cli_general_lmm(capsys):
    data = json.loads(run_cli(capsys, "lmm", "--alpha=-1,0,1", "--beta", "1/3,4/3,1/3", "--json"))  # Milne-Simpson
    assert (data["order"], data["error_constant"], data["zero_stable"], data["steps"]) == (4, "-1/90", True, 2)
    assert "NOT zero-stable" in run_cli(capsys, "lmm", "--alpha=-5,4,1", "--beta", "2,4,0")
    with pytest.raises(SystemExit, match="same length"):
        main(["coefficients", "lmm", "--alpha=-1,1", "--beta", "1"])


def test_cli_variable_issue_example(capsys):
    out = run_cli(capsys, "variable", "--nodes", "7/10,1,3/2", "--step", "7/10,1/4")
    assert "37/16, -33/20, 27/80" in out and "sum 1;" in out
    data = json.loads(run_cli(capsys, "variable", "--nodes", "7/10,1,3/2", "--step", "7/10,1/4", "--json"))
    assert data["weights"] == ["37/16", "-33/20", "27/80"] and data["sum"] == "1" and data["exact"]


@pytest.mark.parametrize("schedule", ["linear-vp", "cosine-vp"])
@pytest.mark.parametrize("variable", ["s", "lambda"])
def test_cli_variable_in_s_and_lambda(capsys, schedule, variable):
    argv = ["variable", "--nodes", "0.5,0.6,0.7", "--step", "0.5,0.4", "--variable", variable, "--schedule", schedule]
    data = json.loads(run_cli(capsys, *argv, "--json"))
    assert abs(sum(data["floats"]) - 1) < 1e-12 and not data["exact"]
    expected = co.variable_step_weights([0.5, 0.6, 0.7], 0.5, 0.4, variable, {"linear-vp": LinearVP(),
                                                                              "cosine-vp": CosineVP()}[schedule])
    np.testing.assert_array_equal(data["floats"], expected)
    assert f"in {variable} of {schedule}" in run_cli(capsys, *argv)


def test_cli_discrete_schedule(capsys):
    data = json.loads(run_cli(capsys, "variable", "--nodes", "980,960,940", "--step", "980,960", "--variable", "s",
                              "--schedule", "ddpm-quad", "--json"))
    assert abs(sum(data["floats"]) - 1) < 1e-12


def test_cli_tableau_and_local_error(capsys):
    data = json.loads(run_cli(capsys, "tableau", "rk4", "--json"))
    assert data["order"] == 4 and any(c["residual"] != "0" for c in data["conditions"] if c["order"] == 5)
    data = json.loads(run_cli(capsys, "local-error", "4", "--json"))
    assert data["leading_term"] == "-e1*h**3*s2/12" and data["power"] == 3
    data = json.loads(run_cli(capsys, "local-error", "3", "--weights", "s-exact", "--json"))
    assert data["power"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["variable", "--nodes", "1/2", "--step", "1/2,1/2"], "empty"),
        (["variable", "--nodes", "0.5", "--step", "0.5,0.4", "--variable", "s"], "needs --schedule"),
        (["variable", "--nodes", "1.5", "--step", "0.5,0.4", "--variable", "s", "--schedule", "linear-vp"], "outside"),
        (["tableau", "rk5"], "unknown tableau"),
    ],
)
def test_cli_errors_are_messages(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(["coefficients", *argv])


def test_cli_rejects_bad_arguments(capsys):
    for argv in (["adams-bashforth", "0"], ["variable", "--nodes", "1/0", "--step", "0,1"],
                 ["variable", "--nodes", "1", "--step", "0"]):
        with pytest.raises(SystemExit):
            main(["coefficients", *argv])
    capsys.readouterr()
