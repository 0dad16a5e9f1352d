"""The prepared GPU check (``analysis/gpu_check.py``) runs every code path on the CPU with ``--quick``: every
fixed-step method's host synchronisations through both drivers, each network and each of three dtypes (here
three of the six network cases), the overhead tables;
it finds a synchronisation inside a step and names its line; it refuses CUDA where there is none and an existing
result without ``--overwrite``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import gpu_check  # noqa: E402
from pndmkit.methods import BUILTIN, METHODS  # noqa: E402
from pndmkit.nn.checkpoint import load_checkpoint  # noqa: E402

FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]


#: the network cases of the quick run here: each network and each dtype once, not all six pairs (the loop over every
#: case is tested with stand-ins below); a CPU forward pass of the shipped digits network costs seconds
CASES = (("digits", "float32", 256), ("ddpm-cifar10", "float16", 256), ("ddpm-cifar10", "bfloat16", 256))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gpu_check, "NETWORK_CASES", CASES)
        rc = gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)])
    return rc, out, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_the_quick_cpu_run_checks_every_method_with_both_drivers(quick):
    rc, _, result, md = quick
    rows = result["sync"]["rows"]
    assert rc == 0 and result["machine"]["device"] == "cpu" and result["machine"]["card"] is None
    assert sorted((r["method"], r["driver"]) for r in rows) == sorted((m, d) for m in FIXED for d in gpu_check.DRIVERS)
    assert "does not apply (CUDA only)" in result["sync"]["how"] and "dispatch mode" in result["sync"]["how"]
    for r in rows:
        # no synchronisation inside a step: as many at 9 steps as at 4, each at a line of pndmkit, the result finite
        assert r["passed"] and r["first_offending"] is None and r["finite"], r
        assert r["syncs"]["4"] == r["syncs"]["9"] == sum(r["locations"].values()) >= 1, r
        assert all(where.startswith("pndmkit/") for where in r["locations"]), r
    # the scheduler loop checks its final sample once; sample checks x_T (finite and its scale, one reduction read
    # once) and the result
    assert {r["syncs"]["9"] for r in rows if r["driver"] == "scheduler"} == {1}
    assert {r["syncs"]["9"] for r in rows if r["driver"] == "sample"} == {2}
    assert f"{len(rows)} of {len(rows)} method and driver pairs pass" in md
    assert result["skipped"] == []


def test_the_quick_cpu_run_samples_each_network_and_each_dtype(quick):
    _, _, result, md = quick
    nets = result["networks"]
    assert [(r["case"], r["dtype"]) for r in nets] == [(n, d) for n, d, _ in CASES]
    for r in nets:
        assert r["finite"] is True and r["device"] == "cpu" and r["batch"] == 2 and r["nfe"] == 1
        assert 0.0 <= r["share_outside_network"] <= 1.0 and r["images_per_second"] > 0
        assert r["network_seconds"] <= r["seconds"] and r["meets_share_goal"] == (r["share_outside_network"] < 0.02)
        assert f"| {r['case']} | {r['parameters'] / 1e6:.2f}M | {r['dtype']} | 2 | 1 |" in md
    digits = load_checkpoint("digits").net
    assert {r["parameters"] for r in nets if r["case"] == "digits"} == {sum(p.numel() for p in digits.parameters())}


def test_the_quick_cpu_run_has_the_three_overhead_tables_of_the_bench(quick):
    _, _, result, md = quick
    over = result["overhead"]
    assert over["tables"] == ["shared", "methods", "bound"] and over["machine"]["device"] == "cpu"
    assert [r["method"] for r in over["shared"]] == ["ddim", "unipc-3"]
    assert [r["method"] for r in over["methods"]] == [name for name in BUILTIN if not METHODS[name].adaptive]
    assert [r["shape"] for r in over["bound"]] == [[1, 4, 8, 8]]
    for r in over["shared"]:
        assert r["sample_us"] > 0 and r["sample_ratio"] == pytest.approx(r["sample_us"] / r["diffusers_us"])
    assert "torch " + torch.__version__ + " CPU float32" in md


def test_a_synchronisation_inside_a_step_fails_naming_its_line_and_an_error_does_not_stop_the_check(monkeypatch):
    import pndmkit

    def syncing_run(torch, method, steps, x, device):
        def model(x, t):
            if float(x.abs().max()) > 1e9:  # a host read at every evaluation
                raise AssertionError
            return 0.1 * x

        return lambda: pndmkit.sample(model, x, schedule=pndmkit.DiscreteVP.linear(), method=method, steps=steps).x

    line = syncing_run.__code__.co_firstlineno + 2
    monkeypatch.setattr(gpu_check, "sample_run", syncing_run)
    skipped = []
    rows = gpu_check.sync_check(torch, "cpu", ["no-such-method", "ipndm"], ["sample"], float("inf"), skipped)
    assert [r["method"] for r in rows] == ["no-such-method", "ipndm"] and skipped == []
    assert not rows[0]["passed"] and "no-such-method" in rows[0]["error"]
    bad = rows[1]
    assert not bad["passed"] and bad["first_offending"].startswith(f"tests/test_gpu_check.py:{line} (model)")
    assert bad["syncs"]["9"] - bad["syncs"]["4"] == METHODS["ipndm"].build(pndmkit.DiscreteVP.linear()).nfe(9) - \
        METHODS["ipndm"].build(pndmkit.DiscreteVP.linear()).nfe(4)  # one more per evaluation


def test_the_cuda_recorder_names_the_line_that_raised_each_sync_warning():
    """On CUDA, torch's sync-debug mode "warn" raises one UserWarning per synchronising operation, from the line of
    Python that called it; the recorder keeps those lines and drops other warnings."""
    import warnings

    found = []
    with gpu_check.sync_warnings(found):
        for _ in range(3):
            warnings.warn("called a synchronizing CUDA operation")  # the text of c10's warn_or_error_on_sync
        warnings.warn("another warning")
    line = test_the_cuda_recorder_names_the_line_that_raised_each_sync_warning.__code__.co_firstlineno + 8
    assert found == [f"tests/test_gpu_check.py:{line} (test_the_cuda_recorder_names_the_line_that_raised_each_sync_"
                     f"warning): warnings.warn(\"called a synchronizing CUDA operation\")  # the text of c10's "
                     f"warn_or_error_on_sync"] * 3


def test_a_network_case_or_overhead_table_that_fails_is_recorded_and_the_others_run(monkeypatch):
    """No CUDA code of pndmkit has run yet: a failure (out of memory, a tensor on the wrong device) must cost one
    case, not the check. The network benchmark and the overhead tables are stand-ins here: what is tested is the
    check's handling of their failures."""
    def bench_case(net, schedule, *, name, method, steps, batch, device, dtype, repeats):
        if dtype == "float16":
            raise RuntimeError("CUDA out of memory.\nmore lines")
        return {"case": name, "dtype": dtype, "batch": batch, "nfe": steps, "images_per_second": 1.0,
                "share_outside_network": 0.5, "finite": True}

    def bench_run(tables, **kwargs):
        if tables == ("methods",):
            raise ValueError("a tensor on the wrong device")
        return {"tables": list(tables), **{t: [t] for t in tables}}

    monkeypatch.setattr(gpu_check, "bench_case", bench_case)
    monkeypatch.setattr(gpu_check, "bench_run", bench_run)
    skipped, errors = [], []
    rows = gpu_check.network_rows(torch, "cpu", True, float("inf"), skipped, lambda line: None)
    assert [(r["case"], r["dtype"], r.get("error")) for r in rows] == [
        (n, d, "RuntimeError: CUDA out of memory." if d == "float16" else None)
        for n in ("digits", "ddpm-cifar10") for d in ("float32", "float16", "bfloat16")]
    over = gpu_check.overhead("cpu", True, gpu_check.TABLES, float("inf"), skipped, errors, lambda line: None)
    assert over == {"tables": ["shared", "bound"], "shared": ["shared"], "bound": ["bound"]} and skipped == []
    assert errors == ["overhead table 'methods': ValueError: a tensor on the wrong device"]
    assert gpu_check.failed({"sync": {"rows": []}, "networks": rows, "errors": []})
    assert not gpu_check.failed({"sync": {"rows": []}, "networks": [r for r in rows if "error" not in r], "errors": []})


def test_past_the_budget_nothing_new_starts_and_each_skip_is_noted(tmp_path):
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--budget", "1e-9"]) == 0
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["sync"]["rows"] == [] and result["networks"] == [] and result["overhead"] is None
    assert result["skipped"][0].startswith(f"synchronisation check of {FIXED[0]} and the methods after it")
    assert len(result["skipped"]) == 1 + 6 + 3 and "## Skipped" in (tmp_path / "gpu_check.md").read_text()


def test_an_existing_result_is_kept_without_overwrite(quick, capsys):
    _, out, _, _ = quick
    before = (out / "gpu_check.json").read_bytes()
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "gpu_check.json exists; pass --overwrite" in err
    assert (out / "gpu_check.json").read_bytes() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_without_cuda_the_default_device_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "--device cuda: CUDA is not available here" in err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_device_is_one_usage_line(capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--device", "gpu"])
    assert exc.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "--device: expected cpu, cuda or cuda:N, got 'gpu'")
