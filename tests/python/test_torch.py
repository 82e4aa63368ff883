"""PyTorch tensors in and out (through DLPack), and state_dict() into torch.nn.Sequential.
Skipped where torch is not installed."""
import numpy as np
import pytest

import mlpx

torch = pytest.importorskip("torch", reason="torch is not installed: the torch tests skip")


def test_torch_in_torch_out(blobs):
    x, y, xv, yv = blobs
    m = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")])
    m.fit(torch.from_numpy(x), torch.from_numpy(y), validation=(torch.from_numpy(xv), yv),
          epochs=2)
    out = m.predict(torch.from_numpy(xv))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert np.array_equal(out.numpy(), m.predict(xv))
    e = m.evaluate(torch.from_numpy(xv), torch.from_numpy(yv))
    assert e["samples"] == 60
    # requires_grad tensors are read through detach(), as torch.no_grad() would.
    assert torch.equal(m.predict(torch.from_numpy(xv).requires_grad_()), out)


def test_bad_torch_inputs(blobs):
    x, _, _, _ = blobs
    m = mlpx.Model(inputs=8, layers=[(3, "identity")])
    with pytest.raises(mlpx.DataError, match="found float64"):
        m.predict(torch.from_numpy(x).double())
    with pytest.raises(mlpx.DataError, match="not C-contiguous"):
        m.predict(torch.from_numpy(np.ascontiguousarray(x.T)).t())


def test_state_dict_into_torch_sequential(blobs):
    x, y, xv, _ = blobs
    m = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")])
    m.fit(x, y, epochs=2)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    sd = m.state_dict()
    net.load_state_dict({"0.weight": torch.from_numpy(sd["layers.0.weight"]),
                         "0.bias": torch.from_numpy(sd["layers.0.bias"]),
                         "2.weight": torch.from_numpy(sd["layers.1.weight"]),
                         "2.bias": torch.from_numpy(sd["layers.1.bias"])})
    with torch.no_grad():
        ref = net(torch.from_numpy(xv)).numpy()
    np.testing.assert_allclose(m.logits(xv), ref, rtol=1e-5, atol=1e-5)
    # and back: torch tensors into load_state_dict
    other = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")], seed=9)
    other.load_state_dict({f"layers.{i}.{k}": getattr(net[2 * i], k).detach()
                           for i in range(2) for k in ("weight", "bias")})
    np.testing.assert_array_equal(other.predict(xv), m.predict(xv))
