"""The one distributed context of search and training, in a single process."""

import torch

from aestheticnet.distributed import DistContext, init_distributed, pick_device


def test_single_process_context(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed, ctx.created_group) == (0, 1, True, False, False)
    assert ctx.device == torch.device("cpu")
    ctx.barrier()
    ctx.shutdown()  # nothing joined, nothing to leave


def test_collectives_are_identities_in_one_process():
    ctx = DistContext()
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    ctx.average_grads([p])
    assert torch.equal(p.grad, torch.full((3,), 2.0))
    assert ctx.all_finite([torch.ones(2), torch.zeros(1)])
    assert not ctx.all_finite([torch.tensor([1.0, float("nan")])])


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
