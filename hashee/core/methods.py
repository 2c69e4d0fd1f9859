"""The method registry: HashEE (hashee.core.hashee_method) is one entry, every baseline (baselines/) is another.

The trainer (hashee.core.training) and the evaluator (hashee.measure.evaluation) know only this interface:
- `build(config, task)`: the model, from an encoder config (weights come later, so a saved model
  can be rebuilt without the pretrained checkpoint). The model records its task (`model.task`),
  which losses and predictions read; the method itself is left unchanged;
- `init_from_backbone(model, backbone)`: copy pretrained weights in;
- `stages(model, params)`: training stages — which parameters train, the loss, epochs, lr;
- `inference_settings()`: the sweep of exit settings evaluated for one trained model, keyed by the
  class's `sweep_keys` (tables and plots join rows that differ only in them into one curve);
- `predict(model, batch, inference)`: outputs (B, num_labels) + one execution trace per instance;
  `predict_outputs(model, batch, inference)`: the same outputs without the traces (what timing times);
  `predict_sweep(model, batch, inferences)`: the same at every setting (overridable: one pass);
- `flop_modules(model)`: ELUE's `module_list`, name -> module run on a traced shape.
Adding a method = one module that subclasses `Method` and decorates it with `@register`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

import torch
from torch import nn

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.modeling import EncoderConfig, SequenceClassifier, encoder_flop_modules, encoder_traces
from hashee.core.settings import BACKBONE_KEY, format_setting, parse_setting
from hashee.core.tasks import TaskSpec
from hashee.core.trace import Trace


class Registry:
    """Method classes by name, one instance per study: the ELUE methods (`METHODS`) and the
    summarization methods (hashee.studies.summarization.methods.SUMM_METHODS; the names overlap: both
    have a `hashee`). One mechanism, so both answer an unknown name and build settings the same way.
    `entry_point_group` / `plugins_env`: where modules that register into it are declared (imported on
    first `classes()`; the core never imports a baseline by name)."""

    def __init__(self, kind: str, *, entry_point_group: str | None = None, plugins_env: str | None = None):
        self.kind = kind  # "method", "summarization method": the error messages' word
        self.entry_point_group = entry_point_group
        self.plugins_env = plugins_env
        self._classes: dict[str, type[Method]] = {}

    def register(self, cls):
        """Class decorator: the class under its `name`."""
        self._classes[cls.name] = cls
        return cls

    def classes(self) -> dict[str, type[Method]]:
        """Every registered class, after importing the declared modules: the installed distributions'
        entry points of `entry_point_group` (this project's: HashEE and baselines/), then every module
        named in the variable `plugins_env` (comma-separated module names or .py paths; the config's
        `plugins` key sets $HASHEE_PLUGINS)."""
        if self.entry_point_group:
            for entry_point in entry_points(group=self.entry_point_group):
                entry_point.load()
        if self.plugins_env:
            for plugin in filter(None, (m.strip() for m in os.environ.get(self.plugins_env, "").split(","))):
                import_plugin(plugin, self.plugins_env)
        return self._classes

    def get(self, name: str, setting: str | dict = "") -> Method:
        """The method `name` with a setting (text "key=value,..." or a dict); unknown names and keys are errors."""
        classes = self.classes()
        if name not in classes:
            raise unknown_name(self.kind, name, classes)
        return classes[name](parse_setting(setting) if isinstance(setting, str) else dict(setting))


METHODS = Registry("method", entry_point_group="hashee.methods", plugins_env="HASHEE_PLUGINS")
register = METHODS.register
available_methods = METHODS.classes
get_method = METHODS.get


def reference_method() -> str:
    """The id of the registered method whose runs are the ELUE reference curve (`is_reference`)."""
    found = [name for name, cls in available_methods().items() if cls.is_reference]
    if len(found) != 1:
        raise HasheeError(f"exactly one registered method must set is_reference = True, found {found or 'none'}")
    return found[0]


def backbones_method() -> str:
    """The id of the registered method the backbones experiment runs on every backbone against the reference
    method's model of the same depth (the one class with a `backbones_setting`; docs/backbones.md)."""
    found = [name for name, cls in available_methods().items() if cls.backbones_setting]
    if len(found) != 1:
        raise HasheeError(f"exactly one registered method must set backbones_setting, found {found or 'none'}")
    return found[0]


def method_label(method: str) -> str:
    """How tables and plots name `method`: its class's `label` (the id itself for an unregistered name)."""
    cls = available_methods().get(method)
    return cls.display_label() if cls else method


def import_plugin(plugin: str, variable: str = "HASHEE_PLUGINS") -> None:
    """A module name, or the path of a .py file (imported once under a private name)."""
    try:
        if plugin.endswith(".py"):
            import importlib.util
            import sys

            name = f"hashee_plugin_{abs(hash(os.path.abspath(plugin)))}"
            if name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(name, plugin)
            if spec is None or not os.path.isfile(plugin):
                raise ImportError(f"no such file {plugin}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(plugin)
    except ImportError as err:
        raise HasheeError(f"{variable}: cannot import method module {plugin!r} ({err})") from None


@dataclass
class Stage:
    """One training stage: the parameters it trains (all others frozen), its loss, its schedule."""

    name: str
    parameters: Callable[[nn.Module], Iterable[nn.Parameter]]
    loss: Callable[[nn.Module, dict], torch.Tensor]
    epochs: float
    lr: float
    warmup: float
    weight_decay: float
    select_on_dev: bool = True  # keep the best epoch of this stage, chosen on dev
    # Called once when the stage starts (not again when a run resumes inside it), before its parameters
    # are chosen, with the model and `batches()`: the training set in file order, batch by batch, on the
    # model's device. What a method does between stages (HeadPrune prunes, Theseus copies layers).
    begin: Callable[[nn.Module, Callable[[], Iterable[dict]]], None] | None = None
    # Parameters (among `parameters`) trained at their own learning rate, without weight decay: the pruning
    # parameters of PoWER-BERT (retention) and LTP (thresholds), whose scale is not the weights'.
    fast_parameters: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    fast_lr: float = 0.0


@dataclass
class TrainingInputs:
    """What `Method.prepare` may use besides the model: the task's files and the run's seed."""

    data_dir: str
    seed: int
    max_length: int
    hash_file: str | None = None  # a fitted hash (hashee fit-hash), for methods that use one


@dataclass
class Prediction:
    outputs: torch.Tensor  # (B, num_labels) logits, or (B,) regression values
    traces: list[Trace]


def task_loss(task: TaskSpec, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task.is_regression:
        return nn.functional.mse_loss(outputs.view(-1), labels.float())
    return nn.functional.cross_entropy(outputs, labels)


def decode(task: TaskSpec, outputs: torch.Tensor) -> torch.Tensor:
    return outputs.view(-1).float() if task.is_regression else outputs.argmax(dim=-1)


class Method:
    name = "method"
    # One line for `hashee methods` (empty: the first line of the class's docstring, else its module's).
    description = ""
    # Facts the workflow reads from the class (workflow/rules/config.smk, planning.smk):
    supports_regression = True  # False: the method has no regression exit rule and skips STS-B
    needs_fitted_hash = False  # True: a hash is fitted per task before training (the fit_hash rule)
    # Facts hashee.measure (results, tables, plots) reads from the class: the keys `inference_settings()`
    # uses. Rows of one method that differ only in these are points of one trained model's curve.
    sweep_keys: tuple[str, ...] = ()
    sweep_values: tuple[str, ...] = ()  # the values the default `inference_settings` gives the one sweep key
    # True where the method's official code runs batch 1 only (hashee.measure.inference_time's caption says so).
    official_batch_one = False
    # Settings keys a method understands, with defaults; unknown keys are an error.
    setting_defaults: dict[str, str] = {}
    # Facts the reporting code (hashee.measure: tables, plots, timing) reads from the class, so that it names
    # no method: a plugin inherits these defaults (a spare plot style, a row just before HashEE, no paper row).
    plot_style: tuple[str, str] | None = None  # (matplotlib colour, marker), the same in every plot
    table_order: float = 6.5  # rows of the ELUE table by this, then by id (the paper's order)
    # The paper's rows this method's models correspond to: (backbone family or None for any, setting items
    # the model must have, the row's name in hashee/paper/*.csv); the most specific match wins.
    paper_rows: tuple[tuple[str | None, str, str], ...] = ()
    # True for the one method whose runs are the ELUE reference curve and the full models that measured
    # speed-ups are relative to (the static model).
    is_reference = False
    # How plots and the backbones table name the method (empty: its id, `name`). The ELUE, ablation and timing
    # tables keep the id in their `method` column: it is the key configs and runs.csv use.
    label = ""
    # The setting the backbones experiment (docs/backbones.md) runs on every backbone, compared with the
    # reference method's model of the same depth; set on exactly one method (None: not that method).
    backbones_setting: str | None = None
    # True for methods the paper does not compare with (the token-pruning baselines): the ELUE table, the
    # Pareto plots and the inference-time table mark their rows "beyond the paper".
    beyond_paper = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A class attribute `sweep_key` would shadow the property below and leave `sweep_keys` (what
        # the tables read) at the inherited value: the sweep would be split into one model per point.
        if "sweep_key" in cls.__dict__:
            raise HasheeError(f"method class {cls.__name__}: declare sweep_keys = ({cls.__dict__['sweep_key']!r},) "
                              "instead of sweep_key")

    @classmethod
    def summary(cls) -> str:
        """The one-line description `hashee methods` prints."""
        import sys

        if cls.description:
            return cls.description
        for doc in (cls.__dict__.get("__doc__"), getattr(sys.modules.get(cls.__module__), "__doc__", None)):
            if doc and doc.strip():
                return doc.strip().splitlines()[0]
        return ""

    @classmethod
    def display_label(cls) -> str:
        """`label`, else the id."""
        return cls.label or cls.name

    @property
    def sweep_key(self) -> str:
        """The one key of `sweep_keys`, swept over `sweep_values` (instance-exit methods, CascadeBERT)."""
        if len(self.sweep_keys) != 1:
            raise HasheeError(f"method {self.name}: sweep_keys {self.sweep_keys} must hold exactly one key for "
                              "the default inference_settings; override inference_settings for several")
        return self.sweep_keys[0]

    def sweep_value(self, inference: dict) -> float:
        """The sweep key's value in `inference`, as a number."""
        value = inference.get(self.sweep_key)
        if value is None:
            raise HasheeError(f"method {self.name}: inference setting has no {self.sweep_key!r} (got {inference})")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise HasheeError(f"method {self.name}: {self.sweep_key}={value!r} is not a number") from None

    def __init__(self, settings: dict[str, str]):
        # backbone=<label> names the backbone a run used (hashee.core.settings.BACKBONE_KEY); any method takes it.
        unknown = set(settings) - set(self.setting_defaults) - {BACKBONE_KEY}
        if unknown:
            raise HasheeError(f"method {self.name}: unknown setting key(s) {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(self.setting_defaults) or 'none'}")
        self.given = dict(settings)  # as the user wrote them: this names the variant in results
        self.settings = {**self.setting_defaults, **settings}

    def setting_text(self, inference: dict | None = None) -> str:
        return format_setting({**self.given, **(inference or {})})

    # --- helpers for settings ---
    def int_setting(self, key: str) -> int | None:
        value = self.settings.get(key)
        if value in (None, "", "all"):
            return None
        try:
            return int(value)
        except ValueError:
            raise HasheeError(f"method {self.name}: setting {key}={value!r} is not an integer") from None

    @property
    def num_layers(self) -> int | None:
        return self.int_setting("layers")

    # --- the interface ---
    def check_task(self, task: TaskSpec) -> None:
        if task.is_regression and not self.supports_regression:
            raise HasheeError(f"method {self.name} defines no regression exit and does not run on {task.name}")

    def build(self, config: EncoderConfig, task: TaskSpec) -> nn.Module:
        self.check_task(task)
        model = SequenceClassifier(config, task.num_labels)
        model.task = task
        return model

    def prepare(self, model: nn.Module, backbone, task: TaskSpec, inputs: TrainingInputs) -> None:
        """Before training, after the pretrained weights are in: attach what the method needs beyond
        its weights (HashEE: its hash)."""
        if inputs.hash_file and not self.needs_fitted_hash:
            raise HasheeError(f"method {self.name} uses no hash; --hash-file is for methods that do")

    def init_from_backbone(self, model: nn.Module, backbone) -> None:
        from hashee.core.backbones import load_exact

        load_exact(model.bert, backbone.state_dict, backbone.name)

    def stages(self, model: nn.Module, params) -> list[Stage]:
        def loss(model, batch):
            logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            return task_loss(model.task, logits, batch["labels"])

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]

    def inference_settings(self) -> list[dict[str, str]]:
        """The sweep: one setting per value of the one sweep key, or a single point without one."""
        if not self.sweep_keys:
            return [{}]
        return [{self.sweep_key: value} for value in self.sweep_values]

    def predict(self, model: nn.Module, batch: dict, inference: dict) -> Prediction:
        logits, out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return Prediction(logits, encoder_traces(batch["attention_mask"], out.active_counts,
                                                 model.bert.config.hidden_size))

    def predict_outputs(self, model: nn.Module, batch: dict, inference: dict) -> torch.Tensor:
        """`predict`'s outputs without its traces: what a deployment runs, and what hashee.measure.timing
        times. This default calls `predict`; the methods here override it to skip the trace bookkeeping
        (tests/test_timing.py checks that both give identical outputs for every registered method)."""
        return self.predict(model, batch, inference).outputs

    def predict_sweep(self, model: nn.Module, batch: dict, inferences: list[dict]) -> list[Prediction]:
        """`predict` at every inference setting. Instance-exit methods override it to compute the whole
        sweep from one pass (their outputs per layer do not depend on the exit rule)."""
        return [self.predict(model, batch, inference) for inference in inferences]

    def flop_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        from hashee.core.modeling import FlopsHead

        modules = encoder_flop_modules(model.bert)
        modules["pooler"] = FlopsHead(model.bert.pooler)
        modules["classifier"] = FlopsHead(model.classifier)
        return modules

    def rule_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        """Parameters that are constants of the inference rule, not of the network (the token-pruning
        baselines' retention and thresholds, like an exit threshold): the ELUE submission's parameter count
        leaves them out (the model file's `entire_model` is the network)."""
        return ()

    # --- persistence: extra files a method saves beside its checkpoint (HashEE: its hash) ---
    def save_extras(self, model: nn.Module, directory) -> None:
        pass

    def load_extras(self, model: nn.Module, directory, tokenizer) -> None:
        pass
