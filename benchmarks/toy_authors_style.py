"""A training loop organised the way the authors' notebook is (for the benchmark only):
one model at a time, torch.optim.AdamW, and after every epoch an evaluation on the
held-out pairs and logging of Python floats (host syncs: .item())."""

import torch


def train_one_model_per_epoch_sync(model, tokens, targets, train, epochs, lr=1e-3, weight_decay=1.0):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    log = []
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tokens[train]), targets[train])
        loss.backward()
        opt.step()
        with torch.no_grad():
            test_logits = model(tokens[~train])
            test_loss = torch.nn.functional.cross_entropy(test_logits, targets[~train]).item()
            test_acc = (test_logits.argmax(-1) == targets[~train]).float().mean().item()
        log.append((loss.item(), test_loss, test_acc))
    return log
