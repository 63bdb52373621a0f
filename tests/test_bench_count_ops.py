"""benchmarks/count_ops: a step's array operations, with each CUDA fused kernel counted as one launch."""

from __future__ import annotations

from benchmarks import count_ops


def _table(capsys, *args: str) -> dict[str, tuple[float, float, float]]:
    """part -> (kernels, views, reads) per step, as count_ops prints them for workload 1."""
    count_ops.main(["1", "--steps", "2", *args])
    rows = {}
    for line in capsys.readouterr().out.splitlines()[2:]:
        *name, kernels, views, reads = line.split()
        rows[" ".join(name)] = (float(kernels), float(views), float(reads))
    return rows


def test_fused_kernels_count_one_launch_and_the_reference_bodies_many(capsys):
    fused, reference = _table(capsys), _table(capsys, "--no-cuda-kernels")
    # workload 1: Adam over one flat group (no weight decay) is one fused launch; its body a dozen passes
    assert fused["optimizer step"][0] == 1.0
    assert reference["optimizer step"][0] >= 10
    # the loss's softmax cross-entropy is one kernel plus the reduction around it
    assert fused["loss forward"][0] < reference["loss forward"][0]
    assert fused["whole step"][0] < reference["whole step"][0]
    # every part but the per-epoch bookkeeping is the same code either way
    for part in ("0-1 DenseActivation forward", "0-1 DenseActivation backward", "2 Dense backward"):
        assert fused[part] == reference[part], part
    # zero_grad only marks the gradients cleared (the backward writes them): no launch, so no row
    assert "zero_grad" not in fused and "zero_grad" not in reference


def test_no_value_is_read_back_to_the_host_in_a_step(capsys):
    rows = _table(capsys)
    assert rows["whole step"][2] == 0.0
    assert rows["whole step"][0] > 0
