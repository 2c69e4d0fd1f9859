"""A worked example of adding a baseline: every instance exits at a fixed layer k.

Not a method anyone should publish — it is the smallest complete one: heads, training, exit
rule, sweep. Copy it to baselines/fixed_exit.py and add `from . import fixed_exit` to
baselines/__init__.py (or keep it outside the repository and name it in the config's `plugins`),
then list it in the config:  methods: {fixed-exit: ["layers=6"]}.
"""

from hashee.core.methods import Stage, register
from hashee.core.multiexit import MultiExitMethod


@register
class FixedExit(MultiExitMethod):
    name = "fixed-exit"  # the method id used in configs, paths and runs.csv
    supports_regression = True  # its rule needs no class probabilities
    # The inference-setting key of its sweep: one (perf, FLOPs) point per value, all in runs.csv, and
    # one curve (one table row, one plot line) per trained model.
    sweep_keys = ("exit",)
    sweep_values = ("1", "2", "3", "4", "5", "6")

    def inference_settings(self):
        # Model selection on dev uses the first setting: the deepest exit the model has.
        layers = self.num_layers or 6
        return [{self.sweep_key: str(k)} for k in range(layers, 0, -1)]

    def exit_decision(self, task, outputs, layer, state, inference):
        # (B,) bool: exit once the instance reaches layer k (the shared loop drops it from the batch).
        return outputs.new_full((outputs.shape[0],), layer >= int(inference[self.sweep_key]), dtype=bool)

    def stages(self, model, params):
        # One stage, every exit trained on the unweighted sum of its losses (exit heads: ClsHead).
        def loss(model, batch):
            return sum(self.exit_losses(model, batch))

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]
