#!/usr/bin/python3
"""The PyTorch side of TrainingKnobs (tests/training/training_knobs_test.cpp): the training knobs
of a PyTorch loop, each in float64 from the weights and data of formulas.py, on
nn.Sequential(Linear(4, 5), ReLU(), Linear(5, 3), Tanh(), Linear(3, 2)) with class labels
r % 2 for rows r = 0..7, batches in stored order (no shuffle). Each case prints the final
parameters and the optimizer's state buffers (flat, in parameter order), in the layout the test
embeds. Run: /usr/bin/python3 training_knobs_torch.py
"""
import torch

import formulas

torch.set_default_dtype(torch.float64)
SIZES = [4, 5, 3, 2]
ROWS = 8


def model_and_data():
    linears = formulas.linears(SIZES)
    model = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1], torch.nn.Tanh(),
                                linears[2])
    x, _ = formulas.data(ROWS, SIZES[0], SIZES[-1])
    labels = torch.tensor([r % 2 for r in range(ROWS)])
    return model, x, labels


def train(make_optimizer, epochs, batch, smoothing=0.0, clip=0.0, accumulate=1,
          make_scheduler=None, decay_groups=None):
    model, x, labels = model_and_data()
    if decay_groups is None:
        params = model.parameters()
    else:  # PyTorch's usual two groups: Linear weights decay, biases do not
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        params = [{"params": weights, "weight_decay": decay_groups},
                  {"params": biases, "weight_decay": 0.0}]
    optimizer = make_optimizer(params)
    batches = (ROWS + batch - 1) // batch
    steps_per_epoch = (batches + accumulate - 1) // accumulate
    scheduler = make_scheduler(optimizer, epochs * steps_per_epoch) if make_scheduler else None
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    norms = []
    lrs = []
    for _ in range(epochs):
        optimizer.zero_grad()
        for b in range(batches):
            xb, yb = x[b * batch:(b + 1) * batch], labels[b * batch:(b + 1) * batch]
            loss = criterion(model(xb), yb) / accumulate
            loss.backward()
            if (b + 1) % accumulate == 0 or b + 1 == batches:
                if clip > 0:
                    norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item())
                lrs.append(optimizer.param_groups[0]["lr"])
                optimizer.step()
                optimizer.zero_grad()
                if scheduler:
                    scheduler.step()
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    state = []
    for name in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
        buffers = [optimizer.state[p].get(name) for p in model.parameters()]
        if all(b is not None for b in buffers):
            state.append((name, torch.cat([b.reshape(-1) for b in buffers])))
    return flat, state, norms, lrs


def show(case, result):
    flat, state, norms, lrs = result
    print(case)
    print("  params:", ", ".join(repr(v) for v in flat.tolist()))
    for name, values in state:
        print("  " + name + ":", ", ".join(repr(v) for v in values.tolist()))
    if norms:
        print("  norms:", ", ".join(repr(v) for v in norms))
    print("  lrs:", ", ".join(repr(v) for v in lrs))


def sgd(lr, momentum=0.0, wd=0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)


def adam(lr, wd=0.0, decoupled=False):
    kind = torch.optim.AdamW if decoupled else torch.optim.Adam
    return lambda params: kind(params, lr=lr, weight_decay=wd)


show("label_smoothing", train(sgd(0.1, momentum=0.9), epochs=2, batch=4, smoothing=0.1))
show("clip_grad_norm", train(adam(0.01), epochs=2, batch=4, clip=0.5))
show("decay_weights_adamw", train(adam(0.01, decoupled=True), epochs=2, batch=4,
                                  decay_groups=0.1))
show("decay_weights_sgd", train(sgd(0.1, momentum=0.9), epochs=2, batch=4, decay_groups=0.1))
show("accumulate", train(sgd(0.1, momentum=0.9), epochs=2, batch=2, accumulate=3))
show("onecycle_adam", train(adam(0.01), epochs=2, batch=2, make_scheduler=lambda o, total:
                            torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05,
                                                                total_steps=total)))
show("onecycle_sgd_linear", train(sgd(0.1, momentum=0.9), epochs=2, batch=2,
                                  make_scheduler=lambda o, total:
                                  torch.optim.lr_scheduler.OneCycleLR(
                                      o, max_lr=0.2, total_steps=total, anneal_strategy="linear",
                                      pct_start=0.25)))

# ReduceLROnPlateau on a fixed sequence of val_loss values (mode min) and of accuracies (max).
for mode, values in (("min", [1.0, 0.9, 0.9, 0.8999, 0.95, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75]),
                     ("max", [0.5, 0.6, 0.6, 0.59, 0.61, 0.61, 0.61, 0.61, 0.7, 0.7, 0.7])):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5,
                                                           patience=1, cooldown=1, min_lr=0.2)
    lrs = []
    for v in values:
        scheduler.step(v)
        lrs.append(optimizer.param_groups[0]["lr"])
    print("plateau_" + mode + ":", ", ".join(repr(v) for v in lrs))
print("torch", torch.__version__)
