"""Helpers shared by the instance-exit baseline tests."""


def alone(batch, i):
    """Instance i of a right-padded batch, as a batch of one without padding."""
    n = int(batch["attention_mask"][i].sum())
    return {k: v[i:i + 1, :n] for k, v in batch.items()}


def exit_layer(trace):
    """The layer an instance exited at: how many encoder layers its trace ran."""
    return sum(call.name.startswith("layer_") for call in trace)
