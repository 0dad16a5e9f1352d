"""Two methods defined outside the package, as a user would, and registered with ``register_method``.

``conftest.py`` registers them before collection, so every registry-driven test (orders, NFE, ask/tell,
numpy/torch, prediction types, point-mass exactness), ``pndmkit methods/order/compare`` and the convergence
figure include them with no other edit. Each estimator is written against the public protocol only.
"""

from pndmkit import DDIMTransfer, GradientEstimator, Integrator, MethodSpec, RungeKutta, Step, Warmup
from pndmkit._backend import LinComb
from pndmkit.tableaus import HEUN
from pndmkit.theory.multistep import lagrange_weights_float


class PECTrapezoid(GradientEstimator):
    """PEC with an Euler predictor and a trapezoidal corrector: one evaluation per step after the first."""

    def init(self, x, t, phi, times):
        return None  # the gradient evaluated at the last predicted point, (t, e), if any

    def step(self, x, t, t_next, phi, state):
        e = state[1] if state is not None and state[0] == t else (yield x, t)
        e_new = yield phi(x, e, t, t_next), t_next  # evaluate at the predicted point
        return Step((t_next, e_new), e=LinComb((0.5, 0.5), (e, e_new)))

    def order(self, phi):
        return 2


class SExactAB3(GradientEstimator):
    """Adams-Bashforth 3 with weights exact on the transfer's own nodes (s for DDIM); after a warm-up."""

    def init(self, x, t, phi, times):
        return ()  # ((t_k, e_k), ...) newest first

    def observe(self, history, t, e):  # what a Warmup tells it about the steps it did not take
        return ((t, e),) + history[:1]

    def step(self, x, t, t_next, phi, history):
        e = yield x, t
        nodes = [(t, e)] + list(history[:2])
        u = [phi.coordinate(tk) for tk, _ in nodes]
        w = lagrange_weights_float(u, phi.coordinate(t), phi.coordinate(t_next))
        return Step(tuple(nodes[:2]), e=LinComb(w, [ek for _, ek in nodes]))

    def order(self, phi):
        return 3


EXTERNAL = [
    MethodSpec("test-pec-trapezoid", lambda sched: Integrator(PECTrapezoid(), DDIMTransfer(sched), "test-pec-trapezoid"),
               2, reference="tests/external_methods.py"),
    MethodSpec("test-ab3-s", lambda sched: Integrator(Warmup(RungeKutta(HEUN, variable="native"), 2, SExactAB3()),
                                                      DDIMTransfer(sched), "test-ab3-s"),
               3, reference="tests/external_methods.py"),
]
